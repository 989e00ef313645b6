"""Tasks: one module each; ``get_task`` builds one by name."""

from __future__ import annotations

from pydantic import ValidationError

from deepscope.errors import ConfigError, first_problem
from deepscope.tasks.autoencoder import AutoencoderTask
from deepscope.tasks.base import Result, Task
from deepscope.tasks.care import CareTask, LabelFreeTask, N2NTask
from deepscope.tasks.classify import ClassifyTask
from deepscope.tasks.flows import FlowsTask
from deepscope.tasks.image import ImageTask
from deepscope.tasks.n2v import N2VTask
from deepscope.tasks.semantic import SemanticTask
from deepscope.tasks.stardist import StarDistTask

TASKS: dict[str, type[Task]] = {
    SemanticTask.name: SemanticTask,
    StarDistTask.name: StarDistTask,
    ImageTask.name: ImageTask,
    CareTask.name: CareTask,
    N2VTask.name: N2VTask,
    N2NTask.name: N2NTask,
    LabelFreeTask.name: LabelFreeTask,
    ClassifyTask.name: ClassifyTask,
    AutoencoderTask.name: AutoencoderTask,
    FlowsTask.name: FlowsTask,
}


def task_class(name: str) -> type[Task]:
    """The task called ``name``; an unknown name is a one-line error listing the tasks."""
    if name not in TASKS:
        raise ConfigError(f"unknown task '{name}'; choose one of: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def get_task(name: str, params: dict | None = None) -> Task:
    """Build the task called ``name`` with ``params`` (defaults where missing)."""
    cls = task_class(name)
    try:
        return cls(params or {})
    except ValidationError as err:
        problem = first_problem(err, "task_params.")
        raise ConfigError(f"invalid settings for task '{name}': {problem}") from None
    except ValueError as err:
        raise ConfigError(f"invalid settings for task '{name}': {err}") from None


__all__ = ["TASKS", "Result", "Task", "get_task", "task_class"]
