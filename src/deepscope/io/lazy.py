"""Images too large for memory: opened, not read, and read one window at a time.

>>> with open_image("slide.ome.tif") as image:  # doctest: +SKIP
...     image.axes, image.shape
...     corner = image.window("CYX", (slice(0, 512), slice(0, 512)))

TIFF (any layout tifffile reads: strips, tiles, compressed or not), Zarr / OME-Zarr and HDF5
datasets are opened lazily; slicing decodes only the strips, tiles or chunks a window
touches.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from deepscope.errors import InputError
from deepscope.io.axes import SPATIAL_AXES, transpose_axes
from deepscope.io.hdf5 import open_hdf5
from deepscope.io.metadata import Decoded
from deepscope.io.paths import image_format, split_path
from deepscope.io.tiff import open_tiff
from deepscope.io.zarr_io import open_zarr

__all__ = ["LazyImage", "open_image"]

#: The formats :func:`open_image` reads lazily.
LAZY_FORMATS = ("tiff", "zarr", "hdf5")


class LazyImage:
    """An image on disk with named axes, read window by window (a context manager that
    closes the file).

    Attributes
    ----------
    array : the array-like over the file (``shape``, ``dtype``, numpy slicing).
    axes : one letter per dimension of ``array`` (``'YX'``, ``'CZYX'``, ...).
    pixel_size : micrometres per pixel along spatial axes, when the file records it.
    source : the path it was opened from.
    """

    def __init__(
        self,
        array: Any,
        axes: str,
        pixel_size: dict[str, float] | None,
        source: str,
        close: Callable[[], None] | None = None,
    ) -> None:
        self.array = array
        self.axes = axes
        self.pixel_size = pixel_size
        self.source = source
        self._close = close

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.array.dtype)

    def size(self, axis: str) -> int:
        """Length of the axis named ``axis`` (1 if the image has no such axis)."""
        return self.shape[self.axes.index(axis)] if axis in self.axes else 1

    def window(self, target: str, region: tuple[slice, ...]) -> np.ndarray:
        """The pixels of ``region`` (one slice per spatial axis of ``target``, in its order)
        as an array with axes ``target`` (for example ``'CYX'``), native byte order.

        Axes of the image that ``target`` lacks must have length 1 (a time series is read
        one time point at a time by the caller); axes of ``target`` the image lacks are
        added with length 1."""
        spatial = [a for a in target if a in SPATIAL_AXES]
        if len(spatial) != len(region):
            raise ValueError(f"{len(region)} slices for the spatial axes of {target!r}")
        if not all(isinstance(part, slice) and part.step in (None, 1) for part in region):
            raise ValueError(f"region must be slices without a step, one per axis; got {region}")
        by_axis = dict(zip(spatial, region, strict=True))
        index = tuple(by_axis.get(a, slice(None)) for a in self.axes)
        try:
            block = np.asarray(self.array[index])
        except Exception as error:  # a broken chunk, strip or tile
            raise InputError(
                f"cannot read part of {self.source!r} ({str(error).strip().splitlines()[0]}); "
                "the file may be incomplete or need a codec that is not installed"
            ) from error
        if not block.dtype.isnative:
            block = block.astype(block.dtype.newbyteorder("="))
        return transpose_axes(block, self.axes, target)

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> LazyImage:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def open_image(path: str | os.PathLike[str], axes: str | None = None) -> LazyImage:
    """Open a TIFF, Zarr / OME-Zarr or HDF5 (``'file.h5:dataset'``) image without reading
    its pixels.

    Axes and pixel size come from the file as :func:`~deepscope.io.read_image` reads them;
    ``axes`` overrides the file's. Other formats are refused with a message: they are
    read whole with :func:`~deepscope.io.read_image`.
    """
    name = os.fspath(path)
    file, inner = split_path(path)
    kind = image_format(file)
    if kind not in LAZY_FORMATS:
        raise InputError(
            f"{name!r} cannot be read window by window; convert it to TIFF, OME-Zarr or HDF5, "
            "or predict it without streaming"
        )
    if not file.exists():
        raise InputError(f"image {name!r} does not exist; check the path")
    close = None
    if kind == "zarr":
        if not Path(file).is_dir():
            raise InputError(f"{name!r} is not a Zarr folder; give the path of a .zarr folder")
        decoded: Decoded = open_zarr(file, inner, axes, name)
    elif kind == "hdf5":
        decoded, close = open_hdf5(file, inner, axes, name)
    else:
        decoded, close = open_tiff(file, axes, name)
    image = LazyImage(decoded.data, decoded.axes, decoded.pixel_size, name, close)
    if 0 in image.shape:
        image.close()
        raise InputError(
            f"image {name!r} is empty (shape {image.shape}); check the file or choose another image"
        )
    return image
