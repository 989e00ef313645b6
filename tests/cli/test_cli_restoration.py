"""Restoration from the command line on small crops of the real FMD confocal data:
``train care --inputs --targets``, ``train n2v --images`` (one line), ``predict``,
``evaluate --targets --json``."""

import json

import numpy as np
import pytest

from deepscope.io import read_image, write_image

from .test_cli import deepscope

TINY = ["--epochs", "2", "--steps", "3", "--patch-size", "32", "--batch-size", "2",
        "--set", "network.depth=2", "--set", "network.base_filters=4", "--set", "val_patches=2",
        "--set", "threads=1", "--device", "cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def fmd_crops(shared_data, tmp_path_factory):
    """Noisy frames and their 50-frame averages of three fields, 96x96 crops."""
    root = tmp_path_factory.mktemp("fmd")
    for fov in ("fov01", "fov02", "fov03"):
        folder = shared_data / "fmd_confocal_bpae_b" / fov
        gt = read_image(folder / "gt.tif").data[200:296, 200:296]
        for frame in ("noisy_00", "noisy_01"):
            noisy = read_image(folder / f"{frame}.tif").data[200:296, 200:296]
            write_image(root / "noisy" / f"{fov}_{frame}.tif", noisy)
            write_image(root / "clean" / f"{fov}_{frame}.tif", gt)
    return root


def test_care_trains_predicts_in_input_units_and_evaluates(fmd_crops, tmp_path):
    noisy, clean = fmd_crops / "noisy", fmd_crops / "clean"
    run = deepscope("train", "care", "--inputs", noisy, "--targets", clean,
                    "--name", "care-tiny", "--out", tmp_path, *TINY)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "psnr" in run.stdout
    model = tmp_path / "care-tiny"
    spec = json.loads((model / "model.json").read_text())
    assert spec["task"] == "care" and {"psnr", "ssim"} <= spec["validation"].keys()

    run = deepscope("predict", model, fmd_crops / "noisy", "--out", tmp_path / "pred")
    assert run.returncode == 0, run.stderr
    pred = read_image(tmp_path / "pred" / "fov01_noisy_00_pred.tif").data
    noisy = read_image(fmd_crops / "noisy" / "fov01_noisy_00.tif").data
    assert pred.shape == noisy.shape and pred.dtype == np.float32
    assert abs(float(np.median(pred)) - float(np.median(noisy))) < 0.5 * float(noisy.max())

    run = deepscope("evaluate", model, "--images", fmd_crops / "noisy", "--targets",
                    fmd_crops / "clean", "--json", tmp_path / "m.json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert {"psnr", "ssim", "nrmse", "mae"} <= metrics.keys() and metrics["n_images"] == 6


def test_n2v_trains_on_the_noisy_images_alone(fmd_crops, tmp_path):
    run = deepscope("train", "n2v", "--images", fmd_crops / "noisy", "--name", "n2v-tiny",
                    "--out", tmp_path, *TINY)  # fmt: skip
    assert run.returncode == 0, run.stderr
    spec = json.loads((tmp_path / "n2v-tiny" / "model.json").read_text())
    assert spec["training"]["data"]["masks"] is None
    assert "no metrics" in spec["validation"]["note"]


def test_n2v_with_the_blind_spot_network_trains_and_denoises(fmd_crops, tmp_path):
    run = deepscope("train", "n2v", "--images", fmd_crops / "noisy", "--name", "bsn",
                    "--out", tmp_path, *TINY,
                    "--set", "task_params.method=blind_spot_network")  # fmt: skip
    assert run.returncode == 0, run.stderr
    spec = json.loads((tmp_path / "bsn" / "model.json").read_text())
    assert spec["network"]["blind_spot"] is True
    run = deepscope("predict", tmp_path / "bsn", fmd_crops / "noisy" / "fov01_noisy_00.tif",
                    "--out", tmp_path / "pred")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert read_image(tmp_path / "pred" / "fov01_noisy_00_pred.tif").data.shape == (96, 96)


def test_n2v_with_masks_and_care_without_targets_say_what_to_do(fmd_crops, tmp_path):
    run = deepscope("train", "n2v", "--images", fmd_crops / "noisy", "--masks",
                    fmd_crops / "clean", "--name", "x", "--out", tmp_path, *TINY)  # fmt: skip
    assert run.returncode == 1 and "learns from the images alone" in run.stderr
    assert "Traceback" not in run.stderr
    run = deepscope("train", "care", "--inputs", fmd_crops / "noisy", "--name", "x",
                    "--out", tmp_path)  # fmt: skip
    assert run.returncode == 1 and "needs --targets" in run.stderr
