"""Prediction of images larger than memory: read, predict and write block by block.

The image stays on disk (:class:`~deepscope.io.lazy.LazyImage`). A first look at all its
pixels (two passes, :func:`~deepscope.data.block_percentiles.block_percentiles`) gives the
normalisation percentiles of the whole image, exactly as an in-memory prediction measures
them. Then each block of the plan (:func:`~deepscope.predict.stitch.plan_blocks`) is read
with its halo, normalised with those bounds, predicted, and the objects it owns are painted
into the output array (for example a Zarr array on disk) with the rule of the in-memory
merge: the earlier block's object wins where neighbouring blocks' objects overlap
(:func:`~deepscope.predict.stitch.paint_part`). The labels are therefore the ones
:meth:`Predictor.predict <deepscope.predict.predictor.Predictor.predict>` gives for the same
image, tile and overlap, while memory holds one block at a time.

Models whose outputs are pixels (restoration, class maps) stream with
:func:`predict_pixels_streamed`: each block is predicted over its read window and only its
core is kept, so the core sees the halo as context. These outputs equal an in-memory
prediction up to the network's reach beyond the halo (the in-memory tiling cross-fades tile
overlaps instead of cutting them); restored images are mapped back to intensities with the
whole image's percentiles, as in memory. Crop models (classifiers, autoencoders) are
refused with a message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from deepscope.data.block_percentiles import block_percentiles
from deepscope.data.normalize import (
    Normalization,
    check_float32_range,
    normalize,
    widen_collapsed,
)
from deepscope.errors import InputError
from deepscope.io.lazy import LazyImage
from deepscope.predict.predictor import Predictor
from deepscope.predict.stitch import Block, BlockObjects, paint_part, part_region, plan_blocks
from deepscope.progress import Progress, ProgressCallback, report
from deepscope.tasks.base import PIXEL_FIELDS, Result

__all__ = ["predict_pixels_streamed", "predict_streamed", "streamed_normalization"]

#: Edge of the blocks read to measure the percentiles (pixels per spatial axis, 2D).
_STATS_BLOCK_2D = 2048
_STATS_BLOCK_3D = 256


def check_streamable(predictor: Predictor, image: LazyImage) -> None:
    """Raise a one-line :class:`InputError` unless ``predictor`` can stream ``image``."""
    task = predictor.task
    if task.output_kind not in ("labels", "image"):
        raise InputError(
            f"streamed prediction applies models to whole images; a {task.name} model works "
            "on cell crops: predict without --stream"
        )
    if getattr(task.params, "postprocessing", None):
        raise InputError(
            "this imported model's post-processing steps look at the whole output at once; "
            "predict without --stream"
        )
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool) or np.issubdtype(
        image.dtype, np.complexfloating
    ):
        raise InputError(f"{image.source!r} has dtype {image.dtype}; give real numbers")
    if image.size("T") > 1:
        raise InputError(
            f"{image.source!r} is a time series ({image.size('T')} time points); streamed "
            "prediction reads one image: write each time point to its own file"
        )
    missing = [a for a in predictor.spatial_axes if a not in image.axes]
    if missing or (predictor.ndim == 2 and image.size("Z") > 1):
        raise InputError(
            f"{image.source!r} has axes {image.axes} (shape {image.shape}) but the model is "
            f"{predictor.ndim}D ({predictor.spatial_axes}); give an image with those axes"
        )
    channels = predictor.config.in_channels
    if image.size("C") != channels:
        raise InputError(
            f"the model expects {channels} channel(s) but {image.source!r} has "
            f"{image.size('C')}; give an image with the model's channels"
        )


def _layout(predictor: Predictor) -> str:
    return "C" + predictor.spatial_axes


def _spatial_shape(predictor: Predictor, image: LazyImage) -> tuple[int, ...]:
    return tuple(image.size(a) for a in predictor.spatial_axes)


def streamed_normalization(predictor: Predictor, image: LazyImage) -> Normalization:
    """The model's normalisation with the bounds of the whole ``image`` fixed, so that
    every block is normalised alike: for per-image percentiles, the image's exact
    percentiles (read in blocks); other modes are applied per block as they are."""
    settings = predictor.normalization
    if settings.mode in ("none", "dataset"):
        return settings
    if settings.mode != "percentile":
        raise InputError(
            f"streamed prediction cannot apply the model's '{settings.mode}' normalisation "
            "block by block; predict without --stream"
        )
    shape = _spatial_shape(predictor, image)
    edge = _STATS_BLOCK_2D if len(shape) == 2 else _STATS_BLOCK_3D
    layout = _layout(predictor)

    def blocks():
        for block in plan_blocks(shape, edge, 0):
            yield image.window(layout, block.core)

    lowest, lo, hi, highest = block_percentiles(blocks, [0, settings.low, settings.high, 100]).T
    bounds = np.stack(widen_collapsed(lo, hi, lowest, highest), axis=1)
    return settings.model_copy(update={"mode": "dataset", "bounds": bounds.tolist()})


def predict_streamed(
    predictor: Predictor,
    image: LazyImage,
    labels: Any,
    tile: int,
    overlap: int,
    batch_size: int = 1,
    tta: bool = False,
    probabilities: Any | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """Segment ``image`` block by block into ``labels``, a writable array of its spatial
    shape filled with zeros (a ``zarr.Array``, a numpy memmap...); returns the number of
    objects, numbered ``1..n``.

    ``tile`` is the block edge and ``overlap`` its halo (as for
    :meth:`Predictor.predict`). ``probabilities``, optional, ``(C, *spatial)``, receives
    the blocks' object probabilities (see :class:`~deepscope.predict.stitch.BlockObjects`).
    Memory holds one block's pixels, network output and labels, whatever the image size.
    """
    check_streamable(predictor, image)
    if not predictor.task.predicts_objects:
        raise InputError(
            f"a {predictor.task.name} model gives pixels, not objects: stream it with "
            "predict_pixels_streamed"
        )
    shape = _spatial_shape(predictor, image)
    if tuple(labels.shape) != shape:
        raise ValueError(f"labels must have the image's shape {shape}, not {labels.shape}")
    settings = streamed_normalization(predictor, image)
    layout = _layout(predictor)
    min_size = int(getattr(predictor.task.params, "min_size", 0))
    blocks = plan_blocks(shape, tile, overlap, predictor.config.divisor)
    n = 0
    for i, block in enumerate(blocks):
        window = normalize(_pixels(image, layout, block), settings)
        part: BlockObjects = predictor.block_objects(window, block, batch_size, tta)
        if probabilities is not None:
            probabilities[(slice(None), *block.core)] = part.probability / np.float32(255)
        if part.count:
            region = part_region(part)
            target = np.asarray(labels[region])
            kept = paint_part(target, part, n + 1, min_size)
            if kept:
                labels[region] = target
            n += kept
        report(progress, Progress("predict", i + 1, len(blocks), "blocks"))
    return n


def predict_pixels_streamed(
    predictor: Predictor,
    image: LazyImage,
    tile: int,
    overlap: int,
    batch_size: int = 1,
    tta: bool = False,
    progress: ProgressCallback | None = None,
) -> Iterator[tuple[tuple[slice, ...], Result]]:
    """Predict a model whose outputs are pixels (restored images, class maps) block by
    block: yields each block's core region (spatial slices) and the :class:`Result` over
    that core, for the caller to write where it likes.

    Each block is read with ``overlap`` pixels of context on every side, normalised with
    the whole image's bounds, predicted whole and cut to its core; restored images come
    back in the input's intensity units. Memory holds one block whatever the image size.
    """
    check_streamable(predictor, image)
    if predictor.task.predicts_objects:
        raise InputError(
            f"a {predictor.task.name} model segments objects: stream it with predict_streamed"
        )
    shape = _spatial_shape(predictor, image)
    settings = streamed_normalization(predictor, image)
    layout = _layout(predictor)
    blocks = plan_blocks(shape, tile, overlap, predictor.config.divisor)
    for i, block in enumerate(blocks):
        pixels = _pixels(image, layout, block)
        window = normalize(pixels, settings)
        result = predictor.pixel_result(window, pixels, settings, None, 0, batch_size, None, tta)
        yield block.core, _cropped(result, block.core_in_read)
        report(progress, Progress("predict", i + 1, len(blocks), "blocks"))


def _pixels(image: LazyImage, layout: str, block: Block) -> np.ndarray:
    """The block's read window of ``image``, checked as an in-memory image is (NaN,
    infinity, values beyond float32)."""
    pixels = image.window(layout, block.read)
    if pixels.dtype.kind == "f":
        check_float32_range(pixels, whole=False)
    return pixels


def _cropped(result: Result, region: tuple[slice, ...]) -> Result:
    """``result`` with its per-pixel arrays cut to ``region`` of their spatial (last) axes."""
    crop = (Ellipsis, *region)
    arrays = {
        name: np.ascontiguousarray(getattr(result, name)[crop])
        for name in PIXEL_FIELDS
        if getattr(result, name) is not None
    }
    return Result(**arrays)
