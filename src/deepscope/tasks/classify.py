"""Task ``classify``: one class per cell crop (mitotic phase, phenotype).

Training data is a folder with one sub-folder per class; the network is the crop CNN of
:mod:`deepscope.nets.classifier`; the loss is cross-entropy, optionally weighted by the
inverse class frequency when classes are not balanced by sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch.nn import functional as F

from deepscope.metrics.classification import classification_scores
from deepscope.tasks.base import Result, Task


class ClassifyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    classes: list[str] = Field(
        default_factory=list, description="class names in output order (the sub-folder names)"
    )
    crop_size: int = Field(64, ge=8, description="crops are centre-cropped or padded to this")
    balance: Literal["sampling", "weights", "none"] = Field(
        "sampling",
        description="imbalanced classes: sample every class equally often, or weight the loss "
        "by inverse class frequency, or neither",
    )
    class_weights: list[float] = Field(
        default_factory=list, description="loss weight per class (balance=weights; set by training)"
    )
    max_shift: int = Field(4, ge=0, description="random shift of training crops, pixels")
    window: int | None = Field(
        None,
        ge=1,
        description="side of the crop files it was trained on (set by training): count "
        "--classify cuts this much around each object and normalises it before sizing it to "
        "crop_size, as training did (default: crop_size)",
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1)

    @field_validator("classes")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"class names must be distinct, got {value}")
        return value


class ClassifyTask(Task):
    name = "classify"
    Params = ClassifyParams
    output_kind = "class"
    architecture = "cnn"

    @property
    def classes(self) -> list[str]:
        return self.params.classes

    @property
    def out_channels(self) -> int:
        return max(2, len(self.classes))

    def make_target(self, mask: np.ndarray) -> np.ndarray:
        """A class index (targets are whole-crop labels, given by the folder)."""
        return np.asarray(mask, dtype=np.int64)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = None
        if self.params.balance == "weights" and self.params.class_weights:
            weight = torch.tensor(self.params.class_weights, device=output.device)
        return F.cross_entropy(
            output, target.long(), weight=weight, label_smoothing=self.params.label_smoothing
        )

    def batch_metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        return {"accuracy": float((output.argmax(1) == target).float().mean())}

    def postprocess(self, output: np.ndarray, shape: tuple[int, ...] | None = None) -> Result:
        """Class probabilities ``(K,)`` and the most likely class from logits ``(K,)``."""
        logits = np.asarray(output, np.float64)
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        index = int(prob.argmax())
        return Result(
            classes=np.array(index),
            probabilities=prob.astype(np.float32),
            class_name=self.classes[index] if index < len(self.classes) else str(index),
        )

    def evaluate(
        self,
        results: Sequence[Result],
        truths: Sequence[np.ndarray],
        names: Sequence[str] | None = None,
    ) -> dict:
        """``accuracy``, ``macro_f1``, ``balanced_accuracy``, ``n_images`` and per-class
        ``precision/<c>``, ``recall/<c>``, ``f1/<c>``, ``support/<c>``."""
        pred = [int(r.classes) for r in results]
        return classification_scores([int(t) for t in truths], pred, self.classes)
