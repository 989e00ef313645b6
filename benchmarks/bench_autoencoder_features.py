"""How much do learned autoencoder features know about mitotic phases? A linear probe.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_autoencoder_features.py [--work runs/ae-mitosis]
        [--epochs 64] [--latent 32] [--threads 2] [--model FOLDER]

Data: ../shared/data/mitosis_crops, split by cell track as for the classifier (run
``tools/mitosis_split.py`` first: runs/mitosis_split/{train,val}, no cell on both sides).
The autoencoder is trained without labels on the training crops only, with the Deep
Learning Module's defaults (AdaGrad, learning rate 0.05, batch 128, corruption 0.1). Three
feature sets of the same crops, each fed to the same probe (standardised features ->
logistic regression, fitted on the training crops, scored on the held-out crops):

* the autoencoder's features (``latent`` numbers per crop);
* hand-crafted features: our Count measurements (``deepscope.measure``) of the chromatin
  object (Otsu threshold of the red channel, the object nearest the centre) and the
  tubulin intensity inside it;
* raw-pixel PCA: the first ``latent`` principal components of the normalised crops.

Prints accuracy and macro F1 per feature set and writes a JSON file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from skimage import filters, measure

from deepscope.api import train
from deepscope.cell_objects import objects_from_crops
from deepscope.data.crops import class_folders
from deepscope.data.normalize import Normalization, normalize
from deepscope.encode import encode_objects
from deepscope.measure import measure_objects
from deepscope.metrics.classification import classification_scores
from deepscope.zoo import load_model

ROOT = Path(__file__).resolve().parents[1]
CROPS = ROOT.parent / "shared" / "data" / "mitosis_crops"
SIZE = 64


def handcrafted(crop: np.ndarray) -> np.ndarray:
    """Count measurements of the chromatin object nearest the centre of a (C, Y, X) crop."""
    red = crop[0]
    mask = red > filters.threshold_otsu(red) if red.max() > red.min() else red > 0
    labels = measure.label(mask)
    if labels.max() == 0:
        return np.zeros(12)
    centre = np.array(red.shape) / 2
    rows = measure_objects(labels, np.moveaxis(crop[:2], 0, -1))
    row = min(
        rows, key=lambda r: (r["centroid_y"] - centre[0]) ** 2 + (r["centroid_x"] - centre[1]) ** 2
    )
    keys = [
        "area", "perimeter", "eccentricity", "solidity", "major_axis_length",
        "minor_axis_length", "mean_intensity_ch0", "max_intensity_ch0", "min_intensity_ch0",
        "mean_intensity_ch1", "max_intensity_ch1",
    ]  # fmt: skip
    return np.array([row[k] for k in keys] + [labels.max()], float)


def probe(train_x, train_y, val_x, val_y, classes) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))
    model.fit(train_x, train_y)
    return classification_scores(val_y, model.predict(val_x), classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs/ae-mitosis")
    parser.add_argument("--split-dir", type=Path, default=ROOT / "runs/mitosis_split")
    parser.add_argument("--model", type=Path, help="an existing autoencoder instead of training")
    parser.add_argument("--epochs", type=int, default=64)
    parser.add_argument("--optimizer", default="adagrad", help="adagrad (the module's) or adam")
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--name", default="ae-mitosis")
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/autoencoder_probe.json"
    )
    args = parser.parse_args()
    from sklearn.decomposition import PCA

    classes, items = class_folders(CROPS)
    labels = np.array([i for _, i in items])
    paths = [p for p, _ in items]
    if not (args.split_dir / "val").is_dir():
        raise SystemExit(
            f"no split in {args.split_dir}; run .venv/bin/python tools/mitosis_split.py"
        )
    val_names = {p.name for p, _ in class_folders(args.split_dir / "val")[1]}
    in_val = np.array([p.name in val_names for p in paths])
    train_idx, val_idx = np.flatnonzero(~in_val), np.flatnonzero(in_val)

    model_dir = args.model
    seconds = None
    if model_dir is None:
        train_dir = args.split_dir / "train"
        t0 = time.perf_counter()
        model_dir = train(
            task="autoencoder", name=args.name, out=args.work, images=train_dir,
            epochs=args.epochs, threads=args.threads, device="cpu",
            optimizer=args.optimizer, learning_rate=args.learning_rate,
            task_params={"crop_size": SIZE, "latent": args.latent},
            resume=(args.work / args.name / "checkpoints" / "last.pt").exists(),
        )  # fmt: skip
        seconds = time.perf_counter() - t0
    model = load_model(model_dir, device="cpu")

    objects = objects_from_crops(paths, SIZE)
    features = {"autoencoder": encode_objects(model, objects)}
    features["hand-crafted (Count measurements)"] = np.stack(
        [handcrafted(c) for c in objects.crops]
    )
    norm = Normalization()
    pixels = np.stack([normalize(c, norm).ravel() for c in objects.crops])
    pca = PCA(args.latent, random_state=0).fit(pixels[train_idx])
    features["raw-pixel PCA"] = pca.transform(pixels)

    results = {}
    for name, x in features.items():
        results[name] = {
            "n_features": int(x.shape[1]),
            **probe(x[train_idx], labels[train_idx], x[val_idx], labels[val_idx], classes),
        }
    print(f"{len(train_idx)} training / {len(val_idx)} held-out crops; logistic-regression probe")
    print(f"{'features':36s} {'n':>4s} {'accuracy':>9s} {'macro F1':>9s}")
    for name, s in results.items():
        print(f"{name:36s} {s['n_features']:4d} {s['accuracy']:9.3f} {s['macro_f1']:9.3f}")
    spec = model.spec
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "data": str(CROPS),
                "split": f"by cell track ({args.split_dir})",
                "autoencoder": {
                    "folder": str(model_dir),
                    "task_params": spec.task_params,
                    "validation": spec.validation,
                    "training_seconds": spec.training.get("seconds", seconds),
                },
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
