"""Training settings: one pydantic model behind the CLI flags, YAML files and ``model.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from deepscope.data.augment import Augmentation
from deepscope.data.normalize import Normalization
from deepscope.errors import ConfigError, ModelError, first_problem
from deepscope.home import user_library
from deepscope.spec import check_model_name


class NetworkSettings(BaseModel):
    """The parts of the U-Net a user chooses; channels come from the data and the task."""

    model_config = ConfigDict(extra="forbid")

    depth: int = Field(4, ge=1, le=6)
    base_filters: int = Field(16, ge=1)
    norm: Literal["batch", "instance", "group", "none"] = "batch"
    residual: bool = False
    grid: int = Field(1, ge=1, le=8, description="output subsampling (stardist: 2 is faster)")
    pool: Literal["max", "blurmax"] = Field("max", description="blurmax: anti-aliased (N2V2)")
    top_skip: bool = Field(True, description="full-resolution skip connection (N2V2: off)")
    head_filters: int = Field(
        0, ge=0, description="3x3 conv with this many filters before the output layer; 0 = none"
    )
    style: bool = Field(
        False,
        description="Cellpose's style vector: the whole input's mean features steer the decoder",
    )
    dropout: float = Field(0.3, ge=0, lt=1, description="classify: dropout before the class head")


class TrainConfig(BaseModel):
    """Everything a training run needs. Defaults work for 2D fluorescence nuclei."""

    model_config = ConfigDict(extra="forbid")

    task: str = "semantic"
    name: str = Field(
        ..., description="model name (letters, digits, . _ -); the package folder's name"
    )
    out: Path | None = Field(
        None, description="folder that receives the model package; default: your model library"
    )
    images: Path
    masks: Path | None = Field(
        None, description="masks or target images (same stems); none for self-supervised tasks"
    )
    val_images: Path | None = None
    val_masks: Path | None = None
    mapping: Path | None = Field(
        None,
        description="CellH5 position mapping (Plate, Well, Site, Gene Symbol, Group): an "
        "autoencoder trains on the negative-control positions only",
    )
    val_fraction: float = Field(0.15, gt=0, lt=1, description="held out when no val folders")
    axes: str | None = Field(None, description="axes of the training images, e.g. YX or YXC")
    ndim: Literal[2, 3] = 2
    task_params: dict[str, Any] = Field(default_factory=dict)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    normalization: Normalization = Field(default_factory=Normalization)
    augmentation: Augmentation = Field(default_factory=Augmentation)
    patch_size: int = Field(256, ge=8)
    batch_size: int = Field(8, ge=1)
    epochs: int = Field(40, ge=1)
    steps_per_epoch: int = Field(100, ge=1)
    max_minutes: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="time budget of the training loop: after each epoch the run plans as "
        "many more epochs (up to 'epochs') as fit the minutes left at the mean epoch time so "
        "far, and the learning-rate schedule ends with the plan; an epoch that runs past the "
        "budget is cut short and ends the run",
    )
    val_patches: int | None = Field(
        None,
        ge=1,
        description="fixed validation patches for the val loss; default: the task's "
        "(64; 1024 for n2v masking, whose loss sees only the few blind spots of each patch)",
    )
    foreground_fraction: float = Field(0.7, ge=0, le=1)
    sample_images_by: Literal["uniform", "foreground", "objects"] = Field(
        "uniform",
        description="which image a patch comes from: uniform = every image equally often; "
        "foreground = in proportion to its foreground pixels, so crowded images (a late "
        "frame of a growing colony) are seen as often as their cells deserve; objects = in "
        "proportion to its annotated objects (instance tasks)",
    )
    optimizer: Literal["adam", "adamw", "sgd", "adagrad"] = "adam"
    learning_rate: float = Field(1e-3, gt=0, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD (Nesterov) momentum")
    lr_schedule: Literal["cosine", "plateau", "step", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    ema_decay: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="weight averaging: validate and keep an exponential moving average of "
        "the weights, updated every step with this decay (e.g. 0.995); 0 = off",
    )
    int8: bool = Field(
        False,
        description="also add an int8 copy of the network for fast CPU prediction, calibrated "
        "on 32 training images and scored on the validation images (U-Net tasks)",
    )
    checkpoint_every: int = Field(25, ge=0, description="steps between checkpoints; 0 = epochs")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    threads: int | None = Field(None, ge=1, description="CPU threads; default all cores")
    precision: Literal["float32", "bfloat16", "auto"] = Field(
        "auto",
        description="arithmetic of the training steps: float32; bfloat16 (autocast: "
        "convolutions in bfloat16, weights, losses and the optimiser in float32); auto = "
        "bfloat16 on a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX), else float32",
    )
    loader_workers: int | None = Field(
        None,
        ge=0,
        description="threads that draw the next training batches during each step; default "
        "0 on a CPU (each batch drawn when it is needed), up to 4 beside a GPU",
    )
    init_from: str | None = Field(
        None, description="start from the weights of this model (name or folder): fine-tuning"
    )
    tune_thresholds: bool = True
    domain: str = Field(
        "not stated",
        description="what the images show, e.g. 'fluorescence nuclei' or 'phase contrast "
        "bacteria'; shown by models list and matched by --domain",
    )
    description: str = ""

    @field_validator("name")
    @classmethod
    def _model_name(cls, name: str) -> str:
        try:
            return check_model_name(name)
        except ModelError as err:  # said as pydantic says a value error: one line
            raise ValueError(str(err)) from None

    @property
    def package_dir(self) -> Path:
        """Where the model package is written: ``out/name``, by default in the user's
        model library, where ``load_model(name)`` finds it."""
        return (self.out or user_library()) / self.name


#: settings that name files or folders (``init_from`` may name a model instead)
PATH_SETTINGS = ("images", "masks", "val_images", "val_masks", "mapping", "out")


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a YAML training file; keyword ``overrides`` (not None) win over the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ConfigError(f"cannot read training config {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, e.g. 'epochs: 10'")
    base = path.parent
    for key in PATH_SETTINGS:
        if raw.get(key) is not None and not Path(raw[key]).is_absolute():
            raw[key] = str(base / raw[key])
    init = raw.get("init_from")
    if init and not Path(init).is_absolute() and (base / init).is_dir():
        raw["init_from"] = str(base / init)
    raw = merged_settings(raw, {k: v for k, v in overrides.items() if v is not None})
    return make_train_config(raw, source=str(path))


def merged_settings(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` on top, section by section: ``{"network": {"depth": 3}}``
    changes the depth and keeps the other network settings of ``base``."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merged_settings(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_train_config(settings: dict[str, Any], source: str = "settings") -> TrainConfig:
    """Validate ``settings`` into a TrainConfig with a one-line error on failure; settings
    the task advises (``Task.train_defaults``) fill in where ``settings`` are silent."""
    from deepscope.tasks import task_class

    try:
        task = task_class(settings.get("task", "semantic"))
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    settings = {**task.train_defaults, **settings}
    try:
        config = TrainConfig.model_validate(settings)
    except ValidationError as err:
        raise ConfigError(f"{source}: {first_problem(err)}") from None
    if config.augmentation.warps and not (task.warpable_target and config.ndim == 2):
        raise ConfigError(
            f"{source}: augmentation 'scale', 'stretch' and 'any_angle' work for 2D training "
            "of tasks whose targets are label images (flows, stardist); remove them for this "
            "training"
        )
    length = config.task_params.get("struct_length", 0)
    if (
        config.task == "n2v"
        and isinstance(length, int)
        and not (length == 0 or (length >= 3 and length % 2 == 1))
    ):
        # 1 acted as off and an even length as the odd one above it (2 acted as 3)
        raise ConfigError(
            f"{source}: task_params.struct_length must be 0 (off) or odd, 3 or more (the "
            f"blind spot in the middle), got {length}"
        )
    axis = config.task_params.get("struct_axis")
    if config.task == "n2v" and isinstance(axis, int) and not -config.ndim <= axis < config.ndim:
        raise ConfigError(
            f"{source}: task_params.struct_axis {axis} is not an axis of {config.ndim}D images; "
            f"use -1 for X, -2 for Y{', -3 for Z' if config.ndim == 3 else ''}"
        )
    if config.int8 and config.task in ("classify", "autoencoder"):
        raise ConfigError(
            f"{source}: int8 networks are made for U-Net tasks; remove 'int8' for {config.task}"
        )
    return config
