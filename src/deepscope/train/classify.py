"""Training a crop classifier: the shared training loop with crop data, a balanced sampler,
a stratified validation split, and classification reports at the end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepscope.data.crops import (
    CropSampler,
    class_folders,
    prepare_crops,
    raw_crops,
    stratified_split,
)
from deepscope.errors import ConfigError, InputError
from deepscope.measure import write_table
from deepscope.metrics.classification import plot_confusion
from deepscope.nets.classifier import ClassifierConfig
from deepscope.predict.crops import CropPredictor
from deepscope.progress import Progress, report
from deepscope.spec import ModelSpec, Tags, save_package
from deepscope.tasks import get_task
from deepscope.train.history import plot_history
from deepscope.train.trainer import Trainer


@dataclass
class CropSet:
    """Normalised crops ``(N, C, S, S)``, their class indices and file names."""

    crops: np.ndarray
    labels: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> CropSet:
        return CropSet(self.crops[index], self.labels[index], [self.names[i] for i in index])


def inverse_frequency_weights(labels: np.ndarray, n_classes: int) -> list[float]:
    """Loss weight per class proportional to 1 / count, with mean 1 over the classes."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    return [float(w) for w in weights * n_classes / weights.sum()]


class ClassifierTrainer(Trainer):
    """Runs a ``classify`` training configuration to a model package."""

    def _read(self, folder: Path, classes: list[str] | None) -> tuple[list[str], CropSet, int]:
        """The class names, the crops of ``folder`` normalised and sized, and the median
        side of its crop files (which count --classify cuts around each object)."""
        found, items = class_folders(folder)
        if classes is not None:
            unknown = sorted(set(found) - set(classes))
            if unknown:
                raise InputError(
                    f"validation classes {unknown} in '{folder}' are not training classes "
                    f"{classes}; use the same class sub-folders"
                )
            remap = [classes.index(name) for name in found]
            items = [(path, remap[i]) for path, i in items]
            found = classes
        size = self.task.params.crop_size
        c = self.config
        raws = raw_crops([p for p, _ in items], c.axes)
        side = int(np.median([max(r.shape[1:]) for r in raws]))
        crops = prepare_crops(raws, size, c.normalization)
        labels = np.array([i for _, i in items], np.int64)
        return found, CropSet(crops, labels, [p.name for p, _ in items]), side

    def load_data(self) -> tuple[CropSet, CropSet]:
        c = self.config
        if c.masks is not None or c.val_masks is not None:
            raise ConfigError(
                "classify reads classes from sub-folders of --images; drop --masks/--val-masks"
            )
        report(self.progress, Progress("load", 0, 1, "reading crops"))
        classes, data, side = self._read(c.images, None)
        given = self.task.params.classes
        if given and given != classes:
            raise ConfigError(
                f"task_params.classes {given} differ from the class folders {classes}; "
                "leave classes out of task_params"
            )
        if c.val_images is not None:
            train = data
            _, val, _ = self._read(c.val_images, classes)
        else:
            train_idx, val_idx = stratified_split(data.labels, c.val_fraction, c.seed)
            if not len(val_idx):
                raise InputError(
                    "every class folder holds one crop, so none can be held out for validation; "
                    "give at least two crops of a class, or --val-images"
                )
            train, val = data.subset(train_idx), data.subset(val_idx)
        params = self.task.params.model_dump()
        params["classes"] = classes
        params["window"] = params["window"] or side
        if params["balance"] == "weights":
            params["class_weights"] = inverse_frequency_weights(train.labels, len(classes))
        self.task = get_task(self.task.name, params)
        report(self.progress, Progress("load", 1, 1, f"{len(train)} training, {len(val)} val"))
        return train, val

    def network_config(self, train: CropSet) -> ClassifierConfig:
        n = self.config.network
        size = self.task.params.crop_size
        if size < 2**n.depth:
            raise ConfigError(
                f"crop_size {size} is too small for {n.depth} pooling levels; give a crop size "
                f"of at least {2**n.depth} or a smaller network depth"
            )
        return ClassifierConfig(
            in_channels=train.crops.shape[1],
            out_channels=self.task.out_channels,
            depth=n.depth,
            base_filters=n.base_filters,
            dropout=n.dropout,
        )

    def make_sampler(self, train: CropSet, rng: np.random.Generator) -> CropSampler:
        c, p = self.config, self.task.params
        return CropSampler(
            train.crops,
            train.labels,
            c.batch_size,
            c.augmentation,
            p.max_shift,
            p.balance == "sampling",
            rng,
        )

    def validation_batches(self, val: CropSet) -> list[tuple]:
        """Every validation crop once, unaugmented."""
        b = max(self.config.batch_size, 64)
        return [(val.crops[i : i + b], val.labels[i : i + b]) for i in range(0, len(val), b)]

    def _finish(self, net, net_config, n_train: int, val: CropSet, state: dict) -> Path:
        c = self.config
        self.load_best(net)
        predictor = CropPredictor(net, self.task, c.normalization, device=str(self.device))
        results = predictor.results(val.crops)
        metrics = self.task.evaluate(results, list(val.labels), val.names)
        classes = self.task.classes
        pred = [int(r.classes) for r in results]
        plot_confusion(val.labels, pred, classes, self.folder / "confusion.png", c.name)
        write_table(per_class_rows(metrics, classes), self.folder / "per_class.csv")
        data = {
            "images": str(c.images),
            "val_images": str(c.val_images) if c.val_images else None,
            "n_train": n_train,
            "n_val": len(val),
            "split": "given" if c.val_images else f"stratified, seed {c.seed}",
        }
        spec = crop_model_spec(self, net_config, "YXC", data, state, metrics)
        if state["history"]:
            plot_history(state["history"], self.folder / "loss.png", c.name)
        save_package(self.folder, spec, net.state_dict())
        report(self.progress, Progress("done", 1, 1, f"model written to {self.folder}", {}))
        return self.folder


def crop_model_spec(
    trainer: Trainer, net_config, colour_axes: str, data: dict, state: dict, validation: dict
) -> ModelSpec:
    """The package spec of a crop network (classifier or autoencoder); ``colour_axes`` are
    the input axes of multichannel crops (one channel: ``YX``)."""
    c = trainer.config
    return ModelSpec(
        name=c.name,
        task=c.task,
        task_params=trainer.task.params.model_dump(),
        network=net_config,
        normalization=c.normalization,
        input_axes="YX" if net_config.in_channels == 1 else colour_axes,
        description=c.description,
        tags=Tags(architecture=trainer.task.architecture, domain=c.domain, dimensionality="2d"),
        training={
            "command": trainer.command,
            "settings": c.model_dump(mode="json"),
            "data": data,
            "epochs_done": state["epoch"],
            "seconds": round(state["seconds"], 1),
            "validation_seconds": round(state["val_seconds"], 1),
            "best_val_loss": state["best"],
            "device": str(trainer.device),
            "threads": torch.get_num_threads(),
        },
        validation=validation,
    )


def per_class_rows(metrics: dict, classes: list[str]) -> list[dict]:
    """One row per class: precision, recall, F1 and support, from flat scores."""
    return [
        {
            "class": name,
            **{key: metrics[f"{key}/{name}"] for key in ("precision", "recall", "f1", "support")},
        }
        for name in classes
    ]
