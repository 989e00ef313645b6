"""The size model: rescale an image so its objects have the size a model was trained on.

A model records the median equivalent diameter of its training objects
(``ModelSpec.object_diameter``). Given the typical diameter ``D`` of the objects in a new
image, the image is zoomed by ``object_diameter / D`` (linear, every spatial axis, never the
channel axis), predicted, and the result is resized back to the image's shape (labels and
classes by nearest neighbour, probabilities and images linearly). With ``'auto'`` the
diameter is estimated from the objects of a first prediction at scale 1, and refined once
more from the objects of the rescaled prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from deepscope.errors import InputError, ModelError
from deepscope.measure.regions import keep_largest_pieces
from deepscope.measure.size import median_diameter
from deepscope.tasks.base import Result

#: the smallest and largest zoom the size model applies
MIN_SCALE, MAX_SCALE = 0.1, 10.0
#: 'auto' rescales again while the objects differ from the training size by more than this
TOLERANCE = 0.1
#: 'auto' rescales at most this many times after the first pass at scale 1
MAX_PASSES = 2
#: a rescaled image may hold at most this many pixels (about 1 GiB as float32)
MAX_PIXELS = 2**28

Diameter = float | Literal["auto"] | None


def parse_diameter(value: float | str | None) -> Diameter:
    """A user's ``diameter``: ``None``, ``'auto'`` or a positive number of pixels (numbers
    may come as text, as from the command line); anything else is an :class:`InputError`."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        try:
            number = float(text)
        except ValueError:
            number = math.nan
    elif isinstance(value, bool):
        number = math.nan
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"diameter must be 'auto' or a positive number of pixels, got '{value}'")
    return number


def check_diameter(
    value: float | str | None, object_diameter: float | None, model: str = "this model"
) -> Diameter:
    """:func:`parse_diameter`, and for a fixed number the zoom it implies checked against
    :data:`MIN_SCALE` .. :data:`MAX_SCALE`; a diameter for a model that records no
    training diameter is a :class:`ModelError`."""
    diameter = parse_diameter(value)
    if diameter is None:
        return None
    if not object_diameter:
        raise ModelError(
            f"{model} records no training object diameter, so it cannot rescale images to it "
            "(only models that segment objects, trained by deepscope, do); predict without "
            "--diameter"
        )
    if diameter != "auto":
        scale = object_diameter / diameter
        if not MIN_SCALE <= scale <= MAX_SCALE:
            raise InputError(
                f"diameter {diameter:g} would zoom the image by {scale:.3g} to the model's "
                f"training diameter {object_diameter:.3g}; the size model zooms by "
                f"{MIN_SCALE:g} to {MAX_SCALE:g}: give a diameter from "
                f"{object_diameter / MAX_SCALE:.3g} to {object_diameter / MIN_SCALE:.3g} pixels"
            )
    return diameter


def resample(array: np.ndarray, shape: tuple[int, ...], order: int) -> np.ndarray:
    """``array (..., *spatial)`` with its last ``len(shape)`` axes resized to ``shape``.

    ``order`` 0 (nearest neighbour: labels, classes) keeps the values and the dtype;
    ``order`` 1 (linear: intensities, probabilities) works in float32 and smooths first
    where it shrinks an axis, so that fine detail does not alias.
    """
    n = len(shape)
    spatial = array.shape[array.ndim - n :]
    if tuple(spatial) == tuple(shape):
        return array
    factors = tuple(new / old for new, old in zip(shape, spatial, strict=True))
    lead = array.shape[: array.ndim - n]
    planes = array.reshape(-1, *spatial)
    out = []
    for plane in planes:
        if order > 0:
            plane = plane.astype(np.float32, copy=False)
            sigma = [max(0.0, (1.0 / f - 1.0) / 2.0) for f in factors]
            if any(s > 0 for s in sigma):
                plane = ndi.gaussian_filter(plane, sigma, mode="nearest")
        out.append(ndi.zoom(plane, factors, order=order, mode="nearest", grid_mode=True))
    return np.stack(out).reshape(*lead, *shape)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Labels numbered 1..N again after resizing dropped some objects (0 stays 0)."""
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if ids.size == 0 or ids[-1] == ids.size:
        return labels
    lookup = np.zeros(int(ids[-1]) + 1, dtype=labels.dtype)
    lookup[ids] = np.arange(1, ids.size + 1, dtype=labels.dtype)
    return lookup[labels]


def to_shape(result: Result, shape: tuple[int, ...]) -> Result:
    """``result`` of a rescaled image brought back to the image's spatial ``shape``."""

    def back(array: np.ndarray | None, order: int) -> np.ndarray | None:
        if array is None or array.ndim < len(shape):
            return array
        return resample(array, shape, order)

    labels = back(result.labels, 0)  # nearest neighbour: thin parts may fall apart
    return replace(
        result,
        labels=None if labels is None else relabel(keep_largest_pieces(labels)),
        classes=back(result.classes, 0),
        probabilities=back(result.probabilities, 1),
        image=back(result.image, 1),
        uncertainty=back(result.uncertainty, 1),
    )


def predict_at_scale(
    predict: Callable[[np.ndarray], Result], image: np.ndarray, scale: float
) -> tuple[Result, float | None]:
    """Predict the channel-first ``image (C, *spatial)`` zoomed by ``scale``.

    Returns the result at the image's own shape and the median diameter of its objects
    measured before resizing back, in pixels of the original image (``None``: no objects).
    """
    shape = image.shape[1:]
    if abs(scale - 1.0) < 1e-3:
        result = predict(image)
        scaled_labels, scale = result.labels, 1.0
    else:
        new_shape = tuple(max(1, round(s * scale)) for s in shape)
        if math.prod(new_shape) > MAX_PIXELS:
            raise InputError(
                f"zooming the image by {scale:.3g} for its object size would make it "
                f"{new_shape}, too large; crop the image or give a larger diameter"
            )
        result = predict(resample(image, new_shape, 1))
        scaled_labels = result.labels
        result = to_shape(result, shape)
    found = None if scaled_labels is None else median_diameter(scaled_labels, len(shape))
    result.scale = scale
    return result, (None if found is None else found / scale)


def predict_at_diameter(
    predict: Callable[[np.ndarray], Result],
    image: np.ndarray,
    object_diameter: float | None,
    diameter: float | str | None,
) -> Result:
    """Apply ``predict`` to the channel-first ``image (C, *spatial)`` at the size the model
    was trained for.

    ``predict`` maps a ``(C, *spatial)`` image to its :class:`Result` at that shape.
    ``diameter``: ``None`` (as is), a number ``D`` (zoom by ``object_diameter / D``) or
    ``'auto'``: predict at scale 1, measure the median diameter of the objects found, and
    while it differs from ``object_diameter`` by more than :data:`TOLERANCE` rescale and
    predict again (at most :data:`MAX_PASSES` times, each pass re-estimating from the last
    one's objects). A first pass without objects is kept as it is, and so is the last
    pass with objects when a rescaled one finds none. The result records the ``scale``
    used and the ``diameter``.
    """
    target = check_diameter(diameter, object_diameter)
    if target is None:
        return predict(image)
    assert object_diameter is not None
    if target != "auto":
        result, _ = predict_at_scale(predict, image, object_diameter / target)
        result.diameter = float(target)
        return result
    result, estimate = predict_at_scale(predict, image, 1.0)
    if estimate is None:
        return result
    for _ in range(MAX_PASSES):
        if abs(estimate * result.scale - object_diameter) <= TOLERANCE * object_diameter:
            break
        scale = float(np.clip(object_diameter / estimate, MIN_SCALE, MAX_SCALE))
        if abs(scale - result.scale) < 1e-3:  # at a bound: no closer zoom to try
            break
        again, found = predict_at_scale(predict, image, scale)
        if found is None:
            break
        result, estimate = again, found
    result.diameter = estimate
    return result
