"""Noise level of an image, and the blend of a blind-spot prediction with the noisy pixel.

A blind-spot network (Noise2Void, :mod:`deepscope.nets.blindspot`) predicts each pixel from
its neighbours only, so it throws away what the pixel's own noisy value says. Laine et al.
(2019) put it back: with a prediction ``mu`` whose error has variance ``s2`` and a noisy
value ``y`` with noise variance ``sigma2``, independent of each other, the best estimate
of the clean value is ``mu + s2 / (s2 + sigma2) * (y - mu)``. They predict ``s2`` with
the network; :func:`blend_with_noisy` estimates it from the image instead, as the local mean
of ``(y - mu)**2`` minus ``sigma2`` (that mean is ``s2 + sigma2``), a Wiener filter of the
residual. ``sigma`` comes from :func:`estimate_noise_sigma` (Immerkær 1996).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from deepscope.classical.filters import as_float_image
from deepscope.errors import InputError

__all__ = ["blend_with_noisy", "estimate_noise_sigma"]

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
    kernel = _NOISE_KERNEL.reshape((1,) * (x.ndim - 2) + (3, 3))
    response = ndimage.correlate(x, kernel)[..., 1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)


def blend_with_noisy(
    prediction: np.ndarray, noisy: np.ndarray, sigma: float, window: int = 15
) -> np.ndarray:
    """The blind-spot ``prediction`` moved towards the ``noisy`` image where it is unsure.

    Parameters
    ----------
    prediction, noisy : numpy.ndarray
        ``(Y, X)`` or ``(Z, Y, X)``, the same shape and units; ``prediction`` must not have
        seen each pixel's own noisy value (a blind-spot network's output).
    sigma : float
        Standard deviation of the noise in those units (:func:`estimate_noise_sigma`).
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
