"""Training, applying and scoring a crop classifier, through the API and the command line."""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from deepscope.api import count_files, evaluate, load_model, predict_files, train
from deepscope.data.synthetic import synthetic_nuclei
from deepscope.errors import ConfigError, InputError
from deepscope.io import read_image, write_image


def shape_crop(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A 24x24 crop of a round blob or a horizontal bar, placed and lit at random."""
    yy, xx = np.mgrid[:24, :24]
    cy, cx = 12 + rng.integers(-2, 3, size=2)
    if kind == "round":
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < 25
    else:
        inside = (abs(yy - cy) < 2) & (abs(xx - cx) < 9)
    crop = inside * rng.uniform(120, 220) + rng.normal(20, 5, size=(24, 24))
    return np.clip(crop, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def crop_folder(tmp_path_factory):
    """Class sub-folders 'bar' (12 crops) and 'round' (6 crops): imbalanced on purpose."""
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    for kind, n in (("bar", 12), ("round", 6)):
        for i in range(n):
            write_image(root / kind / f"{kind}{i}.png", shape_crop(kind, rng))
    return root


def classify_settings(crop_folder, out, **extra):
    return {
        "task": "classify",
        "name": "shapes",
        "out": out,
        "images": crop_folder,
        "task_params": {"crop_size": 24, "max_shift": 1},
        "network": {"depth": 2, "base_filters": 8, "dropout": 0.0},
        "batch_size": 8,
        "epochs": 3,
        "steps_per_epoch": 12,
        "val_fraction": 0.34,
        "learning_rate": 0.003,
        "threads": 1,
        "device": "cpu",
        **extra,
    }


@pytest.fixture(scope="module")
def shapes_model(crop_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    return train(**classify_settings(crop_folder, out))


def test_training_writes_a_classifier_with_its_reports(shapes_model):
    files = {p.name for p in shapes_model.iterdir()}
    assert {"model.json", "weights.safetensors", "confusion.png", "per_class.csv"} <= files
    spec = json.loads((shapes_model / "model.json").read_text())
    assert spec["task_params"]["classes"] == ["bar", "round"]
    assert spec["network"]["kind"] == "classifier"
    assert spec["training"]["data"]["split"] == "stratified, seed 0"
    assert spec["validation"]["n_images"] == 6  # 4 of 12 bars and 2 of 6 rounds held out
    assert spec["validation"]["accuracy"] >= 5 / 6
    with open(shapes_model / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and {"train_accuracy", "val_accuracy"} <= set(rows[0])


def test_one_crop_per_class_leaves_none_to_validate_on_and_says_so(tmp_path):
    rng = np.random.default_rng(1)
    for kind in ("bar", "round"):
        write_image(tmp_path / "one" / kind / f"{kind}.png", shape_crop(kind, rng))
    settings = classify_settings(tmp_path / "one", tmp_path / "models")
    with pytest.raises(InputError, match="every class folder holds one crop"):
        train(**settings)


def test_crops_of_mixed_channels_or_a_model_among_the_class_folders_are_refused(tmp_path):
    rng = np.random.default_rng(2)
    write_image(tmp_path / "mixed" / "bar" / "grey.png", shape_crop("bar", rng))
    write_image(tmp_path / "mixed" / "round" / "rgb.png",
                np.repeat(shape_crop("round", rng)[..., None], 3, axis=-1), axes="YXC")  # fmt: skip
    with pytest.raises(InputError, match=r"\(grey\.png has 1, rgb\.png has 3\)"):
        train(**classify_settings(tmp_path / "mixed", tmp_path / "m"))
    with pytest.raises(InputError, match=r"the model folder .* is inside the input folder"):
        train(**classify_settings(tmp_path / "mixed", tmp_path / "mixed"))


def test_a_loaded_classifier_names_the_class_of_a_crop(shapes_model):
    model = load_model(shapes_model, device="cpu")
    rng = np.random.default_rng(42)
    assert model.predict(shape_crop("round", rng)).class_name == "round"
    result = model.predict(shape_crop("bar", rng), tta=True)
    assert result.class_name == "bar" and result.probabilities.shape == (2,)
    with pytest.raises(InputError, match="expects 1 channel"):
        model.predict(np.zeros((24, 24, 3), np.uint8), axes="YXC")


def test_a_batch_of_crops_skips_a_bad_one_when_asked_and_names_it(
    shapes_model, crop_folder, tmp_path
):
    folder = tmp_path / "crops"
    shutil.copytree(crop_folder / "round", folder)
    (folder / "broken.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputError, match=r"broken\.tif"):
        predict_files(shapes_model, [folder], tmp_path / "stopped")
    skipped = []
    (table,) = predict_files(
        shapes_model, [folder], tmp_path / "pred", on_error=lambda p, e: skipped.append(p.name)
    )
    with open(table) as fh:
        assert len(list(csv.DictReader(fh))) == 6 and skipped == ["broken.tif"]
    only_broken = tmp_path / "broken"
    only_broken.mkdir()
    (only_broken / "broken.tif").write_bytes(b"not a tiff")
    (empty,) = predict_files(shapes_model, [only_broken], tmp_path / "none", on_error=print)
    assert empty.read_text().strip() == "file,class,prob_bar,prob_round"  # not a lone 'label'


def test_predict_writes_one_table_and_evaluate_scores_class_folders(
    shapes_model, crop_folder, tmp_path
):
    written = predict_files(shapes_model, [crop_folder / "round"], tmp_path / "pred")
    assert written == [tmp_path / "pred" / "predictions.csv"]
    with open(written[0]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and set(rows[0]) == {"file", "class", "prob_bar", "prob_round"}
    metrics = evaluate(shapes_model, crop_folder, per_image_csv=tmp_path / "per_crop.csv")
    assert metrics["n_images"] == 18 and metrics["accuracy"] > 0.8
    assert {"macro_f1", "f1/bar", "recall/round"} <= set(metrics)
    with pytest.raises(InputError, match="drop --masks"):
        evaluate(shapes_model, crop_folder, crop_folder)


def test_evaluate_scores_a_folder_of_one_class(shapes_model, crop_folder, tmp_path):
    import shutil

    shutil.copytree(crop_folder / "round", tmp_path / "only" / "round")

    metrics = evaluate(shapes_model, tmp_path / "only")

    assert metrics["n_images"] == metrics["support/round"] == 6 and metrics["support/bar"] == 0
    assert metrics["accuracy"] == metrics["recall/round"] == metrics["balanced_accuracy"]


def test_count_adds_class_columns_for_each_segmented_object(shapes_model, tmp_path):
    image, labels = synthetic_nuclei((96, 96), n=4, seed=5)
    write_image(tmp_path / "in" / "cells.tif", (image * 200).astype(np.uint8))
    write_image(tmp_path / "in" / "cells_mask.tif", labels.astype(np.uint16))
    # a label image as 'segmentation model' is not supported; segment with the built-in
    summaries = count_files(
        "unet-nuclei-fluo",
        [tmp_path / "in" / "cells.tif"],
        tmp_path / "out",
        classifier=shapes_model,
    )
    assert {"count_bar", "count_round"} <= set(summaries[0])
    assert summaries[0]["count_bar"] + summaries[0]["count_round"] == summaries[0]["count"]
    with open(tmp_path / "out" / "cells_objects.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {"class", "prob_bar", "prob_round"} <= set(rows[0])
    write_image(tmp_path / "dark" / "dark.tif", np.zeros((64, 64), np.uint8))
    count_files("unet-nuclei-fluo", [tmp_path / "dark"], tmp_path / "dark_out",
                classifier=shapes_model)  # fmt: skip
    header = (tmp_path / "dark_out" / "dark_objects.csv").read_text().strip().split(",")
    assert header[:2] == ["label", "centroid_y"] and header[-3:] == ["class", "prob_bar",
                                                                      "prob_round"]  # fmt: skip
    with pytest.raises(InputError, match="not a classifier"):
        count_files(
            "unet-nuclei-fluo", [tmp_path / "in"], tmp_path / "o2", classifier="unet-nuclei-fluo"
        )


def test_count_sees_each_object_as_the_training_crops_were_seen(crop_folder, tmp_path):
    """A classifier of 16-pixel crops trained on 24-pixel files normalises each 24-pixel
    file before taking its centre; count must cut the same 24 pixels around an object."""
    small = train(**classify_settings(crop_folder, tmp_path / "m", name="small",
                                      task_params={"crop_size": 16, "max_shift": 1},
                                      epochs=1, steps_per_epoch=4))  # fmt: skip
    assert json.loads((small / "model.json").read_text())["task_params"]["window"] == 24
    files = sorted((crop_folder / "bar").glob("*.png"))[:3]
    tiles = np.concatenate([read_image(f).data for f in files], axis=1)  # 24 x 72
    labels = np.zeros(tiles.shape, np.uint16)
    for i in range(3):
        labels[10:15, 24 * i + 10 : 24 * i + 15] = i + 1  # centred on each tile
    write_image(tmp_path / "img" / "row.tif", tiles)
    write_image(tmp_path / "lab" / "row_labels.tif", labels)
    count_files(None, [tmp_path / "img"], tmp_path / "out", labels=tmp_path / "lab",
                classifier=small)  # fmt: skip
    with open(tmp_path / "out" / "row_objects.csv") as fh:
        counted = [float(r["prob_bar"]) for r in csv.DictReader(fh)]
    model = load_model(small)
    alone = [float(model.predict(read_image(f).data).probabilities[0]) for f in files]
    np.testing.assert_allclose(counted, alone, atol=1e-4)


def test_count_classifies_the_objects_of_given_label_images(shapes_model, tmp_path):
    image, labels = synthetic_nuclei((96, 96), n=4, seed=7)
    write_image(tmp_path / "img" / "field.tif", (image * 200).astype(np.uint8))
    write_image(tmp_path / "lab" / "field_labels.tif", labels.astype(np.uint16))
    done = subprocess.run(
        [sys.executable, "-m", "deepscope", "count", tmp_path / "img", "--labels",
         tmp_path / "lab", "--classify", shapes_model, "--out", tmp_path / "out"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "out" / "field_objects.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(np.unique(labels)) - 1
    assert all(r["class"] in ("bar", "round") for r in rows)
    write_image(tmp_path / "other" / "another_field.tif", labels.astype(np.uint16))
    with pytest.raises(InputError, match=r"no label image for field\.tif"):
        count_files(None, [tmp_path / "img"], tmp_path / "o", labels=tmp_path / "other")


def test_count_keeps_the_objects_in_a_range_of_class_probability(shapes_model, tmp_path):
    image, labels = synthetic_nuclei((96, 96), n=6, seed=7)
    write_image(tmp_path / "img" / "field.tif", (image * 200).astype(np.uint8))
    write_image(tmp_path / "lab" / "field_labels.tif", labels.astype(np.uint16))
    every = count_files(None, [tmp_path / "img"], tmp_path / "all", labels=tmp_path / "lab",
                        classifier=shapes_model)  # fmt: skip
    kept = count_files(None, [tmp_path / "img"], tmp_path / "round", labels=tmp_path / "lab",
                       classifier=shapes_model, ranges=["prob_round=0.5:"])  # fmt: skip
    assert kept[0]["count"] == every[0]["count_round"] == kept[0]["count_round"]
    with open(tmp_path / "round" / "field_objects.csv") as fh:
        assert all(float(row["prob_round"]) >= 0.5 for row in csv.DictReader(fh))
    with pytest.raises(InputError, match="no column 'prob_oval'"):
        count_files(None, [tmp_path / "img"], tmp_path / "x", labels=tmp_path / "lab",
                    classifier=shapes_model, ranges=["prob_oval=0.5:"])  # fmt: skip


def test_count_refuses_a_classifier_of_other_channels_before_segmenting(shapes_model, tmp_path):
    image, labels = synthetic_nuclei((96, 96), n=4, seed=7)
    colour = np.repeat((image * 200).astype(np.uint8)[..., None], 3, axis=-1)
    write_image(tmp_path / "img" / "field.tif", colour, "YXC")
    write_image(tmp_path / "lab" / "field_labels.tif", labels.astype(np.uint16))
    with pytest.raises(InputError, match=r"field\.tif: the classifier 'shapes' takes images of "
                       r"1 channel\(s\) and this image has 3"):  # fmt: skip
        count_files(None, [tmp_path / "img"], tmp_path / "out", labels=tmp_path / "lab",
                    classifier=shapes_model)  # fmt: skip
    assert not (tmp_path / "out" / "field_objects.csv").exists()


def test_classify_refuses_masks_and_classes_that_disagree_with_the_folders(crop_folder, tmp_path):
    with pytest.raises(ConfigError, match="drop --masks"):
        train(**classify_settings(crop_folder, tmp_path, masks=crop_folder))
    settings = classify_settings(crop_folder, tmp_path)
    settings["task_params"] = {"classes": ["x", "y"]}
    with pytest.raises(ConfigError, match="differ from the class folders"):
        train(**settings)


def test_interrupted_classifier_training_resumes(crop_folder, tmp_path):
    settings = classify_settings(crop_folder, tmp_path, epochs=2, steps_per_epoch=4)
    stopped = {"n": 0}

    def stop_after_five(event):
        if event.stage == "train":
            stopped["n"] += 1
            if stopped["n"] == 5:
                raise KeyboardInterrupt

    from deepscope.train.trainer import TrainingInterrupted

    with pytest.raises(TrainingInterrupted):
        train(progress=stop_after_five, checkpoint_every=1, **settings)
    folder = train(resume=True, checkpoint_every=1, **settings)
    spec = json.loads((folder / "model.json").read_text())
    assert spec["training"]["epochs_done"] == 2


def test_command_line_trains_predicts_and_evaluates_a_classifier(crop_folder, tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "deepscope", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "DEEPSCOPE_HOME": str(tmp_path / "home")},
        )

    done = run(
        "train",
        "classify",
        "--images",
        crop_folder,
        "--name",
        "cli-shapes",
        "--out",
        tmp_path,
        "--epochs",
        1,
        "--steps",
        3,
        "--batch-size",
        4,
        "--threads",
        1,
        "--device",
        "cpu",
        "--set",
        "task_params.crop_size=24",
        "--set",
        "network.depth=2",
        "--set",
        "network.base_filters=4",
    )
    assert done.returncode == 0, done.stderr
    assert "macro F1" in done.stdout
    model = tmp_path / "cli-shapes"
    done = run("predict", model, crop_folder / "bar", "--out", tmp_path / "pred")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pred" / "predictions.csv").is_file()
    done = run("evaluate", model, "--images", crop_folder, "--json", tmp_path / "m.json")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "m.json").read_text())["n_images"] == 18
    done = run("train", "classify", "--images", crop_folder / "bar", "--name", "flat")
    assert done.returncode != 0 and "one sub-folder per class" in done.stderr
    assert "Traceback" not in done.stderr


def test_mitosis_crops_train_a_classifier_that_beats_chance(shared_data, tmp_path):
    """Integration on real crops: three classes, ten crops each, a minute of training."""
    import shutil

    root = tmp_path / "crops"
    for cls in ("inter", "meta", "apo"):
        files = sorted((shared_data / "mitosis_crops" / cls).glob("*.png"))[:10]
        (root / cls).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / cls / f.name)
    folder = train(
        task="classify",
        name="mito",
        out=tmp_path / "m",
        images=root,
        network={"depth": 3, "base_filters": 8},
        batch_size=16,
        epochs=4,
        steps_per_epoch=10,
        val_fraction=0.3,
        threads=1,
        device="cpu",
        learning_rate=0.003,
    )
    spec = json.loads((folder / "model.json").read_text())
    assert spec["network"]["in_channels"] == 3 and spec["input_axes"] == "YXC"
    assert spec["validation"]["n_images"] == 9
    assert spec["validation"]["accuracy"] > 1 / 3


def test_a_classifier_exports_to_bioimageio_and_comes_back_the_same(shapes_model, tmp_path):
    from deepscope.zoo import export_model
    from deepscope.zoo.bioimageio import reproduce_test_tensors

    folder = export_model(str(shapes_model), tmp_path / "bio", format="bioimageio")
    rdf = (folder / "rdf.yaml").read_text()
    assert "bar_logit" in rdf and "round_logit" in rdf
    assert max(reproduce_test_tensors(folder).values()) < 1e-4


def test_a_classifier_fine_tunes_from_a_trained_one(shapes_model, crop_folder, tmp_path):
    tuned = train(**classify_settings(crop_folder, tmp_path, init_from=str(shapes_model), epochs=1))
    assert json.loads((tuned / "model.json").read_text())["network"]["kind"] == "classifier"
