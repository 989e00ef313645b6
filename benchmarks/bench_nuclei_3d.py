"""Benchmark of the built-in stardist-nuclei-3d: AP table on nuclei3d/val and prediction time.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_nuclei_3d.py [--model stardist-nuclei-3d] [--repeats 3]

Prints the training time recorded in the model package, AP at IoU 0.5 ... 0.9 on the
volumes of ../shared/data/nuclei3d/val (HDF5 datasets ``raw`` and ``label``), and the
end-to-end prediction time of one 100x100x100 volume after the model is loaded. Writes
benchmarks/results/<model>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import deepscope
from deepscope.io import read_image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "nuclei3d"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="stardist-nuclei-3d")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = deepscope.load_model(args.model, device="cpu")
    training = model.spec.training
    print(
        f"model {model.name}: trained {training.get('epochs_done')} epochs in "
        f"{training.get('seconds', float('nan')) / 60:.1f} min on {training.get('device')} "
        f"({training.get('threads')} threads)"
    )
    metrics = deepscope.evaluate(model, f"{DATA / 'val'}:raw", f"{DATA / 'val'}:label")
    print(f"\nAP on nuclei3d/val ({metrics['n_images']} volume(s), {metrics['n_true']} nuclei):")
    print(f"{'IoU':>5} {'AP':>6} {'F1':>6} {'prec':>6} {'recall':>6}")
    for t in ("0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9"):
        print(
            f"{t:>5} {metrics[f'ap@{t}']:6.3f} {metrics[f'f1@{t}']:6.3f} "
            f"{metrics[f'precision@{t}']:6.3f} {metrics[f'recall@{t}']:6.3f}"
        )

    volume = read_image(f"{sorted((DATA / 'val').glob('*.h5'))[0]}:raw").data
    model.predict(volume)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.predict(volume)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    print(
        f"\nprediction of one {'x'.join(map(str, volume.shape))} volume, end to end "
        f"(median of {args.repeats}): {seconds:.2f} s, {torch.get_num_threads()} threads"
    )
    out = {
        "model": model.name,
        "training": {k: training.get(k) for k in ("seconds", "epochs_done", "device", "threads")},
        "val_metrics": metrics,
        "predict_volume_seconds_median": seconds,
    }
    path = ROOT / "benchmarks" / "results" / f"{model.name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
