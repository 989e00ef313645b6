"""Count: measure predicted objects, keep those within measurement ranges, split merged ones.

``deepscope predict`` is the unfiltered preview; Count is the analysis step after it, as in
Image-Pro's Count and CellProfiler's object tables: optionally split touching objects, drop
objects on the image border, measure every object, keep the ones whose measurements fall in
the given ranges, and summarise each image in one row.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.segmentation import relabel_sequential, watershed

from deepscope.errors import InputError
from deepscope.measure import measure_objects
from deepscope.measure.regions import (
    object_columns,
    pixel_sizes,
    sequential_labels,
    warn_if_binary,
)


@dataclass(frozen=True)
class Range:
    """Keep objects whose ``column`` lies in ``[low, high]`` (an open side is ``None``)."""

    column: str
    low: float | None = None
    high: float | None = None

    def admits(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def parse_range(text: str) -> Range:
    """``'area=30:2000'``, ``'mean_intensity=0.1:'`` or ``'eccentricity=:0.8'`` -> Range."""
    column, sep, bounds = text.partition("=")
    low_text, colon, high_text = bounds.partition(":")
    if not sep or not colon or not column.strip():
        raise InputError(
            f"a range reads COLUMN=LOW:HIGH (either side may be empty), e.g. area=30:2000; "
            f"got '{text}'"
        )
    try:
        low = float(low_text) if low_text.strip() else None
        high = float(high_text) if high_text.strip() else None
    except ValueError:
        raise InputError(f"range '{text}' has a bound that is not a number") from None
    if any(b is not None and math.isnan(b) for b in (low, high)):
        raise InputError(f"range '{text}' has a bound that is not a number; leave a side empty")
    if low is not None and high is not None and low > high:
        raise InputError(f"range '{text}' has its low bound above its high bound")
    return Range(column.strip(), low, high)


def check_min_split_size(min_size: int) -> None:
    """An :class:`InputError` for a minimum split size below one pixel."""
    if min_size < 1:
        raise InputError(f"the minimum split size must be at least 1 pixel, got {min_size}")


#: two pieces of one object stay one unless the neck between them is narrower than this
#: fraction of the smaller piece's thickness (distance-transform saddle against peak)
NECK_RATIO = 0.7


def split_touching(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Divide merged objects along the necks of their distance transform (watershed).

    Within each object, maxima of the distance to the border that are at least the radius
    of a ``min_size`` object apart seed a watershed of the negative distance. Neighbouring
    pieces are joined again unless the neck between them is narrower than
    :data:`NECK_RATIO` of the thinner piece's half-width (a long or irregular single
    object has maxima along its ridge but no neck), and the split is kept only when every
    piece has at least ``min_size`` pixels. Returns new labels 1..N.
    """
    check_min_split_size(min_size)
    out = np.zeros(labels.shape, dtype=np.int32)
    if labels.ndim == 2:  # radius of a disk (ball) of min_size pixels
        radius = max(1, int(math.sqrt(min_size / math.pi)))
    else:
        radius = max(1, int((3 * min_size / (4 * math.pi)) ** (1 / 3)))
    next_id = 1
    for lab, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        box = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in box)
        mask = labels[box] == lab
        pieces = _split_one(mask, radius, min_size)
        n = int(pieces.max())
        target = out[box]
        target[pieces > 0] = pieces[pieces > 0] + next_id - 1
        next_id += n
    return out


def _split_one(mask: np.ndarray, radius: int, min_size: int) -> np.ndarray:
    whole = mask.astype(np.int32)
    if mask.sum() < 2 * min_size:
        return whole
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[(slice(1, -1),) * mask.ndim]
    peaks = peak_local_max(
        distance, min_distance=radius, labels=mask.astype(np.int32), exclude_border=False
    )
    if len(peaks) < 2:
        return whole
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    pieces = _join_without_neck(watershed(-distance, markers, mask=mask), distance)
    if pieces.max() < 2:
        return whole
    sizes = np.bincount(pieces.ravel())[1:]
    if sizes.min() < min_size:
        return whole
    return pieces


def _join_without_neck(pieces: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """``pieces`` (1..n) with every two touching pieces joined whose saddle, the largest
    distance on their shared border, reaches :data:`NECK_RATIO` of the smaller of their
    peak distances; renumbered 1..m."""
    n = int(pieces.max())
    peak = np.zeros(n + 1)
    np.maximum.at(peak, pieces.ravel(), distance.ravel())
    saddle: dict[tuple[int, int], float] = {}
    for axis in range(pieces.ndim):
        a = np.moveaxis(pieces, axis, 0)
        d = np.moveaxis(distance, axis, 0)
        border = (a[:-1] > 0) & (a[1:] > 0) & (a[:-1] != a[1:])
        first, second = a[:-1][border], a[1:][border]
        heights = np.minimum(d[:-1][border], d[1:][border])
        for p, q, h in zip(np.minimum(first, second), np.maximum(first, second), heights):
            key = (int(p), int(q))
            saddle[key] = max(saddle.get(key, 0.0), float(h))
    root = np.arange(n + 1)

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    for (p, q), height in saddle.items():
        if height >= NECK_RATIO * min(peak[p], peak[q]):
            root[find(q)] = find(p)
    groups = np.array([find(i) for i in range(n + 1)])
    _, renumbered = np.unique(groups, return_inverse=True)  # group of 0 is 0, first
    return renumbered[pieces]


def exclude_border_objects(labels: np.ndarray) -> np.ndarray:
    """Labels with every object that touches the image edge removed (others unchanged)."""
    edge = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        index = [slice(None)] * labels.ndim
        for side in (0, -1):
            index[axis] = side
            edge[tuple(index)] = True
    touching = np.unique(labels[edge])
    out = labels.copy()
    out[np.isin(labels, touching[touching > 0])] = 0
    return out


def check_range_columns(ranges: Sequence[Range], columns: Sequence[str], note: str = "") -> None:
    """An :class:`InputError` listing ``columns`` (and ``note``) when a range names a column
    not among them."""
    unknown = [r.column for r in ranges if r.column not in columns]
    if unknown:
        raise InputError(
            f"no column {', '.join(map(repr, unknown))} to filter on; columns are: "
            + ", ".join(columns)
            + note
        )


def check_ranges_before_counting(
    ranges: Sequence[Range], ndim: int | None, class_columns: Sequence[str] = ()
) -> None:
    """Refuse, before any image is segmented, ranges on columns that no objects table of
    ``ndim``-D labels (``None``: 2D or 3D) has (with or without pixel sizes, any number of
    channels; with a classifier, its ``class_columns`` too)."""
    per_channel = re.compile(r"(mean|min|max|integrated)_intensity_ch\d+")
    columns = [
        c for n in ((2, 3) if ndim is None else (ndim,)) for c in object_columns(n, (), (1.0,) * n)
    ]
    check_range_columns(
        [r for r in ranges if not per_channel.fullmatch(r.column)],
        [*dict.fromkeys(columns), *class_columns],
        " (per channel of a multichannel image: mean_intensity_ch0 ...)",
    )


def within_ranges(rows: Sequence[dict], ranges: Sequence[Range]) -> list[dict]:
    """The rows whose values lie in every range; a range on a column the rows lack is an
    :class:`InputError` that lists the columns."""
    if rows and ranges:
        check_range_columns(ranges, list(rows[0]))
    for r in ranges:
        undefined = sum(1 for row in rows if _is_nan(row[r.column]))
        if undefined:
            warnings.warn(
                f"{undefined} object(s) have no {r.column} (NaN: the solidity of an object "
                f"one slice thick, say) and are left out by the range on {r.column}",
                stacklevel=3,
            )
    return [row for row in rows if all(r.admits(row[r.column]) for r in ranges)]


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


@dataclass
class CountResult:
    """Filtered labels (1..N), one measurement row per kept object, and the image summary."""

    labels: np.ndarray
    objects: list[dict]
    summary: dict = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)  # of the objects table, rows or not


def count_objects(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    ranges: Sequence[Range | str] = (),
    exclude_border: bool = False,
    split: bool = False,
    min_split_size: int = 30,
    pixel_size: Sequence[float] | dict | float | None = None,
    name: str = "",
    classify: Callable[[np.ndarray], dict[int, dict]] | None = None,
    class_columns: Sequence[str] = (),
) -> CountResult:
    """Split, drop border objects, measure, (classify,) keep objects within ``ranges``,
    summarise.

    Parameters
    ----------
    labels : ``(Y, X)`` or ``(Z, Y, X)`` instance labels (e.g. a model's prediction).
    image : intensities, same spatial shape or channel-last ``(*spatial, C)``.
    ranges : measurement ranges, as :class:`Range` or text such as ``'area=30:2000'``; any
        column of the objects table works. An object is kept when it is in every range.
    exclude_border : drop objects that touch the image edge.
    split : divide merged objects (:func:`split_touching`) with ``min_split_size`` pixels.
    pixel_size : micrometres per pixel: one number, one per spatial axis, or a dict by axis
        letter as :class:`~deepscope.io.Image` holds it; adds physical columns.
    name : the image's name in the summary row.
    classify : gives the class columns of every object of the labels it is handed
        (``{label: {"class": ..., "prob_<c>": ...}}``), added before filtering, so that
        ranges may name ``class_columns`` (the numeric ones, ``prob_<c>``).
    """
    labels = sequential_labels(labels)[0]  # ids of any size; the table numbers them anew
    warn_if_binary(labels, name or "the label image")
    pixel_size = pixel_sizes(pixel_size, labels.ndim)
    ranges = [parse_range(r) if isinstance(r, str) else r for r in ranges]
    class_names = ["class", *class_columns] if classify is not None else []
    if ranges:  # checked here too, so that an image without objects does not hide a typo
        columns = _table_columns(labels.ndim, image, pixel_size) + class_names
        physical = any(r.column.endswith(("_um", "_um2", "_um3", "_mm2", "_mm3")) for r in ranges)
        note = (
            "; the µm columns need a pixel size, which this image does not record "
            "(give it with the file, or range on pixel columns)"
            if physical and pixel_size is None
            else ""
        )
        check_range_columns(ranges, columns, note)
    if split:
        labels = split_touching(labels, min_split_size)
    if exclude_border:
        labels = exclude_border_objects(labels)
    labels = relabel_sequential(labels)[0]
    rows = measure_objects(labels, image, pixel_size)
    if classify is not None:
        classes = classify(labels)
        for row in rows:
            row.update(classes[row["label"]])
    kept = within_ranges(rows, ranges)
    keep = np.zeros(len(rows) + 1, dtype=bool)
    keep[[row["label"] for row in kept]] = True
    filtered = relabel_sequential(np.where(keep[labels], labels, 0))[0].astype(np.int32)
    for new_id, row in enumerate(kept, start=1):
        row["label"] = new_id
    summary = summarize(kept, labels.shape, pixel_size, name)
    if rows:
        columns = list(rows[0])  # measured: no sample table needed
    else:
        columns = _table_columns(labels.ndim, image, pixel_size) + class_names
    return CountResult(filtered, kept, summary, columns)


def _table_columns(ndim: int, image: np.ndarray | None, pixel_size) -> list[str]:
    """The measurement columns of ``ndim``-D labels of ``image`` (see :func:`object_columns`)."""
    trailing = None if image is None else np.shape(image)[ndim:]
    return object_columns(ndim, trailing, pixel_size)


def summarize(
    rows: Sequence[dict],
    shape: tuple[int, ...],
    pixel_size: Sequence[float] | None = None,
    name: str = "",
) -> dict:
    """One summary row: count, mean and median size, covered fraction and density."""
    areas = np.array([row["area"] for row in rows], dtype=float)
    pixels = float(np.prod(shape))
    summary: dict = {"image": name, "count": len(rows)}
    summary["mean_area"] = float(areas.mean()) if len(areas) else 0.0
    summary["median_area"] = float(np.median(areas)) if len(areas) else 0.0
    summary["area_fraction"] = float(areas.sum() / pixels)
    per = "megapixel" if len(shape) == 2 else "megavoxel"
    summary[f"density_per_{per}"] = len(rows) / pixels * 1e6
    if pixel_size is not None:
        unit = float(np.prod(pixel_size))
        if len(shape) == 2:
            summary["mean_area_um2"] = summary["mean_area"] * unit
            summary["median_area_um2"] = summary["median_area"] * unit
            summary["density_per_mm2"] = len(rows) / (pixels * unit) * 1e6
        else:
            summary["mean_volume_um3"] = summary["mean_area"] * unit
            summary["median_volume_um3"] = summary["median_area"] * unit
            summary["density_per_mm3"] = len(rows) / (pixels * unit) * 1e9
    return summary
