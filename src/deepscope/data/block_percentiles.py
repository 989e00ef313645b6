"""Exact percentiles of an image read in blocks, in two passes and bounded memory.

An image larger than memory is normalised with the percentiles of all its pixels, as a
smaller one is (:func:`deepscope.data.normalize.percentile_normalize`). The pixels are
taken as float32, as normalisation takes them, and each float32 value is mapped to an
unsigned 32-bit key with the same order. The first pass counts the keys' upper 16 bits per
channel; that tells which upper half each wanted order statistic has. The second pass
counts the lower 16 bits of just those pixels, which pins the statistic down exactly. The
memory is two tables of 65,536 counts per channel, whatever the image size; the result is
the same as :func:`numpy.percentile` (linear interpolation) on the whole image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from deepscope.data.normalize import check_float32_not_tiny, check_float32_range
from deepscope.errors import InputError

__all__ = ["block_percentiles"]

_HALF = 1 << 16
_SIGN = np.uint32(0x80000000)


def _keys(values: np.ndarray) -> np.ndarray:
    """Unsigned keys ordered as the float32 ``values`` (negative floats reversed)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def _value(key: int) -> float:
    """The float32 value of a key (the inverse of :func:`_keys`)."""
    bits = key & 0x7FFFFFFF if key & 0x80000000 else ~key & 0xFFFFFFFF
    return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])


def _channel_keys(blocks: Iterable[np.ndarray], channels: int | None):
    """Each block's keys per channel, checked: ``(C, *spatial)`` numbers that float32
    holds (:func:`~deepscope.data.normalize.check_float32_range`, over all blocks)."""
    largest = 0.0
    for block in blocks:
        block = np.asarray(block)
        if channels is not None and block.shape[0] != channels:
            raise ValueError(f"blocks have {block.shape[0]} channels, expected {channels}")
        if block.dtype.kind == "f":
            largest = max(largest, check_float32_range(block, whole=False))
        yield _keys(block.reshape(block.shape[0], -1).astype(np.float32, copy=False))
    check_float32_not_tiny(largest)


def _locate(counts: np.ndarray, rank: int) -> tuple[int, int]:
    """The bin holding the ``rank``-th smallest (0-based) of the counted values, and how
    many values lie in lower bins."""
    cumulative = np.cumsum(counts)
    index = int(np.searchsorted(cumulative, rank, side="right"))
    return index, int(cumulative[index - 1]) if index else 0


def block_percentiles(
    read_blocks: Callable[[], Iterable[np.ndarray]], q: Sequence[float]
) -> np.ndarray:
    """Percentiles ``q`` (0-100) per channel of an image given as blocks, ``(C, len(q))``.

    ``read_blocks()`` yields channel-first blocks ``(C, ...)`` that together hold every
    pixel of the image once; it is called twice (two passes). The result equals
    ``numpy.percentile`` of the whole image as float32 (linear interpolation between the
    two order statistics around each percentile).
    """
    upper = None
    for keys in _channel_keys(read_blocks(), None):
        if upper is None:
            upper = np.zeros((keys.shape[0], _HALF), dtype=np.int64)
        for c, row in enumerate(keys):
            upper[c] += np.bincount(row >> 16, minlength=_HALF)
    if upper is None:
        raise InputError("the image has no pixels; check the file")
    channels, n = upper.shape[0], int(upper[0].sum())
    positions = np.asarray(q, dtype=np.float64) / 100 * (n - 1)
    ranks = sorted({int(r) for p in positions for r in (np.floor(p), min(np.floor(p) + 1, n - 1))})
    wanted = [{r: _locate(upper[c], r) for r in ranks} for c in range(channels)]
    buckets = [sorted({high for high, _ in w.values()}) for w in wanted]
    lower = [{h: np.zeros(_HALF, dtype=np.int64) for h in b} for b in buckets]
    for keys in _channel_keys(read_blocks(), channels):
        for c, row in enumerate(keys):
            high = row >> 16
            for h, counts in lower[c].items():
                counts += np.bincount(row[high == h] & 0xFFFF, minlength=_HALF)
    out = np.empty((channels, len(positions)))
    for c in range(channels):
        value = {}
        for r, (h, below) in wanted[c].items():
            low, _ = _locate(lower[c][h], r - below)
            value[r] = _value((h << 16) | low)
        for i, p in enumerate(positions):
            first = int(np.floor(p))
            second = min(first + 1, n - 1)
            out[c, i] = _lerp(value[first], value[second], p - first)
    return out


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's interpolation between neighbouring order statistics (exact at both ends)."""
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t
