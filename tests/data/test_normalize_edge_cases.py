"""Normalisation at the edges: any intensity scale, constant channels, boolean images."""

import warnings

import numpy as np
import pytest

from deepscope.data.normalize import (
    Normalization,
    denormalize,
    normalize,
    percentile_bounds,
    percentile_normalize,
)

SCALES = (1e-30, 1e-6, 1.0, 1e6, 1e30)


def nuclei_like() -> np.ndarray:
    """A channel-first ``(1, 32, 32)`` float32 image: dim background, a few bright blobs."""
    rng = np.random.default_rng(0)
    image = rng.normal(20, 2, (32, 32))
    image[8:14, 8:14] += 200
    image[20:26, 18:25] += 120
    return image[None].astype(np.float32)


@pytest.mark.parametrize("scale", SCALES)
def test_normalisation_does_not_depend_on_the_intensity_scale(scale):
    image = nuclei_like()
    expected = percentile_normalize(image)
    scaled = image * np.float32(scale)
    np.testing.assert_allclose(percentile_normalize(scaled), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(normalize(scaled, Normalization()), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", SCALES)
def test_a_restored_image_comes_back_in_the_input_units_at_any_scale(scale):
    # a restoration network works in normalised units; denormalize brings its output
    # back to the units of the input: normalize then denormalize gives the input back
    image = nuclei_like() * np.float32(scale)
    settings = Normalization()
    back = denormalize(normalize(image, settings), image, settings)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, image, rtol=1e-5, atol=1e-5 * float(np.abs(image).max()))
    # a spread (an uncertainty) is only rescaled
    spread = denormalize(np.full_like(image, 0.5), image, settings, shift=False)
    lo, hi = percentile_bounds(image)
    np.testing.assert_allclose(spread, np.broadcast_to(0.5 * (hi - lo), image.shape), rtol=1e-5)


@pytest.mark.parametrize("value", [0.0, 1e-30, 7.0, -3e20])
def test_a_constant_image_maps_to_zero_at_any_level(value):
    image = np.full((1, 4, 5), value, np.float32)
    out = percentile_normalize(image)
    np.testing.assert_array_equal(out, 0.0)
    settings = Normalization()
    np.testing.assert_array_equal(denormalize(out, image, settings), image)


def test_a_boolean_image_is_normalised_as_zeros_and_ones():
    mask = nuclei_like() > 60
    as_numbers = mask.astype(np.float32)
    for settings in (
        Normalization(),
        Normalization(mode="none"),
        Normalization(mode="dataset", bounds=[(0.0, 1.0)]),
    ):
        np.testing.assert_array_equal(normalize(mask, settings), normalize(as_numbers, settings))
    lo, hi = percentile_bounds(mask, low=0, high=100)
    assert (lo.item(), hi.item()) == (0.0, 1.0)
    # denormalize reads the percentiles of the (boolean) input image too
    output = np.full(mask.shape, 0.5, np.float32)
    np.testing.assert_allclose(denormalize(output, mask, Normalization(low=0, high=100)), 0.5)


def test_intensities_near_float32s_limit_normalise_without_overflow():
    # values of both signs near 3.4e38: their spread does not fit in float32
    image = np.linspace(-3e38, 3e38, 101, dtype=np.float32)[None, None, :]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = percentile_normalize(image, low=0, high=100)
        back = denormalize(out, image, Normalization(low=0, high=100))
    np.testing.assert_allclose(out[0, 0, [0, 50, 100]], [0.0, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(back, image, rtol=1e-5, atol=1e33)


def test_a_sparse_image_is_spread_over_its_whole_range_not_blown_up():
    beads = np.zeros((1, 200, 200), np.float32)
    beads[0, ::50, ::50] = 1000  # 16 beads: the 1st and 99.8th percentiles are both 0
    normalised = percentile_normalize(beads)
    assert np.isfinite(normalised).all() and normalised.max() == 1.0  # was 1000 / 1.2e-38
    assert percentile_normalize(np.full((1, 8, 8), 7.0)).max() == 0.0  # flat stays flat


def test_a_restoration_model_gives_a_sparse_image_back_finite():
    import deepscope

    beads = np.zeros((128, 128), np.float32)
    beads[::40, ::40] = 1000
    restored = deepscope.load_model("care-fmd-confocal").predict(beads).image
    assert np.isfinite(restored).all()  # 52,508 of 65,536 pixels were NaN


@pytest.mark.parametrize(
    ("dtype", "offset"), [(np.uint32, 4_000_000_000), (np.int64, 10**12), (np.float64, 1e9)]
)
def test_a_faint_signal_on_a_huge_offset_keeps_its_detail(dtype, offset):
    signal = np.random.default_rng(0).integers(0, 256, (1, 64, 64))
    plain = percentile_normalize(signal.astype(np.uint8))
    offset_image = signal.astype(dtype) + dtype(offset)  # float32 would round it to a few levels
    np.testing.assert_allclose(percentile_normalize(offset_image), plain, atol=1e-5)


def test_a_saturated_field_with_a_few_darker_pixels_keeps_its_background_at_zero():
    field = np.full((1, 64, 64), 255, np.uint8)
    field[0, 20:24, 20:24] = 100
    normalised = percentile_normalize(field)
    assert normalised[0, 0, 0] == 0 and normalised.min() == pytest.approx(-1.0)
    sparse = np.zeros((1, 64, 64), np.uint8)  # beads on black: background 0, brightest 1
    sparse[0, 5, 5], sparse[0, 40, 40] = 200, 100
    assert percentile_normalize(sparse).max() == pytest.approx(1.0)
    assert percentile_normalize(sparse)[0, 0, 0] == 0
