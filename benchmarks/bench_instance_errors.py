"""Where an instance model loses AP: its unmatched objects sorted by kind, and the images that
hold most of them.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_instance_errors.py [--model stardist-nuclei-fluo]
        [--images DIR --masks DIR] [--threshold 0.5] [--small 50] [--worst 8] [--json FILE]

Predicts every validation image with the model's defaults and counts, at one IoU threshold
(0.5 to 1), each unmatched object as a missed, merged or misshaped ground-truth object or a
spurious, split or misshaped prediction (:func:`deepscope.metrics.error_kinds`). Prints the
pooled counts, AP (the same as ``deepscope evaluate``), how many missed objects are smaller
than ``--small`` pixels and how many of those touch the image border, and the images with the
most errors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import deepscope
from deepscope.io import read_image
from deepscope.io.paths import image_stem, list_images
from deepscope.metrics import ERROR_KINDS, error_kinds, iou_matrix

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence" / "val"


def missed_sizes(gt: np.ndarray, pred: np.ndarray, touch: float = 0.05) -> list[tuple[int, bool]]:
    """(area, touches the image border) of every ground-truth object no prediction touches."""
    ids = np.unique(gt[gt > 0])
    iou = iou_matrix(gt, pred)
    out = []
    for row, label in enumerate(ids):
        if iou.shape[1] and iou[row].max() >= touch:
            continue
        ys, xs = np.nonzero(gt == label)
        border = ys.min() == 0 or xs.min() == 0
        border = border or ys.max() == gt.shape[0] - 1 or xs.max() == gt.shape[1] - 1
        out.append((len(ys), bool(border)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="stardist-nuclei-fluo")
    parser.add_argument("--images", type=Path, default=VAL / "images")
    parser.add_argument("--masks", type=Path, default=VAL / "masks")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--small", type=int, default=50, help="area in pixels of a small object")
    parser.add_argument("--worst", type=int, default=8, help="images to list")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    model = deepscope.load_model(args.model)
    totals = dict.fromkeys(ERROR_KINDS, 0)
    tp = 0
    missed: list[tuple[int, bool]] = []
    per_image = []
    for path in list_images([args.images]):
        gt = read_image(args.masks / path.name).data
        pred = model.predict(read_image(path).data).labels
        kinds = error_kinds(gt, pred, args.threshold)
        n_true, n_pred = (len(np.unique(x[x > 0])) for x in (gt, pred))
        tp += n_true - sum(kinds[k] for k in ERROR_KINDS if k.startswith("fn"))
        for k in ERROR_KINDS:
            totals[k] += kinds[k]
        if kinds["fn_missed"]:
            missed += missed_sizes(gt, pred)
        per_image.append((sum(kinds.values()), image_stem(path), n_true, n_pred))
    errors = sum(totals.values())
    small = [border for area, border in missed if area < args.small]
    report = {
        "model": args.model,
        "threshold": args.threshold,
        "n_images": len(per_image),
        "tp": tp,
        "ap": tp / max(1, tp + errors),
        **totals,
        f"fn_missed_under_{args.small}px": len(small),
        f"fn_missed_under_{args.small}px_at_border": int(sum(small)),
        "worst_images": [
            {"name": name, "errors": e, "n_true": nt, "n_pred": npred}
            for e, name, nt, npred in sorted(per_image, reverse=True)[: args.worst]
        ],
    }
    print(
        f"{args.model} at IoU {args.threshold:g}: AP {report['ap']:.3f}, TP {tp}, errors {errors}"
    )
    for k in ERROR_KINDS:
        print(f"  {k:<14} {totals[k]:5d}")
    print(
        f"  missed objects under {args.small} px: {len(small)} "
        f"({int(sum(small))} touching the image border)"
    )
    print("images with the most errors (errors, true, predicted):")
    for row in report["worst_images"]:
        print(f"  {row['name']}  {row['errors']:4d}  {row['n_true']:4d}  {row['n_pred']:4d}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
