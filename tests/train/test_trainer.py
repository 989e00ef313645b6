"""Training end to end on tiny synthetic data: package, history, resume, errors."""

import csv
import itertools
import json
import shutil

import numpy as np
import pytest
import torch

from deepscope.errors import ConfigError, InputError
from deepscope.progress import Progress
from deepscope.spec import read_spec, read_weights
from deepscope.train.config import load_train_config, make_train_config
from deepscope.train.trainer import (
    TrainingInterrupted,
    epochs_in_budget,
    initial_weights,
    lr_factor,
    train,
    warming_decay,
    weight_average,
)


def test_training_writes_a_complete_model_package(tiny_settings):
    folder = train(make_train_config(tiny_settings), command="deepscope train semantic ...")

    spec = read_spec(folder)
    assert spec.name == "tiny" and spec.task == "semantic"
    assert spec.network.out_channels == 3
    assert spec.training["command"] == "deepscope train semantic ..."
    assert spec.training["epochs_done"] == 2
    assert "ap@0.5" in spec.validation and spec.validation["n_images"] == 2
    assert set(read_weights(folder, spec)) == set(
        torch.nn.Module.state_dict(
            __import__("deepscope.nets", fromlist=["build_unet"]).build_unet(spec.network)
        )
    )
    rows = list(csv.DictReader(open(folder / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert (folder / "loss.png").stat().st_size > 0


def test_the_faster_cpu_runtime_is_measured_and_recorded(tiny_settings):
    spec = read_spec(train(make_train_config(tiny_settings)))
    seconds = spec.training["cpu_backend_seconds"]
    assert seconds["shape"] == [64, 64]
    fastest = min(("torch", "onnx"), key=seconds.get)
    assert spec.prediction.cpu_backend == fastest


def test_progress_reports_every_step(tiny_settings):
    events: list[Progress] = []
    train(make_train_config(tiny_settings), progress=events.append)
    steps = [e for e in events if e.stage == "train"]
    assert [e.done for e in steps] == list(range(1, 7))
    assert all(e.total == 6 and "loss" in e.metrics for e in steps)


def _interrupt_at(step: int):
    def callback(event: Progress) -> None:
        if event.stage == "train" and event.done == step:
            raise KeyboardInterrupt

    return callback


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_after_interruption_gives_the_same_model(tiny_settings, tmp_path, ema_decay):
    tiny_settings = {**tiny_settings, "ema_decay": ema_decay}
    straight = train(make_train_config({**tiny_settings, "out": tmp_path / "a"}))

    settings = {**tiny_settings, "out": tmp_path / "b"}
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(make_train_config(settings), progress=_interrupt_at(4))
    resumed = train(make_train_config(settings), resume=True)

    a = read_weights(straight, read_spec(straight))
    b = read_weights(resumed, read_spec(resumed))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    history = list(csv.DictReader(open(resumed / "history.csv")))
    assert len(history) == 2


def test_an_interrupt_while_the_trained_model_is_validated_can_be_resumed(tiny_settings):
    def stop_at_validation(event: Progress) -> None:
        if event.stage == "validate":
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match=r"validated and saved; .* --resume"):
        train(make_train_config(tiny_settings), progress=stop_at_validation)
    folder = train(make_train_config(tiny_settings), resume=True)
    assert read_spec(folder).training["epochs_done"] == 2


def test_weight_averaging_keeps_a_moving_average_of_the_weights(tiny_settings, tmp_path):
    from deepscope.train.checkpoint import load_checkpoint

    settings = {**tiny_settings, "epochs": 1, "steps_per_epoch": 2, "ema_decay": 0.5}
    with pytest.raises(TrainingInterrupted):
        train(make_train_config(settings), progress=_interrupt_at(1))
    first = load_checkpoint(make_train_config(settings).package_dir / "checkpoints")
    folder = train(make_train_config(settings), resume=True)

    last = load_checkpoint(folder / "checkpoints")
    key = next(k for k in first["model"] if k.endswith("weight"))
    decay = warming_decay(0.5, 1)  # the second update: still warming up
    expected = decay * first["model"][key] + (1 - decay) * last["model"][key]
    torch.testing.assert_close(last["ema"][f"module.{key}"], expected)
    torch.testing.assert_close(read_weights(folder, read_spec(folder))[key], expected)


def test_the_average_follows_the_network_early_and_smooths_it_late():
    assert [round(warming_decay(0.998, n), 3) for n in (0, 10, 100, 10_000)] == [
        0.1, 0.55, 0.918, 0.998,
    ]  # fmt: skip
    net = torch.nn.Linear(1, 1)
    average = weight_average(net, 0.998)
    with torch.no_grad():
        net.weight.fill_(0.0)
        average.update_parameters(net)  # the first update copies the network
        net.weight.fill_(1.0)
        for _ in range(50):
            average.update_parameters(net)
    # a fixed decay of 0.998 would still be at 0.1 here
    assert average.module.weight.item() > 0.99


def test_dataset_normalisation_is_measured_on_the_training_images_and_stored(tiny_settings):
    settings = {**tiny_settings, "normalization": {"mode": "dataset"}}
    with pytest.raises(TrainingInterrupted):
        train(make_train_config(settings), progress=_interrupt_at(2))
    folder = train(make_train_config(settings), resume=True)  # the same bounds measured again

    ((lo, hi),) = read_spec(folder).normalization.bounds
    assert 0 <= lo < hi


def test_a_second_run_into_the_same_folder_must_resume_or_rename(tiny_settings):
    config = make_train_config(tiny_settings)
    with pytest.raises(TrainingInterrupted):
        train(config, progress=_interrupt_at(2))
    with pytest.raises(ConfigError, match="--resume"):
        train(config)


def test_resume_with_other_settings_is_refused(tiny_settings):
    with pytest.raises(TrainingInterrupted):
        train(make_train_config(tiny_settings), progress=_interrupt_at(2))
    with pytest.raises(ConfigError, match="other settings"):
        train(make_train_config({**tiny_settings, "learning_rate": 0.5}), resume=True)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "adagrad"])
def test_every_optimizer_trains(tiny_settings, optimizer):
    settings = {**tiny_settings, "optimizer": optimizer, "epochs": 1, "lr_schedule": "plateau"}
    assert (train(make_train_config(settings)) / "weights.safetensors").is_file()


def test_cosine_schedule_decays_and_warms_up():
    config = make_train_config(
        {
            "name": "x",
            "images": ".",
            "masks": ".",
            "epochs": 2,
            "steps_per_epoch": 10,
            "warmup_steps": 4,
        }
    )
    factors = [lr_factor(config, s) for s in range(20)]
    assert factors[0] == pytest.approx(0.25)
    assert factors[4] == pytest.approx(1.0)
    assert factors[-1] < 0.1
    assert all(a >= b for a, b in itertools.pairwise(factors[4:]))


def test_a_time_budget_plans_the_epochs_that_fit_it():
    config = make_train_config({"name": "x", "images": ".", "masks": ".", "epochs": 100})
    budget = config.model_copy(update={"max_minutes": 10.0})

    assert epochs_in_budget(config, 1, 60.0) == 100  # no budget: the epochs asked for
    assert epochs_in_budget(budget, 0, 0.0) == 100  # nothing measured yet
    assert epochs_in_budget(budget, 1, 60.0) == 10
    assert epochs_in_budget(budget, 5, 400.0) == 7  # the machine slowed: a shorter plan
    assert epochs_in_budget(budget, 8, 620.0) == 8  # spent: stop now
    assert epochs_in_budget(budget, 1, 1.0) == 100  # never more than asked for


def test_the_schedule_ends_with_the_planned_epochs():
    config = make_train_config(
        {"name": "x", "images": ".", "masks": ".", "epochs": 10, "steps_per_epoch": 10}
    )
    assert lr_factor(config, 19, epochs=2) == pytest.approx(0.02, abs=0.01)
    assert lr_factor(config, 19) > 0.9


def test_training_stops_when_its_time_budget_is_spent(tiny_settings):
    settings = {**tiny_settings, "epochs": 50, "max_minutes": 1e-6}
    events: list[Progress] = []
    spec = read_spec(train(make_train_config(settings), progress=events.append))

    assert spec.training["epochs_done"] == 1
    assert spec.training["settings"]["max_minutes"] == 1e-6
    assert spec.training["validation_seconds"] >= 0  # the budget counts validation too
    assert [(e.done, e.total) for e in events if e.stage == "epoch"] == [(1, 1)]


def test_an_epoch_longer_than_the_time_budget_is_cut_short(tiny_settings):
    settings = {**tiny_settings, "epochs": 5, "steps_per_epoch": 40, "max_minutes": 1e-6}
    events: list[Progress] = []
    folder = train(make_train_config(settings), progress=events.append)

    assert len([e for e in events if e.stage == "train"]) == 1  # not 40 steps
    assert read_spec(folder).training["epochs_done"] == 1
    history = (folder / "history.csv").read_text().splitlines()
    assert len(history) == 2  # a header and the one epoch, with the mean of its one step


def test_without_val_folders_a_seeded_split_is_held_out(tiny_settings):
    settings = {**tiny_settings, "val_images": None, "val_masks": None, "val_fraction": 0.34}
    spec = read_spec(train(make_train_config(settings)))
    assert spec.training["data"]["n_val"] == 2
    assert spec.training["data"]["n_train"] == 4


def test_yaml_config_paths_are_relative_to_the_file(tiny_settings, tmp_path):
    import yaml

    settings = {k: (str(v) if not isinstance(v, dict) else v) for k, v in tiny_settings.items()}
    settings["out"] = "models"
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(settings))
    config = load_train_config(tmp_path / "cfg.yaml", epochs=1)
    assert config.out == tmp_path / "models"
    assert config.epochs == 1


def test_a_yaml_run_resumes_from_another_working_directory(tiny_settings, tmp_path, monkeypatch):
    import os

    import yaml

    configs = tmp_path / "configs"
    configs.mkdir()
    settings = {
        k: (
            os.path.relpath(v, configs)
            if k in ("images", "masks", "val_images", "val_masks")
            else v
        )
        for k, v in tiny_settings.items()
    }
    settings["out"] = "../models"
    (configs / "cfg.yaml").write_text(yaml.safe_dump(settings))

    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrainingInterrupted):
        train(load_train_config("configs/cfg.yaml"), progress=_interrupt_at(4))
    monkeypatch.chdir(configs)
    folder = train(load_train_config("cfg.yaml"), resume=True)
    assert read_spec(folder).training["epochs_done"] == 2


def test_an_override_changes_one_setting_of_a_section_and_keeps_the_others(tiny_settings, tmp_path):
    import yaml

    settings = {k: (str(v) if not isinstance(v, dict) else v) for k, v in tiny_settings.items()}
    settings["network"] = {"depth": 2, "base_filters": 8}
    settings["augmentation"] = {"flips": False, "noise_std": 0.1}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(settings))
    config = load_train_config(
        tmp_path / "cfg.yaml", network={"depth": 3}, augmentation={"noise_std": 0.0}
    )
    assert (config.network.depth, config.network.base_filters) == (3, 8)
    assert (config.augmentation.flips, config.augmentation.noise_std) == (False, 0.0)


def test_keyword_settings_over_a_config_object_are_validated(tiny_settings):
    import deepscope

    with pytest.raises(ConfigError, match="epochs"):
        deepscope.train(make_train_config(tiny_settings), epochs=0)


def test_bad_settings_give_one_line_errors(tiny_settings, tmp_path):
    with pytest.raises(ConfigError, match="epochs"):
        make_train_config({**tiny_settings, "epochs": 0})
    with pytest.raises(ConfigError, match="patch_size"):
        train(make_train_config({**tiny_settings, "patch_size": 30}))
    with pytest.raises(ConfigError, match="scale"):  # a class map cannot be zoomed exactly
        make_train_config({**tiny_settings, "augmentation": {"scale": [0.8, 1.2]}})
    (tmp_path / "bad.yaml").write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_train_config(tmp_path / "bad.yaml")


def test_mask_of_other_size_than_its_image_is_refused(tiny_settings, tmp_path):
    import numpy as np

    from deepscope.io import write_image

    for kind, shape in (("images", (32, 32)), ("masks", (30, 32))):
        write_image(tmp_path / kind / "a.tif", np.ones(shape, np.uint8))
    settings = {**tiny_settings, "images": tmp_path / "images", "masks": tmp_path / "masks"}
    with pytest.raises(InputError, match=r"a\.tif"):
        train(make_train_config(settings))


def test_a_training_image_with_nan_is_refused_naming_it(tiny_settings, tmp_path):
    from deepscope.io import write_image

    image = np.ones((32, 32), np.float32)
    image[3, 4] = np.nan
    write_image(tmp_path / "images" / "a.tif", image)
    write_image(tmp_path / "masks" / "a.tif", np.ones((32, 32), np.uint8))
    settings = {**tiny_settings, "images": tmp_path / "images", "masks": tmp_path / "masks"}
    with pytest.raises(InputError, match=r"training image a\.tif contains NaN"):
        train(make_train_config(settings))


def test_model_json_is_plain_json(tiny_settings):
    folder = train(make_train_config({**tiny_settings, "epochs": 1}))
    spec = json.loads((folder / "model.json").read_text())
    assert spec["format_version"] == 1
    assert spec["normalization"]["mode"] == "percentile"


def test_fine_tuning_starts_from_an_existing_model(tiny_settings, tmp_path):
    first = train(make_train_config({**tiny_settings, "out": tmp_path / "a", "epochs": 1}))
    settings = {
        **tiny_settings,
        "out": tmp_path / "b",
        "init_from": str(first),
        "learning_rate": 1e-12,
        "epochs": 1,
        "steps_per_epoch": 1,
    }
    tuned = train(make_train_config(settings))
    a = read_weights(first, read_spec(first))
    b = read_weights(tuned, read_spec(tuned))
    torch.testing.assert_close(a["head.weight"], b["head.weight"], rtol=1e-4, atol=1e-6)


def test_fine_tuning_can_add_a_style_vector_that_starts_silent(tiny_settings, tmp_path):
    from deepscope.nets import build_unet

    first = train(make_train_config({**tiny_settings, "out": tmp_path / "a", "epochs": 1}))
    plain_spec = read_spec(first)
    style_config = plain_spec.network.model_copy(update={"style": True})
    styled = build_unet(style_config)
    styled.load_state_dict(initial_weights(str(first), styled, "semantic"))
    plain = build_unet(plain_spec.network)
    plain.load_state_dict(read_weights(first, plain_spec))
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(styled.eval()(x), plain.eval()(x))

    network = {**tiny_settings.get("network", {}), "style": True}
    settings = {**tiny_settings, "out": tmp_path / "b", "init_from": str(first),
                "network": network, "epochs": 1}  # fmt: skip
    tuned = train(make_train_config(settings))
    assert read_spec(tuned).network.style


def test_fine_tuning_needs_the_same_network(tiny_settings, tmp_path):
    first = train(make_train_config({**tiny_settings, "out": tmp_path / "a", "epochs": 1}))
    settings = {
        **tiny_settings,
        "out": tmp_path / "b",
        "init_from": str(first),
        "network": {"depth": 2, "base_filters": 8},
    }
    with pytest.raises(ConfigError, match=r"\(base_filters: 4 there, 8 here\); use the same"):
        train(make_train_config(settings))
    other_task = {**tiny_settings, "out": tmp_path / "c", "init_from": str(first), "task": "flows"}
    with pytest.raises(ConfigError, match="it is a model of task 'semantic', this run trains"):
        train(make_train_config(other_task))


def test_starting_a_two_channel_training_from_a_grey_model_says_where_channels_come_from():
    from deepscope.nets import UNetConfig, build_unet
    from deepscope.train.trainer import initial_weights

    two_channels = build_unet(UNetConfig(depth=1, base_filters=2, in_channels=2, out_channels=3))
    with pytest.raises(ConfigError, match=r"in_channels: 1 there, 2 here.*come?s from the images"):
        initial_weights("unet-nuclei-fluo", two_channels, "semantic")


def write_pairs(folder, masks: list[np.ndarray], shape=(48, 48)) -> dict:
    """Images (a bright square where the mask has objects) and their masks in ``folder``."""
    from deepscope.io import write_image

    for i, mask in enumerate(masks):
        write_image(folder / "images" / f"{i}.tif", (mask > 0).astype(np.uint8) * 200 + 10)
        write_image(folder / "masks" / f"{i}.tif", mask)
    return {"images": folder / "images", "masks": folder / "masks"}


def test_masks_that_annotate_nothing_are_refused_before_training(tiny_settings, tmp_path):
    empty = write_pairs(tmp_path / "empty", [np.zeros((48, 48), np.uint16)] * 3)
    settings = {**tiny_settings, **empty, "val_images": None, "val_masks": None}
    with pytest.raises(InputError, match="no training mask holds an object"):
        train(make_train_config(settings))  # it scored AP 1.0 on nothing
    with_val = {**tiny_settings, "val_images": empty["images"], "val_masks": empty["masks"]}
    with pytest.raises(InputError, match="no validation mask holds an object"):
        train(make_train_config(with_val))


def test_validation_leaves_one_image_to_train_on_and_matches_its_channels(tiny_settings, tmp_path):
    from deepscope.io import write_image

    mask = np.zeros((48, 48), np.uint16)
    mask[10:20, 10:20] = 1
    pairs = write_pairs(tmp_path / "two", [mask, mask])
    settings = {**tiny_settings, **pairs, "val_images": None, "val_masks": None,
                "val_fraction": 0.9, "epochs": 1, "steps_per_epoch": 1}  # fmt: skip
    assert train(make_train_config(settings)).is_dir()  # 1 to train, 1 to validate
    write_image(tmp_path / "rgb" / "0.tif", np.zeros((48, 48, 3), np.uint8), axes="YXC")
    write_image(tmp_path / "rgbm" / "0.tif", mask)
    rgb_val = {**tiny_settings, "name": "rgb", "val_images": tmp_path / "rgb",
               "val_masks": tmp_path / "rgbm"}  # fmt: skip
    with pytest.raises(InputError, match="validation image 0 has 3 channel"):
        train(make_train_config(rgb_val))


def test_a_3d_training_refuses_2d_images(tiny_settings):
    with pytest.raises(InputError, match=r"is not a volume .* but the training is 3D"):
        train(make_train_config({**tiny_settings, "ndim": 3, "patch_size": 16}))


def test_n2v_validates_on_many_more_patches_unless_told(tiny_settings):
    from deepscope.tasks import get_task
    from deepscope.train.dataset import Sample
    from deepscope.train.trainer import fixed_val_batches

    image = np.random.default_rng(0).random((1, 32, 32), dtype=np.float32)
    settings = {k: v for k, v in tiny_settings.items() if k != "val_patches"}
    config = make_train_config({**settings, "patch_size": 16, "batch_size": 8})
    n2v = get_task("n2v")
    sample = Sample("a", image, n2v.make_target(image), image, np.arange(image.size))

    def patches(task, settings):
        return sum(len(x) for x, _ in fixed_val_batches([sample], settings, task))

    assert patches(n2v, config) == 1024
    assert patches(n2v, config.model_copy(update={"val_patches": 16})) == 16
    assert patches(get_task("semantic"), config) == 64
    assert patches(get_task("n2v", {"method": "blind_spot_network"}), config) == 64


def test_bfloat16_steps_train_a_float32_model_close_to_the_float32_one(tiny_settings, tmp_path):
    runs = {}
    for precision in ("float32", "bfloat16"):
        settings = {**tiny_settings, "out": tmp_path / precision, "precision": precision}
        folder = train(make_train_config(settings))
        runs[precision] = read_weights(folder, read_spec(folder))
        assert read_spec(folder).training["settings"]["precision"] == precision
    a, b = runs["float32"]["head.weight"], runs["bfloat16"]["head.weight"]
    assert b.dtype == torch.float32
    assert not torch.equal(a, b)  # the steps did run in bfloat16
    torch.testing.assert_close(a, b, rtol=0, atol=1e-3)


def test_the_loader_workers_change_the_speed_not_the_model(tiny_settings, tmp_path):
    runs = []
    for workers in (0, 2):
        settings = {**tiny_settings, "out": tmp_path / str(workers), "loader_workers": workers}
        folder = train(make_train_config(settings))
        runs.append(read_weights(folder, read_spec(folder)))
    for key in runs[0]:
        torch.testing.assert_close(runs[0][key], runs[1][key], rtol=1e-5, atol=1e-6)


def test_a_resume_with_other_settings_names_them_and_ignores_run_controls():
    from deepscope.train.trainer import changed_settings

    saved = {"seed": 1, "threads": 1, "augmentation": {"flips": True}, "task_params": {"a": 1}}
    same_but_threads = {**saved, "threads": 2, "max_minutes": 30}
    assert changed_settings(saved, same_but_threads) == ""
    other = {**saved, "seed": 2, "augmentation": {"flips": False}}
    assert changed_settings(saved, other) == (
        "seed: 1 then, 2 now, augmentation.flips: True then, False now"
    )


@pytest.mark.parametrize(
    "extra",
    [{}, {"task": "stardist", "ema_decay": 0.9, "sample_images_by": "objects"}],
    ids=["semantic", "stardist-averaged-by-objects"],
)
def test_a_signal_in_the_middle_of_a_step_stops_at_the_step_boundary(
    tiny_settings, tmp_path, monkeypatch, extra
):
    import os
    import signal

    from deepscope.train.trainer import Trainer

    tiny_settings = {**tiny_settings, **extra}
    straight = train(make_train_config({**tiny_settings, "out": tmp_path / "a"}))

    real_step = Trainer._step
    calls = []

    def step_then_ctrl_c(self, *args):
        result = real_step(self, *args)  # the weights have moved; the step is not counted yet
        calls.append(1)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    settings = {**tiny_settings, "out": tmp_path / "b"}
    monkeypatch.setattr(Trainer, "_step", step_then_ctrl_c)
    with pytest.raises(TrainingInterrupted, match="epoch 2 step 1"):
        train(make_train_config(settings))
    monkeypatch.setattr(Trainer, "_step", real_step)
    resumed = train(make_train_config(settings), resume=True)

    a = read_weights(straight, read_spec(straight))
    b = read_weights(resumed, read_spec(resumed))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_a_model_in_the_way_is_never_replaced_and_a_finished_run_is_not_redone(tiny_settings):
    folder = train(make_train_config(tiny_settings))
    spec = read_spec(folder)
    changed = spec.model_copy(update={"description": "tuned afterwards"})
    (folder / "model.json").write_text(changed.model_dump_json())
    events: list[Progress] = []
    assert train(make_train_config(tiny_settings), resume=True, progress=events.append) == folder
    assert read_spec(folder).description == "tuned afterwards"  # left as it is
    assert "finished" in events[-1].message
    other_run = {**tiny_settings, "epochs": tiny_settings["epochs"] + 1}
    with pytest.raises(ConfigError, match="trained with other settings \\(epochs: "):
        train(make_train_config(other_run), resume=True)  # not passed off as this run's

    shutil.rmtree(folder / "checkpoints")  # as a model imported or copied into the library
    for resume in (False, True):
        with pytest.raises(ConfigError, match="already holds the model 'tiny'"):
            train(make_train_config(tiny_settings), resume=resume)


def test_a_name_that_cannot_name_a_folder_is_refused_in_plain_words(tiny_settings):
    with pytest.raises(ConfigError, match="'my model' cannot be a model name: use up to"):
        make_train_config({**tiny_settings, "name": "my model"})


def test_a_time_series_to_train_on_says_to_save_each_time_point(tiny_settings, tmp_path):
    from deepscope.io import write_image

    write_image(tmp_path / "movie" / "a.tif", np.zeros((4, 48, 48), np.uint8), axes="TYX")
    settings = {**tiny_settings, "task": "n2v", "images": tmp_path / "movie", "masks": None,
                "val_images": None, "val_masks": None}  # fmt: skip
    with pytest.raises(InputError, match=r"a\.tif is a time series \(4 time points\)"):
        train(make_train_config(settings))


def test_noise2void_on_a_single_image_validates_on_that_image(tiny_settings, tmp_path):
    from deepscope.io import write_image

    noisy = np.random.default_rng(0).normal(100, 10, (48, 48)).astype(np.float32)
    write_image(tmp_path / "one" / "a.tif", noisy)
    settings = {**tiny_settings, "task": "n2v", "images": tmp_path / "one", "masks": None,
                "val_images": None, "val_masks": None, "epochs": 1}  # fmt: skip
    folder = train(make_train_config(settings))  # refused: 'need at least 2 training images'
    assert json.loads((folder / "model.json").read_text())["training"]["data"]["n_val"] == 1


@pytest.mark.parametrize("length", [1, 2, 4])
def test_a_structn2v_mask_length_must_be_odd_and_at_least_3(tiny_settings, length):
    settings = {**tiny_settings, "task": "n2v", "masks": None,
                "task_params": {"struct_length": length}}  # fmt: skip
    with pytest.raises(ConfigError, match="struct_length must be 0 \\(off\\) or odd, 3 or more"):
        make_train_config(settings)  # 1 acted as off, 2 as 3


def test_a_model_trained_on_rgb_pngs_takes_rgb_arrays_without_axes(tiny_settings, tmp_path):
    from deepscope.io import list_images, read_image, write_image
    from deepscope.zoo import load_model

    for kind in ("train", "val"):
        for path in list_images([tiny_settings[f"{'val_' if kind == 'val' else ''}images"]]):
            grey = read_image(path).data.astype(np.uint8)
            write_image(tmp_path / kind / f"{path.stem}.png", np.stack([grey] * 3, -1), "YXC")
    settings = {**tiny_settings, "images": tmp_path / "train", "val_images": tmp_path / "val",
                "epochs": 1}  # fmt: skip
    folder = train(make_train_config(settings))

    assert read_spec(folder).input_axes == "YXC"
    rgb = read_image(list_images([tmp_path / "val"])[0]).data
    assert load_model(folder).predict(rgb).labels.shape == rgb.shape[:2]
