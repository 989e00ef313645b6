"""The server's state folder (jobs database, uploads, results): one server at a time, and
old previews cleaned away."""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from deepscope.errors import DeepscopeError

LOCK_FILE = "server.lock"
#: result folders the server makes for one request (a preview, an export), not for a job
_REQUEST_RESULT = re.compile(r"[0-9a-f]{32}|export-[0-9a-f]{32}")


@contextlib.contextmanager
def hold_state_dir(state: Path) -> Iterator[None]:
    """Hold the state folder for this server while inside; a clear error when another
    server holds it (two servers would run each queued job twice). The operating system
    drops the hold of a server that dies, so a crash leaves nothing to clean up."""
    state.mkdir(parents=True, exist_ok=True)
    lock = FileLock(state / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DeepscopeError(
            f"another deepscope server is using the state folder {state}; stop it, or "
            "start this one with its own --state-dir"
        ) from None
    try:
        yield
    finally:
        lock.release()


def remove_old_results(results: Path, days: float, now: float | None = None) -> list[str]:
    """Delete the preview and export folders under ``results`` last changed more than
    ``days`` ago (job results stay with their jobs); returns the names removed."""
    if not results.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = []
    for folder in sorted(results.iterdir()):
        if (
            folder.is_dir()
            and not folder.is_symlink()
            and _REQUEST_RESULT.fullmatch(folder.name)
            and folder.stat().st_mtime < cutoff
        ):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed
