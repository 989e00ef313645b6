"""Apply a network to whole images: layout, normalisation, tiling, task post-processing."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from deepscope.data.layout import to_channel_first
from deepscope.data.normalize import Normalization, check_float32_range, denormalize, normalize
from deepscope.data.patches import pad_to_shape
from deepscope.devices import resolve_device
from deepscope.errors import InputError
from deepscope.io.axes import default_axes, validate_axes
from deepscope.nets.unet import UNetConfig, fuse_batchnorm
from deepscope.predict.backends import (
    BatchFn,
    choose_backend,
    onnx_fn,
    onnxruntime_available,
    torch_fn,
    use_int8,
)
from deepscope.predict.external import ExternalRunner
from deepscope.predict.runtime_choice import fastest_runtime
from deepscope.predict.stitch import Block, predict_blockwise
from deepscope.predict.tiling import balanced_tile, predict_tiled
from deepscope.progress import Progress, ProgressCallback, report
from deepscope.tasks.base import Result, Task


def with_flips(
    fn: Callable[[np.ndarray], np.ndarray],
    unflip: Callable[[np.ndarray, tuple[int, ...]], np.ndarray],
) -> Callable[[np.ndarray], np.ndarray]:
    """Test-time augmentation: average ``fn`` over the four flips of the last two axes.

    ``unflip(output, axes)`` brings the output of a flipped batch back to the unflipped
    image (:meth:`~deepscope.tasks.base.Task.unflip`: flows and ray distances turn too).
    """
    flips = ((), (-1,), (-2,), (-2, -1))

    def averaged(batch: np.ndarray) -> np.ndarray:
        total = fn(batch)
        for axes in flips[1:]:
            total += unflip(fn(np.ascontiguousarray(np.flip(batch, axes))), axes)
        return total / len(flips)

    return averaged


def channel_first_input(
    image: np.ndarray,
    axes: str | None,
    input_axes: str,
    ndim: int,
    in_channels: int,
    min_z: int = 2,
) -> np.ndarray:
    """A user image checked (non-empty, real numbers within float32's range, a volume of
    at least ``min_z`` z slices for a 3D model, the model's channel count) and reordered
    to ``(C, *spatial)``; ``axes`` default to the model's ``input_axes`` when the
    dimensions agree, else they are guessed from the shape. A boolean image becomes 0/1
    ``uint8``."""
    image = np.asarray(image)
    if image.size == 0:
        raise InputError(f"the image is empty (shape {image.shape}); give a non-empty image")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise InputError(f"the image has dtype {image.dtype}; give a numeric array")
    if np.issubdtype(image.dtype, np.complexfloating):
        raise InputError(
            f"the image has complex values (dtype {image.dtype}); give real numbers "
            "(the magnitude, say: numpy.abs(image))"
        )
    if axes is None and image.ndim == len(input_axes):
        axes = input_axes
    axes = validate_axes(axes, image.ndim) if axes else default_axes(image.shape)
    stack = [a for a in axes if a in "TZ" and image.shape[axes.index(a)] > 1]
    if ndim == 2 and stack:
        kind = "a time series" if stack == ["T"] else "a 3D stack"
        planes = image.shape[axes.index(stack[0])]
        channels = ""
        if len(stack) == 1 and "C" not in axes and planes == in_channels:
            channels = (
                f"; if its {planes} planes are the model's {planes} channels, pass axes "
                f"'{axes.replace(stack[0], 'C')}'"
            )
        elif axes == "ZYX" and in_channels > 1 and image.shape[-1] == in_channels:
            channels = (
                f"; if its last axis holds the model's {in_channels} channels, pass axes 'YXC'"
            )
        raise InputError(
            f"this model takes 2D images and the image is {kind} (axes {axes}, shape "
            f"{image.shape}); give one plane at a time (deepscope predict and count go "
            "through a time series T by T), or for a volume a 3D model (a 2D flows model "
            f"segments volumes slice by slice with deepscope predict or evaluate --slices3d)"
            f"{channels}"
        )
    x = to_channel_first(image, axes, ndim)
    if ndim == 3:
        check_depth(x.shape[1], axes, image.shape, min_z)
    if x.shape[0] != in_channels:
        fits = [i for i, n in enumerate(image.shape) if n == in_channels]
        others = axes.replace("C", "")
        hint = (
            f"; if its axis {fits[0]} (length {in_channels}) holds the channels, pass axes "
            f"'{others[: fits[0]]}C{others[fits[0] :]}'"
            if len(fits) == 1 and "C" in axes and len(axes) == image.ndim
            else ", or pass axes that say which is which"
        )
        raise InputError(
            f"the model expects {in_channels} channel(s) but the image has {x.shape[0]} "
            f"(read as axes {axes}, shape {image.shape}); give an image with the model's "
            f"channels{hint}"
        )
    if x.dtype == bool:
        return x.view(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        check_float32_range(x)
    return x


def check_depth(depth: int, axes: str, shape: tuple[int, ...], min_z: int = 2) -> None:
    """Raise a one-line :class:`InputError` unless an image with ``axes`` and ``shape``,
    read as a volume of ``depth`` z slices, has the ``min_z`` slices a 3D model needs.

    A 2D image (or a stack of one slice) would otherwise be padded along z and give
    empty results without a word.
    """
    if depth == 1:
        kind = "has a single z slice" if "Z" in axes else "is 2D"
        raise InputError(
            f"this model works on 3D volumes (ZYX) and the image {kind} (axes {axes}, "
            f"shape {shape}); give a volume of several z slices, or use a 2D model"
        )
    if depth < min_z:
        raise InputError(
            f"the volume has {depth} z slices (axes {axes}, shape {shape}) and this model "
            f"needs at least {min_z} (two planes of its output grid of {min_z // 2}); give "
            "a thicker volume, or use a 2D model on its slices"
        )


def predict_raw(
    fn: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    n_out: int,
    divisor: int,
    tile: int | None,
    overlap: int,
    batch_size: int = 1,
    progress: ProgressCallback | None = None,
    grid: int = 1,
) -> np.ndarray:
    """Raw network output ``(n_out, *spatial)`` for a normalised ``(C, *spatial)`` image;
    ``(n_out, *ceil(spatial / grid))`` for a network with an output grid.

    The image is first padded at its far ends to a multiple of ``divisor`` and every tile
    starts at a multiple of ``divisor``, so all tiles see the same pooling grid as a
    whole-image pass: tiled and whole-image outputs then differ only where a tile lacks
    context, which the overlap and blending take care of.
    """

    def on_tile(done: int, total: int) -> None:
        report(progress, Progress("predict", done, total, "tiles"))

    spatial = image.shape[1:]
    padded = tuple(math.ceil(s / divisor) * divisor for s in spatial)
    x = pad_to_shape(image, padded)
    tiles, overlaps = None, 0
    if tile is not None and any(s > tile for s in padded):
        step = divisor
        # a tile smaller than twice the overlap shrinks the overlap, never the other way
        tile = max(step, tile // step * step)
        overlap = min(math.ceil(overlap / step) * step, tile // 2 // step * step)
        tiles = balanced_tile(padded, tile, overlap, divisor)
        # an axis that fits in one tile has no neighbour to overlap with
        overlaps = tuple(min(overlap, t // 2 // step * step) for t in tiles)
    out = predict_tiled(
        fn,
        x,
        n_out,
        tile=tiles,
        overlap=overlaps,
        divisor=divisor,
        batch_size=batch_size,
        progress=on_tile,
        scale=grid,
    )
    return out[(slice(None), *(slice(0, -(-s // grid)) for s in spatial))]


class Predictor:
    """A network with its task and normalisation, applied to numpy images of any size.

    ``backend`` ``'torch'``, ``'onnx'`` (onnxruntime, CPU only) or ``'auto'``: onnxruntime on
    the CPU when ``cpu_backend``, the model's measured faster CPU runtime, says so and the
    arithmetic is float32 (see :func:`~deepscope.predict.backends.choose_backend`).
    ``net`` may also be an :class:`~deepscope.predict.external.ExternalRunner` (an imported
    network), which brings its own runtime. ``int8_network``: the package's int8 ONNX
    network, run instead of ``net`` where :func:`~deepscope.predict.backends.use_int8` says.
    ``runtime_key`` (a :func:`~deepscope.predict.runtime_choice.network_key`): with
    ``precision`` and ``backend`` both ``'auto'`` on the CPU, the runtime is the fastest of
    torch, onnxruntime float32 and the int8 network (where :func:`use_int8` allows it) as
    measured on this CPU (:func:`~deepscope.predict.runtime_choice.fastest_runtime`).
    """

    def __init__(
        self,
        net: torch.nn.Module | ExternalRunner,
        task: Task,
        normalization: Normalization,
        input_axes: str = "YX",
        device: str = "auto",
        precision: str = "float32",
        backend: str = "torch",
        cpu_backend: str = "torch",
        int8_network: bytes | None = None,
        runtime_key: str | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.config = net.config
        self.task = task
        self.normalization = normalization
        self.input_axes = input_axes
        self.int8 = use_int8(
            precision,
            backend,
            self.device,
            int8_network is not None,
            quantizable=isinstance(net.config, UNetConfig),
        )
        if isinstance(net, ExternalRunner):
            self.backend, self.fn = net.backend, net.fn
            return
        self.net = fuse_batchnorm(net).to(self.device)
        if self.device.type == "cpu" and net.config.ndim == 2:
            self.net = self.net.to(memory_format=torch.channels_last)
        if precision == backend == "auto" and self.device.type == "cpu" and runtime_key:
            runtime, self.fn = fastest_runtime(
                self.cpu_runtimes(int8_network if self.int8 else None),
                self.timing_batch(),
                runtime_key,
            )
            self.int8 = runtime == "int8"
            self.backend = "torch" if runtime == "torch" else "onnx"
        elif self.int8:
            self.backend, self.fn = "onnx", onnx_fn(int8_network)
        else:
            self.backend = choose_backend(backend, self.device, precision, cpu_backend)
            self.fn = (
                self.onnx_float()
                if self.backend == "onnx"
                else torch_fn(self.net, self.device, precision)
            )

    def onnx_float(self) -> BatchFn:
        """The network exported to ONNX, in an onnxruntime session (float32)."""
        from deepscope.nets.onnx import export_onnx

        return onnx_fn(export_onnx(self.net))

    def cpu_runtimes(self, int8_network: bytes | None) -> dict[str, Callable[[], BatchFn]]:
        """Builders of the CPU runtimes that ``auto`` chooses from: torch (bfloat16 where
        the CPU has it natively), onnxruntime float32 where installed, and the int8
        network when given."""
        runtimes = {"torch": lambda: torch_fn(self.net, self.device, "auto")}
        if onnxruntime_available():
            runtimes["onnx"] = self.onnx_float
        if int8_network is not None:
            runtimes["int8"] = lambda: onnx_fn(int8_network)
        return runtimes

    def timing_batch(self) -> np.ndarray:
        """The input the runtimes are timed on: one 1024² image (a 64×128² volume in 3D),
        rounded up to what the network accepts. Not smaller: at 512² and 768² torch in
        bfloat16 timed level with the int8 network of stardist-nuclei-fluo, which is 1.2x
        faster at 1024² and 1.6-1.7x end to end on 1104² (AMD Zen 4, 2026-12-07)."""
        unit = self.config.divisor
        sides = (1024, 1024) if self.ndim == 2 else (64, 128, 128)
        shape = [-(-s // unit) * unit for s in sides]
        return np.random.default_rng(0).random((1, self.config.in_channels, *shape), np.float32)

    @property
    def ndim(self) -> int:
        return self.config.ndim

    @property
    def spatial_axes(self) -> str:
        """``'YX'`` or ``'ZYX'``: the axes of label and class outputs."""
        return "YX" if self.ndim == 2 else "ZYX"

    @property
    def min_z(self) -> int:
        """The fewest z slices a volume needs for a 3D model: two planes of the output
        grid (one output plane per ``grid`` slices), and at least 2."""
        return 2 * getattr(self.config, "grid", 1)

    def channel_first(self, image: np.ndarray, axes: str | None = None) -> np.ndarray:
        """A user image as ``(C, *spatial)``; ``axes`` default to the model's input axes
        when the dimensions agree, else they are guessed from the shape. For a 3D model,
        an image that is not a volume of at least :attr:`min_z` z slices is refused."""
        image = np.asarray(image)
        if axes is None and image.ndim == len(self.input_axes):
            axes = self.input_axes
        axes = axes or default_axes(image.shape)
        x = to_channel_first(image, axes, self.ndim)
        if self.ndim == 3:
            check_depth(x.shape[1], axes, image.shape, self.min_z)
        return x

    def spatial_shape(self, image: np.ndarray, axes: str | None = None) -> tuple[int, ...]:
        """Spatial shape ``(Y, X)`` or ``(Z, Y, X)`` of a user image, as the model reads it
        (checked as :meth:`prepare` checks it: a volume for a 2D model, the channels ...)."""
        checked = channel_first_input(
            image, axes, self.input_axes, self.ndim, self.config.in_channels, self.min_z
        )
        return checked.shape[1:]

    def prepare(self, image: np.ndarray, axes: str | None = None) -> np.ndarray:
        """Validate, reorder and normalise a user image to ``(C, *spatial)`` float32."""
        x = channel_first_input(
            image, axes, self.input_axes, self.ndim, self.config.in_channels, self.min_z
        )
        smallest = getattr(self.config, "min_size", 1)
        if min(x.shape[1:]) < smallest:
            raise InputError(
                f"the image ({x.shape[1:]}) is smaller than this model's smallest input "
                f"({smallest} pixels a side); pad it or give a larger image"
            )
        return normalize(x, self.normalization)

    def raw(
        self,
        image: np.ndarray,
        axes: str | None = None,
        tile: int | None = 512,
        overlap: int = 48,
        batch_size: int = 1,
        progress: ProgressCallback | None = None,
        tta: bool = False,
    ) -> np.ndarray:
        """Raw network output ``(K, *spatial)`` for one user image (``tta``: flip-averaged);
        ``(K, *ceil(spatial / grid))`` for a network with an output grid."""
        return self._run(self.prepare(image, axes), tile, overlap, batch_size, progress, tta)

    def in_input_units(
        self, result: Result, image: np.ndarray, normalization: Normalization | None = None
    ) -> Result:
        """A restored ``result`` mapped from normalised units back to the intensities of
        the channel-first ``image`` it came from (see :func:`denormalize`), which was
        normalised with ``normalization`` (default: the model's)."""
        settings = normalization or self.normalization

        def back(array: np.ndarray | None, shift: bool) -> np.ndarray | None:
            if array is None:
                return None
            squeezed = array.ndim == self.ndim
            out = denormalize(array[None] if squeezed else array, image, settings, shift)
            return out[0] if squeezed else out

        result.image = back(result.image, True)
        result.uncertainty = back(result.uncertainty, False)
        return result

    def _run(self, x, tile, overlap, batch_size, progress, tta) -> np.ndarray:
        return predict_raw(
            with_flips(self.fn, self.task.unflip) if tta else self.fn,
            x,
            self.task.out_channels,
            self.config.divisor,
            tile,
            overlap,
            batch_size,
            progress,
            self.config.grid,
        )

    def pixel_result(
        self,
        x: np.ndarray,
        image: np.ndarray,
        normalization: Normalization,
        tile: int | None = None,
        overlap: int = 0,
        batch_size: int = 1,
        progress: ProgressCallback | None = None,
        tta: bool = False,
    ) -> Result:
        """The task's per-pixel result for the normalised ``(C, *spatial)`` image ``x``, one
        network pass over tiles of ``tile`` with ``overlap`` (no object stitching);
        restored images are mapped back to the units of ``image``, the channel-first
        image that ``normalization`` turned into ``x``."""
        output = self._run(x, tile, overlap, batch_size, progress, tta)
        result = self.task.postprocess(output, x.shape[1:])
        if self.task.target_is_image:
            result = self.task.combine_with_input(result, x)
            result = self.in_input_units(result, image, normalization)
        return result

    def block_objects(self, window: np.ndarray, block: Block, batch_size: int, tta: bool):
        """The objects a block owns (:meth:`Task.block_objects`), from the normalised
        ``(C, *read)`` pixels of its read window, predicted whole."""
        return self.task.block_objects(self._run(window, None, 0, batch_size, None, tta), block)

    def predict(
        self,
        image: np.ndarray,
        axes: str | None = None,
        tile: int | None = 512,
        overlap: int = 48,
        batch_size: int = 1,
        progress: ProgressCallback | None = None,
        tta: bool = False,
    ) -> Result:
        """Apply the model to one image and post-process with the task.

        For tasks that predict objects (``stardist``, ``flows``, ``semantic`` with instances),
        an image larger than ``tile`` is
        predicted block by block with ``overlap`` pixels of context and stitched at the
        object level (:mod:`deepscope.predict.stitch`): memory stays bounded by the tile.
        """
        x = self.prepare(image, axes)
        shape = x.shape[1:]
        if not (self.task.predicts_objects and tile is not None and max(shape) > tile):
            original = self.channel_first(image, axes) if self.task.target_is_image else x
            return self.pixel_result(
                x, original, self.normalization, tile, overlap, batch_size, progress, tta
            )

        def block_objects(block: Block):
            return self.block_objects(x[(slice(None), *block.read)], block, batch_size, tta)

        return predict_blockwise(
            block_objects,
            lambda parts: self.task.merge_objects(parts, shape),
            shape,
            tile,
            overlap,
            self.config.divisor,
            progress,
        )
