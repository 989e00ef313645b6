"""Bringing user arrays into the channel-first layout of the networks."""

import numpy as np
import pytest

from deepscope.data.layout import to_channel_first, to_spatial
from deepscope.errors import AxesError


def test_grey_2d_image_gets_a_channel_axis():
    image = np.arange(30).reshape(5, 6)
    for axes in (None, "YX", "yx"):
        out = to_channel_first(image, axes, ndim=2)
        assert out.shape == (1, 5, 6)
        np.testing.assert_array_equal(out[0], image)


def test_channel_last_rgb_image_becomes_channel_first():
    image = np.arange(5 * 6 * 3).reshape(5, 6, 3)
    for axes in (None, "YXC"):  # a last axis of 3 is guessed to be colour
        out = to_channel_first(image, axes, ndim=2)
        assert out.shape == (3, 5, 6)
        for c in range(3):
            np.testing.assert_array_equal(out[c], image[..., c])


def test_channel_first_image_is_kept():
    image = np.arange(2 * 5 * 6).reshape(2, 5, 6)
    out = to_channel_first(image, "CYX", ndim=2)
    np.testing.assert_array_equal(out, image)


def test_volume_for_a_3d_model():
    volume = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    out = to_channel_first(volume, "ZYX", ndim=3)
    assert out.shape == (1, 4, 5, 6)
    np.testing.assert_array_equal(out[0], volume)
    # a 2D image for a 3D model gets a Z axis of one slice
    assert to_channel_first(np.zeros((5, 6)), "YX", ndim=3).shape == (1, 1, 5, 6)


def test_2d_mask_to_spatial():
    mask = np.arange(30).reshape(5, 6)
    out = to_spatial(mask, None, ndim=2)
    assert out.shape == (5, 6)
    np.testing.assert_array_equal(out, mask)


def test_mask_with_single_channel_axis_to_spatial():
    mask = np.arange(30).reshape(1, 5, 6)
    np.testing.assert_array_equal(to_spatial(mask, "CYX", ndim=2), mask[0])
    # channel last, as many label PNGs / TIFFs are stored
    np.testing.assert_array_equal(to_spatial(mask.reshape(5, 6, 1), "YXC", ndim=2), mask[0])


def test_3d_mask_to_spatial():
    mask = np.arange(60).reshape(3, 4, 5)
    np.testing.assert_array_equal(to_spatial(mask, None, ndim=3), mask)
    # Z and Y given in the other order are swapped back
    np.testing.assert_array_equal(to_spatial(mask, "YZX", ndim=3), mask.transpose(1, 0, 2))


@pytest.mark.parametrize(
    ("shape", "axes", "ndim"),
    [
        ((5, 6), "ZYX", 2),  # three letters for two dimensions
        ((5, 6), "YQ", 2),  # unknown letter
        ((3, 5, 6), "ZYX", 2),  # a stack of 3 slices cannot feed a 2D model
    ],
)
def test_mismatching_axes_raise_axes_error(shape, axes, ndim):
    with pytest.raises(AxesError):
        to_channel_first(np.zeros(shape), axes, ndim)


def test_multi_channel_mask_raises_axes_error():
    with pytest.raises(AxesError, match=r"the mask has axes CYX .* the axes YX only"):
        to_spatial(np.zeros((2, 5, 6)), "CYX", ndim=2)


def test_a_volume_for_a_2d_model_says_to_train_in_3d():
    with pytest.raises(AxesError, match=r"volume of 5 z slices .*\(--set ndim=3\)"):
        to_channel_first(np.zeros((5, 16, 16), np.float32), "ZYX", 2)
    assert to_channel_first(np.zeros((1, 16, 16), np.float32), "ZYX", 2).shape == (1, 16, 16)


def test_a_few_planes_for_a_2d_model_may_be_channels_and_the_error_says_how_to_say_so():
    with pytest.raises(AxesError, match=r"if the 2 planes are channels, say so with --axes CYX"):
        to_channel_first(np.zeros((2, 8, 8)), "ZYX", ndim=2)
    with pytest.raises(AxesError, match=r"train a 3D model \(--set ndim=3\), or give 2D images$"):
        to_channel_first(np.zeros((20, 8, 8)), "ZYX", ndim=2)
