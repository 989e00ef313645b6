"""Label-free prediction on a pair set we build: simulated transmitted light -> fluorescence.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_labelfree.py [--work runs/labelfree] [--epochs 15]
        [--steps 40] [--evaluate-only]

No real transmitted-light / fluorescence pairs are in ../shared/data, so this builds them,
and says so: the target is the real DSB2018 fluorescence nuclei image; the input is a
simulated bright-field image of the same nuclei made from their ground-truth masks (a dim
absorption where each nucleus is, a bright phase halo at its rim from a Laplacian of
Gaussian, uneven illumination and Gaussian noise; seeded). The input never shows intensity
differences between nuclei, so a perfect prediction is not possible: the network must infer
where nuclei are and how bright fluorescence is on average there. Trains ``labelfree`` on
``dsb2018/fluorescence/train`` (grey images of at most 512 pixels a side) and scores on
``val``: PSNR/SSIM (fair normalisation) and Pearson r of the prediction, against the input
itself and against a Gaussian-smoothed inverted input as baselines. Writes
benchmarks/results/labelfree.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from deepscope.io import read_image, write_image
from deepscope.metrics.restoration import restoration_metrics
from deepscope.zoo import load_model

ROOT = Path(__file__).resolve().parents[1]
DSB = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence"


def simulated_brightfield(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bright-field-like picture of the objects in ``labels`` (float32, around 0.8)."""
    inside = ndi.gaussian_filter((labels > 0).astype(np.float32), 1.0)
    halo = -ndi.gaussian_laplace(inside, 2.0)
    yy, xx = np.mgrid[: labels.shape[0], : labels.shape[1]] / max(labels.shape)
    light = 0.8 + 0.1 * np.sin(2.0 * yy + rng.uniform(0, 6)) * np.cos(1.5 * xx)
    image = light - 0.12 * inside + 0.6 * halo + rng.normal(0, 0.03, labels.shape)
    return image.astype(np.float32)


def build_pairs(split: str, work: Path, seed: int) -> int:
    rng = np.random.default_rng(seed)
    count = 0
    for path in sorted((DSB / split / "images").glob("*.tif")):
        fluo = read_image(path).data
        if fluo.ndim != 2 or max(fluo.shape) > 512:
            continue
        labels = read_image(DSB / split / "masks" / path.name).data
        for kind, data in (("inputs", simulated_brightfield(labels, rng)), ("targets", fluo)):
            out = work / split / kind / path.name
            if not out.exists():
                write_image(out, data)
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "labelfree")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--evaluate-only", action="store_true")
    args = parser.parse_args()
    n_train = build_pairs("train", args.work, seed=0)
    n_val = build_pairs("val", args.work, seed=1)
    model_dir = args.work / "labelfree-simulated"
    if not args.evaluate_only:
        command = [
            sys.executable, "-m", "deepscope", "train", "labelfree",
            "--inputs", str(args.work / "train" / "inputs"),
            "--targets", str(args.work / "train" / "targets"),
            "--val-images", str(args.work / "val" / "inputs"),
            "--val-targets", str(args.work / "val" / "targets"),
            "--name", model_dir.name, "--out", str(args.work),
            "--epochs", str(args.epochs), "--steps", str(args.steps),
            "--patch-size", "128", "--batch-size", "8",
            "--set", "network.depth=3", "--set", "network.base_filters=16",
            "--set", "augmentation.intensity_shift=[0,0]",
            "--set", "domain=simulated bright field -> fluorescence nuclei",
        ]  # fmt: skip
        if (model_dir / "checkpoints" / "last.pt").exists():
            command.append("--resume")
        subprocess.run(command, check=True)
    model = load_model(model_dir, device="cpu")
    rows: dict[str, list[dict]] = {"input": [], "smoothed inverted input": [], "labelfree": []}
    for path in sorted((args.work / "val" / "inputs").glob("*.tif")):
        bright = read_image(path).data
        fluo = read_image(args.work / "val" / "targets" / path.name).data.astype(np.float32)
        candidates = {
            "input": bright,
            "smoothed inverted input": -ndi.gaussian_filter(bright, 2.0),
            "labelfree": model.predict(bright).image,
        }
        for name, pred in candidates.items():
            rows[name].append(restoration_metrics(pred, fluo))
    table = {
        name: {k: float(np.mean([r[k] for r in values])) for k in ("psnr", "ssim", "pearson_r")}
        for name, values in rows.items()
    }
    print(f"simulated bright field -> DSB2018 fluorescence: {n_train} train, {n_val} val pairs")
    print(f"{'prediction':26s} {'psnr':>7s} {'ssim':>7s} {'pearson r':>10s}")
    for name, m in table.items():
        print(f"{name:26s} {m['psnr']:7.2f} {m['ssim']:7.3f} {m['pearson_r']:10.3f}")
    spec = json.loads((model_dir / "model.json").read_text())
    result = {
        "note": "inputs are simulated from the masks; targets are real fluorescence images",
        "n_train": n_train,
        "n_val": n_val,
        "training_seconds": spec["training"]["seconds"],
        "metrics": table,
    }
    out = ROOT / "benchmarks" / "results" / "labelfree.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
