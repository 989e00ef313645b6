"""Flip averaging over four flips (what ``--tta`` does) against all eight symmetries of
the square (the four flips of the image and of its transpose), for 2D instance models.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_tta_symmetries.py [--models stardist-nuclei-fluo ...]

Scores every model on ``dsb2018/fluorescence/val`` with its shipped thresholds, float
network, three ways: plain, four flips, eight symmetries; prints AP at IoU 0.5 ... 0.9.
The eight-fold average is built here only, to measure it: a transposed star-convex
prediction holds ray ``k`` of the image in ray ``n/4 - k``; a transposed flow field has
its two components swapped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deepscope.io import match_pairs, read_image
from deepscope.predict.predictor import predict_raw, with_flips
from deepscope.train.dataset import read_truth
from deepscope.zoo import load_model

VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018" / "fluorescence" / "val"


def untranspose(task, output: np.ndarray) -> np.ndarray:
    """Raw output ``(B, K, Y, X)`` of a transposed batch brought back to the image."""
    out = np.swapaxes(output, -1, -2)
    if task.name == "stardist":
        n = task.params.n_rays
        if n % 4:
            raise SystemExit(f"{n} rays: the transpose maps rays onto rays only for n % 4 == 0")
        source = (n // 4 - np.arange(n)) % n
        return np.concatenate([out[:, :1], out[:, 1:][:, source]], axis=1)
    if task.name == "flows":
        return np.concatenate([out[:, 1::-1], out[:, 2:]], axis=1)
    return out


def with_symmetries(fn, task):
    """``fn`` averaged over the eight symmetries of the square."""
    flips = with_flips(fn, task.unflip)

    def averaged(batch: np.ndarray) -> np.ndarray:
        transposed = flips(np.ascontiguousarray(np.swapaxes(batch, -1, -2)))
        return (flips(batch) + untranspose(task, transposed)) / 2

    return averaged


def score(model, mode: str) -> dict:
    predictor = model.predictor
    settings = model.prediction_settings(-1, None, None, False)
    fn = {
        "plain": predictor.fn,
        "4 flips": with_flips(predictor.fn, model.task.unflip),
        "8 symmetries": with_symmetries(predictor.fn, model.task),
    }[mode]
    results, truths = [], []
    for image_path, mask_path in match_pairs(VAL / "images", VAL / "masks"):
        image = read_image(image_path)
        truth = read_truth(mask_path, model.task, 2)
        x = predictor.prepare(image.data, image.axes)
        output = predict_raw(
            fn,
            x,
            model.task.out_channels,
            predictor.config.divisor,
            settings["tile"],
            settings["overlap"],
            settings["batch_size"],
            None,
            predictor.config.grid,
        )
        results.append(model.task.postprocess(output, truth.shape))
        truths.append(truth)
    return model.task.evaluate(results, truths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="*", default=["stardist-nuclei-fluo", "flows-nuclei-fluo"]
    )
    args = parser.parse_args()
    thresholds = ("0.5", "0.6", "0.7", "0.8", "0.9")
    print(f"{'model':22} {'averaging':13} " + " ".join(f"AP@{t:>4}" for t in thresholds))
    for name in args.models:
        model = load_model(name, device="cpu", precision="float32")
        for mode in ("plain", "4 flips", "8 symmetries"):
            metrics = score(model, mode)
            print(
                f"{name:22} {mode:13} " + " ".join(f"{metrics[f'ap@{t}']:7.3f}" for t in thresholds)
            )


if __name__ == "__main__":
    main()
