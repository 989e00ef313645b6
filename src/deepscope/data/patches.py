"""Random patches biased to foreground, padding images smaller than a patch."""

from __future__ import annotations

import numpy as np


def pad_to_shape(array: np.ndarray, shape: tuple[int, ...], mode: str = "reflect") -> np.ndarray:
    """Pad the last ``len(shape)`` axes of ``array`` up to at least ``shape`` (at the end)."""
    nd = len(shape)
    pads = [(0, 0)] * (array.ndim - nd)
    pads += [(0, max(0, s - a)) for s, a in zip(shape, array.shape[-nd:], strict=True)]
    if all(p == (0, 0) for p in pads):
        return array
    if mode == "reflect" and any(p[1] >= a for p, a in zip(pads[-nd:], array.shape[-nd:])):
        mode = (
            "symmetric"
            if all(p[1] <= a for p, a in zip(pads[-nd:], array.shape[-nd:], strict=True))
            else "wrap"
        )
    return np.pad(array, pads, mode=mode)


def sample_patch_origin(
    shape: tuple[int, ...],
    patch_shape: tuple[int, ...],
    rng: np.random.Generator,
    foreground_indices: np.ndarray | None = None,
    foreground_fraction: float = 0.5,
) -> tuple[int, ...]:
    """Pick the corner of a ``patch_shape`` patch inside an image of ``shape``.

    With probability ``foreground_fraction`` the patch is centred (as far as the border
    allows) on a random pixel of ``foreground_indices`` (flat indices into ``shape``, as
    from ``np.flatnonzero``, computed once per image), otherwise placed uniformly.
    """
    coords = foreground_indices
    if coords is not None and coords.size and rng.random() < foreground_fraction:
        centre = np.unravel_index(coords[rng.integers(coords.size)], shape)
        return tuple(
            int(np.clip(c - p // 2, 0, s - p))
            for c, p, s in zip(centre, patch_shape, shape, strict=True)
        )
    return tuple(int(rng.integers(s - p + 1)) for p, s in zip(patch_shape, shape, strict=True))
