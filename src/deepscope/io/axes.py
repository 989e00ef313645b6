"""Axes strings: which dimension of an array means what.

An axes string names every dimension of an array with one letter, in order:

- ``T`` time
- ``C`` channel
- ``Z`` depth (the third spatial axis)
- ``Y`` rows
- ``X`` columns

Every image has ``Y`` and ``X``; the other letters are optional and no letter appears
twice. Lower-case input is accepted and upper-cased. Examples: ``'YX'`` (a grey 2D
image), ``'YXC'`` (an RGB image), ``'ZYX'`` (a volume), ``'TZCYX'`` (an ImageJ hyperstack).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepscope.errors import AxesError

__all__ = [
    "SPATIAL_AXES",
    "VALID_AXES",
    "default_axes",
    "in_spatial_order",
    "spatial_in_order",
    "transpose_axes",
    "validate_axes",
]

#: The axis letters deepscope understands, in the canonical (ImageJ hyperstack) order.
VALID_AXES = "TCZYX"

#: The axes that have a physical pixel size.
SPATIAL_AXES = "ZYX"

# Examples offered in error messages, by number of dimensions.
_EXAMPLES = {
    2: "'YX'",
    3: "'ZYX' or 'YXC'",
    4: "'ZCYX' or 'TZYX'",
    5: "'TZCYX'",
}


def _label(name: str | None) -> str:
    return f"image {name!r}" if name else "image"


def _check_letters(axes: object) -> str:
    """Upper-case ``axes`` and check letters and repeats (not the length)."""
    if not isinstance(axes, str):
        raise AxesError(f"axes must be a string such as 'ZYX', got {type(axes).__name__} {axes!r}")
    upper = axes.upper()
    if not upper:
        raise AxesError("axes is an empty string; pass one letter per dimension such as 'YX'")
    unknown = sorted({letter for letter in upper if letter not in VALID_AXES})
    if unknown:
        letters = ", ".join(repr(letter) for letter in unknown)
        raise AxesError(
            f"axes {axes!r} contains unknown letter(s) {letters}; "
            "use only T (time), C (channel), Z, Y and X"
        )
    repeated = sorted({letter for letter in upper if upper.count(letter) > 1})
    if repeated:
        letters = ", ".join(repr(letter) for letter in repeated)
        raise AxesError(
            f"axes {axes!r} repeats {letters}; name every dimension with a different letter"
        )
    missing = [letter for letter in "YX" if letter not in upper]
    if missing:
        raise AxesError(
            f"axes {axes!r} lacks {' and '.join(missing)}; every image needs both Y and X "
            "(rows and columns)"
        )
    return upper


def validate_axes(axes: str, ndim: int, *, name: str | None = None) -> str:
    """Check an axes string against the number of dimensions of an array.

    Parameters
    ----------
    axes : str
        One letter per dimension from ``T, C, Z, Y, X``; lower case is accepted.
    ndim : int
        Number of dimensions of the array the axes describe.
    name : str, optional
        Name of the image (for example its file name), used in error messages only.

    Returns
    -------
    str
        The axes in upper case.

    Raises
    ------
    AxesError
        If ``axes`` has unknown or repeated letters, lacks ``Y`` or ``X``, or does not
        have exactly ``ndim`` letters.

    Examples
    --------
    >>> validate_axes("zyx", 3)
    'ZYX'
    """
    upper = _check_letters(axes)
    if len(upper) != ndim:
        dims = "dimension" if ndim == 1 else "dimensions"
        letters = "letter" if len(upper) == 1 else "letters"
        example = _EXAMPLES.get(ndim)
        if example is None:
            hint = "images need 2 to 5 dimensions (T, C, Z, Y, X); reshape or select data first"
        else:
            hint = f"pass axes with {ndim} letters such as {example}"
        raise AxesError(
            f"{_label(name)} has {ndim} {dims} but axes {axes!r} has {len(upper)} {letters}; {hint}"
        )
    return upper


def default_axes(shape: Sequence[int]) -> str:
    """Guess the axes of an array from its shape alone.

    The rules, by number of dimensions:

    - 2D: ``'YX'``.
    - 3D: ``'YXC'`` if the last dimension has 3 or 4 elements (RGB or RGBA),
      otherwise ``'ZYX'``.
    - 4D: ``'ZYXC'`` if the last dimension has 3 or 4 elements (a stack of RGB images),
      else ``'ZCYX'`` if the second dimension has at most 4 elements (a few channels,
      ImageJ order), otherwise ``'TZYX'``.
    - 5D: ``'TZYXC'`` if the last dimension has 3 or 4 elements, otherwise ``'TZCYX'``
      (ImageJ hyperstack order).

    Pass axes explicitly whenever the guess may be wrong, for example for a 3D stack of
    only three or four columns.

    Parameters
    ----------
    shape : sequence of int
        Shape of the array.

    Returns
    -------
    str
        The guessed axes, one letter per dimension.

    Raises
    ------
    AxesError
        If the array has fewer than 2 or more than 5 dimensions.
    """
    shape = tuple(int(size) for size in shape)
    ndim = len(shape)
    rgb_last = ndim >= 3 and shape[-1] in (3, 4)
    if ndim == 2:
        return "YX"
    if ndim == 3:
        return "YXC" if rgb_last else "ZYX"
    if ndim == 4:
        if rgb_last:
            return "ZYXC"
        return "ZCYX" if shape[1] <= 4 else "TZYX"
    if ndim == 5:
        return "TZYXC" if rgb_last else "TZCYX"
    raise AxesError(
        f"cannot guess axes for an array of shape {shape}: images need 2 to 5 dimensions "
        "(T, C, Z, Y, X); reshape the data or select part of it first"
    )


def transpose_axes(data: np.ndarray, axes: str, target: str) -> np.ndarray:
    """Reorder the dimensions of an array from ``axes`` to ``target``.

    Axes in ``target`` that ``data`` lacks are added with size 1. Axes of ``data`` that
    ``target`` lacks are removed, which is allowed only when they have size 1.

    Parameters
    ----------
    data : numpy.ndarray
        The array.
    axes : str
        Axes of ``data``, one letter per dimension.
    target : str
        Wanted axes, for example ``'CYX'``.

    Returns
    -------
    numpy.ndarray
        A view of ``data`` (no copy) with ``len(target)`` dimensions in ``target`` order.

    Raises
    ------
    AxesError
        If either axes string is invalid, or an axis missing from ``target`` has more
        than one element.

    Examples
    --------
    >>> transpose_axes(np.zeros((5, 6, 3)), "YXC", "CZYX").shape
    (3, 1, 5, 6)
    """
    data = np.asarray(data)
    axes = validate_axes(axes, data.ndim)
    target = _check_letters(target)

    dropped = [letter for letter in axes if letter not in target]
    for letter in dropped:
        size = data.shape[axes.index(letter)]
        if size != 1:
            raise AxesError(
                f"cannot drop axis {letter!r} of size {size} to turn axes {axes!r} into "
                f"{target!r}; include {letter!r} in the target axes or select one "
                f"{letter} index first"
            )
    if dropped:
        data = np.squeeze(data, axis=tuple(axes.index(letter) for letter in dropped))
        axes = "".join(letter for letter in axes if letter in target)

    added = "".join(letter for letter in target if letter not in axes)
    if added:
        data = np.expand_dims(data, axis=tuple(range(data.ndim, data.ndim + len(added))))
        axes = axes + added

    return np.transpose(data, [axes.index(letter) for letter in target])


def spatial_in_order(axes: str) -> str:
    """``axes`` with its spatial letters in the canonical order ``Z, Y, X`` at the places
    they hold (``'XY'`` -> ``'YX'``, ``'XYC'`` -> ``'YXC'``, ``'CXZY'`` -> ``'CZYX'``); the
    other letters stay where they are."""
    spatial = iter(a for a in SPATIAL_AXES if a in axes)
    return "".join(next(spatial) if a in SPATIAL_AXES else a for a in axes)


def in_spatial_order(data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """``data`` with its spatial axes reordered to ``Z, Y, X`` (a view), and its new axes
    (:func:`spatial_in_order`)."""
    ordered = spatial_in_order(axes)
    return transpose_axes(data, axes, ordered), ordered
