"""The command line as a user runs it: train, predict, evaluate, models, demo, errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from deepscope.io import read_image, write_image


def deepscope(*args, cwd=None, home=None):
    """Run ``deepscope ARGS`` in a fresh process (``home``: its DEEPSCOPE_HOME); returns
    the completed process."""
    env = {**os.environ, "DEEPSCOPE_HOME": str(home)} if home else None
    return subprocess.run(
        [sys.executable, "-m", "deepscope", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env=env,
    )


def tiny_train_args(folders, name, out, epochs, steps, with_val=True):
    """``deepscope train semantic`` arguments for a run of seconds on the synthetic nuclei."""
    args = [
        "train",
        "semantic",
        "--images",
        folders["train_images"],
        "--masks",
        folders["train_masks"],
        "--name",
        name,
        "--out",
        out,
        "--epochs",
        epochs,
        "--steps",
        steps,
        "--batch-size",
        2,
        "--patch-size",
        32,
        "--threads",
        1,
        "--set",
        "network.depth=2",
        "--set",
        "network.base_filters=4",
    ]
    if with_val:
        args += ["--val-images", folders["val_images"], "--val-masks", folders["val_masks"]]
    return args


@pytest.fixture(scope="module")
def trained(nuclei_folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_models")
    run = deepscope(*tiny_train_args(nuclei_folders, "cli-unet", out, 1, 2))
    assert run.returncode == 0, run.stderr
    return out / "cli-unet"


def test_train_writes_a_package_and_records_its_command(trained):
    spec = json.loads((trained / "model.json").read_text())
    assert spec["training"]["command"].startswith("deepscope train semantic --images")
    assert spec["network"]["depth"] == 2


def test_train_within_a_time_budget(nuclei_folders, tmp_path):
    args = [*tiny_train_args(nuclei_folders, "budget", tmp_path, 40, 2), "--max-minutes", 1e-6]
    run = deepscope(*args)
    assert run.returncode == 0, run.stderr
    spec = json.loads((tmp_path / "budget" / "model.json").read_text())
    assert spec["training"]["epochs_done"] == 1


def test_predict_writes_a_label_tiff_per_input(trained, nuclei_folders, tmp_path):
    run = deepscope(
        "predict", trained, nuclei_folders["val_images"], "--out", tmp_path, "--overlay"
    )
    assert run.returncode == 0, run.stderr
    labels = read_image(tmp_path / "img0_labels.tif")
    assert labels.data.shape == (64, 64) and np.issubdtype(labels.data.dtype, np.integer)
    assert (tmp_path / "img1_labels.tif").is_file()
    assert (tmp_path / "img1_overlay.png").is_file()


def test_predict_writes_ome_zarr_on_request(trained, nuclei_folders, tmp_path):
    args = ("predict", trained, nuclei_folders["val_images"], "--out", tmp_path)
    run = deepscope(*args, "--format", "ome.zarr")
    assert run.returncode == 0, run.stderr
    assert read_image(tmp_path / "img0_labels.ome.zarr").data.shape == (64, 64)

    run = deepscope(*args, "--format", "jpg")
    assert (
        run.returncode == 1
        and "unknown output format 'jpg'; choose one of: tif, ome.zarr" in run.stderr
    )


def test_evaluate_prints_a_table_and_writes_json(trained, nuclei_folders, tmp_path):
    run = deepscope(
        "evaluate",
        trained,
        "--images",
        nuclei_folders["val_images"],
        "--masks",
        nuclei_folders["val_masks"],
        "--json",
        tmp_path / "m.json",
        "--per-image",
        tmp_path / "per_image.csv",
    )
    assert run.returncode == 0, run.stderr
    assert "AP" in run.stdout and "0.9" in run.stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    for key in (
        "ap@0.5",
        "ap@0.7",
        "ap@0.9",
        "f1@0.5",
        "precision@0.5",
        "recall@0.5",
        "mean_matched_iou@0.5",
        "ap@0.55",
        "n_images",
    ):
        assert key in metrics
    assert metrics["n_images"] == 2
    unmatched = ["fn_missed", "fn_merged", "fn_misshaped", "fp_spurious", "fp_split"]
    kinds = {k: metrics[f"{k}@0.5"] for k in [*unmatched, "fp_misshaped"]}
    assert sum(v for k, v in kinds.items() if k.startswith("fn")) == metrics["fn@0.5"]
    assert sum(v for k, v in kinds.items() if k.startswith("fp")) == metrics["fp@0.5"]
    assert (tmp_path / "per_image.csv").read_text().startswith("name")
    same = deepscope("evaluate", trained, "--images", nuclei_folders["val_images"], "--masks",
                     nuclei_folders["val_masks"], "--json", tmp_path / "x", "--per-image",
                     tmp_path / "x")  # fmt: skip
    assert same.returncode == 1 and "name the same file" in same.stderr


def test_models_list_json_names_the_builtin_model():
    run = deepscope("models", "list", "--json")
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert {"name", "task", "architecture", "domain", "source", "favourite"} <= set(rows[0])
    assert "unet-nuclei-fluo" in [r["name"] for r in rows]


def test_models_list_says_when_no_model_matches_and_which_tasks_exist():
    run = deepscope("models", "list", "--task", "segmentation")
    assert run.returncode == 0, run.stderr
    assert "no model matches these filters" in run.stderr
    assert "stardist" in run.stderr and "flows" in run.stderr


def test_models_library_workflow(tmp_path):
    home = tmp_path / "home"

    def names(*filters):
        run = deepscope("models", "list", "--json", *filters, home=home)
        assert run.returncode == 0, run.stderr
        return [r["name"] for r in json.loads(run.stdout)]

    assert names("--task", "stardist", "--arch", "stardist") == [
        "stardist-nuclei-3d",
        "stardist-nuclei-fluo",
    ]
    assert deepscope("models", "favourite", "unet-nuclei-fluo", home=home).returncode == 0
    assert names("--favourites") == ["unet-nuclei-fluo"]
    zipped = tmp_path / "unet.zip"
    assert deepscope("models", "export", "unet-nuclei-fluo", "--out", zipped).returncode == 0
    run = deepscope("models", "import", zipped, "--name", "lab-unet", home=home)
    assert run.returncode == 0, run.stderr
    assert names("--mine") == ["lab-unet"]
    assert "lab-unet" not in names("--builtin")
    assert deepscope("models", "remove", "lab-unet", home=home).returncode == 0
    assert names("--mine") == []
    refused = deepscope("models", "remove", "unet-nuclei-fluo", home=home)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: 'unet-nuclei-fluo' is a built-in model and cannot be removed"
    )


def test_models_show_prints_model_json_and_the_runtime_measured_here(tmp_path):
    home = tmp_path / "home"
    before = deepscope("models", "show", "unet-nuclei-fluo", home=home)
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["name"] == "unet-nuclei-fluo"  # stdout stays JSON
    assert "CPU runtime: not measured on this CPU yet" in before.stderr

    image = tmp_path / "nuclei.tif"
    tifffile.imwrite(image, np.random.default_rng(0).random((64, 64), np.float32))
    run = deepscope("predict", "unet-nuclei-fluo", image, "--out", tmp_path / "out", home=home)
    assert run.returncode == 0, run.stderr
    after = deepscope("models", "show", "unet-nuclei-fluo", home=home)
    assert "measured fastest on this CPU on" in after.stderr
    assert "seconds per 1x1x1024x1024 input: " in after.stderr


def test_predict_backends_give_the_same_labels(tmp_path):
    image = tmp_path / "in" / "crop.tif"
    from deepscope.demo import SAMPLE
    from deepscope.io import write_image

    write_image(image, read_image(SAMPLE).data[:128, :128])
    for backend in ("torch", "onnx"):
        run = deepscope("predict", "unet-nuclei-fluo", image, "--out", tmp_path / backend,
                        "--backend", backend, "--precision", "float32")  # fmt: skip
        assert run.returncode == 0, run.stderr
    torch_labels = read_image(tmp_path / "torch" / "crop_labels.tif").data
    onnx_labels = read_image(tmp_path / "onnx" / "crop_labels.tif").data
    np.testing.assert_array_equal(torch_labels, onnx_labels)
    bad = deepscope("predict", "unet-nuclei-fluo", image, "--backend", "tpu")
    assert bad.returncode == 1 and "backend must be one of auto, torch, onnx" in bad.stderr


def test_demo_writes_labels_measurements_and_overlay(tmp_path):
    run = deepscope("demo", "--out", tmp_path / "demo")
    assert run.returncode == 0, run.stderr
    labels = read_image(tmp_path / "demo" / "nuclei_fluo_labels.tif").data
    assert labels.shape == (520, 696) and labels.max() > 50
    header = (tmp_path / "demo" / "nuclei_fluo_objects.csv").read_text().splitlines()[0]
    for column in ("label", "centroid_y", "centroid_x", "area", "mean_intensity"):
        assert column in header.split(",")
    assert (tmp_path / "demo" / "nuclei_fluo_overlay.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "args, message",
    [
        (("predict", "no-such-model", "x.tif"), "unknown model 'no-such-model'"),
        (("predict", "unet-nuclei-fluo", "missing/*.tif"), "missing/*.tif"),
        (("train", "nonsense"), "neither a task"),
        (("train", "semantic", "--images", "a"), "needs --masks"),
        (("evaluate", "unet-nuclei-fluo", "--images", "nowhere", "--masks", "nowhere"), "nowhere"),
        (
            (
                "evaluate",
                "unet-nuclei-fluo",
                "--images",
                "nowhere",
                "--masks",
                "nowhere",
                "--json",
                "/proc/none/m.json",
            ),
            "cannot write --json",
        ),
        (("tune", "unet-nuclei-fluo", "--images", "a", "--masks", "b"), "read-only"),
        (("models", "remove", "../x"), "cannot be a model name"),
        (("serve", "--port", "0"), "--port: Input should be greater than or equal to 1"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args, message, tmp_path):
    run = deepscope(*args, cwd=tmp_path)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert message in lines[0]


def test_running_out_of_memory_is_one_line_naming_the_options_that_help(monkeypatch, capsys):
    from deepscope.cli import main as cli

    def exhausted(**_):
        raise MemoryError

    monkeypatch.setattr(cli, "app", exhausted)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    message = capsys.readouterr().err
    assert message.startswith("error: out of memory")
    assert all(option in message for option in ("--tile", "--patch-size", "--batch-size"))


def exit_status_of_predict_raising(error, monkeypatch, tmp_path) -> int:
    """The exit status of ``deepscope predict`` run in-process when its work raises ``error``."""
    import deepscope.api
    from deepscope.cli import main as cli

    def raising(*_, **__):
        raise error

    monkeypatch.setattr(deepscope.api, "predict_files", raising)
    monkeypatch.setattr(
        sys, "argv", ["deepscope", "predict", "unet-nuclei-fluo", "x.tif", "--out", str(tmp_path)]
    )
    with pytest.raises(SystemExit) as exited:
        cli.main()
    return exited.value.code


def test_sigterm_during_a_streamed_prediction_leaves_no_partial_output(tmp_path):
    from deepscope.io import write_image

    write_image(tmp_path / "big.tif", np.zeros((256, 256), np.uint8))
    script = (
        "import os, signal, time, sys\n"
        "import deepscope.streamed_files as s\n"
        "def killed(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)  # as a batch system's time limit does\n"
        "    time.sleep(30)\n"
        "s._predict_into = killed\n"
        "from deepscope.cli.main import main\n"
        "sys.argv = ['deepscope'] + sys.argv[1:]\n"
        "main()\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, "predict", "unet-nuclei-fluo", tmp_path / "big.tif",
         "--out", tmp_path / "out", "--stream", "--format", "ome.zarr", "--tile", "128"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 143 and run.stderr.strip().endswith("terminated"), run.stderr
    assert not (tmp_path / "out").exists()  # no temporary store, and no empty folder either


@pytest.mark.parametrize(("signum", "status"), [(2, 130), (15, 143)])
def test_an_interrupted_training_exits_as_a_signal_not_as_a_failure(
    monkeypatch, capsys, tmp_path, signum, status
):
    import deepscope.api
    from deepscope.cli import main as cli
    from deepscope.errors import TrainingInterrupted

    def interrupted(*_, **__):
        raise TrainingInterrupted("training interrupted at epoch 2 step 5; ...", signum)

    monkeypatch.setattr(deepscope.api, "train", interrupted)
    monkeypatch.setattr(sys, "argv", ["deepscope", "train", "semantic", "--images", "i",
                                      "--masks", "m", "--name", "x"])  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == status  # a batch system tells preemption from failure
    assert capsys.readouterr().err.startswith("stopped: training interrupted at epoch 2")


def test_an_unforeseen_file_system_error_is_one_line(monkeypatch, capsys, tmp_path):
    refused = FileNotFoundError(2, "No such file or directory", "/proc/x.json")
    assert exit_status_of_predict_raising(refused, monkeypatch, tmp_path) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("error: cannot access '/proc/x.json': No such file") and err.count("\n") == 1
    )


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["network.depth=2", "network.depth.x=1"], "'network.depth' is given a value of its own"),
        (["task_params=foo"], "--set task_params takes settings inside it"),
        (["name=other"], "'name' is given twice, by --name and by --set name=...; give it once"),
    ],
)
def test_set_values_that_clash_with_their_nesting_are_one_line_errors(tmp_path, sets, message):
    args = [a for s in sets for a in ("--set", s)]
    run = deepscope("train", "semantic", "--images", tmp_path, "--masks", tmp_path, "--name",
                    "x", *args)  # fmt: skip
    assert run.returncode == 1 and run.stderr.startswith("error: ") and message in run.stderr


def test_ctrl_c_exits_with_status_130_not_as_a_success(monkeypatch, capsys, tmp_path):
    assert exit_status_of_predict_raising(KeyboardInterrupt, monkeypatch, tmp_path) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_tune_stores_thresholds_in_model_json(trained, nuclei_folders):
    run = deepscope(
        "tune",
        trained,
        "--images",
        nuclei_folders["val_images"],
        "--masks",
        nuclei_folders["val_masks"],
    )
    assert run.returncode == 0, run.stderr
    spec = json.loads((trained / "model.json").read_text())
    assert set(spec["training"]["tuned"]) == {"seed_threshold", "mask_threshold", "min_seed_size"}
    assert spec["task_params"]["seed_threshold"] == spec["training"]["tuned"]["seed_threshold"]
    assert "ap@0.5" in spec["validation"]


def test_a_terminated_training_resumes_from_its_checkpoint(nuclei_folders, tmp_path):
    import signal
    import time

    args = [
        sys.executable,
        "-m",
        "deepscope",
        *tiny_train_args(nuclei_folders, "killed", tmp_path, 12, 4, with_val=False),
    ]
    proc = subprocess.Popen(
        list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    history = tmp_path / "killed" / "history.csv"
    deadline = time.time() + 120
    while not history.exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143  # as a batch system expects of a terminated job
    assert "--resume" in stderr and "Traceback" not in stderr
    assert (tmp_path / "killed" / "checkpoints" / "last.pt").is_file()

    resumed = deepscope(*args[3:], "--resume")
    assert resumed.returncode == 0, resumed.stderr
    spec = json.loads((tmp_path / "killed" / "model.json").read_text())
    assert spec["training"]["epochs_done"] == 12


@pytest.fixture(scope="module")
def trained_stardist(nuclei_folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_stardist")
    args = tiny_train_args(nuclei_folders, "cli-stardist", out, 1, 2)
    args[1] = "stardist"
    run = deepscope(*args, "--set", "network.grid=2", "--set", "task_params.n_rays=16")
    assert run.returncode == 0, run.stderr
    return out / "cli-stardist"


def test_train_stardist_predict_and_evaluate_with_the_same_keys(
    trained_stardist, nuclei_folders, tmp_path
):
    spec = json.loads((trained_stardist / "model.json").read_text())
    assert spec["task"] == "stardist"
    assert spec["task_params"]["grid"] == 2 and spec["network"]["grid"] == 2
    assert {"prob_threshold", "nms_threshold"} <= set(spec["training"]["tuned"])
    run = deepscope("predict", trained_stardist, nuclei_folders["val_images"], "--out", tmp_path)
    assert run.returncode == 0, run.stderr
    assert read_image(tmp_path / "img0_labels.tif").data.shape == (64, 64)
    run = deepscope(
        "evaluate",
        trained_stardist,
        "--images",
        nuclei_folders["val_images"],
        "--masks",
        nuclei_folders["val_masks"],
        "--json",
        tmp_path / "m.json",
        "--per-image",
        tmp_path / "per_image.csv",
    )
    assert run.returncode == 0, run.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert {"ap@0.5", "ap@0.7", "f1@0.5", "n_images"} <= set(metrics)
    rows = (tmp_path / "per_image.csv").read_text().splitlines()
    assert len(rows) == 1 + metrics["n_images"]


def test_count_writes_filtered_labels_objects_and_summary(tmp_path):
    from deepscope.demo import SAMPLE

    run = deepscope(
        "count",
        "unet-nuclei-fluo",
        SAMPLE,
        "--out",
        tmp_path,
        "--range",
        "area=100:",
        "--exclude-border",
        "--split",
    )
    assert run.returncode == 0, run.stderr
    labels = read_image(tmp_path / "nuclei_fluo_labels.tif").data
    rows = (tmp_path / "nuclei_fluo_objects.csv").read_text().splitlines()
    header = rows[0].split(",")
    for column in ("label", "area", "perimeter", "eccentricity", "solidity", "mean_intensity"):
        assert column in header
    areas = [float(r.split(",")[header.index("area")]) for r in rows[1:]]
    assert min(areas) >= 100
    assert labels.max() == len(rows) - 1
    assert labels[0].max() == labels[-1].max() == 0  # nothing on the border
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("image,count,mean_area,median_area")
    assert summary[1].split(",")[1] == str(len(rows) - 1)


def test_a_bad_range_fails_before_any_prediction(tmp_path):
    run = deepscope("count", "unet-nuclei-fluo", "x.tif", "--range", "area:30", cwd=tmp_path)
    assert run.returncode == 1
    assert "COLUMN=LOW:HIGH" in run.stderr and "Traceback" not in run.stderr


def test_a_usage_error_is_one_line_pointing_to_the_help(tmp_path):
    run = deepscope("predict", "unet-nuclei-fluo")  # no inputs
    assert run.returncode == 2
    assert run.stderr.startswith("error: Missing argument") and run.stderr.count("\n") == 1
    assert "deepscope predict --help'" in run.stderr
    run = deepscope("count", "unet-nuclei-fluo", "x.tif", "--min-split-size", "abc")
    assert run.returncode == 2 and run.stderr.startswith("error: Invalid value for '--min-split")


def test_evaluating_a_segmentation_model_without_masks_says_what_is_missing(tmp_path):
    run = deepscope("evaluate", "unet-nuclei-fluo", "--images", tmp_path)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and "--masks" in run.stderr


def test_keep_going_skips_a_bad_image_names_it_and_exits_1(tmp_path):
    from deepscope.io import write_image

    folder = tmp_path / "in"
    write_image(folder / "a.tif", np.zeros((32, 32), np.uint8))
    (folder / "b.tif").write_bytes(b"not a tiff")
    run = deepscope("predict", "unet-nuclei-fluo", folder, "--out", tmp_path / "out",
                    "--keep-going")  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    skips = [line for line in lines if line.startswith("skipped: ")]
    assert len(skips) == 1 and "b.tif" in skips[0]
    assert lines[-1].startswith("error: 1 image(s) could not be processed")
    assert (tmp_path / "out" / "a_labels.tif").is_file()


def test_serving_on_a_port_in_use_is_one_line(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = deepscope("serve", "--port", port, "--state-dir", tmp_path / "state")
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: cannot serve on 127.0.0.1:{port}")
    assert run.stderr.count("\n") == 1


def test_names_with_brackets_are_printed_as_written(tmp_path):
    run = deepscope("models", "import", "model[/copy].zip", cwd=tmp_path)  # rich markup once
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith("error: 'model[/copy].zip' does not exist")


def test_predict_takes_one_channel_of_a_multichannel_image(tmp_path):
    from deepscope.demo import SAMPLE

    grey = read_image(SAMPLE).data
    write_image(tmp_path / "two.tif", np.stack([grey // 4, grey]), "CYX")
    run = deepscope("predict", "unet-nuclei-fluo", tmp_path / "two.tif", "--channel", "1",
                    "--out", tmp_path / "out")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert read_image(tmp_path / "out" / "two_labels.tif").data.max() > 0
