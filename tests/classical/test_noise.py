"""Noise level estimation and the blend of a blind-spot prediction with the noisy pixel."""

import numpy as np
import pytest

from deepscope.classical.noise import blend_with_noisy, estimate_noise_sigma, noise_sigma_map
from deepscope.errors import InputError


def smooth_image(shape=(128, 128)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (100 + 40 * np.sin(xx / 9.0) * np.cos(yy / 13.0)).astype(np.float32)


@pytest.mark.parametrize("sigma", [2.0, 10.0, 25.0])
def test_noise_level_of_a_smooth_image_is_found(sigma):
    noisy = smooth_image() + np.random.default_rng(0).normal(0, sigma, (128, 128))
    assert estimate_noise_sigma(noisy) == pytest.approx(sigma, rel=0.05)


def test_noise_level_of_a_volume_and_of_a_clean_image():
    volume = np.stack([smooth_image((32, 32))] * 4)
    assert estimate_noise_sigma(volume) < 0.1
    noisy = volume + np.random.default_rng(1).normal(0, 5, volume.shape)
    assert estimate_noise_sigma(noisy) == pytest.approx(5, rel=0.05)


def test_noise_that_grows_with_the_signal_is_mapped_per_pixel():
    clean = np.tile(np.linspace(10, 200, 256, dtype=np.float32), (256, 1))  # dark to bright
    sigma = np.sqrt(0.5 * clean + 4)  # photon noise plus read-out noise
    noisy = clean + np.random.default_rng(3).normal(0, 1, clean.shape) * sigma
    found = noise_sigma_map(noisy, clean)
    assert found.shape == clean.shape
    for column in (20, 128, 240):
        assert found[128, column] == pytest.approx(sigma[128, column], rel=0.1)


def test_noise_map_of_a_flat_image_is_its_single_level():
    noisy = 50 + np.random.default_rng(4).normal(0, 3, (64, 64))
    found = noise_sigma_map(noisy, np.full((64, 64), 50.0))
    assert np.ptp(found) == 0 and found[0, 0] == pytest.approx(3, rel=0.1)


def test_blend_keeps_a_right_prediction_and_corrects_a_wrong_one():
    clean = smooth_image()
    noisy = clean + np.random.default_rng(2).normal(0, 10, clean.shape).astype(np.float32)
    kept = blend_with_noisy(clean, noisy, sigma=10)
    assert np.abs(kept - clean).mean() < 0.5  # the residual is noise alone: weight near 0
    wrong = clean.copy()
    wrong[40:80, 40:80] += 60  # a patch the prediction got badly wrong
    blended = blend_with_noisy(wrong, noisy, sigma=10)
    inside = (slice(48, 72), slice(48, 72))
    assert np.abs(blended - clean)[inside].mean() < 0.3 * np.abs(wrong - clean)[inside].mean()


def test_blend_errors_say_what_is_wrong():
    with pytest.raises(InputError, match="differ in shape"):
        blend_with_noisy(np.zeros((8, 8)), np.zeros((8, 9)), 1.0)
    with pytest.raises(InputError, match="too small"):
        estimate_noise_sigma(np.zeros((2, 9)))
