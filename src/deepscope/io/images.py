"""Read and write images in any supported format: :func:`read_image`, :func:`write_image`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepscope.errors import InputError
from deepscope.io.hdf5 import read_hdf5, write_hdf5
from deepscope.io.image import Image
from deepscope.io.metadata import Decoded, check_not_empty, choose_axes, clean_pixel_size
from deepscope.io.npy import read_npy, write_npy
from deepscope.io.paths import SUPPORTED_EXTENSIONS, image_format, split_path, supported_list
from deepscope.io.raster import read_raster, write_raster
from deepscope.io.tiff import read_tiff, write_tiff
from deepscope.io.zarr_io import read_zarr, write_zarr

__all__ = ["SUPPORTED_EXTENSIONS", "Image", "read_image", "write_image"]


def _format_of(file: Path, name: str, action: str) -> str:
    kind = image_format(file)
    if kind is None:
        extension = "".join(file.suffixes[-1:]) or "no extension"
        raise InputError(
            f"cannot {action} {name!r}: unknown image type ({extension}); "
            f"use one of {supported_list()}"
        )
    return kind


def _decode(file: Path, inner: str | None, kind: str, axes: str | None, name: str) -> Decoded:
    if kind == "zarr":
        if not file.is_dir():
            raise InputError(f"{name!r} is not a Zarr folder; give the path of a .zarr folder")
        return read_zarr(file, inner, axes, name)
    if kind == "hdf5":
        return read_hdf5(file, inner, axes, name)
    if kind == "tiff":
        return read_tiff(file, axes, name)
    if kind == "npy":
        return read_npy(file, axes, name)
    return read_raster(file, kind, axes, name)


def read_image(path: str | os.PathLike[str], axes: str | None = None) -> Image:
    """Read an image file into an :class:`Image`.

    Parameters
    ----------
    path : str or Path
        The image. Supported (see :data:`SUPPORTED_EXTENSIONS`):

        - TIFF and OME-TIFF (``.tif``, ``.tiff``), any compression tifffile and
          imagecodecs read; the first series at full resolution.
        - PNG, JPEG (``.png``, ``.jpg``, ``.jpeg``).
        - NumPy ``.npy``.
        - HDF5 (``.h5``, ``.hdf5``, ``.hdf``) as ``'file.h5:dataset/path'``; without a
          dataset the file must hold exactly one.
        - Zarr and OME-Zarr folders (``.zarr``), optionally ``'folder.zarr:path/inside'``;
          OME-Zarr gives its full-resolution level.
    axes : str, optional
        Axes of the data (``'ZYX'``...), overriding what the file says. By default the
        axes come from the file's metadata (TIFF, HDF5 ``axes`` attribute, OME-Zarr), else
        from :func:`~deepscope.io.axes.default_axes`; PNG/JPEG give ``'YX'`` or ``'YXC'``.

    Returns
    -------
    Image
        The data (in native byte order), axes, pixel size in micrometres when the file
        records one (else ``None``) and ``source`` set to ``path``.

    Raises
    ------
    InputError
        If the file is missing, unreadable, of an unknown type, empty, or the HDF5 dataset
        or Zarr array is not found.
    AxesError
        If ``axes`` does not fit the data.

    Examples
    --------
    >>> image = read_image("nuclei.h5:raw")  # doctest: +SKIP
    >>> image.axes, image.pixel_size  # doctest: +SKIP
    ('ZYX', {'Z': 0.28, 'Y': 0.13, 'X': 0.13})
    """
    name = os.fspath(path)
    file, inner = split_path(path)
    if file.is_dir() and file.suffix.lower() != ".zarr":
        raise InputError(
            f"{name!r} is a folder, not an image file; use list_images to read a folder"
        )
    kind = _format_of(file, name, "read")
    if not file.exists():
        raise InputError(f"image {name!r} does not exist; check the path")
    decoded = _decode(file, inner, kind, axes, name)
    data = decoded.data
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    check_not_empty(data, name)
    return Image(data, decoded.axes, decoded.pixel_size, source=name)


def _check_dtype(data: np.ndarray, name: str) -> None:
    if data.dtype.kind not in "biufc":
        raise InputError(
            f"cannot write {name!r}: data type {data.dtype} is not numeric; convert the data to "
            "a numeric type such as uint16 or float32"
        )


def _prepare_folder(file: Path, name: str, kind: str) -> None:
    if kind != "zarr" and file.is_dir():  # the Zarr writer checks its own target
        raise InputError(f"cannot write {name!r}: a folder of that name exists; choose a file name")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(
            f"cannot create folder '{file.parent}' for {name!r} ({error.strerror or error}); "
            "choose a writable location"
        ) from None


def write_image(
    path: str | os.PathLike[str],
    data: np.ndarray,
    axes: str | None = None,
    *,
    compression: str | None = "zlib",
    pixel_size: dict[str, float] | None = None,
) -> Path:
    """Write an array as an image file, atomically.

    The data go to a hidden temporary file in the same folder that then replaces
    ``path`` at once, so an interrupted write never leaves a partial file. Missing parent
    folders are created. Data types round-trip exactly for TIFF, ``.npy`` and HDF5.

    Parameters
    ----------
    path : str or Path
        Output file; the extension picks the format:

        - ``.tif``/``.tiff``: axes and pixel size are stored so that :func:`read_image`
          gets them back; ``.ome.tif`` writes OME-TIFF (axes must end in ``YX``/``YXC``).
          RGB(A) uint8/uint16 data with axes ending in ``YXC`` are stored as RGB.
        - ``.png``: axes ``'YX'`` or ``'YXC'`` with 3 or 4 channels, uint8 or uint16.
        - ``.jpg``/``.jpeg``: axes ``'YX'`` or ``'YXC'`` with 3 channels, uint8 (lossy).
        - ``.npy``: the array only (axes and pixel size are not stored).
        - HDF5 as ``'file.h5:dataset/path'`` (``'file.h5'`` alone means dataset ``data``):
          creates or replaces that dataset, keeping the others in the file, with
          attributes ``axes`` and ``element_size_um``. An existing file is updated on a
          copy, so it is never left half-written.

        - ``.ome.zarr`` (or ``.zarr``): an OME-Zarr image (NGFF 0.4; lower-resolution
          levels added above 1024 pixels in Y or X, see docs/io.md),
          axes in the NGFF order time, channel, space (``YXC`` is stored as ``CYX``),
          pixel size in the scale transformation; chunked and Blosc-compressed.
    data : numpy.ndarray
        The pixels, of a numeric type.
    axes : str, optional
        Axes of ``data``; by default :func:`~deepscope.io.axes.default_axes`.
    compression : str or None
        For TIFF one of ``'zlib'`` (default), ``'zstd'``, ``'lzw'``, ``'lzma'``,
        ``'deflate'``, ``'packbits'`` or ``None``; for HDF5 ``'zlib'``/``'gzip'``, ``'lzf'``
        or ``None``. Ignored for PNG, JPEG and ``.npy``.
    pixel_size : dict of str to float, optional
        Micrometres per pixel along spatial axes, for example ``{'Y': 0.65, 'X': 0.65}``.
        Stored in TIFF, HDF5 and OME-Zarr; ignored for PNG, JPEG and ``.npy``.

    Returns
    -------
    Path
        ``path`` as given (``read_image`` of it reads the data back).

    Raises
    ------
    InputError
        If the format cannot hold the data, the data are empty or not numeric, the
        compression is unknown, or the file cannot be written.
    AxesError
        If ``axes`` does not fit the data.
    """
    name = os.fspath(path)
    data = np.asarray(data)
    file, inner = split_path(path)
    kind = _format_of(file, name, "write")
    if inner is not None and kind == "zarr":
        raise InputError(
            f"cannot write {name!r}: a Zarr output is a whole store; give a folder name "
            "ending in .ome.zarr without a path inside it"
        )
    check_not_empty(data, name)
    _check_dtype(data, name)
    axes = choose_axes(data.shape, None, axes, name)
    pixel_size = clean_pixel_size(pixel_size, axes, name=name, strict=True)
    _prepare_folder(file, name, kind)
    if kind == "tiff":
        write_tiff(file, data, axes, compression, pixel_size)
    elif kind == "hdf5":
        write_hdf5(file, inner, data, axes, compression, pixel_size)
    elif kind == "npy":
        write_npy(file, data)
    elif kind == "zarr":
        write_zarr(file, data, axes, pixel_size)
    else:
        write_raster(file, kind, data, axes)
    return Path(name)
