"""Instance segmentation of densely packed rod-shaped bacteria (tracking_bacteria).

Usage (from the repository root):
    .venv/bin/python tools/bacteria_split.py             # once: frames t000-t041 / t042-t052
    .venv/bin/python benchmarks/bench_bacteria.py [--models flows-bacteria ...] [--json FILE]
        [--reference benchmarks/results/cellpose_bacteria.json]

Scores each model (name or package folder) on the validation frames t042-t052 (1305×1009
phase contrast, 150-360 cells each) with our metric code, and times the end-to-end
prediction of every frame after the model is loaded and one untimed warm-up frame (the
protocol of ``cellpose_reference.py``); the timed predictions are the ones scored. Prints
one row per model: AP at IoU 0.5, 0.7 and 0.9, F1@0.5, objects found / true, and the median
seconds per frame.

``--reference`` adds the rows of a reference tool scored by its own script in its own
environment (``cellpose_reference.py`` writes Cellpose's, with the same frames, metric code
and timing protocol) to the table, and prints how the first model compares with each: the
AP differences and how many times faster it is per frame.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import deepscope
from deepscope.io import read_image
from deepscope.metrics import evaluate_instances

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ROOT / "runs" / "bacteria_split" / "val"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["flows-bacteria"])
    parser.add_argument("--split", type=Path, default=SPLIT, help="folder with images/, masks/")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--reference", type=Path, nargs="*", default=[], help="result files of reference tools"
    )
    args = parser.parse_args()
    if not (args.split / "images").is_dir():
        raise SystemExit(f"no split in {args.split}; run .venv/bin/python tools/bacteria_split.py")

    rows = []
    paths = sorted((args.split / "images").glob("*.tif"))
    frames = [read_image(p).data for p in paths]
    truths = [read_image(args.split / "masks" / p.name).data for p in paths]
    for name in args.models:
        model = deepscope.load_model(name)
        model.predict(frames[0])  # warm-up, untimed
        seconds, predictions = [], []
        for frame in frames:
            t0 = time.perf_counter()
            predictions.append(model.predict(frame).labels)
            seconds.append(time.perf_counter() - t0)
        metrics = evaluate_instances(zip(truths, predictions)).to_dict()
        rows.append(
            {
                "model": name,
                "task": model.spec.task,
                **{k: metrics[k] for k in ("ap@0.5", "ap@0.7", "ap@0.9", "f1@0.5")},
                "n_pred": metrics.get("n_pred"),
                "n_true": metrics.get("n_true"),
                "seconds_per_frame": statistics.median(seconds),
            }
        )
    for path in args.reference:
        rows += json.loads(path.read_text())
    print(f"{'model':<34}{'AP@0.5':>8}{'AP@0.7':>8}{'AP@0.9':>8}{'F1@0.5':>8}  found/true  s/frame")
    for r in rows:
        print(
            f"{r['model']:<34}{r['ap@0.5']:>8.3f}{r['ap@0.7']:>8.3f}{r['ap@0.9']:>8.3f}"
            f"{r['f1@0.5']:>8.3f}  {r['n_pred']}/{r['n_true']}  {r['seconds_per_frame']:.2f}"
        )
    ours = rows[0]
    for r in rows[len(args.models) :]:
        gaps = ", ".join(f"AP@{t} {ours[f'ap@{t}'] - r[f'ap@{t}']:+.3f}" for t in (0.5, 0.7, 0.9))
        speed = r["seconds_per_frame"] / ours["seconds_per_frame"]
        print(f"{ours['model']} against {r['model']}: {gaps}; {speed:.1f}x faster per frame")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
