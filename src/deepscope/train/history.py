"""Training history: one CSV row per epoch and a loss-curve PNG."""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ("epoch", "train_loss", "val_loss", "learning_rate", "seconds")


def write_history(rows: list[dict], path: Path) -> Path:
    """Write history ``rows`` (dicts with COLUMNS) to a CSV file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def plot_history(rows: list[dict], path: Path, title: str = "") -> Path:
    """Plot training and validation loss per epoch to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, [r["train_loss"] for r in rows], label="training loss")
    ax.plot(epochs, [r["val_loss"] for r in rows], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
