"""A rich progress bar with ETA that listens to :class:`deepscope.progress.Progress` events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as Bar,
)

from deepscope.progress import Progress, ProgressCallback


def _summary(event: Progress) -> str:
    numbers = "  ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
    return f"{event.message}  {numbers}".rstrip()


def log_lines(console: Console, every: int = 20) -> ProgressCallback:
    """Progress as plain lines (for logs and batch jobs): about ``every`` lines per stage."""
    started: dict[str, float] = {}

    def callback(event: Progress) -> None:
        if event.stage in ("epoch", "done", "load"):
            if event.message:
                console.print(_summary(event), highlight=False)
            return
        now = time.monotonic()
        start = started.setdefault(event.stage, now)
        step = max(1, event.total // every)
        if event.done % step and event.done != event.total:
            return
        elapsed = now - start
        eta = elapsed / max(event.done, 1) * (event.total - event.done)
        console.print(
            f"{event.stage} {event.done}/{event.total}  {_summary(event)}  "
            f"elapsed {elapsed:.0f} s  ETA {eta:.0f} s",
            highlight=False,
        )

    return callback


@contextmanager
def progress_bar(console: Console | None = None) -> Iterator[ProgressCallback]:
    """Yield a progress callback: a live bar per stage on a terminal, plain lines otherwise."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield log_lines(console)
        return
    bar = Bar(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}", markup=False),  # file names as they are
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[str, int] = {}

    def callback(event: Progress) -> None:
        if event.stage in ("epoch", "done", "load"):
            if event.message:
                bar.console.print(_summary(event))
            return
        info = "  ".join(f"{k} {v:.3g}" for k, v in event.metrics.items())
        if event.stage not in tasks:
            tasks[event.stage] = bar.add_task(event.stage, total=event.total, info=info)
        bar.update(
            tasks[event.stage],
            completed=event.done,
            total=event.total,
            info=info,
            description=event.stage if not event.message else f"{event.stage} {event.message}",
        )

    with bar:
        yield callback
