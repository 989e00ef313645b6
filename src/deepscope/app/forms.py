"""The training form, generated from the training settings (:class:`TrainConfig`).

Fields come from the pydantic model's JSON schema, so the form, the CLI and the YAML files
share one definition; defaults are the ones the task advises (``Task.train_defaults``).
Nested settings (``network``, ``augmentation``, ``normalization``) appear as dotted
names; the task's own parameters are free JSON.
"""

from __future__ import annotations

from typing import Any

from deepscope.tasks import TASKS, task_class
from deepscope.train.config import TrainConfig

#: settings the server fixes itself: where models land, and the task (chosen above)
HIDDEN = ("task", "out")
#: settings that name folders under the data roots
FOLDERS = ("images", "masks", "val_images", "val_masks", "mapping")


def _kind(schema: dict[str, Any]) -> tuple[str, bool, list | None]:
    """``(type, optional, choices)`` of one property of the schema."""
    options = schema.get("anyOf", [schema])
    optional = any(o.get("type") == "null" for o in options)
    real = [o for o in options if o.get("type") != "null"] or [{}]
    first = real[0]
    kind = first.get("type", "string")
    if first.get("format") == "path":
        kind = "path"
    return kind, optional, first.get("enum")


def _fields(schema: dict, defs: dict, defaults: dict, prefix: str = "") -> list[dict]:
    fields = []
    for key, prop in schema["properties"].items():
        name = f"{prefix}{key}"
        if name in HIDDEN:
            continue
        ref = prop.get("$ref") or (prop.get("allOf") or [{}])[0].get("$ref")
        if ref:
            nested = defs[ref.rsplit("/", 1)[-1]]
            fields += _fields(nested, defs, defaults.get(key) or {}, f"{name}.")
            continue
        kind, optional, choices = _kind(prop)
        if kind in ("object", "array"):
            kind = "json"
        fields.append(
            {
                "name": name,
                "type": "folder" if key in FOLDERS else kind,
                "optional": optional,
                "choices": choices,
                "default": defaults.get(key, prop.get("default")),
                "help": prop.get("description", ""),
                "group": prefix.rstrip(".") or "main",
            }
        )
    return fields


def train_form(task: str) -> list[dict]:
    """The fields of the training form for ``task`` (name, type, default, help, group)."""
    task_class(task)
    schema = TrainConfig.model_json_schema()
    defaults = TrainConfig.model_construct().model_dump(mode="json") | dict(
        TASKS[task].train_defaults
    )
    return _fields(schema, schema.get("$defs", {}), defaults)
