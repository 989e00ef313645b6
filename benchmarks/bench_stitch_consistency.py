"""Block-wise against whole-image prediction: objects lost, added or cut by the stitching.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_stitch_consistency.py --model stardist-nuclei-fluo \
        [--tile 128] [--overlap 48] [--margins 0 2 4 8] [--json FILE]

Each ``dsb2018/fluorescence/val`` image larger than the tile is predicted whole and block by
block (:mod:`deepscope.predict.stitch`) with each ownership margin (``PREDICTED_MARGIN``,
pixels a block owns beyond its core). Against the whole-image labels it counts objects
*lost* (fewer than half their pixels labelled block-wise), *added* (block-wise objects with
fewer than half their pixels labelled in the whole image) and *cut* (whole-image objects
that two block-wise labels share, each a quarter or more). A small tile puts many objects
on block borders; what remains at a large margin is the network seeing each block with less
context, not the stitching.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from deepscope import load_model
from deepscope.io import list_images, read_image
from deepscope.predict import stitch

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence" / "val" / "images"


def _mostly_unlabelled(objects: np.ndarray, other: np.ndarray) -> int:
    """How many objects of ``objects`` have fewer than half their pixels labelled in ``other``."""
    ids = objects.ravel()
    area = np.bincount(ids)
    covered = np.bincount(ids, weights=(other.ravel() > 0))
    present = area[1:] > 0
    return int((2 * covered[1:][present] < area[1:][present]).sum())


def _cut(whole: np.ndarray, tiled: np.ndarray) -> int:
    """Whole-image objects shared by two or more block-wise labels, a quarter each."""
    inside = (whole > 0) & (tiled > 0)
    pairs, counts = np.unique(np.stack([whole[inside], tiled[inside]]), axis=1, return_counts=True)
    area = np.bincount(whole.ravel())
    big = counts * 4 >= area[pairs[0]]
    owners = np.bincount(pairs[0][big], minlength=len(area))
    return int((owners >= 2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="stardist-nuclei-fluo")
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=48)
    parser.add_argument("--margins", type=float, nargs="+", default=[0, 2, 4, 8])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    model = load_model(args.model)
    totals = {m: {"lost": 0, "added": 0, "cut": 0} for m in args.margins}
    objects = images = 0
    t0 = time.perf_counter()
    for path in list_images(VAL):
        image = read_image(path).data
        if max(image.shape[:2]) <= args.tile:
            continue
        images += 1
        whole = model.predict(image, tile=None).labels
        objects += len(np.unique(whole)) - 1
        for margin in args.margins:
            stitch.PREDICTED_MARGIN = margin
            with warnings.catch_warnings():  # objects larger than the overlap: counted
                warnings.simplefilter("ignore")
                tiled = model.predict(image, tile=args.tile, overlap=args.overlap).labels
            totals[margin]["lost"] += _mostly_unlabelled(whole, tiled)
            totals[margin]["added"] += _mostly_unlabelled(tiled, whole)
            totals[margin]["cut"] += _cut(whole, tiled)
    print(
        f"{args.model}: {images} images, {objects} objects, tile {args.tile}, "
        f"overlap {args.overlap} ({time.perf_counter() - t0:.0f} s)"
    )
    print(f"{'margin':>6}{'lost':>6}{'added':>7}{'cut':>5}")
    for margin, row in totals.items():
        print(f"{margin:>6g}{row['lost']:>6}{row['added']:>7}{row['cut']:>5}")
    if args.json:
        record = {
            "model": args.model,
            "tile": args.tile,
            "overlap": args.overlap,
            "images": images,
            "objects": objects,
            "by_margin": {str(m): row for m, row in totals.items()},
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
