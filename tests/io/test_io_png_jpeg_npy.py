"""PNG, JPEG and .npy files."""

import numpy as np
import pytest

from deepscope.errors import AxesError, InputError
from deepscope.io import read_image, write_image


def _noise(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize(
    ("axes", "shape"), [("YX", (20, 30)), ("YXC", (20, 30, 3)), ("YXC", (20, 30, 4))]
)
def test_png_round_trip(tmp_path, axes, shape, dtype):
    data = _noise(shape, dtype)
    write_image(tmp_path / "picture.png", data, axes)

    image = read_image(tmp_path / "picture.png")

    assert image.axes == axes
    assert image.data.dtype == dtype
    np.testing.assert_array_equal(image.data, data)


def test_jpeg_round_trip_is_close(tmp_path):
    y, x = np.mgrid[0:40, 0:60]
    smooth = np.stack([y * 4, x * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    write_image(tmp_path / "photo.jpg", smooth, "YXC")

    image = read_image(tmp_path / "photo.jpg")

    assert image.axes == "YXC"
    assert image.data.shape == smooth.shape
    assert np.abs(image.data.astype(int) - smooth.astype(int)).mean() < 3


def test_jpeg_grey(tmp_path):
    grey = np.full((16, 16), 128, np.uint8)
    write_image(tmp_path / "grey.jpeg", grey)
    image = read_image(tmp_path / "grey.jpeg")
    assert image.axes == "YX"
    assert np.abs(image.data.astype(int) - 128).max() <= 2


@pytest.mark.parametrize(
    ("name", "data", "axes", "message"),
    [
        ("a.png", np.zeros((20, 30), np.float32), "YX", "PNG holds uint8 or uint16"),
        ("a.png", np.zeros((3, 20, 30), np.uint8), "ZYX", "'YX' or 'YXC' with 3 or 4 channels"),
        ("a.png", np.zeros((20, 30, 2), np.uint8), "YXC", "'YX' or 'YXC' with 3 or 4 channels"),
        ("a.jpg", np.zeros((20, 30), np.uint16), "YX", "JPEG holds uint8"),
        ("a.jpg", np.zeros((20, 30, 4), np.uint8), "YXC", "'YXC' with 3 channels"),
    ],
)
def test_png_and_jpeg_refuse_what_they_cannot_hold(tmp_path, name, data, axes, message):
    with pytest.raises(InputError, match=message):
        write_image(tmp_path / name, data, axes)
    assert not (tmp_path / name).exists()


def test_npy_round_trip_keeps_dtype(tmp_path):
    for dtype in (np.uint8, np.uint16, np.int32, np.float32, np.float64, bool):
        data = np.arange(2 * 5 * 6).reshape(2, 5, 6).astype(dtype)
        write_image(tmp_path / "array.npy", data)
        image = read_image(tmp_path / "array.npy")
        assert image.data.dtype == dtype
        np.testing.assert_array_equal(image.data, data)
        assert image.axes == "ZYX"  # .npy stores no axes: default_axes guesses


def test_npy_axes_override(tmp_path):
    np.save(tmp_path / "channels.npy", np.zeros((2, 5, 6), np.float32))
    assert read_image(tmp_path / "channels.npy", axes="CYX").axes == "CYX"
    with pytest.raises(AxesError, match="has 3 dimensions but axes 'YX' has 2 letters"):
        read_image(tmp_path / "channels.npy", axes="YX")


def test_npy_with_objects_is_refused(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(InputError, match=r"cannot read \.npy file"):
        read_image(tmp_path / "objects.npy")


def test_empty_image_is_refused(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 5), np.uint8))
    with pytest.raises(InputError, match="is empty"):
        read_image(tmp_path / "empty.npy")
    with pytest.raises(InputError, match="is empty"):
        write_image(tmp_path / "empty.tif", np.zeros((5, 0), np.uint8))


def test_one_dimensional_data_needs_more_axes(tmp_path):
    np.save(tmp_path / "line.npy", np.zeros(5, np.uint8))
    with pytest.raises(AxesError, match="2 to 5 dimensions"):
        read_image(tmp_path / "line.npy")


def test_a_cut_off_jpeg_is_refused_not_read_as_grey(tmp_path):
    ramp = np.tile(np.arange(256, dtype=np.uint8), (128, 1))
    whole = write_image(tmp_path / "whole.jpg", ramp).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="the file ends before the image does"):
        read_image(tmp_path / "cut.jpg")
    (tmp_path / "padded.jpg").write_bytes(whole + b"\0" * 100)  # padding after the end marker
    assert read_image(tmp_path / "padded.jpg").shape == (128, 256)


def test_big_endian_16_bit_data_is_written_as_png(tmp_path):
    data = (np.arange(64, dtype=">u2") * 1000).reshape(8, 8)
    assert np.array_equal(read_image(write_image(tmp_path / "be.png", data)).data, data)


def test_a_palette_png_gives_its_pixel_values_not_the_colours_of_its_table(tmp_path):
    from PIL import Image

    labels = np.zeros((12, 16), np.uint8)
    labels[2:6, 3:8], labels[7:11, 9:14] = 1, 2
    mask = Image.fromarray(labels, mode="P")
    mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])  # as an annotation tool saves labels
    mask.save(tmp_path / "mask.png")

    image = read_image(tmp_path / "mask.png")

    assert image.axes == "YX"
    np.testing.assert_array_equal(image.data, labels)


@pytest.mark.parametrize(("mode", "channels"), [("LA", 2), ("RGBA", 4)])
def test_an_opaque_alpha_channel_is_dropped_and_a_real_one_kept(tmp_path, mode, channels):
    from PIL import Image

    colour = _noise((10, 12, channels - 1), np.uint8)
    opaque = np.concatenate([colour, np.full((10, 12, 1), 255, np.uint8)], axis=-1)
    Image.fromarray(opaque, mode=mode).save(tmp_path / "opaque.png")
    see_through = opaque.copy()
    see_through[0, 0, -1] = 128
    Image.fromarray(see_through, mode=mode).save(tmp_path / "see_through.png")

    plain = read_image(tmp_path / "opaque.png")
    kept = read_image(tmp_path / "see_through.png")

    np.testing.assert_array_equal(plain.data, colour[..., 0] if channels == 2 else colour)
    assert plain.axes == ("YX" if channels == 2 else "YXC")
    assert kept.data.shape == (10, 12, channels)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_jpeg_is_read_the_way_its_exif_orientation_shows_it(tmp_path, orientation):
    from PIL import Image, ImageOps

    y, x = np.mgrid[0:24, 0:40]
    stored = Image.fromarray(np.stack([y * 10, x * 6, y + x], axis=-1).astype(np.uint8))
    exif = stored.getexif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=100)
    with Image.open(tmp_path / "phone.jpg") as shown:
        expected = np.asarray(ImageOps.exif_transpose(shown))

    image = read_image(tmp_path / "phone.jpg")

    np.testing.assert_array_equal(image.data, expected)
