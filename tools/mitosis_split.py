"""Split mitosis_crops into training and validation folders with no cell on both sides.

Usage: .venv/bin/python tools/mitosis_split.py [--out runs/mitosis_split] [--fraction 0.2]

The crops are named P<position>_T<frame>_X<x>_Y<y>. The same cell appears more than once:
164 pairs are the same cell cut twice in one frame, 1-3 pixels apart, and a cell is
followed through consecutive frames as it passes the mitotic phases. A random split puts
near-copies on both sides and flatters every method. Here crops of one position closer
than ``--distance`` pixels within ``--frames`` frames are linked, linked crops form one
group (a cell's track), and whole groups go to validation until every class has about
``--fraction`` of its crops there (seeded). Writes symbolic links
OUT/{train,val}/<class>/<file> and OUT/split.json.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parents[1]
CROPS = ROOT.parent / "shared" / "data" / "mitosis_crops"
NAME = re.compile(r"P(\d+)_T(\d+)_X(\d+)_Y(\d+)")


def track_groups(names: list[str], frames: int, distance: float) -> np.ndarray:
    """A group index per crop: crops linked by position, nearby frames and nearby centres."""
    p, t, x, y = np.array([[int(v) for v in NAME.search(n).groups()] for n in names]).T
    near = (
        (p[:, None] == p[None])
        & (abs(t[:, None] - t[None]) <= frames)
        & (np.hypot(x[:, None] - x[None], y[:, None] - y[None]) <= distance)
    )
    i, j = np.nonzero(near)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(names), len(names)))
    return connected_components(graph, directed=False)[1]


def grouped_split(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean 'in validation' per crop: whole groups, about ``fraction`` of each class."""
    n_classes = labels.max() + 1
    target = fraction * np.bincount(labels, minlength=n_classes)
    counts = {g: np.bincount(labels[groups == g], minlength=n_classes) for g in np.unique(groups)}
    val_counts = np.zeros(n_classes)
    chosen = set()
    for g in np.random.default_rng(seed).permutation(list(counts)):
        c = counts[g]
        needed = (c > 0) & (val_counts < target)
        fits = np.all(val_counts + c <= np.ceil(target * 1.25) + 1)
        if needed.any() and fits:
            chosen.add(g)
            val_counts += c
    return np.isin(groups, list(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs/mitosis_split")
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--distance", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    classes = sorted(p.name for p in CROPS.iterdir() if p.is_dir())
    files = [f for c in classes for f in sorted((CROPS / c).glob("*.png"))]
    labels = np.array([classes.index(f.parent.name) for f in files])
    groups = track_groups([f.name for f in files], args.frames, args.distance)
    in_val = grouped_split(labels, groups, args.fraction, args.seed)
    for f, val in zip(files, in_val, strict=True):
        link = args.out / ("val" if val else "train") / f.parent.name / f.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(f.resolve())
    summary = {
        "groups": int(groups.max() + 1),
        "settings": vars(args) | {"out": str(args.out)},
        "val": {c: int(np.sum(in_val & (labels == i))) for i, c in enumerate(classes)},
        "train": {c: int(np.sum(~in_val & (labels == i))) for i, c in enumerate(classes)},
    }
    (args.out / "split.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["val"]), json.dumps(summary["train"]))


if __name__ == "__main__":
    main()
