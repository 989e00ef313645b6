"""Predict Preview and Count of one image for the web app, through the public API.

The work is done by :func:`deepscope.api.predict_files` and
:func:`deepscope.api.count_files`; this module only adds what a page needs to show the
result: PNG pictures (the image, the output of a restoration, the outlines) and a label
PNG that stores each pixel's object number in its colour, so the page can name the object
under the cursor without another request.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from deepscope.api import count_files, predict_files
from deepscope.classify import PREDICTIONS_FILE, probability_columns
from deepscope.errors import InputError
from deepscope.io import Image, image_stem, read_image, transpose_axes
from deepscope.io.atomic import atomic_output
from deepscope.io.image import refuse_time_series
from deepscope.measure import write_table
from deepscope.render import save_overlay, to_display
from deepscope.zoo import Model

MODES = ("preview", "count")
#: rows of the objects table sent with the answer (the CSV holds all of them)
MAX_ROWS = 2000


def _png(picture: np.ndarray, path: Path) -> str:
    import imageio.v3 as iio

    with atomic_output(path) as tmp:
        iio.imwrite(tmp, picture, extension=".png")
    return path.name


def _plane(data: np.ndarray, axes: str) -> np.ndarray:
    """A 2D picture of an image: colour ``YXC`` when it has 3-4 channels, else the first
    channel; the middle plane of a volume."""
    if "Z" in axes:
        data = np.take(data, data.shape[axes.index("Z")] // 2, axis=axes.index("Z"))
        axes = axes.replace("Z", "")
    if "C" in axes and data.shape[axes.index("C")] in (3, 4):
        return transpose_axes(data, axes, "YXC")[..., :3]
    return transpose_axes(data, axes, "CYX")[0]


def label_png(labels: np.ndarray) -> np.ndarray:
    """RGB uint8 picture whose colour is the object number: ``R + 256 G + 65536 B``."""
    if labels.ndim == 3:
        labels = labels[labels.shape[0] // 2]
    ids = labels.astype(np.uint32)
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


def _table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [row for _, row in zip(range(MAX_ROWS), reader, strict=False)]
        return list(reader.fieldnames or []), rows


def _classify(model: Model, image: Image, image_path: Path, out: Path, answer: dict) -> dict:
    """A classifier's answer for one crop: its class and probabilities as the summary, the
    crop as the picture, ``predictions.csv`` naming the file as it was given (not the
    server's path of an upload)."""
    classes = model.task.classes
    columns = probability_columns(model.predict(image.data, image.axes), classes)
    table = write_table([{"file": image_path.name, **columns}], out / PREDICTIONS_FILE)
    answer["summary"] = columns
    answer["pictures"] = {
        "image": _png(to_display(_plane(image.data, image.axes)), out / "image.png")
    }
    answer["files"] = [table.name]
    return answer


def analyse(
    model: Model,
    image_path: Path,
    out: Path,
    mode: str = "preview",
    ranges: list[str] | None = None,
    split: bool = False,
    exclude_border: bool = False,
    channel: int | None = None,
) -> dict[str, Any]:
    """Predict (``preview``: every object, no filter) or count (``count``: ranges, split,
    border) one image into ``out``; returns what the page shows, file names relative to
    ``out``. ``channel``: segment that channel of a multichannel image (count measures
    every channel)."""
    stem = image_stem(image_path)
    answer: dict[str, Any] = {"model": model.name, "mode": mode, "image": image_path.name}
    image = read_image(image_path)
    refuse_time_series(  # before any work: the page shows one image
        image,
        f"'{image_path.name}'",
        "Analyse shows one image: save one time point as its own file, or batch the folder "
        "as a job (one labels stack, and a table with a frame column)",
    )
    if model.task.output_kind == "class" and mode == "preview":
        if channel is not None:
            raise InputError("a channel to segment is for segmentation models, not classifiers")
        return _classify(model, image, image_path, out, answer)
    if mode == "count":
        (summary,) = count_files(
            model,
            [image_path],
            out,
            ranges or [],
            exclude_border=exclude_border,
            split=split,
            channel=channel,
        )
        answer["summary"] = summary
        columns, rows = _table(out / f"{stem}_objects.csv")
        answer.update(columns=columns, objects=rows, n_objects=int(summary["count"]))
        files = [f"{stem}_labels.tif", f"{stem}_objects.csv", "summary.csv"]
    else:
        files = [p.name for p in predict_files(model, [image_path], out, channel=channel)]
    plane = _plane(image.data, image.axes)
    pictures = {"image": _png(to_display(plane), out / "image.png")}
    labels_file = out / f"{stem}_labels.tif"
    if labels_file.is_file():
        labels = read_image(labels_file).data
        answer["n_objects"] = len(np.unique(labels[labels > 0]))
        pictures["labels"] = _png(label_png(labels), out / "labels.png")
        middle = labels[labels.shape[0] // 2] if labels.ndim == 3 else labels
        pictures["overlay"] = save_overlay(plane, middle, out / "overlay.png").name
    restored = out / f"{stem}_pred.tif"
    if restored.is_file():
        pred = read_image(restored)
        pictures["output"] = _png(to_display(_plane(pred.data, pred.axes)), out / "output.png")
    answer["pictures"] = pictures
    answer["files"] = files
    return answer
