"""Typical object size of label images: equivalent diameters and their median.

The size model (``Model.predict(..., diameter=...)``) compares the median diameter of the
objects in an image with the one a model was trained on and rescales the image to match.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from deepscope.errors import InputError
from deepscope.measure.regions import DIRECT_IDS


def equivalent_diameters(labels: np.ndarray, ndim: int | None = None) -> np.ndarray:
    """Equivalent diameters (pixels) of the objects of an integer label image (0 =
    background): of the circle with the object's area in 2D, of the sphere with its
    volume in 3D.

    ``ndim`` is the number of spatial axes (default: all axes of ``labels``); an array
    with more axes is a stack of ``ndim``-dimensional label images, measured slice by
    slice. Objects are pixels that share a label (ids of any size).

    Examples
    --------
    >>> labels = np.zeros((20, 20), int)
    >>> labels[2:6, 2:6] = 1          # 16 pixels: a circle of diameter 4.51
    >>> equivalent_diameters(labels).round(2)
    array([4.51])
    """
    labels = np.asarray(labels)
    ndim = labels.ndim if ndim is None else ndim
    if ndim not in (2, 3) or labels.ndim < ndim:
        raise InputError(
            f"diameters are measured in 2D or 3D label images; got {labels.ndim} axes "
            f"for {ndim} spatial ones"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise InputError("diameters need a label image of non-negative integers")
    sizes = []
    for plane in labels.reshape(-1, *labels.shape[labels.ndim - ndim :]):
        flat = plane.ravel()
        if flat.size and flat.max() >= DIRECT_IDS:  # ids of other tools: up to 2**64 - 1
            ids, counts = np.unique(flat, return_counts=True)
            sizes.append(counts[ids > 0])
        else:
            counts = np.bincount(flat)[1:]
            sizes.append(counts[counts > 0])
    size = np.concatenate(sizes).astype(np.float64) if sizes else np.zeros(0)
    if ndim == 2:
        return 2.0 * np.sqrt(size / math.pi)
    return np.cbrt(6.0 * size / math.pi)


def median_diameter(
    labels: np.ndarray | Sequence[np.ndarray], ndim: int | None = None
) -> float | None:
    """Median equivalent diameter (pixels) of the objects of one label image or of a list
    of them (all objects pooled); ``None`` when there are no objects.

    See :func:`equivalent_diameters` for ``ndim``.
    """
    arrays = [labels] if isinstance(labels, np.ndarray) else list(labels)
    found = [equivalent_diameters(a, ndim) for a in arrays]
    diameters = np.concatenate(found) if found else np.zeros(0)
    return float(np.median(diameters)) if diameters.size else None
