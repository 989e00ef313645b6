"""A loaded model: its package spec, its network and its task, ready to predict."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np

from deepscope.data.layout import channel_first_axes
from deepscope.devices import resolve_device
from deepscope.errors import ConfigError, InputError, ModelError
from deepscope.io.axes import in_spatial_order
from deepscope.nets import AutoencoderConfig, ClassifierConfig, build_network
from deepscope.predict.crops import CropPredictor
from deepscope.predict.external import ExternalRunner
from deepscope.predict.predictor import Predictor, channel_first_input
from deepscope.predict.rescale import check_diameter, predict_at_diameter
from deepscope.predict.runtime_choice import network_key
from deepscope.predict.slices3d import predict_by_slices
from deepscope.progress import ProgressCallback
from deepscope.spec import (
    ExternalNetwork,
    ModelSpec,
    read_int8_network,
    read_spec,
    read_weights,
)
from deepscope.tasks import Result, get_task
from deepscope.tasks.base import PIXEL_FIELDS
from deepscope.zoo.registry import resolve_model


def runtime_key(spec: ModelSpec) -> str:
    """The key under which this model's CPU runtime choice is remembered
    (:func:`~deepscope.predict.runtime_choice.network_key`)."""
    return network_key(spec.network.model_dump(), spec.int8.sha256 if spec.int8 else None)


def in_caller_order(result: Result, axes: str, ndim: int) -> Result:
    """``result`` of an image predicted with its spatial axes in ``Z, Y, X`` order, with the
    ``ndim`` spatial axes of its pixel arrays (the last ones) put in the order of ``axes``."""
    predicted = "ZYX"[-ndim:]  # a 2D model dropped a Z of one plane
    wanted = [a for a in axes if a in predicted]
    fields = {}
    for name in PIXEL_FIELDS:
        array = getattr(result, name)
        if array is not None and array.ndim >= ndim:  # not a crop classifier's (K,) scores
            lead = array.ndim - ndim
            order = [*range(lead), *(lead + predicted.index(a) for a in wanted)]
            fields[name] = array.transpose(order)
    return dataclasses.replace(result, **fields)


class Model:
    """A model package loaded for prediction.

    Examples
    --------
    >>> m = load_model("unet-nuclei-fluo")            # doctest: +SKIP
    >>> r = m.predict(image)                           # doctest: +SKIP
    >>> r.labels.shape == image.shape                  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        spec: ModelSpec,
        folder: Path,
        source: str,
        device: str = "auto",
        precision: str | None = None,
        backend: str = "auto",
    ) -> None:
        self.spec = spec
        self.folder = folder
        self.source = source
        self.task = get_task(spec.task, spec.task_params)
        if isinstance(spec.network, ExternalNetwork):
            net = ExternalRunner(folder, spec.network, resolve_device(device))
        else:
            net = build_network(spec.network)
            try:
                net.load_state_dict(read_weights(folder, spec))
            except RuntimeError as err:
                raise ModelError(
                    f"the weights of '{folder}' do not fit its network settings "
                    f"({str(err).splitlines()[0]})"
                ) from None
        precision = spec.prediction.precision if precision is None else precision
        int8 = read_int8_network(folder, spec)  # checked at every load, used or not
        if isinstance(spec.network, ClassifierConfig | AutoencoderConfig):
            self.predictor = CropPredictor(
                net, self.task, spec.normalization, spec.input_axes, device, precision, backend
            )
            return
        self.predictor = Predictor(
            net,
            self.task,
            spec.normalization,
            spec.input_axes,
            device,
            precision,
            backend,
            spec.prediction.cpu_backend,
            int8 if precision in ("int8", "auto") else None,
            runtime_key(spec),
        )

    @property
    def name(self) -> str:
        return self.spec.name

    def predict(
        self,
        image: np.ndarray,
        axes: str | None = None,
        tile: int | None = -1,
        overlap: int | None = None,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
        tta: bool | None = None,
        diameter: float | str | None = None,
        slices3d: bool = False,
        anisotropy: float | None = None,
    ) -> Result:
        """Apply the model to one image.

        Parameters
        ----------
        image : numpy array, e.g. ``(Y, X)`` grey or ``(Y, X, C)``.
        axes : axes of ``image`` (``"YX"``, ``"YXC"``, ``"CYX"``, ``"ZYX"``...); default from
            the model's input axes when the dimensions agree, else from the shape.
        tile : tile edge in pixels; ``None`` or 0 = whole image at once; default from the model.
        overlap, batch_size : tiling settings; default from the model.
        tta : average over flips (test-time augmentation); default from the model.
        diameter : the size model. ``None``: the image as it is. A number: the typical
            object diameter in the image, in pixels; the image is zoomed so that its
            objects have the model's training diameter (``spec.object_diameter``), and
            the result is brought back to the image's shape. ``'auto'``: the diameter is
            estimated from the objects of a first pass (see
            :func:`deepscope.predict.rescale.predict_at_diameter`).
        slices3d : segment a 3D volume (``image`` with a Z axis) with a 2D flows model: the
            model is run on every XY, XZ and YZ slice, the flows are combined into a 3D
            field and reconstructed in 3D (:func:`deepscope.flows.slices.volume_output`).
            With a ``diameter`` (in XY pixels) the whole volume is zoomed alike.
        anisotropy : with ``slices3d``, the volume's z step over its xy pixel size (e.g.
            2.2); the volume is stretched along Z by it before slicing. Default 1.

        Returns
        -------
        Result with ``labels`` (segmentation), ``probabilities`` and ``classes``; with a
        ``diameter``, also the ``diameter`` used and the ``scale`` applied. Its spatial
        axes are in the order of ``axes`` (an image given as ``'XY'`` gets ``XY`` labels;
        channels, as in ``probabilities``, come first).
        """
        if axes is not None:
            data, ordered = in_spatial_order(np.asarray(image), axes)
            if ordered != axes.upper():  # e.g. 'XY': predicted as YX, returned as XY
                result = self.predict(
                    data,
                    ordered,
                    tile,
                    overlap,
                    batch_size,
                    progress,
                    tta,
                    diameter,
                    slices3d,
                    anisotropy,
                )
                ndim = 3 if slices3d else self.spec.network.ndim
                return in_caller_order(result, axes.upper(), ndim)
        settings = self.prediction_settings(tile, overlap, batch_size, tta)
        if slices3d or anisotropy is not None:
            self.check_slices3d(anisotropy, slices3d)
            return predict_by_slices(
                self.predictor,
                self.spec,
                image,
                axes,
                anisotropy,
                settings,
                progress,
                self.check_diameter(diameter),
            )
        if self.check_diameter(diameter) is None:
            return self.predictor.predict(image, axes, progress=progress, **settings)
        ndim = self.spec.network.ndim
        x = channel_first_input(
            image, axes, self.spec.input_axes, ndim, self.spec.network.in_channels
        )
        layout = channel_first_axes(ndim)

        def at_shape(scaled: np.ndarray) -> Result:
            return self.predictor.predict(scaled, layout, progress=progress, **settings)

        return predict_at_diameter(at_shape, x, self.spec.object_diameter, diameter)

    def warn_if_other_voxels(self, pixel_size: dict | None, name: str) -> None:
        """Warn when this 3D model meets a volume whose recorded voxel shape (z step over
        xy pixel size, ``pixel_size`` by axis letter) differs by more than a quarter from
        the voxels it was trained on: its rays and receptive field then see nuclei squashed
        or stretched (stardist-nuclei-3d on a volume resampled to cubic voxels: AP@0.5
        0.57 → 0.07, silently)."""
        trained = {k.upper(): v for k, v in (self.spec.pixel_size or {}).items()}
        size = pixel_size or {}
        if self.spec.network.ndim != 3 or not all(k in trained and k in size for k in "ZX"):
            return
        wanted = float(trained["Z"]) / float(trained["X"])
        found = float(size["Z"]) / float(size["X"])
        if not 0.8 < found / wanted < 1.25:
            warnings.warn(
                f"{name}: its voxels are {found:.2f} times as deep as wide, and '{self.name}' "
                f"was trained on voxels {wanted:.2f} times as deep: resample the volume along "
                f"z by {found / wanted:.2f} (or train on volumes like it) for results you can "
                "trust",
                stacklevel=3,
            )

    def check_slices3d(self, anisotropy: float | None = None, slices3d: bool = True) -> None:
        """Raise a one-line :class:`~deepscope.errors.InputError` unless this model can
        segment volumes slice by slice (``slices3d``: a 2D flows model) with
        ``anisotropy`` (``None`` or a positive number)."""
        if not slices3d:
            if anisotropy is not None:
                raise InputError("anisotropy applies to slices3d only; add slices3d (--slices3d)")
            return
        if self.spec.task != "flows" or self.spec.network.ndim != 2:
            raise InputError(
                f"slices3d runs a 2D flows model on the slices of a volume; model "
                f"'{self.name}' is a {self.spec.network.ndim}D {self.spec.task} model: "
                "choose a 2D flows model (e.g. flows-nuclei-fluo) or drop slices3d"
            )
        if anisotropy is not None and not (math.isfinite(anisotropy) and anisotropy > 0):
            raise InputError(
                f"anisotropy must be a positive number (z step / xy pixel size), got {anisotropy}"
            )

    def check_diameter(self, diameter: float | str | None) -> float | str | None:
        """A ``diameter`` for :meth:`predict` checked (``None``, ``'auto'`` or a positive
        number within the zoom the size model allows); user errors raise
        :class:`~deepscope.errors.InputError` or, for a model that records no training
        diameter, :class:`~deepscope.errors.ModelError`."""
        if diameter is not None and isinstance(self.predictor, CropPredictor):
            raise ModelError(f"model '{self.name}' classifies crops; it takes no diameter")
        return check_diameter(diameter, self.spec.object_diameter, f"model '{self.name}'")

    def raw(
        self,
        image: np.ndarray,
        axes: str | None = None,
        tile: int | None = -1,
        overlap: int | None = None,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
        tta: bool | None = None,
    ) -> np.ndarray:
        """Raw network output ``(K, *spatial)`` before post-processing; arguments as
        :meth:`predict`."""
        settings = self.prediction_settings(tile, overlap, batch_size, tta)
        return self.predictor.raw(image, axes, progress=progress, **settings)

    def prediction_settings(self, tile, overlap, batch_size, tta) -> dict:
        """Prediction settings, the model's defaults where the caller gave none; ``tile``
        ``None`` or 0 (as on the command line): the whole image at once."""
        tile = None if tile == 0 else tile
        if tile is not None and tile != -1 and tile < 1:
            raise ConfigError(
                f"--tile must be a positive number of pixels (0: the whole image), got {tile}"
            )
        if overlap is not None and overlap < 0:
            raise ConfigError(f"--overlap must be 0 or more pixels, got {overlap}")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
        p = self.spec.prediction
        settings = {
            "tile": p.tile if tile == -1 else tile,
            "overlap": p.overlap if overlap is None else overlap,
            "batch_size": p.batch_size if batch_size is None else batch_size,
            "tta": p.tta if tta is None else tta,
        }
        if settings["tile"] and settings["tile"] < settings["overlap"]:
            given = "" if overlap is not None else " (the model's default)"
            raise ConfigError(
                f"--tile {settings['tile']} is smaller than the tile overlap, "
                f"{settings['overlap']} pixels{given}: each tile would compute more context "
                f"than image; use --tile {settings['overlap']} or more ({2 * settings['overlap']} "
                f"or more computes less context per pixel), or an --overlap below "
                f"{settings['tile']} (less context at the tile edges)"
            )
        if settings["tile"] and not settings["overlap"] and self.task.output_kind == "labels":
            raise ConfigError(
                "--overlap 0 cuts objects at tile borders and counts their pieces as objects; "
                f"give an overlap of at least the largest object (this model's default is "
                f"{p.overlap})"
            )
        return settings

    @property
    def backend(self) -> str:
        """The runtime in use: ``'torch'`` or ``'onnx'``."""
        return self.predictor.backend

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, task={self.spec.task!r}, source={self.source!r})"


def load_model(
    name_or_path: str | Path,
    device: str = "auto",
    precision: str | None = None,
    backend: str = "auto",
) -> Model:
    """Load a built-in model by name, a model from the user's library, or a package folder.

    ``precision`` of the network at prediction: ``'float32'``, ``'bfloat16'``, ``'int8'``
    (the package's int8 network, onnxruntime on the CPU; see :mod:`deepscope.zoo.quantize`)
    or ``'auto'`` (the int8 network on a CPU with 8-bit dot products where the package has
    one, else bfloat16 on CPUs with native support); default from the model package.
    ``backend``: ``'torch'``, ``'onnx'`` (onnxruntime on the CPU) or ``'auto'`` (the runtime
    measured faster for this model, onnxruntime only for float32 arithmetic on the CPU).
    """
    if precision not in (None, "float32", "bfloat16", "int8", "auto"):
        from deepscope.errors import ConfigError

        raise ConfigError(f"precision must be float32, bfloat16, int8 or auto, got '{precision}'")
    folder, source = resolve_model(name_or_path)
    return Model(read_spec(folder), folder, source, device, precision, backend)
