"""Benchmark of a 2D nuclei model (unet-nuclei-fluo, stardist-nuclei-fluo): training
time, AP table, prediction time, and peak memory on a very large image.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_nuclei_2d.py --model stardist-nuclei-fluo \
        [--repeats 5] [--large 8192] [--precision float32|int8|auto] [--tta]

Prints the training time recorded in the model package, the AP table on
../shared/data/dsb2018/fluorescence/val, the end-to-end prediction time of one 1104x1104
image after the model is loaded (normalisation, network, post-processing to labels), and,
with ``--large N``, the time and peak resident memory of predicting one NxN image (a
real DSB image repeated) in a fresh process. ``--precision`` runs the network at that
precision instead of the model's default (``int8``: the package's int8 network); ``--tta``
averages every prediction over the four flips (AP table and 1104x1104 timing). Writes
benchmarks/results/<model>.json (<model>_<precision>.json with ``--precision``, _tta added
with ``--tta``).
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


def time_prediction(model, image: np.ndarray, repeats: int, tta: bool = False) -> dict:
    """End-to-end ``model.predict`` time, and the network's share measured separately."""
    model.predict(image, tta=tta)  # warm-up (also compiles numba kernels on a first run)
    total, network = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = model.predict(image, tta=tta)
        total.append(time.perf_counter() - start)
    for _ in range(repeats):
        start = time.perf_counter()
        model.raw(image, tile=None, tta=tta)
        network.append(time.perf_counter() - start)
    return {
        "seconds_median": statistics.median(total),
        "seconds_min": min(total),
        "network_seconds_median": statistics.median(network),
        "n_objects": int(result.labels.max()),
    }


LARGE_CHILD = """
import resource, sys, time
import numpy as np
import deepscope
from deepscope.io import read_image
precision = None if sys.argv[4] == "default" else sys.argv[4]
model = deepscope.load_model(sys.argv[1], device="cpu", precision=precision)
size = int(sys.argv[2])
tile = read_image(sys.argv[3]).data
image = np.tile(tile, (size // tile.shape[0] + 1, size // tile.shape[1] + 1))[:size, :size]
start = time.perf_counter()
labels = model.predict(image).labels
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
print(f"{seconds:.3f} {peak:.3f} {int(labels.max())}")
"""


def time_large(model_name: str, size: int, precision: str | None) -> dict:
    """Predict one size x size image in a fresh process; its time and peak RSS (GB)."""
    import subprocess
    import sys

    source = sorted((DATA / "val" / "images").glob("*.tif"))[0]
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            LARGE_CHILD,
            model_name,
            str(size),
            str(source),
            precision or "default",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, peak, n = run.stdout.split()
    return {
        "size": size,
        "seconds": float(seconds),
        "peak_rss_gb": float(peak),
        "n_objects": int(n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet-nuclei-fluo")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--large", type=int, default=0, help="also predict one NxN image")
    parser.add_argument("--precision", default=None, help="default: the model's")
    parser.add_argument("--tta", action="store_true", help="average over the four flips")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = deepscope.load_model(args.model, device="cpu", precision=args.precision)
    network = "int8 network" if model.predictor.int8 else "float network"
    print(f"precision {args.precision or 'of the model'}: {network} in {model.backend}")
    training = model.spec.training
    print(
        f"model {model.name}: trained {training.get('epochs_done')} epochs in "
        f"{training.get('seconds', float('nan')) / 60:.1f} min on {training.get('device')} "
        f"({training.get('threads')} threads)"
    )

    start = time.perf_counter()
    metrics = deepscope.evaluate(
        model, DATA / "val" / "images", DATA / "val" / "masks", tta=args.tta
    )
    eval_seconds = time.perf_counter() - start
    print(
        f"\nAP on dsb2018/fluorescence/val{' with tta' if args.tta else ''} "
        f"({metrics['n_images']} images, "
        f"{eval_seconds:.1f} s incl. prediction):"
    )
    print(f"{'IoU':>5} {'AP':>6} {'F1':>6} {'prec':>6} {'recall':>6} {'mIoU':>6}")
    for t in ("0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9"):
        print(
            f"{t:>5} {metrics[f'ap@{t}']:6.3f} {metrics[f'f1@{t}']:6.3f} "
            f"{metrics[f'precision@{t}']:6.3f} {metrics[f'recall@{t}']:6.3f} "
            f"{metrics[f'mean_matched_iou@{t}']:6.3f}"
        )

    timing = time_prediction(model, image_1104(), args.repeats, args.tta)
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
        "precision": args.precision or model.spec.prediction.precision,
        "tta": args.tta,
        "int8": model.predictor.int8,
        "backend": model.backend,
        "val_metrics": metrics,
        "evaluate_seconds": eval_seconds,
        "predict_1104": timing,
    }
    if args.large:
        large = time_large(args.model, args.large, args.precision)
        print(
            f"prediction of one {args.large}x{args.large} image in a fresh process: "
            f"{large['seconds']:.1f} s, peak resident memory {large['peak_rss_gb']:.2f} GB, "
            f"{large['n_objects']} objects"
        )
        out["predict_large"] = large
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    suffix = (f"_{args.precision}" if args.precision else "") + ("_tta" if args.tta else "")
    path = results / f"{model.name}{suffix}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
