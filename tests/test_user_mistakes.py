"""Mistakes a user can make with the Python API and what they get: a clear error before
any work is done or anything is written, never a traceback from deep inside, never a
silently wrong result."""

import numpy as np
import pytest

import deepscope
from deepscope.count import parse_range
from deepscope.data.layout import to_spatial
from deepscope.errors import AxesError, ConfigError, InputError, ModelError
from deepscope.io import write_image
from deepscope.io.atomic import check_output_file, check_output_folder
from deepscope.metrics.restoration import check_reference
from deepscope.tasks.base import integer_mask, refuse_intensity_image
from deepscope.zoo import export_model


def test_output_files_and_folders_are_checked_before_the_work(tmp_path):
    (tmp_path / "afile").write_text("")
    assert check_output_file(tmp_path / "new" / "m.json", "--json").parent.is_dir()
    with pytest.raises(InputError, match=r"cannot write --json .* cannot create folder"):
        check_output_file(tmp_path / "afile" / "m.json", "--json")
    with pytest.raises(InputError, match=r"--json '.*' is a folder; give a file name"):
        check_output_file(tmp_path, "--json")
    with pytest.raises(InputError, match=r"--out '.*afile' is a file; give a folder"):
        check_output_folder(tmp_path / "afile", "--out")
    assert check_output_folder(tmp_path / "a" / "b", "--out").is_dir()


def test_evaluate_refuses_an_unwritable_per_image_table_before_predicting(nuclei_folders, tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(InputError, match="cannot write --per-image"):
        deepscope.evaluate(
            "unet-nuclei-fluo",
            nuclei_folders["val_images"],
            nuclei_folders["val_masks"],
            per_image_csv=tmp_path / "afile" / "rows.csv",
        )


def test_training_into_a_file_fails_before_the_first_epoch(tiny_settings, tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(InputError, match=r"--out '.*afile' is a file"):
        deepscope.train(**{**tiny_settings, "out": tmp_path / "afile"})


def test_tune_never_changes_a_builtin_model(nuclei_folders):
    with pytest.raises(ModelError, match="built-in model, which is read-only; copy it"):
        deepscope.tune(
            "unet-nuclei-fluo", nuclei_folders["val_images"], nuclei_folders["val_masks"]
        )


def test_tune_is_for_models_that_make_objects(home, nuclei_folders, tmp_path):
    copy = export_model("care-fmd-confocal", tmp_path / "care")
    with pytest.raises(ModelError, match="task 'care', which has none"):
        deepscope.tune(copy, nuclei_folders["val_images"], nuclei_folders["val_masks"])


def test_tune_needs_masks_with_objects(home, nuclei_folders, tmp_path):
    copy = export_model("unet-nuclei-fluo", tmp_path / "unet")
    empty = tmp_path / "empty_masks"
    for image in nuclei_folders["val_images"].iterdir():
        write_image(empty / image.name, np.zeros((64, 64), np.uint16))
    before = (copy / "model.json").read_text()
    events = []
    with pytest.raises(InputError, match="hold no objects"):
        deepscope.tune(copy, nuclei_folders["val_images"], empty, progress=events.append)
    assert (copy / "model.json").read_text() == before
    assert not events  # refused before predicting anything


def test_restoration_references_must_be_finite_and_not_flat():
    check_reference(np.arange(16.0).reshape(4, 4), "target a.tif")
    with pytest.raises(InputError, match=r"target a.tif is constant \(0 everywhere\)"):
        check_reference(np.zeros((4, 4)), "target a.tif")
    with pytest.raises(InputError, match="NaN or infinite"):
        check_reference(np.array([[1.0, np.nan]]), "target a.tif")


def test_evaluating_against_a_flat_target_is_refused_not_scored_perfect(tmp_path):
    images, targets = tmp_path / "images", tmp_path / "targets"
    rng = np.random.default_rng(0)
    write_image(images / "a.tif", rng.random((64, 64)).astype(np.float32))
    write_image(targets / "a.tif", np.zeros((64, 64), np.float32))
    with pytest.raises(InputError, match="target a\\.tif is constant"):
        deepscope.evaluate("care-fmd-confocal", images, targets)


def test_evaluating_a_grey_model_against_colour_targets_is_refused_in_one_line(tmp_path):
    images, targets = tmp_path / "images", tmp_path / "targets"
    rng = np.random.default_rng(0)
    write_image(images / "a.tif", rng.random((64, 64)).astype(np.float32))
    write_image(targets / "a.png", (rng.random((64, 64, 3)) * 255).astype(np.uint8))
    with pytest.raises(InputError, match=r"target a\.png has 3 channel\(s\) but 'care-fmd"):
        deepscope.evaluate("care-fmd-confocal", images, targets)


def test_masks_with_channels_or_bad_labels_name_the_file():
    with pytest.raises(AxesError, match=r"label image b.tif has axes YXC .* save one"):
        to_spatial(np.zeros((8, 8, 3), np.uint8), "YXC", 2, "label image b.tif")
    with pytest.raises(InputError, match="mask c\\.tif must hold integer labels"):
        integer_mask(np.array([[0.5, 1.0]]), "mask c.tif")
    with pytest.raises(InputError, match="mask c\\.tif must not hold negative labels"):
        integer_mask(np.array([[-1, 1]]), "mask c.tif")
    with pytest.raises(InputError, match="beyond 64-bit integers"):
        integer_mask(np.array([[0.0, 3e19]]), "mask c.tif")


def test_inputs_whose_outputs_would_overwrite_each_other_are_refused(tmp_path):
    image = np.zeros((32, 32), np.uint8)
    write_image(tmp_path / "in" / "a.tif", image)
    np.save(tmp_path / "in" / "a.npy", image)
    with pytest.raises(InputError, match="share the name 'a'"):
        deepscope.predict_files("unet-nuclei-fluo", [tmp_path / "in"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_outputs_never_replace_inputs_when_out_is_the_input_folder(tmp_path):
    folder = tmp_path / "cells"
    write_image(folder / "a.tif", np.zeros((32, 32), np.uint8))
    deepscope.predict_files("unet-nuclei-fluo", [folder], folder)  # writes a_labels.tif there
    written = (folder / "a_labels.tif").read_bytes()
    with pytest.raises(InputError, match=r"the output of a\.tif would replace the input a_labels"):
        deepscope.count_files("unet-nuclei-fluo", [folder], folder)
    assert (folder / "a_labels.tif").read_bytes() == written
    assert not (folder / "a_labels_labels.tif").exists()


def test_a_table_is_never_written_over_an_input_image(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    write_image(images / "a.tif", np.zeros((32, 32), np.uint8))
    write_image(masks / "a.tif", np.zeros((32, 32), np.uint16))
    before = (masks / "a.tif").read_bytes()
    with pytest.raises(InputError, match=r"--per-image '.*a\.tif' is one of the inputs"):
        deepscope.evaluate("unet-nuclei-fluo", images, masks, per_image_csv=masks / "a.tif")
    assert (masks / "a.tif").read_bytes() == before


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"tile": -5}, "--tile must be a positive number"),
        ({"overlap": -3}, "--overlap must be 0 or more"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
    ],
)
def test_prediction_settings_out_of_range_name_the_option(settings, message):
    model = deepscope.load_model("unet-nuclei-fluo", device="cpu")
    with pytest.raises(ConfigError, match=message):
        model.predict(np.zeros((32, 32), np.float32), **settings)


def test_tile_0_predicts_the_whole_image_in_python_as_on_the_command_line():
    model = deepscope.load_model("unet-nuclei-fluo", device="cpu")
    assert model.prediction_settings(0, None, None, None)["tile"] is None


def test_a_range_bound_must_be_a_number():
    with pytest.raises(InputError, match="not a number"):
        parse_range("area=nan:5")
    assert parse_range("area=30:").low == 30


def test_a_quality_report_against_a_flat_ground_truth_is_refused(tmp_path):
    from deepscope.report import qc_report

    rng = np.random.default_rng(0)
    write_image(tmp_path / "pred" / "a_pred.tif", rng.random((32, 32)).astype(np.float32))
    write_image(tmp_path / "gt" / "a.tif", np.ones((32, 32), np.float32))
    with pytest.raises(InputError, match="is constant"):
        qc_report(tmp_path / "pred", tmp_path / "gt", tmp_path / "qc.html")
    assert not (tmp_path / "qc.html").exists()


def test_an_error_about_one_image_of_a_folder_names_that_image(tmp_path):
    write_image(tmp_path / "in" / "good.tif", np.zeros((32, 32), np.float32))
    write_image(tmp_path / "in" / "spoilt.tif", np.full((32, 32), np.nan, np.float32))
    with pytest.raises(InputError, match=r"^spoilt\.tif: the image contains NaN"):
        deepscope.predict_files("unet-nuclei-fluo", [tmp_path / "in"], tmp_path / "out")
    for name in ("good.tif", "spoilt.tif"):
        write_image(tmp_path / "masks" / name, np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError, match=r"^spoilt\.tif: the image contains NaN"):
        deepscope.evaluate("unet-nuclei-fluo", tmp_path / "in", tmp_path / "masks")


@pytest.mark.parametrize("foreground", [1, 255])
def test_a_binary_mask_of_separate_objects_is_flagged_not_silently_scored_as_one(
    tmp_path, foreground
):
    images, masks = tmp_path / "images", tmp_path / "masks"
    binary = np.zeros((64, 64), np.uint8)
    binary[5:15, 5:15] = binary[30:40, 30:40] = 1
    write_image(images / "a.tif", (binary * 200).astype(np.uint8))
    write_image(masks / "a.tif", binary * foreground)
    expected = f"mask a\\.tif holds only 0 and {foreground} in 2 separate regions"
    with pytest.warns(UserWarning, match=expected):
        deepscope.evaluate("unet-nuclei-fluo", images, masks)


def test_the_axes_given_for_the_images_apply_to_their_masks(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    labels = np.zeros((48, 64), np.uint16)
    labels[5:15, 5:20], labels[30:40, 40:52] = 1, 2
    write_image(images / "a.tif", (labels > 0).astype(np.uint8).T * 200)  # stored as XY
    write_image(masks / "a.tif", labels.T)
    as_stored = deepscope.evaluate("unet-nuclei-fluo", images, masks)
    given = deepscope.evaluate("unet-nuclei-fluo", images, masks, axes="XY")
    assert given["ap@0.5"] == as_stored["ap@0.5"] > 0  # not the image turned against its mask


def _noisy_nuclei(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    image = 20 + 100 * (((yy - 30) ** 2 + (xx - 40) ** 2) < 150)
    return (image + rng.normal(0, 8, image.shape)).clip(0, 255).astype(np.uint8)


def test_an_intensity_image_given_as_labels_is_refused_not_counted(tmp_path):
    images = tmp_path / "images"
    write_image(images / "a.tif", _noisy_nuclei())
    with pytest.raises(InputError, match=r"label image a\.tif looks like an intensity image"):
        deepscope.count_files(None, [images], tmp_path / "out", labels=images)
    assert not (tmp_path / "out" / "a_objects.csv").exists()


def test_an_intensity_image_given_as_masks_is_refused_not_scored(tmp_path):
    images = tmp_path / "images"
    write_image(images / "a.tif", _noisy_nuclei())
    with pytest.raises(InputError, match=r"mask a\.tif looks like an intensity image"):
        deepscope.evaluate("stardist-nuclei-fluo", images, images)


def test_two_label_files_for_one_image_are_refused_not_picked_silently(tmp_path):
    labels = np.zeros((32, 32), np.uint16)
    labels[4:12, 4:12] = 1
    write_image(tmp_path / "images" / "a.tif", (labels * 100).astype(np.uint8))
    write_image(tmp_path / "labels" / "a.tif", labels)
    write_image(tmp_path / "labels" / "a_labels.tif", labels)
    with pytest.raises(InputError, match=r"both a\.tif and a_labels\.tif .* keep one"):
        deepscope.count_files(None, [tmp_path / "images"], tmp_path / "out",
                              labels=tmp_path / "labels")  # fmt: skip


def test_labels_of_a_two_channel_file_without_axes_say_to_pass_cyx(tmp_path):
    labels = np.zeros((32, 32), np.uint16)
    labels[4:12, 4:12] = 1
    np.save(tmp_path / "a.npy", np.stack([labels * 100, labels * 50]))  # read as ZYX
    write_image(tmp_path / "labels" / "a_labels.tif", labels)
    with pytest.raises(InputError, match=r"has shape \(32, 32\) .* pass --axes CYX"):
        deepscope.count_files(None, [tmp_path / "a.npy"], tmp_path / "out",
                              labels=tmp_path / "labels")  # fmt: skip
    counted = deepscope.count_files(None, [tmp_path / "a.npy"], tmp_path / "out",
                                    labels=tmp_path / "labels", axes="CYX")  # fmt: skip
    assert counted[0]["count"] == 1


def test_label_images_with_cut_and_touching_objects_are_taken_as_labels():
    labels = np.kron(np.arange(1, 145).reshape(12, 12), np.ones((8, 8), np.uint16))
    labels[:, 4::8] = 0  # 144 touching squares, each cut in two by a line of background
    refuse_intensity_image(labels, "labels")


def test_a_batch_can_go_on_past_a_bad_image_and_say_which(tmp_path):
    folder = tmp_path / "in"
    write_image(folder / "a.tif", np.zeros((32, 32), np.uint8))
    (folder / "b.tif").write_bytes(b"not a tiff")
    write_image(folder / "c.tif", np.zeros((32, 32), np.uint8))
    skipped = []
    written = deepscope.predict_files(
        "unet-nuclei-fluo", [folder], tmp_path / "out", on_error=lambda p, e: skipped.append(p)
    )
    assert [p.name for p in written] == ["a_labels.tif", "c_labels.tif"]
    assert [p.name for p in skipped] == ["b.tif"]
    rows = deepscope.count_files(
        "unet-nuclei-fluo", [folder], tmp_path / "counts", on_error=lambda p, e: None
    )
    assert [r["image"] for r in rows] == ["a.tif", "c.tif"]
    with pytest.raises(InputError, match=r"b\.tif"):  # without on_error the batch stops
        deepscope.predict_files("unet-nuclei-fluo", [folder], tmp_path / "out2")


def test_a_training_into_the_library_may_not_take_a_builtin_name(home, tiny_settings):
    settings = {**tiny_settings, "out": None, "name": "unet-nuclei-fluo"}
    with pytest.raises(ConfigError, match="name of a built-in model"):
        deepscope.train(**settings)
    with pytest.raises(ConfigError, match="learning_rate"):
        deepscope.train(**{**tiny_settings, "learning_rate": float("inf")})


def test_int8_for_a_crop_classifier_is_refused_without_pointing_to_quantize():
    with pytest.raises(ConfigError, match="crop classifiers and autoencoders have no int8"):
        deepscope.load_model("mitosis-phase-classifier", precision="int8")


def test_tune_that_finds_no_object_right_stores_nothing(tmp_path):
    model = export_model("unet-nuclei-fluo", tmp_path / "unet")
    before = (model / "model.json").read_text()
    labels = np.zeros((64, 64), np.uint16)
    labels[10:20, 10:20], labels[40:50, 40:50] = 1, 2
    write_image(tmp_path / "images" / "a.tif", np.zeros((64, 64), np.uint8))  # nothing to see
    write_image(tmp_path / "masks" / "a.tif", labels)
    with pytest.raises(InputError, match=r"at any threshold \(AP@0.5 0, against 0.8"):
        deepscope.tune(str(model), tmp_path / "images", tmp_path / "masks")
    assert (model / "model.json").read_text() == before


def test_an_array_given_where_files_are_read_says_what_to_use_instead(tmp_path):
    image = np.zeros((32, 32), np.float32)
    for call in (
        lambda: deepscope.predict_files("unet-nuclei-fluo", image, tmp_path),
        lambda: deepscope.count_files("unet-nuclei-fluo", [image], tmp_path),
        lambda: deepscope.evaluate("unet-nuclei-fluo", [image], [image]),
    ):
        with pytest.raises(
            InputError, match=r"got (an array|a list); .*load_model\(NAME\)\.predict"
        ):
            call()


def test_int8_without_an_int8_network_points_to_quantize_only_where_it_applies():
    import torch

    from deepscope.predict.backends import use_int8

    cpu = torch.device("cpu")
    with pytest.raises(ConfigError, match="make one with 'deepscope models quantize"):
        use_int8("int8", "auto", cpu, available=False)
    with pytest.raises(ConfigError, match="cannot get one") as refused:
        use_int8("int8", "auto", cpu, available=False, quantizable=False)
    assert "quantize MODEL" not in str(refused.value)


def test_evaluating_a_2d_model_on_volumes_says_so_not_that_the_masks_are_wrong(tmp_path):
    volume = np.zeros((4, 32, 32), np.uint8)
    write_image(tmp_path / "images" / "v.tif", volume, "ZYX")
    write_image(tmp_path / "masks" / "v.tif", volume, "ZYX")
    with pytest.raises(InputError, match=r"^v\.tif: this model takes 2D images .*--slices3d"):
        deepscope.evaluate("unet-nuclei-fluo", tmp_path / "images", tmp_path / "masks")
