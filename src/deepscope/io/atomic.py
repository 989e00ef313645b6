"""Atomic file output: write to a temporary file, then rename it onto the final name; and
checks that an output can be written at all, made before long work so that a mistyped
path costs nothing."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from deepscope.errors import InputError

__all__ = ["atomic_output", "check_output_file", "check_output_folder"]


def check_output_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path if a file can be written there: not a folder, and its folder
    exists (or is created now) and is writable; else an :class:`InputError` naming
    ``what`` (e.g. ``"--json"``)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} '{path}' is a folder; give a file name")
    _make_folder(path.parent, what, path)
    return path


def check_output_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path, created if needed, if files can be written into it; else an
    :class:`InputError` naming ``what`` (e.g. ``"--out"``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} '{path}' is a file; give a folder")
    _make_folder(path, what, path)
    return path


def _make_folder(folder: Path, what: str, path: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(
            f"cannot write {what} '{path}': cannot create folder '{folder}' "
            f"({error.strerror or error}); choose a writable location"
        ) from None
    if not os.access(folder, os.W_OK):
        raise InputError(
            f"cannot write {what} '{path}': folder '{folder}' is not writable; "
            "choose another location"
        )


@contextmanager
def atomic_output(path: Path, *, copy_existing: bool = False) -> Iterator[Path]:
    """Give a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    The temporary file is hidden (its name starts with ``.``) and lies in the same folder,
    so the final :func:`os.replace` is atomic: readers see either the old file or the
    complete new one, never a half-written file. If the block raises, the temporary file
    is removed and ``path`` is left untouched. The block may write a folder instead (a
    Zarr store): an existing folder at ``path`` is then moved aside just before the new one
    takes its name, and removed.

    Parameters
    ----------
    path : Path
        The final file name. Its folder must exist.
    copy_existing : bool
        Start from a copy of the existing ``path`` (for formats that add to a file, such
        as HDF5). This costs one copy of the file.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.old")
    try:
        if copy_existing and path.is_file():
            shutil.copy2(path, temporary)
        yield temporary
        if temporary.is_dir() and path.is_dir():
            os.replace(path, old)  # a folder cannot replace a non-empty folder in one step
        os.replace(temporary, path)
    finally:
        for leftover in (temporary, old):
            with suppress(OSError):
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
