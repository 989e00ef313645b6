"""Learned features of cell objects: an autoencoder's encoder applied to the crop around
each object of a CellH5 file or to a folder of crops, written as a features file that
``deepscope explore`` (and CellCognition Explorer's data model) reads, plus a CSV table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepscope.cell_objects import CellObjects, crop_files, objects_from_cellh5, objects_from_crops
from deepscope.errors import InputError
from deepscope.io.atomic import check_not_an_input, check_output_file
from deepscope.io.feature_hdf import ObjectFeatures, write_feature_csv, write_feature_hdf
from deepscope.progress import Progress, ProgressCallback, report
from deepscope.zoo import Model, load_model


def as_encoder(model: Model | str | Path) -> Model:
    """A loaded autoencoder; other models are refused with a clear message."""
    model = load_model(model) if isinstance(model, str | Path) else model
    if model.task.output_kind != "features":
        raise InputError(
            f"model '{model.name}' is a model of task '{model.spec.task}'; encode needs one "
            "trained with 'deepscope train autoencoder'"
        )
    return model


def encode_objects(model: Model, objects: CellObjects, batch_size: int = 256) -> np.ndarray:
    """Features ``(N, latent)`` of the objects' raw crops, each normalised like in training."""
    predictor = model.predictor
    if len(objects) == 0:
        return np.zeros((0, model.spec.network.latent), np.float32)
    crops = np.stack([predictor.prepare(c, "CYX") for c in objects.crops])
    return predictor.outputs(crops, batch_size).astype(np.float32)


def gallery_of(crops: np.ndarray) -> np.ndarray:
    """Raw crops as uint16 gallery images (clipped to the uint16 range)."""
    return np.clip(np.rint(crops), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def feature_table(model: Model, objects: CellObjects, features: np.ndarray) -> ObjectFeatures:
    """The features file's content for ``objects`` and their ``features``."""
    n_channels = objects.crops.shape[1]
    return ObjectFeatures(
        features=features,
        feature_names=[f"ae_{i}" for i in range(features.shape[1])],
        labels=objects.labels,
        centers=objects.centers,
        bboxes=objects.bboxes,
        gallery=gallery_of(objects.crops),
        contours=objects.contours,
        channel_names=[f"channel{c}" for c in range(n_channels)],
        positions=objects.positions,
        plates=objects.plates,
        wells=objects.wells,
        sites=objects.sites,
        genes=objects.genes,
        groups=objects.groups,
        is_control=objects.is_control,
        angle=objects.angle,
        eccentricity=objects.eccentricity,
        area=objects.area,
    )


def _check_features_out(out: Path, inputs: list[str | Path | None]) -> Path:
    """``out`` if the features file and its CSV table can be written there without
    replacing an input; else an error before any object is encoded."""
    if out.suffix.lower() == ".csv":
        raise InputError(
            f"--out '{out}' is the features file (e.g. features.hdf); its CSV table is "
            "written beside it under the same name"
        )
    check_not_an_input(out, inputs, "--out")
    check_not_an_input(out.with_suffix(".csv"), inputs, "--out's table")
    check_output_file(out.with_suffix(".csv"), "--out")
    return check_output_file(out, "--out")


def encode(
    model: Model | str | Path,
    out: str | Path,
    *,
    cellh5: str | Path | None = None,
    mapping: str | Path | None = None,
    images: str | Path | None = None,
    axes: str | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Path]:
    """Encode every object of a CellH5 file (with gene and group from ``mapping``) or every
    crop of a folder (``images``; sub-folders become the groups).

    Writes ``out`` (a ``.hdf`` features file: ``data/bbox``, ``data/features``,
    ``data/gallery``, ``data/contours``, ``data/objects``) and the same table as
    ``out`` with suffix ``.csv``; returns both paths.
    """
    if (cellh5 is None) == (images is None):
        raise InputError("give a CellH5 file (--cellh5) or a folder of crops (--images)")
    out = _check_features_out(Path(out), [cellh5, mapping, images])
    model = as_encoder(model)
    size = model.task.params.crop_size
    report(progress, Progress("encode", 0, 2, "reading cell objects"))
    if cellh5 is not None:
        objects = objects_from_cellh5(cellh5, size, mapping)
    else:
        if mapping is not None:
            raise InputError("--mapping goes with --cellh5, not with a folder of crops")
        objects = objects_from_crops(crop_files(images), size, axes)
    report(progress, Progress("encode", 1, 2, f"encoding {len(objects)} objects"))
    table = feature_table(model, objects, encode_objects(model, objects))
    paths = {
        "hdf": write_feature_hdf(out, table),
        "csv": write_feature_csv(out.with_suffix(".csv"), table),
    }
    report(progress, Progress("encode", 2, 2, f"wrote {out}"))
    return paths
