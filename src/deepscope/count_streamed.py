"""Count objects in a label image larger than memory, block by block.

The labels (for example the OME-Zarr that ``deepscope predict --stream`` wrote) are read in
the blocks of a plan with a halo (:func:`~deepscope.predict.stitch.plan_blocks`). Each
object is measured once, by the block that owns it (its centroid lies in the block's core
and the read window does not cut it, :func:`~deepscope.predict.stitch.owned`), on that
window, with the intensities of the same window; its coordinates are then moved to the
image's frame. With ``split``, the owner also divides the object
(:func:`~deepscope.count.split_touching`, which sees the whole object there) and keeps the
pieces of divided objects for the last pass. Objects touching the image edge are dropped on
request, the measurement ranges are applied, the kept objects are numbered ``1..n`` in label
order (pieces in their order within the object), and a last pass writes the filtered
labels. Rows and labels equal those of :func:`~deepscope.count.count_objects` on the whole
image, while memory holds one block and the pieces of the divided objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from deepscope.count import (
    CountResult,
    Range,
    object_columns,
    parse_range,
    split_touching,
    summarize,
    within_ranges,
)
from deepscope.io.lazy import LazyImage
from deepscope.measure import measure_objects
from deepscope.predict.stitch import owned, plan_blocks
from deepscope.progress import Progress, ProgressCallback, report

__all__ = ["count_streamed"]


def _to_image_frame(row: dict, origin: Sequence[int], axes: str, pixel_size) -> None:
    """Shift a row measured on a window starting at ``origin`` to image coordinates. The
    centroid is recomputed from its exact sum of pixel positions (an integer), so it equals
    the centroid measured on the whole image to the last bit."""
    n = row["area"]  # pixels (voxels) of the object
    for axis, start in zip(axes, origin, strict=True):
        key = f"centroid_{axis}"
        row[key] = (round(row[key] * n) + start * n) / n
        for key in (f"bbox_min_{axis}", f"bbox_max_{axis}"):
            row[key] += start
        if pixel_size is not None:  # as measure_objects computes it
            row[f"centroid_{axis}_um"] = row[f"centroid_{axis}"] * pixel_size[axes.index(axis)]


def _touches_edge(row: dict, axes: str, shape: tuple[int, ...]) -> bool:
    return any(
        row[f"bbox_min_{a}"] == 0 or row[f"bbox_max_{a}"] == size
        for a, size in zip(axes, shape, strict=True)
    )


def _divide(mine: np.ndarray, min_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The owned objects of a window divided by :func:`~deepscope.count.split_touching`
    (labels ``1..N``, the pieces of one object consecutive) and the original label of each
    new label."""
    pieces = split_touching(mine, min_size)
    where = np.nonzero(pieces)
    source = np.zeros(int(pieces.max(initial=0)) + 1, dtype=np.int64)
    source[pieces[where]] = mine[where]
    return pieces, source


def _piece_maps(
    pieces: np.ndarray, source: np.ndarray, row_of: np.ndarray, origin: Sequence[int]
) -> list[tuple[int, tuple[slice, ...], np.ndarray]]:
    """For each object divided into several pieces: its label, its bounding box in the
    image frame and the map of its pieces there, each pixel holding its piece's row number
    plus one."""
    counts = np.bincount(source[1:], minlength=int(source.max(initial=0)) + 1)
    originals = np.where(counts[source] > 1, source, 0)[pieces]
    maps = []
    for label, box in enumerate(ndi.find_objects(originals), start=1):
        if box is None:
            continue
        inside = originals[box] > 0
        frame = tuple(slice(b.start + o, b.stop + o) for b, o in zip(box, origin, strict=True))
        maps.append((label, frame, np.where(inside, row_of[pieces[box]], 0)))
    return maps


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
    split: bool = False,
    min_split_size: int = 30,
) -> CountResult:
    """Measure, filter and renumber the objects of ``labels`` (an array-like of spatial
    axes ``spatial``, e.g. a ``zarr.Array``) block by block.

    ``image``: the intensities (measured per channel), or ``None``. ``filtered``: a
    writable array of the same shape, filled with zeros, that receives the kept objects
    numbered ``1..n``; the returned :class:`~deepscope.count.CountResult` carries the rows
    and the summary, and ``filtered`` as its labels. ``halo`` must be at least the largest
    object's extent from its centroid (the prediction's overlap is). ``split`` divides
    merged objects as :func:`~deepscope.count.count_objects` does.
    """
    shape = tuple(labels.shape)
    if tuple(filtered.shape) != shape:
        raise ValueError(f"filtered must have the labels' shape {shape}, not {filtered.shape}")
    ranges = [parse_range(r) if isinstance(r, str) else r for r in ranges]
    axes = spatial.lower()
    layout = spatial + ("C" if image is not None and "C" in image.axes else "")
    blocks = plan_blocks(shape, block, halo)
    rows: list[dict] = []
    order: list[tuple[int, int]] = []  # (original label, piece): count_objects' label order
    divided: list[tuple[int, tuple[slice, ...], np.ndarray]] = []
    top = 0
    for i, b in enumerate(blocks):
        window = np.asarray(labels[b.read])
        top = max(top, int(window.max(initial=0)))
        keep = owned(window, b)
        if keep.any():
            mine = np.where(keep[window], window, 0)
            source = np.arange(top + 1)
            if split:
                mine, source = _divide(mine, min_split_size)
            pixels = None if image is None else image.window(layout, b.read)
            row_of = np.zeros(len(source), dtype=np.int64)
            for row in measure_objects(mine, pixels, pixel_size):
                _to_image_frame(row, b.origin, axes, pixel_size)
                piece = row["label"]
                row["label"] = int(source[piece])
                rows.append(row)
                order.append((row["label"], piece))
                row_of[piece] = len(rows)
            if split:
                divided += _piece_maps(mine, source, row_of, b.origin)
        report(progress, Progress("count", i + 1, 2 * len(blocks), "blocks"))
    candidates = sorted(range(len(rows)), key=order.__getitem__)
    if exclude_border:
        candidates = [r for r in candidates if not _touches_edge(rows[r], axes, shape)]
    kept = {id(row) for row in within_ranges([rows[r] for r in candidates], ranges)}
    final = np.zeros(len(rows) + 1, dtype=np.int32)  # row number plus one -> kept label
    lut = np.zeros(top + 1, dtype=np.int32)  # original label -> kept label, if not divided
    kept_rows = []
    for r in (r for r in candidates if id(rows[r]) in kept):
        kept_rows.append(rows[r])
        final[r + 1] = len(kept_rows)
        lut[rows[r]["label"]] = len(kept_rows)
    for label, _, _ in divided:  # drawn from their pieces' maps instead
        lut[label] = 0
    pieces = [(frame, final[rows_map]) for _, frame, rows_map in divided]
    for row, new_id in zip(kept_rows, range(1, len(kept_rows) + 1), strict=True):
        row["label"] = new_id
    for i, b in enumerate(blocks):
        core = lut[np.asarray(labels[b.core])]
        for frame, kept_pieces in pieces:
            _draw_pieces(core, b.core, frame, kept_pieces)
        filtered[b.core] = core
        report(progress, Progress("count", len(blocks) + i + 1, 2 * len(blocks), "blocks"))
    channels = None if image is None else ((image.size("C"),) if "C" in image.axes else ())
    columns = object_columns(len(shape), channels, pixel_size)  # the table's, rows or not
    summary = summarize(kept_rows, shape, pixel_size, name)
    return CountResult(filtered, kept_rows, summary, columns)


def _draw_pieces(
    core: np.ndarray, where: tuple[slice, ...], frame: tuple[slice, ...], pieces: np.ndarray
) -> None:
    """Paint the part of a divided object's ``pieces`` (kept labels, 0 outside it) that
    falls in the block core ``core``, found at ``where`` in the image."""
    start = [max(c.start, f.start) for c, f in zip(where, frame, strict=True)]
    stop = [min(c.stop, f.stop) for c, f in zip(where, frame, strict=True)]
    if any(a >= z for a, z in zip(start, stop, strict=True)):
        return
    inside = tuple(
        slice(a - c.start, z - c.start) for a, z, c in zip(start, stop, where, strict=True)
    )
    own = tuple(slice(a - f.start, z - f.start) for a, z, f in zip(start, stop, frame, strict=True))
    part = pieces[own]
    region = core[inside]
    region[part > 0] = part[part > 0]
