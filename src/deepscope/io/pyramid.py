"""Lower-resolution levels of an OME-Zarr image, so that viewers (napari, the OME-Zarr
viewers of Fiji and the web) can show a large image without reading all of it.

Each level halves Y and X of the one before (time, channel and Z are kept), until both fit
in :data:`LARGEST_LEVEL` pixels. Integer arrays (labels, class maps) keep every second
pixel, so every value of a lower level is one of the image's labels; float arrays
(restored images, probabilities) take the mean of each 2 x 2 square. Levels are computed
block by block from the level above, so memory stays small whatever the image size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["LARGEST_LEVEL", "add_levels", "downsample_method", "halve"]

#: a level whose Y and X are both at most this is the last one
LARGEST_LEVEL = 1024
#: Y and X edge of the blocks read from the level above (even, so blocks halve exactly)
_BLOCK = 2048


def downsample_method(dtype: Any) -> str:
    """``'mean'`` for floating-point arrays, ``'nearest'`` for the rest (labels)."""
    return "mean" if np.issubdtype(np.dtype(dtype), np.floating) else "nearest"


def halve(block: np.ndarray, method: str) -> np.ndarray:
    """``block`` at half its resolution along its last two axes (odd edges round up):
    every second pixel (``'nearest'``) or the mean of each 2 x 2 square (``'mean'``; a
    square cut by an odd edge averages the pixels it has)."""
    if method == "nearest":
        return block[..., ::2, ::2]
    height, width = block.shape[-2:]
    pad = [(0, 0)] * (block.ndim - 2) + [(0, height % 2), (0, width % 2)]
    padded = np.pad(block, pad, mode="edge")
    squares = padded.reshape(*block.shape[:-2], -(-height // 2), 2, -(-width // 2), 2)
    return squares.mean(axis=(-3, -1), dtype=np.float64).astype(block.dtype)


def _blocks(shape: tuple[int, ...], leading: tuple[int, ...]):
    """Source regions: ``leading`` steps on the axes before Y and X, blocks of
    :data:`_BLOCK` on Y and X."""
    steps = (*leading, _BLOCK, _BLOCK)
    counts = [-(-size // step) for size, step in zip(shape, steps, strict=True)]
    for corner in np.ndindex(*counts):
        yield tuple(
            slice(i * step, min(size, (i + 1) * step))
            for i, step, size in zip(corner, steps, shape, strict=True)
        )


def add_levels(
    group: Any,
    source: Any,
    chunks: Callable[[tuple[int, ...]], tuple[int, ...]],
    method: str,
) -> list[str]:
    """Write the lower levels of ``source`` (the full-resolution ``zarr.Array`` of
    ``group``, Y and X last) into ``group`` as arrays ``'1'``, ``'2'``..., each halved by
    ``method`` (:func:`downsample_method`); ``chunks(shape)`` gives each level's chunk
    shape. Returns the paths of the new levels."""
    leading = tuple(source.chunks[:-2])
    paths = []
    above = source
    while max(above.shape[-2:]) > LARGEST_LEVEL:
        shape = (*above.shape[:-2], *(-(-size // 2) for size in above.shape[-2:]))
        path = str(len(paths) + 1)
        level = group.create_array(
            path, shape=shape, dtype=above.dtype, chunks=chunks(shape), fill_value=0
        )
        for region in _blocks(above.shape, leading):
            target = (
                *region[:-2],
                *(slice(s.start // 2, -(-s.stop // 2)) for s in region[-2:]),
            )
            level[target] = halve(np.asarray(above[region]), method)
        paths.append(path)
        above = level
    return paths
