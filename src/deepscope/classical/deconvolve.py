"""Deconvolution with a known PSF: Richardson-Lucy (iterative) and Wiener (one step).

Both work in the Fourier domain with torch (CPU or CUDA) and share one optical transfer
function helper. The image is mirrored outwards by half the PSF size before the FFTs and
cropped back after, so that the circular convolution of the FFT does not wrap light from
one edge onto the opposite one.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.fft import next_fast_len

from deepscope.classical.filters import as_float_image
from deepscope.classical.noise import estimate_noise_sigma
from deepscope.classical.psf import check_psf
from deepscope.devices import resolve_device
from deepscope.errors import ConfigError, InputError

__all__ = ["METHODS", "deconvolve_image", "richardson_lucy", "wiener_deconvolve"]

METHODS = ("rl", "wiener")
"""Names :func:`deconvolve_image` accepts: ``'rl'`` (Richardson-Lucy) and ``'wiener'``."""

NEGATIVE_PEAK_FRACTION = 0.1
"""Richardson-Lucy clips negative values no deeper than this fraction of the brightest
value to 0 (or no deeper than :data:`NEGATIVE_NOISE_SIGMAS` times the noise level)."""

NEGATIVE_NOISE_SIGMAS = 6.0
"""Richardson-Lucy clips negative values no deeper than this many noise standard
deviations (:func:`~deepscope.classical.noise.estimate_noise_sigma`) to 0 (or no deeper
than :data:`NEGATIVE_PEAK_FRACTION` of the brightest value)."""


def _clip_small_negatives(array: np.ndarray) -> np.ndarray:
    """``array`` with negative values that are noise around a zero background clipped to
    0; deeper ones (an offset, a background subtracted too far) raise an InputError.

    Small means no deeper than :data:`NEGATIVE_PEAK_FRACTION` of the brightest value or
    :data:`NEGATIVE_NOISE_SIGMAS` noise standard deviations, whichever is larger.
    """
    lowest = float(array.min())
    if lowest >= 0:
        return array
    peak = float(array.max())
    tolerance = NEGATIVE_PEAK_FRACTION * max(peak, 0.0)
    if -lowest > tolerance and min(array.shape[-2:]) >= 3:
        tolerance = max(tolerance, NEGATIVE_NOISE_SIGMAS * estimate_noise_sigma(array))
    if peak <= 0 or -lowest > tolerance:
        raise InputError(
            f"Richardson-Lucy needs intensities >= 0, but the image goes down to "
            f"{lowest:.4g} (brightest {peak:.4g}), deeper than its noise: subtract a smaller "
            "background/offset so that the background sits at about 0, or use the Wiener "
            "method (--method wiener), which takes values of any sign"
        )
    return np.maximum(array, 0)


def _prepare(image: np.ndarray, psf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked float32 image and normalised PSF that fits inside it."""
    array = as_float_image(image)
    kernel = check_psf(psf, array.ndim)
    if any(k > n for k, n in zip(kernel.shape, array.shape, strict=True)):
        raise InputError(
            f"PSF {kernel.shape} is larger than the image {array.shape} along some axis; "
            "crop the PSF or use a larger image"
        )
    return array, kernel


def _pad(array: np.ndarray, psf_shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Mirror ``array`` outwards by half the PSF per side (more at the end, up to an
    FFT-friendly size; the edge pixel is repeated, as in scipy.ndimage's ``'reflect'``).

    Returns the padded array and the slices that crop it back to ``array``.
    """
    widths, crop = [], []
    for n, k in zip(array.shape, psf_shape, strict=True):
        before = k // 2
        size = next_fast_len(n + k - 1, real=True)
        widths.append((before, size - n - before))
        crop.append(slice(before, before + n))
    return np.pad(array, widths, mode="symmetric"), tuple(crop)


def _otf(psf: np.ndarray, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Optical transfer function: the real FFT of ``psf`` zero-padded to ``shape`` and
    shifted circularly so that its centre (index ``k // 2``) sits at the origin.

    Multiplying a spectrum by it convolves with the PSF; by its conjugate, correlates.
    """
    padded = torch.zeros(shape, dtype=torch.float32, device=device)
    padded[tuple(slice(0, k) for k in psf.shape)] = torch.from_numpy(psf).to(device)
    centre = tuple(-(k // 2) for k in psf.shape)
    padded = torch.roll(padded, shifts=centre, dims=tuple(range(len(shape))))
    return torch.fft.rfftn(padded)


def richardson_lucy(
    image: np.ndarray,
    psf: np.ndarray,
    iterations: int = 30,
    device: str | torch.device = "cpu",
    eps: float = 1e-6,
) -> np.ndarray:
    """Richardson-Lucy deconvolution: the maximum-likelihood image under Poisson noise.

    Starting from a flat estimate ``x`` (the image mean), each iteration computes::

        x <- x * correlate(image / max(convolve(x, psf), eps * image.max()), psf)

    It keeps the estimate non-negative and the total intensity about constant. More
    iterations sharpen more but also amplify noise; 10-50 is usual, and noisy images
    want fewer (or denoising first).

    Parameters
    ----------
    image : numpy.ndarray
        ``(Y, X)`` or ``(Z, Y, X)`` blurred image, in intensities >= 0: the Poisson model
        has no negative light. Small negative values, as noise around a background
        subtracted to 0 leaves them, are clipped to 0: those no deeper than 10 % of the
        brightest value (:data:`NEGATIVE_PEAK_FRACTION`) or than 6 noise standard
        deviations (:data:`NEGATIVE_NOISE_SIGMAS`, noise from
        :func:`~deepscope.classical.noise.estimate_noise_sigma`), whichever is larger.
        Deeper ones mean an offset is left in the data (a background subtracted too far,
        a signed camera offset); clipping them would throw away most of the image and
        return sharp peaks on the few pixels left, so they raise an InputError instead.
        Subtract a smaller background first, or use :func:`wiener_deconvolve`, which is
        linear and takes values of any sign.
    psf : numpy.ndarray
        PSF with the image's number of axes, no larger than the image, centre at index
        ``k // 2`` per axis; normalised to sum 1 here.
    iterations : int
        Number of iterations (>= 1).
    device : str or torch.device
        ``'cpu'`` or ``'cuda'``. Threads are left to the caller
        (:func:`torch.set_num_threads`).
    eps : float
        Floor of the blurred estimate, relative to the image maximum, to avoid dividing
        by zero.

    Returns
    -------
    numpy.ndarray
        The deconvolved image, float32, same shape as ``image``.

    Raises
    ------
    InputError
        If the image is not 2D/3D or not finite, has negative values deeper than its
        noise (see ``image``), the PSF is invalid, has a different number of axes or is
        larger than the image.
    ConfigError
        If ``iterations`` < 1, ``eps`` <= 0 or the device is unknown or unavailable.

    Notes
    -----
    All convolutions are products with the optical transfer function (OTF), computed
    once, in the Fourier domain (``torch.fft.rfftn``/``irfftn``), in float32. The image is
    mirrored outwards by half the PSF size (and up to a fast FFT size) and cropped back,
    so edges are treated as if the sample continued as its mirror image (edge pixel
    repeated: numpy's ``'symmetric'``, scipy.ndimage's ``'reflect'``).
    :func:`skimage.restoration.richardson_lucy` instead pads with zeros (it starts from
    a flat 0.5, which gives the same iterates, since the update ignores the estimate's
    scale); away from the edges both give the same result.

    Examples
    --------
    >>> from scipy import ndimage
    >>> from deepscope.classical import gaussian_psf
    >>> truth = np.zeros((32, 32), np.float32); truth[16, 16] = 1.0
    >>> psf = gaussian_psf((9, 9), 1.5)
    >>> blurred = ndimage.convolve(truth, psf)
    >>> restored = richardson_lucy(blurred, psf, iterations=50)
    >>> bool(restored.max() > 2 * blurred.max())
    True
    """
    if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 1:
        raise ConfigError(f"iterations must be a whole number >= 1, got {iterations!r}")
    if not eps > 0:
        raise ConfigError(f"eps must be > 0, got {eps!r}")
    array, kernel = _prepare(image, psf)
    dev = resolve_device(device)
    array = _clip_small_negatives(array)
    scale = float(array.max())
    if scale == 0:
        return np.zeros_like(array)
    padded, crop = _pad(array / scale, kernel.shape)
    shape = padded.shape
    otf = _otf(kernel, shape, dev)
    otf_conj = otf.conj().resolve_conj()  # materialised once, not in every product
    observed = torch.from_numpy(padded).to(dev)
    estimate = torch.full(shape, float(observed.mean()), dtype=torch.float32, device=dev)
    for _ in range(int(iterations)):
        blurred = torch.fft.irfftn(torch.fft.rfftn(estimate).mul_(otf), s=shape)
        ratio = torch.div(observed, blurred.clamp_min_(eps), out=blurred)
        estimate.mul_(torch.fft.irfftn(torch.fft.rfftn(ratio).mul_(otf_conj), s=shape))
    # FFT rounding can leave values of -1e-30 or so where the image is dark
    return (estimate[crop].clamp_min(0) * scale).cpu().numpy()


def wiener_deconvolve(
    image: np.ndarray,
    psf: np.ndarray,
    balance: float = 0.01,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Wiener deconvolution: one linear filter in the Fourier domain.

    With ``H`` the optical transfer function and ``Y`` the spectrum of the image::

        X = conj(H) * Y / (|H|**2 + balance)

    ``balance`` is the noise-to-signal power ratio, taken constant over frequencies:
    small values restore more detail and amplify more noise. Wiener is fast and
    linear, and suits images with little noise; Richardson-Lucy suits photon-counting
    (Poisson) noise and keeps the result non-negative.

    Parameters
    ----------
    image : numpy.ndarray
        ``(Y, X)`` or ``(Z, Y, X)`` blurred image (any sign).
    psf : numpy.ndarray
        PSF with the image's number of axes, no larger than the image, centre at index
        ``k // 2`` per axis; normalised to sum 1 here.
    balance : float
        Regularisation (> 0), e.g. 1e-3 for nearly noiseless images, 1e-1 for noisy ones.
    device : str or torch.device
        ``'cpu'`` or ``'cuda'``.

    Returns
    -------
    numpy.ndarray
        The deconvolved image, float32, same shape; it may ring near sharp edges and
        have small negative values, which are kept.

    Raises
    ------
    InputError
        If the image is not 2D/3D or not finite, the PSF is invalid, has a different
        number of axes or is larger than the image.
    ConfigError
        If ``balance`` <= 0 or the device is unknown or unavailable.
    """
    if not (np.isfinite(balance) and balance > 0):
        raise ConfigError(f"balance must be a positive number, got {balance!r}")
    array, kernel = _prepare(image, psf)
    dev = resolve_device(device)
    padded, crop = _pad(array, kernel.shape)
    shape = padded.shape
    otf = _otf(kernel, shape, dev)
    spectrum = torch.fft.rfftn(torch.from_numpy(padded).to(dev))
    spectrum.mul_(otf.conj()).div_(otf.abs().square_().add_(balance))
    return torch.fft.irfftn(spectrum, s=shape)[crop].cpu().numpy()


def deconvolve_image(
    image: np.ndarray,
    psf: np.ndarray,
    method: str = "rl",
    *,
    iterations: int = 30,
    balance: float = 0.01,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Deconvolve with the method named: :func:`richardson_lucy` or :func:`wiener_deconvolve`.

    Parameters
    ----------
    image, psf : numpy.ndarray
        As for the two methods.
    method : str
        ``'rl'`` (Richardson-Lucy, uses ``iterations``) or ``'wiener'`` (uses ``balance``).
    iterations : int
        Richardson-Lucy iterations.
    balance : float
        Wiener regularisation.
    device : str or torch.device
        ``'cpu'`` or ``'cuda'``.

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``image``.

    Raises
    ------
    ConfigError
        If ``method`` is not one of :data:`METHODS`, or as the methods raise.
    InputError
        As the methods raise.
    """
    if method == "rl":
        return richardson_lucy(image, psf, iterations=iterations, device=device)
    if method == "wiener":
        return wiener_deconvolve(image, psf, balance=balance, device=device)
    raise ConfigError(f"unknown deconvolution method {method!r}; use one of {', '.join(METHODS)}")
