"""Noise2Void on BSD68 with Gaussian noise sigma 25: PSNR after a fixed CPU training budget.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_n2v_bsd68.py [--work runs/bsd68] [--epochs 30]
        [--steps 60] [--filters 16] [--depth 2] [--masked-fraction 0.002]
        [--method masking|blind_spot_network] [--batch-size 32] [--learning-rate 4e-4]
        [--name n2v-bsd68] [--threads N] [--evaluate-only]

Adds N(0, 25^2) noise (seed 0, no clipping, float32) to the 400 training images
(``bsd68/train400``) and to the 68 test images (``bsd68/test``), trains ``n2v`` on the
noisy training images alone (the clean test images are only used to score), and prints
the mean PSNR (data range 255, prediction in the input's units) of the noisy and the
denoised test images, with the training time recorded in the model package. With
``--method blind_spot_network`` it prints the network's output alone and the model's output,
which blends it with the noisy pixel (:mod:`deepscope.classical.noise`). Published:
27.71 dB after about 6.5 h on a GPU (Krull et al. 2019). Writes
benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from machine import cpu_model

from deepscope.io import read_image, write_image
from deepscope.metrics.restoration import psnr
from deepscope.zoo import load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "bsd68"
SIGMA = 25.0


def noisy_copies(source: Path, target: Path, seed: int) -> None:
    """Write every PNG of ``source`` with added Gaussian noise as float32 TIFF."""
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for path in sorted(source.glob("*.png")):
        clean = read_image(path).data.astype(np.float32)
        noisy = clean + rng.normal(0, SIGMA, clean.shape).astype(np.float32)
        out = target / f"{path.stem}.tif"
        if not out.exists():
            write_image(out, noisy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bsd68")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--filters", type=int, default=16, help="U-Net base filters")
    parser.add_argument("--depth", type=int, default=2, help="U-Net down-sampling steps")
    parser.add_argument(
        "--method", choices=["masking", "blind_spot_network"], default="masking",
        help="Noise2Void masking or the blind-spot network (Laine et al. 2019)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=4e-4)
    parser.add_argument(
        "--masked-fraction", type=float, default=0.002, help="blind spots per patch pixel"
    )
    parser.add_argument("--name", default="n2v-bsd68", help="model name (a new run each)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default all)")
    parser.add_argument("--evaluate-only", action="store_true")
    args = parser.parse_args()
    noisy_copies(DATA / "train400", args.work / "train", seed=0)
    noisy_copies(DATA / "test", args.work / "test", seed=1)
    model_dir = args.work / args.name
    if not args.evaluate_only:
        command = [
            sys.executable, "-m", "deepscope", "train", "n2v",
            "--images", str(args.work / "train"), "--name", args.name, "--out", str(args.work),
            "--epochs", str(args.epochs), "--steps", str(args.steps),
            "--patch-size", "64", "--batch-size", str(args.batch_size),
            "--learning-rate", str(args.learning_rate),
            "--set", f"network.depth={args.depth}", "--set", f"network.base_filters={args.filters}",
            "--set", "augmentation.intensity_shift=[0,0]", "--set", "val_patches=64",
            "--set", "domain=natural images, denoising",
            "--set", f"task_params.masked_fraction={args.masked_fraction}",
            "--set", f"task_params.method={args.method}",
            *(["--threads", str(args.threads)] if args.threads else []),
        ]  # fmt: skip
        if (model_dir / "checkpoints" / "last.pt").exists():
            command.append("--resume")
        subprocess.run(command, check=True)
    model = load_model(model_dir, device="cpu")
    blends = model.task.blind_spot_network and model.task.params.blend
    unblended = load_model(model_dir, device="cpu")  # the network's output alone
    unblended.task.params = unblended.task.params.model_copy(update={"blend": False})
    raw, denoised, network_only = [], [], []
    for path in sorted((DATA / "test").glob("*.png")):
        clean = read_image(path).data.astype(np.float32)
        noisy = read_image(args.work / "test" / f"{path.stem}.tif").data
        raw.append(psnr(noisy, clean, 255.0))
        denoised.append(psnr(model.predict(noisy).image, clean, 255.0))
        if blends:
            network_only.append(psnr(unblended.predict(noisy).image, clean, 255.0))
    spec = json.loads((model_dir / "model.json").read_text())
    seconds = spec["training"]["seconds"]
    result = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "threads": spec["training"]["threads"]},
        "settings": {"method": args.method, "depth": args.depth, "filters": args.filters,
                     "masked_fraction": args.masked_fraction, "batch_size": args.batch_size,
                     "learning_rate": args.learning_rate, "epochs": args.epochs,
                     "steps": args.steps},
        "training_seconds": seconds,
        "epochs": spec["training"]["epochs_done"],
        "psnr_noisy": float(np.mean(raw)),
        "psnr_n2v": float(np.mean(denoised)),
        "psnr_n2v_without_blend": float(np.mean(network_only)) if blends else None,
        "n_images": len(raw),
    }  # fmt: skip
    print(f"BSD68 sigma 25, {len(raw)} test images")
    print(f"  noisy       {result['psnr_noisy']:.2f} dB")
    if blends:
        print(f"  n2v (ours), network output alone  {result['psnr_n2v_without_blend']:.2f} dB")
        print("  n2v (ours), blended with the noisy pixel (the model's output):")
    print(f"  n2v (ours)  {result['psnr_n2v']:.2f} dB after {seconds / 60:.1f} min of training")
    print("  published   27.71 dB after about 6.5 h on a GPU")
    out = ROOT / "benchmarks" / "results" / f"{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
