"""Task ``autoencoder``: learn numerical features of cell objects from their pixels (the
Deep Learning Module of CellCognition Explorer; Sommer et al. 2017).

A (denoising) convolutional autoencoder reconstructs crops around objects, most often from
negative-control positions; its code layer gives the features that ``deepscope encode``
writes and ``deepscope explore`` compares with the controls. The knobs and their advised
ranges are the module's: AdaGrad or SGD with Nesterov momentum, learning rate 0.01-0.1,
momentum 0.5-0.9 (Nesterov only), mini-batch size 32-256, input corruption level 0-0.3,
64-1000 epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn import functional as F

from deepscope.tasks.base import Result, Task

#: the Deep Learning Module's advice, applied where a run does not say otherwise
AUTOENCODER_DEFAULTS = {
    "optimizer": "adagrad",
    "learning_rate": 0.05,
    "batch_size": 128,
    "epochs": 64,
    "steps_per_epoch": 10,
}


class AutoencoderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    crop_size: int = Field(48, ge=4, description="the approximate object size in pixels")
    architecture: str = Field(
        "c16.5r_p2_c32.3r_p2_d256.1r",
        description="encoder layers: cF.Sa conv, pK max-pool, dN.Da dense (see nets.autoencoder)",
    )
    latent: int = Field(32, ge=1, description="number of learned features")
    corruption: float = Field(
        0.1, ge=0, le=0.5, description="fraction of input pixels set to zero (0-0.3 advised)"
    )


def corrupt(images: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Masking noise: every pixel (all channels together) is set to zero with probability
    ``level``; a denoising autoencoder learns to fill it back in."""
    if level <= 0:
        return images
    keep = rng.random((images.shape[0], 1, *images.shape[2:])) >= level
    return (images * keep).astype(np.float32)


class AutoencoderTask(Task):
    name = "autoencoder"
    Params = AutoencoderParams
    output_kind = "features"
    architecture = "autoencoder"
    self_supervised = True
    train_defaults: ClassVar[dict] = AUTOENCODER_DEFAULTS

    @property
    def out_channels(self) -> int:
        return 1  # the network reconstructs its input channels; see AutoencoderConfig

    def make_target(self, mask: np.ndarray) -> np.ndarray:
        return np.asarray(mask, np.float32)

    def prepare_batch(
        self, images: np.ndarray, targets: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Corrupted crops in, the clean crops as the target."""
        return corrupt(images, self.params.corruption, rng), images

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output, target)

    def postprocess(self, output: np.ndarray, shape: tuple[int, ...] | None = None) -> Result:
        """The learned features ``(latent,)`` of one crop."""
        return Result(features=np.asarray(output, np.float32))

    def evaluate(
        self,
        results: Sequence[Result],
        truths: Sequence[np.ndarray],
        names: Sequence[str] | None = None,
    ) -> dict:
        """Features have no ground truth; the trainer reports the reconstruction error."""
        raise NotImplementedError("autoencoder features have no ground truth to score")
