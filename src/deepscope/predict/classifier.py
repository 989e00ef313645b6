"""Apply a crop classifier: layout, normalisation, crop size, batched network, class
probabilities."""

from __future__ import annotations

import numpy as np
import torch

from deepscope.data.crops import fit_crop
from deepscope.data.normalize import Normalization, normalize
from deepscope.devices import resolve_device
from deepscope.nets.classifier import CropClassifier
from deepscope.nets.unet import fuse_batchnorm
from deepscope.predict.backends import choose_backend, onnx_fn, torch_fn
from deepscope.predict.predictor import channel_first_input
from deepscope.progress import ProgressCallback
from deepscope.tasks.base import Result, Task

#: the eight flips and 90 degree rotations of a square crop, as (k rot90, flip) pairs
SQUARE_SYMMETRIES = [(k, flip) for flip in (False, True) for k in range(4)]


class CropPredictor:
    """A crop classifier with its task and normalisation, applied to crops of any size
    (each is centre-cropped or zero-padded to the task's ``crop_size``)."""

    spatial_axes = "YX"
    ndim = 2

    def __init__(
        self,
        net: CropClassifier,
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
        self.net = fuse_batchnorm(net).to(self.device).eval()
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

    def logits(self, crops: np.ndarray, batch_size: int = 256, tta: bool = False) -> np.ndarray:
        """Logits ``(N, K)`` of prepared crops ``(N, C, S, S)``; ``tta`` averages the
        softmax over the eight flips and rotations and returns its log."""
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
        k = self.task.out_channels
        return np.concatenate(out) if out else np.zeros((0, k), np.float32)

    def classify_crops(
        self, crops: np.ndarray, batch_size: int = 256, tta: bool = False
    ) -> list[Result]:
        """One result per prepared crop ``(N, C, S, S)``."""
        return [self.task.postprocess(row) for row in self.logits(crops, batch_size, tta)]

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
        """Logits ``(K,)`` of one crop (tiling settings do not apply to crops)."""
        return self.logits(self.prepare(image, axes)[None], tta=tta)[0]

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
        """Class and class probabilities of one crop."""
        return self.task.postprocess(self.raw(image, axes, tta=tta))
