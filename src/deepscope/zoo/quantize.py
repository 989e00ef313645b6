"""Add an int8 copy of a model's network to its package, for fast prediction on the CPU.

The int8 network is calibrated on images like those the model will see (its training
images are a good choice) and stored beside the float weights as ``network-int8.onnx``;
``model.json`` records its sha256, the calibration images and, when validation data are
given, the int8 network's own metrics, so the cost in accuracy is on record. Prediction
uses it with ``precision='int8'``, or ``'auto'`` on the CPU.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepscope.data.patches import pad_to_shape
from deepscope.errors import InputError, ModelError
from deepscope.io import list_images, read_image
from deepscope.nets import UNetConfig
from deepscope.nets.quantize import quantize_int8
from deepscope.spec import (
    FORMAT_VERSION,
    INT8_FILE,
    Int8Network,
    sha256_of,
    write_spec,
)
from deepscope.zoo.model import Model, load_model
from deepscope.zoo.registry import refuse_builtin, resolve_model


def calibration_crop(x: np.ndarray, side: int, divisor: int) -> np.ndarray:
    """The centre of a prepared image ``(C, *spatial)``, at most ``side`` pixels per axis
    and a multiple of ``divisor`` (smaller axes are padded up to one)."""
    window, padded = [], []
    for size in x.shape[1:]:
        keep = min(size, side) // divisor * divisor or size  # under one divisor: pad it up
        start = (size - keep) // 2
        window.append(slice(start, start + keep))
        padded.append(-(-keep // divisor) * divisor)
    return pad_to_shape(x[(slice(None), *window)], tuple(padded))


def calibration_batches(
    model: Model, images: Sequence[Path], side: int, axes: str | None = None
) -> list[np.ndarray]:
    """One normalised centre crop ``(1, C, *spatial)`` of each image, as the network sees it
    (the first time point of a series)."""
    batches = []
    divisor = model.predictor.config.divisor
    for path in images:
        image = read_image(path, axes=axes)
        data, image_axes = image.data, image.axes
        if "T" in image_axes:
            data = np.take(data, 0, axis=image_axes.index("T"))
            image_axes = image_axes.replace("T", "")
        x = model.predictor.prepare(data, image_axes)
        batches.append(calibration_crop(x, side, divisor)[None])
    return batches


def evenly_spaced(items: Sequence, count: int) -> list:
    """``count`` items spread evenly over ``items`` (all of them if there are fewer)."""
    if len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]


def _int8_metrics(folder: Path, network: Path, spec, val_images, val_masks, axes) -> dict:
    """Validation metrics of the package in ``folder`` with the int8 ``network`` file and
    ``spec``, scored in a temporary copy of the package."""
    from deepscope.api import evaluate

    with tempfile.TemporaryDirectory() as staging:
        trial = Path(staging) / folder.name
        shutil.copytree(folder, trial, ignore=shutil.ignore_patterns("checkpoints", ".*"))
        shutil.copyfile(network, trial / INT8_FILE)
        write_spec(trial, spec)
        int8_model = load_model(trial, device="cpu", precision="int8")
        return evaluate(int8_model, val_images, val_masks, axes=axes)


def quantize_model(
    name_or_path: str | Path,
    images: str | Path | Sequence[str | Path],
    count: int = 32,
    side: int = 512,
    axes: str | None = None,
    val_images: str | Path | None = None,
    val_masks: str | Path | None = None,
    float_outer_level: bool = False,
) -> Path:
    """Calibrate an int8 network for a model of the user's library (or a package folder)
    on ``count`` of ``images`` (centre crops of at most ``side`` pixels a side) and add it
    to the package. With ``val_images`` and ``val_masks`` (masks or target images), the
    int8 network is also evaluated and its metrics recorded. ``float_outer_level`` keeps
    the full-resolution convolutions float (for restoration models; see
    :func:`deepscope.nets.quantize.quantize_int8`). Returns the package folder.
    """

    folder, source = resolve_model(name_or_path)
    refuse_builtin(name_or_path, source, "quantize")
    if count < 1 or side < 1:
        raise InputError(f"count and side must be at least 1, got {count} and {side}")
    files = evenly_spaced(list_images(images), count)
    if not files:
        raise InputError(f"no images found in {images}; give the images to calibrate on")
    model = load_model(folder, device="cpu", precision="float32", backend="torch")
    if (val_images is None) != (val_masks is None):
        raise InputError(
            f"give both --val-images and --val-{model.task.truth_name}s to score the int8 "
            "network, or neither"
        )
    if not isinstance(model.spec.network, UNetConfig):
        raise ModelError(
            f"'{model.name}' is not a U-Net model (segmentation, restoration); only those "
            "are quantised"
        )
    smallest = max(model.spec.network.divisor, getattr(model.spec.network, "min_size", 1))
    if side < smallest:
        raise InputError(
            f"--side {side} is too small for the network of '{model.name}': its calibration "
            f"crops are multiples of {model.spec.network.divisor} pixels a side; give --side "
            f"{smallest} or more (default 512)"
        )
    network = quantize_int8(
        model.predictor.net, calibration_batches(model, files, side, axes), float_outer_level
    )
    tmp = folder / f".{INT8_FILE}.tmp"
    tmp.write_bytes(network)
    record = Int8Network(
        sha256=sha256_of(tmp),
        calibration={
            "images": [f.name for f in files],
            "side": side,
            "method": "minmax",
            "float_outer_level": float_outer_level,
        },
    )
    spec = model.spec.model_copy(update={"int8": record, "format_version": FORMAT_VERSION})
    try:
        if val_images is not None:  # scored in a copy: a failure leaves the package as it was
            metrics = _int8_metrics(folder, tmp, spec, val_images, val_masks, axes)
            validated = record.model_copy(update={"validation": metrics})
            spec = spec.model_copy(update={"int8": validated})
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, folder / INT8_FILE)
    write_spec(folder, spec)
    return folder


__all__ = ["calibration_batches", "calibration_crop", "quantize_model"]
