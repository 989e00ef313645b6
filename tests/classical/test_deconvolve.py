"""Richardson-Lucy and Wiener deconvolution on tiny synthetic images of points and blobs."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.restoration import richardson_lucy as skimage_richardson_lucy

from deepscope.classical import (
    deconvolve_image,
    gaussian_psf,
    richardson_lucy,
    wiener_deconvolve,
)
from deepscope.errors import ConfigError, InputError


def points_and_blobs(shape, seed=0, margin=6):
    """Single bright pixels and small boxes, ``margin`` pixels away from the edges."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.float32)
    for i in range(12):
        centre = [int(rng.integers(margin, n - margin)) for n in shape]
        half = i % 2  # even i: a point, odd i: a 2-pixel box
        truth[tuple(slice(c - half, c + 1) for c in centre)] = rng.uniform(0.5, 1.0)
    return truth


def rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


@pytest.mark.parametrize(
    "shape, psf",
    [
        ((64, 64), gaussian_psf((11, 11), 2.0)),
        ((16, 32, 32), gaussian_psf((7, 9, 9), (1.5, 1.2, 1.2))),
    ],
)
def test_richardson_lucy_gets_closer_to_the_truth_than_the_blurred_image(shape, psf):
    truth = points_and_blobs(shape)
    blurred = ndimage.convolve(truth, psf, mode="reflect")
    restored = richardson_lucy(blurred, psf, iterations=30)
    assert restored.shape == shape and restored.dtype == np.float32
    assert rmse(restored, truth) < 0.8 * rmse(blurred, truth)
    assert restored.min() >= 0
    assert restored.sum() == pytest.approx(blurred.sum(), rel=0.02)  # RL keeps the light


def test_richardson_lucy_agrees_with_scikit_image_away_from_the_edges():
    # scikit-image pads with zeros where we mirror the image; with all the light well
    # inside, both see the same data. clip=False and filter_epsilon=None switch off its
    # clipping to [-1, 1] and its thresholding of small blurred values, which we do not do.
    # It starts from a flat 0.5 and we from the flat image mean: RL ignores that scale.
    truth = points_and_blobs((64, 64), seed=3, margin=20)
    psf = gaussian_psf((9, 9), 1.5)
    blurred = ndimage.convolve(truth, psf, mode="constant")
    ours = richardson_lucy(blurred, psf, iterations=20)
    reference = skimage_richardson_lucy(
        blurred.astype(np.float64),
        psf.astype(np.float64),
        num_iter=20,
        clip=False,
        filter_epsilon=None,
    )
    interior = (slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(ours[interior], reference[interior], atol=1e-4 * reference.max())


def test_richardson_lucy_clips_negative_values_and_returns_zeros_for_an_empty_image():
    psf = gaussian_psf((5, 5), 1.0)
    image = ndimage.convolve(points_and_blobs((32, 32)), psf) - 0.01
    assert richardson_lucy(image, psf, iterations=5).min() >= 0
    np.testing.assert_array_equal(richardson_lucy(np.zeros((16, 16)), psf), 0)


def test_wiener_improves_a_blurred_noiseless_image():
    truth = points_and_blobs((64, 64), seed=1)
    psf = gaussian_psf((11, 11), 2.0)
    blurred = ndimage.convolve(truth, psf, mode="reflect")
    restored = wiener_deconvolve(blurred, psf, balance=1e-4)
    assert restored.shape == blurred.shape and restored.dtype == np.float32
    assert rmse(restored, truth) < 0.85 * rmse(blurred, truth)


def test_deconvolve_image_dispatches_by_method_name():
    truth = points_and_blobs((32, 32))
    psf = gaussian_psf((7, 7), 1.2)
    blurred = ndimage.convolve(truth, psf)
    np.testing.assert_array_equal(
        deconvolve_image(blurred, psf, "rl", iterations=3), richardson_lucy(blurred, psf, 3)
    )
    np.testing.assert_array_equal(
        deconvolve_image(blurred, psf, "wiener", balance=0.1),
        wiener_deconvolve(blurred, psf, balance=0.1),
    )
    with pytest.raises(ConfigError, match="unknown deconvolution method 'lucy'"):
        deconvolve_image(blurred, psf, "lucy")


@pytest.mark.parametrize("method", [richardson_lucy, wiener_deconvolve])
@pytest.mark.parametrize(
    "image, psf, message",
    [
        (np.ones((16, 16)), -gaussian_psf((5, 5), 1.0), "negative values"),
        (np.ones((16, 16)), np.zeros((5, 5)), "all zero"),
        (np.ones((8, 8)), gaussian_psf((11, 11), 2.0), r"PSF \(11, 11\) is larger than the image"),
        (np.ones((2, 8, 8, 8)), gaussian_psf((3, 3, 3), 1.0), "must be 2D .* or 3D"),
        (np.ones((8, 8, 8)), gaussian_psf((3, 3), 1.0), "image is 3D"),
        (np.full((8, 8), np.inf), gaussian_psf((3, 3), 1.0), "NaN or infinite"),
    ],
)
def test_bad_inputs_raise_input_errors_with_the_reason(method, image, psf, message):
    with pytest.raises(InputError, match=message):
        method(image, psf)


def test_bad_settings_raise_config_errors():
    image, psf = np.ones((16, 16)), gaussian_psf((5, 5), 1.0)
    with pytest.raises(ConfigError, match="iterations"):
        richardson_lucy(image, psf, iterations=0)
    with pytest.raises(ConfigError, match="balance"):
        wiener_deconvolve(image, psf, balance=0)
    with pytest.raises(ConfigError, match="device"):
        richardson_lucy(image, psf, device="nowhere")
