"""Segment a 3D volume with a 2D flows model run on its XY, XZ and YZ slices.

The image handling around :func:`deepscope.flows.slices.volume_output`: the volume is
checked, stretched along Z to cube voxels (``anisotropy``), zoomed for the object size
(``diameter``), normalised, sliced through the network in batches, reconstructed by the
3D flows task, and brought back to the volume's shape.
"""

from __future__ import annotations

import math

import numpy as np

from deepscope.data.normalize import normalize
from deepscope.data.patches import pad_to_shape
from deepscope.errors import InputError
from deepscope.flows.slices import resample_axis, volume_output
from deepscope.io.axes import default_axes
from deepscope.predict.predictor import Predictor, channel_first_input, predict_raw, with_flips
from deepscope.predict.rescale import predict_at_diameter, to_shape
from deepscope.progress import Progress, ProgressCallback, report
from deepscope.spec import ModelSpec
from deepscope.tasks import Result, get_task

#: pixels per network call (slices are stacked up to about this many pixels; measured
#: neither faster nor slower than one slice a call on 2 CPU cores with onnxruntime)
SLICE_BATCH_PIXELS = 2**18


def predict_by_slices(
    predictor: Predictor,
    spec: ModelSpec,
    image: np.ndarray,
    axes: str | None,
    anisotropy: float | None,
    settings: dict,
    progress: ProgressCallback | None,
    diameter: float | str | None,
) -> Result:
    """Labels of a volume from the 2D flows model run on its XY, XZ and YZ slices."""
    image = np.asarray(image)
    axes = axes or default_axes(image.shape)
    if "Z" not in axes:
        raise InputError(
            f"slices3d needs a 3D volume with a Z axis (e.g. axes ZYX), got shape "
            f"{image.shape} with axes {axes}"
        )
    if image.shape[axes.index("Z")] < 2:
        raise InputError(
            f"slices3d needs a volume of 2 or more z slices, got one (shape {image.shape}, "
            f"axes {axes}); segment a single slice as a 2D image, without --slices3d"
        )
    x = channel_first_input(image, axes, "ZYX", 3, spec.network.in_channels)
    task3d = get_task("flows", {**spec.task_params, "ndim": 3})
    shape = x.shape[1:]
    # stretched to isotropic voxels first: the flows are followed, and a diameter is
    # measured, where the voxels are cubes; the labels are brought back at the end
    stretched = max(1, round(shape[0] * (anisotropy or 1.0)))
    x = resample_axis(x, stretched, axis=1)

    def at_shape(volume: np.ndarray) -> Result:
        normalized = normalize(volume, spec.normalization)
        output = volume_output(
            _slice_fn(predictor, settings, progress, normalized.shape[1:]),
            normalized,
            batch_size=_slice_batch(normalized.shape[1:], settings["batch_size"]),
        )
        return task3d.postprocess(output)

    result = predict_at_diameter(at_shape, x, spec.object_diameter, diameter)
    return to_shape(result, shape)


def _slice_fn(
    predictor: Predictor, settings: dict, progress: ProgressCallback | None, shape: tuple
):
    """The network as a function of a stack of normalised 2D slices ``(N, C, H, W)``
    of a volume of spatial ``shape`` (see :func:`deepscope.flows.slices.volume_output`),
    reporting the slices done."""
    fn = with_flips(predictor.fn, predictor.task.unflip) if settings["tta"] else predictor.fn
    divisor, tile = predictor.config.divisor, settings["tile"]
    total, done = sum(shape), 0

    def run(batch: np.ndarray) -> np.ndarray:
        nonlocal done
        spatial = batch.shape[2:]
        if tile is not None and max(spatial) > tile:  # large slices: tiled, one by one
            out = np.stack(
                [predict_raw(fn, s, 3, divisor, tile, settings["overlap"], 1) for s in batch]
            )
        else:
            padded = tuple(math.ceil(n / divisor) * divisor for n in spatial)
            out = fn(pad_to_shape(batch, padded))[..., : spatial[0], : spatial[1]]
        done += batch.shape[0]
        report(progress, Progress("predict", done, total, "slices"))
        return out

    return run


def _slice_batch(shape: tuple, batch_size: int) -> int:
    """Slices per network call for :func:`predict_by_slices` on a volume of
    spatial ``shape``: about :data:`SLICE_BATCH_PIXELS` pixels of its largest slice, at
    least ``batch_size``."""
    z, y, x = shape
    return max(batch_size, SLICE_BATCH_PIXELS // max(z * y, z * x, y * x), 1)
