"""Count objects in a label image larger than memory, block by block.

The labels (for example the OME-Zarr that ``deepscope predict --stream`` wrote) are read in
the blocks of a plan with a halo (:func:`~deepscope.predict.stitch.plan_blocks`). Each
object is measured once, by the block that owns it (its centroid lies in the block's core
and the read window does not cut it, :func:`~deepscope.predict.stitch.owned`), on that
window, with the intensities of the same window; its coordinates are then moved to the
image's frame. Objects touching the image edge are dropped on request, the measurement
ranges are applied, the kept objects are numbered ``1..n`` in label order, and a last pass
writes the filtered labels. Rows and labels equal those of
:func:`~deepscope.count.count_objects` on the whole image (splitting aside, which is not
offered here), while memory holds one block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deepscope.count import CountResult, Range, parse_range, summarize, within_ranges
from deepscope.io.lazy import LazyImage
from deepscope.measure import measure_objects
from deepscope.predict.stitch import owned, plan_blocks
from deepscope.progress import Progress, ProgressCallback, report

__all__ = ["count_streamed"]


def _to_image_frame(row: dict, origin: Sequence[int], axes: str, pixel_size) -> None:
    """Shift a row measured on a window starting at ``origin`` to image coordinates."""
    for axis, start in zip(axes, origin, strict=True):
        for key in (f"centroid_{axis}", f"bbox_min_{axis}", f"bbox_max_{axis}"):
            row[key] += start
        if pixel_size is not None:
            row[f"centroid_{axis}_um"] += start * pixel_size[axes.index(axis)]


def _touches_edge(row: dict, axes: str, shape: tuple[int, ...]) -> bool:
    return any(
        row[f"bbox_min_{a}"] == 0 or row[f"bbox_max_{a}"] == size
        for a, size in zip(axes, shape, strict=True)
    )


def count_streamed(
    labels: Any,
    image: LazyImage | None,
    spatial: str,
    filtered: Any,
    ranges: Sequence[Range | str] = (),
    exclude_border: bool = False,
    pixel_size: Sequence[float] | None = None,
    block: int = 2048,
    halo: int = 128,
    name: str = "",
    progress: ProgressCallback | None = None,
) -> CountResult:
    """Measure, filter and renumber the objects of ``labels`` (an array-like of spatial
    axes ``spatial``, e.g. a ``zarr.Array``) block by block.

    ``image``: the intensities (measured per channel), or ``None``. ``filtered``: a
    writable array of the same shape, filled with zeros, that receives the kept objects
    numbered ``1..n``; the returned :class:`~deepscope.count.CountResult` carries the rows
    and the summary, and ``filtered`` as its labels. ``halo`` must be at least the largest
    object's extent from its centroid (the prediction's overlap is).
    """
    shape = tuple(labels.shape)
    if tuple(filtered.shape) != shape:
        raise ValueError(f"filtered must have the labels' shape {shape}, not {filtered.shape}")
    ranges = [parse_range(r) if isinstance(r, str) else r for r in ranges]
    axes = spatial.lower()
    layout = spatial + ("C" if image is not None and "C" in image.axes else "")
    blocks = plan_blocks(shape, block, halo)
    rows: list[dict] = []
    top = 0
    for i, b in enumerate(blocks):
        window = np.asarray(labels[b.read])
        top = max(top, int(window.max(initial=0)))
        keep = owned(window, b)
        if keep.any():
            mine = np.where(keep[window], window, 0)
            pixels = None if image is None else image.window(layout, b.read)
            for row in measure_objects(mine, pixels, pixel_size):
                _to_image_frame(row, b.origin, axes, pixel_size)
                rows.append(row)
        report(progress, Progress("count", i + 1, 2 * len(blocks), "blocks"))
    rows.sort(key=lambda row: row["label"])
    if exclude_border:
        rows = [row for row in rows if not _touches_edge(row, axes, shape)]
    kept = within_ranges(rows, ranges)
    lut = np.zeros(top + 1, dtype=np.int32)
    for new_id, row in enumerate(kept, start=1):
        lut[row["label"]] = new_id
        row["label"] = new_id
    for i, b in enumerate(blocks):
        filtered[b.core] = lut[np.asarray(labels[b.core])]
        report(progress, Progress("count", len(blocks) + i + 1, 2 * len(blocks), "blocks"))
    return CountResult(filtered, kept, summarize(kept, shape, pixel_size, name))
