"""Gaussian and median denoising, and the best Gaussian filter baseline."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio

from deepscope.classical import best_gaussian, gaussian_denoise, median_denoise
from deepscope.errors import ConfigError, InputError
from deepscope.io import read_image


def square(shape=(64, 64)):
    clean = np.zeros(shape, np.float32)
    clean[tuple(slice(n // 4, 3 * n // 4) for n in shape)] = 1.0
    return clean


def test_gaussian_denoise_is_the_scipy_filter_in_2d_and_3d():
    rng = np.random.default_rng(0)
    for shape, sigma in (((32, 32), 1.5), ((8, 16, 16), (1.0, 2.0, 2.0))):
        image = rng.random(shape)
        out = gaussian_denoise(image, sigma)
        assert out.dtype == np.float32 and out.shape == shape
        np.testing.assert_allclose(out, ndimage.gaussian_filter(image, sigma), atol=1e-6)


def test_median_denoise_removes_hot_pixels_but_keeps_straight_edges():
    image = np.zeros((32, 32), np.float32)
    image[:, 16:] = 1.0
    noisy = image.copy()
    noisy[5, 5] = noisy[20, 25] = 50.0
    out = median_denoise(noisy, 3)
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: gaussian_denoise(np.zeros((2, 2, 2, 2)), 1.0), InputError, "2D .* or 3D"),
        (lambda: gaussian_denoise(np.zeros((4, 4)), -1.0), ConfigError, ">= 0"),
        (lambda: gaussian_denoise(np.zeros((4, 4)), float("nan")), ConfigError, "finite"),
        (lambda: median_denoise(np.zeros((4, 4)), 2.5), ConfigError, "whole number"),
        (lambda: median_denoise(np.full((4, 4), np.nan), 3), InputError, "NaN"),
        (lambda: best_gaussian(np.zeros((4, 4)), np.zeros((4, 5))), InputError, "differ in shape"),
        (lambda: best_gaussian(np.zeros((4, 4)), np.ones((4, 4))), InputError, "constant"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_best_gaussian_picks_more_smoothing_for_noisier_images():
    clean = square()
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, clean.shape)
    sigma_low, filtered = best_gaussian(clean + 0.1 * noise, clean)
    sigma_high, _ = best_gaussian(clean + 0.8 * noise, clean)
    assert sigma_high > sigma_low
    np.testing.assert_array_equal(filtered, gaussian_denoise(clean + 0.1 * noise, sigma_low))


def test_best_gaussian_tries_only_the_sigmas_given():
    clean = square()
    noisy = clean + np.random.default_rng(2).normal(0, 0.5, clean.shape)
    sigma, _ = best_gaussian(noisy, clean, sigmas=[0.5, 3.0])
    assert sigma in (0.5, 3.0)


def test_best_gaussian_improves_psnr_on_real_confocal_noise(shared_data):
    folder = shared_data / "fmd_confocal_bpae_b" / "fov01"
    noisy = read_image(folder / "noisy_00.tif").data[192:320, 192:320].astype(np.float32)
    clean = read_image(folder / "gt.tif").data[192:320, 192:320].astype(np.float32)
    data_range = float(clean.max() - clean.min())
    raw_psnr = peak_signal_noise_ratio(clean, noisy, data_range=data_range)
    sigma, filtered = best_gaussian(noisy, clean)
    best_psnr = peak_signal_noise_ratio(clean, filtered, data_range=data_range)
    assert 0.5 <= sigma <= 4.0
    assert best_psnr > raw_psnr + 1.0, (raw_psnr, best_psnr)


def test_values_beyond_float32_are_refused_as_such_not_as_nan():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="beyond float32's range"):
            gaussian_denoise(np.full((16, 16), 1e300), 1.0)
