"""Non-learned restoration baselines: denoising filters, PSF models and deconvolution.

>>> from deepscope.classical import best_gaussian, gaussian_psf, richardson_lucy
>>> psf = gaussian_psf((15, 15, 15), (2.0, 1.5, 1.5))  # doctest: +SKIP
>>> restored = richardson_lucy(volume, psf, iterations=30)  # doctest: +SKIP

Arrays in and out are numpy; ``(Y, X)`` or ``(Z, Y, X)``, float32 results.
"""

from deepscope.classical.deconvolve import deconvolve_image, richardson_lucy, wiener_deconvolve
from deepscope.classical.filters import best_gaussian, gaussian_denoise, median_denoise
from deepscope.classical.noise import blend_with_noisy, estimate_noise_sigma
from deepscope.classical.psf import (
    check_psf,
    confocal_psf,
    gaussian_psf,
    psf_from_options,
    read_psf,
    read_psf_and_pixel_size,
    warn_if_pixel_sizes_differ,
    widefield_psf,
)

__all__ = [
    "best_gaussian",
    "blend_with_noisy",
    "check_psf",
    "confocal_psf",
    "deconvolve_image",
    "estimate_noise_sigma",
    "gaussian_denoise",
    "gaussian_psf",
    "median_denoise",
    "psf_from_options",
    "read_psf",
    "read_psf_and_pixel_size",
    "richardson_lucy",
    "warn_if_pixel_sizes_differ",
    "widefield_psf",
    "wiener_deconvolve",
]
