"""What the image-restoration tasks share: image targets, a pixel loss, image results and
restoration metrics (``care``, ``n2n``, ``labelfree`` in :mod:`deepscope.tasks.care`;
``n2v`` in :mod:`deepscope.tasks.n2v`).

Targets are percentile-normalised per image and channel, like the inputs. Predicted images
are mapped back to the intensity units of the input they came from (the predictor does this
for every task whose targets are images), and are scored with
:func:`deepscope.metrics.restoration.restoration_metrics`, which first makes prediction and
ground truth comparable (percentile-normalised target, affine fit of the prediction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from deepscope.data.normalize import percentile_normalize
from deepscope.errors import InputError
from deepscope.metrics.restoration import restoration_metrics
from deepscope.tasks.base import Result, Task

#: metrics that ``evaluate`` averages over images, in the order they are printed
RESTORATION_KEYS = ("psnr", "ssim", "nrmse", "mae", "snr", "pearson_r", "nrmse_notebook")


class RestorationParams(BaseModel):
    """Settings shared by the restoration tasks."""

    model_config = ConfigDict(extra="forbid")

    channels: int = Field(1, ge=1, description="channels of the target (and of the output)")
    loss: Literal["mae", "mse"] = Field("mae", description="pixel loss")
    target_normalization: Literal["own", "input"] = Field(
        "own",
        description="own: each target by its own percentiles (CSBDeep); input: by the "
        "percentiles of its input image, for pairs that share one intensity scale",
    )
    target_low: float = Field(1.0, ge=0, le=100, description="target percentile mapped to 0")
    target_high: float = Field(99.8, ge=0, le=100, description="target percentile mapped to 1")
    signal_level: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="favour training patches centred on signal: pixels where the target "
        "exceeds this fraction of its 99.8th percentile (the config's foreground_fraction of "
        "patches); 0 places every patch uniformly",
    )

    @model_validator(mode="after")
    def _low_below_high(self) -> RestorationParams:
        if self.target_low >= self.target_high:
            raise ValueError("target_low must be below target_high")
        return self


def per_image_metrics(
    results: Sequence[Result], truths: Sequence[np.ndarray], names: Sequence[str] | None = None
) -> list[dict]:
    """One row of restoration metrics per image (``name`` first); truths are
    ``(C, *spatial)`` and the metrics of several channels are averaged."""
    names = names or [f"image_{i}" for i in range(len(results))]
    rows = []
    for result, truth, name in zip(results, truths, names, strict=True):
        pred = np.asarray(result.image, dtype=np.float32).reshape(truth.shape)
        try:
            per_channel = [restoration_metrics(p, t) for p, t in zip(pred, truth, strict=True)]
        except InputError as err:
            raise InputError(f"{name}: {err}") from None
        rows.append(
            {
                "name": name,
                **{k: float(np.mean([m[k] for m in per_channel])) for k in per_channel[0]},
            }
        )
    return rows


class RestorationTask(Task):
    """Base of the image-to-image tasks: subclasses set ``name`` and may change defaults."""

    Params: ClassVar[type[BaseModel]] = RestorationParams
    output_kind: ClassVar[str] = "image"
    target_is_image: ClassVar[bool] = True

    @property
    def out_channels(self) -> int:
        return self.params.channels

    def make_target(
        self, mask: np.ndarray, input_bounds: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """A target image ``(C, *spatial)``, percentile-normalised per channel: by its own
        percentiles, or (``target_normalization: input``) with ``input_bounds``, the
        ``(low, high)`` values its input image was normalised with, so that the output maps
        back to the target's units exactly."""
        if mask.shape[0] != self.params.channels:
            what = "images" if self.self_supervised else "targets"  # n2v's targets: its images
            raise InputError(
                f"the {what} have {mask.shape[0]} channel(s) but task '{self.name}' is set up "
                f"for {self.params.channels}; set task_params.channels={mask.shape[0]}"
            )
        p = self.params
        if p.target_normalization == "input" and input_bounds is not None:
            lo, hi = input_bounds
            if lo.shape[0] != mask.shape[0]:
                raise InputError(
                    f"target_normalization 'input' needs inputs with the targets' "
                    f"{mask.shape[0]} channel(s), got {lo.shape[0]}; use 'own'"
                )
            return ((mask - lo) / np.maximum(hi - lo, 1e-6)).astype(np.float32)
        return percentile_normalize(mask, p.target_low, p.target_high)

    def foreground(self, target: np.ndarray) -> np.ndarray:
        """Pixels where the target is bright (``signal_level``), which patch sampling
        favours as CSBDeep and CAREamics do; none when ``signal_level`` is 0."""
        level = self.params.signal_level
        if level == 0:
            return np.zeros(target.shape[1:], bool)
        brightest = target.max(axis=0)
        return brightest > level * np.percentile(brightest, 99.8)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        error = output - target
        return error.abs().mean() if self.params.loss == "mae" else error.square().mean()

    def postprocess(self, output: np.ndarray, shape: tuple[int, ...] | None = None) -> Result:
        """The restored image: ``(*spatial)`` for one channel, else ``(C, *spatial)``."""
        image = output[0] if output.shape[0] == 1 else output
        return Result(image=np.ascontiguousarray(image, dtype=np.float32))

    def combine_with_input(self, result: Result, image: np.ndarray) -> Result:
        """``result`` refined with the normalised input ``(C, *spatial)`` it was predicted
        from (default: unchanged; ``n2v`` blends in the noisy pixel)."""
        return result

    def evaluate(
        self,
        results: Sequence[Result],
        truths: Sequence[np.ndarray],
        names: Sequence[str] | None = None,
    ) -> dict:
        """Means over images of PSNR, SSIM, NRMSE, MAE, SNR, Pearson r and the notebooks'
        NRMSE variant, on fairly normalised pairs; and ``n_images``."""
        rows = per_image_metrics(results, truths, names)
        metrics = {k: float(np.mean([row[k] for row in rows])) for k in RESTORATION_KEYS}
        return {**metrics, "n_images": len(rows)}
