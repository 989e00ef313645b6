"""Layers the networks share."""

from __future__ import annotations

from torch import nn


def norm_layer(kind: str, ndim: int, channels: int) -> nn.Module:
    """The normalisation ``kind`` (batch, instance, group or none) for ``channels``."""
    if kind == "batch":
        return (nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d)(channels)
    if kind == "instance":
        return (nn.InstanceNorm2d if ndim == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if kind == "group":
        # Up to 8 groups, but the group count must divide the channels (12 filters -> 6 groups).
        groups = max(g for g in range(1, min(8, channels) + 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    return nn.Identity()
