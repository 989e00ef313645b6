"""Zarr and OME-Zarr with the ``zarr`` package: reading (NGFF 0.4 and 0.5) and writing
(NGFF 0.4, the version every OME-Zarr viewer reads)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from deepscope.errors import InputError
from deepscope.io.atomic import atomic_output
from deepscope.io.axes import SPATIAL_AXES, VALID_AXES, transpose_axes
from deepscope.io.metadata import (
    Decoded,
    choose_axes,
    clean_pixel_size,
    error_reason,
    to_micrometres,
)
from deepscope.io.paths import image_stem
from deepscope.io.pyramid import add_levels, downsample_method

__all__ = ["is_zarr_store", "open_zarr", "read_zarr", "write_zarr", "zarr_writer"]

_MAX_LISTED = 10


def _multiscales(attributes: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first multiscale image of NGFF 0.5 (under ``ome``) or 0.4 metadata."""
    ome = attributes.get("ome")
    entries = ome.get("multiscales") if isinstance(ome, Mapping) else None
    if entries is None:
        entries = attributes.get("multiscales")
    if isinstance(entries, list) and entries and isinstance(entries[0], Mapping):
        return dict(entries[0])
    return None


def _axes_letters(names: list[Any] | tuple[Any, ...] | None) -> str | None:
    """Axis names such as ``['c', 'y', 'x']`` as ``'CYX'``, or ``None`` if not all known."""
    if not names:
        return None
    letters = []
    for entry in names:
        label = entry.get("name") if isinstance(entry, Mapping) else entry
        if not isinstance(label, str) or label.upper() not in VALID_AXES or len(label) != 1:
            return None
        letters.append(label.upper())
    return "".join(letters)


def _scale(transformations: Any) -> list[float] | None:
    if not isinstance(transformations, list):
        return None
    for transformation in transformations:
        if isinstance(transformation, Mapping) and transformation.get("type") == "scale":
            scale = transformation.get("scale")
            if isinstance(scale, list):
                return [float(value) for value in scale]
    return None


def _ngff_spacing(
    multiscale: Mapping[str, Any], dataset: Mapping[str, Any], ndim: int
) -> list[float | None] | None:
    """Size in micrometres per dimension of one dataset (None where unknown)."""
    scale = _scale(dataset.get("coordinateTransformations"))
    if scale is None or len(scale) != ndim:
        return None
    overall = _scale(multiscale.get("coordinateTransformations"))
    if overall is not None and len(overall) == ndim:
        scale = [value * factor for value, factor in zip(scale, overall, strict=True)]
    axes = multiscale.get("axes")
    if not isinstance(axes, list) or len(axes) != ndim:
        return None
    spacing: list[float | None] = []
    for entry, value in zip(axes, scale, strict=True):
        unit = entry.get("unit") if isinstance(entry, Mapping) else None
        spacing.append(to_micrometres(value, unit) if unit is not None else None)
    return spacing


def _from_multiscale(
    group: Any, multiscale: Mapping[str, Any], name: str, level: str | None = None
) -> tuple[Any, str | None, list[float | None] | None]:
    """One level of an OME-Zarr image (the first, full-resolution one by default)."""
    datasets = multiscale.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise InputError(f"OME-Zarr {name!r} lists no datasets in its multiscales metadata")
    chosen = [entry for entry in datasets if isinstance(entry, Mapping)]
    if level is not None:
        chosen = [entry for entry in chosen if entry.get("path") == level]
    if not chosen or "path" not in chosen[0]:
        raise InputError(f"OME-Zarr {name!r} has no valid dataset path in its multiscales metadata")
    dataset = chosen[0]
    array = group[dataset["path"]]
    axes = _axes_letters(multiscale.get("axes"))
    return array, axes, _ngff_spacing(multiscale, dataset, array.ndim)


def _arrays(group: Any, prefix: str = "") -> list[str]:
    """Paths of all arrays below a zarr group, sorted."""
    found = [f"{prefix}{key}" for key in group.array_keys()]
    for key in group.group_keys():
        found += _arrays(group[key], f"{prefix}{key}/")
    return sorted(found)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    if len(names) > _MAX_LISTED:
        shown += f", ... ({len(names)} in all)"
    return shown


def _locate(node: Any, name: str, store: str) -> tuple[Any, str | None, list[float | None] | None]:
    """The array to read, its axes from metadata and its spacing per dimension."""
    if isinstance(node, zarr.Array):
        names = getattr(node.metadata, "dimension_names", None)
        if names is None:
            names = node.attrs.get("_ARRAY_DIMENSIONS")
        return node, _axes_letters(names), None

    multiscale = _multiscales(node.attrs.asdict())
    if multiscale is None and "0" in node.group_keys():
        # bioformats2raw layout: the image is the group '0' of the top group.
        nested = _multiscales(node["0"].attrs.asdict())
        if nested is not None:
            node, multiscale = node["0"], nested
    if multiscale is not None:
        return _from_multiscale(node, multiscale, name)

    arrays = _arrays(node)
    if len(arrays) == 1:
        return _locate(node[arrays[0]], name, store)
    if not arrays:
        raise InputError(f"Zarr {name!r} contains no arrays; check the path")
    raise InputError(
        f"Zarr {name!r} holds {len(arrays)} arrays ({_listing(arrays)}) and no OME "
        f"multiscales metadata; name one as '{store}:{arrays[0]}'"
    )


def _locate_inner(
    root: Any, inner: str, name: str, store: str
) -> tuple[Any, str | None, list[float | None] | None]:
    """Like :func:`_locate` for a path inside the store; a level of an OME-Zarr image
    keeps the axes and pixel size of its image."""
    try:
        node = root[inner]
    except Exception:  # a missing key or a path through an array
        arrays = _arrays(root) if isinstance(root, zarr.Group) else []
        choices = f"choose one of: {_listing(arrays)}" if arrays else "check the path"
        raise InputError(f"Zarr {store!r} has no array or group {inner!r}; {choices}") from None
    if isinstance(node, zarr.Array):
        parent_path, _, level = inner.rpartition("/")
        parent = root[parent_path] if parent_path else root
        multiscale = _multiscales(parent.attrs.asdict())
        if multiscale is not None:
            levels = [entry.get("path") for entry in multiscale.get("datasets") or []]
            if level in levels:
                return _from_multiscale(parent, multiscale, name, level)
    return _locate(node, name, store)


def open_zarr(path: Path, inner: str | None, axes: str | None, name: str) -> Decoded:
    """Open a Zarr array or the full-resolution level of an OME-Zarr image without reading
    its pixels: ``data`` is the ``zarr.Array`` itself (read a window by slicing it).

    ``inner`` is a path inside the store (``'plate.zarr:A/1/0'``). For an OME-Zarr group
    the first dataset of the first multiscale image is used, with its axis names, and the
    pixel size from the scale transformations of axes that have a length unit. A group
    without OME metadata must hold exactly one array.
    """
    try:
        root = zarr.open(store=str(path), mode="r")
    except Exception as error:  # any failure means the store is unusable
        raise InputError(
            f"cannot open {name!r} as Zarr ({error_reason(error)}); check that it is a Zarr folder"
        ) from error
    try:
        if inner is None:
            array, file_axes, spacing = _locate(root, name, str(path))
        else:
            array, file_axes, spacing = _locate_inner(root, inner, name, str(path))
    except InputError:
        raise
    except Exception as error:  # broken metadata
        raise InputError(
            f"cannot read Zarr {name!r} ({error_reason(error)}); the store may be incomplete"
        ) from error
    final_axes = choose_axes(array.shape, file_axes, axes, name)
    pixel_size = None
    if spacing is not None:
        pixel_size = {
            letter: size
            for letter, size in zip(final_axes, spacing, strict=True)
            if letter in SPATIAL_AXES and size is not None
        }
    return Decoded(array, final_axes, clean_pixel_size(pixel_size, final_axes, strict=False))


def read_zarr(path: Path, inner: str | None, axes: str | None, name: str) -> Decoded:
    """Read a Zarr array or the full-resolution level of an OME-Zarr image into memory
    (what :func:`open_zarr` opens)."""
    opened = open_zarr(path, inner, axes, name)
    try:
        data = np.asarray(opened.data[...])
    except Exception as error:  # broken chunks
        raise InputError(
            f"cannot read Zarr {name!r} ({error_reason(error)}); the store may be incomplete or "
            "need a codec that is not installed"
        ) from error
    return Decoded(data, opened.axes, opened.pixel_size)


#: NGFF axis order (time, channel, then space) and each letter's axis type
_NGFF_ORDER = "TCZYX"
_NGFF_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
#: chunk edge per spatial axis: 2D images in 1024² chunks, volumes in 64 x 256²
_CHUNK_2D = 1024
_CHUNK_3D = (64, 256, 256)


def _chunks(shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
    spatial = [letter for letter in axes if letter in SPATIAL_AXES]
    edges = dict(zip("ZYX", _CHUNK_3D, strict=True)) if "Z" in spatial else {}
    return tuple(
        min(size, edges.get(letter, _CHUNK_2D)) if letter in SPATIAL_AXES else 1
        for size, letter in zip(shape, axes, strict=True)
    )


def _multiscale_metadata(
    name: str, axes: str, pixel_size: Mapping[str, float], levels: int = 1, method: str = ""
) -> dict:
    """NGFF 0.4 metadata of an image with ``levels`` resolution levels, each halving Y
    and X of the one before (downsampled by ``method``)."""
    entries, scale = [], []
    for letter in axes:
        entry = {"name": letter.lower(), "type": _NGFF_TYPES[letter]}
        if letter in pixel_size:
            entry["unit"] = "micrometer"
        entries.append(entry)
        scale.append(float(pixel_size.get(letter, 1.0)))
    datasets = []
    for level in range(levels):
        factors = [2.0**level if letter in "YX" else 1.0 for letter in axes]
        level_scale = [value * factor for value, factor in zip(scale, factors, strict=True)]
        transformation = {"type": "scale", "scale": level_scale}
        datasets.append({"path": str(level), "coordinateTransformations": [transformation]})
    metadata = {"version": "0.4", "name": name, "axes": entries, "datasets": datasets}
    if levels > 1:
        metadata["type"] = method
    return metadata


def is_zarr_store(folder: Path) -> bool:
    """True if ``folder`` holds Zarr metadata at its top (format 2 or 3): a store that
    writing may replace, unlike any other folder."""
    return any((folder / marker).is_file() for marker in (".zgroup", ".zarray", "zarr.json"))


def check_zarr_target(path: Path) -> None:
    """An :class:`InputError` if writing a Zarr store at ``path`` would replace something
    that is not a Zarr store (a file, or a folder of other files); an existing store is
    replaced."""
    if path.is_dir() and not is_zarr_store(path):
        raise InputError(
            f"cannot write {str(path)!r}: a folder of that name exists and is not a Zarr "
            "store; move it or choose another --out"
        )
    if path.exists() and not path.is_dir():
        raise InputError(
            f"cannot write {str(path)!r}: a file of that name exists; move it or choose "
            "another --out"
        )


def _ngff_order(path: Path, axes: str) -> str:
    """``axes`` in the NGFF order time, channel, space; axes OME-Zarr cannot hold are an
    :class:`InputError` naming the file."""
    if len(axes) < 2:
        raise InputError(f"cannot write {str(path)!r}: OME-Zarr holds 2 to 5 axes, got {axes!r}")
    if "S" in axes:
        raise InputError(f"cannot write {str(path)!r}: OME-Zarr has no sample axis 'S'")
    return "".join(letter for letter in _NGFF_ORDER if letter in axes)


@contextmanager
def zarr_writer(
    path: str | Path,
    shape: tuple[int, ...],
    dtype: Any,
    axes: str,
    pixel_size: Mapping[str, float] | None = None,
) -> Iterator[Any]:
    """A new OME-Zarr image (NGFF 0.4, Zarr format 2, Blosc-compressed chunks of 1024² in
    2D and 64 x 256² in 3D) to fill region by region: yields its full-resolution
    ``zarr.Array`` (zeros until written). ``axes`` must be in the NGFF order time,
    channel, space (``'CYX'``, ``'ZYX'``).

    When the block ends, an image larger than 1024 pixels in Y or X gets lower-resolution
    levels for viewers (:mod:`deepscope.io.pyramid`). The store is written to a hidden
    folder beside ``path`` that takes its place only then, without an error, so a reader
    never sees a half-written image; an existing store at ``path`` is replaced.
    """
    path = Path(path)
    ordered = _ngff_order(path, axes)
    if ordered != axes:
        raise ValueError(f"zarr_writer needs axes in NGFF order ({ordered!r}), got {axes!r}")
    check_zarr_target(path)
    try:
        with atomic_output(path, background_writes=True) as temporary:
            root = zarr.open_group(store=str(temporary), mode="w", zarr_format=2)
            array = root.create_array(
                "0", shape=shape, dtype=dtype, chunks=_chunks(shape, axes), fill_value=0
            )
            yield array
            method, lower = downsample_method(dtype), []
            if axes.endswith("YX"):
                lower = add_levels(root, array, lambda level: _chunks(level, axes), method)
            root.attrs["multiscales"] = [
                _multiscale_metadata(
                    image_stem(path), axes, dict(pixel_size or {}), 1 + len(lower), method
                )
            ]
    except OSError as error:
        raise InputError(
            f"cannot write {str(path)!r} ({error.strerror or error}); choose a writable location"
        ) from None


def write_zarr(
    path: Path, data: np.ndarray, axes: str, pixel_size: Mapping[str, float] | None = None
) -> None:
    """Write ``data`` as an OME-Zarr image (see :func:`zarr_writer`);
    axes are stored in the NGFF order time, channel, space (``YXC`` data become ``CYX``)."""
    ordered = _ngff_order(path, axes)
    data = transpose_axes(data, axes, ordered)
    with zarr_writer(path, data.shape, data.dtype, ordered, pixel_size) as array:
        array[...] = data
