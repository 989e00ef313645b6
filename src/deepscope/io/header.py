"""How many pixel values an image file holds, read from its header without decoding it:
a server can refuse a small file that would decode into gigabytes."""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np

from deepscope.io.paths import image_format, split_path

#: channels per PNG colour type (grey, RGB, palette, grey + alpha, RGBA)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: JPEG start-of-frame markers (those that carry the image size)
_JPEG_FRAMES = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _png_shape(path: Path) -> tuple[int, ...]:
    """Height, width, channels from the PNG's IHDR chunk (the first one)."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError("not a PNG header")
    width, height = struct.unpack(">II", head[16:24])
    return height, width, _PNG_CHANNELS.get(head[25], 4)


def _jpeg_shape(path: Path) -> tuple[int, ...]:
    """Height, width, components from the JPEG's start-of-frame segment."""
    with open(path, "rb") as fh:
        if fh.read(2) != b"\xff\xd8":
            raise ValueError("not a JPEG header")
        while True:
            marker = fh.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                raise ValueError("no JPEG frame header")
            (length,) = struct.unpack(">H", fh.read(2))
            if marker[1] in _JPEG_FRAMES:
                _, height, width, components = struct.unpack(">BHHB", fh.read(6))
                return height, width, components
            fh.seek(length - 2, os.SEEK_CUR)


def _shape(path, inner: str | None, kind: str) -> tuple[int, ...]:
    if kind == "tiff":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return tuple(tif.series[0].shape)
    if kind == "png":
        return _png_shape(path)
    if kind == "jpeg":
        return _jpeg_shape(path)
    if kind == "npy":
        return np.load(path, mmap_mode="r", allow_pickle=False).shape
    if kind == "hdf5":
        import h5py

        from deepscope.io.hdf5 import pick_dataset

        with h5py.File(path, "r") as handle:
            return pick_dataset(handle, inner, str(path)).shape
    raise ValueError(f"no header reader for {kind} files")


def pixel_values(path: str | os.PathLike[str]) -> int | None:
    """The number of values (pixels times channels and planes) of an image file, from its
    header; ``None`` when the header cannot tell (an unreadable file, which
    :func:`~deepscope.io.read_image` then reports, or a Zarr store)."""
    file, inner = split_path(path)
    kind = image_format(file)
    if kind is None or kind == "zarr":  # a Zarr store is read window by window anyway
        return None
    try:
        return math.prod(_shape(file, inner, kind))
    except Exception:  # a damaged header: reading the image says what is wrong
        return None
