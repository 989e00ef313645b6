"""Errors a user can cause. Each carries a one-line message that says what to do next.

The CLI prints ``str(error)`` on one line and exits non-zero; it never shows a traceback
for these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path


class DeepscopeError(Exception):
    """Base class for every error a user can cause and fix."""


class InputError(DeepscopeError):
    """A file or array given by the user cannot be used (unreadable, wrong axes, empty...)."""


class AxesError(InputError):
    """The axes of an image are missing, invalid or do not fit the data."""


class PairingError(InputError):
    """Images and masks (or inputs and targets) do not pair up by file stem."""


class ModelError(DeepscopeError):
    """A model name is unknown or a model package is invalid or incompatible."""


class UnknownModel(ModelError):
    """No built-in or library model has the name given."""


class ConfigError(DeepscopeError):
    """A training or prediction setting is invalid."""


def first_problem(validation_error, prefix: str = "") -> str:
    """The first problem of a pydantic ``ValidationError`` on one line: ``'field': message``
    (``prefix`` goes before the field's dotted path), with a count of any others."""
    problems = validation_error.errors()
    where = ".".join(str(part) for part in problems[0]["loc"])
    where = f"{prefix}{where}" if where else prefix.rstrip(".") or "settings"
    others = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    message = problems[0]["msg"].removeprefix("Value error, ")  # our validators' own words
    return f"'{where}': {message}{others}"


class TrainingInterrupted(DeepscopeError):
    """Training stopped early by a signal (``signum``: SIGINT 2, SIGTERM 15); the last
    checkpoint lets it resume."""

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.signum = int(signum)


@contextlib.contextmanager
def per_image(path: Path, on_error: Callable[[Path, InputError], None] | None) -> Iterator[None]:
    """Run the work on one image of a batch: an error about its content or file names it
    (a folder may hold hundreds); with ``on_error``, the error is handed to it and the batch
    goes on with the next image, else it stops the batch."""
    try:
        yield
    except InputError as err:
        named = err if path.name in str(err) else type(err)(f"{path.name}: {err}")
        if on_error is None:
            raise named from None
        on_error(path, named)
