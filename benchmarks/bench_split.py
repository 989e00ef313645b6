"""How well ``count --split`` divides merged objects, and how rarely it cuts single ones.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_split.py [--min-split-size 30] [--bacteria-min 100 400]

Three measurements on ground truth, so that the split alone is judged:

- **single objects**: every annotated nucleus of ``dsb2018/fluorescence/val`` split on its
  own; ideally the count does not change;
- **merged objects**: the same masks made binary and labelled by connected component (so
  touching nuclei become one object, as a model that merges them would give), then split;
  AP at IoU 0.5 and 0.7 against the true nuclei, before and after;
- **rods**: the annotated bacteria of the validation frames t042-t052 of
  ``tracking_bacteria`` (``tools/bacteria_split.py`` writes them), split one by one; long,
  bent and dividing cells are where a split cuts what the annotation keeps whole.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from deepscope.count import split_touching
from deepscope.io import read_image
from deepscope.io.paths import list_images
from deepscope.metrics import evaluate_instances

ROOT = Path(__file__).resolve().parents[1]
NUCLEI = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence" / "val" / "masks"
BACTERIA = ROOT / "runs" / "bacteria_split" / "val" / "masks"


def masks(folder: Path) -> list[np.ndarray]:
    return [np.asarray(read_image(p).data).astype(np.int32) for p in list_images([folder])]


def n_objects(labels: np.ndarray) -> int:
    return int(np.count_nonzero(np.unique(labels)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-split-size", type=int, default=30)
    parser.add_argument("--bacteria-min", type=int, nargs="+", default=[100, 400])
    args = parser.parse_args()

    truths = masks(NUCLEI)
    single = sum(n_objects(split_touching(t, args.min_split_size)) for t in truths)
    print(f"single nuclei (DSB val, {len(truths)} images): {sum(map(n_objects, truths))} "
          f"annotated, {single} after --split")  # fmt: skip

    merged = [ndi.label(t > 0)[0] for t in truths]
    split = [split_touching(m, args.min_split_size) for m in merged]
    for name, found in (("merged (connected components)", merged), ("merged, then --split", split)):
        ap = evaluate_instances(list(zip(truths, found, strict=True)), thresholds=(0.5, 0.7))
        scores = ap.to_dict()
        print(f"{name}: {sum(map(n_objects, found))} objects, AP@0.5 {scores['ap@0.5']:.3f}, "
              f"AP@0.7 {scores['ap@0.7']:.3f}")  # fmt: skip

    if not BACTERIA.is_dir():
        print(f"no {BACTERIA}: run tools/bacteria_split.py for the rods")
        return
    rods = masks(BACTERIA)
    for size in args.bacteria_min:
        after = sum(n_objects(split_touching(r, size)) for r in rods)
        print(f"rods (bacteria t042-t052), --min-split-size {size}: "
              f"{sum(map(n_objects, rods))} annotated, {after} after --split")  # fmt: skip


if __name__ == "__main__":
    main()
