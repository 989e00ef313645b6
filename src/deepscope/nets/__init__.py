"""Networks shared by every task: the U-Net for dense outputs, a CNN for crop classes."""

from __future__ import annotations

from torch import nn

from deepscope.nets.classifier import ClassifierConfig, CropClassifier, build_classifier
from deepscope.nets.unet import UNet, UNetConfig, build_unet


def build_network(config: UNetConfig | ClassifierConfig) -> nn.Module:
    """The network a package's ``network`` settings describe."""
    if isinstance(config, ClassifierConfig):
        return build_classifier(config)
    return build_unet(config)


__all__ = [
    "ClassifierConfig",
    "CropClassifier",
    "UNet",
    "UNetConfig",
    "build_classifier",
    "build_network",
    "build_unet",
]
