"""Classifiers applied to files and to segmented objects: a predictions table for crops,
scores against class folders, and class columns for the Count objects table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from deepscope.data.crops import class_folders, object_crops
from deepscope.errors import InputError, per_image
from deepscope.io import list_images, read_image
from deepscope.measure import write_table
from deepscope.progress import Progress, ProgressCallback, report
from deepscope.tasks import Result
from deepscope.zoo import Model, load_model

PREDICTIONS_FILE = "predictions.csv"


def as_classifier(model: Model | str | Path) -> Model:
    """A loaded classifier; other models are refused with a clear message."""
    model = load_model(model) if isinstance(model, str | Path) else model
    if model.task.output_kind != "class":
        raise InputError(
            f"model '{model.name}' is a model of task '{model.spec.task}', not a classifier; "
            "give a model trained with 'deepscope train classify'"
        )
    return model


def probability_column_names(classes: Sequence[str]) -> list[str]:
    """The ``prob_<class>`` column of each class, in class order."""
    return [f"prob_{c}" for c in classes]


def probability_columns(result: Result, classes: Sequence[str]) -> dict:
    """``class`` and one ``prob_<class>`` column per class for one result."""
    row = {"class": result.class_name}
    row.update(
        {k: float(p) for k, p in zip(probability_column_names(classes), result.probabilities)}
    )
    return row


def _classify_paths(
    model: Model,
    paths: Sequence[Path],
    axes: str | None,
    tta: bool | None,
    progress: ProgressCallback | None,
    on_error: Callable[[Path, InputError], None] | None = None,
) -> tuple[list[Path], list[Result]]:
    """The crops of ``paths`` that could be read and prepared, and their results; with
    ``on_error`` a crop that cannot is handed to it (named) and left out, else it stops."""
    predictor = model.predictor
    kept, crops = [], []
    for i, path in enumerate(paths):
        with per_image(path, on_error):
            image = read_image(path, axes=axes)
            crops.append(predictor.prepare(image.data, image.axes))
            kept.append(path)
        report(progress, Progress("read", i + 1, len(paths), path.name))
    if not crops:
        return [], []
    return kept, predictor.results(np.stack(crops), tta=bool(tta))


def classify_files(
    model: Model | str | Path,
    inputs: Sequence[str | Path],
    out: str | Path,
    axes: str | None = None,
    tta: bool | None = None,
    progress: ProgressCallback | None = None,
    on_error: Callable[[Path, InputError], None] | None = None,
) -> Path:
    """Classify crops (files, folders or globs); writes ``OUT/predictions.csv`` with
    ``file``, ``class`` and ``prob_<class>`` per crop and returns its path. A crop that
    cannot be read or classified stops the work with an error naming it, or with
    ``on_error(path, error)`` is handed to it and left out of the table."""
    model = as_classifier(model)
    files, results = _classify_paths(model, list_images(inputs), axes, tta, progress, on_error)
    rows = [
        {"file": str(path), **probability_columns(r, model.task.classes)}
        for path, r in zip(files, results, strict=True)
    ]
    columns = ["file", "class", *probability_column_names(model.task.classes)]
    return write_table(rows, Path(out) / PREDICTIONS_FILE, columns)


def evaluate_classifier(
    model: Model | str | Path,
    images: str | Path,
    axes: str | None = None,
    per_image_csv: str | Path | None = None,
    tta: bool | None = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """Score a classifier on a folder with one sub-folder per class (the class names of
    the model): ``accuracy``, ``macro_f1``, ``n_images`` and per-class scores."""
    model = as_classifier(model)
    classes = model.task.classes
    found, items = class_folders(images, min_classes=1)  # one class: its recall
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise InputError(
            f"class folders {unknown} in '{images}' are not classes of '{model.name}' "
            f"({', '.join(classes)}); rename or remove them"
        )
    truth = [classes.index(found[i]) for _, i in items]
    paths = [p for p, _ in items]
    _, results = _classify_paths(model, paths, axes, tta, progress)
    metrics = model.task.evaluate(results, truth, [p.name for p in paths])
    if per_image_csv is not None:
        rows = [
            {"file": str(p), "true_class": classes[t], **probability_columns(r, classes)}
            for p, t, r in zip(paths, truth, results, strict=True)
        ]
        write_table(rows, per_image_csv)
    return metrics


def classify_objects(model: Model, image: np.ndarray, labels: np.ndarray) -> dict[int, dict]:
    """Class columns for every object of a 2D label image: ``{label: {"class": ...,
    "prob_<c>": ...}}``.

    ``image`` is channel-first ``(C, Y, X)`` in raw intensities; around each object's centre
    a window of the training crop files' side (``task_params.window``; the crop size for
    models that do not record it) is normalised as a whole and sized to the crop size, as
    the training crops were. The classifier must have been trained at the image's
    magnification.
    """
    predictor = model.predictor
    window = model.task.params.window or predictor.crop_size  # as the training crops were cut
    raw, ids = object_crops(image, labels, window)
    if not len(ids):
        return {}
    crops = np.stack([predictor.prepare(c, "CYX") for c in raw])
    results = predictor.results(crops)
    return {
        int(i): probability_columns(r, model.task.classes)
        for i, r in zip(ids, results, strict=True)
    }
