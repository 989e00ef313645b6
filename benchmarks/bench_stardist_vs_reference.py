"""Side by side: our stardist-nuclei-fluo and the reference StarDist, same images, same metric.

Usage (from the repository root), after ``stardist_reference.py`` has written its labels:
    .venv/bin/python benchmarks/bench_stardist_vs_reference.py --reference runs/reference

Scores the reference's labels for ``dsb2018/fluorescence/val`` and our model's predictions
with the same code (``deepscope.metrics.evaluate_instances``), prints AP at every IoU
threshold for both, the training time each had, and the prediction time of one 1104x1104
image (ours measured here, the reference's by ``stardist_reference.py`` on this machine).
Writes benchmarks/results/stardist_vs_reference.json (or ``--out``). ``--reuse-reference`` takes the
reference's scores and times from that file's last run instead (when its labels are gone
and retraining it, two hours, is not possible), and says so.
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
DATA = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence"
THRESHOLDS = ("0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9")


def score_reference(labels_dir: Path) -> dict:
    pairs = []
    for path in sorted((DATA / "val" / "masks").glob("*.tif")):
        truth = read_image(path).data
        pairs.append((truth, read_image(labels_dir / path.name).data))
    return evaluate_instances(pairs).to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=ROOT / "runs" / "reference")
    parser.add_argument("--model", default="stardist-nuclei-fluo")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--our-minutes",
        type=float,
        help="our training time in all (model.json records only the last run of a model "
        "fine-tuned from an earlier one: stardist-nuclei-fluo had 79 + 33 minutes)",
    )
    parser.add_argument("--reuse-reference", action="store_true")
    parser.add_argument("--precision", default=None, help="ours; default: the model's")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "stardist_vs_reference.json"
    )
    args = parser.parse_args()

    path = args.out
    if args.reuse_reference:
        reference = json.loads(path.read_text())["reference"]
        ref_metrics = reference.pop("metrics")
        print(f"reference: scores and times of its last run, from {path}")
    else:
        reference = json.loads((args.reference / "timings.json").read_text())
        ref_metrics = score_reference(args.reference / "labels")
    model = deepscope.load_model(args.model, device="cpu", precision=args.precision)
    network = "int8" if model.predictor.int8 else "float"
    print(f"ours: {model.name} {model.spec.version}, {network} network in {model.backend}")
    ours = deepscope.evaluate(model, DATA / "val" / "images", DATA / "val" / "masks")

    from bench_nuclei_2d import image_1104

    image = image_1104()
    model.predict(image)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.predict(image)
        times.append(time.perf_counter() - start)
    our_seconds = statistics.median(times)

    print(f"{'IoU':>5} {'ours':>7} {'reference':>10}")
    for t in THRESHOLDS:
        print(f"{t:>5} {ours[f'ap@{t}']:7.3f} {ref_metrics[f'ap@{t}']:10.3f}")
    our_minutes = args.our_minutes or model.spec.training.get("seconds", float("nan")) / 60
    print(
        f"training: ours {our_minutes:.1f} min, "
        f"reference {reference['train_seconds'] / 60:.1f} min ({reference['epochs']} epochs)"
    )
    speedup = reference["predict_1104_seconds_median"] / our_seconds
    fastest = min(
        reference.get("predict_1104_seconds") or [reference["predict_1104_seconds_median"]]
    )
    print(
        f"1104x1104 end to end (median of {args.repeats}): ours {our_seconds:.2f} s (fastest "
        f"{min(times):.2f} s), reference {reference['predict_1104_seconds_median']:.2f} s "
        f"(fastest {fastest:.2f} s): {speedup:.1f}x on medians, "
        f"{fastest / min(times):.1f}x on the fastest runs"
    )
    out = {
        "ours": {
            "version": model.spec.version,
            "network": network,
            "metrics": ours,
            "training_minutes": our_minutes,
            "predict_1104_seconds_median": our_seconds,
            "predict_1104_seconds": times,
        },
        "reference": {"metrics": ref_metrics, **reference},
        "speedup": speedup,
    }
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
