"""Images opened without reading their pixels, read one window at a time."""

import numpy as np
import pytest
import tifffile

from deepscope.errors import InputError
from deepscope.io import read_image, write_image
from deepscope.io.lazy import open_image
from deepscope.io.zarr_io import write_zarr, zarr_writer


@pytest.fixture
def tiled_tiff(tmp_path):
    """A 300 x 200 uint16 TIFF in compressed 64² tiles with a pixel size of 0.5 µm."""
    data = np.arange(300 * 200, dtype=np.uint16).reshape(300, 200)
    tifffile.imwrite(
        tmp_path / "tiled.tif",
        data,
        tile=(64, 64),
        compression="zlib",
        resolution=(2.0, 2.0),
        resolutionunit="MICROMETER",
    )
    return tmp_path / "tiled.tif", data


def test_a_window_of_a_tiled_tiff_equals_the_same_pixels_read_whole(tiled_tiff):
    path, data = tiled_tiff
    with open_image(path) as image:
        assert image.axes == "YX" and image.shape == (300, 200) and image.dtype == np.uint16
        assert image.pixel_size == {"Y": 0.5, "X": 0.5}
        window = image.window("CYX", (slice(70, 140), slice(10, 199)))
    np.testing.assert_array_equal(window, data[None, 70:140, 10:199])


def test_a_window_asked_for_wrongly_is_a_calling_mistake_not_a_damaged_file(tiled_tiff):
    path, _ = tiled_tiff
    with open_image(path) as image, pytest.raises(ValueError, match="slices without a step"):
        image.window("YX", ((0, 10), slice(0, 10)))


def test_colour_samples_become_the_channel_axis(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (40, 50, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    with open_image(tmp_path / "rgb.tif") as image:
        assert image.axes == "YXC" and image.size("C") == 3 and image.size("T") == 1
        window = image.window("CYX", (slice(5, 9), slice(0, 50)))
    np.testing.assert_array_equal(window, np.moveaxis(rgb[5:9], -1, 0))


def test_an_ome_zarr_volume_is_read_by_window(tmp_path):
    volume = np.random.default_rng(1).random((6, 30, 40), dtype=np.float32)
    write_image(
        tmp_path / "cells.ome.zarr", volume, axes="ZYX", pixel_size={"Z": 2.0, "Y": 0.3, "X": 0.3}
    )
    with open_image(tmp_path / "cells.ome.zarr") as image:
        assert image.axes == "ZYX" and image.pixel_size == {"Z": 2.0, "Y": 0.3, "X": 0.3}
        window = image.window("CZYX", (slice(1, 4), slice(0, 30), slice(20, 40)))
    np.testing.assert_array_equal(window, volume[None, 1:4, :, 20:40])


def test_axes_given_by_the_user_win_over_the_file(tiled_tiff):
    path, data = tiled_tiff
    with open_image(path, axes="XY") as image:
        window = image.window("CYX", (slice(0, 5), slice(0, 3)))
    np.testing.assert_array_equal(window[0], data[:3, :5].T)


def test_formats_that_cannot_be_read_by_window_are_refused_with_advice(tmp_path):
    write_image(tmp_path / "small.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="convert it to TIFF, OME-Zarr or HDF5"):
        open_image(tmp_path / "small.png")


def test_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_image(tmp_path / "nothing.tif")


def test_a_zarr_written_region_by_region_reads_back_whole(tmp_path):
    path = str(tmp_path / "labels.ome.zarr")  # a path given as text works too
    with zarr_writer(path, (50, 60), np.int32, "YX", {"Y": 0.5, "X": 0.5}) as array:
        array[0:25] = 1
        array[25:50, 30:] = 2
    image = read_image(path)
    assert image.axes == "YX" and image.pixel_size == {"Y": 0.5, "X": 0.5}
    assert (image.data[:25] == 1).all() and (image.data[25:, 30:] == 2).all()
    assert (image.data[25:, :30] == 0).all()


def test_a_zarr_writer_that_fails_leaves_no_output(tmp_path):
    path = tmp_path / "labels.ome.zarr"
    with pytest.raises(RuntimeError), zarr_writer(path, (10, 10), np.int32, "YX") as array:
        array[:5] = 1
        raise RuntimeError("stopped half way")
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_a_zarr_writer_wants_the_ngff_axis_order(tmp_path):
    with (
        pytest.raises(ValueError, match="NGFF order"),
        zarr_writer(tmp_path / "x.ome.zarr", (4, 4, 2), np.uint8, "YXC"),
    ):
        pass


def test_writing_a_sample_axis_to_ome_zarr_is_refused_with_a_message(tmp_path):
    with pytest.raises(InputError, match="no sample axis 'S'"):
        write_zarr(tmp_path / "rgb.ome.zarr", np.zeros((4, 5, 3), np.uint8), "YXS")
    assert list(tmp_path.iterdir()) == []


def test_a_pyramid_tiff_opens_lazily_at_full_resolution(tmp_path):
    data = np.arange(256 * 256, dtype=np.uint16).reshape(256, 256)
    with tifffile.TiffWriter(tmp_path / "pyr.ome.tif") as tif:
        tif.write(data, subifds=1, tile=(64, 64), metadata={"axes": "YX"})
        tif.write(data[::2, ::2], subfiletype=1, tile=(64, 64))
    with open_image(tmp_path / "pyr.ome.tif") as image:
        window = image.window("YX", (slice(0, 256), slice(0, 256)))
        assert image.shape == (256, 256) and np.array_equal(window, data)
