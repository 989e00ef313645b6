"""CellH5 files (the HDF5 layout of CellCognition, Sommer et al. 2017) and position mappings.

A CellH5 file holds, for every *position* (one field of view of one well of one plate),
the raw image, its label image (segmentation) and one row per segmented object with its
centre, bounding box and a matrix of features. Tables under ``/definition`` name the
channels, regions, object types and features once for the whole file::

    /sample/0/plate/<plate>/experiment/<well>/position/<site>/
        image/channel                       (c, t, z, y, x) uint8 or uint16
        image/region                        (r, t, z, y, x) integer labels
        object/<object_name>                rows (time_idx, obj_label_id)
        feature/<object_name>/center        rows (x, y)
        feature/<object_name>/bounding_box  rows (left, right, top, bottom)
        feature/<object_name>/object_features  (n_objects, n_features) float32
    /definition/image/channel               rows (channel_name, description, is_physical,
                                            voxel_size, color)
    /definition/image/region                rows (region_name, channel_idx)
    /definition/object                      rows (name, type, source1, source2)
    /definition/feature/<object_name>/object_features  rows (name)

:func:`write_cellh5` writes such a file, :func:`read_cellh5`, :func:`list_positions` and
:func:`read_position` read one (also files written by CellCognition). A *position mapping*
is a tab-separated table that tells which gene and which group (treatment or control)
every position belongs to: :func:`read_mapping`, :func:`write_mapping`.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from deepscope.errors import InputError
from deepscope.io.atomic import atomic_output
from deepscope.io.metadata import error_reason

__all__ = [
    "DEFAULT_OBJECT",
    "FILE_COLUMN",
    "MAPPING_COLUMNS",
    "MappingRow",
    "PositionData",
    "PositionKey",
    "list_positions",
    "read_cellh5",
    "read_mapping",
    "read_position",
    "write_cellh5",
    "write_mapping",
]

#: Object name CellCognition gives the objects of the primary (nucleus) segmentation.
DEFAULT_OBJECT = "primary__primary"

#: Columns of a position mapping file, in the order :func:`write_mapping` writes them.
MAPPING_COLUMNS = ("Plate", "Well", "Site", "Gene Symbol", "Group")
#: optional mapping column: the image file of each position
FILE_COLUMN = "File"

_PLATES = "/sample/0/plate"
_DEFINITION = "/definition"

# Row types of the CellH5 tables (field names as in the CellH5 specification).
_OBJECT_ROW = np.dtype([("time_idx", np.int32), ("obj_label_id", np.int32)])
_CENTER_ROW = np.dtype([("x", np.int32), ("y", np.int32)])
_BBOX_ROW = np.dtype(
    [("left", np.int32), ("right", np.int32), ("top", np.int32), ("bottom", np.int32)]
)
_CHANNEL_ROW = np.dtype(
    [
        ("channel_name", "S50"),
        ("description", "S100"),
        ("is_physical", np.bool_),
        ("voxel_size", np.float64, (3,)),
        ("color", "S7"),
    ]
)
_REGION_ROW = np.dtype([("region_name", "S50"), ("channel_idx", np.int32)])
_OBJECT_DEFINITION_ROW = np.dtype(
    [("name", "S512"), ("type", "S512"), ("source1", "S512"), ("source2", "S512")]
)
_FEATURE_NAME_ROW = np.dtype([("name", "S512")])

# Display colours of the channels: grey for a single channel, else these in turn.
_COLORS = ("#FF0000", "#00FF00", "#0000FF", "#FF00FF", "#00FFFF", "#FFFF00")
_GREY = "#FFFFFF"

_MAX_LISTED = 10


@dataclass(frozen=True, order=True)
class PositionKey:
    """Where a position lies: plate, well (CellH5 calls it *experiment*) and site.

    Examples
    --------
    >>> PositionKey("plate0", "A01", "1").path
    '/sample/0/plate/plate0/experiment/A01/position/1'
    """

    plate: str
    well: str
    site: str

    def __post_init__(self) -> None:
        for name in ("plate", "well", "site"):
            object.__setattr__(self, name, str(getattr(self, name)))

    @property
    def path(self) -> str:
        """The HDF5 group of the position."""
        return f"{_PLATES}/{self.plate}/experiment/{self.well}/position/{self.site}"

    def __str__(self) -> str:
        return f"{self.plate}/{self.well}/{self.site}"


def _int_array(value: Any, columns: int | None) -> np.ndarray:
    array = np.asarray(value if value is not None else [], dtype=np.int64)
    if columns is not None and array.size == 0:
        array = array.reshape(0, columns)
    return array


@dataclass(eq=False)
class PositionData:
    """Everything CellH5 stores for one position.

    Parameters
    ----------
    key : PositionKey
        Plate, well and site.
    image : ndarray or None
        Raw image with axes ``(c, t, z, y, x)``, uint8 or uint16; ``None`` when the file
        stores no image.
    labels : ndarray or None
        Label image with axes ``(r, t, z, y, x)`` (``r``: region channel), integers,
        0 = background; ``None`` when absent.
    label_ids : ndarray, shape (n,)
        Label value of each object in ``labels``.
    time_idx : ndarray, shape (n,), optional
        Frame (``t`` index) of each object; default 0 for all.
    centers : ndarray, shape (n, 2)
        Centre of each object in pixels as **(x, y)** (column, row), the field order of
        CellH5; 0 rows when the file stores no centres.
    bboxes : ndarray, shape (n, 4)
        Bounding box of each object as **(left, right, top, bottom)** in pixels, half-open
        like Python slices: the object lies in ``image[..., top:bottom, left:right]``;
        0 rows when the file stores no bounding boxes.
    features : ndarray, shape (n, f)
        One row of float32 features per object; ``(n, 0)`` when there are none.
    feature_names : list of str
        Name of each feature column.

    Raises
    ------
    InputError
        If arrays have the wrong number of dimensions or disagree on the number of objects.

    Examples
    --------
    >>> position = PositionData(
    ...     PositionKey("plate0", "A01", "0"),
    ...     image=np.zeros((1, 1, 1, 32, 32), np.uint8),
    ...     label_ids=[1, 2],
    ...     centers=[(5, 6), (20, 21)],
    ... )
    >>> position.n_objects, position.time_idx.tolist(), position.features.shape
    (2, [0, 0], (2, 0))
    """

    key: PositionKey
    image: np.ndarray | None = None
    labels: np.ndarray | None = None
    label_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    time_idx: np.ndarray | None = None
    centers: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    bboxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    features: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"position {self.key}"
        for name, letters in (("image", "c, t, z, y, x"), ("labels", "r, t, z, y, x")):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value)
            if value.ndim != 5:
                raise InputError(
                    f"{where}: {name} has shape {value.shape} but needs 5 axes ({letters}); "
                    "add axes of size 1 with numpy.reshape"
                )
            if name == "labels" and value.dtype.kind not in "iu":
                raise InputError(
                    f"{where}: labels must be integers, got {value.dtype}; "
                    "convert them with .astype(numpy.int32)"
                )
            setattr(self, name, value)
        if (
            self.image is not None
            and self.labels is not None
            and self.image.shape[1:] != self.labels.shape[1:]
        ):
            raise InputError(
                f"{where}: labels (t, z, y, x) = {self.labels.shape[1:]} differ from image "
                f"{self.image.shape[1:]}; give the labels made from this image"
            )
        self.label_ids = _int_array(self.label_ids, None).reshape(-1)
        n = len(self.label_ids)
        self.time_idx = (
            np.zeros(n, np.int64) if self.time_idx is None else _int_array(self.time_idx, None)
        )
        self.centers = _int_array(self.centers, 2)
        self.bboxes = _int_array(self.bboxes, 4)
        self.feature_names = [str(name) for name in self.feature_names]
        if self.features is None:
            self.features = np.zeros((n, 0), np.float32)
        self.features = np.asarray(self.features, dtype=np.float32)
        if self.features.size == 0 and self.features.ndim != 2:
            self.features = self.features.reshape(0, len(self.feature_names))
        checks = (
            ("time_idx", self.time_idx, 1, (n,)),
            ("centers", self.centers, 2, (n, 0)),
            ("bboxes", self.bboxes, 2, (n, 0)),
            ("features", self.features, 2, (n,)),
        )
        for name, array, ndim, rows in checks:
            if array.ndim != ndim or array.shape[0] not in rows:
                expected = " or ".join(str(r) for r in rows)
                raise InputError(
                    f"{where}: {name} has shape {array.shape} but there are {n} objects "
                    f"(label_ids); give {expected} rows"
                )
        for name, array, width in (("centers", self.centers, 2), ("bboxes", self.bboxes, 4)):
            if array.shape[1] != width:
                raise InputError(
                    f"{where}: {name} needs {width} columns per object, got shape {array.shape}"
                )
        if self.features.shape[1] != len(self.feature_names) and n:
            raise InputError(
                f"{where}: features have {self.features.shape[1]} columns but there are "
                f"{len(self.feature_names)} feature_names; give one name per column"
            )

    @property
    def n_objects(self) -> int:
        """Number of objects."""
        return len(self.label_ids)


# ----------------------------------------------------------------------------- writing


def _check_name(value: str, what: str) -> None:
    if not value or value in (".", "..") or "/" in value:
        raise InputError(
            f"{what} {value!r} cannot be an HDF5 group name; use a non-empty name without '/'"
        )


def _encode(text: str, size: int, what: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) > size:
        raise InputError(f"{what} {text!r} is longer than {size} bytes; choose a shorter name")
    return data


def _compressed(array: np.ndarray) -> dict[str, Any]:
    """Compression options for a dataset; none for empty ones (they cannot be chunked)."""
    return {"compression": "gzip", "compression_opts": 4} if array.size else {}


def _table(rows: Sequence[tuple], dtype: np.dtype) -> np.ndarray:
    return np.array(list(rows), dtype=dtype)


def check_position_keys(keys: Sequence[PositionKey]) -> None:
    """Refuse a position given twice or a plate, well or site that cannot name an HDF5
    group, before any image is processed."""
    seen: set[PositionKey] = set()
    for key in keys:
        if key in seen:
            raise InputError(
                f"position {key} is given twice; give every position a different plate/well/site"
            )
        seen.add(key)
        _check_name(key.plate, "plate")
        _check_name(key.well, "well")
        _check_name(key.site, "site")


def _check_positions(
    positions: Sequence[PositionData], channel_names: Sequence[str] | None
) -> tuple[list[str], list[str], int]:
    """Check what must agree across positions; return channel names, feature names, r."""
    if not positions:
        raise InputError("no positions to write; give at least one PositionData")
    for position in positions:
        if not isinstance(position, PositionData):
            raise InputError(
                f"positions must be PositionData records, got {type(position).__name__}"
            )
    check_position_keys([position.key for position in positions])
    for position in positions:
        image = position.image
        if image is not None and image.dtype not in (np.uint8, np.uint16):
            raise InputError(
                f"position {position.key}: CellH5 images are uint8 or uint16, got {image.dtype}; "
                "convert the image first"
            )
    channels = {p.image.shape[0] for p in positions if p.image is not None}
    if len(channels) > 1:
        raise InputError(
            f"the images have different numbers of channels {sorted(channels)}; CellH5 "
            "names the channels once per file, so give images with the same channels"
        )
    n_channels = channels.pop() if channels else len(channel_names or ())
    if channel_names is None:
        names = [f"channel{i}" for i in range(n_channels)]
    else:
        names = [str(name) for name in channel_names]
        if len(names) != n_channels:
            raise InputError(
                f"{len(names)} channel_names given for images of {n_channels} channel(s); "
                "give one name per channel"
            )
    regions = {p.labels.shape[0] for p in positions if p.labels is not None}
    if regions - {1}:
        raise InputError(
            f"labels have {max(regions)} region channels; write_cellh5 writes one region "
            "per object type, so give labels of shape (1, t, z, y, x)"
        )
    # Positions without objects may lack feature names; they get empty feature matrices.
    feature_sets = {tuple(p.feature_names) for p in positions if p.n_objects}
    if not feature_sets:
        feature_sets = {tuple(p.feature_names) for p in positions if p.feature_names}
    if len(feature_sets) > 1:
        raise InputError(
            "the positions have different feature_names; CellH5 names the features once "
            "per file, so measure every position the same way"
        )
    features = list(feature_sets.pop()) if feature_sets else []
    return names, features, len(regions)


def _write_definitions(
    handle: h5py.File,
    channel_names: list[str],
    feature_names: list[str],
    object_name: str,
    has_regions: bool,
) -> None:
    colors = [_GREY] if len(channel_names) == 1 else _COLORS
    channel_rows = [
        (_encode(name, 50, "channel name"), b"", True, (1.0, 1.0, 1.0), colors[i % len(colors)])
        for i, name in enumerate(channel_names)
    ]
    handle.create_dataset(f"{_DEFINITION}/image/channel", data=_table(channel_rows, _CHANNEL_ROW))
    region_rows = (
        [(_encode(f"region___{object_name}", 50, "object name"), 0)] if has_regions else []
    )
    handle.create_dataset(f"{_DEFINITION}/image/region", data=_table(region_rows, _REGION_ROW))
    handle.create_dataset(
        f"{_DEFINITION}/object",
        data=_table([(object_name.encode("utf-8"), b"region", b"", b"")], _OBJECT_DEFINITION_ROW),
    )
    handle.create_dataset(
        f"{_DEFINITION}/feature/{object_name}/object_features",
        data=_table(
            [(_encode(name, 512, "feature name"),) for name in feature_names], _FEATURE_NAME_ROW
        ),
    )


def _write_position(
    handle: h5py.File, position: PositionData, object_name: str, n_features: int
) -> None:
    group = handle.create_group(position.key.path)
    images = group.create_group("image")
    if position.image is not None:
        images.create_dataset("channel", data=position.image, **_compressed(position.image))
    if position.labels is not None:
        images.create_dataset("region", data=position.labels, **_compressed(position.labels))
    n = position.n_objects
    objects = np.zeros(n, _OBJECT_ROW)
    objects["time_idx"] = position.time_idx
    objects["obj_label_id"] = position.label_ids
    group.create_group("object").create_dataset(object_name, data=objects)
    features = group.create_group(f"feature/{object_name}")
    if len(position.centers):
        centers = np.zeros(n, _CENTER_ROW)
        centers["x"], centers["y"] = position.centers.T
        features.create_dataset("center", data=centers)
    if len(position.bboxes):
        boxes = np.zeros(n, _BBOX_ROW)
        for i, name in enumerate(("left", "right", "top", "bottom")):
            boxes[name] = position.bboxes[:, i]
        features.create_dataset("bounding_box", data=boxes)
    matrix = position.features if n else np.zeros((0, n_features), np.float32)
    features.create_dataset("object_features", data=matrix, **_compressed(matrix))


def write_cellh5(
    path: str | os.PathLike[str],
    positions: Sequence[PositionData],
    channel_names: Sequence[str] | None = None,
    object_name: str = DEFAULT_OBJECT,
) -> Path:
    """Write positions to a new CellH5 file (an existing file is replaced).

    The file is written under a temporary name in the same folder and renamed when
    complete, so an error never leaves a half-written file behind.

    Parameters
    ----------
    path : str or Path
        The file to write, by convention ``*.ch5``.
    positions : sequence of PositionData
        The positions; their keys must differ. All images need the same number of
        channels and all positions with objects the same ``feature_names``.
    channel_names : sequence of str, optional
        One name per image channel; default ``channel0``, ``channel1`` ...
    object_name : str
        Name of the object type, by CellCognition's convention ``primary__primary``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        If the positions do not fit together or into CellH5, or the file cannot be written.
    """
    path = Path(path)
    _check_name(object_name, "object name")
    names, feature_names, n_regions = _check_positions(positions, channel_names)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as temporary, h5py.File(temporary, "w") as handle:
            _write_definitions(handle, names, feature_names, object_name, n_regions > 0)
            for position in positions:
                _write_position(handle, position, object_name, len(feature_names))
    except InputError:
        raise
    except Exception as error:  # report any writer failure in one line
        raise InputError(
            f"cannot write CellH5 file '{path}' ({error_reason(error)}); "
            "check that the folder is writable and has space"
        ) from error
    return path


# ----------------------------------------------------------------------------- reading


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _text(value.item())
    return str(value)


def _natural(text: str) -> list[Any]:
    """Sort key that puts ``'2'`` before ``'10'``."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)
    ]


def _open(path: str | os.PathLike[str]) -> tuple[h5py.File, Path]:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"CellH5 file '{file}' does not exist; check the path")
    try:
        handle = h5py.File(file, "r")
    except Exception as error:  # any failure means the file is unusable
        raise InputError(
            f"cannot open '{file}' as HDF5 ({error_reason(error)}); "
            "give a CellH5 (.ch5) file written by CellCognition or deepscope"
        ) from error
    if not isinstance(handle.get(_PLATES), h5py.Group):
        handle.close()
        raise InputError(
            f"'{file}' is an HDF5 file but not CellH5: it has no {_PLATES} group; "
            "give a CellH5 (.ch5) file written by CellCognition or deepscope"
        )
    return handle, file


def _subgroups(group: Any, name: str) -> list[str]:
    child = group.get(name) if isinstance(group, h5py.Group) else None
    if not isinstance(child, h5py.Group):
        return []
    return sorted((key for key in child if isinstance(child.get(key), h5py.Group)), key=_natural)


def _keys(handle: h5py.File) -> list[PositionKey]:
    keys = []
    plates = handle[_PLATES]
    for plate in sorted(plates, key=_natural):
        wells = _subgroups(plates[plate], "experiment")
        for well in wells:
            for site in _subgroups(plates[plate]["experiment"][well], "position"):
                keys.append(PositionKey(plate, well, site))
    return keys


def list_positions(path: str | os.PathLike[str]) -> list[PositionKey]:
    """The positions of a CellH5 file, sorted by plate, well and site.

    Raises
    ------
    InputError
        If the file is missing, not HDF5, or has no ``/sample/0/plate`` group.
    """
    handle, _ = _open(path)
    with handle:
        return _keys(handle)


def _dataset(group: h5py.Group, name: str) -> np.ndarray | None:
    node = group.get(name)
    return np.asarray(node[()]) if isinstance(node, h5py.Dataset) else None


def _default_object(handle: h5py.File) -> str:
    """The first region object of ``/definition/object``, else ``primary__primary``."""
    table = _dataset(handle, f"{_DEFINITION}/object")
    if table is not None and table.dtype.names and "name" in table.dtype.names:
        for row in table.reshape(-1):
            kind = _text(row["type"]) if "type" in table.dtype.names else "region"
            if kind == "region":
                return _text(row["name"])
    return DEFAULT_OBJECT


def _feature_names(handle: h5py.File, object_name: str, count: int) -> list[str]:
    table = _dataset(handle, f"{_DEFINITION}/feature/{object_name}/object_features")
    names: list[str] = []
    if table is not None and table.size:
        column = table["name"] if table.dtype.names and "name" in table.dtype.names else table
        names = [_text(value) for value in column.reshape(-1)]
    if len(names) != count:
        names = [f"feature{i}" for i in range(count)]
    return names


def _columns(table: np.ndarray | None, fields: Sequence[str], n: int) -> np.ndarray:
    """Fields of a structured table as integer columns, or 0 rows when it is absent."""
    if (
        table is None
        or not table.dtype.names
        or any(name not in table.dtype.names for name in fields)
        or len(table) != n
        or n == 0
    ):
        return np.zeros((0, len(fields)), np.int64)
    return np.stack([np.asarray(table[name], dtype=np.int64) for name in fields], axis=1)


def _read(handle: h5py.File, key: PositionKey, object_name: str) -> PositionData:
    group = handle[key.path]
    image = _dataset(group, "image/channel")
    labels = _dataset(group, "image/region")
    if labels is not None and labels.dtype.kind not in "iu":
        labels = None
    if image is not None and image.ndim != 5:
        image = None
    if labels is not None and (
        labels.ndim != 5 or (image is not None and labels.shape[1:] != image.shape[1:])
    ):
        labels = None
    objects = _dataset(group, f"object/{object_name}")
    if objects is not None and objects.dtype.names and "obj_label_id" in objects.dtype.names:
        label_ids = np.asarray(objects["obj_label_id"], dtype=np.int64).reshape(-1)
        if "time_idx" in objects.dtype.names:
            time_idx = np.asarray(objects["time_idx"], dtype=np.int64).reshape(-1)
        else:
            time_idx = np.zeros(len(label_ids), np.int64)
    else:
        label_ids = np.zeros(0, np.int64)
        time_idx = np.zeros(0, np.int64)
    n = len(label_ids)
    feature_group = f"feature/{object_name}"
    centers = _columns(_dataset(group, f"{feature_group}/center"), ("x", "y"), n)
    bboxes = _columns(
        _dataset(group, f"{feature_group}/bounding_box"), ("left", "right", "top", "bottom"), n
    )
    matrix = _dataset(group, f"{feature_group}/object_features")
    if matrix is None or matrix.ndim != 2 or matrix.shape[0] != n or matrix.dtype.names:
        matrix = np.zeros((n, 0), np.float32)
    names = _feature_names(handle, object_name, matrix.shape[1])
    return PositionData(
        key=key,
        image=image,
        labels=labels,
        label_ids=label_ids,
        time_idx=time_idx,
        centers=centers,
        bboxes=bboxes,
        features=matrix.astype(np.float32),
        feature_names=names,
    )


def _listing(keys: Sequence[PositionKey]) -> str:
    shown = ", ".join(str(key) for key in keys[:_MAX_LISTED])
    if len(keys) > _MAX_LISTED:
        shown += f", ... ({len(keys)} in all)"
    return shown


def read_position(
    path: str | os.PathLike[str], key: PositionKey, object_name: str | None = None
) -> PositionData:
    """Read one position of a CellH5 file.

    Parameters
    ----------
    path : str or Path
        The CellH5 file.
    key : PositionKey
        The position (see :func:`list_positions`).
    object_name : str, optional
        Object type whose objects and features to read; default the first region object
        of ``/definition/object`` (``primary__primary`` in CellCognition files).

    Returns
    -------
    PositionData
        Parts the file does not store come back empty: ``image``/``labels`` ``None``,
        0 objects, 0-row centres or bounding boxes, a ``(n, 0)`` feature matrix.

    Raises
    ------
    InputError
        If the file is not CellH5 or has no such position.
    """
    handle, file = _open(path)
    with handle:
        keys = _keys(handle)
        if key not in keys:
            choices = f"choose one of: {_listing(keys)}" if keys else "the file has no positions"
            raise InputError(f"CellH5 file '{file}' has no position {key}; {choices}")
        return _read(handle, key, object_name or _default_object(handle))


def read_cellh5(path: str | os.PathLike[str], object_name: str | None = None) -> list[PositionData]:
    """Read every position of a CellH5 file, sorted by plate, well and site.

    See :func:`read_position` for ``object_name`` and what missing parts give.

    Raises
    ------
    InputError
        If the file is missing, not HDF5, or has no ``/sample/0/plate`` group.

    Examples
    --------
    >>> for position in read_cellh5("screen.ch5"):  # doctest: +SKIP
    ...     print(position.key, position.n_objects, position.feature_names[:3])
    """
    handle, _ = _open(path)
    with handle:
        name = object_name or _default_object(handle)
        return [_read(handle, key, name) for key in _keys(handle)]


# ----------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class MappingRow:
    """One row of a position mapping file.

    ``is_control`` is true when ``group`` equals the control token given to
    :func:`read_mapping` (``'neg'`` by default), ignoring case.
    """

    plate: str
    well: str
    site: str
    gene: str = ""
    group: str = ""
    is_control: bool = False
    file: str = ""  # the image of this position (optional column File)

    @property
    def key(self) -> PositionKey:
        """The position this row describes."""
        return PositionKey(self.plate, self.well, self.site)


def _normal(column: str) -> str:
    return " ".join(column.split()).lower()


def read_mapping(path: str | os.PathLike[str], control_token: str = "neg") -> list[MappingRow]:
    """Read a position mapping file: a tab-separated table with a header row.

    The header names the columns ``Plate``, ``Well``, ``Site``, ``Gene Symbol`` and
    ``Group`` (any order, case and extra spaces ignored; other columns are ignored), and
    optionally ``File``, the image of each position (its file name or stem). Blank lines
    are skipped.

    Parameters
    ----------
    path : str or Path
        The table (``.tsv`` or ``.txt``).
    control_token : str
        Value of ``Group`` that marks control positions, compared ignoring case.

    Returns
    -------
    list of MappingRow
        The rows in file order.

    Raises
    ------
    InputError
        If the file is missing, lacks a column, has no rows, or a row lacks its plate,
        well or site.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"mapping file '{file}' does not exist; check the path")
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            lines = [
                row for row in csv.reader(handle, delimiter="\t") if any(c.strip() for c in row)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(
            f"cannot read mapping file '{file}' ({error_reason(error)}); "
            "give a tab-separated UTF-8 text file"
        ) from error
    expected = "a tab-separated header " + ", ".join(MAPPING_COLUMNS)
    if not lines:
        raise InputError(
            f"mapping file '{file}' is empty; write {expected} and one row per position"
        )
    header = [_normal(column) for column in lines[0]]
    index = {}
    for column in MAPPING_COLUMNS:
        if _normal(column) not in header:
            found = ", ".join(c.strip() for c in lines[0] if c.strip()) or "none"
            raise InputError(
                f"mapping file '{file}' lacks the column '{column}' (found: {found}); "
                f"give {expected}"
            )
        index[column] = header.index(_normal(column))
    if _normal(FILE_COLUMN) in header:
        index[FILE_COLUMN] = header.index(_normal(FILE_COLUMN))
    if len(lines) == 1:
        raise InputError(
            f"mapping file '{file}' has a header but no rows; add one row per position"
        )
    token = control_token.strip().lower()
    rows = []
    first_row: dict[tuple[str, str, str], int] = {}
    for number, line in enumerate(lines[1:], start=2):
        values = {c: line[i].strip() if i < len(line) else "" for c, i in index.items()}
        missing = [c for c in ("Plate", "Well", "Site", FILE_COLUMN) if values.get(c) == ""]
        if missing:
            raise InputError(
                f"mapping file '{file}', row {number}: no {', '.join(missing)}; "
                "every row needs a plate, well and site (and a file, with a File column)"
            )
        position = (values["Plate"], values["Well"], values["Site"])
        if position in first_row:  # one of the two would silently win
            raise InputError(
                f"mapping file '{file}', row {number}: plate {position[0]}, well {position[1]}, "
                f"site {position[2]} is given twice (row {first_row[position]} too); give each "
                "position one row"
            )
        first_row[position] = number
        group = values["Group"]
        rows.append(
            MappingRow(
                plate=values["Plate"],
                well=values["Well"],
                site=values["Site"],
                gene=values["Gene Symbol"],
                group=group,
                is_control=group.lower() == token,
                file=values.get(FILE_COLUMN, ""),
            )
        )
    return rows


def write_mapping(path: str | os.PathLike[str], rows: Sequence[MappingRow]) -> Path:
    """Write rows as a tab-separated position mapping file (atomically); returns ``path``.

    The columns are those of :data:`MAPPING_COLUMNS`, and ``File`` when a row names its
    image; ``is_control`` is not written (it follows from ``Group`` when the file is read).
    """
    file = Path(path)
    with_files = any(row.file for row in rows)
    for row in rows:
        for value in (row.plate, row.well, row.site, row.gene, row.group, row.file):
            if "\t" in value or "\n" in value or "\r" in value:
                raise InputError(
                    f"mapping value {value!r} contains a tab or line break; remove it first"
                )
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(file) as temporary, open(temporary, "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow([*MAPPING_COLUMNS, *([FILE_COLUMN] if with_files else [])])
            for row in rows:
                values = [row.plate, row.well, row.site, row.gene, row.group]
                writer.writerow([*values, *([row.file] if with_files else [])])
    except OSError as error:
        raise InputError(
            f"cannot write mapping file '{file}' ({error_reason(error)}); "
            "check that the folder is writable"
        ) from error
    return file
