"""TIFF and OME-TIFF reading and writing with tifffile."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from deepscope.errors import InputError
from deepscope.io.atomic import atomic_output
from deepscope.io.axes import VALID_AXES
from deepscope.io.metadata import (
    Decoded,
    choose_axes,
    clean_pixel_size,
    error_reason,
    to_micrometres,
)

__all__ = ["TIFF_COMPRESSIONS", "open_tiff", "read_tiff", "write_tiff"]

#: Lossless compressions ``write_tiff`` accepts (``None`` for none).
TIFF_COMPRESSIONS = (None, "zlib", "deflate", "zstd", "lzw", "lzma", "packbits")

# Key under which deepscope stores exact pixel sizes in tifffile's JSON description.
_PIXEL_SIZE_KEY = "pixel_size_um"

# TIFF ResolutionUnit values (3 and the non-standard 4 and 5 are written by tifffile).
_RESOLUTION_UNIT_UM = {2: 25400.0, 3: 1e4, 4: 1e3, 5: 1.0}


def _series_axes(tiff_axes: str, ndim: int) -> str | None:
    """Translate tifffile's axes letters to deepscope's, or ``None`` if they do not fit.

    tifffile calls RGB samples ``S`` (here ``C``) and uses letters such as ``Q`` (unknown)
    or ``I`` (a sequence of pages) that deepscope has no meaning for: then the axes are
    guessed from the shape instead.
    """
    axes = tiff_axes.upper().replace("S", "C")
    if len(axes) != ndim or len(set(axes)) != ndim:
        return None
    if any(letter not in VALID_AXES for letter in axes) or "Y" not in axes or "X" not in axes:
        return None
    return axes


def _round(value: float) -> float:
    """Round away the noise of TIFF's rational numbers (9 significant digits)."""
    return float(f"{value:.9g}")


def _deepscope_pixel_size(tif: tifffile.TiffFile) -> dict[str, Any] | None:
    shaped = tif.shaped_metadata
    if shaped and isinstance(shaped[0], dict):
        value = shaped[0].get(_PIXEL_SIZE_KEY)
        if isinstance(value, dict):
            return value
    return None


def _ome_pixel_size(tif: tifffile.TiffFile) -> dict[str, float] | None:
    if not tif.is_ome or not tif.ome_metadata:
        return None
    root = ElementTree.fromstring(tif.ome_metadata)
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Pixels":
            sizes = {}
            for letter in "ZYX":
                value = element.get(f"PhysicalSize{letter}")
                unit = element.get(f"PhysicalSize{letter}Unit", "\u00b5m")
                size = to_micrometres(value, unit) if value is not None else None
                if size is not None:
                    sizes[letter] = size
            return sizes or None
    return None


def _resolution(page: Any) -> tuple[float, float] | None:
    """Pixels per unit along X and Y from a page's resolution tags."""
    try:
        x_res, y_res = (float(value) for value in page.resolution)
    except (TypeError, ValueError, AttributeError):
        return None
    if not (x_res > 0 and y_res > 0 and math.isfinite(x_res) and math.isfinite(y_res)):
        return None
    return x_res, y_res


def _imagej_pixel_size(tif: tifffile.TiffFile, page: Any) -> dict[str, float] | None:
    metadata = tif.imagej_metadata
    if not metadata:
        return None
    unit = metadata.get("unit")
    factor = to_micrometres(1.0, unit)
    if factor is None:
        return None
    sizes = {}
    resolution = _resolution(page)
    if resolution is not None:
        sizes["X"] = _round(factor / resolution[0])
        sizes["Y"] = _round(factor / resolution[1])
    spacing = metadata.get("spacing")
    if spacing is not None:
        z_size = to_micrometres(spacing, unit)
        if z_size is not None:
            sizes["Z"] = z_size
    return sizes or None


#: pixels per inch up to which the resolution tags are a desktop program's default (72, 96,
#: 300 ... dpi: 21-353 µm a pixel), not a microscope's pixel size
_DESKTOP_DPI = 1200


def _tag_pixel_size(page: Any) -> dict[str, float] | None:
    unit = int(getattr(page, "resolutionunit", 1) or 1)
    factor = _RESOLUTION_UNIT_UM.get(unit)
    resolution = _resolution(page)
    if factor is None or resolution is None:
        return None
    if unit == 2 and max(resolution) <= _DESKTOP_DPI:  # inches
        return None
    return {"Y": _round(factor / resolution[1]), "X": _round(factor / resolution[0])}


def _pixel_size(tif: tifffile.TiffFile, page: Any) -> dict[str, Any] | None:
    """Best-effort pixel size in micrometres; ``None`` when the file does not say."""
    readers = (
        lambda: _deepscope_pixel_size(tif),
        lambda: _ome_pixel_size(tif),
        lambda: _imagej_pixel_size(tif, page),
        lambda: _tag_pixel_size(page),
    )
    for reader in readers:
        try:
            sizes = reader()
        except Exception:  # metadata is optional; a broken tag is ignored
            sizes = None
        if sizes:
            return sizes
    return None


def _first_series(tif: tifffile.TiffFile, name: str) -> Any:
    if not tif.series:
        raise InputError(f"TIFF file {name!r} contains no images; check the file")
    return tif.series[0]


def _describe(
    tif: tifffile.TiffFile, series: Any, shape: tuple[int, ...], axes: str | None, name: str
) -> tuple[str, dict[str, float] | None]:
    """Final axes and pixel size of the first series, whose pixels have ``shape``."""
    file_axes = _series_axes(series.axes, len(shape))
    pixel_size = _pixel_size(tif, series.pages[0] if series.pages else tif.pages[0])
    final_axes = choose_axes(shape, file_axes, axes, name)
    return final_axes, clean_pixel_size(pixel_size, final_axes, strict=False)


def _unusable(name: str, error: Exception) -> InputError:
    return InputError(
        f"cannot read TIFF file {name!r} ({error_reason(error)}); check that it is a complete, "
        "valid TIFF file"
    )


def read_tiff(path: Path, axes: str | None, name: str) -> Decoded:
    """Read the first series of a TIFF or OME-TIFF file (full resolution).

    Axes come from tifffile (``S`` read as ``C``; unknown letters make the axes be guessed
    from the shape). The pixel size comes, in this order, from deepscope's own
    metadata, OME-XML, ImageJ metadata or the resolution tags with a physical unit.
    """
    try:
        with tifffile.TiffFile(path) as tif:
            series = _first_series(tif, name)
            data = series.asarray()
            final_axes, pixel_size = _describe(tif, series, data.shape, axes, name)
    except InputError:
        raise
    except Exception as error:  # any failure means the file is unusable
        raise _unusable(name, error) from error
    return Decoded(data, final_axes, pixel_size)


def open_tiff(path: Path, axes: str | None, name: str) -> tuple[Decoded, Callable[[], None]]:
    """Open the first series of a TIFF file without reading its pixels: ``data`` is a
    read-only ``zarr.Array`` over the file (slicing it decodes only the strips or tiles
    that a window needs), with the axes and pixel size :func:`read_tiff` gives. Call the
    returned function to close the file."""
    try:
        tif = tifffile.TiffFile(path)
    except Exception as error:  # any failure means the file is unusable
        raise _unusable(name, error) from error
    try:
        series = _first_series(tif, name)
        data = zarr.open(series.aszarr(level=0), mode="r")  # full resolution of a pyramid
        final_axes, pixel_size = _describe(tif, series, data.shape, axes, name)
    except Exception as error:
        tif.close()
        if isinstance(error, InputError):
            raise
        raise _unusable(name, error) from error
    return Decoded(data, final_axes, pixel_size), tif.close


def _layout(data: np.ndarray, axes: str) -> dict[str, Any]:
    """tifffile's photometric and planar configuration for an array with ``axes``."""
    if axes.endswith("YXC"):
        rgb = data.shape[-1] in (3, 4) and data.dtype in (np.uint8, np.uint16)
        return {"photometric": "rgb" if rgb else "minisblack", "planarconfig": "contig"}
    return {"photometric": "minisblack"}


def _compression(compression: str | None) -> str | None:
    key = compression.lower() if isinstance(compression, str) else compression
    if key == "none":
        key = None
    if key not in TIFF_COMPRESSIONS:
        choices = ", ".join(repr(choice) for choice in TIFF_COMPRESSIONS)
        raise InputError(f"unknown TIFF compression {compression!r}; use one of {choices}")
    return key


def write_tiff(
    path: Path,
    data: np.ndarray,
    axes: str,
    compression: str | None,
    pixel_size: dict[str, float] | None,
) -> None:
    """Write ``data`` as a TIFF (or OME-TIFF if the name ends with ``.ome.tif(f)``).

    The axes and exact pixel sizes go into tifffile's JSON image description (for
    OME-TIFF into the OME-XML); the Y/X pixel size also into the resolution tags in
    centimetres, which most other software reads.
    """
    compression = _compression(compression)
    if axes.endswith("YXC") and (data.shape[-1] == 1 or data.dtype == bool):
        # stored channel by channel: tifffile cannot interleave one sample, and packs
        # interleaved 1-bit samples wrongly
        data, axes = np.moveaxis(data, -1, -3), axes[:-3] + "CYX"
    layout = _layout(data, axes)
    is_ome = path.name.lower().endswith((".ome.tif", ".ome.tiff"))
    sizes = pixel_size or {}
    options: dict[str, Any] = {}
    # the tags hold pixels per cm as 32-bit fractions: below ~5 pm a pixel they cannot, and
    # the size travels in the metadata alone
    if "X" in sizes and "Y" in sizes and 1e4 / min(sizes["X"], sizes["Y"]) < 2**31:
        options["resolution"] = (1e4 / sizes["X"], 1e4 / sizes["Y"])
        options["resolutionunit"] = "CENTIMETER"
    if is_ome:
        ome_axes = axes[:-1] + "S" if layout.get("planarconfig") == "contig" else axes
        metadata: dict[str, Any] = {"axes": ome_axes}
        for letter, size in sizes.items():
            metadata[f"PhysicalSize{letter}"] = size
            metadata[f"PhysicalSize{letter}Unit"] = "\u00b5m"
    else:
        metadata = {"axes": axes}
        if sizes:
            metadata[_PIXEL_SIZE_KEY] = dict(sizes)
    try:
        with atomic_output(path) as temporary:
            tifffile.imwrite(
                temporary,
                data,
                imagej=False,
                ome=is_ome,
                compression=compression,
                metadata=metadata,
                **layout,
                **options,
            )
    except Exception as error:  # report any writer failure in one line
        if is_ome and not axes.endswith(("YX", "YXC")):
            hint = "OME-TIFF needs axes ending in 'YX' or 'YXC'; reorder the data or write .tif"
        elif is_ome and "not supported" in str(error):
            hint = (
                "OME-TIFF holds (u)int8-32 and float32/64; convert the data or write a plain .tif"
            )
        else:
            hint = "check the folder is writable and the disk has space"
        raise InputError(
            f"cannot write TIFF file '{path}' ({error_reason(error)}); {hint}"
        ) from error
