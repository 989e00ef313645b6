"""Prediction speed of our stardist-nuclei-fluo and the reference StarDist, interleaved in one run.

Usage (from the repository root), after ``stardist_reference.py`` has trained a reference
model in ``--reference`` (its AP does not matter here, only its speed; any training length
gives the same network):
    .venv/bin/python benchmarks/bench_stardist_speed_vs_reference.py \\
        --reference runs/reference --python /tmp/refsd/bin/python --rounds 10

The reference runs in its own environment (TensorFlow) as a child process that predicts
on request. Each round times one end-to-end prediction of the same 1104x1104 image by ours
and then by the reference (normalisation, network, non-maximum suppression, label image;
each after an untimed warm-up), so both see the same state of a shared machine; the
speed-up is the median of the per-round ratios. Two images: ``sparse`` (the largest DSB
training image, reflect-padded: 14 large nuclei, the image of the other benchmarks) and
``dense`` (a mosaic of the smallest validation images: hundreds of small nuclei, where
non-maximum suppression has work to do). Writes
benchmarks/results/stardist_speed_vs_reference.json (``_<precision>`` added with
``--precision``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import deepscope
from deepscope.io import read_image

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence" / "val" / "images"


def dense_1104() -> np.ndarray:
    """A 1104x1104 mosaic of validation images, smallest first (most of them 256x256 with
    many small nuclei), each scaled to uint8 by its own range, row by row; the last row and
    column cropped."""
    images = [read_image(path).data.astype(np.float32) for path in sorted(VAL.glob("*.tif"))]
    mosaic = np.zeros((1104, 1104), np.uint8)
    y = x = row_height = 0
    for data in sorted((d for d in images if d.ndim == 2), key=lambda d: d.size):
        data = 255 * (data - data.min()) / max(float(np.ptp(data)), 1e-6)
        h, w = data.shape
        if x + w > 1104:
            y, x, row_height = y + row_height, 0, 0
        if y >= 1104:
            break
        part = data[: 1104 - y, : 1104 - x]
        mosaic[y : y + part.shape[0], x : x + part.shape[1]] = part.astype(np.uint8)
        x, row_height = x + w, max(row_height, h)
    return mosaic


def time_interleaved(model, image: np.ndarray, args) -> dict:
    """Per-round end-to-end seconds of ours and the reference on ``image``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.npy"
        np.save(path, image)
        child = subprocess.Popen(
            [args.python, str(ROOT / "benchmarks" / "stardist_reference.py"),
             "--time-on-request", "--out", str(args.reference), "--image", str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        while child.stdout.readline().strip() != "ready":  # TensorFlow's start and warm-up
            if child.poll() is not None:
                raise SystemExit("the reference did not start; see its messages above")
        model.predict(image)  # warm-up
        ours, reference = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            labels = model.predict(image).labels
            ours.append(time.perf_counter() - start)
            child.stdin.write("go\n")
            child.stdin.flush()
            seconds, ref_objects = child.stdout.readline().split()
            reference.append(float(seconds))
        child.stdin.close()
        child.wait()
    ratios = [r / o for r, o in zip(reference, ours, strict=True)]
    return {
        "ours_seconds": ours,
        "reference_seconds": reference,
        "ours_objects": int(labels.max()),
        "reference_objects": int(ref_objects),
        "ratios": ratios,
        "speedup_median": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=ROOT / "runs" / "reference")
    parser.add_argument("--python", default="/tmp/refsd/bin/python", help="the reference's")
    parser.add_argument("--model", default="stardist-nuclei-fluo")
    parser.add_argument("--precision", default=None, help="ours; default: the model's")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/stardist_speed_...")
    args = parser.parse_args()

    from bench_nuclei_2d import image_1104

    model = deepscope.load_model(args.model, device="cpu", precision=args.precision)
    network = "int8" if model.predictor.int8 else "float"
    cpu = platform.processor() or platform.machine()
    print(f"ours: {model.name} {model.spec.version}, {network} network in {model.backend}")
    print(f"1104x1104 end to end, {args.rounds} interleaved rounds, {cpu}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    results = {}
    for name, image in (("sparse", image_1104()), ("dense", dense_1104())):
        r = time_interleaved(model, image, args)
        results[name] = r
        print(f"{name} image:")
        for who in ("ours", "reference"):
            seconds = r[f"{who}_seconds"]
            print(f"  {who:<9} median {statistics.median(seconds):.3f} s "
                  f"(fastest {min(seconds):.3f} s), {r[f'{who}_objects']} objects")  # fmt: skip
        print(f"  speed-up: {r['speedup_median']:.2f}x (median of per-round ratios; "
              f"{min(r['ratios']):.2f}-{max(r['ratios']):.2f}x)")  # fmt: skip
    out = {
        "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads()},
        "ours": {"model": model.name, "version": model.spec.version, "network": network},
        "reference": {"model_dir": str(args.reference)},
        "images": results,
    }
    suffix = f"_{args.precision}" if args.precision else ""
    path = args.out or ROOT / "benchmarks" / "results" / f"stardist_speed_vs_reference{suffix}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
