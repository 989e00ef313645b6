"""Point-spread functions (PSFs): Gaussian models of microscopes, and measured PSFs from files.

Every PSF here is a float32 array that sums to 1, with its centre at the middle pixel
(index ``n // 2`` along each axis), the convention :mod:`deepscope.classical.deconvolve`
and :func:`scipy.ndimage.convolve` share.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from deepscope.errors import ConfigError, InputError

__all__ = [
    "check_psf",
    "confocal_psf",
    "gaussian_psf",
    "psf_from_options",
    "read_psf",
    "read_psf_and_pixel_size",
    "warn_if_pixel_sizes_differ",
    "widefield_psf",
]

# Gaussian fits to the paraxial widefield PSF (Zhang, Zerubia & Olivo-Marin 2007):
# sigma_lateral = 0.21 lambda / NA, sigma_axial = 0.66 lambda n / NA^2.
_WIDEFIELD = (0.21, 0.66)
# Confocal with a pinhole well below one Airy unit and excitation ~ emission wavelength:
# the PSF is the product of two widefield-like Gaussians, which divides both sigmas by sqrt(2).
_CONFOCAL = (0.21 / math.sqrt(2), 0.66 / math.sqrt(2))
# Automatic PSF size: 2 * ceil(_TRUNCATE * sigma) + 1 pixels per axis (keeps > 99.9 %).
_TRUNCATE = 4.0


def _as_sigmas(sigma: float | Sequence[float], ndim: int) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(sigma, dtype=float))
    if values.ndim != 1 or len(values) not in (1, ndim):
        raise ConfigError(f"sigma must be one number or {ndim} (one per axis), got {sigma!r}")
    if not np.all(np.isfinite(values)) or values.min() <= 0:
        raise ConfigError(f"sigma must be > 0 pixels, got {sigma!r}")
    return tuple(float(v) for v in np.broadcast_to(values, (ndim,)))


def _as_shape(shape: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(shape)
    if len(dims) not in (2, 3) or any(int(n) != n or n < 1 for n in dims):
        raise ConfigError(f"PSF shape must be 2 or 3 positive whole numbers, got {shape!r}")
    if any(int(n) % 2 == 0 for n in dims):
        raise ConfigError(f"PSF shape must be odd along every axis (a centre pixel), got {shape!r}")
    return tuple(int(n) for n in dims)


def gaussian_psf(shape: Sequence[int], sigma: float | Sequence[float]) -> np.ndarray:
    """A Gaussian PSF, centred and normalised to sum 1.

    Parameters
    ----------
    shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)`` size in pixels; odd along every axis so that the
        PSF has a centre pixel.
    sigma : float or sequence of float
        Standard deviation in pixels: one number, or one per axis (``(sz, sy, sx)``).

    Returns
    -------
    numpy.ndarray
        float32 array of ``shape``, maximal at the centre pixel, mirror-symmetric about
        it along every axis, summing to 1.

    Raises
    ------
    ConfigError
        If the shape is not 2 or 3 odd positive sizes or a sigma is not positive.

    Examples
    --------
    >>> psf = gaussian_psf((9, 9), 1.5)
    >>> psf.shape, round(float(psf.sum()), 6), np.unravel_index(psf.argmax(), psf.shape)
    ((9, 9), 1.0, (np.int64(4), np.int64(4)))
    """
    dims = _as_shape(shape)
    sigmas = _as_sigmas(sigma, len(dims))
    profiles = [
        np.exp(-0.5 * ((np.arange(n) - n // 2) / s) ** 2) for n, s in zip(dims, sigmas, strict=True)
    ]
    psf = profiles[0]
    for profile in profiles[1:]:
        psf = np.multiply.outer(psf, profile)
    return (psf / psf.sum()).astype(np.float32)


def _optical_sigmas(
    factors: tuple[float, float],
    ndim: int,
    wavelength_nm: float,
    na: float,
    pixel_size_um: float,
    z_step_um: float | None,
    refractive_index: float,
) -> tuple[float, ...]:
    """Sigmas in pixels, ``(sy, sx)`` or ``(sz, sy, sx)``, from the optics."""
    for value, what in (
        (wavelength_nm, "wavelength"),
        (na, "numerical aperture"),
        (pixel_size_um, "pixel size"),
        (refractive_index, "refractive index"),
    ):
        if not (value is not None and math.isfinite(value) and value > 0):
            raise ConfigError(f"{what} must be a positive number, got {value!r}")
    if na >= refractive_index:
        raise ConfigError(
            f"numerical aperture {na} must be below the refractive index {refractive_index} "
            "of the immersion medium; check --na and the refractive index"
        )
    wavelength_um = wavelength_nm / 1000.0
    lateral = factors[0] * wavelength_um / na / pixel_size_um
    if ndim == 2:
        return (lateral, lateral)
    if z_step_um is None or not (math.isfinite(z_step_um) and z_step_um > 0):
        raise ConfigError(f"a 3D PSF needs a positive z step in micrometres, got {z_step_um!r}")
    axial = factors[1] * wavelength_um * refractive_index / na**2 / z_step_um
    return (axial, lateral, lateral)


def widefield_psf(
    shape: Sequence[int],
    wavelength_nm: float,
    na: float,
    pixel_size_um: float,
    z_step_um: float | None = None,
    refractive_index: float = 1.33,
) -> np.ndarray:
    """Gaussian approximation of a widefield fluorescence microscope's PSF.

    A Gaussian fitted to the paraxial (Born & Wolf) widefield PSF, after Zhang, Zerubia
    and Olivo-Marin [1]_, with the emission wavelength ``lambda``, numerical aperture
    ``NA`` and refractive index ``n`` of the immersion medium:

    - lateral: ``sigma_xy = 0.21 * lambda / NA``
    - axial: ``sigma_z = 0.66 * lambda * n / NA**2``

    converted to pixels with ``pixel_size_um`` (Y and X) and ``z_step_um`` (Z). This is
    a good model of the central lobe of the Airy pattern; it has no side lobes, no
    spherical aberration and no depth dependence, so a measured PSF (:func:`read_psf`)
    is better when there is one.

    Parameters
    ----------
    shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)`` size in pixels, odd along every axis; about
        ``2 * ceil(4 * sigma) + 1`` keeps the whole Gaussian.
    wavelength_nm : float
        Emission wavelength in nanometres, e.g. 520 for GFP.
    na : float
        Numerical aperture of the objective; below ``refractive_index``.
    pixel_size_um : float
        Pixel size in the sample (Y and X) in micrometres.
    z_step_um : float, optional
        Distance between planes in micrometres; needed for a 3D ``shape``.
    refractive_index : float
        Refractive index of the immersion medium: 1.0 air, 1.33 water (default),
        1.518 oil.

    Returns
    -------
    numpy.ndarray
        float32 PSF of ``shape``, centred, summing to 1.

    Raises
    ------
    ConfigError
        If a value is not positive, ``na >= refractive_index``, ``z_step_um`` is missing
        for a 3D shape, or the shape is not 2 or 3 odd sizes.

    References
    ----------
    .. [1] B. Zhang, J. Zerubia and J.-C. Olivo-Marin, "Gaussian approximations of
       fluorescence microscope point-spread function models", Applied Optics 46(10),
       1819-1829 (2007).

    Examples
    --------
    >>> psf = widefield_psf((9, 9), wavelength_nm=520, na=1.4, pixel_size_um=0.065,
    ...                     refractive_index=1.518)  # sigma = 0.078 um = 1.2 pixels
    >>> psf.shape
    (9, 9)
    """
    dims = _as_shape(shape)
    sigmas = _optical_sigmas(
        _WIDEFIELD, len(dims), wavelength_nm, na, pixel_size_um, z_step_um, refractive_index
    )
    return gaussian_psf(dims, sigmas)


def confocal_psf(
    shape: Sequence[int],
    wavelength_nm: float,
    na: float,
    pixel_size_um: float,
    z_step_um: float | None = None,
    refractive_index: float = 1.33,
) -> np.ndarray:
    """Gaussian approximation of a confocal (point-scanning) microscope's PSF.

    With a pinhole well below one Airy unit, the confocal PSF is the product of the
    excitation and detection PSFs. Taking both as the widefield Gaussians of
    Zhang, Zerubia and Olivo-Marin [1]_ at one wavelength (excitation close to
    emission), the product is a Gaussian with both sigmas divided by ``sqrt(2)``:

    - lateral: ``sigma_xy = 0.21 / sqrt(2) * lambda / NA ≈ 0.15 * lambda / NA``
    - axial: ``sigma_z = 0.66 / sqrt(2) * lambda * n / NA**2 ≈ 0.47 * lambda * n / NA**2``

    This is the best case; an open pinhole (one Airy unit or more) gives a PSF between
    this and :func:`widefield_psf`. Parameters, return value and errors are those of
    :func:`widefield_psf` (``wavelength_nm`` is the emission wavelength).

    References
    ----------
    .. [1] B. Zhang, J. Zerubia and J.-C. Olivo-Marin, "Gaussian approximations of
       fluorescence microscope point-spread function models", Applied Optics 46(10),
       1819-1829 (2007).

    Examples
    --------
    >>> psf = confocal_psf((7, 9, 9), 520, 1.4, 0.065, z_step_um=0.2, refractive_index=1.518)
    >>> psf.shape
    (7, 9, 9)
    """
    dims = _as_shape(shape)
    sigmas = _optical_sigmas(
        _CONFOCAL, len(dims), wavelength_nm, na, pixel_size_um, z_step_um, refractive_index
    )
    return gaussian_psf(dims, sigmas)


def check_psf(psf: np.ndarray, ndim: int | None = None, name: str = "PSF") -> np.ndarray:
    """Check a PSF array and return it as float32 normalised to sum 1.

    Parameters
    ----------
    psf : numpy.ndarray
        ``(Y, X)`` or ``(Z, Y, X)`` PSF, centre at index ``n // 2`` along each axis.
    ndim : int, optional
        Number of dimensions the PSF must have (that of the image it is used with).
    name : str
        What to call the PSF in error messages (e.g. its file name).

    Returns
    -------
    numpy.ndarray
        ``psf / psf.sum()`` as float32.

    Raises
    ------
    InputError
        If the PSF is not 2D/3D (or not ``ndim``-D), empty, not finite, has negative
        values or is all zero.
    """
    array = np.asarray(psf)
    if array.ndim not in (2, 3):
        raise InputError(
            f"{name} must be 2D (YX) or 3D (ZYX), got {array.ndim}D with shape {array.shape}"
        )
    if ndim is not None and array.ndim != ndim:
        raise InputError(
            f"{name} is {array.ndim}D {array.shape} but the image is {ndim}D; give a {ndim}D PSF"
        )
    if array.size == 0 or array.dtype.kind not in "biuf":
        raise InputError(f"{name} must be a non-empty array of real numbers")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise InputError(f"{name} contains NaN or infinite values")
    if array.min() < 0:
        raise InputError(
            f"{name} has negative values (min {array.min():.3g}); a PSF is a light "
            "distribution: subtract the background and clip at 0 first"
        )
    total = array.sum()
    if total <= 0:
        raise InputError(f"{name} is all zero; it must contain the image of a point")
    return (array / total).astype(np.float32)


def read_psf(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a measured PSF (e.g. a bead image): :func:`read_psf_and_pixel_size` without the
    pixel size."""
    return read_psf_and_pixel_size(path)[0]


def read_psf_and_pixel_size(
    path: str | os.PathLike[str],
) -> tuple[np.ndarray, dict[str, float] | None]:
    """Read a measured PSF (e.g. a bead image) from a TIFF or other image file, and the
    pixel size the file records (``None`` when it records none).

    Parameters
    ----------
    path : str or Path
        The file, read with :func:`deepscope.io.read_image`. Its centre must be at the
        middle pixel (index ``n // 2`` per axis; crop it around the bead so); odd sizes
        avoid a half-pixel shift.

    Returns
    -------
    numpy.ndarray, dict or None
        The PSF as float32, normalised to sum 1, and the file's pixel size by axis.

    Raises
    ------
    InputError
        If the file cannot be read, or its data is not 2D/3D, is negative somewhere
        or is all zero.
    """
    from deepscope.io import read_image

    if os.path.isdir(path):
        raise InputError(f"PSF {os.fspath(path)!r} is a folder; give the PSF's image file")
    image = read_image(path)
    extra = [a for a in image.axes if a in "CT" and image.data.shape[image.axes.index(a)] > 1]
    if extra:
        raise InputError(
            f"PSF {os.fspath(path)!r} has axes {image.axes} (shape {image.data.shape}); a PSF "
            "is one YX or ZYX image: save one channel and one time point"
        )
    data = image.as_axes("ZYX" if "Z" in image.axes else "YX")
    psf = check_psf(data, name=f"PSF {os.fspath(path)!r}")
    _warn_if_off_centre(psf, os.fspath(path))
    return psf, image.pixel_size


def warn_if_pixel_sizes_differ(
    psf: dict | None, image: dict | None, psf_name: str, image_name: str
) -> None:
    """Warn when a measured PSF and an image both record their pixel sizes and these
    differ by more than a tenth along an axis: the PSF is applied pixel for pixel."""
    common = [a for a in "ZYX" if a in (psf or {}) and a in (image or {})]
    if all(0.9 < float(psf[a]) / float(image[a]) < 1.1 for a in common):
        return
    shown = " x ".join(f"{float(psf[a]):g}" for a in common)
    theirs = " x ".join(f"{float(image[a]):g}" for a in common)
    warnings.warn(
        f"PSF {psf_name} was recorded at {shown} µm pixels ({''.join(common)}) and "
        f"{image_name} has {theirs}: the PSF is applied pixel for pixel, so resample it to "
        "the image's pixel size first (or give the optics: --wavelength and --na)",
        stacklevel=3,
    )


def _warn_if_off_centre(psf: np.ndarray, name: str) -> None:
    """A PSF whose light is centred more than a pixel away from its middle pixel shifts
    every result by that much: say so (the bright part, above half the peak, decides)."""
    bright = np.where(psf >= psf.max() / 2, psf, 0.0)
    centre = ndi.center_of_mass(bright)
    offset = tuple(round(c - n // 2) for c, n in zip(centre, psf.shape, strict=True))
    if any(abs(c - n // 2) > 1 for c, n in zip(centre, psf.shape, strict=True)):
        warnings.warn(
            f"PSF {name!r} is centred {offset} pixels (along {'ZYX'[-psf.ndim :]}) from its "
            "middle pixel, so the results shift by as much; crop it with the bead in the "
            "middle",
            stacklevel=3,
        )


def _auto_shape(sigmas: Sequence[float], image_shape: Sequence[int]) -> tuple[int, ...]:
    """Odd size ``2 * ceil(4 sigma) + 1`` per axis, at most the image size."""
    shape = []
    for s, n in zip(sigmas, image_shape, strict=True):
        size = 2 * math.ceil(_TRUNCATE * s) + 1
        largest_odd = n if n % 2 else n - 1
        shape.append(max(1, min(size, largest_odd)))
    return tuple(shape)


def _parse_sigma(sigma: float | Sequence[float] | str) -> float | tuple[float, ...]:
    if not isinstance(sigma, str):
        return sigma
    try:
        values = tuple(float(part) for part in sigma.split(","))
    except ValueError:
        raise ConfigError(
            f"PSF sigma must be numbers separated by commas, e.g. 2 or 2,1.5,1.5; got {sigma!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def psf_from_options(
    image_shape: Sequence[int],
    *,
    psf_path: str | os.PathLike[str] | None = None,
    measured: np.ndarray | None = None,
    sigma: float | Sequence[float] | str | None = None,
    wavelength_nm: float | None = None,
    na: float | None = None,
    pixel_size_um: float | None = None,
    z_step_um: float | None = None,
    confocal: bool = False,
    refractive_index: float = 1.33,
    recorded_pixel_size: dict[str, float] | None = None,
) -> np.ndarray:
    """The PSF for an image from exactly one description: a file, a sigma or the optics.

    This is what the ``deepscope deconvolve`` options map to.

    Parameters
    ----------
    image_shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)`` shape of the image; the PSF gets its number of axes.
        Computed PSFs are ``2 * ceil(4 sigma) + 1`` pixels per axis, at most the image size.
    psf_path : str or Path, optional
        A measured PSF file (:func:`read_psf`).
    measured : numpy.ndarray, optional
        That file's PSF when the caller has read it already (a batch reads it once).
    sigma : float, sequence of float or str, optional
        Gaussian sigma in pixels (:func:`gaussian_psf`): one number or one per axis, also
        as text ``'2'`` or ``'2,1.5,1.5'``.
    wavelength_nm, na : float, optional
        Emission wavelength and numerical aperture, for :func:`widefield_psf` (or
        :func:`confocal_psf` with ``confocal=True``).
    pixel_size_um, z_step_um : float, optional
        Pixel size and z step in micrometres; by default taken from
        ``recorded_pixel_size`` (keys ``'X'`` and ``'Z'``).
    confocal : bool
        Use the confocal model instead of the widefield one.
    refractive_index : float
        Refractive index of the immersion medium (1.33 water).
    recorded_pixel_size : dict of str to float, optional
        The pixel size stored in the image file (``Image.pixel_size``).

    Returns
    -------
    numpy.ndarray
        float32 PSF normalised to sum 1, as many axes as the image.

    Raises
    ------
    ConfigError
        If no description or more than one is given, one is incomplete (the optics need
        a wavelength, NA and pixel size) or a value is invalid.
    InputError
        If the PSF file is unusable or its number of axes differs from the image's.
    """
    dims = tuple(int(n) for n in image_shape)
    ndim = len(dims)
    optics = wavelength_nm is not None or na is not None
    given = [
        label
        for label, present in (
            ("a PSF file", psf_path is not None),
            ("a PSF sigma", sigma is not None),
            ("a wavelength and NA", optics),
        )
        if present
    ]
    if len(given) != 1:
        raise ConfigError(
            "describe the PSF in exactly one way: a PSF file (--psf), a Gaussian sigma "
            "(--psf-sigma) or the optics (--wavelength, --na, --pixel-size)"
            + (f"; got {' and '.join(given)}" if given else "")
        )
    if not optics:
        unused = [
            option
            for option, present in (
                ("--confocal", confocal),
                ("--refractive-index", refractive_index != 1.33),
                ("--pixel-size", pixel_size_um is not None),
                ("--z-step", z_step_um is not None),
            )
            if present
        ]
        if unused:
            one = len(unused) == 1
            raise ConfigError(
                f"{' and '.join(unused)} {'describes' if one else 'describe'} the optics and "
                f"{'goes' if one else 'go'} with --wavelength and --na; with {given[0]} "
                f"{'it' if one else 'they'} would be ignored: leave {'it' if one else 'them'} out"
            )
    if psf_path is not None:
        psf = read_psf(psf_path) if measured is None else measured
        return check_psf(psf, ndim, name=f"PSF {os.fspath(psf_path)!r}")
    if sigma is not None:
        parsed = _parse_sigma(sigma)
        values = np.atleast_1d(np.asarray(parsed, dtype=float))
        if values.ndim == 1 and len(values) not in (1, ndim):
            raise InputError(
                f"--psf-sigma has {len(values)} values but the image is {ndim}D "
                f"{'x'.join(map(str, dims))}; give one number or {ndim} "
                f"({'z,y,x' if ndim == 3 else 'y,x'})"
            )
        sigmas = _as_sigmas(parsed, ndim)
        return gaussian_psf(_auto_shape(sigmas, dims), sigmas)
    recorded = recorded_pixel_size or {}
    pixel_size_um = pixel_size_um if pixel_size_um is not None else recorded.get("X")
    if ndim == 3 and z_step_um is None:
        z_step_um = recorded.get("Z")
        if z_step_um is None:
            raise InputError(
                "the image is a volume whose file records no z step: give --z-step "
                "(micrometres between slices) for a PSF from the optics"
            )
    missing = [
        name
        for name, value in (
            ("wavelength", wavelength_nm),
            ("NA", na),
            ("pixel size", pixel_size_um),
        )
        if value is None
    ]
    if missing:
        raise ConfigError(
            "a PSF from the optics needs --wavelength, --na and --pixel-size (the pixel size "
            f"may also come from the image file); missing: {', '.join(missing)}"
        )
    factors = _CONFOCAL if confocal else _WIDEFIELD
    sigmas = _optical_sigmas(
        factors, ndim, wavelength_nm, na, pixel_size_um, z_step_um, refractive_index
    )
    model = confocal_psf if confocal else widefield_psf
    return model(
        _auto_shape(sigmas, dims), wavelength_nm, na, pixel_size_um, z_step_um, refractive_index
    )
