"""Training checkpoints: everything needed to resume exactly where a run stopped.

Checkpoints are private to a training run (they hold optimiser state and random generator
states); they are read with ``torch.load(weights_only=True)``, so they cannot run code.
Shared models use the safetensors package format instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from deepscope.errors import ConfigError

LAST = "last.pt"


def save_checkpoint(state: dict[str, Any], folder: Path, name: str = LAST) -> Path:
    """Write ``state`` to ``folder/name`` atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    tmp = folder / f".{name}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(folder: Path, name: str = LAST) -> dict[str, Any] | None:
    """Read a checkpoint, or None if there is none."""
    path = folder / name
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ConfigError(
            f"cannot read checkpoint {path} ({type(err).__name__}); delete it to start afresh"
        ) from None
