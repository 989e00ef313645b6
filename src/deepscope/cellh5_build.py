"""Build a CellH5 file from images: segment (or take given labels), measure, write.

Every image becomes one CellH5 position with its image, label image and one row per
object: centre, bounding box and the numeric columns of
:func:`deepscope.measure.measure_objects` as features. See ``docs/cellh5.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepscope.errors import AxesError, InputError
from deepscope.io import image_stem, list_images, read_image
from deepscope.io.atomic import check_not_an_input, check_output_file
from deepscope.io.axes import in_spatial_order
from deepscope.io.cellh5 import (
    DEFAULT_OBJECT,
    FILE_COLUMN,
    MappingRow,
    PositionData,
    PositionKey,
    check_position_keys,
    read_mapping,
    write_cellh5,
)
from deepscope.measure import measure_objects
from deepscope.progress import Progress, ProgressCallback, report

if TYPE_CHECKING:
    from deepscope.zoo import Model

__all__ = ["build_cellh5", "measure_position"]

PathLike = str | os.PathLike[str]
_DIGITS = re.compile(r"(\d+)")


def _storable(data: np.ndarray) -> np.ndarray:
    """The image as uint8/uint16, as CellH5 stores it.

    uint8 and uint16 stay as they are, other integers within 0...65535 become uint16;
    anything else (floats, negative or larger values) is rescaled from its minimum and
    maximum to 0...65535.
    """
    if data.dtype in (np.uint8, np.uint16):
        return data
    if data.dtype.kind == "b":
        return data.astype(np.uint8)
    if data.dtype.kind in "iu" and data.min() >= 0 and data.max() <= np.iinfo(np.uint16).max:
        return data.astype(np.uint16)
    values = np.nan_to_num(data.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(data.shape, np.uint16)
    scaled = (values - low) / (high - low) * np.iinfo(np.uint16).max
    return np.round(scaled).astype(np.uint16)


def _label_array(labels: np.ndarray, name: str) -> np.ndarray:
    """Labels as non-negative integers (a binary mask becomes one object)."""
    if labels.dtype.kind == "b":
        return labels.astype(np.int32)
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind != "f" or not np.all(np.mod(labels, 1) == 0):
            raise InputError(
                f"labels {name!r} hold non-integer values ({labels.dtype}); give an integer "
                "label image (0 = background, 1, 2 ... = objects)"
            )
        labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise InputError(f"labels {name!r} hold negative values; object labels must be >= 0")
    return labels


def measure_position(key: PositionKey, image: np.ndarray, labels: np.ndarray) -> PositionData:
    """Measure the objects of one image and pack them as a CellH5 position.

    Parameters
    ----------
    key : PositionKey
        Where the position goes.
    image : ndarray
        Channel-first image ``(C, Y, X)`` or ``(C, Z, Y, X)``, any numeric type.
    labels : ndarray
        Integer labels ``(Y, X)`` or ``(Z, Y, X)``, the spatial shape of ``image``.

    Returns
    -------
    PositionData
        ``image`` as ``(c, 1, z, y, x)`` in uint8/uint16 (see ``_storable``), ``labels`` as
        ``(1, 1, z, y, x)``, centres ``(x, y)`` rounded to pixels, half-open bounding boxes
        and every numeric measurement except ``label`` as a feature. Intensity features
        are measured on the image as given, before any conversion.
    """
    if image.shape[1:] != labels.shape:
        raise InputError(
            f"position {key}: labels of shape {labels.shape} do not fit the image "
            f"{image.shape[1:]}; give the labels made from this image"
        )
    intensity = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
    rows = measure_objects(labels, intensity)
    names = [
        column
        for column, value in (rows[0].items() if rows else ())
        if column != "label"
        and isinstance(value, int | float | np.number)
        and not isinstance(value, bool)
    ]
    features = np.array([[row[c] for c in names] for row in rows], np.float32).reshape(
        len(rows), len(names)
    )
    centers = [(round(row["centroid_x"]), round(row["centroid_y"])) for row in rows]
    bboxes = [
        (row["bbox_min_x"], row["bbox_max_x"], row["bbox_min_y"], row["bbox_max_y"]) for row in rows
    ]
    volume = image if labels.ndim == 3 else image[:, None]
    return PositionData(
        key=key,
        image=_storable(volume)[:, None],
        labels=labels.reshape(1, 1, *volume.shape[1:]),
        label_ids=[row["label"] for row in rows],
        centers=centers,
        bboxes=bboxes,
        features=features,
        feature_names=names,
    )


def _spatial(axes: str, shape: tuple[int, ...], name: str) -> str:
    if "T" in axes and shape[axes.index("T")] > 1:
        raise InputError(
            f"image {name!r} has {shape[axes.index('T')]} time points; build_cellh5 takes one "
            "frame per file, so split the time series first"
        )
    return "ZYX" if "Z" in axes and shape[axes.index("Z")] > 1 else "YX"


def _read_labels(path: Path, spatial: str, shape: tuple[int, ...], image_name: str) -> np.ndarray:
    labels = read_image(path)
    try:
        data = labels.as_axes(spatial)
    except AxesError as error:
        raise InputError(
            f"labels '{path.name}' (axes {labels.axes}, shape {labels.shape}) do not fit image "
            f"{image_name!r} ({spatial}); give one label image per image, without channels"
        ) from error
    if data.shape != shape:
        raise InputError(
            f"labels '{path.name}' have shape {data.shape} but image {image_name!r} has "
            f"{shape}; give the labels in the same order as the images"
        )
    return _label_array(data, path.name)


def _predict_labels(model: Model, image, spatial: str, name: str) -> np.ndarray:
    result = model.predict(*in_spatial_order(image.data, image.axes))  # as stored: Z, Y, X
    if result.labels is None:
        raise InputError(
            f"model '{model.name}' does not produce instance labels; choose a segmentation model"
        )
    labels = np.asarray(result.labels)
    shape = image.as_axes(spatial).shape
    if labels.shape != shape:
        raise InputError(
            f"model '{model.name}' gave labels of shape {labels.shape} for image {name!r} of "
            f"spatial shape {shape}; choose a model for {len(shape)}D images"
        )
    return _label_array(labels, name)


def mapped_positions(
    rows: Sequence[MappingRow], files: Sequence[Path], mapping: PathLike
) -> list[PositionKey]:
    """The position of each image file from the rows of its mapping file: by the row's
    ``File`` (file name or stem) where the mapping has that column, else row ``i`` for
    image ``i``, which is refused when the image names number the images in an order that
    differs from name order (``pos1, pos10, pos2``: the user's rows may follow either)."""
    if any(row.file for row in rows):
        by_name = {}
        for number, row in enumerate(rows, start=2):
            by_name.setdefault(row.file, (number, row))
        keys = []
        for path in files:
            found = by_name.pop(path.name, None) or by_name.pop(image_stem(path), None)
            if found is None:
                raise InputError(
                    f"image '{path.name}' has no row in mapping file '{mapping}' (column "
                    f"{FILE_COLUMN}); add a row naming it, or leave the image out"
                )
            keys.append(found[1].key)
        if by_name:
            number, row = min(by_name.values(), key=lambda found: found[0])
            raise InputError(
                f"mapping file '{mapping}', row {number}, names '{row.file}', which is not "
                "among the images; check the name or give that image too"
            )
        return keys
    if len(rows) != len(files):
        raise InputError(
            f"mapping file '{mapping}' has {len(rows)} rows but there are {len(files)} "
            "images; give one mapping row per image, in the image order"
        )
    numbered = sorted(files, key=lambda path: _number_order(path.name))
    if _one_name_pattern(files) and numbered != list(files):
        shown = ", ".join(path.name for path in files[:4])
        raise InputError(
            f"the images are numbered in their names but taken in name order ({shown}, ...), "
            f"so which row of mapping file '{mapping}' goes with which image is unclear; add "
            f"a {FILE_COLUMN} column naming each row's image, or number the images with "
            "leading zeros (pos01, pos02 ...)"
        )
    return [row.key for row in rows]


def _number_order(name: str) -> list:
    """A sort key that orders the numbers in a name by value (``pos2`` before ``pos10``)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(name)]


def _one_name_pattern(files: Sequence[Path]) -> bool:
    """Whether the file names differ only in their numbers (``pos1.tif``, ``pos10.tif``)."""
    patterns = {tuple(_DIGITS.split(path.name)[::2]) for path in files}
    return len(patterns) == 1


def build_cellh5(
    images: Sequence[PathLike] | PathLike,
    out: PathLike,
    *,
    model: str | Path | Model | None = None,
    labels: Sequence[PathLike] | PathLike | None = None,
    mapping: PathLike | None = None,
    plate: str = "plate0",
    axes: str | None = None,
    channel_names: Sequence[str] | None = None,
    object_name: str = DEFAULT_OBJECT,
    progress: ProgressCallback | None = None,
) -> Path:
    """Segment and measure images and write them as one CellH5 file.

    Parameters
    ----------
    images : paths, folders or glob patterns
        The images (expanded by :func:`deepscope.io.list_images`: files in the order given,
        folders sorted by name); 2D ``YX``, multichannel ``YXC``/``CYX``, or ``ZYX`` stacks.
    out : path
        The CellH5 file to write (replaced if it exists).
    model : str, Path or Model, optional
        Segmentation model (name, package folder or loaded model) run on every image.
    labels : paths, folders or glob patterns, optional
        Label images instead of a model, one per image in the same order.
    mapping : path, optional
        Position mapping file (see :func:`deepscope.io.cellh5.read_mapping`): the row whose
        ``File`` names an image gives its plate, well and site; without that column, row
        ``i`` gives those of image ``i`` (see :func:`mapped_positions`). Without it,
        image ``i`` goes to plate ``plate``, well ``W0``, site ``str(i)``.
    plate : str
        Plate name when there is no mapping file.
    axes : str, optional
        Axes of the images when their files do not say (e.g. ``'CYX'``).
    channel_names : sequence of str, optional
        One name per image channel; default ``channel0``, ``channel1`` ...
    object_name : str
        CellH5 object name of the segmented objects.
    progress : callable, optional
        Receives a :class:`~deepscope.progress.Progress` event per image.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    InputError
        If neither or both of ``model`` and ``labels`` are given, the numbers of images,
        labels and mapping rows differ, or an image or label file is unusable.

    Examples
    --------
    >>> build_cellh5(["a.tif", "b.tif"], "screen.ch5", labels=["a_labels.tif", "b_labels.tif"],
    ...              mapping="mapping.tsv")  # doctest: +SKIP
    PosixPath('screen.ch5')
    """
    if (model is None) == (labels is None):
        raise InputError(
            "give either a segmentation model or label images (labels=...), not "
            + ("both" if model is not None else "neither")
        )
    files = list_images(images)
    label_files = list_images(labels) if labels is not None else None
    if label_files is not None and len(label_files) != len(files):
        raise InputError(
            f"{len(files)} images but {len(label_files)} label images; give one label "
            "image per image, in the same order"
        )
    if mapping is not None:
        keys = mapped_positions(read_mapping(mapping), files, mapping)
    else:
        keys = [PositionKey(plate, "W0", str(i)) for i in range(len(files))]
    check_position_keys(keys)
    check_not_an_input(out, [*files, *(label_files or []), mapping], "--out")
    check_output_file(out, "--out")
    segmenter = None
    if model is not None:
        from deepscope.zoo import load_model  # imports the network code only when needed

        segmenter = load_model(model) if isinstance(model, str | Path) else model
    positions = []
    for i, (path, key) in enumerate(zip(files, keys, strict=True)):
        image = read_image(path, axes=axes)
        spatial = _spatial(image.axes, image.shape, path.name)
        data = image.as_axes("C" + spatial)
        if label_files is not None:
            label_image = _read_labels(label_files[i], spatial, data.shape[1:], path.name)
        else:
            label_image = _predict_labels(segmenter, image, spatial, path.name)
        positions.append(measure_position(key, data, label_image))
        report(progress, Progress("cellh5", i + 1, len(files), path.name))
    return write_cellh5(out, positions, channel_names=channel_names, object_name=object_name)
