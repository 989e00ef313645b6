"""Training history: one CSV row per epoch and a loss-curve PNG."""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ("epoch", "train_loss", "val_loss", "learning_rate", "seconds")


def write_history(rows: list[dict], path: Path) -> Path:
    """Write history ``rows`` (dicts with COLUMNS and any task metrics such as
    ``val_accuracy``) to a CSV file."""
    extra = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in COLUMNS]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*COLUMNS, *extra], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def read_history(path: Path) -> list[dict[str, float | None]]:
    """The rows of a history CSV (numbers, ``None`` where a cell is empty or not a
    number); no rows when the file is absent."""
    if not path.is_file():
        return []

    def number(text: str | None) -> float | None:
        try:
            return float(text)
        except (TypeError, ValueError):
            return None

    with open(path, newline="") as fh:
        return [{k: number(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def plot_history(rows: list[dict], path: Path, title: str = "") -> Path:
    """Plot training and validation loss per epoch to a PNG file, with a second panel for
    accuracy when the rows have it (classifiers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    accuracy = "val_accuracy" in rows[0]
    fig, axes = plt.subplots(1, 2 if accuracy else 1, figsize=(11 if accuracy else 6, 4), dpi=100)
    ax = axes[0] if accuracy else axes
    ax.plot(epochs, [r["train_loss"] for r in rows], label="training loss")
    ax.plot(epochs, [r["val_loss"] for r in rows], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if accuracy:
        acc = axes[1]
        if "train_accuracy" in rows[0]:
            acc.plot(epochs, [r["train_accuracy"] for r in rows], label="training accuracy")
        acc.plot(epochs, [r["val_accuracy"] for r in rows], label="validation accuracy")
        acc.set_xlabel("epoch")
        acc.set_ylabel("accuracy")
        acc.set_ylim(0, 1)
        acc.grid(alpha=0.3)
        acc.legend()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
