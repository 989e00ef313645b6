"""3D nuclei from a 2D flow model run on XY, XZ and YZ slices, beside the star-convex 3D model.

Usage (from the repository root):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_flows_3d.py [--splits val,train]
        [--json FILE]

For every volume of ../shared/data/nuclei3d/<split> (HDF5 datasets ``raw`` and ``label``)
it prints the voxel size stored in the file, the anisotropy it implies (z step / xy pixel
size) and the median equivalent diameter of the true nuclei in XY pixels (measured on the
labels stretched along Z to cubic voxels), then AP at IoU 0.5 / 0.7 / 0.9, the number of
objects found and the seconds of prediction (normalisation, network and reconstruction)
for:

* ``stardist-nuclei-3d``: the built-in star-convex 3D model (trained on nuclei3d/train, so
  its train figures are not held out);
* ``flows-nuclei-fluo`` (2D, trained on DSB2018 fluorescence; never saw nuclei3d) through
  ``Model.predict(volume, slices3d=True, ...)``: at anisotropy 1 (slices as stored), at the
  volume's anisotropy, and at the volume's anisotropy with ``diameter`` = the true median
  diameter (the volume zoomed by 19.8 / diameter so its nuclei have the 2D model's training
  size; a user gives this number from a look at the image).

Then the AP of each method pooled over each split. nuclei3d/val/1137_mini.h5 is noise
(docs/stardist.md): every method scores 0 there, so the train volumes are reported too.
Runs with one thread (about 5 minutes on 2 cores). Writes the table as JSON to ``--json``
(default benchmarks/results/flows_3d_slices.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from deepscope.io import read_image
from deepscope.measure.size import median_diameter
from deepscope.metrics import evaluate_instances
from deepscope.predict.rescale import resample
from deepscope.zoo import load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "nuclei3d"
THRESHOLDS = (0.5, 0.7, 0.9)
FLOWS, STARDIST = "flows-nuclei-fluo", "stardist-nuclei-3d"


def true_diameter(labels: np.ndarray, anisotropy: float) -> float:
    """Median equivalent diameter of the true objects, in XY pixels (labels stretched
    along Z to cubic voxels first)."""
    z = round(labels.shape[0] * anisotropy)
    return float(median_diameter(resample(labels, (z, *labels.shape[1:]), 0), 3))


def score(truth: np.ndarray, labels: np.ndarray) -> dict:
    report = evaluate_instances([(truth, labels)], thresholds=THRESHOLDS).to_dict()
    return {
        **{f"ap@{t:g}": round(report[f"ap@{t:g}"], 3) for t in THRESHOLDS},
        "n_pred": int(report["n_pred"]),
        "n_true": int(report["n_true"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="val,train", help="comma-separated splits")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "flows_3d_slices.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    flows = load_model(FLOWS, device="cpu")
    stardist = load_model(STARDIST, device="cpu")
    print(f"{FLOWS}: training diameter {flows.spec.object_diameter} px; backend {flows.backend}")
    rows, pooled = [], {}
    for split in args.splits.split(","):
        for path in sorted((DATA / split).glob("*.h5")):
            image = read_image(f"{path}:raw")
            truth = read_image(f"{path}:label").data.astype(np.int32)
            size = image.pixel_size or {}
            anisotropy = round(size["Z"] / size["X"], 2) if {"Z", "X"} <= size.keys() else 1.0
            diameter = round(true_diameter(truth, anisotropy), 1)
            print(
                f"\n{split}/{path.name}: {image.data.shape} voxels of "
                f"{' x '.join(f'{size[a]:.4f}' for a in 'ZYX' if a in size)} um "
                f"(z/xy {anisotropy}); true median diameter {diameter} xy px"
            )
            methods = [
                (STARDIST, STARDIST, lambda v: stardist.predict(v, "ZYX")),
                (
                    "slices, anisotropy 1",
                    "slices, anisotropy 1",
                    lambda v: flows.predict(v, "ZYX", slices3d=True),
                ),
                (
                    "slices, anisotropy z/xy",
                    f"slices, anisotropy {anisotropy}",
                    lambda v, a=anisotropy: flows.predict(v, "ZYX", slices3d=True, anisotropy=a),
                ),
                (
                    "slices, anisotropy z/xy, diameter",
                    f"slices, anisotropy {anisotropy}, diameter {diameter}",
                    lambda v, a=anisotropy, d=diameter: flows.predict(
                        v, "ZYX", slices3d=True, anisotropy=a, diameter=d
                    ),
                ),
            ]
            print(
                f"  {'method':<44} {'AP@0.5':>6} {'AP@0.7':>6} {'AP@0.9':>6} {'found':>5} {'s':>6}"
            )
            for key, name, predict in methods:
                start = time.perf_counter()
                labels = predict(image.data).labels
                seconds = time.perf_counter() - start
                s = score(truth, labels)
                pooled.setdefault((split, key), []).append((truth, labels))
                print(
                    f"  {name:<44} {s['ap@0.5']:6.3f} {s['ap@0.7']:6.3f} {s['ap@0.9']:6.3f} "
                    f"{s['n_pred']:>5} {seconds:6.1f}"
                )
                rows.append(
                    {
                        "split": split,
                        "volume": path.name,
                        "method": name,
                        "anisotropy": anisotropy,
                        "true_median_diameter_px": diameter,
                        **s,
                        "seconds": round(seconds, 2),
                    }
                )
    print("\npooled over each split:")
    summary = []
    for (split, key), pairs in pooled.items():
        report = evaluate_instances(pairs, thresholds=THRESHOLDS).to_dict()
        aps = {f"ap@{t:g}": round(report[f"ap@{t:g}"], 3) for t in THRESHOLDS}
        summary.append({"split": split, "method": key, **aps, "n_true": report["n_true"]})
        print(f"  {split:<6} {key:<36} " + " ".join(f"{v:6.3f}" for v in aps.values()))
    out = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "threads": torch.get_num_threads(),
        "models": {"flows": FLOWS, "stardist": STARDIST},
        "volumes": rows,
        "pooled": summary,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
