"""Axes strings and the Image record."""

import numpy as np
import pytest

from deepscope.errors import AxesError, InputError
from deepscope.io import Image, default_axes, transpose_axes, validate_axes


def test_validate_axes_upper_cases_and_returns_axes():
    assert validate_axes("zyx", 3) == "ZYX"
    assert validate_axes("TZCYX", 5) == "TZCYX"


@pytest.mark.parametrize(
    ("axes", "ndim", "expected_words"),
    [
        ("YX", 3, ["3 dimensions", "2 letters", "'ZYX' or 'YXC'"]),
        ("ZYX", 2, ["2 dimensions", "3 letters", "'YX'"]),
        ("YYX", 3, ["repeats", "'Y'"]),
        ("QYX", 3, ["unknown", "'Q'"]),
        ("ZCY", 3, ["lacks X"]),
        ("ZC", 2, ["lacks Y and X"]),
        ("", 2, ["empty"]),
    ],
)
def test_validate_axes_errors_say_what_is_wrong(axes, ndim, expected_words):
    with pytest.raises(AxesError) as caught:
        validate_axes(axes, ndim)
    message = str(caught.value)
    assert "\n" not in message
    for word in expected_words:
        assert word in message


def test_validate_axes_names_the_image():
    with pytest.raises(AxesError, match=r"image 'a\.tif' has 3 dimensions but axes 'YX'"):
        validate_axes("YX", 3, name="a.tif")


def test_validate_axes_rejects_non_strings():
    with pytest.raises(AxesError, match="must be a string"):
        validate_axes(["Y", "X"], 2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "axes"),
    [
        ((64, 64), "YX"),
        ((64, 64, 3), "YXC"),
        ((64, 64, 4), "YXC"),
        ((10, 64, 64), "ZYX"),
        ((10, 2, 64, 64), "ZCYX"),
        ((5, 10, 64, 64), "TZYX"),
        ((10, 64, 64, 3), "ZYXC"),
        ((2, 10, 3, 64, 64), "TZCYX"),
        ((2, 10, 64, 64, 3), "TZYXC"),
    ],
)
def test_default_axes_rules(shape, axes):
    assert default_axes(shape) == axes


@pytest.mark.parametrize("shape", [(5,), (2, 2, 2, 2, 2, 2), ()])
def test_default_axes_needs_two_to_five_dimensions(shape):
    with pytest.raises(AxesError, match="2 to 5 dimensions"):
        default_axes(shape)


def test_transpose_axes_reorders():
    rgb = np.arange(5 * 6 * 3).reshape(5, 6, 3)
    channels_first = transpose_axes(rgb, "YXC", "CYX")
    assert channels_first.shape == (3, 5, 6)
    np.testing.assert_array_equal(channels_first[1], rgb[:, :, 1])


def test_transpose_axes_adds_singleton_axes():
    grey = np.zeros((5, 6))
    assert transpose_axes(grey, "YX", "TCZYX").shape == (1, 1, 1, 5, 6)
    assert transpose_axes(grey, "yx", "xcy").shape == (6, 1, 5)


def test_transpose_axes_drops_singleton_axes_and_returns_a_view():
    volume = np.zeros((1, 5, 6))
    flat = transpose_axes(volume, "ZYX", "YX")
    assert flat.shape == (5, 6)
    assert np.shares_memory(flat, volume)


def test_transpose_axes_refuses_to_drop_a_real_axis():
    volume = np.zeros((4, 5, 6))
    with pytest.raises(AxesError, match="cannot drop axis 'Z' of size 4"):
        transpose_axes(volume, "ZYX", "CYX")


def test_transpose_axes_checks_both_axes_strings():
    with pytest.raises(AxesError, match="2 dimensions but axes 'ZYX'"):
        transpose_axes(np.zeros((5, 6)), "ZYX", "YX")
    with pytest.raises(AxesError, match="repeats"):
        transpose_axes(np.zeros((5, 6)), "YX", "YYX")


def test_image_normalises_axes_and_converts_between_layouts():
    image = Image(np.zeros((3, 5, 6), np.uint8), "cyx", {"y": 0.5, "X": 0.5}, source="a.tif")
    assert image.axes == "CYX"
    assert image.pixel_size == {"Y": 0.5, "X": 0.5}
    assert image.shape == (3, 5, 6)
    assert image.as_axes("YXC").shape == (5, 6, 3)
    assert image.as_axes("CZYX").shape == (3, 1, 5, 6)


def test_image_is_frozen():
    image = Image(np.zeros((5, 6)), "YX")
    with pytest.raises(AttributeError):
        image.axes = "XY"  # type: ignore[misc]


def test_image_checks_axes_and_pixel_size():
    with pytest.raises(AxesError, match=r"image 'b\.tif' has 2 dimensions"):
        Image(np.zeros((5, 6)), "ZYX", source="b.tif")
    with pytest.raises(InputError, match="key 'Z'"):
        Image(np.zeros((5, 6)), "YX", {"Z": 1.0})
    with pytest.raises(InputError, match="positive number"):
        Image(np.zeros((5, 6)), "YX", {"X": -1.0})


def test_spatial_axes_are_put_in_z_y_x_order_where_they_stand():
    from deepscope.io.axes import spatial_in_order

    assert spatial_in_order("XY") == "YX"
    assert spatial_in_order("XYC") == "YXC"
    assert spatial_in_order("CXZY") == "CZYX"
    assert spatial_in_order("TZCYX") == "TZCYX"
