"""PNG and JPEG reading and writing with imagecodecs (8- and 16-bit PNG, 8-bit JPEG).

Three things a viewer does when it shows such a file are done here too, so that what is
analysed is what the user sees (and drew masks on): a JPEG's EXIF orientation is applied;
an alpha channel that is fully opaque (it says nothing) is dropped; and a palette PNG
(ImageJ's 8-bit image with a colour table, or an annotation tool's label mask) gives its
pixel values, the palette indices, not the colours of its table.
"""

from __future__ import annotations

import io
from pathlib import Path

import imagecodecs
import numpy as np

from deepscope.errors import InputError
from deepscope.io.atomic import atomic_output
from deepscope.io.metadata import Decoded, choose_axes, error_reason

__all__ = ["JPEG_QUALITY", "read_raster", "write_raster"]

#: Quality of written JPEG files (0-100).
JPEG_QUALITY = 95

_DECODERS = {"png": imagecodecs.png_decode, "jpeg": imagecodecs.jpeg8_decode}
#: a JPEG stream ends with this marker (End Of Image); some writers pad after it
_JPEG_END, _JPEG_TAIL = b"\xff\xd9", 4096


#: PNG colour types: indexed colour (a palette), and those with an alpha channel
_PNG_PALETTE, _PNG_ALPHA = 3, (4, 6)
#: EXIF orientation (tag 274) -> how to turn the stored pixels into the displayed image
_EXIF_ORIENTATION = 0x0112
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _decode(encoded: bytes, kind: str) -> np.ndarray:
    if kind == "jpeg":
        if _JPEG_END not in encoded[-_JPEG_TAIL:]:
            # the decoder fills a cut-off stream with grey instead of failing
            raise ValueError("the file ends before the image does")
        data = np.asarray(_DECODERS[kind](encoded))
        return np.ascontiguousarray(_ORIENT.get(_jpeg_orientation(encoded), np.asarray)(data))
    colour_type = encoded[25] if len(encoded) > 25 else None
    if colour_type == _PNG_PALETTE:
        return _palette_indices(encoded)
    data = np.asarray(_DECODERS[kind](encoded))
    if colour_type in _PNG_ALPHA and data.ndim == 3 and _opaque(data[..., -1]):
        data = data[..., 0] if data.shape[-1] == 2 else np.ascontiguousarray(data[..., :-1])
    return data


def _opaque(alpha: np.ndarray) -> bool:
    return bool((alpha == np.iinfo(alpha.dtype).max).all())


def _palette_indices(encoded: bytes) -> np.ndarray:
    """The pixel values of a palette PNG: its indices (imagecodecs gives the colours)."""
    from PIL import Image

    with Image.open(io.BytesIO(encoded)) as picture:
        if picture.mode != "P":  # a palette of 1, 2 or 4 bits comes as such too
            picture = picture.convert("P")
        return np.asarray(picture, dtype=np.uint8)


def _jpeg_orientation(encoded: bytes) -> int:
    """The EXIF orientation of a JPEG (1, as stored, when it has none)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(encoded)) as picture:
            return int(picture.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # EXIF that cannot be read says nothing about orientation
        return 1


def read_raster(path: Path, kind: str, axes: str | None, name: str) -> Decoded:
    """Read a PNG or JPEG file: grey gives ``'YX'``, colour ``'YXC'`` (see the module's
    note for orientation, alpha and palettes)."""
    label = kind.upper()
    try:
        data = _decode(path.read_bytes(), kind)
    except Exception as error:  # any failure means the file is unusable
        raise InputError(
            f"cannot read {label} file {name!r} ({error_reason(error)}); check that it is a "
            f"complete, valid {label} image"
        ) from error
    file_axes = "YX" if data.ndim == 2 else "YXC"
    return Decoded(data, choose_axes(data.shape, file_axes, axes, name), None)


def _check_writable(path: Path, kind: str, data: np.ndarray, axes: str) -> None:
    label = kind.upper()
    channels = (3,) if kind == "jpeg" else (3, 4)
    layout_ok = axes == "YX" or (axes == "YXC" and data.shape[-1] in channels)
    if not layout_ok:
        wanted = (
            "'YX' or 'YXC' with 3 channels"
            if kind == "jpeg"
            else ("'YX' or 'YXC' with 3 or 4 channels")
        )
        raise InputError(
            f"cannot write an image with axes {axes!r} and shape {data.shape} as {label} "
            f"'{path}': {label} holds {wanted}; reorder with Image.as_axes or write .tif"
        )
    dtypes = (np.uint8,) if kind == "jpeg" else (np.uint8, np.uint16)
    if data.dtype not in dtypes:
        allowed = " or ".join(np.dtype(dtype).name for dtype in dtypes)
        raise InputError(
            f"cannot write {data.dtype} data as {label} '{path}': {label} holds {allowed}; "
            "convert the data or write .tif, .npy or .h5"
        )


def write_raster(path: Path, kind: str, data: np.ndarray, axes: str) -> None:
    """Write a PNG (uint8/uint16) or JPEG (uint8, quality :data:`JPEG_QUALITY`) file."""
    data = np.asarray(data)
    data = data.astype(data.dtype.newbyteorder("="), copy=False)  # big-endian uint16 too
    _check_writable(path, kind, data, axes)
    data = np.ascontiguousarray(data)
    try:
        if kind == "png":
            encoded = imagecodecs.png_encode(data)
        else:
            encoded = imagecodecs.jpeg8_encode(data, level=JPEG_QUALITY)
        with atomic_output(path) as temporary:
            temporary.write_bytes(encoded)
    except Exception as error:  # report any writer failure in one line
        raise InputError(
            f"cannot write {kind.upper()} file '{path}' ({error_reason(error)}); "
            "check the folder is writable and the disk has space"
        ) from error
