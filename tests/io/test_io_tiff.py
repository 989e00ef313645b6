"""TIFF and OME-TIFF round trips through write_image and read_image."""

import numpy as np
import pytest
import tifffile

from deepscope.errors import InputError
from deepscope.io import read_image, write_image


def _ramp(shape, dtype):
    """A test array whose every pixel differs (within the range of dtype)."""
    values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    if np.issubdtype(dtype, np.integer):
        values %= np.iinfo(dtype).max
    return values.astype(dtype)


@pytest.mark.parametrize(
    ("axes", "shape"),
    [("YX", (32, 48)), ("ZYX", (4, 32, 48)), ("CYX", (2, 32, 48)), ("TZCYX", (2, 3, 2, 8, 9))],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("compression", ["zlib", "zstd", None])
def test_tiff_round_trip_keeps_data_dtype_and_axes(tmp_path, axes, shape, dtype, compression):
    data = _ramp(shape, dtype)
    path = write_image(tmp_path / "image.tif", data, axes, compression=compression)

    image = read_image(path)

    assert image.axes == axes
    assert image.data.dtype == dtype
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_size is None
    assert image.source == str(path)


def test_tiff_stores_rgb_as_rgb(tmp_path):
    rgb = _ramp((20, 30, 3), np.uint8)
    write_image(tmp_path / "rgb.tif", rgb, "YXC")

    image = read_image(tmp_path / "rgb.tif")

    assert image.axes == "YXC"
    np.testing.assert_array_equal(image.data, rgb)
    with tifffile.TiffFile(tmp_path / "rgb.tif") as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB


def test_tiff_keeps_channels_last_that_are_not_rgb(tmp_path):
    two_channels = _ramp((20, 30, 2), np.float32)
    write_image(tmp_path / "two.tif", two_channels, "YXC")
    image = read_image(tmp_path / "two.tif")
    assert image.axes == "YXC"
    np.testing.assert_array_equal(image.data, two_channels)


def test_tiff_without_axes_uses_default_axes(tmp_path):
    write_image(tmp_path / "rgb.tif", np.zeros((20, 30, 3), np.uint8))
    assert read_image(tmp_path / "rgb.tif").axes == "YXC"


def test_tiff_pixel_size_round_trip(tmp_path):
    volume = _ramp((3, 20, 30), np.uint16)
    pixel_size = {"Z": 2.0, "Y": 0.65, "X": 0.325}
    write_image(tmp_path / "volume.tif", volume, "ZYX", pixel_size=pixel_size)

    image = read_image(tmp_path / "volume.tif")

    assert image.pixel_size == pixel_size
    with tifffile.TiffFile(tmp_path / "volume.tif") as tif:  # readable by other software too
        x_resolution = tif.pages[0].resolution[0]
        assert tif.pages[0].resolutionunit == tifffile.RESUNIT.CENTIMETER
    assert 1e4 / x_resolution == pytest.approx(0.325)


def test_axes_argument_overrides_what_the_file_says(tmp_path):
    write_image(tmp_path / "stack.tif", np.zeros((3, 20, 30), np.uint8), "ZYX")
    assert read_image(tmp_path / "stack.tif", axes="tyx").axes == "TYX"


def test_ome_tiff_round_trip(tmp_path):
    data = _ramp((2, 3, 20, 30), np.uint16)
    pixel_size = {"Z": 1.5, "Y": 0.2, "X": 0.2}
    write_image(tmp_path / "cells.ome.tif", data, "CZYX", pixel_size=pixel_size)

    image = read_image(tmp_path / "cells.ome.tif")

    assert image.axes == "CZYX"
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_size == pytest.approx(pixel_size)


def test_ome_tiff_needs_yx_last(tmp_path):
    with pytest.raises(InputError, match="OME-TIFF needs axes ending in 'YX'"):
        write_image(tmp_path / "bad.ome.tif", np.zeros((20, 30, 5), np.uint8), "YXZ")


def test_imagej_pixel_size_is_read(tmp_path):
    hyperstack = np.zeros((3, 2, 20, 30), np.uint16)
    tifffile.imwrite(
        tmp_path / "imagej.tif",
        hyperstack,
        imagej=True,
        resolution=(1 / 0.5, 1 / 0.5),
        metadata={"axes": "ZCYX", "spacing": 2.5, "unit": "um"},
    )

    image = read_image(tmp_path / "imagej.tif")

    assert image.axes == "ZCYX"
    assert image.pixel_size == pytest.approx({"Z": 2.5, "Y": 0.5, "X": 0.5})


def test_tiff_without_physical_unit_has_no_pixel_size(tmp_path):
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((20, 30), np.uint8))
    assert read_image(tmp_path / "plain.tif").pixel_size is None


def test_unknown_tiff_axes_letters_fall_back_to_default_axes(tmp_path):
    # Pages written one by one form a series with axes 'IYX' (I = image sequence).
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tif:
        for _ in range(3):
            tif.write(np.zeros((20, 30), np.uint8), contiguous=True)
    image = read_image(tmp_path / "pages.tif")
    assert image.shape == (3, 20, 30)
    assert image.axes == "ZYX"


def test_unknown_tiff_compression_is_refused(tmp_path):
    with pytest.raises(InputError, match="unknown TIFF compression 'gif'"):
        write_image(tmp_path / "a.tif", np.zeros((5, 6), np.uint8), compression="gif")
    assert list(tmp_path.iterdir()) == []


def test_truncated_tiff_gives_input_error(tmp_path):
    write_image(tmp_path / "full.tif", _ramp((64, 64), np.uint16))
    broken = tmp_path / "broken.tif"
    broken.write_bytes((tmp_path / "full.tif").read_bytes()[:100])
    with pytest.raises(InputError, match=r"cannot read TIFF file .*broken\.tif"):
        read_image(broken)


def test_a_type_ome_tiff_cannot_hold_is_named_with_what_to_do(tmp_path):
    with pytest.raises(InputError, match=r"OME-TIFF holds .* write a plain \.tif"):
        write_image(tmp_path / "big.ome.tif", np.zeros((4, 4), np.int64))
    write_image(tmp_path / "big.tif", np.zeros((4, 4), np.int64))  # a plain TIFF can


@pytest.mark.parametrize(("dtype", "channels"), [(np.bool_, 2), (np.bool_, 3), (np.uint8, 1)])
@pytest.mark.parametrize("name", ["x.tif", "x.ome.tif"])
def test_one_channel_and_boolean_channels_are_stored_channel_by_channel(
    tmp_path, dtype, channels, name
):
    data = np.random.default_rng(0).random((8, 10, channels)) > 0.5
    data = data.astype(dtype)
    back = read_image(write_image(tmp_path / name, data, axes="YXC"))  # was refused / garbled
    as_yxc = (
        back.data[..., None]
        if "C" not in back.axes
        else np.moveaxis(back.data, back.axes.index("C"), -1)
    )
    assert back.data.dtype == dtype and np.array_equal(as_yxc, data)


def test_a_desktop_programs_dots_per_inch_is_not_taken_for_a_pixel_size(tmp_path):
    tifffile.imwrite(tmp_path / "72dpi.tif", np.zeros((8, 8), np.uint8), resolution=(72, 72),
                     resolutionunit="INCH")  # fmt: skip
    assert read_image(tmp_path / "72dpi.tif").pixel_size is None  # was 352.8 µm a pixel
    tifffile.imwrite(tmp_path / "scope.tif", np.zeros((8, 8), np.uint8),
                     resolution=(50800, 50800), resolutionunit="INCH")  # fmt: skip
    assert read_image(tmp_path / "scope.tif").pixel_size == {"Y": 0.5, "X": 0.5}


@pytest.mark.parametrize("size", [1e-7, 1e7])
def test_pixel_sizes_beyond_the_resolution_tags_range_still_round_trip(tmp_path, size):
    write_image(
        tmp_path / "tiny.tif", np.zeros((8, 8), np.uint8), pixel_size={"Y": size, "X": size}
    )
    assert read_image(tmp_path / "tiny.tif").pixel_size == {"Y": size, "X": size}
