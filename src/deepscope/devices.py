"""Which torch device to compute on: one function, used by every layer."""

from __future__ import annotations

import torch

from deepscope.errors import ConfigError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; a named device must exist here."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or mps") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' is not available here; use --device cpu")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' is not available here; use --device cpu")
    return chosen
