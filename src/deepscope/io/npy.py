"""NumPy ``.npy`` reading and writing (no pickles, no metadata)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepscope.errors import InputError
from deepscope.io.atomic import atomic_output
from deepscope.io.metadata import Decoded, choose_axes, error_reason

__all__ = ["read_npy", "write_npy"]


def read_npy(path: Path, axes: str | None, name: str) -> Decoded:
    """Read a ``.npy`` file; its axes are guessed from the shape unless given."""
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as error:  # any failure means the file is unusable
        raise InputError(
            f"cannot read .npy file {name!r} ({error_reason(error)}); check that it is a numeric "
            "array saved with numpy.save"
        ) from error
    if not isinstance(data, np.ndarray):
        raise InputError(f"{name!r} does not hold a single array; save one array with numpy.save")
    return Decoded(data, choose_axes(data.shape, None, axes, name), None)


def write_npy(path: Path, data: np.ndarray) -> None:
    """Write ``data`` as ``.npy``. Axes and pixel size are not stored."""
    try:
        with atomic_output(path) as temporary:
            with open(temporary, "wb") as handle:
                np.save(handle, data, allow_pickle=False)
    except Exception as error:  # report any writer failure in one line
        raise InputError(
            f"cannot write .npy file '{path}' ({error_reason(error)}); "
            "check the folder is writable and the disk has space"
        ) from error
