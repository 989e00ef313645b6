"""Scores of a classifier: accuracy, macro F1, per-class precision / recall / F1, and a
confusion-matrix figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepscope.metrics.pixel import confusion_matrix


def classification_scores(
    truth: Sequence[int], pred: Sequence[int], classes: Sequence[str]
) -> dict:
    """Flat, JSON-ready scores of predicted against true class indices.

    Keys: ``accuracy``, ``balanced_accuracy`` (mean recall), ``macro_f1`` (mean F1 over the
    classes present in ``truth`` or ``pred``), ``n_images``, and per class ``precision/<c>``,
    ``recall/<c>``, ``f1/<c>``, ``support/<c>``. A class never predicted has precision 0;
    a class absent from ``truth`` has recall 0 and is left out of the balanced accuracy.
    """
    truth, pred = np.asarray(truth, np.int64), np.asarray(pred, np.int64)
    counts = confusion_matrix(pred, truth, len(classes))
    hits = np.diag(counts).astype(float)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(hits), where=denom > 0)
    seen = (support > 0) | (predicted > 0)
    scores: dict = {
        "accuracy": float(hits.sum() / max(1, truth.size)),
        "balanced_accuracy": float(recall[support > 0].mean()) if support.any() else 0.0,
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "n_images": int(truth.size),
    }
    for i, name in enumerate(classes):
        scores[f"precision/{name}"] = float(precision[i])
        scores[f"recall/{name}"] = float(recall[i])
        scores[f"f1/{name}"] = float(f1[i])
        scores[f"support/{name}"] = int(support[i])
    return scores


def plot_confusion(
    truth: Sequence[int], pred: Sequence[int], classes: Sequence[str], path: Path, title: str = ""
) -> Path:
    """Save the confusion matrix (rows: true class, columns: predicted; counts and row
    fractions) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = confusion_matrix(np.asarray(pred), np.asarray(truth), len(classes))
    rows = counts.sum(axis=1, keepdims=True)
    fraction = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * k, 1.0 + 0.55 * k), dpi=100)
    ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                colour = "white" if fraction[i, j] > 0.6 else "black"
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
