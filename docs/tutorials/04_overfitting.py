"""Tutorial 4: overfitting, and three cures.

A network with half a million weights, trained on only 12 crops per class, can simply memorise
its training crops: the training loss falls to almost zero while the loss on new crops (the
validation loss) first falls and then climbs, as the network grows ever more confident about
details that do not generalise. Three standard cures: augmentation (show each crop randomly
rotated by 90 degrees and mirrored, which does not change its mitotic phase), weight decay (pull
the weights gently towards zero) and early stopping (keep the weights of the epoch with the
lowest validation loss, and stop when it has not improved for a while).
"""

import argparse
import copy
import re
import sys
from pathlib import Path

import imageio.v3 as iio
import matplotlib

matplotlib.use("Agg")  # draw into files, no window needed
import matplotlib.pyplot as plt
import numpy as np
import torch

torch.set_num_threads(1)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mitosis_crops"
CLASSES = ["inter", "pro", "prometa", "meta", "earlyana", "lateana", "telo", "apo"]


def load_crops(folder: Path) -> tuple[torch.Tensor, np.ndarray]:
    """Crops as float (N, 2, 32, 32): red and green channels, 2x2 averaged; as in tutorial 3,
    a cell cropped twice (shifted by a pixel) is kept once."""
    images, labels, seen = [], [], []
    for label, name in enumerate(CLASSES):
        for file in sorted((folder / name).glob("*.png")):
            # File names look like P0037_T00020_X0517_Y0710__img.png: plate, frame, x, y.
            plate, frame, x, y = map(int, re.findall(r"\d+", file.name)[:4])
            if any(
                (plate, frame) == (p, f) and abs(x - u) <= 3 and abs(y - v) <= 3
                for p, f, u, v in seen
            ):
                continue  # the same cell again, shifted by a pixel or two
            seen.append((plate, frame, x, y))
            images.append(iio.imread(file)[..., :2])
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return torch.nn.functional.avg_pool2d(x, 2), np.array(labels)


def split(labels: np.ndarray, n_train_per_class: int, seed: int):
    """A quarter of each class for validation; only n_train_per_class of the rest for training."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = round(0.25 * len(members))
        val += list(members[:n_val])
        train += list(members[n_val : n_val + n_train_per_class])
    return np.array(train), np.array(val)


def augment(batch: torch.Tensor) -> torch.Tensor:
    """Turn each crop by a random multiple of 90 degrees and mirror half of them."""
    out = []
    for image in batch:
        image = torch.rot90(image, int(torch.randint(4, ())), dims=(1, 2))
        out.append(image.flip(2) if torch.rand(()) < 0.5 else image)
    return torch.stack(out)


def train(x, y, train_idx, val_idx, cured: bool, epochs: int = 30, patience: int = 8) -> dict:
    model = torch.nn.Sequential(  # far too many weights for 96 crops: ~0.5 million
        torch.nn.Conv2d(2, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 8 * 8, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, len(CLASSES)),
    )  # fmt: skip
    # AdamW = Adam with weight decay; weight_decay=0 switches the decay off.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05 if cured else 0)
    loss_fn = torch.nn.CrossEntropyLoss()
    history = {"train": [], "val": []}
    best = {"val": float("inf")}
    for epoch in range(1, epochs + 1):  # epochs counted from 1
        model.train()
        order = train_idx[torch.randperm(len(train_idx)).numpy()]
        total = 0.0
        for start in range(0, len(order), 16):
            batch = order[start : start + 16]
            inputs = augment(x[batch]) if cured else x[batch]
            loss = loss_fn(model(inputs), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            scores = model(x[val_idx])
        history["train"].append(total / len(train_idx))
        history["val"].append(loss_fn(scores, y[val_idx]).item())
        if history["val"][-1] < best["val"]:  # remember the best epoch so far
            best = {"val": history["val"][-1], "epoch": epoch}
            best["weights"] = copy.deepcopy(model.state_dict())
        if cured and epoch - best["epoch"] >= patience:
            break  # early stopping: no improvement for `patience` epochs
    # The overfitting run keeps its last weights; the cured run goes back to its best epoch.
    if cured:
        model.load_state_dict(best["weights"])
    kept = best["epoch"] if cured else epoch
    with torch.no_grad():
        scores = model(x[val_idx])
    history["kept_val_loss"] = loss_fn(scores, y[val_idx]).item()
    history["kept_val_accuracy"] = (scores.argmax(1) == y[val_idx]).float().mean().item()
    return {**history, "kept_epoch": kept}


def main(out_dir: Path, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    x, labels = load_crops(DATA)
    train_idx, val_idx = split(labels, n_train_per_class=12, seed=seed)
    mean = x[train_idx].mean(dim=(0, 2, 3), keepdim=True)
    std = x[train_idx].std(dim=(0, 2, 3), keepdim=True)
    x, y = (x - mean) / std, torch.from_numpy(labels)

    runs = {
        "overfit": train(x, y, train_idx, val_idx, cured=False),
        "cured": train(x, y, train_idx, val_idx, cured=True),
    }

    # Figure: training and validation loss of both runs, on the same scale.
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
    titles = {
        "overfit": "too large model, little data",
        "cured": "+ augmentation, weight decay,\nearly stopping",
    }
    for ax, (name, run) in zip(axes, runs.items()):
        epochs = range(1, len(run["val"]) + 1)
        ax.plot(epochs, run["train"], label="training loss")
        ax.plot(epochs, run["val"], label="validation loss")
        ax.axvline(run["kept_epoch"], color="gray", linestyle=":", label="weights kept")
        accuracy = run["kept_val_accuracy"]
        ax.set(xlabel="epoch", title=f"{titles[name]}\nvalidation accuracy {accuracy:.2f}")
    axes[0].set_ylabel("loss")
    axes[1].legend()
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "04_overfitting.png", dpi=80)
    plt.close(fig)

    results = {"n_train": len(train_idx), "n_val": len(val_idx)}
    for name, run in runs.items():
        results[f"{name}_best_val_loss"] = min(run["val"])
        results[f"{name}_kept_val_loss"] = run["kept_val_loss"]
        results[f"{name}_val_accuracy"] = run["kept_val_accuracy"]
        results[f"{name}_kept_epoch"] = run["kept_epoch"]
        results[f"{name}_final_train_loss"] = run["train"][-1]
        results[f"{name}_epochs_run"] = len(run["val"])
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures")
    out = parser.parse_args().out
    if not DATA.is_dir():
        print(f"data folder {DATA} is absent: nothing to do")
        sys.exit(0)
    for key, value in main(out).items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
