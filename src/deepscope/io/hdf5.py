"""HDF5 reading and writing with h5py (``'file.h5:dataset/path'``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from deepscope.errors import InputError
from deepscope.io.atomic import atomic_output
from deepscope.io.axes import SPATIAL_AXES
from deepscope.io.metadata import (
    Decoded,
    choose_axes,
    clean_pixel_size,
    error_reason,
    pixel_size_from_sequence,
)

__all__ = ["DEFAULT_DATASET", "read_hdf5", "write_hdf5"]

#: Dataset written when a path names no dataset (``'out.h5'`` means ``'out.h5:data'``).
DEFAULT_DATASET = "data"

# Attributes holding one size per spatial axis (ilastik, Fiji/BigDataViewer, plantseg...).
_PIXEL_SIZE_ATTRIBUTES = ("element_size_um", "resolution", "pixel_size_um", "voxel_size")

_MAX_LISTED = 10


def _datasets(group: h5py.Group) -> list[str]:
    """Names of all datasets below ``group``, sorted."""
    names: list[str] = []

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset):
            names.append(name)

    group.visititems(visit)
    return sorted(names)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    if len(names) > _MAX_LISTED:
        shown += f", ... ({len(names)} in all)"
    return shown


def _text(value: Any) -> str | None:
    """An attribute as text: str, bytes or a list of one-letter names."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _text(value.item())
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [_text(part) for part in value]
        if parts and all(part is not None for part in parts):
            return "".join(parts)  # type: ignore[arg-type]
    return None


def _pixel_size(attributes: h5py.AttributeManager, axes: str) -> dict[str, float] | None:
    for key in _PIXEL_SIZE_ATTRIBUTES:
        if key in attributes:
            values = np.atleast_1d(np.asarray(attributes[key]))
            if values.ndim == 1 and values.dtype.kind in "iuf":
                sizes = pixel_size_from_sequence(list(values), axes)
                if sizes:
                    return sizes
    return None


def pick_dataset(handle: h5py.File, inner: str | None, file: str) -> h5py.Dataset:
    """The dataset ``inner`` of an open file, or its only dataset when none is named."""
    if inner is not None:
        try:
            node = handle.get(inner)
        except Exception:  # e.g. a path through a dataset: treat as missing
            node = None
        if isinstance(node, h5py.Dataset):
            return node
        names = _datasets(handle)
        problem = "is a group, not a dataset" if isinstance(node, h5py.Group) else "does not exist"
        choices = f"choose one of: {_listing(names)}" if names else "the file has no datasets"
        raise InputError(f"HDF5 file '{file}': dataset {inner!r} {problem}; {choices}")
    names = _datasets(handle)
    if len(names) == 1:
        return handle[names[0]]
    if not names:
        raise InputError(f"HDF5 file '{file}' contains no datasets; check the file")
    raise InputError(
        f"HDF5 file '{file}' holds {len(names)} datasets ({_listing(names)}); "
        f"name one as '{file}:{names[0]}'"
    )


def _ilastik_axes(axistags: Any) -> str | None:
    """Axes from ilastik's (vigra's) ``axistags`` attribute, a JSON text such as
    ``{"axes": [{"key": "y", ...}, {"key": "x", ...}, {"key": "c", ...}]}``; ``None``
    when absent or unreadable."""
    text = _text(axistags)
    if not text:
        return None
    try:
        keys = [axis["key"] for axis in json.loads(text)["axes"]]
    except (ValueError, KeyError, TypeError):
        return None
    return "".join(keys).upper() if all(isinstance(k, str) and len(k) == 1 for k in keys) else None


def open_hdf5(
    path: Path, inner: str | None, axes: str | None, name: str
) -> tuple[Decoded, Callable[[], None]]:
    """Open one dataset of an HDF5 file without reading it: ``data`` is the h5py dataset
    (slicing it reads only the chunks a window touches). Call the returned function to
    close the file.

    With no dataset named, the file must hold exactly one. Axes come from the dataset's
    ``axes`` attribute if present, else from ilastik's ``axistags``; the pixel size from
    ``element_size_um`` (or ``resolution``, ``pixel_size_um``, ``voxel_size``), one value
    per spatial axis.
    """
    try:
        handle = h5py.File(path, "r")
    except Exception as error:  # any failure means the file is unusable
        raise InputError(
            f"cannot open {name!r} as HDF5 ({error_reason(error)}); "
            "check that it is a valid HDF5 file"
        ) from error
    try:
        dataset = pick_dataset(handle, inner, str(path))
        attributes = dict(dataset.attrs)
        stored = _text(attributes.get("axes")) or _ilastik_axes(attributes.get("axistags"))
        final_axes = choose_axes(dataset.shape, stored, axes, name)
        pixel_size = _pixel_size(dataset.attrs, final_axes)
    except BaseException:
        handle.close()
        raise
    decoded = Decoded(dataset, final_axes, clean_pixel_size(pixel_size, final_axes, strict=False))
    return decoded, handle.close


def read_hdf5(path: Path, inner: str | None, axes: str | None, name: str) -> Decoded:
    """Read one dataset of an HDF5 file into memory (what :func:`open_hdf5` opens)."""
    opened, close = open_hdf5(path, inner, axes, name)
    try:
        data = np.asarray(opened.data[()])
    except Exception as error:  # e.g. a missing compression filter
        raise InputError(
            f"cannot read dataset {opened.data.name!r} of {name!r} ({error_reason(error)}); "
            "the file may be damaged or need an HDF5 filter plugin"
        ) from error
    finally:
        close()
    return Decoded(data, opened.axes, opened.pixel_size)


def _compression(compression: str | None) -> dict[str, Any]:
    key = compression.lower() if isinstance(compression, str) else compression
    if key in (None, "none"):
        return {}
    if key in ("zlib", "gzip", "deflate"):
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    if key == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise InputError(
        f"compression {compression!r} is not available for HDF5; use 'zlib' (gzip), 'lzf' or None"
    )


def write_hdf5(
    path: Path,
    inner: str | None,
    data: np.ndarray,
    axes: str,
    compression: str | None,
    pixel_size: dict[str, float] | None,
) -> None:
    """Create or replace one dataset of an HDF5 file, keeping its other datasets.

    The file is changed on a copy that then replaces it, so an interrupted write never
    damages the original (this costs one copy of an existing file). The dataset gets the
    attributes ``axes`` and, with a pixel size, ``element_size_um`` (one value per spatial
    axis in data order, NaN where unknown).
    """
    options = _compression(compression)
    dataset_name = inner or DEFAULT_DATASET
    if path.exists():
        try:
            is_hdf5 = h5py.is_hdf5(path)
        except OSError:
            is_hdf5 = False
        if not is_hdf5:
            raise InputError(
                f"'{path}' exists but is not an HDF5 file; delete it or choose another name"
            )
    try:
        with atomic_output(path, copy_existing=True) as temporary:
            with h5py.File(temporary, "a") as handle:
                existing = handle.get(dataset_name)
                if isinstance(existing, h5py.Group):
                    raise InputError(
                        f"'{path}:{dataset_name}' is an HDF5 group; choose a dataset name "
                        "that is not a group"
                    )
                if existing is not None:
                    del handle[dataset_name]
                dataset = handle.create_dataset(dataset_name, data=data, **options)
                dataset.attrs["axes"] = axes
                if pixel_size:
                    spatial = [letter for letter in axes if letter in SPATIAL_AXES]
                    dataset.attrs["element_size_um"] = np.array(
                        [pixel_size.get(letter, np.nan) for letter in spatial], dtype=np.float64
                    )
    except InputError:
        raise
    except Exception as error:  # report any writer failure in one line
        raise InputError(
            f"cannot write dataset {dataset_name!r} to '{path}' ({error_reason(error)}); "
            "check the dataset name and that the folder is writable"
        ) from error
