"""Bring user arrays into the channel-first layout networks use, with axes named explicitly."""

from __future__ import annotations

import numpy as np

from deepscope.errors import AxesError
from deepscope.io import default_axes, transpose_axes


def channel_first_axes(ndim: int) -> str:
    """``'CYX'`` for 2D models, ``'CZYX'`` for 3D models."""
    return "CYX" if ndim == 2 else "CZYX"


def spatial_axes(ndim: int) -> str:
    """``'YX'`` or ``'ZYX'``."""
    return "YX" if ndim == 2 else "ZYX"


def to_channel_first(data: np.ndarray, axes: str | None, ndim: int) -> np.ndarray:
    """Reorder ``data`` with ``axes`` (default from its shape) to ``(C, *spatial)``."""
    axes = axes or default_axes(data.shape)
    try:
        return transpose_axes(data, axes, channel_first_axes(ndim))
    except AxesError:
        if ndim == 2 and "Z" in axes and data.shape[axes.index("Z")] > 1:
            depth = data.shape[axes.index("Z")]
            channels = (  # a small first axis of a file without axes is as likely channels
                f"; if the {depth} planes are channels, say so with --axes {axes.replace('Z', 'C')}"
                if depth <= 4
                else ""
            )
            raise AxesError(
                f"a volume of {depth} z slices (axes {axes}) cannot go into 2D training or a 2D "
                "model: for volumes train a 3D model (--set ndim=3), or give 2D images" + channels
            ) from None
        raise


def to_spatial(data: np.ndarray, axes: str | None, ndim: int, name: str = "the mask") -> np.ndarray:
    """Reorder a mask with ``axes`` (default from its shape) to ``(*spatial)``; a mask with
    channels, time points or (for 2D) z slices is a clear error naming ``name``."""
    if axes is None:
        axes = spatial_axes(ndim) if data.ndim == ndim else default_axes(data.shape)
    try:
        return transpose_axes(data, axes, spatial_axes(ndim))
    except AxesError:
        raise AxesError(
            f"{name} has axes {axes} and shape {tuple(data.shape)}, but a label image here "
            f"has the axes {spatial_axes(ndim)} only: save one single-channel label image "
            "per image"
        ) from None
