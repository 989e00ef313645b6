"""Task ``image``: the network's output is the result, an image (``<stem>_pred.tif``).

Used for models imported from bioimage.io, whose output we do not interpret: their
post-processing steps are applied and the output is written as it is. Such models are not
trained or scored by deepscope.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from deepscope.errors import ConfigError
from deepscope.tasks.base import Result, Task


class ImageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out_channels: int = Field(1, ge=1)
    postprocessing: list[dict[str, Any]] = Field(
        default_factory=list, description="bioimage.io steps ({id, kwargs}) on the output"
    )


class ImageTask(Task):
    name: ClassVar[str] = "image"
    Params: ClassVar[type[BaseModel]] = ImageParams
    output_kind: ClassVar[str] = "image"
    architecture: ClassVar[str] = "external"

    @property
    def out_channels(self) -> int:
        return self.params.out_channels

    def make_target(self, mask: np.ndarray) -> np.ndarray:
        raise ConfigError("task 'image' serves imported models; deepscope cannot train it")

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise ConfigError("task 'image' serves imported models; deepscope cannot train it")

    def postprocess(self, output: np.ndarray, shape: tuple[int, ...] | None = None) -> Result:
        from deepscope.data.bioimageio_ops import apply_steps

        image = apply_steps(output, self.params.postprocessing)
        return Result(image=image[0] if image.shape[0] == 1 else image)

    def evaluate(self, results, truths, names=None) -> dict:
        raise ConfigError(
            "task 'image' has no metrics yet; compare its _pred.tif outputs with your own tools"
        )
