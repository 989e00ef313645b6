"""Restoration metrics: known values on tiny arrays, and the fair normalisation."""

import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.metrics.restoration import (
    fair_pair,
    mae,
    notebook_nrmse,
    nrmse,
    pearson_r,
    psnr,
    restoration_metrics,
    rmse,
    ssim,
)


def test_psnr_of_a_known_error():
    target = np.zeros((8, 8))
    target[0, 0] = 1.0  # data range 1
    pred = target + 0.1  # mse 0.01
    assert psnr(pred, target) == pytest.approx(20.0)
    assert psnr(pred, target, data_range=10) == pytest.approx(40.0)
    assert psnr(target, target) == float("inf")


def test_true_nrmse_and_the_notebooks_variant_differ():
    target = np.linspace(0, 2, 64).reshape(8, 8)
    pred = target + 0.04
    assert nrmse(pred, target) == pytest.approx(0.04 / 2)
    assert notebook_nrmse(pred, target) == pytest.approx(np.sqrt(0.04))
    assert mae(pred, target) == pytest.approx(0.04)


def test_fair_pair_ignores_the_units_of_the_prediction():
    rng = np.random.default_rng(0)
    target = rng.random((32, 32)) * 200 + 10
    fitted, normalised = fair_pair(3.0 * target - 7.0, target)
    np.testing.assert_allclose(fitted, normalised, atol=1e-9)
    assert restoration_metrics(0.5 * target, target)["ssim"] == pytest.approx(1.0)


def test_better_restoration_scores_better():
    rng = np.random.default_rng(1)
    clean = np.kron(rng.random((8, 8)), np.ones((8, 8)))
    slightly = clean + rng.normal(0, 0.05, clean.shape)
    very = clean + rng.normal(0, 0.3, clean.shape)
    good, bad = restoration_metrics(slightly, clean), restoration_metrics(very, clean)
    assert good["psnr"] > bad["psnr"] and good["ssim"] > bad["ssim"]
    assert good["nrmse"] < bad["nrmse"] and good["mae"] < bad["mae"]
    assert pearson_r(slightly, clean) > pearson_r(very, clean)
    assert ssim(clean, clean) == pytest.approx(1.0)


def test_mismatched_or_tiny_images_are_input_errors():
    with pytest.raises(InputError, match="same size"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    thin = np.random.default_rng(0).random((8, 40))
    with pytest.raises(InputError, match="at least 11"):
        ssim(thin, thin)
    with pytest.raises(InputError, match="single numbers"):
        ssim(1.0, 2.0)


def test_each_metric_refuses_what_cannot_be_scored_instead_of_a_number():
    target = np.random.default_rng(0).random((32, 32))
    spoilt = target.copy()
    spoilt[3, 3] = np.nan
    for metric in (pearson_r, nrmse, psnr, ssim, rmse):
        with pytest.raises(InputError, match="NaN or infinite"):
            metric(target, spoilt)
    with pytest.raises(InputError, match="is constant"):
        psnr(target, np.full((32, 32), 7.0))  # was -inf and a numpy warning
    for bad in (-5, 0, float("inf")):
        with pytest.raises(InputError, match="data_range must be a positive number"):
            psnr(target, target + 0.01, data_range=bad)


def test_values_near_float64s_limit_are_scored_without_overflow():
    target = np.random.default_rng(0).random((32, 32)) * 1e200
    scores = restoration_metrics(target + 1e197, target, normalize=False)
    assert np.isfinite(scores["psnr"]) and np.isfinite(scores["snr"])
    assert scores["psnr"] == pytest.approx(psnr(target / 1e100 + 1e97, target / 1e100))


def test_ssim_of_a_colour_image_says_to_score_each_channel():
    rgb = np.random.default_rng(1).random((32, 32, 3))
    with pytest.raises(InputError, match=r"colour channels: score each channel"):
        ssim(rgb, rgb)
    assert ssim(rgb[..., 0], rgb[..., 0]) == pytest.approx(1.0)


def test_thin_volumes_are_scored_plane_by_plane():
    rng = np.random.default_rng(2)
    clean = rng.random((3, 32, 32))
    noisy = clean + rng.normal(0, 0.1, clean.shape)
    expected = np.mean([ssim(n, c, 1.0) for n, c in zip(noisy, clean, strict=True)])
    assert ssim(noisy, clean, 1.0) == pytest.approx(expected)


def test_restoration_metrics_refuse_a_flat_or_nan_target():
    pred = np.random.default_rng(0).random((16, 16))
    with pytest.raises(InputError, match="constant"):
        restoration_metrics(pred, np.full((16, 16), 3.0))
    target = pred.copy()
    target[2, 3] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        restoration_metrics(pred, target)


def test_a_nearly_flat_target_or_a_broken_prediction_is_refused_not_scored_as_nonsense():
    target = np.full((256, 256), 100.0)
    target[120:127, 120:127] += 500  # one bead: 0.07 % of the pixels
    noisy = target + np.random.default_rng(0).normal(0, 0.5, target.shape)
    with pytest.raises(InputError, match=r"percentiles are equal .*normalize=False"):
        restoration_metrics(noisy, target)  # was -233 dB
    assert restoration_metrics(noisy, target, normalize=False)["psnr"] > 40
    broken = noisy.copy()
    broken[0, 0] = np.inf
    with pytest.raises(InputError, match="prediction contains NaN or infinite"):
        restoration_metrics(broken, target, normalize=False)
