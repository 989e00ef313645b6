"""Mitotic-phase classification of single-cell crops: our CNN against hand-crafted baselines.

Usage (from the repository root):
    .venv/bin/python tools/mitosis_split.py      # once: the split by cell track
    .venv/bin/python benchmarks/bench_mitosis_classifier.py [--model mitosis-phase-classifier]
        [--split tracks|random] [--tta] [--out benchmarks/results/mitosis_classifier.json]

Data: ../shared/data/mitosis_crops (778 crops 64x64, 8 classes). Split ``tracks`` (default):
the folders runs/mitosis_split/{train,val} of tools/mitosis_split.py, where no cell is on
both sides (the built-in model was trained on exactly that training part). Split
``random``: the trainer's own default (stratified, 15% of every class, seed 0), which
lets near-copies of a cell land on both sides and flatters every method; only meaningful
for a model trained with that split. Baselines on the same split, fitted on the training
crops only (scikit-learn):

* HOG (per channel, 8x8-pixel cells) + intensity statistics -> logistic regression;
* the same features -> random forest (500 trees);
* region features of the chromatin (threshold of the red channel: area, shape, intensity)
  -> random forest.

Prints accuracy, macro F1 and balanced accuracy per method; writes a JSON file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from skimage import filters, measure
from skimage.feature import hog

from deepscope.data.crops import class_folders, stratified_split
from deepscope.io import read_image
from deepscope.metrics.classification import classification_scores
from deepscope.zoo import load_model

ROOT = Path(__file__).resolve().parents[1]
CROPS = ROOT.parent / "shared" / "data" / "mitosis_crops"


def hog_features(crop: np.ndarray) -> np.ndarray:
    """HOG of the red and green channels plus per-channel intensity statistics."""
    parts = []
    for c in range(2):
        channel = crop[..., c].astype(np.float32) / 255
        parts.append(hog(channel, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)))
        parts.append(np.percentile(channel, [5, 25, 50, 75, 95, 99]))
        parts.append([channel.mean(), channel.std()])
    return np.concatenate(parts)


def region_features(crop: np.ndarray) -> np.ndarray:
    """Shape and intensity of the chromatin (red channel) object nearest the centre."""
    red = crop[..., 0].astype(np.float32)
    green = crop[..., 1].astype(np.float32)
    mask = red > filters.threshold_otsu(red) if red.max() > red.min() else red > 0
    labels = measure.label(mask)
    props = measure.regionprops(labels, intensity_image=red)
    if not props:
        return np.zeros(14)
    centre = np.array(red.shape) / 2
    p = min(props, key=lambda r: np.sum((np.array(r.centroid) - centre) ** 2))
    inside = labels == p.label
    return np.array(
        [
            p.area,
            p.perimeter,
            p.eccentricity,
            p.solidity,
            p.extent,
            p.axis_major_length,
            p.axis_minor_length,
            p.intensity_mean,
            red[inside].std(),
            red[inside].max(),
            green[inside].mean(),
            green.mean(),
            green.std(),
            len(props),
        ]
    )


def track_split(items: list[tuple[Path, int]], folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``items`` in the validation folder of tools/mitosis_split.py and the rest."""
    if not (folder / "val").is_dir():
        raise SystemExit(f"no split in {folder}; run .venv/bin/python tools/mitosis_split.py")
    val_names = {p.name for p, _ in class_folders(folder / "val")[1]}
    in_val = np.array([p.name in val_names for p, _ in items])
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mitosis-phase-classifier")
    parser.add_argument("--tta", action="store_true", help="average over flips and rotations")
    parser.add_argument("--split", choices=["tracks", "random"], default="tracks")
    parser.add_argument("--split-dir", type=Path, default=ROOT / "runs/mitosis_split")
    parser.add_argument("--seed", type=int, default=0, help="the trainer's split seed")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/mitosis_classifier.json"
    )
    args = parser.parse_args()

    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes, items = class_folders(CROPS)
    labels = np.array([i for _, i in items])
    if args.split == "random":
        train_idx, val_idx = stratified_split(labels, args.val_fraction, args.seed)
        split = f"stratified random, {args.val_fraction:.0%} per class, seed {args.seed}"
    else:
        train_idx, val_idx = track_split(items, args.split_dir)
        split = f"by cell track ({args.split_dir})"
    crops = [read_image(p).data for p, _ in items]
    print(f"{len(train_idx)} training and {len(val_idx)} validation crops, {len(classes)} classes")

    results = {}

    def score(name: str, pred: np.ndarray, seconds: float) -> None:
        s = classification_scores(labels[val_idx], pred, classes)
        results[name] = {**s, "seconds": round(seconds, 2)}

    features = {
        "hog": np.stack([hog_features(c) for c in crops]),
        "region": np.stack([region_features(c) for c in crops]),
    }
    baselines = {
        "hog + logistic regression": (
            "hog",
            make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000)),
        ),
        "hog + random forest": (
            "hog",
            RandomForestClassifier(500, class_weight="balanced", random_state=0),
        ),
        "region features + random forest": (
            "region",
            RandomForestClassifier(500, class_weight="balanced", random_state=0),
        ),
    }
    for name, (kind, estimator) in baselines.items():
        t0 = time.perf_counter()
        estimator.fit(features[kind][train_idx], labels[train_idx])
        score(name, estimator.predict(features[kind][val_idx]), time.perf_counter() - t0)

    model = load_model(args.model, device="cpu")
    if model.task.classes != classes:
        raise SystemExit(f"model classes {model.task.classes} differ from the folders {classes}")
    t0 = time.perf_counter()
    prepared = np.stack([model.predictor.prepare(crops[i], "YXC") for i in val_idx])
    found = model.predictor.results(prepared, tta=args.tta)
    seconds = time.perf_counter() - t0
    score(
        f"{args.model}{' (tta)' if args.tta else ''}",
        np.array([int(r.classes) for r in found]),
        seconds,
    )

    print(f"{'method':40s} {'accuracy':>9s} {'macro F1':>9s} {'bal. acc':>9s}")
    for name, s in results.items():
        print(f"{name:40s} {s['accuracy']:9.3f} {s['macro_f1']:9.3f} {s['balanced_accuracy']:9.3f}")
    ours = results[f"{args.model}{' (tta)' if args.tta else ''}"]
    print("per class (ours): " + ", ".join(f"{c} F1 {ours[f'f1/{c}']:.2f}" for c in classes))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "data": str(CROPS),
                "split": split,
                "n_train": len(train_idx),
                "n_val": len(val_idx),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
