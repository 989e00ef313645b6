"""The one progress interface every long operation reports through.

A long operation takes ``progress: ProgressCallback | None`` and calls it with a
:class:`Progress` event. The CLI turns events into a progress bar, the GUI into live
updates; API users may pass any callable or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Progress:
    """One progress event.

    Attributes
    ----------
    stage : str
        What is running, e.g. ``"train"``, ``"validate"``, ``"predict"``.
    done, total : int
        Units finished so far and units in all (steps, tiles, files).
    message : str
        Short human text for the event.
    metrics : dict
        Latest numbers worth showing (loss, learning rate ...).
    """

    stage: str
    done: int
    total: int
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


ProgressCallback = Callable[[Progress], None]


def report(callback: ProgressCallback | None, event: Progress) -> None:
    """Send ``event`` to ``callback`` if there is one."""
    if callback is not None:
        callback(event)
