"""Pictures for people: label outlines over the image, saved as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage.segmentation import find_boundaries

from deepscope.io.atomic import atomic_output


def to_display(image: np.ndarray) -> np.ndarray:
    """Grey ``(Y, X)`` or colour ``(Y, X, 3)`` image stretched to uint8 RGB (1-99.8 %)."""
    x = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(x, [1, 99.8])
    x = np.clip((x - lo) / max(hi - lo, 1e-6), 0, 1)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 2:
        rgb = np.repeat(x[..., None], 3, axis=-1)
    elif x.shape[-1] == 2:
        # two channels: red and green, blue stays dark
        rgb = np.concatenate([x, np.zeros_like(x[..., :1])], axis=-1)
    else:
        rgb = x[..., :3]
    return (rgb * 255).astype(np.uint8)


def label_colours(n: int, seed: int = 7) -> np.ndarray:
    """``(n + 1, 3)`` bright random colours, row 0 black."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(80, 256, size=(n + 1, 3), dtype=np.uint8)
    colours[0] = 0
    return colours


def overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """RGB uint8 picture: the image with each object's outline in its own colour."""
    rgb = to_display(image)
    edges = find_boundaries(labels, mode="inner")
    colours = label_colours(int(labels.max()))
    rgb[edges] = colours[labels[edges]]
    return rgb


def save_overlay(image: np.ndarray, labels: np.ndarray, path: str | Path) -> Path:
    """Write :func:`overlay` as a PNG file (atomically)."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = overlay(image, labels)
    with atomic_output(path) as tmp:
        iio.imwrite(tmp, picture, extension=".png")
    return path
