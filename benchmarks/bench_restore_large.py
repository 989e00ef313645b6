"""Restoration of one very large image, in memory and streamed: time, memory, agreement.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_restore_large.py [--size 8192] [--model care-fmd-confocal]
        [--json FILE]

Builds a size x size mosaic of real noisy confocal fields that the built-in restoration
models did not train on (``fmd_confocal_bpae_b`` fov12-fov16, frame ``noisy_00``, uint8)
and the matching mosaic of their ground truth (the 50-frame averages). Then, each in a fresh
process whose peak resident memory (``ru_maxrss``) is measured:

- in memory: ``load_model(MODEL).predict(image)`` with the model's tile and overlap;
- streamed: ``predict_files(..., output_format="ome.zarr", stream=True)`` on the mosaic
  written as a tiled TIFF (read, predicted and written block by block).

Prints the seconds and peak memory of each, PSNR / SSIM of each against the ground truth
(means over the mosaic's cells, each field scored on its own),
and the largest and mean difference between the two restored images (in units of the
ground truth's 1-99.8 percentile range); ``--json FILE`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fmd_confocal_bpae_b"
FIELDS = [f"fov{i:02d}" for i in range(12, 17)]


def mosaic(size: int, name: str) -> np.ndarray:
    """The fields' ``name`` images (``noisy_00.tif`` or ``gt.tif``) placed row by row, in
    turn, up to size x size."""
    from deepscope.io import read_image

    fields = [read_image(DATA / field / name).data for field in FIELDS]
    edge = fields[0].shape[0]
    out = np.zeros((size, size), fields[0].dtype)
    for i, (y, x) in enumerate(np.ndindex(-(-size // edge), -(-size // edge))):
        part = fields[i % len(fields)]
        h, w = min(edge, size - y * edge), min(edge, size - x * edge)
        out[y * edge : y * edge + h, x * edge : x * edge + w] = part[:h, :w]
    return out


def field_metrics(image: np.ndarray, truth: np.ndarray) -> dict:
    """Mean PSNR and SSIM over the mosaic's cells (one field of view each, cut at the far
    edges), each scored on its own like an image of the FMD benchmark; one whole-mosaic
    score would need several float64 copies of the mosaic (over 20 GB at 16384²)."""
    from deepscope.io import read_image
    from deepscope.metrics.restoration import restoration_metrics

    edge = read_image(DATA / FIELDS[0] / "gt.tif").data.shape[0]
    scores = [
        restoration_metrics(image[y : y + edge, x : x + edge], truth[y : y + edge, x : x + edge])
        for y in range(0, truth.shape[0], edge)
        for x in range(0, truth.shape[1], edge)
    ]
    return {key: float(np.mean([s[key] for s in scores])) for key in ("psnr", "ssim")}


def child(size: int, model_name: str, out: Path, stream: bool) -> None:
    """In the fresh process: restore the mosaic, save the result and the numbers."""
    import deepscope
    from deepscope.api import predict_files

    model = deepscope.load_model(model_name, device="cpu")
    image = None if stream else mosaic(size, "noisy_00.tif")
    start = time.perf_counter()
    if stream:
        (written,) = predict_files(
            model, [out / "mosaic.tif"], out, output_format="ome.zarr", stream=True
        )
    else:
        np.save(out / "memory.npy", model.predict(image).image)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    p = model.spec.prediction
    info = {"seconds": seconds, "peak_rss_gb": peak, "tile": p.tile, "overlap": p.overlap}
    if stream:
        info["written"] = str(written)
    name = "streamed" if stream else "memory"
    (out / f"{name}.json").write_text(json.dumps(info))


def run(size: int, model: str, tmp: Path, stream: bool) -> tuple[dict, np.ndarray]:
    from deepscope.io import read_image

    command = [sys.executable, __file__, "--size", str(size), "--model", model]
    subprocess.run([*command, "--child", str(tmp), *(["--stream"] if stream else [])], check=True)
    info = json.loads((tmp / ("streamed.json" if stream else "memory.json")).read_text())
    restored = read_image(info.pop("written")).data if stream else np.load(tmp / "memory.npy")
    return info, restored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--model", default="care-fmd-confocal")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.size, args.model, args.child, args.stream)
        return

    import tifffile

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        tifffile.imwrite(tmp / "mosaic.tif", mosaic(args.size, "noisy_00.tif"), tile=(512, 512))
        memory, in_memory = run(args.size, args.model, tmp, False)
        streamed, restored = run(args.size, args.model, tmp, True)
    truth = mosaic(args.size, "gt.tif").astype(np.float32)
    spread = float(np.percentile(truth, 99.8) - np.percentile(truth, 1))
    difference = np.abs(restored - in_memory) / spread
    rows = {}
    for name, info, image in (("in memory", memory, in_memory), ("streamed", streamed, restored)):
        rows[name] = {**info, **field_metrics(image, truth)}
    result = {
        "model": args.model,
        "size": args.size,
        "modes": rows,
        "max_difference": float(difference.max()),
        "mean_difference": float(difference.mean()),
        "machine": {
            "platform": platform.platform(),
            "processor": cpu_model(),
            "cpus": os.cpu_count(),
        },
    }
    print(
        f"{args.model} on one {args.size}x{args.size} mosaic of fmd_confocal_bpae_b "
        f"{FIELDS[0]}-{FIELDS[-1]} (tile {memory['tile']}, overlap {memory['overlap']})"
    )
    print(f"{'mode':<10} {'seconds':>8} {'peak GB':>8} {'PSNR':>7} {'SSIM':>7}")
    for name, row in rows.items():
        print(
            f"{name:<10} {row['seconds']:>8.1f} {row['peak_rss_gb']:>8.2f} "
            f"{row['psnr']:>7.2f} {row['ssim']:>7.4f}"
        )
    print(
        f"streamed vs in memory: largest difference {result['max_difference']:.2e}, mean "
        f"{result['mean_difference']:.2e} (of the ground truth's 1-99.8 percentile range)"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
