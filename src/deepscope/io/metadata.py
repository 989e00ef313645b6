"""Helpers shared by the format modules: axes from files, units, pixel sizes, errors."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from deepscope.errors import AxesError, InputError
from deepscope.io.axes import SPATIAL_AXES, default_axes, validate_axes

__all__ = [
    "Decoded",
    "check_not_empty",
    "choose_axes",
    "clean_pixel_size",
    "error_reason",
    "pixel_size_from_sequence",
    "to_micrometres",
]

# Length units found in TIFF, OME and NGFF metadata, as a factor to micrometres.
_UNIT_TO_UM = {
    "micrometer": 1.0,
    "micrometre": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "um": 1.0,
    "\u00b5m": 1.0,  # micro sign
    "\u03bcm": 1.0,  # Greek small letter mu
    "\\u00b5m": 1.0,  # ImageJ's escaped micro sign, as some files hold it
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "nm": 1e-3,
    "millimeter": 1e3,
    "millimetre": 1e3,
    "mm": 1e3,
    "centimeter": 1e4,
    "centimetre": 1e4,
    "cm": 1e4,
    "meter": 1e6,
    "metre": 1e6,
    "m": 1e6,
    "inch": 25400.0,
    "in": 25400.0,
}


class Decoded(NamedTuple):
    """What a format reader returns: the array, its final axes and pixel size if known."""

    data: np.ndarray
    axes: str
    pixel_size: dict[str, float] | None


def error_reason(error: BaseException) -> str:
    """First line of an exception's message (or its type name), for one-line errors."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def check_not_empty(data: np.ndarray, name: str) -> None:
    """Raise :class:`InputError` if ``data`` has a dimension of size 0."""
    if data.size == 0 or 0 in data.shape:
        raise InputError(
            f"image {name!r} is empty (shape {tuple(data.shape)}); "
            "check the file or choose another image"
        )


def choose_axes(shape: Sequence[int], file_axes: str | None, axes: str | None, name: str) -> str:
    """Pick the axes of an image just read.

    ``axes`` (given by the user) wins; otherwise the axes stored in the file; otherwise
    :func:`default_axes` guesses from the shape.
    """
    ndim = len(shape)
    if axes is not None:
        return validate_axes(axes, ndim, name=name)
    if file_axes:
        try:
            return validate_axes(file_axes, ndim, name=name)
        except AxesError as error:
            raise AxesError(
                f"{error} (axes {file_axes!r} are stored in the file; pass axes to override them)"
            ) from None
    try:
        return default_axes(shape)
    except AxesError as error:
        raise AxesError(f"image {name!r}: {error}") from None


def to_micrometres(value: float, unit: object) -> float | None:
    """Convert a length to micrometres; ``None`` if the unit is unknown or value invalid."""
    if isinstance(unit, bytes):
        unit = unit.decode("utf-8", "replace")
    if not isinstance(unit, str):
        return None
    factor = _UNIT_TO_UM.get(unit.strip().lower())
    if factor is None:
        return None
    try:
        result = float(value) * factor
    except (TypeError, ValueError):
        return None
    if not math.isfinite(result) or result <= 0:
        return None
    return result


def _positive_float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def clean_pixel_size(
    pixel_size: Mapping[str, object] | None,
    axes: str,
    *,
    name: str | None = None,
    strict: bool = True,
) -> dict[str, float] | None:
    """Normalise a pixel-size mapping to ``{'Z'|'Y'|'X': micrometres}``.

    Keys are upper-cased. With ``strict`` (values given by a user), a key that is not a
    spatial axis of ``axes`` or a value that is not a positive number raises
    :class:`InputError`; without it (values read from a file) such entries are dropped.
    Returns ``None`` when nothing is left.
    """
    if pixel_size is None:
        return None
    where = f" of image {name!r}" if name else ""
    if not isinstance(pixel_size, Mapping):
        if strict:
            raise InputError(
                f"pixel_size{where} must be a dict such as {{'Y': 0.65, 'X': 0.65}}, "
                f"got {type(pixel_size).__name__}"
            )
        return None
    spatial = [letter for letter in axes if letter in SPATIAL_AXES]
    cleaned: dict[str, float] = {}
    for key, value in pixel_size.items():
        letter = key.upper() if isinstance(key, str) else key
        if letter not in spatial:
            if strict:
                raise InputError(
                    f"pixel_size{where} has key {key!r} but the spatial axes are "
                    f"{''.join(spatial)!r}; give sizes only for those axes"
                )
            continue
        number = _positive_float(value)
        if number is None:
            if strict:
                raise InputError(
                    f"pixel_size{where} for axis {letter!r} is {value!r}; "
                    "give a positive number of micrometres"
                )
            continue
        cleaned[letter] = number
    if not cleaned:
        return None
    return {letter: cleaned[letter] for letter in spatial if letter in cleaned}


def pixel_size_from_sequence(values: Sequence[object], axes: str) -> dict[str, float] | None:
    """Map a list of sizes (micrometres) onto the spatial axes of ``axes``, in order.

    This reads attributes such as ``element_size_um`` of ilastik and Fiji HDF5 files, which
    hold one value per spatial axis (Fiji always writes three: Z, Y, X). A list longer than
    the number of spatial axes is matched from its end, a shorter one to the last spatial
    axes. Invalid entries (for example NaN for an unknown size) are skipped.
    """
    sizes = [_positive_float(value) for value in values]
    spatial = [letter for letter in axes if letter in SPATIAL_AXES]
    if len(sizes) >= len(spatial):
        pairs = zip(spatial, sizes[len(sizes) - len(spatial) :], strict=True)
    else:
        pairs = zip(spatial[len(spatial) - len(sizes) :], sizes, strict=True)
    result = {letter: size for letter, size in pairs if size is not None}
    return result or None
