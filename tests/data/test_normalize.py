"""Percentile normalisation of channel-first images, and its stored settings."""

import numpy as np
import pytest
from pydantic import ValidationError

from deepscope.data.normalize import (
    Normalization,
    dataset_bounds,
    denormalize,
    input_bounds,
    normalize,
    percentile_normalize,
)
from deepscope.errors import InputError


def ramp_image() -> np.ndarray:
    """Two channels ``(2, 1, 101)``: 0..100 and 5, 15, ..., 1005 (different ranges)."""
    ramp = np.arange(101, dtype=np.float64)
    return np.stack([ramp, 10 * ramp + 5])[:, None, :]


def test_percentiles_map_to_zero_and_one_per_channel():
    image = ramp_image()
    out = percentile_normalize(image, low=1, high=99)
    assert out.shape == image.shape
    assert out.dtype == np.float32
    # On a ramp 0..100 the 1st and 99th percentiles are the values 1 and 99, at indices 1 and 99.
    for channel in (0, 1):
        assert out[channel, 0, 1] == pytest.approx(0.0, abs=1e-6)
        assert out[channel, 0, 99] == pytest.approx(1.0, abs=1e-6)
    # Both channels become the same ramp although their ranges differ by a factor of 10.
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)


def test_values_outside_the_percentiles_are_kept_unless_clipped():
    image = ramp_image()
    unclipped = percentile_normalize(image, low=1, high=99)
    clipped = percentile_normalize(image, low=1, high=99, clip=True)
    assert unclipped.min() < 0 and unclipped.max() > 1
    assert clipped.min() == 0.0 and clipped.max() == 1.0
    np.testing.assert_array_equal(clipped, np.clip(unclipped, 0, 1))


def test_constant_channel_gives_zeros_not_nan():
    image = np.stack([np.full((4, 5), 7.0), np.arange(20.0).reshape(4, 5)])
    out = percentile_normalize(image)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[0], np.zeros((4, 5), np.float32))
    assert out[1].max() > 0.9  # the other channel is normalised as usual


def test_3d_volume_is_normalised_as_a_whole_per_channel():
    volume = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    out = percentile_normalize(volume, low=0, high=100)
    assert out.shape == (2, 3, 4, 5)
    for channel in out:
        assert channel.min() == pytest.approx(0.0)
        assert channel.max() == pytest.approx(1.0)
        # one percentile pair for the whole volume, not one per slice
        assert channel[0].max() < 0.5 < channel[-1].min()


def test_normalize_applies_the_stored_percentiles():
    image = ramp_image()
    settings = Normalization(low=2, high=98, clip=True)
    np.testing.assert_array_equal(
        normalize(image, settings), percentile_normalize(image, 2, 98, clip=True)
    )


def test_none_mode_only_casts_to_float32():
    image = np.array([[[0, 3, 65535]]], dtype=np.uint16)
    out = normalize(image, Normalization(mode="none"))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[[0.0, 3.0, 65535.0]]])


def test_default_settings_are_the_csbdeep_percentiles():
    settings = Normalization()
    assert (settings.mode, settings.low, settings.high, settings.clip) == (
        "percentile",
        1.0,
        99.8,
        False,
    )


@pytest.mark.parametrize(("low", "high"), [(99.0, 1.0), (50.0, 50.0)])
def test_low_not_below_high_is_rejected(low, high):
    with pytest.raises(ValidationError, match="must be below"):
        Normalization(low=low, high=high)


@pytest.mark.parametrize("bad", [{"low": -1}, {"high": 101}, {"mode": "zscore"}, {"scale": 2}])
def test_out_of_range_or_unknown_settings_are_rejected(bad):
    with pytest.raises(ValidationError):
        Normalization(**bad)


def test_percentile_order_is_not_checked_in_none_mode():
    # the percentiles are unused there, so a leftover value does not make the settings invalid
    assert Normalization(mode="none", low=99, high=1).mode == "none"


def test_dataset_bounds_pool_every_image_per_channel():
    dim = np.zeros((2, 1, 101), np.float32)  # a dark image: 0 in both channels
    bright = ramp_image().astype(np.float32)
    bounds = dataset_bounds([dim, bright], low=0, high=100)
    assert bounds == [(0.0, 100.0), (0.0, 1005.0)]


def test_dataset_bounds_of_a_constant_channel_keep_a_unit_range():
    assert dataset_bounds([np.full((1, 4, 4), 7.0)]) == [(7.0, 8.0)]


def test_dataset_mode_scales_every_image_by_the_same_stored_bounds():
    settings = Normalization(mode="dataset", bounds=[(10.0, 110.0)])
    dim = np.full((1, 2, 2), 20, np.uint8)
    bright = np.full((1, 2, 2), 60, np.uint8)
    np.testing.assert_allclose(normalize(dim, settings), 0.1)
    np.testing.assert_allclose(normalize(bright, settings), 0.5)
    lo, hi = input_bounds(bright, settings)
    assert (lo.item(), hi.item()) == (10.0, 110.0)
    np.testing.assert_allclose(denormalize(np.full((1, 2, 2), 0.5), dim, settings), 60.0)


def test_dataset_mode_without_bounds_or_with_other_channels_says_what_to_do():
    with pytest.raises(InputError, match="measured on the training images"):
        normalize(np.zeros((1, 2, 2)), Normalization(mode="dataset"))
    settings = Normalization(mode="dataset", bounds=[(0.0, 1.0)])
    with pytest.raises(InputError, match="holds 1 channel"):
        normalize(np.zeros((3, 2, 2)), settings)
