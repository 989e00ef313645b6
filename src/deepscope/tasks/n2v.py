"""Task ``n2v``: self-supervised denoising from noisy images alone (Noise2Void, Krull et
al. 2019), with the N2V2 options (Höck et al. 2022) and structN2V masks (Broaddus et al. 2020).

Two ways to keep the network from copying the pixel it predicts. ``masking`` (default):
each training patch gets blind spots (:mod:`deepscope.data.blindspot`); the loss is the
squared error at those pixels only, between the network's prediction and the pixels'
original noisy values. Because noise is independent per pixel, the best the network can
do is predict the clean value. ``blind_spot_network`` (2D): the network itself never sees
the centre pixel (:mod:`deepscope.nets.blindspot`), so the loss covers every pixel; after
prediction the noisy pixel is blended back in where the prediction is unsure
(:mod:`deepscope.classical.noise`). On the command line:
``--set task_params.method=blind_spot_network``.

N2V2 against checkerboard artefacts: replace blind spots by the neighbourhood median
(``replacement: median``) and use a U-Net with anti-aliased down-sampling and no
full-resolution skip connection (``network.pool: blurmax``, ``network.top_skip: false``; on
the command line ``--set task_params.replacement=median --set network.pool=blurmax --set
network.top_skip=false``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, model_validator

from deepscope.classical.noise import blend_with_noisy, noise_sigma_map
from deepscope.data.blindspot import mask_batch
from deepscope.tasks.base import Result
from deepscope.tasks.restoration import RestorationParams, RestorationTask


class N2VParams(RestorationParams):
    method: Literal["masking", "blind_spot_network"] = Field(
        "masking",
        description="masking: replace a few pixels per patch and train on those (N2V); "
        "blind_spot_network: a 2D network that never sees the pixel it predicts, trained "
        "on every pixel (Laine et al. 2019)",
    )
    loss: Literal["mae", "mse"] = Field("mse", description="pixel loss at the blind spots")
    masked_fraction: float = Field(
        0.002, gt=0, le=0.2, description="fraction of pixels made blind spots per patch"
    )
    radius: int = Field(2, ge=1, le=5, description="neighbourhood radius for replacement")
    replacement: Literal["uniform", "median"] = Field(
        "uniform", description="random neighbour (N2V) or neighbourhood median (N2V2)"
    )
    blend: bool = Field(
        True,
        description="blind_spot_network only: blend each prediction with its noisy pixel "
        "where the prediction is unsure (Laine et al. 2019; noise level estimated from each "
        "image, growing linearly in variance with the signal)",
    )
    blend_window: int = Field(15, ge=1, description="window (pixels) of the blend's estimate")
    struct_axis: int = Field(-1, description="structN2V: spatial axis of the mask (-1 = X)")
    struct_length: int = Field(
        0, ge=0, description="structN2V: pixels masked along struct_axis (0 = off, odd)"
    )

    @model_validator(mode="after")
    def _struct_needs_masking(self) -> N2VParams:
        if self.method == "blind_spot_network" and self.struct_length > 1:
            raise ValueError(
                "structN2V masks need method 'masking' (the blind-spot network hides only "
                "the centre pixel); set task_params.struct_length=0 or method=masking"
            )
        return self


class N2VTask(RestorationTask):
    name: ClassVar[str] = "n2v"
    Params: ClassVar[type[BaseModel]] = N2VParams
    self_supervised: ClassVar[bool] = True

    @property
    def blind_spot_network(self) -> bool:
        return self.params.method == "blind_spot_network"

    @property
    def val_patches(self) -> int:  # type: ignore[override]
        """1024 for masking, whose loss sees only the blind spots (0.2 % of the pixels: 64
        patches of 64² hold about 500 noisy ones, too few to rank the epochs; see
        docs/benchmarks.md, FMD); 64 for the blind-spot network, whose loss sees every pixel."""
        return 64 if self.blind_spot_network else 1024

    def prepare_batch(
        self, images: np.ndarray, targets: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Blind-spot masked images, and targets ``(B, 2C, ...)``: the original values
        then the mask of blind spots (every pixel, unmasked, for the blind-spot network)."""
        p = self.params
        if self.blind_spot_network:
            return images, np.concatenate([targets, np.ones_like(targets)], axis=1)
        struct = (p.struct_axis, p.struct_length) if p.struct_length > 1 else None
        masked, mask = mask_batch(images, rng, p.masked_fraction, p.radius, p.replacement, struct)
        return masked, np.concatenate([targets, mask], axis=1)

    def combine_with_input(self, result: Result, image: np.ndarray) -> Result:
        """With the blind-spot network and ``blend``: each channel of the prediction blended
        with the noisy input (:func:`deepscope.classical.noise.blend_with_noisy`)."""
        if not (self.blind_spot_network and self.params.blend):
            return result
        single = result.image.ndim < image.ndim
        predictions = result.image[None] if single else result.image
        blended = np.stack(
            [
                blend_with_noisy(p, y, noise_sigma_map(y, p), self.params.blend_window)
                for p, y in zip(predictions, image, strict=True)
            ]
        )
        result.image = blended[0] if single else blended
        return result

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        c = self.params.channels
        values, mask = target[:, :c], target[:, c:]
        error = output - values
        error = error.abs() if self.params.loss == "mae" else error.square()
        return (error * mask).sum() / mask.sum().clamp(min=1)
