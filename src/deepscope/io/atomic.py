"""Atomic file output: write to a temporary file, then rename it onto the final name; and
checks that an output can be written at all, made before long work so that a mistyped
path costs nothing."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from deepscope.errors import InputError

__all__ = [
    "atomic_output",
    "check_future_folder",
    "check_not_an_input",
    "check_output_file",
    "check_output_folder",
    "folder_for_outputs",
]


def check_output_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path if a file can be written there: not a folder, and its folder
    exists (or is created now) and is writable; else an :class:`InputError` naming
    ``what`` (e.g. ``"--json"``)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} '{path}' is a folder; give a file name")
    _make_folder(path.parent, what, path)
    return path


def check_not_an_input(
    path: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str] | None], what: str
) -> Path:
    """``path`` if writing it replaces none of ``inputs`` (files) and adds nothing to them
    (folders, which a later run would read back); else an :class:`InputError`."""
    path = Path(path).resolve()
    for given in inputs:
        if given is None or not Path(given).exists():
            continue
        source = Path(given).resolve()
        if path == source:
            raise InputError(f"{what} '{given}' is an input of this command; give another name")
        if source.is_dir() and path.is_relative_to(source):
            raise InputError(
                f"{what} '{path}' is inside the input folder '{given}'; write it elsewhere"
            )
    return path


def check_output_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path, created if needed, if files can be written into it; else an
    :class:`InputError` naming ``what`` (e.g. ``"--out"``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} '{path}' is a file; give a folder")
    _make_folder(path, what, path)
    return path


def check_future_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path if it is a folder or could be made one by a user allowed to write
    in its nearest existing parent (nothing is created, so a run that fails leaves no empty
    folder); else an :class:`InputError` naming ``what`` (e.g. ``"--out"``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} '{path}' is a file; give a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot write {what} '{path}': '{existing}' is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise InputError(
            f"cannot write {what} '{path}': folder '{existing}' is not writable; "
            "choose another location"
        )
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
def atomic_output(
    path: Path, *, copy_existing: bool = False, background_writes: bool = False
) -> Iterator[Path]:
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
    background_writes : bool
        The block writes through a library whose writes run in a thread of its own (Zarr's
        event loop) and may go on after an interrupt stopped the block: on failure the
        temporary path is removed again after :data:`_LATE_WRITES_SECONDS`.
    """
    temporary, old = _beside(path, "tmp"), _beside(path, "old")
    try:
        if copy_existing and path.is_file():
            shutil.copy2(path, temporary)
        yield temporary
        if temporary.is_dir() and path.is_dir():
            os.replace(path, old)  # a folder cannot replace a non-empty folder in one step
        os.replace(temporary, path)
    except BaseException:
        if background_writes:
            _remove(temporary)
            time.sleep(_LATE_WRITES_SECONDS)
        _remove(temporary)
        raise
    finally:
        _remove(old)


def _beside(path: Path, kind: str) -> Path:
    """A hidden, unique name next to ``path`` (``.NAME.RANDOM.kind``); without the name
    where that would pass the 255 bytes a file name may have."""
    tag = f"{uuid.uuid4().hex[:12]}.{kind}"
    name = f".{path.name}.{tag}"
    return path.with_name(name if len(name.encode()) <= 255 else f".{tag}")


#: how long writes of a library's background thread (Zarr's event loop) may go on after the
#: call that started them was interrupted
_LATE_WRITES_SECONDS = 0.5


def _remove(path: Path) -> None:
    with suppress(OSError):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextmanager
def folder_for_outputs(path: Path) -> Iterator[Path]:
    """Create the folder ``path`` for the outputs of the block; if the block fails and
    the folder, made by it, is still empty, remove it again (a failed run leaves no trace)."""
    made = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        if made:
            with suppress(OSError):
                path.rmdir()  # only if empty
        raise
