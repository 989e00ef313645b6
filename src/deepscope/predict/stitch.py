"""Object-level stitching of large images: predict block by block, keep each object once.

The image is cut into *core* blocks that partition it; each block is read with a *halo*
of context around its core, and the task turns that block's network output into objects
(for example polygons after NMS). An object is kept by the one block whose core holds its
anchor point (its centre), so no object is counted twice, and since the halo is at least an
object's size, no object is cut at a block border. A final task-specific merge resolves the
few objects of neighbouring blocks that still overlap and draws the label image.

Peak memory is that of one block's network output, plus the kept objects and the output
labels; the same plan serves chunked (Dask/zarr) input, which is read block by block.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepscope.errors import ConfigError
from deepscope.progress import Progress, ProgressCallback, report


@dataclass(frozen=True)
class Block:
    """A core region of the image and the larger region read around it (both in pixels)."""

    core: tuple[slice, ...]
    read: tuple[slice, ...]

    @property
    def origin(self) -> np.ndarray:
        """Pixel position of the read region's first corner."""
        return np.array([s.start for s in self.read])

    def owns(self, points: np.ndarray) -> np.ndarray:
        """Which of ``points (N, ndim)`` (image pixel coordinates) lie in the core."""
        inside = np.ones(len(points), dtype=bool)
        for axis, s in enumerate(self.core):
            inside &= (points[:, axis] >= s.start) & (points[:, axis] < s.stop)
        return inside


def plan_blocks(shape: tuple[int, ...], block: int, halo: int, align: int = 1) -> list[Block]:
    """Cores of about ``block`` pixels per axis (multiples of ``align``) covering ``shape``,
    each read with ``halo`` pixels (rounded up to ``align``) of context, clipped to the image.

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
        edge = math.ceil(size / n / align) * align
        starts = [i * edge for i in range(n) if i * edge < size]
        per_axis.append([(s, min(size, s + edge)) for s in starts])
    blocks = []
    for corner in np.ndindex(*(len(a) for a in per_axis)):
        core = tuple(slice(*per_axis[a][i]) for a, i in enumerate(corner))
        read = tuple(
            slice(max(0, s.start - halo), min(size, s.stop + halo))
            for s, size in zip(core, shape, strict=True)
        )
        blocks.append(Block(core, read))
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
