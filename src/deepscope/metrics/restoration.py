"""Image restoration metrics: PSNR, SSIM, SNR, RMSE, NRMSE, MAE, Pearson r.

Argument order is ``(pred, target)``, as in :mod:`deepscope.metrics.pixel`.

Fair comparison across tools
----------------------------
Restoration tools return images in different intensity units (normalised, the input's, the
target's). :func:`fair_pair` removes that difference the way CSBDeep and the ZeroCostDL4Mic
notebooks do: the target is percentile-normalised (0.1th percentile -> 0, 99.9th -> 1) and the
prediction is mapped onto it by the least-squares affine fit ``a * pred + b``. Metrics on that
pair have ``data_range`` 1. :func:`restoration_metrics` computes them all at once;
``normalize=False`` compares raw values instead (give ``data_range``, e.g. 255 for 8-bit).

NRMSE here is the true normalised root-mean-square error, ``rmse / (max - min)`` of the
target. The ZeroCostDL4Mic notebooks' "NRMSE" is ``sqrt(mean(|error|))`` of the normalised
pair; it is :func:`notebook_nrmse` here, reported as ``nrmse_notebook``.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

from deepscope.errors import InputError

__all__ = [
    "fair_pair",
    "mae",
    "notebook_nrmse",
    "nrmse",
    "pearson_r",
    "psnr",
    "restoration_metrics",
    "rmse",
    "snr",
    "ssim",
]


#: extent of SSIM's Gaussian window (sigma 1.5, truncated at 3.5 sigma)
SSIM_WINDOW = 11


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise InputError(
            f"prediction shape {pred.shape} differs from target shape {target.shape}; "
            "compare images of the same size"
        )
    if pred.size == 0 or pred.ndim == 0:
        raise InputError("cannot score empty images or single numbers; give two images")
    for array, name in ((pred, "the prediction"), (target, "the target")):
        if not np.isfinite(array).all():
            raise InputError(f"{name} contains NaN or infinite values; nothing to score")
    return pred, target


def _data_range(target: np.ndarray, data_range: float | None) -> float:
    """``data_range`` checked (finite and positive), or the target's range, which a
    constant target does not have."""
    if data_range is None:
        check_reference(target, "the target")
        return float(target.max() - target.min())
    if not (math.isfinite(data_range) and data_range > 0):
        raise InputError(f"data_range must be a positive number, got {data_range}")
    return float(data_range)


def check_reference(target: np.ndarray, name: str) -> None:
    """A clear error when ``target`` cannot be the reference of restoration metrics: it
    holds NaN or infinite values, or one value everywhere (PSNR, SSIM and NRMSE against a
    flat image are undefined: they would come out infinite or perfect)."""
    if not np.isfinite(target).all():
        raise InputError(f"{name} contains NaN or infinite values; give a finite reference image")
    if target.size and target.min() == target.max():
        raise InputError(
            f"{name} is constant ({float(target.flat[0]):g} everywhere): restoration metrics "
            "need a reference image with structure; check that it is the right file"
        )


def fair_pair(
    pred: np.ndarray, target: np.ndarray, low: float = 0.1, high: float = 99.9
) -> tuple[np.ndarray, np.ndarray]:
    """``(fitted prediction, normalised target)``: the target percentile-normalised, the
    prediction mapped onto it by a least-squares affine fit."""
    pred, target = _pair(pred, target)
    lo, hi = np.percentile(target, [low, high])
    if not hi > lo:
        raise InputError(
            f"the target's {low:g}th and {high:g}th percentiles are equal ({lo:g}): nearly all "
            "of its pixels hold one value, so the fair normalisation has no range; compare "
            "raw values instead (normalize=False with a data_range)"
        )
    t = (target - lo) / (hi - lo)
    p = pred.ravel() - pred.mean()
    var = float(p @ p)
    scale = float(p @ (t.ravel() - t.mean())) / var if var > 0 else 0.0
    fitted = scale * (pred - pred.mean()) + t.mean()
    return fitted, t


def _rms(x: np.ndarray) -> float:
    """Root mean square, computed on ``x`` divided by its largest magnitude so that
    squares of values near float64's limit do not overflow."""
    peak = float(np.abs(x).max())
    return peak * float(np.sqrt(np.mean((x / peak) ** 2))) if peak > 0 else 0.0


def rmse(pred: np.ndarray, target: np.ndarray) -> float:
    """Root-mean-square error."""
    pred, target = _pair(pred, target)
    return _rms(pred - target)


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error."""
    pred, target = _pair(pred, target)
    return float(np.mean(np.abs(pred - target)))


def nrmse(pred: np.ndarray, target: np.ndarray) -> float:
    """RMSE divided by the target's value range (a constant target has none: an
    :class:`InputError`)."""
    pred, target = _pair(pred, target)
    return rmse(pred, target) / _data_range(target, None)


def notebook_nrmse(pred: np.ndarray, target: np.ndarray) -> float:
    """``sqrt(mean(|pred - target|))``: what the ZeroCostDL4Mic notebooks call NRMSE."""
    pred, target = _pair(pred, target)
    return float(np.sqrt(np.mean(np.abs(pred - target))))


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB; ``data_range`` defaults to the target's range."""
    pred, target = _pair(pred, target)
    data_range = _data_range(target, data_range)
    mse = float(np.mean(((pred - target) / data_range) ** 2))  # in units of the range
    if mse == 0:
        return float("inf")
    return float(-10 * np.log10(mse))


def snr(pred: np.ndarray, target: np.ndarray) -> float:
    """Signal-to-noise ratio in dB: target power over error power."""
    pred, target = _pair(pred, target)
    noise = _rms(pred - target)
    return float("inf") if noise == 0 else float(20 * np.log10(_rms(target) / noise))


def ssim(pred: np.ndarray, target: np.ndarray, data_range: float | None = None) -> float:
    """Structural similarity (Wang et al. 2004, Gaussian window σ 1.5, as in the paper),
    2D or 3D; ``data_range`` defaults to the target's range. A volume with fewer than
    11 planes (the window's extent) is scored as the mean SSIM of its planes."""
    pred, target = _pair(pred, target)
    data_range = _data_range(target, data_range)
    if pred.ndim == 3 and pred.shape[0] < SSIM_WINDOW:
        return float(np.mean([ssim(p, t, data_range) for p, t in zip(pred, target, strict=True)]))
    if min(pred.shape) < SSIM_WINDOW:
        hint = ""
        if pred.ndim == 3 and pred.shape[-1] <= 4 and min(pred.shape[:-1]) >= SSIM_WINDOW:
            hint = (
                f"; a last axis of {pred.shape[-1]} looks like colour channels: score each "
                "channel on its own (image[..., c])"
            )
        raise InputError(
            f"SSIM needs images at least {SSIM_WINDOW} pixels a side, got {pred.shape}{hint}"
        )
    return float(
        structural_similarity(  # in units of the range: the same value, no overflow
            target / data_range,
            pred / data_range,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def pearson_r(pred: np.ndarray, target: np.ndarray) -> float:
    """Pearson correlation coefficient of the pixel values."""
    pred, target = _pair(pred, target)
    p, t = pred.ravel() - pred.mean(), target.ravel() - target.mean()
    p_rms, t_rms = _rms(p), _rms(t)  # scaled first: no overflow near float64's limit
    if p_rms == 0 or t_rms == 0:
        return 0.0
    return float(np.mean((p / p_rms) * (t / t_rms)))


def restoration_metrics(
    pred: np.ndarray,
    target: np.ndarray,
    normalize: bool = True,
    data_range: float | None = None,
) -> dict[str, float]:
    """Every restoration metric of one image as a dict.

    With ``normalize`` (the default) the pair is first made comparable by :func:`fair_pair`
    and the data range is 1; otherwise raw values are compared with ``data_range`` (default:
    the target's range). A target with NaN or infinite values, or one value everywhere, is an
    :class:`InputError` (:func:`check_reference`).
    """
    pred, target = _pair(pred, target)
    check_reference(target, "the target")
    data_range = _data_range(target, data_range)
    if normalize:
        pred, target = fair_pair(pred, target)
        data_range = 1.0
    return {
        "psnr": psnr(pred, target, data_range),
        "ssim": ssim(pred, target, data_range),
        "snr": snr(pred, target),
        "rmse": rmse(pred, target),
        "nrmse": nrmse(pred, target),
        "nrmse_notebook": notebook_nrmse(pred, target),
        "mae": mae(pred, target),
        "pearson_r": pearson_r(pred, target),
    }
