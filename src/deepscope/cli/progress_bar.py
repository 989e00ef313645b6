"""A rich progress bar with ETA that listens to :class:`deepscope.progress.Progress` events."""

from __future__ import annotations

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


@contextmanager
def progress_bar(console: Console | None = None) -> Iterator[ProgressCallback]:
    """Yield a progress callback that draws one bar per stage; epoch summaries are printed."""
    console = console or Console(stderr=True)
    bar = Bar(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
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
                numbers = "  ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
                bar.console.print(f"{event.message}  {numbers}".rstrip())
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
