"""Supervised image restoration: ``care`` (Weigert et al. 2018), ``n2n`` (Lehtinen et al.
2018) and ``labelfree`` (Ounkomol et al. 2018).

All three learn ``input -> target`` from pairs of images with the same file stem and differ
only in what the pairs are and in their defaults:

* ``care``: a low-quality acquisition and a high-quality one of the same field (more light,
  longer exposure, average of many frames). Optional probabilistic output: the network then
  predicts, per pixel, the centre and scale of a Laplace distribution, and ``predict`` gives
  the centre as the image and the scale as a per-pixel uncertainty map.
* ``n2n``: two independent noisy acquisitions of the same field; the network learns the
  expected value, i.e. the clean image, without ever seeing one. The MSE loss is the one
  whose minimiser is that expectation.
* ``labelfree``: a transmitted-light image and a fluorescence image of the same cells.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch.nn import functional as F

from deepscope.tasks.base import Result
from deepscope.tasks.restoration import RestorationParams, RestorationTask


class CareParams(RestorationParams):
    probabilistic: bool = Field(
        False, description="predict a Laplace scale per pixel too (an uncertainty map)"
    )


class CareTask(RestorationTask):
    name: ClassVar[str] = "care"
    Params: ClassVar[type[BaseModel]] = CareParams

    @property
    def out_channels(self) -> int:
        return self.params.channels * (2 if self.params.probabilistic else 1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not self.params.probabilistic:
            return super().loss(output, target)
        centre, scale = laplace_parameters(output, self.params.channels)
        return ((centre - target).abs() / scale + scale.log()).mean()

    def postprocess(self, output: np.ndarray, shape: tuple[int, ...] | None = None) -> Result:
        if not self.params.probabilistic:
            return super().postprocess(output, shape)
        centre, scale = laplace_parameters(torch.from_numpy(output[None]), self.params.channels)
        result = super().postprocess(centre[0].numpy(), shape)
        result.uncertainty = super().postprocess(scale[0].numpy(), shape).image
        return result


def laplace_parameters(output: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and (positive) scale of the per-pixel Laplace distributions in ``output``
    ``(B, 2C, ...)``: the first ``C`` channels are centres, the next ``C`` raw scales."""
    return output[:, :channels], F.softplus(output[:, channels:]) + 1e-3


class N2NParams(RestorationParams):
    loss: Literal["mae", "mse"] = Field("mse", description="MSE: its minimiser is the mean")
    target_normalization: Literal["own", "input"] = Field(
        "input", description="both acquisitions share one intensity scale"
    )


class N2NTask(RestorationTask):
    name: ClassVar[str] = "n2n"
    Params: ClassVar[type[BaseModel]] = N2NParams


class LabelFreeParams(RestorationParams):
    loss: Literal["mae", "mse"] = Field("mse", description="pixel loss (fnet uses MSE)")


class LabelFreeTask(RestorationTask):
    name: ClassVar[str] = "labelfree"
    Params: ClassVar[type[BaseModel]] = LabelFreeParams
