"""``deepscope predict --stream`` and ``deepscope count --stream``: one image file larger
than memory, read from disk, predicted, counted and written block by block.

The pieces are :func:`deepscope.io.lazy.open_image` (the input),
:func:`deepscope.predict.streamed.predict_streamed` (labels painted into a Zarr array),
:func:`deepscope.count_streamed.count_streamed` (measurement and filtering) and
:func:`deepscope.io.zarr_io.zarr_writer` (OME-Zarr outputs that appear only when complete).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepscope.count import CountResult, Range
from deepscope.count_streamed import count_streamed
from deepscope.errors import ConfigError
from deepscope.io import image_stem
from deepscope.io.atomic import folder_for_outputs
from deepscope.io.lazy import LazyImage, open_image
from deepscope.io.zarr_io import zarr_writer
from deepscope.measure import write_table
from deepscope.predict.streamed import check_streamable, predict_pixels_streamed, predict_streamed
from deepscope.progress import ProgressCallback
from deepscope.zoo import Model

__all__ = ["check_stream_options", "count_file_streamed", "predict_file_streamed"]


def check_stream_options(
    model: Model,
    output_format: str,
    overlay: bool,
    diameter: float | str | None,
    slices3d: bool,
) -> None:
    """Refuse a model or options that streamed prediction cannot honour, before any image
    is read."""
    if model.task.output_kind not in ("labels", "image"):
        raise ConfigError(
            f"streamed prediction applies models to whole images; '{model.name}' is a "
            f"model of task '{model.spec.task}', which works on cell crops: leave out --stream"
        )
    if output_format != "ome.zarr":
        raise ConfigError(
            "streamed prediction writes OME-Zarr, which can be written block by block; add "
            "--format ome.zarr (output_format='ome.zarr' in Python)"
        )
    for given, option in ((overlay, "--overlay"), (diameter is not None, "--diameter")):
        if given:
            raise ConfigError(f"{option} needs the whole image in memory; leave out --stream")
    if slices3d:
        raise ConfigError("--slices3d needs the whole volume in memory; leave out --stream")


def _geometry(model: Model, image: LazyImage) -> tuple[str, tuple[int, ...], dict | None]:
    """The model's spatial axes, the image's shape along them and its pixel size there,
    after checking that the model can stream the image."""
    check_streamable(model.predictor, image)
    spatial = model.predictor.spatial_axes
    size = {a: v for a, v in (image.pixel_size or {}).items() if a in spatial} or None
    return spatial, tuple(image.size(a) for a in spatial), size


def _output(out: Path, path: Path, kind: str) -> Path:
    return out / f"{image_stem(path)}_{kind}.ome.zarr"


def _settings_tile(settings: dict) -> int:
    if settings["tile"] is None:
        raise ConfigError("streamed prediction reads the image tile by tile; give a --tile")
    return settings["tile"]


def _predict_into(model: Model, image: LazyImage, labels, settings: dict, prob, progress) -> int:
    return predict_streamed(
        model.predictor,
        image,
        labels,
        _settings_tile(settings),
        settings["overlap"],
        settings["batch_size"],
        settings["tta"],
        prob,
        progress,
    )


def predict_file_streamed(
    model: Model,
    path: Path,
    out: Path,
    axes: str | None,
    settings: dict,
    save_probabilities: bool,
    progress: ProgressCallback | None,
) -> list[Path]:
    """Predict one image file block by block into OME-Zarr images in ``out``, named as
    :func:`~deepscope.api.predict_files` names its outputs: ``<stem>_labels`` (and
    ``<stem>_prob``) for models that segment objects; ``<stem>_classes`` (and ``_prob``)
    for class maps; ``<stem>_pred`` (and ``_uncertainty``) for restoration. Returns the
    paths written."""
    _settings_tile(settings)
    with open_image(path, axes) as image, folder_for_outputs(out):
        model.warn_if_other_voxels(image.pixel_size, path.name)
        spatial, shape, size = _geometry(model, image)
        if not model.task.predicts_objects:
            outputs = _pixel_outputs(out, path, save_probabilities)
            return _write_pixels(model, image, outputs, (spatial, shape, size), settings, progress)
        channels = model.task.probability_channels if save_probabilities else 0
        labels_path, prob_path = _output(out, path, "labels"), _output(out, path, "prob")
        with contextlib.ExitStack() as stack:
            labels = stack.enter_context(zarr_writer(labels_path, shape, np.int32, spatial, size))
            prob = None
            if channels:
                prob = stack.enter_context(
                    zarr_writer(prob_path, (channels, *shape), np.float32, "C" + spatial, size)
                )
            _predict_into(model, image, labels, settings, prob, progress)
    return [labels_path, prob_path] if channels else [labels_path]


#: output name of each per-pixel field of a result (as predict_files names them)
_PIXEL_OUTPUTS = {
    "classes": "classes",
    "probabilities": "prob",
    "image": "pred",
    "uncertainty": "uncertainty",
}


def _pixel_outputs(out: Path, path: Path, save_probabilities: bool) -> dict[str, Path]:
    """Where each per-pixel field of a result goes (probabilities only when asked for)."""
    return {
        field: _output(out, path, kind)
        for field, kind in _PIXEL_OUTPUTS.items()
        if save_probabilities or field != "probabilities"
    }


def _write_pixels(
    model: Model,
    image: LazyImage,
    outputs: dict[str, Path],
    geometry: tuple[str, tuple[int, ...], dict | None],
    settings: dict,
    progress: ProgressCallback | None,
) -> list[Path]:
    """Stream a model whose outputs are pixels into ``outputs``, one OME-Zarr image per
    result field, each created when the first block shows its channels and type;
    ``geometry`` is the image's spatial axes, shape and pixel size (:func:`_geometry`)."""
    spatial, shape, size = geometry
    pieces = predict_pixels_streamed(
        model.predictor,
        image,
        _settings_tile(settings),
        settings["overlap"],
        settings["batch_size"],
        settings["tta"],
        progress,
    )
    arrays = {}
    with contextlib.ExitStack() as stack:
        for core, result in pieces:
            for field, target in outputs.items():
                piece = getattr(result, field)
                if piece is None:
                    continue
                if field not in arrays:
                    channels = piece.shape[: piece.ndim - len(spatial)]
                    arrays[field] = stack.enter_context(
                        zarr_writer(
                            target,
                            (*channels, *shape),
                            piece.dtype,
                            "C" * len(channels) + spatial,
                            size,
                        )
                    )
                arrays[field][(Ellipsis, *core)] = piece
    return [outputs[field] for field in arrays]


def count_file_streamed(
    model: Model,
    path: Path,
    out: Path,
    axes: str | None,
    settings: dict,
    ranges: Sequence[Range],
    exclude_border: bool,
    progress: ProgressCallback | None,
    split: bool = False,
    min_split_size: int = 30,
) -> CountResult:
    """Segment one image file block by block, then measure, split (``split``) and filter
    its objects block by block: writes ``<stem>_labels.ome.zarr`` (the kept objects, ``1..n``) and
    ``<stem>_objects.csv`` to ``out``. The unfiltered labels live in a temporary Zarr array
    in ``out`` meanwhile. Returns the count (its ``labels`` is the written Zarr array)."""
    tile = _settings_tile(settings)
    with open_image(path, axes) as image:
        model.warn_if_other_voxels(image.pixel_size, path.name)
        spatial, shape, size = _geometry(model, image)
        pixel_size = [size[a] for a in spatial] if size and len(size) == len(spatial) else None
        with (
            folder_for_outputs(out),
            tempfile.TemporaryDirectory(dir=out, prefix=".count-") as scratch,
            zarr_writer(Path(scratch) / "raw.ome.zarr", shape, np.int32, spatial) as raw,
        ):
            _predict_into(model, image, raw, settings, None, progress)
            with zarr_writer(_output(out, path, "labels"), shape, np.int32, spatial, size) as kept:
                counted = count_streamed(
                    raw,
                    image,
                    spatial,
                    kept,
                    ranges,
                    exclude_border,
                    pixel_size,
                    block=tile,
                    halo=settings["overlap"],
                    name=path.name,
                    progress=progress,
                    split=split,
                    min_split_size=min_split_size,
                )
    write_table(counted.objects, out / f"{image_stem(path)}_objects.csv", counted.columns)
    return counted
