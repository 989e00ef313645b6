"""The public API on small slices of the real DSB2018 nuclei data."""

import shutil
import warnings

import numpy as np
import pytest

import deepscope
from deepscope.errors import ConfigError, InputError
from deepscope.io import read_image

VAL_STEMS = ["0280fa8f60f6bcae", "072ff14c1d3245bf", "0acd2c223d300ea5"]  # the first three


@pytest.fixture(scope="module")
def dsb_slice(shared_data, tmp_path_factory):
    """Three validation images and masks of dsb2018/fluorescence, copied to a temp folder."""
    source = shared_data / "dsb2018" / "fluorescence" / "val"
    root = tmp_path_factory.mktemp("dsb")
    for kind in ("images", "masks"):
        (root / kind).mkdir()
        names = sorted(p.name for p in (source / kind).iterdir())
        for stem in VAL_STEMS:
            name = next(n for n in names if n.startswith(stem))
            shutil.copyfile(source / kind / name, root / kind / name)
    return root


@pytest.mark.parametrize("model", ["unet-nuclei-fluo", "stardist-nuclei-fluo"])
def test_builtin_model_segments_real_nuclei(dsb_slice, model):
    metrics = deepscope.evaluate(model, dsb_slice / "images", dsb_slice / "masks")
    assert metrics["n_images"] == 3
    assert metrics["ap@0.5"] > 0.6
    assert metrics["ap@0.5"] >= metrics["ap@0.7"] >= metrics["ap@0.9"]


def test_count_on_real_nuclei_keeps_only_objects_in_range(dsb_slice, tmp_path):
    summaries = deepscope.count_files(
        "stardist-nuclei-fluo", [dsb_slice / "images"], tmp_path, ranges=["area=50:"], split=True
    )
    assert len(summaries) == 3 and all(s["count"] > 0 for s in summaries)
    for s in summaries:
        stem = s["image"].rsplit(".", 1)[0]
        labels = read_image(tmp_path / f"{stem}_labels.tif").data
        assert labels.max() == s["count"]
        assert np.bincount(labels.ravel())[1:].min() >= 50


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"ranges": ["areaa=50:"]}, "no column 'areaa'"),
        ({"split": True, "min_split_size": 0}, "minimum split size"),
    ],
)
def test_count_settings_are_checked_before_any_image_is_segmented(
    dsb_slice, tmp_path, monkeypatch, settings, message
):
    model = deepscope.load_model("stardist-nuclei-fluo")

    def never(*_, **__):
        raise AssertionError("segmented an image before checking the settings")

    monkeypatch.setattr(model, "predict", never)
    with pytest.raises(InputError, match=message):
        deepscope.count_files(model, [dsb_slice / "images"], tmp_path / "count", **settings)
    assert not (tmp_path / "count").exists()
    with pytest.raises(ConfigError, match="--overlap must be 0 or more"):
        deepscope.count_files(model, [dsb_slice / "images"], tmp_path / "count", overlap=-8)
    assert not (tmp_path / "count").exists()


def test_count_tiles_the_image_as_predict_does(dsb_slice, tmp_path):
    model = deepscope.load_model("stardist-nuclei-fluo")
    image = read_image(dsb_slice / "images" / f"{VAL_STEMS[0]}.tif").data
    tiled = model.predict(image, tile=128, overlap=16).labels  # four blocks, little context
    assert ((tiled > 0) != (model.predict(image, tile=128).labels > 0)).any()

    deepscope.count_files(
        model, [dsb_slice / "images" / f"{VAL_STEMS[0]}.tif"], tmp_path, tile=128, overlap=16
    )

    counted = read_image(tmp_path / f"{VAL_STEMS[0]}_labels.tif").data
    np.testing.assert_array_equal(counted > 0, tiled > 0)
    assert counted.max() == len(np.unique(tiled)) - 1


def test_a_time_series_is_predicted_and_counted_time_point_by_time_point(dsb_slice, tmp_path):
    from deepscope.io import write_image

    frames = [read_image(p).data[:128, :128] for p in sorted((dsb_slice / "images").iterdir())]
    series = np.stack(frames)  # three different fields as time points
    write_image(tmp_path / "movie.tif", series, axes="TYX")
    model = deepscope.load_model("stardist-nuclei-fluo")

    deepscope.predict_files(model, [tmp_path / "movie.tif"], tmp_path / "pred")
    labels = read_image(tmp_path / "pred" / "movie_labels.tif")
    assert labels.axes == "TYX" and labels.data.shape == (3, 128, 128)
    for frame, found in zip(frames, labels.data, strict=True):
        np.testing.assert_array_equal(found, model.predict(frame).labels)

    summaries = deepscope.count_files(model, [tmp_path / "movie.tif"], tmp_path / "count")
    assert [s["frame"] for s in summaries] == [0, 1, 2]
    assert [s["count"] for s in summaries] == [int(f.max()) for f in labels.data]
    header = (tmp_path / "count" / "movie_objects.csv").read_text().splitlines()[0]
    assert header.startswith("frame,")


def test_predictions_keep_the_pixel_size_and_can_be_written_as_ome_zarr(dsb_slice, tmp_path):
    from deepscope.io import write_image

    crop = read_image(next((dsb_slice / "images").iterdir())).data[:128, :128]
    write_image(tmp_path / "cells.tif", crop, axes="YX", pixel_size={"Y": 0.65, "X": 0.65})
    model = deepscope.load_model("stardist-nuclei-fluo")

    written = deepscope.predict_files(
        model, [tmp_path / "cells.tif"], tmp_path / "pred", output_format="ome.zarr"
    )

    assert [p.name for p in written] == ["cells_labels.ome.zarr"]
    labels = read_image(written[0])
    assert labels.axes == "YX" and labels.pixel_size == {"Y": 0.65, "X": 0.65}
    np.testing.assert_array_equal(labels.data, model.predict(crop).labels)
    with pytest.raises(ConfigError, match=r"choose one of: tif, ome\.zarr"):
        deepscope.predict_files(model, [tmp_path / "cells.tif"], tmp_path, output_format="png")

    deepscope.count_files(model, [tmp_path / "cells.tif"], tmp_path / "count")
    assert read_image(tmp_path / "count" / "cells_labels.tif").pixel_size == {"Y": 0.65, "X": 0.65}


def train_tiny_semantic(images, masks, out, name, **settings):
    """A few steps of a tiny U-Net on the three images: enough to get a model package."""
    return deepscope.train(
        task="semantic",
        name=name,
        out=out,
        images=images,
        masks=masks,
        val_fraction=0.34,
        epochs=1,
        batch_size=2,
        patch_size=64,
        network={"depth": 2, "base_filters": 4},
        threads=1,
        **settings,
    )


def test_training_runs_on_real_images(dsb_slice, tmp_path):
    folder = train_tiny_semantic(
        dsb_slice / "images", dsb_slice / "masks", tmp_path, "real", steps_per_epoch=2
    )
    model = deepscope.load_model(folder)
    assert model.spec.training["data"]["n_train"] == 2


def test_per_image_table_is_refused_for_class_maps_before_predicting(dsb_slice, tmp_path):
    from deepscope.errors import InputError
    from deepscope.io import write_image

    masks = tmp_path / "classes"
    masks.mkdir()
    for path in (dsb_slice / "masks").iterdir():
        write_image(masks / path.name, (read_image(path).data > 0).astype(np.uint8))
    folder = train_tiny_semantic(
        dsb_slice / "images",
        masks,
        tmp_path,
        "class-map",
        steps_per_epoch=1,
        task_params={"instances": False, "n_classes": 2},
    )
    table = tmp_path / "per_image.csv"
    with pytest.raises(InputError, match="class maps"):
        deepscope.evaluate(folder, dsb_slice / "images", masks, per_image_csv=table)
    assert not table.exists()


def test_builtin_3d_model_segments_a_real_volume(shared_data):
    volume = read_image(shared_data / "nuclei3d" / "train" / "1135_mini.h5:raw").data
    truth = read_image(shared_data / "nuclei3d" / "train" / "1135_mini.h5:label").data
    model = deepscope.load_model("stardist-nuclei-3d", device="cpu")
    labels = model.predict(volume, tile=64, overlap=16).labels  # block-wise, 8 blocks
    assert labels.shape == volume.shape == (100, 100, 100)
    from deepscope.metrics import match_counts

    counts = match_counts(truth, labels, thresholds=(0.5,))[0]
    assert counts.ap > 0.4  # a training volume: the val volume is noise (docs/stardist.md)


def test_outputs_keep_the_spatial_axis_order_of_their_input(tmp_path):
    from deepscope.data.synthetic import synthetic_nuclei

    image, _ = synthetic_nuclei((96, 64), n=5, seed=1)
    np.save(tmp_path / "yx.npy", (image * 200).astype(np.uint8))
    np.save(tmp_path / "xy.npy", (image.T * 200).astype(np.uint8))
    yx = deepscope.predict_files("unet-nuclei-fluo", [tmp_path / "yx.npy"], tmp_path / "a")
    xy = deepscope.predict_files(
        "unet-nuclei-fluo", [tmp_path / "xy.npy"], tmp_path / "b", axes="XY"
    )
    stored = read_image(xy[0])
    assert stored.axes == "XY" and stored.data.shape == (64, 96)  # overlays its input
    np.testing.assert_array_equal(stored.data, read_image(yx[0]).data.T)

    model = deepscope.load_model("unet-nuclei-fluo")  # and so do Model.predict's results
    in_memory = model.predict((image.T * 200).astype(np.uint8), axes="XY")
    assert in_memory.labels.shape == in_memory.probabilities.shape[1:] == (64, 96)
    np.testing.assert_array_equal(in_memory.labels, stored.data)


def test_evaluate_names_a_time_series_among_its_images_or_targets(tmp_path):
    from deepscope.io import write_image

    write_image(tmp_path / "im" / "b.tif", np.random.rand(3, 64, 64).astype(np.float32), "TYX")
    write_image(tmp_path / "m" / "b.tif", np.zeros((64, 64), np.uint16), "YX")
    with pytest.raises(InputError, match=r"b.tif is a time series .* one time point per file"):
        deepscope.evaluate("flows-bacteria", tmp_path / "im", tmp_path / "m")
    write_image(tmp_path / "gt" / "b.tif", np.random.rand(3, 64, 64).astype(np.float32), "TYX")
    write_image(tmp_path / "im2" / "b.tif", np.random.rand(64, 64).astype(np.float32), "YX")
    with pytest.raises(InputError, match=r"b\.tif is a time series"):
        deepscope.evaluate("care-fmd-confocal", tmp_path / "im2", tmp_path / "gt")


def test_slices_of_a_volume_take_the_anisotropy_its_file_records():
    from deepscope.api import recorded_anisotropy
    from deepscope.io import Image

    stack = Image(np.zeros((4, 8, 8)), "ZYX", {"Z": 0.284, "Y": 0.127, "X": 0.127})
    assert recorded_anisotropy(stack, None, slices3d=True) == pytest.approx(2.236, abs=1e-3)
    assert recorded_anisotropy(stack, 1.5, slices3d=True) == 1.5  # given wins
    assert recorded_anisotropy(stack, None, slices3d=False) is None
    assert recorded_anisotropy(Image(np.zeros((4, 8, 8)), "ZYX"), None, slices3d=True) is None


def test_a_volume_with_other_voxels_than_the_3d_model_was_trained_on_is_warned_about():
    model = deepscope.load_model("stardist-nuclei-3d")  # trained on 0.284 x 0.127 x 0.127 µm
    cubic = {"Z": 0.127, "Y": 0.127, "X": 0.127}
    alike = {"Z": 0.3, "Y": 0.13, "X": 0.13}
    with pytest.warns(UserWarning, match=r"cubic\.tif: its voxels are 1\.00 times as deep"):
        model.warn_if_other_voxels(cubic, "cubic.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.warn_if_other_voxels(alike, "alike.tif")
        model.warn_if_other_voxels(None, "unknown.tif")


def test_a_crop_given_with_x_before_y_is_classified_as_it_is(shared_data):
    from deepscope.io import list_images

    crop = read_image(list_images(shared_data / "mitosis_crops" / "meta")[0]).data
    model = deepscope.load_model("mitosis-phase-classifier")
    as_stored = model.predict(crop)
    turned = model.predict(crop.transpose(1, 0, 2), axes="XYC")
    assert turned.class_name == as_stored.class_name
    np.testing.assert_allclose(turned.probabilities, as_stored.probabilities, atol=1e-6)


def test_one_channel_of_a_colour_image_is_segmented_and_every_channel_measured(dsb_slice, tmp_path):
    from deepscope.io import write_image

    grey = read_image(dsb_slice / "images" / f"{VAL_STEMS[0]}.tif").data
    colour = np.stack([np.zeros_like(grey), grey, grey // 2], axis=-1)  # nuclei in green
    write_image(tmp_path / "in" / "cells.png", colour, "YXC")
    model = deepscope.load_model("stardist-nuclei-fluo")
    expected = model.predict(grey).labels

    deepscope.predict_files(model, [tmp_path / "in"], tmp_path / "pred", channel=1)
    summaries = deepscope.count_files(model, [tmp_path / "in"], tmp_path / "count", channel=1)

    np.testing.assert_array_equal(read_image(tmp_path / "pred" / "cells_labels.tif").data, expected)
    assert summaries[0]["count"] == expected.max()
    header = (tmp_path / "count" / "cells_objects.csv").read_text().splitlines()[0]
    assert "mean_intensity_ch0" in header and "mean_intensity_ch2" in header
    with pytest.raises(InputError, match="there is no channel 3: the image has 3 channel"):
        deepscope.predict_files(model, [tmp_path / "in"], tmp_path / "p3", channel=3)
    with pytest.raises(InputError, match="counting --labels takes none"):
        deepscope.count_files(None, [tmp_path / "in"], tmp_path / "c2", labels=tmp_path / "pred",
                              channel=1)  # fmt: skip
