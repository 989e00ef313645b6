"""Padding small images up to a patch, and choosing where patches start."""

import numpy as np
import pytest

from deepscope.data.patches import pad_to_shape, sample_patch_origin


def test_small_array_is_padded_to_the_shape_at_the_end():
    array = np.arange(12).reshape(3, 4)
    out = pad_to_shape(array, (5, 6))
    assert out.shape == (5, 6)
    np.testing.assert_array_equal(out[:3, :4], array)  # original data stays at the start
    # reflect padding repeats image content, it does not invent values
    assert set(out.ravel()) <= set(array.ravel())


def test_big_array_is_returned_untouched():
    array = np.arange(56).reshape(7, 8)
    assert pad_to_shape(array, (5, 6)) is array
    assert pad_to_shape(array, (7, 8)) is array


def test_only_the_short_axes_grow():
    array = np.arange(24).reshape(3, 8)
    out = pad_to_shape(array, (5, 6))
    assert out.shape == (5, 8)
    np.testing.assert_array_equal(out[:3], array)


@pytest.mark.parametrize(("shape", "target"), [((2,), (7,)), ((1, 1), (4, 4)), ((2, 3), (9, 16))])
def test_pad_larger_than_the_array(shape, target):
    array = np.arange(1, int(np.prod(shape)) + 1).reshape(shape)
    out = pad_to_shape(array, target)
    assert out.shape == target
    np.testing.assert_array_equal(out[tuple(slice(0, s) for s in shape)], array)
    assert set(out.ravel()) <= set(array.ravel())


def test_leading_channel_axes_are_not_padded():
    array = np.stack([np.zeros((3, 4)), np.ones((3, 4))])  # (C=2, Y, X)
    out = pad_to_shape(array, (5, 6))
    assert out.shape == (2, 5, 6)
    assert np.all(out[0] == 0) and np.all(out[1] == 1)  # channels are not mixed


def test_other_numpy_modes_are_passed_on():
    out = pad_to_shape(np.ones((2, 2), int), (3, 4), mode="constant")
    np.testing.assert_array_equal(out, [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])


def test_3d_label_patch_is_padded():
    labels = np.ones((2, 3, 3), np.uint16)
    out = pad_to_shape(labels, (4, 4, 4))
    assert out.shape == (4, 4, 4) and out.dtype == np.uint16


@pytest.mark.parametrize(("shape", "patch"), [((10, 12), (4, 5)), ((6, 7, 8), (2, 3, 8))])
def test_patches_stay_inside_the_image(shape, patch):
    rng = np.random.default_rng(0)
    corners = set()
    for _ in range(100):
        origin = sample_patch_origin(shape, patch, rng)
        assert len(origin) == len(shape)
        assert all(isinstance(o, int) for o in origin)
        assert all(0 <= o <= s - p for o, p, s in zip(origin, patch, shape, strict=True))
        corners.add(origin)
    assert len(corners) > 10  # placed at random, not always at the same spot


def test_patch_as_large_as_the_image_starts_at_zero():
    assert sample_patch_origin((8, 8), (8, 8), np.random.default_rng(0)) == (0, 0)


@pytest.mark.parametrize("pixel", [(0, 0), (19, 29), (10, 15), (0, 29), (19, 3)])
def test_foreground_fraction_one_always_contains_the_foreground_pixel(pixel):
    shape, patch = (20, 30), (6, 8)
    target = np.zeros(shape, np.uint8)
    target[pixel] = 1
    foreground = np.flatnonzero(target)  # computed once per image, as the trainer does
    rng = np.random.default_rng(1)
    for _ in range(20):
        origin = sample_patch_origin(shape, patch, rng, foreground, foreground_fraction=1.0)
        assert all(0 <= o <= s - p for o, p, s in zip(origin, patch, shape, strict=True))
        assert all(o <= c < o + p for o, c, p in zip(origin, pixel, patch, strict=True))


def test_foreground_patch_is_centred_on_the_pixel_away_from_borders():
    foreground = np.array([np.ravel_multi_index((10, 15), (20, 30))])
    origin = sample_patch_origin((20, 30), (6, 8), np.random.default_rng(2), foreground, 1.0)
    assert origin == (7, 11)


def test_foreground_fraction_zero_ignores_the_foreground():
    shape, patch = (40, 40), (4, 4)
    foreground = np.array([0])  # top-left pixel only
    rng = np.random.default_rng(3)
    origins = [sample_patch_origin(shape, patch, rng, foreground, 0.0) for _ in range(30)]
    assert any(o != (0, 0) for o in origins)


def test_empty_foreground_falls_back_to_uniform_placement():
    rng = np.random.default_rng(4)
    empty = np.array([], dtype=np.intp)
    origins = {sample_patch_origin((30, 30), (4, 4), rng, empty, 1.0) for _ in range(30)}
    assert len(origins) > 5
