"""Benchmark of the built-in unet-nuclei-fluo: training time, AP table, prediction time.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_unet_nuclei.py [--model unet-nuclei-fluo] [--repeats 5]

Prints the training time recorded in the model package, the AP table on
../shared/data/dsb2018/fluorescence/val, and the end-to-end prediction time of one
1104x1104 image after the model is loaded (normalisation, tiled network, watershed),
and writes the figures to benchmarks/results/unet_nuclei.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import deepscope
from deepscope.io import read_image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence"


def image_1104() -> np.ndarray:
    """A 1104x1104 fluorescence nuclei image: the largest DSB image, reflect-padded/cropped."""
    largest = max(
        (DATA / "train" / "images").glob("*.tif"), key=lambda p: np.prod(read_image(p).data.shape)
    )
    data = read_image(largest).data
    pad = [(0, max(0, 1104 - s)) for s in data.shape]
    return np.pad(data, pad, mode="reflect")[:1104, :1104]


def time_prediction(model, image: np.ndarray, repeats: int) -> dict:
    model.predict(image)  # warm-up
    total, network = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        raw = model.predictor.raw(
            image, tile=model.spec.prediction.tile, overlap=model.spec.prediction.overlap
        )
        mid = time.perf_counter()
        result = model.task.postprocess(raw)
        end = time.perf_counter()
        total.append(end - start)
        network.append(mid - start)
    return {
        "seconds_median": statistics.median(total),
        "seconds_min": min(total),
        "network_seconds_median": statistics.median(network),
        "n_objects": int(result.labels.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet-nuclei-fluo")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = deepscope.load_model(args.model, device="cpu")
    training = model.spec.training
    print(
        f"model {model.name}: trained {training.get('epochs_done')} epochs in "
        f"{training.get('seconds', float('nan')) / 60:.1f} min on {training.get('device')} "
        f"({training.get('threads')} threads)"
    )

    start = time.perf_counter()
    metrics = deepscope.evaluate(model, DATA / "val" / "images", DATA / "val" / "masks")
    eval_seconds = time.perf_counter() - start
    print(
        f"\nAP on dsb2018/fluorescence/val ({metrics['n_images']} images, "
        f"{eval_seconds:.1f} s incl. prediction):"
    )
    print(f"{'IoU':>5} {'AP':>6} {'F1':>6} {'prec':>6} {'recall':>6} {'mIoU':>6}")
    for t in ("0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9"):
        print(
            f"{t:>5} {metrics[f'ap@{t}']:6.3f} {metrics[f'f1@{t}']:6.3f} "
            f"{metrics[f'precision@{t}']:6.3f} {metrics[f'recall@{t}']:6.3f} "
            f"{metrics[f'mean_matched_iou@{t}']:6.3f}"
        )

    timing = time_prediction(model, image_1104(), args.repeats)
    print(
        f"\nprediction of one 1104x1104 image, end to end after model load "
        f"(median of {args.repeats}): {timing['seconds_median']:.2f} s "
        f"(network {timing['network_seconds_median']:.2f} s, "
        f"{timing['n_objects']} objects), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )

    out = {
        "model": model.name,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "training": {
            k: training.get(k) for k in ("seconds", "epochs_done", "device", "threads", "command")
        },
        "val_metrics": metrics,
        "evaluate_seconds": eval_seconds,
        "predict_1104": timing,
    }
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "unet_nuclei.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {results / 'unet_nuclei.json'}")


if __name__ == "__main__":
    main()
