"""Per-object features files (``.hdf``) in the data model of CellCognition Explorer.

CellCognition Explorer and its CellAnnotationTool (Sommer et al. 2017) read one HDF5 file
per experiment with one row per cell object: its label, centre and bounding box, a table
of features, a small image crop (the *gallery*) and an outline. deepscope writes the same
layout, with one more table for the position, treatment and shape of every object::

    /                               attrs: training_data = ["data"], generator = "deepscope"
    /data/bbox                      rows (label, x, y, top, bottom, left, right)
    /data/features                  rows, one float32 field per feature name
    /data/gallery                   (S, S, C, N) uint16: crops, objects last
    /data/contours/<channel_name>   (N, 2) variable-length uint16: (x's, y's) per object
                                    group attr: channels = channel names
    /data/objects                   rows (position, plate, well, site, gene, group,
                                    is_control, angle, eccentricity, area)  [deepscope]

In memory an :class:`ObjectFeatures` holds the same data with crops channel-first,
``(N, C, S, S)``. :func:`write_feature_hdf` and :func:`read_feature_hdf` convert between
the two; :func:`write_feature_csv` writes everything but the crops and outlines as a table.
See ``docs/explore.md`` for the layout field by field.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from deepscope.errors import InputError
from deepscope.io.atomic import atomic_output
from deepscope.io.metadata import error_reason

__all__ = [
    "CSV_COLUMNS",
    "DATA_GROUP",
    "FORMAT_VERSION",
    "ObjectFeatures",
    "read_feature_hdf",
    "write_feature_csv",
    "write_feature_hdf",
]

DATA_GROUP = "data"
"""The group that holds the objects; the file attribute ``training_data`` names it."""

FORMAT_VERSION = 1
"""Version of deepscope's additions to the layout (file attribute ``format_version``)."""

CSV_COLUMNS = (
    "position",
    "plate",
    "well",
    "site",
    "gene",
    "group",
    "is_control",
    "label",
    "x",
    "y",
    "top",
    "bottom",
    "left",
    "right",
    "angle",
    "eccentricity",
    "area",
)
"""Columns of :func:`write_feature_csv` before the features, in order."""

_BBOX_ROW = np.dtype(
    [
        ("label", np.uint32),
        ("x", np.uint16),
        ("y", np.uint16),
        ("top", np.uint16),
        ("bottom", np.uint16),
        ("left", np.uint16),
        ("right", np.uint16),
    ]
)
_TEXT_FIELDS = ("position", "plate", "well", "site", "gene", "group")
_SHAPE_FIELDS = ("angle", "eccentricity", "area")
_UINT16_MAX = int(np.iinfo(np.uint16).max)
_UINT32_MAX = int(np.iinfo(np.uint32).max)
_WHAT_TO_GIVE = "give a features file (.hdf) written by 'deepscope encode'"


def _texts(values: Sequence[Any] | None, name: str, n: int, per: str = "object") -> list[str]:
    texts = [str(value) for value in (values if values is not None else [])]
    if len(texts) != n:
        raise InputError(
            f"ObjectFeatures: {name} has {len(texts)} entries but there are {n} {per}s; "
            f"give one per {per}"
        )
    return texts


def _column(value: Any, name: str, n: int, dtype: Any) -> np.ndarray:
    array = np.asarray(value if value is not None else [], dtype=dtype)
    if array.shape != (n,):
        raise InputError(
            f"ObjectFeatures: {name} has shape {array.shape} but there are {n} objects; "
            f"give an array of shape ({n},)"
        )
    return array


def _rows(value: Any, name: str, n: int, width: int, what: str) -> np.ndarray:
    try:
        array = np.asarray(value if value is not None else [], dtype=np.int64)
    except (TypeError, ValueError):
        raise InputError(
            f"ObjectFeatures: {name} is not a table of whole numbers; give ({n}, {width}) rows "
            f"{what}"
        ) from None
    if array.size == 0:
        array = array.reshape(0, width)
    if array.shape != (n, width):
        raise InputError(
            f"ObjectFeatures: {name} has shape {array.shape}; give ({n}, {width}) rows {what}"
        )
    return array


def _outline(value: Any, index: int) -> np.ndarray:
    try:
        array = np.asarray(value)
        if array.dtype.kind not in "iu":  # integer points stay integers
            array = array.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"ObjectFeatures: contour {index} is not numeric; give (K, 2) points (x, y)"
        ) from None
    if array.size == 0:
        array = array.reshape(0, 2)
    if array.ndim != 2 or array.shape[1] != 2:
        raise InputError(
            f"ObjectFeatures: contour {index} has shape {array.shape}; give (K, 2) points (x, y)"
        )
    return array


@dataclass(eq=False, kw_only=True)
class ObjectFeatures:
    """Features, crops and annotations of N cell objects (one row per object).

    Parameters
    ----------
    features : ndarray, shape (N, F)
        One row of features per object (stored as float32).
    feature_names : list of str
        F distinct names, e.g. ``ae_0`` ... ``ae_31``.
    labels : ndarray, shape (N,)
        The object's value in its label image.
    centers : ndarray, shape (N, 2)
        Object centres ``(x, y)`` in image pixels.
    bboxes : ndarray, shape (N, 4)
        Bounding boxes ``(top, bottom, left, right)``, half-open like slices:
        the object lies in ``image[top:bottom, left:right]``.
    gallery : ndarray, shape (N, C, S, S)
        One square crop per object, channels first. Written as uint16, so its values must
        lie in 0..65535 (the raw pixels of uint8 or uint16 images).
    contours : list of ndarray
        N outlines of shape ``(K, 2)``, points ``(x, y)`` in crop coordinates; an empty
        list when there are none.
    channel_names : list of str
        C names, one per gallery channel.
    positions, plates, wells, sites : list of str
        Where each object lies; ``positions`` reads ``"plate/well/site"``.
    genes, groups : list of str
        Treatment (gene, compound) and group (e.g. ``"control"``, ``"target"``) per object.
    is_control : ndarray of bool, shape (N,)
        True for objects of negative-control positions.
    angle, eccentricity, area : ndarray, shape (N,)
        Orientation (degrees), eccentricity and area (pixels) of each object.

    Raises
    ------
    InputError
        If the lengths or shapes do not agree (the message names the field).
    """

    features: np.ndarray
    feature_names: list[str]
    labels: np.ndarray
    centers: np.ndarray
    bboxes: np.ndarray
    gallery: np.ndarray
    contours: list[np.ndarray]
    channel_names: list[str]
    positions: list[str]
    plates: list[str]
    wells: list[str]
    sites: list[str]
    genes: list[str]
    groups: list[str]
    is_control: np.ndarray
    angle: np.ndarray
    eccentricity: np.ndarray
    area: np.ndarray

    def __post_init__(self) -> None:
        features = np.asarray(self.features, dtype=np.float32)
        if features.ndim != 2:
            raise InputError(
                f"ObjectFeatures: features has shape {features.shape}; give a 2D array "
                "(objects, features)"
            )
        self.features = features
        n, f = features.shape
        self.feature_names = _texts(self.feature_names, "feature_names", f, "feature column")
        if len(set(self.feature_names)) != f or "" in self.feature_names:
            raise InputError(
                "ObjectFeatures: feature_names must be distinct and non-empty; rename them"
            )
        self.labels = _column(self.labels, "labels", n, np.int64)
        self.centers = _rows(self.centers, "centers", n, 2, "(x, y)")
        self.bboxes = _rows(self.bboxes, "bboxes", n, 4, "(top, bottom, left, right)")
        gallery = np.asarray(self.gallery)
        if gallery.ndim != 4 or gallery.shape[0] != n or gallery.shape[2] != gallery.shape[3]:
            raise InputError(
                f"ObjectFeatures: gallery has shape {gallery.shape}; give square crops of "
                f"shape ({n}, channels, size, size)"
            )
        self.gallery = gallery
        self.channel_names = _texts(
            self.channel_names, "channel_names", gallery.shape[1], "channel"
        )
        if len(set(self.channel_names)) != gallery.shape[1] or any(
            name in ("", ".", "..") or "/" in name for name in self.channel_names
        ):
            raise InputError(
                "ObjectFeatures: channel_names must be distinct, non-empty and free of '/'; "
                "rename the channels"
            )
        contours = list(self.contours if self.contours is not None else [])
        if len(contours) not in (0, n):
            raise InputError(
                f"ObjectFeatures: contours has {len(contours)} outlines but there are {n} "
                "objects; give one per object or an empty list"
            )
        self.contours = [_outline(points, i) for i, points in enumerate(contours)]
        for name in ("positions", *(f"{field}s" for field in _TEXT_FIELDS[1:])):
            setattr(self, name, _texts(getattr(self, name), name, n))
        self.is_control = _column(self.is_control, "is_control", n, bool)
        for name in _SHAPE_FIELDS:
            setattr(self, name, _column(getattr(self, name), name, n, np.float32))

    @property
    def n_objects(self) -> int:
        """Number of objects N."""
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        """Number of features F."""
        return int(self.features.shape[1])


# ----------------------------------------------------------------------------- writing


def _check_range(values: np.ndarray, high: int, what: str) -> None:
    if values.size and (values.min() < 0 or values.max() > high):
        raise InputError(
            f"{what} range from {values.min()} to {values.max()}; the features file stores "
            f"them as integers from 0 to {high}"
        )


def _gallery_uint16(gallery: np.ndarray) -> np.ndarray:
    """The crops as uint16 (S, S, C, N), Explorer's order."""
    values = gallery
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise InputError("gallery crops hold NaN or infinite values; crop the raw pixels")
        if not np.array_equal(values, np.rint(values)):
            raise InputError(
                "gallery crops hold fractions (crops normalised to 0..1, say); give the raw "
                "pixel values, whole numbers in 0..65535"
            )
    if values.dtype.kind not in "uifb":
        raise InputError(f"gallery crops have dtype {gallery.dtype}; give numeric pixels")
    _check_range(values, _UINT16_MAX, "gallery pixel values")
    return np.ascontiguousarray(values.astype(np.uint16).transpose(2, 3, 1, 0))


def _bbox_table(table: ObjectFeatures) -> np.ndarray:
    _check_range(table.labels, _UINT32_MAX, "object labels")
    _check_range(table.centers, _UINT16_MAX, "object centres")
    _check_range(table.bboxes, _UINT16_MAX, "bounding boxes")
    rows = np.zeros(table.n_objects, _BBOX_ROW)
    rows["label"] = table.labels
    rows["x"], rows["y"] = table.centers[:, 0], table.centers[:, 1]
    for k, name in enumerate(("top", "bottom", "left", "right")):
        rows[name] = table.bboxes[:, k]
    return rows


def _feature_table(table: ObjectFeatures) -> np.ndarray:
    rows = np.zeros(table.n_objects, [(name, np.float32) for name in table.feature_names])
    for k, name in enumerate(table.feature_names):
        rows[name] = table.features[:, k]
    return rows


def _encoded(texts: list[str]) -> np.ndarray:
    data = [text.encode("utf-8") for text in texts]
    width = max([1, *(len(item) for item in data)])
    return np.array(data, dtype=f"S{width}")


def _object_table(table: ObjectFeatures) -> np.ndarray:
    columns: dict[str, np.ndarray] = {
        field: _encoded(getattr(table, field + "s")) for field in _TEXT_FIELDS
    }
    columns["is_control"] = table.is_control.astype(np.uint8)
    for name in _SHAPE_FIELDS:
        columns[name] = getattr(table, name)
    rows = np.zeros(table.n_objects, [(name, values.dtype) for name, values in columns.items()])
    for name, values in columns.items():
        rows[name] = values
    return rows


def _outline_rows(table: ObjectFeatures) -> np.ndarray:
    """An (N, 2) object array of uint16 coordinate arrays: row i = (x's, y's) of object i.

    Outlines are clipped to the crop (0..S), as the Explorer clips them on display.
    """
    size = table.gallery.shape[-1]
    rows = np.empty((table.n_objects, 2), dtype=object)
    empty = np.zeros(0, np.uint16)
    for i in range(table.n_objects):
        points = table.contours[i] if table.contours else None
        if points is None or len(points) == 0:
            rows[i, 0], rows[i, 1] = empty, empty
            continue
        if not np.isfinite(points).all():
            raise InputError(f"contour {i} holds NaN or infinite points; give finite (x, y)")
        clipped = np.clip(np.rint(points), 0, size).astype(np.uint16)
        rows[i, 0], rows[i, 1] = clipped[:, 0].copy(), clipped[:, 1].copy()
    return rows


def _write_layout(handle: h5py.File, table: ObjectFeatures, gallery: np.ndarray) -> None:
    from deepscope import __version__

    handle.attrs.create("training_data", [DATA_GROUP], dtype=h5py.string_dtype())
    handle.attrs["generator"] = "deepscope"
    handle.attrs["generator_version"] = __version__
    handle.attrs["format_version"] = FORMAT_VERSION
    data = handle.create_group(DATA_GROUP)
    compress = {"compression": "gzip", "compression_opts": 4} if table.n_objects else {}
    data.create_dataset("bbox", data=_bbox_table(table), **compress)
    data.create_dataset("features", data=_feature_table(table), **compress)
    chunks = {"chunks": (*gallery.shape[:3], 1)} if gallery.size else {}
    data.create_dataset("gallery", data=gallery, **chunks, **(compress if chunks else {}))
    contours = data.create_group("contours")
    contours.attrs.create("channels", table.channel_names, dtype=h5py.string_dtype())
    outlines = _outline_rows(table)
    for name in table.channel_names:  # one segmentation: the same outline in every channel
        dataset = contours.create_dataset(
            name, shape=(table.n_objects, 2), dtype=h5py.vlen_dtype(np.uint16)
        )
        if table.n_objects:
            dataset[...] = outlines
    data.create_dataset("objects", data=_object_table(table), **compress)


def write_feature_hdf(path: str | os.PathLike[str], table: ObjectFeatures) -> Path:
    """Write objects, features, crops and outlines to one features file.

    The file follows the data model of CellCognition Explorer (groups ``/data/bbox``,
    ``/data/features``, ``/data/gallery``, ``/data/contours``) and adds ``/data/objects``
    with positions, treatments and shape. It is written under a temporary name in the same
    folder and renamed when complete (missing folders are created).

    Parameters
    ----------
    path : str or Path
        The file to write, usually ending in ``.hdf``.
    table : ObjectFeatures
        The objects; needs at least one feature.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        If there is no feature, a value does not fit the file's integer types (labels
        0..2³²-1; centres, boxes and crop pixels 0..65535), or the file cannot be written.

    Examples
    --------
    >>> write_feature_hdf("features.hdf", table)  # doctest: +SKIP
    PosixPath('features.hdf')
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"'{path}' is a folder; give a file name such as features.hdf")
    if table.n_features == 0:
        raise InputError("no features to write: give at least one feature column")
    gallery = _gallery_uint16(table.gallery)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as temporary, h5py.File(temporary, "w") as handle:
            _write_layout(handle, table, gallery)
    except InputError:
        raise
    except Exception as error:  # report any writer failure in one line
        raise InputError(
            f"cannot write features file '{path}' ({error_reason(error)}); "
            "check that the folder is writable and has space"
        ) from error
    return path


def write_feature_csv(path: str | os.PathLike[str], table: ObjectFeatures) -> Path:
    """Write one CSV row per object: :data:`CSV_COLUMNS`, then the features.

    Floats are written with 6 significant digits, ``is_control`` as 0 or 1. The file is
    written atomically (missing folders are created).

    Raises
    ------
    InputError
        If a feature name is also the name of one of :data:`CSV_COLUMNS`.
    """
    from deepscope.measure.regions import write_table

    clash = sorted(set(table.feature_names) & set(CSV_COLUMNS))
    if clash:
        raise InputError(
            f"feature name(s) {', '.join(clash)} clash with the CSV's object columns; "
            "rename those features"
        )
    rows = []
    for i in range(table.n_objects):
        row: dict[str, Any] = {field: getattr(table, field + "s")[i] for field in _TEXT_FIELDS}
        row["is_control"] = int(table.is_control[i])
        row["label"] = int(table.labels[i])
        row["x"], row["y"] = (int(v) for v in table.centers[i])
        for k, side in enumerate(("top", "bottom", "left", "right")):
            row[side] = int(table.bboxes[i, k])
        for name in _SHAPE_FIELDS:
            row[name] = float(getattr(table, name)[i])
        row.update(zip(table.feature_names, (float(v) for v in table.features[i])))
        rows.append(row)
    return write_table(rows, path, columns=[*CSV_COLUMNS, *table.feature_names])


# ----------------------------------------------------------------------------- reading


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _data_group(handle: h5py.File, file: Path) -> h5py.Group:
    names = handle.attrs.get("training_data")
    if names is None:
        raise InputError(
            f"'{file}' is an HDF5 file but not a features file: it has no 'training_data' "
            f"attribute; {_WHAT_TO_GIVE}"
        )
    name = _text(np.atleast_1d(names)[0]) if np.size(names) else ""
    group = handle.get(name)
    missing = [
        part
        for part in ("bbox", "features", "gallery")
        if not isinstance(group, h5py.Group) or not isinstance(group.get(part), h5py.Dataset)
    ]
    if missing:
        raise InputError(
            f"features file '{file}' lacks /{name.strip('/')}/{missing[0]}; {_WHAT_TO_GIVE}"
        )
    return group


def _read_features(dataset: h5py.Dataset) -> tuple[np.ndarray, list[str]]:
    rows = dataset[()]
    names = list(rows.dtype.names or ())
    features = np.zeros((len(rows), len(names)), np.float32)
    for k, name in enumerate(names):
        features[:, k] = rows[name]
    return features, names


def _read_gallery(dataset: h5py.Dataset) -> np.ndarray:
    gallery = dataset[()]
    if gallery.ndim == 3:  # one channel, stored (S, S, N)
        gallery = gallery[:, :, None, :]
    return np.ascontiguousarray(gallery.transpose(3, 2, 0, 1))


def _read_contours(group: h5py.Group, n: int, channels: int) -> tuple[list, list[str]]:
    """Outlines of the first channel (deepscope writes the same one for every channel)."""
    contours = group.get("contours")
    default = [f"ch{k}" for k in range(channels)]
    if not isinstance(contours, h5py.Group):
        return [], default
    names = [_text(name) for name in np.atleast_1d(contours.attrs.get("channels", []))]
    if len(names) != channels:
        names = default
    dataset = contours.get(names[0]) if names else None
    if not isinstance(dataset, h5py.Dataset) or dataset.shape != (n, 2):
        return [], names
    rows = dataset[()]
    outlines = [
        np.stack([np.asarray(rows[i, 0]), np.asarray(rows[i, 1])], axis=1).astype(np.int64)
        for i in range(n)
    ]
    if all(len(points) == 0 for points in outlines):
        return [], names
    return outlines, names


def _read_objects(group: h5py.Group, n: int) -> dict[str, Any]:
    """deepscope's object table; blanks and NaN for files that lack it."""
    dataset = group.get("objects")
    rows = dataset[()] if isinstance(dataset, h5py.Dataset) and dataset.shape == (n,) else None
    fields = rows.dtype.names if rows is not None else ()
    columns: dict[str, Any] = {}
    for field in _TEXT_FIELDS:
        columns[field + "s"] = (
            [_text(value) for value in rows[field]] if field in fields else [""] * n
        )
    columns["is_control"] = (
        rows["is_control"].astype(bool) if "is_control" in fields else np.zeros(n, bool)
    )
    for name in _SHAPE_FIELDS:
        columns[name] = rows[name] if name in fields else np.full(n, np.nan, np.float32)
    return columns


def read_feature_hdf(path: str | os.PathLike[str]) -> ObjectFeatures:
    """Read a features file written by :func:`write_feature_hdf`.

    Crops come back channel-first, ``(N, C, S, S)`` uint16; outlines as ``(K, 2)`` integer
    points ``(x, y)`` of the first channel (an empty list when every outline is empty).
    Files of the same data model without deepscope's ``/data/objects`` table read with
    empty positions and treatments, no controls and NaN shapes.

    Raises
    ------
    InputError
        If the file does not exist, is not HDF5, or lacks the attribute ``training_data``
        or one of ``bbox``, ``features``, ``gallery``.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"features file '{file}' does not exist; check the path")
    try:
        handle = h5py.File(file, "r")
    except Exception as error:  # any failure means the file is unusable
        raise InputError(
            f"cannot open '{file}' as HDF5 ({error_reason(error)}); {_WHAT_TO_GIVE}"
        ) from error
    with handle:
        group = _data_group(handle, file)
        try:
            features, names = _read_features(group["features"])
            boxes = group["bbox"][()]
            gallery = _read_gallery(group["gallery"])
            n = len(features)
            contours, channels = _read_contours(group, n, gallery.shape[1])
            return ObjectFeatures(
                features=features,
                feature_names=names,
                labels=boxes["label"].astype(np.int64),
                centers=np.stack([boxes["x"], boxes["y"]], axis=1),
                bboxes=np.stack([boxes[side] for side in ("top", "bottom", "left", "right")], 1),
                gallery=gallery,
                contours=contours,
                channel_names=channels,
                **_read_objects(group, n),
            )
        except InputError as error:
            raise InputError(f"features file '{file}' is inconsistent: {error}") from None
        except Exception as error:  # a damaged or foreign file
            raise InputError(
                f"cannot read features file '{file}' ({error_reason(error)}); {_WHAT_TO_GIVE}"
            ) from error
