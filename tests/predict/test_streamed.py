"""Streamed prediction: an image on disk read, predicted and written block by block gives
the labels of an in-memory prediction with the same tile and overlap."""

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from deepscope.api import predict_files
from deepscope.cli.main import app
from deepscope.errors import ConfigError, InputError
from deepscope.io import read_image
from deepscope.io.lazy import open_image
from deepscope.predict.predictor import Predictor
from deepscope.predict.streamed import predict_pixels_streamed, predict_streamed
from deepscope.tasks import SemanticTask
from deepscope.zoo import load_model

VAL_IMAGE = "dsb2018/fluorescence/val/images/538b7673d507014d.tif"  # 603 x 1272, ~200 nuclei


@pytest.fixture(scope="module")
def flows_model():
    return load_model("flows-nuclei-fluo")


@pytest.fixture
def nuclei_tiff(shared_data, tmp_path):
    """A real field of nuclei (a 500 x 700 crop) as a tiled, compressed TIFF."""
    image = tifffile.imread(shared_data / VAL_IMAGE)[:500, :700]
    path = tmp_path / "field.tif"
    tifffile.imwrite(path, image, tile=(128, 128), compression="zlib")
    return path, image


def test_streamed_labels_equal_the_in_memory_prediction(flows_model, nuclei_tiff):
    path, image = nuclei_tiff
    expected = flows_model.predict(image, "YX", tile=256, overlap=48)
    labels = np.zeros(image.shape, np.int32)
    probability = np.zeros((1, *image.shape), np.float32)
    with open_image(path) as lazy:
        n = predict_streamed(
            flows_model.predictor, lazy, labels, 256, 48, probabilities=probability
        )
    assert n == expected.labels.max() > 50
    np.testing.assert_array_equal(labels, expected.labels)
    np.testing.assert_array_equal(probability, expected.probabilities)


def test_predict_files_streams_to_ome_zarr(flows_model, nuclei_tiff, tmp_path):
    path, image = nuclei_tiff
    written = predict_files(
        flows_model, [path], tmp_path / "out", tile=256, output_format="ome.zarr", stream=True
    )
    assert [p.name for p in written] == ["field_labels.ome.zarr"]
    expected = flows_model.predict(image, "YX", tile=256)
    np.testing.assert_array_equal(read_image(written[0]).data, expected.labels)


def test_the_cli_streams_with_probabilities(nuclei_tiff, tmp_path):
    path, _ = nuclei_tiff
    out = tmp_path / "out"
    args = ["predict", "flows-nuclei-fluo", str(path), "--out", str(out), "--stream"]
    result = CliRunner().invoke(
        app, [*args, "--format", "ome.zarr", "--tile", "384", "--probabilities"]
    )
    assert result.exit_code == 0, result.output
    assert read_image(out / "field_prob.ome.zarr").axes == "CYX"
    assert read_image(out / "field_labels.ome.zarr").data.max() > 50


def test_streaming_needs_ome_zarr_output(flows_model, nuclei_tiff, tmp_path):
    with pytest.raises(ConfigError, match=r"--format ome\.zarr"):
        predict_files(flows_model, [nuclei_tiff[0]], tmp_path, stream=True)


def test_options_that_need_the_whole_image_are_refused(flows_model, nuclei_tiff, tmp_path):
    with pytest.raises(ConfigError, match="--diameter needs the whole image"):
        predict_files(
            flows_model,
            [nuclei_tiff[0]],
            tmp_path,
            output_format="ome.zarr",
            stream=True,
            diameter=20,
        )


def test_star_convex_labels_stream_alike(nuclei_tiff):
    path, image = nuclei_tiff
    model = load_model("stardist-nuclei-fluo")
    expected = model.predict(image, "YX", tile=256, overlap=64).labels
    labels = np.zeros(image.shape, np.int32)
    with open_image(path) as lazy:
        n = predict_streamed(model.predictor, lazy, labels, 256, 64)
    assert n == expected.max() > 50
    np.testing.assert_array_equal(labels, expected)


@pytest.fixture
def noisy_tiff(shared_data, tmp_path):
    """A real noisy confocal field (512 x 512) as a tiled TIFF."""
    image = tifffile.imread(shared_data / "fmd_confocal_bpae_b/fov10/noisy_00.tif")
    path = tmp_path / "noisy.tif"
    tifffile.imwrite(path, image, tile=(128, 128))
    return path, image


def assemble(pieces, shape, field):
    """The pieces of a streamed pixel prediction put together into one array."""
    out = None
    for core, result in pieces:
        piece = getattr(result, field)
        if out is None:
            out = np.zeros((*piece.shape[: piece.ndim - len(shape)], *shape), piece.dtype)
        out[(Ellipsis, *core)] = piece
    return out


def test_a_restoration_streams_like_the_whole_image(noisy_tiff):
    path, image = noisy_tiff
    model = load_model("care-fmd-confocal")
    whole = model.predict(image, "YX", tile=None).image
    with open_image(path) as lazy:
        pieces = list(predict_pixels_streamed(model.predictor, lazy, 192, 64))
    assert len(pieces) == 9
    streamed = assemble(pieces, image.shape, "image")
    assert streamed.dtype == np.float32
    # the same intensity units (whole-image percentiles) and, as the network sees less
    # than the 64-pixel halo, the same pixels up to float rounding
    spread = np.percentile(whole, 99.8) - np.percentile(whole, 1)
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-5 * spread)


def test_a_halo_narrower_than_the_network_sees_shows_at_block_borders(noisy_tiff):
    path, image = noisy_tiff
    model = load_model("care-fmd-confocal")
    whole = model.predict(image, "YX", tile=None).image
    with open_image(path) as lazy:
        streamed = assemble(
            predict_pixels_streamed(model.predictor, lazy, 192, 8), image.shape, "image"
        )
    spread = np.percentile(whole, 99.8) - np.percentile(whole, 1)
    assert 1e-3 * spread < np.abs(streamed - whole).max() < 0.1 * spread


def test_a_class_map_streams_like_the_whole_image(nuclei_tiff):
    path, image = nuclei_tiff
    unet = load_model("unet-nuclei-fluo").predictor
    classes_only = Predictor(
        unet.net, SemanticTask({"instances": False, "n_classes": 3}), unet.normalization
    )
    whole = classes_only.predict(image, "YX", tile=None)
    with open_image(path) as lazy:
        pieces = list(predict_pixels_streamed(classes_only, lazy, 256, 96))
    assert pieces[0][1].labels is None
    classes = assemble(pieces, image.shape, "classes")
    assert classes.dtype == np.uint8
    assert np.mean(classes != whole.classes) < 1e-4
    probabilities = assemble(pieces, image.shape, "probabilities")
    np.testing.assert_allclose(probabilities, whole.probabilities, rtol=0, atol=1e-4)


def test_the_cli_streams_a_restoration_to_ome_zarr(noisy_tiff, tmp_path):
    path, image = noisy_tiff
    out = tmp_path / "out"
    args = ["predict", "n2v-fmd-confocal", str(path), "--out", str(out), "--stream"]
    result = CliRunner().invoke(app, [*args, "--format", "ome.zarr", "--tile", "256"])
    assert result.exit_code == 0, result.output
    written = read_image(out / "noisy_pred.ome.zarr")
    assert written.axes == "YX" and written.data.shape == image.shape
    expected = load_model("n2v-fmd-confocal").predict(image, "YX", tile=None).image
    assert np.corrcoef(written.data.ravel(), expected.ravel())[0, 1] > 0.999


def test_a_crop_classifier_is_refused(tmp_path):
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint8))
    with pytest.raises(ConfigError, match="cell crops: leave out --stream"):
        predict_files(
            "mitosis-phase-classifier",
            [path],
            tmp_path / "o",
            output_format="ome.zarr",
            stream=True,
        )


def test_a_folder_that_is_not_a_store_is_never_replaced_by_an_output(flows_model, nuclei_tiff):
    path, _ = nuclei_tiff
    out = path.parent / "out"
    notes = out / "field_labels.ome.zarr" / "notes.txt"
    notes.parent.mkdir(parents=True)
    notes.write_text("precious")
    for stream in (True, False):
        with pytest.raises(InputError, match="a folder of that name exists and is not a Zarr"):
            predict_files(
                flows_model, [path], out, tile=256, output_format="ome.zarr", stream=stream
            )
    assert notes.read_text() == "precious"


def test_a_file_given_as_out_is_refused_before_any_work(flows_model, nuclei_tiff):
    path, _ = nuclei_tiff
    (path.parent / "out").write_text("not a folder")
    with pytest.raises(InputError, match=r"--out .* is a file; give a folder"):
        predict_files(
            flows_model, [path], path.parent / "out", output_format="ome.zarr", stream=True
        )


def test_values_too_small_for_float32_are_refused_when_streamed_too(flows_model, tmp_path):
    path = tmp_path / "faint.tif"
    tifffile.imwrite(path, np.full((64, 64), 1e-300), tile=(32, 32))
    with pytest.raises(InputError, match="below float32's smallest normal number"):
        predict_files(flows_model, [path], tmp_path / "o", output_format="ome.zarr", stream=True)
    assert not (tmp_path / "o").exists()  # a failed run leaves no empty output folder


def test_a_time_series_is_refused_with_advice(flows_model, tmp_path):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(
        path, np.zeros((3, 64, 64), np.uint8), photometric="minisblack", metadata={"axes": "TYX"}
    )
    with pytest.raises(InputError, match="time series"):
        predict_files(flows_model, [path], tmp_path / "o", output_format="ome.zarr", stream=True)


def test_wrong_channel_count_is_refused(flows_model, tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.zeros((64, 64, 3), np.uint8), photometric="rgb")
    with pytest.raises(InputError, match="expects 1 channel"):
        predict_files(flows_model, [path], tmp_path / "o", output_format="ome.zarr", stream=True)


def test_a_3d_volume_streams_from_hdf5(shared_data):
    path = f"{shared_data / 'nuclei3d/val/1137_mini.h5'}:raw"
    model = load_model("stardist-nuclei-3d")
    volume = read_image(path)
    expected = model.predict(volume.data, volume.axes).labels
    labels = np.zeros(expected.shape, np.int32)
    with open_image(path) as lazy:
        assert lazy.axes == "ZYX"
        n = predict_streamed(model.predictor, lazy, labels, 160, 48)
    assert n == expected.max() > 0
    np.testing.assert_array_equal(labels, expected)
