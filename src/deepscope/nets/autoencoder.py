"""A convolutional autoencoder for cell crops, described by an architecture string in the
notation of CellCognition's Deep Learning Module.

Layers are joined by ``_``:

* ``c16.5r``: convolution with 16 filters of 5x5 pixels, then activation ``r``;
* ``p2``: 2x2 max pooling;
* ``d256.1r``: dense layer of 256 units with dropout 0.1 before it, then activation ``r``.

Activations: ``r`` ReLU, ``s`` sigmoid, ``t`` tanh, ``l`` linear. The string describes the
encoder's hidden layers; a linear dense layer of ``latent`` units follows and gives the
features. The decoder mirrors the encoder (dense layers back to the last feature maps,
then nearest-neighbour up-sampling for each pooling and convolutions back to the input
channels, the last one linear).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from deepscope.errors import ConfigError

ACTIVATIONS = {"r": nn.ReLU, "s": nn.Sigmoid, "t": nn.Tanh, "l": nn.Identity}
_TOKEN = re.compile(r"^(?:c(\d+)\.(\d+)([rstl])|p(\d+)|d(\d+)\.(\d+)([rstl]))$")


@dataclass(frozen=True)
class Layer:
    """One parsed layer: ``kind`` is ``conv``, ``pool`` or ``dense``."""

    kind: str
    size: int  # filters, pool size or units
    kernel: int = 0
    dropout: float = 0.0
    activation: str = "l"


def parse_architecture(text: str) -> list[Layer]:
    """The layers of an architecture string such as ``c16.5r_p2_c32.3r_p2_d256.1r``.

    Convolutions and pooling come first, dense layers after them.
    """
    layers = []
    for token in text.strip().split("_"):
        match = _TOKEN.match(token)
        if match is None:
            raise ConfigError(
                f"architecture layer '{token}' is not understood; write cF.Sa (conv: F "
                "filters, SxS, activation r/s/t/l), pK (max-pool K) or dN.Da (dense: N units, "
                "dropout 0.D), joined by _ , e.g. c16.5r_p2_c32.3r_p2_d256.1r"
            )
        cf, ck, ca, pk, dn, dd, da = match.groups()
        if cf:
            layers.append(Layer("conv", int(cf), kernel=int(ck), activation=ca))
        elif pk:
            layers.append(Layer("pool", int(pk)))
        else:
            layers.append(Layer("dense", int(dn), dropout=float(f"0.{dd}"), activation=da))
    kinds = [layer.kind for layer in layers]
    if "dense" in kinds and any(k != "dense" for k in kinds[kinds.index("dense") :]):
        raise ConfigError(f"architecture '{text}': dense layers must come after all conv/pool")
    if any(layer.size < 1 or (layer.kind == "conv" and layer.kernel < 1) for layer in layers):
        raise ConfigError(f"architecture '{text}': sizes must be at least 1")
    return layers


class AutoencoderConfig(BaseModel):
    """Shape of a crop autoencoder; stored in ``model.json``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["autoencoder"] = "autoencoder"
    ndim: Literal[2] = 2
    in_channels: int = Field(1, ge=1)
    crop_size: int = Field(48, ge=4, description="edge of the crops in pixels")
    architecture: str = "c16.5r_p2_c32.3r_p2_d256.1r"
    latent: int = Field(32, ge=1, description="number of learned features")

    @field_validator("architecture")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_architecture(value)
        return value

    @property
    def divisor(self) -> int:
        return 1

    @property
    def grid(self) -> int:
        return 1

    @property
    def min_size(self) -> int:
        return self.crop_size

    @property
    def out_channels(self) -> int:
        return self.in_channels

    def feature_map_size(self) -> int:
        """Edge of the last feature maps; the crop must divide evenly by the pooling."""
        size = self.crop_size
        for layer in parse_architecture(self.architecture):
            if layer.kind == "pool":
                if size % layer.size:
                    raise ConfigError(
                        f"crop size {self.crop_size} does not divide evenly by the pooling of "
                        f"'{self.architecture}'; choose a crop size that is a multiple of "
                        f"{self.crop_size // size * layer.size}"
                    )
                size //= layer.size
        return size


class CropAutoencoder(nn.Module):
    """``forward`` reconstructs crops ``(B, C, S, S)``; ``encode`` gives ``(B, latent)``."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        layers = parse_architecture(config.architecture)
        side = config.feature_map_size()
        channels = config.in_channels
        encoder: list[nn.Module] = []
        decoder_maps: list[nn.Module] = []  # built back to front
        for layer in (item for item in layers if item.kind != "dense"):
            if layer.kind == "pool":
                encoder.append(nn.MaxPool2d(layer.size))
                decoder_maps.insert(0, nn.Upsample(scale_factor=layer.size, mode="nearest"))
                continue
            encoder += [
                nn.Conv2d(channels, layer.size, layer.kernel, padding="same"),
                ACTIVATIONS[layer.activation](),
            ]
            back: list[nn.Module] = [nn.Conv2d(layer.size, channels, layer.kernel, padding="same")]
            if decoder_maps:  # not the decoder's last layer, which stays linear
                back.append(ACTIVATIONS[layer.activation]())
            decoder_maps[:0] = back
            channels = layer.size
        flat = channels * side * side
        units = [flat] + [item.size for item in layers if item.kind == "dense"]
        dense = [item for item in layers if item.kind == "dense"]
        encoder.append(nn.Flatten())
        for (n_in, n_out), layer in zip(pairwise(units), dense, strict=True):
            encoder += [
                nn.Dropout(layer.dropout),
                nn.Linear(n_in, n_out),
                ACTIVATIONS[layer.activation](),
            ]
        encoder.append(nn.Linear(units[-1], config.latent))
        decoder: list[nn.Module] = []
        widths = [config.latent, *reversed(units)]
        acts = [*(item.activation for item in reversed(dense)), "r"]
        for n_in, n_out, act in zip(widths[:-1], widths[1:], acts, strict=True):
            decoder += [nn.Linear(n_in, n_out), ACTIVATIONS[act]()]
        decoder.append(nn.Unflatten(1, (channels, side, side)))
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder, *decoder_maps)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def build_autoencoder(config: AutoencoderConfig) -> CropAutoencoder:
    """Build the autoencoder that ``config`` describes."""
    return CropAutoencoder(config)
