"""The training loop shared by every task.

Seeded; validation loss each epoch; best and last checkpoints; resumable after Ctrl-C,
SIGTERM or a killed process from the last checkpoint; history CSV and loss-curve PNG;
progress reported through the one callback interface. Ends by tuning the task's
post-processing on validation images and writing the model package.
"""

from __future__ import annotations

import math
import os
import random
import signal
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError
from torch.optim.swa_utils import AveragedModel

from deepscope.devices import resolve_device
from deepscope.errors import ConfigError, DeepscopeError, TrainingInterrupted
from deepscope.io import list_images, read_image
from deepscope.io.atomic import check_not_an_input, check_output_folder
from deepscope.measure.size import median_diameter
from deepscope.nets import build_network
from deepscope.nets.unet import UNetConfig
from deepscope.predict.backends import faster_cpu_backend, use_bfloat16
from deepscope.predict.predictor import Predictor, predict_raw
from deepscope.progress import Progress, ProgressCallback, report
from deepscope.spec import SPEC_FILE, ModelSpec, Tags, default_prediction, save_package
from deepscope.tasks import Task, get_task
from deepscope.tasks.base import integer_mask
from deepscope.train.batches import BatchStream, auto_workers
from deepscope.train.checkpoint import load_checkpoint, save_checkpoint
from deepscope.train.config import PATH_SETTINGS, TrainConfig
from deepscope.train.dataset import (
    PatchSampler,
    Sample,
    build_samples,
    check_training_data,
    fit_normalization,
    load_samples,
    read_pairs,
    split_samples,
)
from deepscope.train.history import plot_history, write_history

CHECKPOINTS = "checkpoints"
BEST_WEIGHTS = "best.pt"


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """Adam, AdamW, SGD with Nesterov momentum, or AdaGrad."""
    lr, wd = config.learning_rate, config.weight_decay
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=config.momentum, nesterov=True, weight_decay=wd
        )
    return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)


def lr_factor(config: TrainConfig, step: int, epochs: int | None = None) -> float:
    """Learning-rate multiplier at global ``step`` for step-wise schedules over ``epochs``
    (default ``config.epochs``; a time budget plans fewer, see :func:`epochs_in_budget`)."""
    total = (epochs or config.epochs) * config.steps_per_epoch
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "cosine":
        progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if config.lr_schedule == "step":
        return 0.1 ** (step // max(1, total // 3))
    return 1.0


def epochs_in_budget(config: TrainConfig, epochs_done: int, seconds: float) -> int:
    """The number of epochs the run will have: ``config.epochs``, or with ``max_minutes`` the
    ``epochs_done`` (in ``seconds``, validation included) and as many more as fit the rest
    of the budget at their mean duration, at most ``config.epochs``. Planned again after
    every epoch, so a machine that slows down shortens the plan and the schedule still ends
    within the budget."""
    if config.max_minutes is None or epochs_done == 0:
        return config.epochs
    left = config.max_minutes * 60 - seconds
    more = int(left // (seconds / epochs_done)) if left > 0 else 0
    return max(1, min(config.epochs, epochs_done + more))


def budget_spent(config: TrainConfig, seconds: float) -> bool:
    """Whether the time budget (``max_minutes``) is used up after ``seconds`` of training
    and validation; never without a budget."""
    return config.max_minutes is not None and seconds >= config.max_minutes * 60


def warming_decay(decay: float, n_averaged: int) -> float:
    """The decay of the moving average at its ``n_averaged``-th update: ``(1 + n) / (10 + n)``
    up to ``decay``. A fixed decay of 0.998 would keep a fifth of the random initial weights
    after 800 steps, and such a mix validates as badly as an untrained network; the warm-up
    lets the average follow the network early and smooth it late."""
    return min(decay, (1 + n_averaged) / (10 + n_averaged))


def _ema_update(decay: float):
    """The multi-tensor update of :class:`AveragedModel` with :func:`warming_decay`;
    integer buffers (batch-norm's batch counter) take the network's value."""

    @torch.no_grad()
    def update(averaged: list, current: list, n_averaged: torch.Tensor) -> None:
        weight = 1 - warming_decay(decay, int(n_averaged))
        for mean, value in zip(averaged, current, strict=True):
            if torch.is_floating_point(mean):
                mean.lerp_(value, weight)
            else:
                mean.copy_(value)

    return update


def weight_average(net: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``net``'s weights and batch-norm statistics with
    a warm-up (:func:`warming_decay`), or ``None`` when ``decay`` is 0 (off)."""
    if not decay:
        return None
    return AveragedModel(net, multi_avg_fn=_ema_update(decay), use_buffers=True)


@dataclass
class Learner:
    """What training steps change: the network, its weight average (or ``None``), the
    optimiser and the plateau schedule (or ``None``)."""

    net: torch.nn.Module
    averaged: AveragedModel | None
    optimizer: torch.optim.Optimizer
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None

    @property
    def kept(self) -> torch.nn.Module:
        """The weights that are validated and kept: the average when there is one."""
        return self.averaged.module if self.averaged is not None else self.net

    def state_dict(self) -> dict:
        return {
            "model": self.net.state_dict(),
            "ema": self.averaged.state_dict() if self.averaged is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, ckpt: dict) -> None:
        self.net.load_state_dict(ckpt["model"])
        if self.averaged is not None:
            self.averaged.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.plateau is not None:
            self.plateau.load_state_dict(ckpt["plateau"])
        torch.set_rng_state(ckpt["torch_rng"])


@contextmanager
def interrupts_between_steps() -> Iterator[StopRequest]:
    """Ctrl-C (SIGINT) and SIGTERM during training, noted and acted on at the next step
    boundary (:meth:`StopRequest.check`), so the checkpoint never holds half a step: a
    signal in the middle of a step would otherwise leave its batch-norm or optimizer update
    in the weights without the step counted, and the resumed run would repeat it. A second
    signal stops at once."""
    stop = StopRequest()

    def handler(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested, stop.signum = True, signum

    try:
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield stop
        return
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class StopRequest:
    """Whether a stop was asked for during training (see :func:`interrupts_between_steps`)."""

    requested: bool = False
    signum: int = signal.SIGINT  # the signal that asked

    def check(self) -> None:
        """Raise KeyboardInterrupt, at a step boundary, when a stop was asked for."""
        if self.requested:
            raise KeyboardInterrupt


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return a generator for the sampler (whose training
    batches are each drawn with a generator of their own, see ``train.batches``)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def fixed_val_batches(samples: list[Sample], config: TrainConfig, task: Task) -> list[tuple]:
    """Validation patches drawn once with a fixed seed, so val loss is comparable per epoch:
    ``config.val_patches`` of them, or the task's default number (``Task.val_patches``)."""
    sampler = PatchSampler(
        samples,
        config.patch_size,
        config.batch_size,
        None,
        config.foreground_fraction,
        np.random.default_rng(config.seed + 1),
        task.prepare_batch,
        sample_images_by=config.sample_images_by,
    )
    n = math.ceil((config.val_patches or task.val_patches) / config.batch_size)
    return [sampler.batch() for _ in range(n)]


def initial_weights(name_or_path: str, net: torch.nn.Module, task: str) -> dict[str, torch.Tensor]:
    """Weights of an existing model of ``task`` to fine-tune into ``net``: its network must
    match ``net``'s, or lack only the style vector, whose layers then start at zero (so step
    0 computes what the existing model does)."""
    from deepscope.spec import read_spec, read_weights
    from deepscope.zoo.registry import resolve_model

    folder, _ = resolve_model(name_or_path)
    spec = read_spec(folder)
    if spec.task != task:  # same shapes, other meaning: its outputs would be read wrongly
        raise ConfigError(
            f"cannot start from '{name_or_path}': it is a model of task '{spec.task}', this "
            f"run trains '{task}'; start from a '{task}' model, or from scratch"
        )
    config = net.config
    adds_style = (  # U-Nets only: the other networks have no style vector
        getattr(config, "style", False)
        and spec.network.model_copy(update={"style": True}) == config
    )
    if spec.network != config and not adds_style:
        theirs, ours = spec.network.model_dump(), config.model_dump()
        differ = ", ".join(
            f"{k}: {theirs.get(k)!r} there, {ours.get(k)!r} here"
            for k in dict.fromkeys([*theirs, *ours])
            if theirs.get(k) != ours.get(k)
        )
        channels = theirs.get("in_channels") != ours.get("in_channels")
        advice = (
            f"the channel count comes from the images: train on {theirs.get('in_channels')}-"
            "channel images (save the channel it was trained on alone), or from scratch"
            if channels
            else "use the same network settings (adding style: true is the one change allowed)"
        )
        raise ConfigError(
            f"cannot start from '{name_or_path}': its network differs from this run's "
            f"({differ}); {advice}"
        )
    return net.state_dict() | read_weights(folder, spec)


def training_layout(images: str | Path, axes: str | None, in_channels: int, ndim: int) -> str:
    """The axes of one input image as the training images were laid out (``YXC`` for RGB
    PNGs, ``CYX`` for channel-first TIFFs): what :meth:`Model.predict` assumes for an array
    given without axes. One channel: ``YX`` (``ZYX``); a layout that cannot be read from
    the first training image: channels first."""
    spatial = "YX" if ndim == 2 else "ZYX"
    if in_channels == 1:
        return spatial
    try:
        first = read_image(list_images([images])[0], axes=axes)
    except DeepscopeError:
        return "C" + spatial
    layout = "".join(a for a in first.axes if a == "C" or a in spatial)
    return layout if sorted(layout) == sorted("C" + spatial) else "C" + spatial


def training_diameter(task: Task, samples: list[Sample], ndim: int) -> float | None:
    """Median equivalent diameter (pixels) of the objects in the training masks, which
    the size model rescales new images to; ``None`` for tasks whose ground truth is not
    instance labels, or masks without objects."""
    if not task.instance_labels:
        return None  # class maps and target images have no objects
    return median_diameter([integer_mask(s.truth) for s in samples], ndim)


def task_settings(config: TrainConfig) -> dict:
    """The task's parameters, with the image dimensionality and the network's output grid
    filled in for tasks that need them (they must agree with the network)."""
    from deepscope.tasks import TASKS

    fields = getattr(TASKS.get(config.task), "Params", None)
    fields = fields.model_fields if fields is not None else {}
    implied = {"ndim": config.ndim, "grid": config.network.grid}
    settings = dict(config.task_params)
    for key, value in implied.items():
        if key in settings and settings[key] != value:
            raise ConfigError(
                f"task_params.{key} = {settings[key]} disagrees with the run's {key} = {value}; "
                f"leave {key} out of task_params"
            )
        if key in fields:
            settings[key] = value
    if config.network.grid > 1 and "grid" not in fields:
        raise ConfigError(f"task '{config.task}' does not support an output grid; use grid 1")
    return settings


def check_patch_fits(patch_size: int, train: list[Sample], divisor: int) -> None:
    """Warn (once) when every training image is smaller in Y or X than ``patch_size``:
    patches are then mostly padding, which slows training without adding data. More than
    twice that size is a :class:`ConfigError` (such batches can exhaust the memory)."""
    fits = max(min(s.image.shape[-2:]) for s in train)
    smallest = 2 * divisor
    if patch_size <= max(fits, smallest):
        return
    suggestion = max(smallest, fits // divisor * divisor)
    if patch_size > 2 * max(fits, smallest):
        raise ConfigError(
            f"patch_size {patch_size} is more than twice the size of the training images "
            f"(the largest square inside one is {fits}x{fits} pixels); use --patch-size "
            f"{suggestion}"
        )
    warnings.warn(
        f"patch_size {patch_size} is larger than the training images (the largest square "
        f"inside one is {fits}x{fits} pixels): patches are padded, which slows training "
        f"without adding data; use --patch-size {suggestion}",
        stacklevel=3,
    )


#: settings that say how a run is carried out, not what it learns: a resume may change them
RUN_CONTROLS = ("threads", "max_minutes", "loader_workers", "checkpoint_every", "device")


def changed_settings(saved: dict | None, current: dict, limit: int = 3) -> str:
    """The settings (dotted paths) in which ``current`` differs from the checkpoint's
    ``saved`` ones, outside :data:`RUN_CONTROLS`, as text (empty when none); ``saved``
    ``None`` (a checkpoint whose settings cannot be read) is reported as such."""
    if saved is None:
        return "settings from another deepscope version that cannot be read"

    def flat(settings: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in settings.items():
            if isinstance(value, dict) and key != "task_params":
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    before, now = flat(saved), flat(current)
    keys = [
        k
        for k in dict.fromkeys([*before, *now])
        if k not in RUN_CONTROLS and before.get(k) != now.get(k)
    ]
    shown = ", ".join(f"{k}: {before.get(k)!r} then, {now.get(k)!r} now" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def checkpoint_settings(config: TrainConfig) -> dict:
    """``config`` as JSON with every path made absolute, so that a run resumed from
    another working directory (``deepscope train ../configs/x.yaml``) compares equal."""
    settings = config.model_dump(mode="json")
    for key in (*PATH_SETTINGS, "init_from"):
        value = settings.get(key)
        if value is not None and (key != "init_from" or Path(value).is_dir()):
            settings[key] = os.path.abspath(value)
    return settings


def settings_changed_since(checkpoint: dict, config: TrainConfig) -> str:
    """How ``config`` differs from the settings a run's ``checkpoint`` was made with (see
    :func:`changed_settings`; empty when it does not)."""
    try:  # settings added by later versions take their defaults in older checkpoints
        saved = checkpoint_settings(TrainConfig.model_validate(checkpoint["config"]))
    except (ValidationError, KeyError, TypeError):
        saved = None
    return changed_settings(saved, checkpoint_settings(config))


class Trainer:
    """Runs one training configuration to a model package."""

    def __init__(
        self,
        config: TrainConfig,
        progress: ProgressCallback | None = None,
        command: str | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        self.command = command
        self.task = get_task(config.task, task_settings(config))
        self.device = resolve_device(config.device)
        self.bf16 = use_bfloat16(config.precision, self.device)
        # 2D convolutions on the CPU run faster on channels-last tensors
        self.channels_last = self.device.type == "cpu" and config.ndim == 2
        self.folder = config.package_dir
        self.ckpt_dir = self.folder / CHECKPOINTS
        self.object_diameter: float | None = None

    # -- data -----------------------------------------------------------------------------
    def load_data(self) -> tuple[list[Sample], list[Sample]]:
        c = self.config
        self_supervised = self.task.self_supervised
        if c.masks is None and not self_supervised:
            raise ConfigError(
                f"task '{c.task}' needs --{self.task.truth_name}s: the ground truth for --images"
            )
        if c.masks is not None and self_supervised:
            raise ConfigError(
                f"task '{c.task}' learns from the images alone; drop --masks (clean images "
                "for scoring go to --val-targets)"
            )
        report(self.progress, Progress("load", 0, 1, "reading training data"))
        pairs = read_pairs(c.images, c.masks, self.task, c.ndim, c.axes)
        normalization = fit_normalization(c.normalization, [raw for _, raw, _ in pairs])
        self.config = c = c.model_copy(update={"normalization": normalization})
        samples = build_samples(pairs, self.task, c.normalization)
        del pairs
        if c.val_images is not None or c.val_masks is not None:
            if c.val_images is None or (c.val_masks is None and not self_supervised):
                raise ConfigError(
                    f"give both --val-images and --val-{self.task.truth_name}s, or neither"
                )
            val = load_samples(
                c.val_images, c.val_masks, self.task, c.normalization, c.ndim, c.axes
            )
            train = samples
        elif self_supervised and len(samples) == 1:
            # one image to denoise, as the docs' one-liner has it: its own patches validate
            report(self.progress, Progress("load", 0, 1, "one image: it validates itself"))
            train, val = samples, samples
        else:
            train, val = split_samples(samples, c.val_fraction, c.seed)
        check_training_data(train, val, self.task, separate_val=c.val_images is not None)
        report(self.progress, Progress("load", 1, 1, f"{len(train)} training, {len(val)} val"))
        return train, val

    def network_config(self, train: list[Sample]) -> UNetConfig:
        """The U-Net for this run's data and task; the patch size must suit its depth."""
        n, c = self.config.network, self.config
        config = UNetConfig(
            ndim=c.ndim,
            in_channels=train[0].image.shape[0],
            out_channels=self.task.out_channels,
            depth=n.depth,
            base_filters=n.base_filters,
            norm=n.norm,
            residual=n.residual,
            grid=n.grid,
            pool=n.pool,
            top_skip=n.top_skip,
            head_filters=n.head_filters,
            style=n.style,
            blind_spot=self.task.blind_spot_network,
        )
        if c.patch_size % config.divisor or c.patch_size < 2 * config.divisor:
            raise ConfigError(
                f"patch_size {c.patch_size} must be a multiple of {config.divisor} and at "
                f"least {2 * config.divisor} for a U-Net of depth {config.depth}"
            )
        check_patch_fits(c.patch_size, train, config.divisor)
        return config

    def make_sampler(self, train: list[Sample], rng: np.random.Generator) -> PatchSampler:
        """Random training batches, augmented."""
        c = self.config
        return PatchSampler(
            train,
            c.patch_size,
            c.batch_size,
            c.augmentation,
            c.foreground_fraction,
            rng,
            self.task.prepare_batch,
            same_intensity=self.task.target_is_image,
            sample_images_by=c.sample_images_by,
        )

    def validation_batches(self, val: list[Sample]) -> list[tuple]:
        """Fixed validation batches, the same every epoch."""
        return fixed_val_batches(val, self.config, self.task)

    # -- loop -----------------------------------------------------------------------------
    def run(self, resume: bool = False) -> Path:
        """Train (or resume), tune, validate and write the package; returns its folder."""
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        train, val = self.load_data()
        c = self.config  # with the normalisation bounds measured on the training images
        self.object_diameter = training_diameter(self.task, train, c.ndim)
        net_config = self.network_config(train)
        rng = seed_everything(c.seed)
        net = build_network(net_config)
        if c.init_from:
            net.load_state_dict(initial_weights(c.init_from, net, c.task))
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        optimizer = make_optimizer(c, net.parameters())
        plateau = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
            if c.lr_schedule == "plateau"
            else None
        )
        sampler = self.make_sampler(train, rng)
        learner = Learner(net, weight_average(net, c.ema_decay), optimizer, plateau)
        val_batches = self.validation_batches(val)

        state = {
            "epoch": 0,
            "step": 0,
            "loss_sum": 0.0,
            "metric_sums": {},
            "history": [],
            "best": math.inf,
            "seconds": 0.0,  # in training steps
            "val_seconds": 0.0,  # in validation after each epoch
            "epochs": c.epochs,  # planned: fewer where max_minutes runs out first
        }
        ckpt = load_checkpoint(self.ckpt_dir) if resume else None
        if resume and ckpt is None:
            report(self.progress, Progress("train", 0, 1, "no checkpoint found; starting afresh"))
        if ckpt is not None:
            changed = settings_changed_since(ckpt, c)
            if changed:
                raise ConfigError(
                    f"the checkpoint in {self.ckpt_dir} was made with other settings "
                    f"({changed}); resume with the same settings or start afresh"
                )
            learner.load_state_dict(ckpt)
            state = ckpt["state"]

        state.setdefault("val_seconds", 0.0)  # checkpoints of earlier versions lack these
        state.setdefault("epochs", c.epochs)
        with interrupts_between_steps() as stop:
            try:
                self._loop(learner, sampler, val_batches, state, stop)
            except KeyboardInterrupt:
                self._checkpoint(learner, state)
                raise TrainingInterrupted(
                    f"training interrupted at epoch {state['epoch'] + 1} step {state['step']}; "
                    "run the same command with --resume to go on",
                    stop.signum,
                ) from None
        try:
            return self._finish(net, net_config, len(train), val, state)
        except KeyboardInterrupt:  # the last epoch's checkpoint holds everything
            raise TrainingInterrupted(
                "training was interrupted while its model was validated and saved; run the "
                "same command with --resume to finish it"
            ) from None

    def _checkpoint(self, learner: Learner, state: dict) -> None:
        save_checkpoint(
            {**learner.state_dict(), "state": state, "config": checkpoint_settings(self.config)},
            self.ckpt_dir,
        )

    def _loop(self, learner: Learner, sampler, val_batches, state, stop: StopRequest) -> None:
        c = self.config
        first_step = state["epoch"] * c.steps_per_epoch + state["step"]
        workers = c.loader_workers
        if workers is None:
            workers = auto_workers(self.device)
        with BatchStream(sampler, c.seed, first_step, workers) as batches:
            self._epochs(learner, batches, val_batches, state, stop)

    def _epochs(self, learner: Learner, batches, val_batches, state, stop: StopRequest) -> None:
        c = self.config
        net, optimizer, plateau = learner.net, learner.optimizer, learner.plateau
        while state["epoch"] < state["epochs"]:
            net.train()
            t0 = time.perf_counter()
            while state["step"] < c.steps_per_epoch:
                global_step = state["epoch"] * c.steps_per_epoch + state["step"]
                if plateau is None:
                    for group in optimizer.param_groups:
                        group["lr"] = c.learning_rate * lr_factor(c, global_step, state["epochs"])
                x, y = next(batches)
                loss, metrics = self._step(net, optimizer, x, y)
                if learner.averaged is not None:
                    learner.averaged.update_parameters(net)
                state["loss_sum"] += loss
                sums = state.setdefault("metric_sums", {})
                for key, value in metrics.items():
                    sums[key] = sums.get(key, 0.0) + value
                state["step"] += 1
                state["seconds"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                report(
                    self.progress,
                    Progress(
                        "train",
                        global_step + 1,
                        state["epochs"] * c.steps_per_epoch,
                        f"epoch {state['epoch'] + 1}",
                        {"loss": loss, "lr": optimizer.param_groups[0]["lr"]},
                    ),
                )
                if c.checkpoint_every and state["step"] % c.checkpoint_every == 0:
                    self._checkpoint(learner, state)
                stop.check()
                if budget_spent(c, state["seconds"] + state["val_seconds"]):
                    break  # an epoch longer than the budget ends early, and the run with it
            t0 = time.perf_counter()
            val_loss, val_metrics = self._validate(learner.kept, val_batches)
            state["val_seconds"] += time.perf_counter() - t0
            row = {
                "epoch": state["epoch"] + 1,
                "train_loss": state["loss_sum"] / state["step"],
                "val_loss": val_loss,
                "learning_rate": optimizer.param_groups[0]["lr"],
                "seconds": round(state["seconds"], 1),
            }
            for key, value in state.get("metric_sums", {}).items():
                row[f"train_{key}"] = value / state["step"]
            row.update({f"val_{key}": value for key, value in val_metrics.items()})
            state["history"].append(row)
            if plateau is not None:
                plateau.step(val_loss)
            if val_loss < state["best"]:
                state["best"] = val_loss
                save_checkpoint({"model": learner.kept.state_dict()}, self.ckpt_dir, BEST_WEIGHTS)
            state.update(epoch=state["epoch"] + 1, step=0, loss_sum=0.0, metric_sums={})
            state["epochs"] = epochs_in_budget(
                c, state["epoch"], state["seconds"] + state["val_seconds"]
            )
            self._checkpoint(learner, state)
            write_history(state["history"], self.folder / "history.csv")
            report(
                self.progress,
                Progress(
                    "epoch",
                    state["epoch"],
                    state["epochs"],
                    f"epoch {state['epoch']}/{state['epochs']}",
                    {k: v for k, v in row.items() if k.startswith(("train_", "val_"))},
                ),
            )
            stop.check()

    def _forward(self, net, x: np.ndarray) -> torch.Tensor:
        """The network's float32 output for a numpy batch, computed at the run's precision."""
        xt = torch.from_numpy(x).to(self.device)
        if self.channels_last:
            xt = xt.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            return net(xt).float()

    def _step(self, net, optimizer, x, y) -> tuple[float, dict[str, float]]:
        output = self._forward(net, x)
        yt = torch.from_numpy(y).to(self.device)
        loss = self.task.loss(output, yt)
        if not torch.isfinite(loss):
            raise DeepscopeError(
                "the training loss became NaN/inf; lower --learning-rate or "
                "check the images for NaN values"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            metrics = self.task.batch_metrics(output.detach(), yt)
        return float(loss.detach()), metrics

    def _validate(self, net, val_batches) -> tuple[float, dict[str, float]]:
        """Mean loss and task metrics over the fixed validation batches."""
        net.eval()
        total, sums = 0.0, {}
        with torch.inference_mode():
            for x, y in val_batches:
                output = self._forward(net, x)
                yt = torch.from_numpy(y).to(self.device)
                total += float(self.task.loss(output, yt))
                for key, value in self.task.batch_metrics(output, yt).items():
                    sums[key] = sums.get(key, 0.0) + value
        net.train()
        n = len(val_batches)
        return total / n, {key: value / n for key, value in sums.items()}

    # -- end ------------------------------------------------------------------------------
    def load_best(self, net) -> None:
        """Put the weights of the epoch with the lowest validation loss into ``net``."""
        best = load_checkpoint(self.ckpt_dir, BEST_WEIGHTS)
        if best is not None:
            net.load_state_dict(best["model"])

    def _finish(
        self, net, net_config: UNetConfig, n_train: int, val: list[Sample], state: dict
    ) -> Path:
        c = self.config
        self.load_best(net)
        spec = ModelSpec(
            name=c.name,
            task=c.task,
            task_params=self.task.params.model_dump(),
            network=net_config,
            normalization=c.normalization,
            input_axes=training_layout(c.images, c.axes, net_config.in_channels, c.ndim),
            object_diameter=self.object_diameter,
            prediction=default_prediction(c.ndim),
            description=c.description,
            tags=Tags(
                architecture=self.task.architecture,
                domain=c.domain,
                dimensionality=f"{c.ndim}d",
            ),
        )
        predictor = Predictor(net, self.task, c.normalization, device=str(self.device))
        # self-supervised runs without clean validation images have nothing to score
        scored = val if not (self.task.self_supervised and c.val_masks is None) else []
        outputs = []
        for i, s in enumerate(scored):
            outputs.append(
                predict_raw(
                    predictor.fn,
                    s.image,
                    self.task.out_channels,
                    net_config.divisor,
                    spec.prediction.tile,
                    spec.prediction.overlap,
                    grid=net_config.grid,
                )
            )
            report(self.progress, Progress("validate", i + 1, len(val), "validation images"))
        tuned = {}
        if c.tune_thresholds and scored:  # a grid of post-processings: minutes for 3D flows
            what = "thresholds chosen on the validation images"
            report(self.progress, Progress("tune", 0, 1, what))
            tuned = self.task.tune(outputs, [s.truth for s in scored])
            report(self.progress, Progress("tune", 1, 1, what))
        if scored:
            results = [self.task.postprocess(o, s.truth.shape) for o, s in zip(outputs, scored)]
            metrics = self.task.evaluate(
                results, [s.truth for s in scored], [s.name for s in scored]
            )
        else:
            metrics = {"note": "no clean validation images (--val-targets): no metrics"}
        side = min(512, c.patch_size * (2 if c.ndim == 2 else 1))
        side = -(-side // net_config.divisor) * net_config.divisor
        cpu_backend, backend_seconds = faster_cpu_backend(net, (side,) * c.ndim)
        history = state["history"]
        spec = spec.model_copy(
            update={
                "task_params": self.task.params.model_dump(),
                "training": {
                    "command": self.command,
                    "settings": checkpoint_settings(c),  # folders made absolute
                    "data": {
                        "images": os.path.abspath(c.images),
                        "masks": os.path.abspath(c.masks) if c.masks else None,
                        "val_images": os.path.abspath(c.val_images) if c.val_images else None,
                        "n_train": n_train,
                        "n_val": len(val),
                    },
                    "epochs_done": state["epoch"],
                    "seconds": round(state["seconds"], 1),
                    "validation_seconds": round(state["val_seconds"], 1),
                    "best_val_loss": state["best"],
                    "tuned": tuned,
                    "device": str(self.device),
                    "threads": torch.get_num_threads(),
                    "cpu_backend_seconds": {"shape": [side] * c.ndim, **backend_seconds},
                },
                "prediction": spec.prediction.model_copy(update={"cpu_backend": cpu_backend}),
                "validation": metrics,
            }
        )
        if history:
            plot_history(history, self.folder / "loss.png", c.name)
        save_package(self.folder, spec, net.state_dict())
        if c.int8:
            from deepscope.zoo.quantize import quantize_model

            report(self.progress, Progress("int8", 0, 1, "calibrating an int8 network"))
            scored = c.val_images is not None and c.val_masks is not None
            quantize_model(
                self.folder,
                c.images,
                val_images=c.val_images if scored else None,
                val_masks=c.val_masks if scored else None,
            )
            report(self.progress, Progress("int8", 1, 1, "int8 network added"))
        report(self.progress, Progress("done", 1, 1, f"model written to {self.folder}", {}))
        return self.folder


def train(
    config: TrainConfig,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    command: str | None = None,
) -> Path:
    """Train a model from ``config``; returns the model package folder."""
    from deepscope.zoo.registry import builtin_names

    check_output_folder(config.package_dir.parent, "--out")  # before any work, not after it
    if config.out is None and config.name in builtin_names():
        raise ConfigError(  # it would land in the library under a name the built-in shadows
            f"'{config.name}' is the name of a built-in model; choose another --name"
        )
    package = config.package_dir
    if config.task == "classify":  # a model folder among the class folders would be a class
        check_not_an_input(package, [config.images, config.val_images], "the model folder")
    run_saved = (package / CHECKPOINTS / "last.pt").exists()
    if (package / SPEC_FILE).exists():
        if not resume or not run_saved:
            raise ConfigError(
                f"{package} already holds the model '{config.name}'; choose another --name "
                "or --out, or remove it first (deepscope models remove NAME, for a model in "
                "your library)"
            )
        changed = settings_changed_since(load_checkpoint(package / CHECKPOINTS) or {}, config)
        if changed:  # another run's model: resuming must not pass it off as this one
            raise ConfigError(
                f"{package} already holds the model '{config.name}', trained with other "
                f"settings ({changed}); choose another --name or --out"
            )
        report(progress, Progress("train", 1, 1, "this run has finished; nothing to resume"))
        return package  # as it is: tuned thresholds and int8 networks added since stay
    if run_saved and not resume:
        raise ConfigError(
            f"{package} holds an earlier run; resume it with --resume, choose another "
            "--name or --out, or discard it (deepscope models remove NAME, for a run in "
            "your library)"
        )
    if config.task == "classify":
        from deepscope.train.classify import ClassifierTrainer

        return ClassifierTrainer(config, progress, command).run(resume=resume)
    if config.task == "autoencoder":
        from deepscope.train.autoencoder import AutoencoderTrainer

        return AutoencoderTrainer(config, progress, command).run(resume=resume)
    return Trainer(config, progress, command).run(resume=resume)
