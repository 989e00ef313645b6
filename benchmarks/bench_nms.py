"""Speed of star-convex non-maximum suppression with many objects and candidates.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_nms.py [--sizes 1024 4096 8192]

For each size, builds an NxN mosaic of the real DSB2018 validation masks, computes the exact
probability and 32 ray distances at output grid 2 (what a perfect network would predict),
and times the whole post-processing: candidate selection (probability > 0.5), NMS and
drawing the labels. Prints objects, candidates and seconds per size.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from deepscope.io import read_image
from deepscope.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
MASKS = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence" / "val" / "masks"


def mosaic(size: int) -> np.ndarray:
    """Validation masks placed side by side (labels kept distinct) up to size x size."""
    masks = [read_image(p).data.astype(np.int64) for p in sorted(MASKS.glob("*.tif"))]
    out = np.zeros((size, size), np.int64)
    y = x = row_height = offset = 0
    i = 0
    while y < size:
        m = masks[i % len(masks)]
        i += 1
        h, w = min(m.shape[0], size - y), min(m.shape[1], size - x)
        part = m[:h, :w]
        out[y : y + h, x : x + w] = np.where(part > 0, part + offset, 0)
        offset += int(m.max())
        row_height = max(row_height, h)
        x += w
        if x >= size:
            x, y, row_height = 0, y + row_height, 0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 8192])
    args = parser.parse_args()
    task = get_task("stardist", {"grid": 2, "prob_threshold": 0.5, "nms_threshold": 0.4})
    task.postprocess(np.zeros((33, 8, 8), np.float32))  # compile the kernels
    print(f"{'size':>6} {'objects':>8} {'candidates':>11} {'seconds':>8}")
    for size in args.sizes:
        labels = mosaic(size)
        target = task.batch_target(labels[None].astype(np.int32))[0]
        prob = np.clip(target[0], 1e-4, 1 - 1e-4)
        output = np.concatenate([np.log(prob / (1 - prob))[None], target[1:]])
        n_candidates = int((prob > 0.5).sum())
        start = time.perf_counter()
        result = task.postprocess(output, labels.shape)
        seconds = time.perf_counter() - start
        print(f"{size:>6} {int(result.labels.max()):>8} {n_candidates:>11} {seconds:>8.2f}")


if __name__ == "__main__":
    main()
