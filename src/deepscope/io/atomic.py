"""Atomic file output: write to a temporary file, then rename it onto the final name."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["atomic_output"]


@contextmanager
def atomic_output(path: Path, *, copy_existing: bool = False) -> Iterator[Path]:
    """Give a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    The temporary file is hidden (its name starts with ``.``) and lies in the same folder,
    so the final :func:`os.replace` is atomic: readers see either the old file or the
    complete new one, never a half-written file. If the block raises, the temporary file
    is removed and ``path`` is left untouched.

    Parameters
    ----------
    path : Path
        The final file name. Its folder must exist.
    copy_existing : bool
        Start from a copy of the existing ``path`` (for formats that add to a file, such
        as HDF5). This costs one copy of the file.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        if copy_existing and path.is_file():
            shutil.copy2(path, temporary)
        yield temporary
        os.replace(temporary, path)
    finally:
        with suppress(OSError):
            temporary.unlink()
