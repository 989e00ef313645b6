"""A small convolutional classifier for cell crops: conv blocks, global pooling, a linear head."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class ClassifierConfig(BaseModel):
    """Shape of a crop classifier. Stored in ``model.json`` so a package rebuilds it.

    Each level is two 3x3 convolutions with batch norm and ReLU, then 2x2 max pooling;
    the filters double per level. Global average pooling makes the head independent of
    the crop size, but crops are always brought to the task's ``crop_size`` first.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["classifier"] = "classifier"
    ndim: Literal[2] = 2
    in_channels: int = Field(1, ge=1)
    out_channels: int = Field(2, ge=2, description="number of classes")
    depth: int = Field(3, ge=1, le=6, description="number of conv levels")
    base_filters: int = Field(32, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1, description="before the linear head")

    @property
    def divisor(self) -> int:
        return 1

    @property
    def min_size(self) -> int:
        """Smallest crop edge the pooling levels accept."""
        return 2**self.depth

    @property
    def grid(self) -> int:
        return 1


class CropClassifier(nn.Module):
    """Logits ``(B, n_classes)`` for crops ``(B, C, S, S)``."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = config.in_channels
        for level in range(config.depth):
            c_out = config.base_filters * 2**level
            for c in (c_in, c_out):
                layers += [
                    nn.Conv2d(c, c_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True),
                ]
            layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(c_in, config.out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features before the head ``(B, F)``."""
        return self.head[1](self.head[0](self.features(x)))


def build_classifier(config: ClassifierConfig) -> CropClassifier:
    """Build the classifier that ``config`` describes."""
    return CropClassifier(config)
