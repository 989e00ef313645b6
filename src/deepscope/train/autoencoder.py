"""Training a crop autoencoder: the shared training loop with crops from a CellH5 file
(negative controls) or a folder, input corruption, and a reconstruction figure at the end."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from deepscope.cell_objects import CellObjects, crop_files, objects_from_cellh5, objects_from_crops
from deepscope.data.crops import CropSampler, stratified_split
from deepscope.data.normalize import normalize
from deepscope.errors import ConfigError, InputError
from deepscope.nets.autoencoder import AutoencoderConfig
from deepscope.progress import Progress, report
from deepscope.spec import save_package
from deepscope.train.classify import CropSet, crop_model_spec
from deepscope.train.history import plot_history
from deepscope.train.trainer import Trainer

CELLH5_SUFFIXES = (".ch5", ".h5", ".hdf5", ".cellh5")


def read_objects(
    source: Path, size: int, mapping: Path | None, axes: str | None, controls_only: bool
) -> CellObjects:
    """Cell objects of a CellH5 file (only negative controls with ``controls_only``) or of
    a folder of crops."""
    if source.suffix.lower() in CELLH5_SUFFIXES or (source.is_file() and h5py.is_hdf5(source)):
        return objects_from_cellh5(source, size, mapping, controls_only=controls_only)
    if source.is_file():
        raise ConfigError(
            f"'{source}' is neither a CellH5 file (deepscope cellh5 build writes one) nor a "
            "folder of crops; give one of them"
        )
    if mapping is not None:
        raise ConfigError("--mapping goes with a CellH5 file (--cellh5), not a folder of crops")
    return objects_from_crops(crop_files(source), size, axes)


def normalized_crops(objects: CellObjects, normalization) -> np.ndarray:
    """Every crop normalised on its own, as at prediction time."""
    return np.stack([normalize(c, normalization) for c in objects.crops]).astype(np.float32)


def plot_reconstructions(
    originals: np.ndarray, reconstructions: np.ndarray, path: Path, title: str = ""
) -> Path:
    """Save up to 8 crops (first channel) above their reconstructions as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(8, len(originals))
    fig, axes = plt.subplots(2, max(n, 1), figsize=(1.3 * max(n, 1), 3), dpi=100, squeeze=False)
    for i in range(n):
        lo, hi = np.percentile(originals[i, 0], [1, 99.5])
        for row, data in enumerate((originals, reconstructions)):
            axes[row, i].imshow(data[i, 0], cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6))
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].set_title("crops", fontsize=8, loc="left")
    axes[1, 0].set_title("reconstructions", fontsize=8, loc="left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


class AutoencoderTrainer(Trainer):
    """Runs an ``autoencoder`` training configuration to a model package."""

    def _crops(self, source: Path) -> CropSet:
        c, p = self.config, self.task.params
        objects = read_objects(source, p.crop_size, c.mapping, c.axes, c.mapping is not None)
        if len(objects) < 2:
            raise InputError(f"{source} gives {len(objects)} object(s); need at least 2 to train")
        crops = normalized_crops(objects, c.normalization)
        names = [f"{pos}#{label}" for pos, label in zip(objects.positions, objects.labels)]
        return CropSet(crops, np.zeros(len(crops), np.int64), names)

    def load_data(self) -> tuple[CropSet, CropSet]:
        c = self.config
        if c.masks is not None or c.val_masks is not None:
            raise ConfigError("an autoencoder learns from the crops alone; drop --masks")
        report(self.progress, Progress("load", 0, 1, "reading cell objects"))
        data = self._crops(c.images)
        if c.val_images is not None:
            train, val = data, self._crops(c.val_images)
        else:
            train_idx, val_idx = stratified_split(data.labels, c.val_fraction, c.seed)
            train, val = data.subset(train_idx), data.subset(val_idx)
        report(self.progress, Progress("load", 1, 1, f"{len(train)} training, {len(val)} val"))
        return train, val

    def network_config(self, train: CropSet) -> AutoencoderConfig:
        p = self.task.params
        config = AutoencoderConfig(
            in_channels=train.crops.shape[1],
            crop_size=p.crop_size,
            architecture=p.architecture,
            latent=p.latent,
        )
        config.feature_map_size()  # the crop must divide evenly by the pooling
        return config

    def make_sampler(self, train: CropSet, rng: np.random.Generator) -> CropSampler:
        c = self.config
        return CropSampler(
            train.crops,
            train.labels,
            c.batch_size,
            c.augmentation,
            0,
            False,
            rng,
            self.task.prepare_batch,
        )

    def validation_batches(self, val: CropSet) -> list[tuple]:
        """Every validation crop once, corrupted with a fixed seed."""
        rng = np.random.default_rng(self.config.seed + 1)
        b = max(self.config.batch_size, 64)
        return [
            self.task.prepare_batch(val.crops[i : i + b], val.labels[i : i + b], rng)
            for i in range(0, len(val), b)
        ]

    def _finish(self, net, net_config, n_train: int, val: CropSet, state: dict) -> Path:
        c = self.config
        self.load_best(net)
        net.eval()
        with torch.inference_mode():
            clean = torch.from_numpy(val.crops).to(self.device)
            recon = net(clean).cpu().numpy()
        mse = float(np.mean((recon - val.crops) ** 2))
        variance = float(val.crops.var())
        plot_reconstructions(val.crops, recon, self.folder / "reconstructions.png", c.name)
        data = {
            "images": str(c.images),
            "mapping": str(c.mapping) if c.mapping else None,
            "objects": "negative controls" if c.mapping else "all",
            "n_train": n_train,
            "n_val": len(val),
        }
        validation = {
            "reconstruction_mse": mse,
            "explained_variance": 1 - mse / variance if variance > 0 else float("nan"),
            "n_images": len(val),
        }
        spec = crop_model_spec(self, net_config, "CYX", data, state, validation)
        if state["history"]:
            plot_history(state["history"], self.folder / "loss.png", c.name)
        save_package(self.folder, spec, net.state_dict())
        report(self.progress, Progress("done", 1, 1, f"model written to {self.folder}", {}))
        return self.folder
