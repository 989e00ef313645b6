"""Blind-spot masking for self-supervised denoising (Noise2Void, N2V2, structN2V).

A few pixels of each noisy patch are chosen on a jittered grid and their values replaced, so
that the network must predict them from their neighbours alone (Krull et al. 2019). The
replaced value is either a random neighbour (``uniform``; the pixel itself excluded) or the
median of the neighbourhood without the centre (``median``, N2V2, Höck et al. 2022).
structN2V (Broaddus et al. 2020) also replaces a line of pixels through each blind spot with
random values, so that noise correlated along that line cannot leak into the prediction.
"""

from __future__ import annotations

import itertools

import numpy as np


def blind_spot_coordinates(
    shape: tuple[int, ...], fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """``(N, ndim)`` pixel coordinates, about ``fraction`` of all pixels of ``shape``: one
    random pixel in each cell of a regular grid (stratified sampling). A cell that reaches
    past the edge keeps its pixel only when it falls inside, so every pixel is equally
    likely to be chosen (clipping piled the spots of such cells onto the last row)."""
    step = max(1, round(fraction ** (-1 / len(shape))))
    starts = np.stack(
        np.meshgrid(*(np.arange(0, n, step) for n in shape), indexing="ij"), -1
    ).reshape(-1, len(shape))
    coords = starts + rng.integers(0, step, size=starts.shape)
    return coords[(coords < np.array(shape)).all(axis=1)]


def _shifted(coords: np.ndarray, shift: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """``coords + shift``, where that leaves ``[0, limit]`` along an axis the shift turned
    the other way: a neighbour of a pixel near the edge is never the pixel itself, as
    clipping (or mirroring about the edge) could make it."""
    target = coords + shift
    return np.where((target < 0) | (target > limit), coords - shift, target)


def _neighbour_offsets(ndim: int, radius: int) -> np.ndarray:
    """Every offset of a ``(2 radius + 1)^ndim`` window except the centre."""
    span = range(-radius, radius + 1)
    return np.array([o for o in itertools.product(span, repeat=ndim) if any(o)])


def mask_batch(
    images: np.ndarray,
    rng: np.random.Generator,
    fraction: float = 0.002,
    radius: int = 2,
    replacement: str = "uniform",
    struct_mask: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Blind-spot masking of a batch ``(B, C, *spatial)``.

    Returns ``(masked images, mask)``: the input with the chosen pixels replaced, and a
    float mask of the same shape, 1 where the loss must be computed. Channels are masked
    independently. ``struct_mask = (axis, length)`` also replaces ``length // 2`` pixels to
    either side of each blind spot along spatial ``axis`` (-1 = X) with values of random
    pixels of the same patch.
    """
    if replacement not in ("uniform", "median"):
        raise ValueError(f"replacement must be 'uniform' or 'median', got {replacement!r}")
    masked = images.copy()
    mask = np.zeros(images.shape, np.float32)
    spatial = images.shape[2:]
    limit = np.array(spatial) - 1
    offsets = _neighbour_offsets(len(spatial), radius)
    for b, c in np.ndindex(images.shape[:2]):
        image = images[b, c]
        coords = blind_spot_coordinates(spatial, fraction, rng)
        if replacement == "uniform":
            shift = offsets[rng.integers(len(offsets), size=len(coords))]
            source = _shifted(coords, shift, limit)
            values = image[tuple(source.T)]
        else:
            around = _shifted(coords[:, None, :], offsets[None], limit)
            values = np.median(image[tuple(np.moveaxis(around, -1, 0))], axis=1)
        if struct_mask is not None:
            axis, length = struct_mask
            axis = axis % len(spatial)
            for step in range(-(length // 2), length // 2 + 1):
                if step == 0:
                    continue
                line = coords.copy()
                line[:, axis] = np.clip(line[:, axis] + step, 0, limit[axis])
                random = rng.integers(0, image.size, size=len(line))
                masked[(b, c, *line.T)] = image.reshape(-1)[random]
        masked[(b, c, *coords.T)] = values
        mask[(b, c, *coords.T)] = 1.0
    return masked, mask
