"""Speed of Richardson-Lucy deconvolution: deepscope (torch FFT) against scikit-image.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_deconvolution.py [--iterations 30] [--repeats 3]
        [--skip-skimage] [--threads N]

Two cases: a 64x256x256 float32 volume of blurred blobs with the PSF
``gaussian_psf((15, 15, 15), (2, 1.5, 1.5))`` and a 512x512 image with
``gaussian_psf((15, 15), 1.5)``; both blurred with that PSF and given Poisson noise. Times
``deepscope.classical.richardson_lucy`` (median of ``--repeats`` runs after a warm-up) and
``skimage.restoration.richardson_lucy`` (once; ``clip=False, filter_epsilon=None``), and
compares the two results away from the edges, where their different edge handling does not
reach (relative L2 difference), and times the FFTs alone (the floor of this algorithm).
Threads: torch's default unless ``--threads``. Prints a table and writes
benchmarks/results/deconvolution.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy
import skimage
import torch
from machine import cpu_model
from scipy.signal import fftconvolve
from skimage.restoration import richardson_lucy as skimage_richardson_lucy

from deepscope.classical import gaussian_psf, richardson_lucy
from deepscope.classical.deconvolve import _pad
from deepscope.io.atomic import atomic_output

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "deconvolution.json"


def blurred_blobs(shape: tuple[int, ...], n: int, psf: np.ndarray, seed: int = 0) -> np.ndarray:
    """Boxes of 1-3 pixels at random places, blurred with ``psf``, on a background of 2,
    with Poisson noise."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.float32)
    for _ in range(n):
        size = int(rng.integers(1, 4))
        corner = [int(rng.integers(0, s - size)) for s in shape]
        truth[tuple(slice(c, c + size) for c in corner)] += rng.uniform(50, 200)
    blurred = np.clip(fftconvolve(truth, psf, mode="same"), 0, None) + 2.0
    return rng.poisson(blurred).astype(np.float32)


def interior_difference(ours: np.ndarray, reference: np.ndarray, margin: tuple[int, ...]) -> float:
    """Relative L2 difference of the two results, ``margin`` pixels in from every edge."""
    inside = tuple(slice(m, -m) for m in margin)
    a, b = ours[inside].astype(np.float64), reference[inside].astype(np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def fft_floor(image: np.ndarray, psf: np.ndarray, iterations: int) -> float:
    """Seconds for the FFTs alone: 2 forward and 2 inverse per iteration, at the padded size
    ``richardson_lucy`` uses. No implementation of this algorithm can be faster."""
    padded = torch.from_numpy(_pad(image, psf.shape)[0])
    shape = padded.shape
    spectrum = torch.fft.rfftn(padded)
    start = time.perf_counter()
    for _ in range(2 * iterations):
        torch.fft.rfftn(padded)
        torch.fft.irfftn(spectrum, s=shape)
    return time.perf_counter() - start


def run_case(name, shape, n_blobs, psf, iterations, repeats, skip_skimage) -> dict:
    image = blurred_blobs(shape, n_blobs, psf)
    richardson_lucy(image[tuple(slice(0, 2 * k) for k in psf.shape)], psf, 2)  # warm-up
    times, ours = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        ours = richardson_lucy(image, psf, iterations=iterations)
        times.append(time.perf_counter() - start)
    row = {
        "case": name,
        "shape": list(shape),
        "psf_shape": list(psf.shape),
        "iterations": iterations,
        "ours_median_s": float(np.median(times)),
        "ours_min_s": float(min(times)),
        "ours_runs_s": times,
        "fft_floor_s": fft_floor(image, psf, iterations),
        "skimage_s": None,
        "speedup": None,
        "interior_rel_diff": None,
    }
    if not skip_skimage:
        start = time.perf_counter()
        reference = skimage_richardson_lucy(
            image, psf, num_iter=iterations, clip=False, filter_epsilon=None
        )
        row["skimage_s"] = time.perf_counter() - start
        row["speedup"] = row["skimage_s"] / row["ours_median_s"]
        # Edge effects (zero padding vs mirroring) travel about one PSF per few iterations;
        # twice the PSF size in from the edges is safely beyond them.
        margin = tuple(2 * k for k in psf.shape)
        row["interior_rel_diff"] = interior_difference(ours, reference, margin)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours (median)")
    parser.add_argument("--skip-skimage", action="store_true", help="time only ours")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cases = [
        ("3D", (64, 256, 256), 3000, gaussian_psf((15, 15, 15), (2.0, 1.5, 1.5))),
        ("2D", (512, 512), 2000, gaussian_psf((15, 15), 1.5)),
    ]
    rows = [
        run_case(name, shape, n, psf, args.iterations, args.repeats, args.skip_skimage)
        for name, shape, n, psf in cases
    ]

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    print(
        f"{'case':<4} {'shape':>13} {'iter':>5} {'ours s (median)':>16} {'ours s (min)':>13} "
        f"{'FFTs alone s':>13} {'skimage s':>10} {'speedup':>8} {'interior rel. diff':>19}"
    )
    for r in rows:
        print(
            f"{r['case']:<4} {'x'.join(map(str, r['shape'])):>13} {r['iterations']:>5} "
            f"{r['ours_median_s']:>16.2f} {r['ours_min_s']:>13.2f} {r['fft_floor_s']:>13.2f} "
            f"{fmt(r['skimage_s'], '.2f'):>10} {fmt(r['speedup'], '.1f'):>8} "
            f"{fmt(r['interior_rel_diff'], '.2e'):>19}"
        )
    machine = {
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "scipy": scipy.__version__,
        "scikit-image": skimage.__version__,
        "load_average_1min": os.getloadavg()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out) as tmp:
        tmp.write_text(json.dumps({"machine": machine, "cases": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
