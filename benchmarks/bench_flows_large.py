"""Block-wise prediction of one very large image with the flow model: time, memory, AP.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_flows_large.py [--size 8192] [--stream] [--json FILE]

Builds a size x size image by tiling the real DSB2018 fluorescence validation images side by
side (each scaled by its own 1-99.8 percentiles into uint16, as one slide scan would look),
and the matching ground truth from their masks (labels made unique across tiles). In a
fresh process it runs ``load_model("flows-nuclei-fluo").predict(image)`` with the model's
default tile and overlap (block-wise reconstruction with object-level stitching for images
larger than the tile) and measures the wall time and the peak resident memory of that
process (``ru_maxrss``: Python, torch and the model included; the ground truth is not in
it). Prints the time, peak memory, number of objects and AP@0.5 / 0.7 / 0.9 against the
tiled ground truth; ``--json FILE`` also writes them as JSON.

``--stream``: the mosaic is first written to a tiled TIFF, and the fresh process runs
``predict_files(..., output_format="ome.zarr", stream=True)`` on that file instead: the image
is read, predicted and written block by block (the number is then the memory of streamed
prediction, which does not hold the image, its normalised copy or the labels).
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

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence" / "val"
MODEL = "flows-nuclei-fluo"


def mosaic(size: int, kind: str) -> np.ndarray:
    """Validation images (``kind='images'``, uint16) or masks (``'masks'``, int32 labels
    unique over the mosaic) placed row by row up to size x size; gaps stay 0."""
    from deepscope.data.normalize import percentile_normalize
    from deepscope.io import read_image

    paths = sorted((DATA / "images").glob("*.tif"))
    out = np.zeros((size, size), np.uint16 if kind == "images" else np.int32)
    y = x = row_height = offset = i = 0
    while y < size:
        path = paths[i % len(paths)]
        i += 1
        if kind == "images":
            data = read_image(path).data.astype(np.float32)
            data = np.clip(percentile_normalize(data[None])[0], 0, 1.5) * 40000
            part = np.rint(data).astype(np.uint16)
        else:
            part = read_image(DATA / "masks" / path.name).data.astype(np.int32)
        h, w = min(part.shape[0], size - y), min(part.shape[1], size - x)
        part = part[:h, :w]
        if kind == "masks":
            top = int(part.max())
            part = np.where(part > 0, part + offset, 0)
            offset += top
        out[y : y + h, x : x + w] = part
        row_height = max(row_height, h)
        x += w
        if x >= size:
            x, y, row_height = 0, y + row_height, 0
    return out


def rss_gb() -> float:
    """Current resident memory of this process in GB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**3


def child(size: int, out: Path, stream: bool) -> None:
    """Run in the fresh process: predict the mosaic (built here in memory, or streamed from
    ``out/mosaic.tif`` into OME-Zarr), save the labels and the numbers."""
    import deepscope
    from deepscope.api import predict_files

    image = None if stream else mosaic(size, "images")
    model = deepscope.load_model(MODEL, device="cpu")
    before = rss_gb()
    start = time.perf_counter()
    if stream:
        (labels,) = predict_files(
            model, [out / "mosaic.tif"], out, output_format="ome.zarr", stream=True
        )
    else:
        result = model.predict(image)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    p = model.spec.prediction
    info = {
        "mode": "streamed" if stream else "in memory",
        "seconds": seconds,
        "peak_rss_gb": peak,
        "rss_before_predict_gb": before,
        "tile": p.tile,
        "overlap": p.overlap,
        "backend": model.backend,
    }
    if stream:
        info["labels"] = str(labels)
    else:
        np.save(out / "labels.npy", result.labels)
        info["n_objects"] = int(result.labels.max())
    (out / "info.json").write_text(json.dumps(info))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--stream", action="store_true", help="predict block by block")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.size, args.child, args.stream)
        return

    import tifffile

    from deepscope.io import read_image
    from deepscope.metrics import evaluate_instances

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, __file__, "--size", str(args.size), "--child", tmp]
        if args.stream:
            tifffile.imwrite(Path(tmp) / "mosaic.tif", mosaic(args.size, "images"), tile=(512, 512))
            command.append("--stream")
        subprocess.run(command, check=True)
        info = json.loads((Path(tmp) / "info.json").read_text())
        if args.stream:
            labels = read_image(info.pop("labels")).data
            info["n_objects"] = int(labels.max())
        else:
            labels = np.load(Path(tmp) / "labels.npy")
    truth = mosaic(args.size, "masks")
    report = evaluate_instances([(truth, labels)], thresholds=(0.5, 0.7, 0.9)).to_dict()
    row = {
        "model": MODEL,
        "size": args.size,
        **info,
        "n_true": int(report["n_true"]),
        **{f"ap@{t}": report[f"ap@{t}"] for t in ("0.5", "0.7", "0.9")},
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
    }
    print(
        f"{MODEL} on one {args.size}x{args.size} mosaic of dsb2018/fluorescence/val, "
        f"{info['mode']} (tile {info['tile']}, overlap {info['overlap']}, "
        f"backend {info['backend']})"
    )
    print(
        f"{'size':>6} {'seconds':>8} {'peak GB':>8} {'base GB':>8} {'objects':>8} "
        f"{'true':>7} {'AP@0.5':>7} {'AP@0.7':>7} {'AP@0.9':>7}"
    )
    print(
        f"{args.size:>6} {info['seconds']:>8.1f} {info['peak_rss_gb']:>8.2f} "
        f"{info['rss_before_predict_gb']:>8.2f} {info['n_objects']:>8} {row['n_true']:>7} "
        f"{row['ap@0.5']:>7.3f} {row['ap@0.7']:>7.3f} {row['ap@0.9']:>7.3f}"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
