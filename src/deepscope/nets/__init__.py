"""Networks shared by every task: the U-Net for dense outputs, a CNN for crop classes, an
autoencoder for crop features."""

from __future__ import annotations

from torch import nn

from deepscope.nets.autoencoder import AutoencoderConfig, CropAutoencoder, build_autoencoder
from deepscope.nets.classifier import ClassifierConfig, CropClassifier, build_classifier
from deepscope.nets.unet import UNet, UNetConfig, build_unet


def build_network(config: UNetConfig | ClassifierConfig | AutoencoderConfig) -> nn.Module:
    """The network a package's ``network`` settings describe."""
    if isinstance(config, ClassifierConfig):
        return build_classifier(config)
    if isinstance(config, AutoencoderConfig):
        return build_autoencoder(config)
    return build_unet(config)


__all__ = [
    "AutoencoderConfig",
    "ClassifierConfig",
    "CropAutoencoder",
    "CropClassifier",
    "UNet",
    "UNetConfig",
    "build_autoencoder",
    "build_classifier",
    "build_network",
    "build_unet",
]
