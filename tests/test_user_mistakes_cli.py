"""Options that mean nothing for the model or data at hand, and settings that cannot work:
a clear error before any work (or, where nothing is lost, one warning line), never a
silently ignored option."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import deepscope
from deepscope.errors import ConfigError, InputError
from deepscope.io import write_image
from deepscope.report import qc_report
from deepscope.train.dataset import Sample
from deepscope.train.trainer import check_patch_fits
from deepscope.zoo import export_model
from deepscope.zoo.quantize import quantize_model


def cli(*args, cwd):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "deepscope", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize("model", ["n2v-fmd-confocal", "stardist-nuclei-fluo"])
def test_probabilities_from_a_model_without_them_are_refused_before_reading(model, tmp_path):
    with pytest.raises(ConfigError, match="--probabilities writes the per-pixel probabilities"):
        deepscope.predict_files(
            model, [tmp_path / "nowhere"], tmp_path / "out", save_probabilities=True
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "model, message",
    [
        ("n2v-fmd-confocal", "task 'n2v', which makes no objects"),
        ("mitosis-phase-classifier", "task 'classify', which makes no objects"),
        ("stardist-nuclei-3d", "on 2D images; 'stardist-nuclei-3d' segments 3D volumes"),
    ],
)
def test_an_overlay_that_cannot_be_drawn_is_refused_before_reading(model, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        deepscope.predict_files(model, [tmp_path / "nowhere"], tmp_path / "out", overlay=True)
    assert not (tmp_path / "out").exists()


def test_an_overlay_of_a_time_series_is_left_out_with_a_warning(tmp_path):
    write_image(tmp_path / "in" / "movie.tif", np.zeros((2, 32, 32), np.uint8), axes="TYX")
    with pytest.warns(UserWarning, match=r"no overlay for 1 time series \(movie\.tif\)"):
        written = deepscope.predict_files(
            "unet-nuclei-fluo", [tmp_path / "in"], tmp_path / "out", overlay=True
        )
    assert [path.name for path in written] == ["movie_labels.tif"]


def test_classifier_probabilities_are_always_in_the_table(tmp_path):
    rng = np.random.default_rng(0)
    write_image(tmp_path / "in" / "a.tif", rng.integers(0, 255, (64, 64, 3), np.uint8), axes="YXC")
    with pytest.warns(UserWarning, match="predictions.csv always holds the prob_<class>"):
        (table,) = deepscope.predict_files(
            "mitosis-phase-classifier",
            [tmp_path / "in"],
            tmp_path / "out",
            save_probabilities=True,
        )
    assert "prob_inter" in table.read_text().splitlines()[0]


def test_a_quality_report_with_a_segmentation_model_warns(tmp_path):
    rng = np.random.default_rng(0)
    write_image(tmp_path / "pred" / "a_pred.tif", rng.random((32, 32)).astype(np.float32))
    write_image(tmp_path / "gt" / "a.tif", rng.random((32, 32)).astype(np.float32))
    with pytest.warns(UserWarning, match="task 'stardist', not an image restoration one"):
        qc_report(
            tmp_path / "pred", tmp_path / "gt", tmp_path / "qc.html", model="stardist-nuclei-fluo"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qc_report(
            tmp_path / "pred", tmp_path / "gt", tmp_path / "qc2.html", model="care-fmd-confocal"
        )


def test_quantizing_on_crops_smaller_than_the_network_takes_is_refused(home, tmp_path):
    copy = export_model("unet-nuclei-fluo", tmp_path / "unet")
    write_image(tmp_path / "cal" / "a.tif", np.zeros((64, 64), np.uint8))
    before = (copy / "model.json").read_text()
    divisor = json.loads(before)["network"]["grid"] * 2 ** json.loads(before)["network"]["depth"]
    with pytest.raises(InputError, match=rf"--side 3 is too small .* --side {divisor} or more"):
        quantize_model(copy, tmp_path / "cal", side=3)
    assert (copy / "model.json").read_text() == before


def _sample(shape):
    image = np.zeros((1, *shape), np.float32)
    return Sample("s", image, np.zeros(shape, np.int64), np.zeros(shape), np.zeros(shape, bool))


def test_a_patch_larger_than_every_training_image_warns_with_a_size_that_fits():
    with pytest.warns(UserWarning, match=r"patch_size 192 .* 128x128 .* --patch-size 128"):
        check_patch_fits(192, [_sample((128, 130)), _sample((64, 64))], 16)
    with pytest.raises(ConfigError, match=r"patch_size 1024 is more than twice .* 128"):
        check_patch_fits(1024, [_sample((128, 130)), _sample((64, 64))], 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_patch_fits(128, [_sample((128, 130))], 16)  # fits
        check_patch_fits(32, [_sample((20, 20))], 16)  # the network's smallest patch
        check_patch_fits(256, [_sample((100, 100)), _sample((300, 300))], 16)  # one fits


def test_training_with_a_patch_larger_than_the_images_warns_once(tiny_settings):
    settings = {**tiny_settings, "patch_size": 128, "epochs": 1, "steps_per_epoch": 1}
    with pytest.warns(UserWarning, match="patch_size 128 is larger") as caught:
        deepscope.train(**settings)
    assert len([w for w in caught if "patch_size" in str(w.message)]) == 1


def test_the_cli_says_what_an_option_is_for_in_one_line(tmp_path):
    run = cli("predict", "n2v-fmd-confocal", "nowhere", "--probabilities", cwd=tmp_path)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1 and len(lines) == 1, run.stderr
    assert lines[0].startswith("error: --probabilities writes the per-pixel probabilities")
    assert not (tmp_path / "predictions").exists()


def test_the_cli_shows_the_time_series_overlay_warning_as_one_line(tmp_path):
    write_image(tmp_path / "in" / "movie.tif", np.zeros((2, 32, 32), np.uint8), axes="TYX")
    run = cli("predict", "unet-nuclei-fluo", "in", "--overlay", "--out", "out", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    warned = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "no overlay for 1 time series (movie.tif)" in warned[0]
    assert (tmp_path / "out" / "movie_labels.tif").is_file()
