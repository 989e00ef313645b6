"""Tiled inference with overlap and smooth blending, for 2D and 3D images.

A network is run on tiles of a fixed shape instead of the whole image, so that its peak
memory depends on the tile size and not on the image size. Only the two output
accumulators (weighted sum and weight sum) are image-sized; the input is read tile by
tile, so ``image`` may also be a lazily loaded array (``np.memmap``, zarr, ...).

Design
------
Tile placement
    Along each axis the tiles start every ``tile - overlap`` pixels and the last tile is
    shifted back so that it ends exactly on the image border. Tiles therefore never read
    outside the image when the image is at least one tile large, and all tiles have the
    same shape (so they can be batched).
Padding
    Along an axis where the image is not larger than the tile there is a single tile whose
    size is the image size rounded up to a multiple of ``divisor``; the missing pixels are
    filled by reflect padding, split evenly before and after, and cropped away again from
    the output. :class:`Tile` keeps the read window inside the image and states the
    padding separately.
Blending
    Each tile output is weighted by :func:`blend_window`, which is 1 in the centre and near
    the image border, and is a raised-cosine (Hann) cross-fade inside the overlap at the
    tile's inner edges. The outermost ``context`` pixels of an inner edge, whose outputs
    are affected by the missing context, get only a tiny weight ``EPS``. With the default
    ``context = (overlap - 1) // 2``, a network whose receptive field is at most
    ``overlap`` pixels wide gives (up to float rounding) the same result tiled as on the
    whole image. A smaller ``context`` gives a wider, smoother cross-fade of
    ``overlap - 2 * context`` pixels, for networks with a large but fading receptive field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepscope.errors import ConfigError, InputError, ModelError

__all__ = ["EPS", "Tile", "balanced_tile", "blend_window", "plan_tiles", "predict_tiled"]

EPS = 1e-6
"""Weight given to the unreliable outer ``context`` pixels of a tile's inner edges."""

_AXIS_NAMES = {2: "YX", 3: "ZYX"}

IntOrTuple = int | Sequence[int]


@dataclass(frozen=True)
class Tile:
    """One tile of a tiling plan.

    Attributes
    ----------
    window : tuple of slice
        Region of the image (spatial axes only) that the tile reads, and where its output
        is written back. Always inside the image.
    pad : tuple of (int, int)
        Reflect padding (before, after) per spatial axis that brings the window up to the
        network input shape. Non-zero only along axes where the image is smaller than the
        tile.
    borders : tuple of (bool, bool)
        For each spatial axis, whether the low / high side of the tile lies on the image
        border (such sides are not down-weighted when blending).
    """

    window: tuple[slice, ...]
    pad: tuple[tuple[int, int], ...]
    borders: tuple[tuple[bool, bool], ...]
    scale: int = 1

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Spatial shape of the network output for this tile (``shape // scale``)."""
        return tuple(s // self.scale for s in self.shape)

    @property
    def out_window(self) -> tuple[slice, ...]:
        """:attr:`window` in output (subsampled) coordinates."""
        return tuple(slice(s.start // self.scale, s.stop // self.scale) for s in self.window)

    @property
    def out_crop(self) -> tuple[slice, ...]:
        """:attr:`crop` in output (subsampled) coordinates."""
        return tuple(slice(c.start // self.scale, c.stop // self.scale) for c in self.crop)

    @property
    def shape(self) -> tuple[int, ...]:
        """Network input (and output) spatial shape of the tile, padding included."""
        return tuple(
            s.stop - s.start + before + after
            for s, (before, after) in zip(self.window, self.pad, strict=True)
        )

    @property
    def crop(self) -> tuple[slice, ...]:
        """Slices into the tile output (spatial axes) that drop the padding again."""
        return tuple(
            slice(before, before + s.stop - s.start)
            for s, (before, _) in zip(self.window, self.pad, strict=True)
        )

    def extract(self, image: Any) -> np.ndarray:
        """Read this tile from a channel-first image and pad it to :attr:`shape`.

        Parameters
        ----------
        image : array_like
            Channel-first image, (C, Y, X) or (C, Z, Y, X); anything sliceable like a
            NumPy array. Only the tile's window is read.

        Returns
        -------
        np.ndarray
            float32 array of shape (C, *self.shape).
        """
        data = np.asarray(image[(slice(None), *self.window)], dtype=np.float32)
        if any(before or after for before, after in self.pad):
            data = np.pad(data, ((0, 0), *self.pad), mode="reflect")
        return data


def _scaled(tile: Tile, scale: int) -> Tile:
    """``tile`` for a network with output subsampled by ``scale``; checks alignment."""
    edges = [v for s in tile.window for v in (s.start, s.stop)]
    edges += [v for p in tile.pad for v in p]
    if any(v % scale for v in edges):
        raise ConfigError(
            f"tiles must start, end and pad on multiples of the output grid {scale}; "
            "use a tile size and overlap that are multiples of it"
        )
    return Tile(tile.window, tile.pad, tile.borders, scale)


def _per_axis(value: Any, ndim: int, name: str) -> tuple[int, ...]:
    """Turn an int or a sequence of ints into a tuple of ``ndim`` ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * ndim
    try:
        values = tuple(value)
    except TypeError:
        values = None
    if (
        values is None
        or len(values) != ndim
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
    ):
        raise ConfigError(
            f"{name} must be an int or {ndim} ints (one per axis {_AXIS_NAMES.get(ndim, '')}),"
            f" got {value!r}"
        )
    return tuple(int(v) for v in values)


def _check_settings(
    ndim: int, tile: IntOrTuple, overlap: IntOrTuple, divisor: IntOrTuple
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Validate tile, overlap and divisor and broadcast them to one value per axis."""
    tiles = _per_axis(tile, ndim, "tile")
    overlaps = _per_axis(overlap, ndim, "overlap")
    divisors = _per_axis(divisor, ndim, "divisor")
    axes = _AXIS_NAMES.get(ndim, "?" * ndim)
    for ax, t, o, d in zip(axes, tiles, overlaps, divisors, strict=True):
        if d < 1:
            raise ConfigError(f"divisor must be at least 1, got {d} on axis {ax}")
        if t < 1:
            raise ConfigError(f"tile must be positive, got {t} on axis {ax}")
        if t % d:
            lower, upper = (t // d) * d, (t // d + 1) * d
            hint = f"use {upper}" if lower == 0 else f"use {lower} or {upper}"
            raise ConfigError(
                f"tile {t} on axis {ax} is not a multiple of the network's divisor {d}; {hint}"
            )
        if o < 0:
            raise ConfigError(f"overlap must be 0 or more, got {o} on axis {ax}")
        if 2 * o > t:  # also rejects overlap >= tile
            raise ConfigError(
                f"tile {t} on axis {ax} is smaller than 2 * overlap ({2 * o}); "
                f"use a tile of at least {2 * o} or an overlap of at most {t // 2}"
            )
    return tiles, overlaps, divisors


def _plan_axis(size: int, tile: int, overlap: int, divisor: int) -> tuple[int, list[int], int]:
    """Plan one axis: return (tile size, tile starts, total padding)."""
    if size <= tile:
        rounded = math.ceil(size / divisor) * divisor
        return rounded, [0], rounded - size
    stride = tile - overlap
    count = 1 + math.ceil((size - tile) / stride)
    starts = [min(i * stride, size - tile) for i in range(count)]
    return tile, starts, 0


def balanced_tile(
    shape: tuple[int, ...], max_tile: int, overlap: int, divisor: int = 1
) -> tuple[int, ...]:
    """The smallest tile shape that covers ``shape`` with as few tiles as ``max_tile`` needs.

    A fixed tile wastes work when the image is slightly larger than it (1104 pixels with
    1024-pixel tiles would compute two full tiles per axis). This keeps the number of
    tiles per axis that ``max_tile`` implies but shrinks the tiles so that they just cover
    the image with the given overlap, rounded up to ``divisor``.

    >>> balanced_tile((1104, 1104), max_tile=1024, overlap=48, divisor=16)
    (576, 576)
    """
    max_tile = max(divisor, max_tile // divisor * divisor)
    result = []
    for size in shape:
        if size <= max_tile:
            result.append(math.ceil(size / divisor) * divisor)
            continue
        count = 1 + math.ceil((size - max_tile) / (max_tile - overlap))
        edge = math.ceil((size + (count - 1) * overlap) / count)
        result.append(min(max_tile, math.ceil(edge / divisor) * divisor))
    return tuple(result)


def plan_tiles(
    shape: tuple[int, ...],
    tile: IntOrTuple,
    overlap: IntOrTuple,
    divisor: IntOrTuple = 1,
) -> list[Tile]:
    """Plan overlapping tiles that cover an image.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the image, (Y, X) or (Z, Y, X).
    tile : int or tuple of int
        Tile shape, the same for every axis if an int. Each value must be a multiple of
        ``divisor`` and at least ``2 * overlap``.
    overlap : int or tuple of int
        Overlap between neighbouring tiles, in pixels per axis.
    divisor : int or tuple of int, optional
        The network needs inputs whose size is a multiple of this (e.g. 8 for a U-Net of
        depth 3). Default 1.

    Returns
    -------
    list of Tile
        Tiles in C order (last axis fastest). All tiles have the same :attr:`Tile.shape`.
        Along an axis where the image is larger than the tile, tiles start every
        ``tile - overlap`` pixels and the last one is shifted back to end on the image
        border (no padding). Along an axis where it is not, a single tile of the image
        size rounded up to ``divisor`` is used, with reflect padding split before/after.

    Raises
    ------
    InputError
        If ``shape`` is not 2D or 3D or has an empty axis.
    ConfigError
        If ``tile``, ``overlap`` or ``divisor`` are invalid.

    Examples
    --------
    >>> tiles = plan_tiles((203, 157), tile=64, overlap=16, divisor=8)
    >>> len(tiles), tiles[0].shape
    (12, (64, 64))
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise InputError(f"expected a 2D (Y, X) or 3D (Z, Y, X) spatial shape, got {shape}")
    if min(shape) < 1:
        raise InputError(f"image has an empty axis (spatial shape {shape}); give a non-empty image")
    tiles, overlaps, divisors = _check_settings(len(shape), tile, overlap, divisor)

    axes = [_plan_axis(*args) for args in zip(shape, tiles, overlaps, divisors, strict=True)]
    windows: list[list[slice]] = []
    pads: list[tuple[int, int]] = []
    borders: list[list[tuple[bool, bool]]] = []
    for size, (length, starts, pad) in zip(shape, axes, strict=True):
        stop = min(length, size)
        windows.append([slice(s, s + stop) for s in starts])
        borders.append([(s == 0, s + stop == size) for s in starts])
        pads.append((pad // 2, pad - pad // 2))

    plan = []
    for index in np.ndindex(*(len(w) for w in windows)):
        plan.append(
            Tile(
                window=tuple(windows[a][i] for a, i in enumerate(index)),
                pad=tuple(pads),
                borders=tuple(borders[a][i] for a, i in enumerate(index)),
            )
        )
    return plan


def _ramp(overlap: int, context: int, eps: float) -> np.ndarray:
    """Weights over the ``overlap`` pixels at an inner edge, outermost pixel first."""
    ramp = np.ones(overlap, dtype=np.float64)
    ramp[:context] = eps
    width = overlap - 2 * context
    if width > 0:
        phase = (np.arange(width) + 0.5) / width
        ramp[context : context + width] = np.sin(0.5 * np.pi * phase) ** 2
    return np.maximum(ramp, eps)


def blend_window(
    tile_shape: tuple[int, ...],
    overlap: IntOrTuple,
    borders: Sequence[tuple[bool, bool]] | None = None,
    context: IntOrTuple | None = None,
    eps: float = EPS,
) -> np.ndarray:
    """Blending weights for one tile output.

    Along each axis the weight is 1, except over the ``overlap`` pixels at each side of the
    tile that is not an image border: there the outer ``context`` pixels get weight
    ``eps`` and the next ``overlap - 2 * context`` pixels rise as a raised cosine
    (``sin**2``) from about 0 to 1. The ramps of two tiles overlapping by exactly
    ``overlap`` pixels add up to 1 (plus ``eps``), so the blend is a smooth cross-fade. The
    N-D window is the outer product of the per-axis windows.

    Parameters
    ----------
    tile_shape : tuple of int
        Spatial shape of the tile, (Y, X) or (Z, Y, X).
    overlap : int or tuple of int
        Overlap between neighbouring tiles per axis.
    borders : sequence of (bool, bool), optional
        Per axis, whether the low / high side of the tile is on the image border; such
        sides keep weight 1. Default: no side is on the border (ramps everywhere).
        :attr:`Tile.borders` gives this for a planned tile.
    context : int or tuple of int, optional
        Pixels at each inner edge whose output is treated as unreliable (weight ``eps``).
        Default ``(overlap - 1) // 2``, the most that still leaves a cross-fade: tiled
        results match whole-image results for networks whose receptive field is at most
        ``overlap`` pixels wide. Must satisfy ``2 * context < overlap`` (or be 0).
    eps : float, optional
        Smallest weight; positive so that no pixel ends with a weight sum of 0.

    Returns
    -------
    np.ndarray
        float32 array of shape ``tile_shape`` with values in [eps, 1].

    Raises
    ------
    ConfigError
        If the ramps do not fit in the tile or ``context`` is out of range.
    """
    tile_shape = tuple(int(s) for s in tile_shape)
    ndim = len(tile_shape)
    overlaps = _per_axis(overlap, ndim, "overlap")
    if borders is None:
        borders = [(False, False)] * ndim
    borders = [(bool(low), bool(high)) for low, high in borders]
    if len(borders) != ndim:
        raise ConfigError(f"borders must give (low, high) flags for {ndim} axes, got {borders}")
    if context is None:
        contexts = tuple(max(0, (o - 1) // 2) for o in overlaps)
    else:
        contexts = _per_axis(context, ndim, "context")
    if not eps > 0:
        raise ConfigError(f"eps must be positive, got {eps}")

    window = np.ones((), dtype=np.float64)
    for size, o, c, (low, high) in zip(tile_shape, overlaps, contexts, borders, strict=True):
        if o < 0:
            raise ConfigError(f"overlap must be 0 or more, got {o}")
        if c < 0 or (o > 0 and 2 * c >= o) or (o == 0 and c != 0):
            raise ConfigError(
                f"context {c} does not fit an overlap of {o}; use a context from 0 to "
                f"{max(0, (o - 1) // 2)}"
            )
        ramps = (not low) + (not high)
        if ramps * o > size:
            raise ConfigError(
                f"tile size {size} is smaller than its blending ramps ({ramps} x overlap {o}); "
                "use a larger tile or a smaller overlap"
            )
        line = np.ones(size, dtype=np.float64)
        if o > 0:
            ramp = _ramp(o, c, eps)
            if not low:
                line[:o] = np.minimum(line[:o], ramp)
            if not high:
                line[size - o :] = np.minimum(line[size - o :], ramp[::-1])
        window = np.multiply.outer(window, line)
    return window.astype(np.float32)


def _run_batch(fn: Callable[[np.ndarray], np.ndarray], batch: list[Tile], image: Any, n_out: int):
    """``fn`` on the tiles of ``batch`` read from ``image``: ``(B, n_out, *out_shape)``."""
    inputs = np.stack([t.extract(image) for t in batch])
    expected = (len(batch), n_out, *batch[0].out_shape)
    outputs = np.asarray(fn(inputs), dtype=np.float32)
    if outputs.shape != expected:
        raise ModelError(
            f"the network returned shape {outputs.shape} for input {inputs.shape}, "
            f"expected {expected}; check n_out and that the output has the input's size"
        )
    return outputs


def predict_tiled(
    fn: Callable[[np.ndarray], np.ndarray],
    image: Any,
    n_out: int,
    tile: IntOrTuple | None,
    overlap: IntOrTuple = 0,
    divisor: IntOrTuple = 1,
    batch_size: int = 1,
    progress: Callable[[int, int], None] | None = None,
    out_dtype: Any = np.float32,
    context: IntOrTuple | None = None,
    scale: int = 1,
) -> np.ndarray:
    """Run ``fn`` over an image tile by tile and blend the overlapping outputs.

    Parameters
    ----------
    fn : callable
        Takes a float32 batch of shape (B, C, *tile_shape) and returns a float32 array of
        shape (B, n_out, *tile_shape). Any backend works, e.g. a torch model wrapped in
        ``torch.no_grad`` with conversions from and to NumPy.
    image : array_like
        Channel-first image, (C, Y, X) or (C, Z, Y, X). Read one tile at a time, so it may
        be a memory map or another lazily loaded array.
    n_out : int
        Number of output channels of ``fn``.
    tile : int, tuple of int or None
        Tile shape (per spatial axis if a tuple). Must be a multiple of ``divisor`` and at
        least ``2 * overlap``. None predicts the whole image at once, reflect-padded up to
        a multiple of ``divisor`` and cropped back (``overlap`` is then ignored).
    overlap : int or tuple of int, optional
        Overlap between neighbouring tiles in pixels; make it at least the receptive field
        of the network. Default 0.
    divisor : int or tuple of int, optional
        The network input size must be a multiple of this. Default 1.
    batch_size : int, optional
        Number of tiles passed to ``fn`` at once. Default 1.
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch, with the number of tiles
        done so far and the total number of tiles.
    out_dtype : dtype, optional
        dtype of the result. Default float32.
    context : int or tuple of int, optional
        Unreliable pixels at the inner edges of each tile, see :func:`blend_window`.
    scale : int, optional
        ``fn`` returns outputs subsampled by this factor along every spatial axis (a
        network with an output grid); tile positions, padding and overlap must then be
        multiples of it. Default 1.

    Returns
    -------
    np.ndarray
        Array of shape (n_out, *spatial shape of image // scale).

    Raises
    ------
    InputError
        If ``image`` is not a 3D or 4D channel-first array.
    ConfigError
        If a setting is invalid (tile not a multiple of ``divisor``, tile smaller than
        ``2 * overlap``, ``batch_size`` or ``n_out`` below 1, ...).
    ModelError
        If ``fn`` returns an array of the wrong shape.

    Examples
    --------
    >>> image = np.random.rand(1, 203, 157).astype(np.float32)
    >>> out = predict_tiled(lambda x: x * 2 + 1, image, n_out=1, tile=64, overlap=16)
    >>> bool(np.allclose(out, image * 2 + 1, atol=1e-6))
    True
    """
    ndim = getattr(image, "ndim", None)
    if ndim not in (3, 4):
        shape = getattr(image, "shape", type(image).__name__)
        raise InputError(
            f"expected a channel-first image (C, Y, X) or (C, Z, Y, X), got shape {shape}; "
            "add or move the channel axis first"
        )
    if isinstance(n_out, bool) or not isinstance(n_out, (int, np.integer)) or n_out < 1:
        raise ConfigError(f"n_out must be a positive int, got {n_out!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    spatial = tuple(int(s) for s in image.shape[1:])
    if image.shape[0] < 1 or min(spatial) < 1:
        raise InputError(f"image of shape {tuple(image.shape)} is empty; give a non-empty image")

    if tile is None:
        divisors = _per_axis(divisor, len(spatial), "divisor")
        if min(divisors) < 1:
            raise ConfigError(f"divisor must be at least 1, got {divisor!r}")
        whole = tuple(math.ceil(s / d) * d for s, d in zip(spatial, divisors, strict=True))
        tiles = plan_tiles(spatial, whole, 0, divisors)
        overlap, context = 0, None
    else:
        tiles = plan_tiles(spatial, tile, overlap, divisor)

    if scale != 1:
        tiles = [_scaled(t, scale) for t in tiles]
        spatial = tuple(s // scale for s in spatial)
        overlap = tuple(o // scale for o in _per_axis(overlap, len(spatial), "overlap"))
        context = None
    total = len(tiles)
    if total == 1:  # one window over the whole image: nothing to blend
        (only,) = _run_batch(fn, tiles, image, n_out)
        if progress is not None:
            progress(1, 1)
        return np.ascontiguousarray(only[(slice(None), *tiles[0].out_crop)], dtype=out_dtype)
    weights: dict[tuple[tuple[bool, bool], ...], np.ndarray] = {}
    out_sum = np.zeros((n_out, *spatial), dtype=np.float32)
    weight_sum = np.zeros(spatial, dtype=np.float32)
    for first in range(0, total, batch_size):
        batch = tiles[first : first + batch_size]
        outputs = _run_batch(fn, batch, image, n_out)
        for t, out in zip(batch, outputs, strict=True):
            weight = weights.get(t.borders)
            if weight is None:
                weight = blend_window(t.out_shape, overlap, t.borders, context)[t.out_crop]
                weights[t.borders] = weight
            out_sum[(slice(None), *t.out_window)] += out[(slice(None), *t.out_crop)] * weight
            weight_sum[t.out_window] += weight
        del outputs
        if progress is not None:
            progress(min(first + batch_size, total), total)

    out_sum /= weight_sum
    return out_sum.astype(out_dtype, copy=False)
