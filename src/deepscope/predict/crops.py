"""Apply a network to whole cell crops: layout, normalisation, crop size, batched network.

Classifiers give class probabilities per crop; autoencoders give their learned features
(the encoder alone runs)."""

from __future__ import annotations

import numpy as np
import torch

from deepscope.data.crops import fit_crop
from deepscope.data.normalize import Normalization, normalize
from deepscope.devices import resolve_device
from deepscope.errors import ConfigError
from deepscope.nets.autoencoder import CropAutoencoder
from deepscope.nets.classifier import CropClassifier
from deepscope.nets.unet import fuse_batchnorm
from deepscope.predict.backends import choose_backend, onnx_fn, torch_fn
from deepscope.predict.predictor import channel_first_input
from deepscope.progress import ProgressCallback
from deepscope.tasks.base import Result, Task

#: the eight flips and 90 degree rotations of a square crop, as (k rot90, flip) pairs
SQUARE_SYMMETRIES = [(k, flip) for flip in (False, True) for k in range(4)]


class EncoderOnly(torch.nn.Module):
    """The encoder half of an autoencoder as a network of its own (features out)."""

    def __init__(self, autoencoder: CropAutoencoder) -> None:
        super().__init__()
        self.config = autoencoder.config
        self.encoder = autoencoder.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CropPredictor:
    """A crop network (classifier or autoencoder) with its task and normalisation, applied
    to crops of any size (each is centre-cropped or zero-padded to ``crop_size``)."""

    spatial_axes = "YX"
    ndim = 2

    def __init__(
        self,
        net: CropClassifier | CropAutoencoder,
        task: Task,
        normalization: Normalization,
        input_axes: str = "YX",
        device: str = "auto",
        precision: str = "float32",
        backend: str = "torch",
    ) -> None:
        self.device = resolve_device(device)
        self.config = net.config
        self.task = task
        self.normalization = normalization
        self.input_axes = input_axes
        if isinstance(net, CropAutoencoder):
            net = EncoderOnly(net)
        self.net = fuse_batchnorm(net).to(self.device).eval()
        if precision == "int8":  # models quantize makes int8 networks of U-Nets only
            raise ConfigError(
                "crop classifiers and autoencoders have no int8 network (quantizing is for "
                "segmentation and restoration models); choose --precision float32 or auto"
            )
        self.backend = choose_backend(backend, self.device, precision, "torch")
        if self.backend == "onnx":
            from deepscope.nets.onnx import export_onnx

            self.fn = onnx_fn(export_onnx(self.net))
        else:
            self.fn = torch_fn(self.net, self.device, precision)

    @property
    def crop_size(self) -> int:
        return self.task.params.crop_size

    def channel_first(self, image: np.ndarray, axes: str | None = None) -> np.ndarray:
        """A user crop as ``(C, Y, X)``, unnormalised."""
        return channel_first_input(image, axes, self.input_axes, 2, self.config.in_channels)

    def prepare(self, image: np.ndarray, axes: str | None = None) -> np.ndarray:
        """Validate, reorder, normalise and size one crop to ``(C, S, S)`` float32."""
        x = self.channel_first(image, axes)
        return fit_crop(normalize(x, self.normalization), self.crop_size)

    def outputs(self, crops: np.ndarray, batch_size: int = 256, tta: bool = False) -> np.ndarray:
        """Network outputs ``(N, K)`` of prepared crops ``(N, C, S, S)``: logits of a
        classifier (``tta`` averages the softmax over the eight flips and rotations and
        returns its log), features of an autoencoder (``tta`` does not apply)."""
        tta = tta and self.task.output_kind == "class"
        out = []
        for start in range(0, len(crops), batch_size):
            batch = np.ascontiguousarray(crops[start : start + batch_size], np.float32)
            if not tta:
                out.append(self.fn(batch))
                continue
            prob = 0.0
            for k, flip in SQUARE_SYMMETRIES:
                view = np.rot90(batch, k, axes=(-2, -1))
                view = np.flip(view, -1) if flip else view
                logit = torch.from_numpy(self.fn(np.ascontiguousarray(view)))
                prob = prob + torch.softmax(logit, 1)
            out.append(torch.log(prob / len(SQUARE_SYMMETRIES)).numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def results(self, crops: np.ndarray, batch_size: int = 256, tta: bool = False) -> list[Result]:
        """One result per prepared crop ``(N, C, S, S)``."""
        return [self.task.postprocess(row) for row in self.outputs(crops, batch_size, tta)]

    def raw(
        self,
        image: np.ndarray,
        axes: str | None = None,
        tile: int | None = None,
        overlap: int = 0,
        batch_size: int = 1,
        progress: ProgressCallback | None = None,
        tta: bool = False,
    ) -> np.ndarray:
        """Output ``(K,)`` of one crop (tiling settings do not apply to crops)."""
        return self.outputs(self.prepare(image, axes)[None], tta=tta)[0]

    def predict(
        self,
        image: np.ndarray,
        axes: str | None = None,
        tile: int | None = None,
        overlap: int = 0,
        batch_size: int = 1,
        progress: ProgressCallback | None = None,
        tta: bool = False,
    ) -> Result:
        """Class and class probabilities (classifier) or features (autoencoder) of one crop."""
        return self.task.postprocess(self.raw(image, axes, tta=tta))
