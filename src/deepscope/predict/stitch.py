"""Object-level stitching of large images: predict block by block, keep each object once.

The image is cut into *core* blocks that partition it; each block is read with a *halo*
of context around its core, and the task turns that block's network output into objects
(for example polygons after NMS). An object is kept by the block whose core holds its
anchor point (its centre), and since the halo is at least an object's size, no object is cut
at a block border. Neighbouring blocks see an object on their border a little differently,
so each also keeps the objects whose anchors lie a few pixels beyond its core
(:data:`PREDICTED_MARGIN`): none falls between two blocks, and a final task-specific merge
keeps one of each pair that two blocks found and draws the label image.

Peak memory is that of one block's network output, plus the kept objects and the output
labels; the same plan serves chunked (Dask/zarr) input, which is read block by block.

Tasks whose objects come as a label image of each read window (flows, semantic) share
:func:`own_labels` (which objects a block keeps) and :func:`paint_labels` (the merge).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepscope.errors import ConfigError
from deepscope.progress import Progress, ProgressCallback, report

PREDICTED_MARGIN = 4
"""How far (pixels) beyond its core a block owns the objects it predicts (:func:`owned`):
the most that an object's centroid was seen to move between two neighbouring blocks'
predictions, with room to spare."""


@dataclass(frozen=True)
class Block:
    """A core region of the image and the larger region read around it (both in pixels),
    and the image's shape (``None``: not known, and every side of the read region beyond
    the core is taken to lie inside the image)."""

    core: tuple[slice, ...]
    read: tuple[slice, ...]
    shape: tuple[int, ...] | None = None

    @property
    def core_in_read(self) -> tuple[slice, ...]:
        """The core as slices of the read region (of an array holding just that region)."""
        return tuple(
            slice(c.start - r.start, c.stop - r.start)
            for c, r in zip(self.core, self.read, strict=True)
        )

    @property
    def origin(self) -> np.ndarray:
        """Pixel position of the read region's first corner."""
        return np.array([s.start for s in self.read])

    def owns(self, points: np.ndarray, margin: float = 0) -> np.ndarray:
        """Which of ``points (N, ndim)`` (image pixel coordinates) lie in the core, or
        within ``margin`` pixels of it."""
        inside = np.ones(len(points), dtype=bool)
        for axis, s in enumerate(self.core):
            inside &= (points[:, axis] >= s.start - margin) & (points[:, axis] < s.stop + margin)
        return inside


def plan_blocks(shape: tuple[int, ...], block: int, halo: int, align: int = 1) -> list[Block]:
    """Cores of about ``block`` pixels per axis covering ``shape`` (of nearly equal size,
    starting at multiples of ``align``), each read with ``halo`` pixels (rounded up to
    ``align``) of context, clipped to the image.

    An axis no longer than ``block + 2 * halo`` is one core: its read window is then no
    larger than an inner block's, and cutting it would only add the halos' work (a 1104-pixel
    image with 1024-pixel blocks and 96 pixels of halo is read once, not as four windows of
    648 pixels)."""
    if block < 1 or halo < 0:
        raise ConfigError(f"block must be positive and halo not negative, got {block}, {halo}")
    block = max(align, block // align * align)
    halo = math.ceil(halo / align) * align
    per_axis = []
    for size in shape:
        n = 1 if size <= block + 2 * halo else math.ceil(size / block)
        bounds = sorted({min(size, math.ceil(i * size / n / align) * align) for i in range(n + 1)})
        per_axis.append(list(itertools.pairwise(bounds)))
    blocks = []
    for corner in np.ndindex(*(len(a) for a in per_axis)):
        core = tuple(slice(*per_axis[a][i]) for a, i in enumerate(corner))
        read = tuple(
            slice(max(0, s.start - halo), min(size, s.stop + halo))
            for s, size in zip(core, shape, strict=True)
        )
        blocks.append(Block(core, read, tuple(shape)))
    return blocks


def predict_blockwise(
    block_objects: Callable[[Block], Any],
    merge: Callable[[list[Any]], Any],
    shape: tuple[int, ...],
    block: int,
    halo: int,
    align: int = 1,
    progress: ProgressCallback | None = None,
) -> Any:
    """Run ``block_objects(block)`` on every block of the plan and ``merge`` the results.

    ``block_objects`` reads and predicts the block's ``read`` region and returns the objects
    whose anchors the block owns (:meth:`Block.owns`) in image coordinates; ``merge`` gets
    the list of per-block results and returns the final result.
    """
    blocks = plan_blocks(shape, block, halo, align)
    parts = []
    for i, b in enumerate(blocks):
        parts.append(block_objects(b))
        report(progress, Progress("predict", i + 1, len(blocks), "blocks"))
    return merge(parts)


@dataclass
class BlockObjects:
    """The objects one block owns, compact: a label crop placed in the image, plus the
    per-pixel probabilities of the block's core.

    Attributes
    ----------
    offset : image position of ``labels``' first corner.
    labels : the owned objects numbered ``1..count`` (0 elsewhere) in the smallest box that
        holds them; ``uint16`` when the count allows, else ``int32``.
    count : number of owned objects.
    core : the block's core (image coordinates).
    probability : ``(C, *core)`` probabilities over ``core`` in 255ths (``uint8``: a quarter
        of the memory of ``float32``, for the probability maps of a very large image).
    """

    offset: tuple[int, ...]
    labels: np.ndarray
    count: int
    core: tuple[slice, ...]
    probability: np.ndarray


def cut_labels(labels: np.ndarray, block: Block) -> np.ndarray:
    """Labels that touch a side of the block's read window where the window stops inside
    the image (the read region reaches beyond the core there and is not at the image's
    edge): these objects may be cut."""
    cut = [np.zeros(1, labels.dtype)]
    for axis, (core, read) in enumerate(zip(block.core, block.read, strict=True)):
        if read.start < core.start and read.start > 0:
            cut.append(np.take(labels, 0, axis=axis).ravel())
        inside = block.shape is None or read.stop < block.shape[axis]
        if read.stop > core.stop and inside:
            cut.append(np.take(labels, -1, axis=axis).ravel())
    return np.unique(np.concatenate(cut))


def owned(labels: np.ndarray, block: Block, margin: float = 0) -> np.ndarray:
    """Which labels of the block's read window the block owns: a boolean table indexed
    by label value (``labels.max() + 1`` entries).

    An object is owned when its centroid (mean pixel position) lies in the block's core
    (:meth:`Block.owns`) and it touches no side of the window that stops inside the image:
    such an object may be cut by the window, and is left to the block whose core holds its
    centroid, which sees it whole as long as the halo is at least the largest object's
    extent from its centroid. Cores partition the image, so each object is owned by exactly
    one block when neighbouring blocks find it alike (they see the same pixels with the halo
    of context). An object cut by the window whose centroid still lies in the core is larger
    than the halo: it is not owned (no block sees it whole), with a warning to raise the
    overlap.

    Labels of one image read block by block (the same object, the same centroid in every
    block) want ``margin`` 0. Objects that each block *predicts* differ a little between
    neighbouring blocks, and an object whose centroid lies on a core border could fall in
    the other block's core as each of the two sees it: owned by neither, it would be lost.
    ``margin`` (pixels) widens every core, so such an object is owned by both, and the
    merge keeps one of the two (:func:`paint_part`).
    """
    top = int(labels.max()) if labels.size else 0
    keep = np.zeros(top + 1, dtype=bool)
    if not top:
        return keep
    where = np.nonzero(labels)
    which = labels[where]
    counts = np.bincount(which, minlength=top + 1)
    centroids = (
        np.stack([np.bincount(which, weights=c, minlength=top + 1) for c in where], axis=1)
        / np.maximum(counts, 1)[:, None]
    )
    centroids += block.origin
    keep = (counts > 0) & block.owns(centroids, margin)
    cut = cut_labels(labels, block)
    if ((counts > 0) & block.owns(centroids))[cut].any():
        warnings.warn(
            "objects larger than the prediction overlap were dropped at block "
            "borders; give a larger overlap (--overlap, at least the largest object's size)",
            stacklevel=4,
        )
    keep[cut] = False
    return keep


def own_labels(
    labels: np.ndarray, block: Block, probability: np.ndarray | None = None
) -> BlockObjects:
    """The objects of a label image predicted for the block's whole read window that the
    block owns (:func:`owned`, with a margin of :data:`PREDICTED_MARGIN` pixels), with the
    ``(C, *read)`` ``probability`` maps of its core (none: zero channels)."""
    keep = owned(labels, block, PREDICTED_MARGIN)
    if probability is None:
        probability = np.zeros((0, *labels.shape), np.float32)
    count = int(keep.sum())
    lut = np.zeros(len(keep), dtype=np.uint16 if count < 2**16 else np.int32)
    lut[keep] = np.arange(1, count + 1)
    owned_labels = lut[labels]
    box = tuple(slice(0, 0) for _ in block.read)
    if count:
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(owned_labels))
    return BlockObjects(
        offset=tuple(int(o + b.start) for o, b in zip(block.origin, box, strict=True)),
        labels=np.ascontiguousarray(owned_labels[box]),
        count=count,
        core=block.core,
        probability=np.rint(probability[(slice(None), *block.core_in_read)] * 255).astype(np.uint8),
    )


def paint_part(target: np.ndarray, part: BlockObjects, first: int, min_size: int) -> int:
    """Paint one block's owned objects into ``target``, the label image's region under
    ``part.labels`` (changed in place), numbered from ``first``; returns how many were kept.

    Pixels already labelled (by an earlier block) stay; an object is painted on the free
    pixels only, or dropped if fewer than half its pixels (or fewer than ``min_size``) are
    free, so near-duplicates of neighbouring blocks are never kept twice."""
    if not part.count:
        return 0
    local = part.labels
    free = target == 0
    area = np.bincount(local.ravel(), minlength=part.count + 1)
    free_area = np.bincount(local[free], minlength=part.count + 1)
    keep = (2 * free_area > area) & (free_area >= max(1, min_size))
    keep[0] = False
    kept = int(keep.sum())
    lut = np.zeros(part.count + 1, dtype=np.int32)
    lut[keep] = np.arange(first, first + kept, dtype=np.int32)
    paint = free & (local > 0)
    target[paint] = lut[local[paint]]
    return kept


def part_region(part: BlockObjects) -> tuple[slice, ...]:
    """Where ``part.labels`` lies in the image."""
    return tuple(slice(o, o + s) for o, s in zip(part.offset, part.labels.shape, strict=True))


def paint_labels(
    parts: Sequence[BlockObjects], shape: tuple[int, ...], min_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every block's owned objects painted into one ``int32`` label image of ``shape``,
    numbered ``1..n`` in block order (:func:`paint_part`: the earlier block's object wins
    where objects of neighbouring blocks overlap), and the blocks' core probabilities put
    together (``(C, *shape)`` float32)."""
    channels = parts[0].probability.shape[0] if parts else 1
    labels = np.zeros(shape, dtype=np.int32)
    prob = np.zeros((channels, *shape), dtype=np.float32)
    n = 0
    for part in parts:
        prob[(slice(None), *part.core)] = part.probability / np.float32(255)
        n += paint_part(labels[part_region(part)], part, n + 1, min_size)
    return labels, prob
