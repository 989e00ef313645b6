"""Where deepscope keeps the user's things: ``$DEEPSCOPE_HOME`` or the platform's
user-data folder (``~/.local/share/deepscope`` on Linux)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def deepscope_home() -> Path:
    """``$DEEPSCOPE_HOME``, or the platform's user-data folder for deepscope."""
    home = os.environ.get("DEEPSCOPE_HOME")
    return Path(home) if home else Path(platformdirs.user_data_dir("deepscope"))


def user_library() -> Path:
    """The folder of the user's models; training writes there unless told otherwise."""
    return deepscope_home() / "models"
