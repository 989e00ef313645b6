"""Upper bound of the flow reconstruction: exact targets of true masks, turned back into labels.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_flows_oracle.py [--frames 44 50] [--json FILE]

For each tracking_bacteria frame, the true instance mask gives exact flow targets
(:func:`deepscope.flows.flow_targets`, method ``heat`` and ``distance``) and a perfect
probability (the mask); :func:`deepscope.flows.flows_to_labels` reconstructs labels from
them. AP at IoU 0.5 / 0.7 / 0.9 against the mask says how well each flow kind can separate
these densely packed rods at best, whatever the network.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from deepscope.flows import flow_targets, flows_to_labels
from deepscope.io import read_image
from deepscope.metrics import evaluate_instances

ROOT = Path(__file__).resolve().parents[1]
MASKS = ROOT.parent / "shared" / "data" / "tracking_bacteria" / "TRA"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[44, 50])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    rows = []
    print(
        f"{'frame':>5} {'method':<9}{'objects':>8}{'AP@0.5':>8}{'AP@0.7':>8}{'AP@0.9':>8}{'s':>7}"
    )
    for frame in args.frames:
        mask = read_image(MASKS / f"man_track{frame:06d}.tif").data.astype(np.int32)
        for method in ("heat", "distance"):
            t0 = time.perf_counter()
            flows = flow_targets(mask, method)
            labels = flows_to_labels((mask > 0).astype(np.float32), flows, method=method)
            seconds = time.perf_counter() - t0
            report = evaluate_instances([(mask, labels)], (0.5, 0.7, 0.9)).to_dict()
            row = {"frame": frame, "method": method, "objects": int(mask.max()), "seconds": seconds}
            row.update({k: report[k] for k in ("ap@0.5", "ap@0.7", "ap@0.9")})
            rows.append(row)
            print(
                f"{frame:>5} {method:<9}{len(np.unique(mask)) - 1:>8}{row['ap@0.5']:>8.3f}"
                f"{row['ap@0.7']:>8.3f}{row['ap@0.9']:>8.3f}{seconds:>7.1f}"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
