"""Task ``n2v``: self-supervised denoising from noisy images alone (Noise2Void, Krull et
al. 2019), with the N2V2 options (Höck et al. 2022) and structN2V masks (Broaddus et al. 2020).

Each training patch gets blind spots (:mod:`deepscope.data.blindspot`); the loss is the
squared error at those pixels only, between the network's prediction and the pixels'
original noisy values. Because noise is independent per pixel, the best the network can
do is predict the clean value. N2V2 against checkerboard artefacts: replace blind spots by
the neighbourhood median (``replacement: median``) and use a U-Net with anti-aliased
down-sampling and no full-resolution skip connection (``network.pool: blurmax``,
``network.top_skip: false``; on the command line ``--set task_params.replacement=median
--set network.pool=blurmax --set network.top_skip=false``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field

from deepscope.data.blindspot import mask_batch
from deepscope.tasks.restoration import RestorationParams, RestorationTask


class N2VParams(RestorationParams):
    loss: Literal["mae", "mse"] = Field("mse", description="pixel loss at the blind spots")
    masked_fraction: float = Field(
        0.002, gt=0, le=0.2, description="fraction of pixels made blind spots per patch"
    )
    radius: int = Field(2, ge=1, le=5, description="neighbourhood radius for replacement")
    replacement: Literal["uniform", "median"] = Field(
        "uniform", description="random neighbour (N2V) or neighbourhood median (N2V2)"
    )
    struct_axis: int = Field(-1, description="structN2V: spatial axis of the mask (-1 = X)")
    struct_length: int = Field(
        0, ge=0, description="structN2V: pixels masked along struct_axis (0 = off, odd)"
    )


class N2VTask(RestorationTask):
    name: ClassVar[str] = "n2v"
    Params: ClassVar[type[BaseModel]] = N2VParams
    self_supervised: ClassVar[bool] = True

    def prepare_batch(
        self, images: np.ndarray, targets: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Blind-spot masked images, and targets ``(B, 2C, ...)``: the original values
        then the mask of blind spots."""
        p = self.params
        struct = (p.struct_axis, p.struct_length) if p.struct_length > 1 else None
        masked, mask = mask_batch(images, rng, p.masked_fraction, p.radius, p.replacement, struct)
        return masked, np.concatenate([targets, mask], axis=1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        c = self.params.channels
        values, mask = target[:, :c], target[:, c:]
        error = output - values
        error = error.abs() if self.params.loss == "mae" else error.square()
        return (error * mask).sum() / mask.sum().clamp(min=1)
