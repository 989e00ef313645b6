"""Noise level of an image, and the blend of a blind-spot prediction with the noisy pixel.

A blind-spot network (Noise2Void, :mod:`deepscope.nets.blindspot`) predicts each pixel from
its neighbours only, so it throws away what the pixel's own noisy value says. Laine et al.
(2019) put it back: with a prediction ``mu`` whose error has variance ``s2`` and a noisy
value ``y`` with noise variance ``sigma2``, independent of each other, the best estimate
of the clean value is ``mu + s2 / (s2 + sigma2) * (y - mu)``. They predict ``s2`` with
the network; :func:`blend_with_noisy` estimates it from the image instead, as the local mean
of ``(y - mu)**2`` minus ``sigma2`` (that mean is ``s2 + sigma2``), a Wiener filter of the
residual. ``sigma`` comes from :func:`estimate_noise_sigma` (one level per image, Immerkær
1996) or, for noise that grows with the signal as in fluorescence (photon noise),
:func:`noise_sigma_map` (variance linear in the signal, fitted on the image itself).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from deepscope.classical.filters import as_float_image
from deepscope.errors import InputError

__all__ = ["blend_with_noisy", "estimate_noise_sigma", "noise_sigma_map"]

#: a 3x3 difference of two Laplacians: zero on any locally linear image, 36 sigma^2 of
#: variance on white noise of standard deviation sigma
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)


def estimate_noise_sigma(image: np.ndarray) -> float:
    """Standard deviation of the additive white noise of ``image`` (Immerkær 1996).

    The image is filtered with a kernel that cancels smooth structure; what remains is
    mostly noise, whose standard deviation follows from the mean absolute response. A 3D
    image is filtered slice by slice. Edges and texture add a little: the estimate errs
    high (25.7 for sigma 25 on the BSD68 test images).
    """
    x = as_float_image(image).astype(np.float64)
    if min(x.shape[-2:]) < 3:
        raise InputError(f"the image ({x.shape}) is too small to estimate its noise: 3x3 at least")
    response = _noise_response(x)[..., 1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * response.mean() / 6)


def _noise_response(x: np.ndarray) -> np.ndarray:
    """``|x * kernel|``, slice by slice: about ``6 sigma sqrt(2 / pi)`` on white noise."""
    kernel = _NOISE_KERNEL.reshape((1,) * (x.ndim - 2) + (3, 3))
    return np.abs(ndimage.correlate(x, kernel))


def noise_sigma_map(noisy: np.ndarray, signal: np.ndarray, bins: int = 16) -> np.ndarray:
    """Per-pixel standard deviation of the noise of ``noisy``, for noise whose variance is
    linear in the signal (``a * signal + b``: photon noise plus read-out noise).

    ``signal`` is an estimate of the clean image (a denoised prediction). Pixels are grouped
    into ``bins`` intensity bins of the (3-pixel smoothed) signal; in each, the noise level
    is estimated as in :func:`estimate_noise_sigma`; a line fitted to the variances, weighted
    by the pixels per bin, gives every pixel its level. Variances are kept above 1 % of the
    image's mean. With fewer than two usable bins (a flat image), the single level of
    :func:`estimate_noise_sigma` everywhere.
    """
    y = as_float_image(noisy, "noisy image").astype(np.float64)
    smooth = ndimage.uniform_filter(as_float_image(signal, "signal").astype(np.float64), 3)
    if smooth.shape != y.shape:
        raise InputError(f"signal {smooth.shape} and noisy image {y.shape} differ in shape")
    edges = np.unique(np.quantile(smooth, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, smooth, side="right") - 1, 0, max(len(edges) - 2, 0))
    which = which.ravel()
    counts = np.bincount(which, minlength=len(edges) - 1)
    usable = counts >= 50
    if len(edges) < 3 or usable.sum() < 2:
        return np.full(y.shape, estimate_noise_sigma(y), np.float32)
    response = _noise_response(y)
    counts = counts[usable]
    means = np.bincount(which, smooth.ravel(), len(usable))[usable] / counts
    mean_response = np.bincount(which, response.ravel(), len(usable))[usable] / counts
    variances = (np.sqrt(np.pi / 2) * mean_response / 6) ** 2
    slope, offset = np.polyfit(means, variances, 1, w=np.sqrt(counts))
    variance = slope * smooth + offset
    floor = 0.01 * max(float(np.average(variances, weights=counts)), np.finfo(np.float32).tiny)
    return np.sqrt(np.maximum(variance, floor)).astype(np.float32)


def blend_with_noisy(
    prediction: np.ndarray, noisy: np.ndarray, sigma: float | np.ndarray, window: int = 15
) -> np.ndarray:
    """The blind-spot ``prediction`` moved towards the ``noisy`` image where it is unsure.

    Parameters
    ----------
    prediction, noisy : numpy.ndarray
        ``(Y, X)`` or ``(Z, Y, X)``, the same shape and units; ``prediction`` must not have
        seen each pixel's own noisy value (a blind-spot network's output).
    sigma : float or numpy.ndarray
        Standard deviation of the noise in those units: one value
        (:func:`estimate_noise_sigma`) or one per pixel (:func:`noise_sigma_map`).
    window : int
        Side of the window over which the prediction's error variance is estimated.

    Returns
    -------
    numpy.ndarray
        float32, ``prediction + w * (noisy - prediction)`` with ``w`` in ``[0, 1)``: near 0
        where the prediction explains the noisy image up to the noise, larger where it
        misses structure (edges, texture).
    """
    mu = as_float_image(prediction, "prediction")
    y = as_float_image(noisy, "noisy image")
    if mu.shape != y.shape:
        raise InputError(f"prediction {mu.shape} and noisy image {y.shape} differ in shape")
    if window < 1:
        raise InputError(f"window must be at least 1 pixel, got {window}")
    residual = y - mu
    local = ndimage.uniform_filter(residual * residual, window)
    weight = np.clip(local - sigma**2, 0, None) / np.maximum(local, np.finfo(np.float32).tiny)
    return (mu + weight * residual).astype(np.float32)
