"""Train Cellpose 3 (PyPI ``cellpose``, PyTorch CPU) from scratch on the bacteria frames; score it.

The side-by-side reference for ``flows-bacteria`` (``bench_bacteria.py``): the same training
frames (t000-t041 of ``runs/bacteria_split``), the same wall-clock training budget, the same
validation frames (t042-t052) and our metric code (``deepscope.metrics.evaluate_instances``).
Cellpose's pretrained weights cannot be downloaded here, so its network starts from random
weights. This file uses only Cellpose's public API.

Environment (CPU only; torch 2.13.0+cpu is on this machine's disk, an unpinned torch would
pull a multi-GB CUDA build). ``cellpose==3.1.1.3`` accepts it and numpy 2.0.2 as they come::

    python3 -m venv /tmp/cpvenv
    /tmp/cpvenv/bin/pip install torch==2.13.0 'cellpose==3.1.1.3'

This gives cellpose 3.1.1.3, torch 2.13.0+cpu, numpy 2.0.2, scipy 1.17.1, numba 0.68.1,
opencv-python-headless 5.0.0.93, fastremap 1.21.0, fill-voids 2.1.2, tifffile 2026.3.3.
Nothing else is needed: our metric and size modules need only numpy and scipy, and are imported
from ``src/`` without running ``deepscope/__init__.py`` (which needs the main venv).

Usage (from the repository root)::

    .venv/bin/python tools/bacteria_split.py            # once, in the main venv
    OMP_NUM_THREADS=2 /tmp/cpvenv/bin/python benchmarks/cellpose_reference.py \\
        --budget-seconds 3600 --threads 2                # full run: 60 min + evaluation
    OMP_NUM_THREADS=1 /tmp/cpvenv/bin/python benchmarks/cellpose_reference.py --smoke --threads 1
    OMP_NUM_THREADS=2 /tmp/cpvenv/bin/python benchmarks/cellpose_reference.py --evaluate-only

``--budget-seconds`` defaults to 3600 s, about what the ``flows-bacteria`` training
(``configs/flows-bacteria.yaml``, 4,000 steps of 8 patches of 128² on 2 threads) took (3,595 s);
pass the seconds it really took (last row of ``runs/flows-bacteria/history.csv``)
for an exact match.

Protocol.

* Object size. ``--diameter`` defaults to the median equivalent diameter of all objects of the
  training masks (``deepscope.measure.size.median_diameter``, pooled over the frames; the same
  numbers in numpy if that module cannot be imported). The network is built with
  ``diam_mean`` equal to it and predicts with ``diameter`` equal to it, so prediction never
  rescales the image (``rescale = diam_mean / diameter = 1``); in training each frame is scaled
  by ``diam_mean`` over its own median diameter (close to 1) times Cellpose's random 0.75-1.25
  scale augmentation, as Cellpose always does. No size model is trained or used.
* Training to a wall clock. ``train_seg`` takes a number of epochs (one epoch = one random
  224² patch of each of the 42 training frames, or of ``--nimg-per-epoch`` random ones) and
  derives its learning-rate schedule from it (10 warm-up epochs, then halvings over the last
  50 or 100 epochs), so it is called once with the number of epochs that fits: the training
  masks are turned into flows once, a throwaway network is trained for
  ``--calibration-epochs`` epochs to measure the seconds per epoch, and the real network gets
  ``(budget - seconds spent so far) / seconds per epoch`` epochs. The flow computation and the
  calibration count against the budget. Settings are those of Cellpose's own command line for
  training from scratch (``python -m cellpose --train``): SGD with momentum 0.9, learning rate
  0.2, weight decay 1e-5, batch 8, 224² patches, grayscale ``channels=[0, 0]`` with 2 input
  channels, percentile normalisation; except that ``min_train_masks`` is 1, not 5, so that
  Cellpose trains on the same 42 frames as ours (its default would drop the 10 early frames
  with 2-4 cells). The validation frames are passed as ``test_data`` (Cellpose only logs a
  test loss with them).
* Prediction. The saved weights are loaded from ``--out`` and every validation frame is
  segmented with ``CellposeModel.eval`` (Cellpose's defaults: flow threshold 0.4, cell
  probability threshold 0.0, 224² tiles, 200 flow iterations), timed end to end after one
  untimed warm-up call; the median is reported. Masks are scored with our
  ``evaluate_instances`` at IoU 0.5-0.9, pooled over the frames.

Offline safety: nothing here asks Cellpose for a built-in model, but a wrong weights path makes
``CellposeModel`` fall back to downloading ``cyto3``; ``cellpose.utils.download_url_to_file``
is therefore replaced by a function that raises, so such a call fails at once instead of
hanging. Weights and ``training.json`` go to ``runs/cellpose-bacteria/`` (``smoke/`` inside it
for ``--smoke``); the results to ``--json``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
MODEL_NAME = "cellpose-bacteria"


def deepscope_module(name: str) -> types.ModuleType:
    """Import ``deepscope.<name>`` from ``src/`` without running the ``__init__.py`` of its
    parent packages (``deepscope/__init__.py`` imports the whole library and its dependencies,
    which this venv does not have; the metric and size modules need only numpy and scipy)."""
    parts = ["deepscope", *name.split(".")[:-1]]
    for i in range(len(parts)):
        package = ".".join(parts[: i + 1])
        if package not in sys.modules:
            stub = types.ModuleType(package)
            stub.__path__ = [str(SRC.joinpath(*parts[: i + 1]))]
            sys.modules[package] = stub
    return importlib.import_module(f"deepscope.{name}")


def median_diameter(masks: list[np.ndarray]) -> tuple[float, str]:
    """Median equivalent diameter of all objects of ``masks`` and where it was computed."""
    try:
        return float(deepscope_module("measure.size").median_diameter(masks)), "deepscope"
    except ImportError:
        areas = np.concatenate([np.bincount(m.ravel())[1:] for m in masks])
        areas = areas[areas > 0].astype(np.float64)
        return float(np.median(2.0 * np.sqrt(areas / np.pi))), "numpy"


def load(folder: Path, limit: int | None = None) -> tuple[list[str], list, list]:
    paths = sorted((folder / "images").glob("*.tif"))[:limit]
    if not paths:
        raise SystemExit(f"no frames in {folder}; run .venv/bin/python tools/bacteria_split.py")
    images = [tifffile.imread(p) for p in paths]
    masks = [tifffile.imread(folder / "masks" / p.name).astype(np.int32) for p in paths]
    return [p.stem for p in paths], images, masks


def offline_guard(url: str, dst: str, progress: bool = True) -> None:
    raise RuntimeError(f"cellpose tried to download {url} (no internet here; nothing should)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget-seconds",
        type=float,
        help="training wall-clock budget (default 3600 s, the flows-bacteria training; 120 s "
        "with --smoke)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--split", type=Path, default=ROOT / "runs" / "bacteria_split")
    parser.add_argument(
        "--diameter",
        type=float,
        help="object diameter in pixels, used as diam_mean and at prediction (default: median "
        "equivalent diameter of the training masks)",
    )
    parser.add_argument("--json", type=Path, help="results file (default: see --out)")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "runs" / MODEL_NAME,
        help="weights and training.json (default runs/cellpose-bacteria, its smoke/ with "
        "--smoke); results go to benchmarks/results/cellpose_bacteria.json (smoke: OUT/smoke.json)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="120 s budget, epochs of 8 frames, 2 val frames: proves the script runs",
    )
    parser.add_argument("--evaluate-only", action="store_true", help="reuse the weights in --out")
    parser.add_argument("--calibration-epochs", type=int, help="default 3 (1 with --smoke)")
    parser.add_argument(
        "--nimg-per-epoch",
        type=int,
        help="training frames per epoch (default: all 42, Cellpose's default; 8 with --smoke)",
    )
    parser.add_argument("--learning-rate", type=float, default=0.2)
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--min-train-masks", type=int, default=1, help="cellpose's default 5 drops 10 frames"
    )
    parser.add_argument("--flow-threshold", type=float, default=0.4)
    parser.add_argument("--cellprob-threshold", type=float, default=0.0)
    args = parser.parse_args()
    budget = args.budget_seconds or (120.0 if args.smoke else 3600.0)
    calibration_epochs = args.calibration_epochs or (1 if args.smoke else 3)
    nimg_per_epoch = args.nimg_per_epoch or (8 if args.smoke else None)
    out = args.out / "smoke" if args.smoke else args.out
    json_path = args.json or (
        args.out / "smoke.json"
        if args.smoke
        else ROOT / "benchmarks" / "results" / "cellpose_bacteria.json"
    )
    out.mkdir(parents=True, exist_ok=True)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import cv2
    import numba
    import torch
    from cellpose import dynamics, models, train, utils

    cellpose_version = importlib.metadata.version("cellpose")

    utils.download_url_to_file = offline_guard
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    evaluate_instances = deepscope_module("metrics.instance").evaluate_instances

    _, x_train, y_train = load(args.split / "train")
    val_names, x_val, y_val = load(args.split / "val", 2 if args.smoke else None)
    diameter, diameter_source = (
        (args.diameter, "--diameter") if args.diameter else median_diameter(y_train)
    )
    print(f"diameter {diameter:.2f} px ({diameter_source}); budget {budget:.0f} s", flush=True)
    channels = [0, 0]
    weights = out / "models" / MODEL_NAME
    settings = {
        "SGD": True,
        "learning_rate": args.learning_rate,
        "weight_decay": args.weight_decay,
        "batch_size": args.batch_size,
        "channels": channels,
        "min_train_masks": args.min_train_masks,
        "nimg_per_epoch": nimg_per_epoch,
    }

    def new_model() -> models.CellposeModel:
        torch.manual_seed(0)
        return models.CellposeModel(
            gpu=False, pretrained_model=False, model_type=None, diam_mean=diameter, nchan=2
        )

    if args.evaluate_only:
        training = json.loads((out / "training.json").read_text())
        diameter = args.diameter or training["diameter"]  # predict at the trained size
    else:
        cpu = torch.device("cpu")
        start = time.perf_counter()
        train_flows = dynamics.labels_to_flows([m.copy() for m in y_train], device=cpu)
        val_flows = dynamics.labels_to_flows([m.copy() for m in y_val], device=cpu)
        flows_seconds = time.perf_counter() - start
        data = {
            "train_data": x_train,
            "train_labels": train_flows,
            "test_data": x_val,
            "test_labels": val_flows,
            **settings,
        }
        with tempfile.TemporaryDirectory() as scratch:
            t0 = time.perf_counter()
            train.train_seg(
                new_model().net,
                n_epochs=calibration_epochs,
                save_path=scratch,
                model_name="calibration",
                **data,
            )
            seconds_per_epoch = (time.perf_counter() - t0) / calibration_epochs
        left = budget - (time.perf_counter() - start)
        epochs = max(1, int(left / seconds_per_epoch))
        print(
            f"flows {flows_seconds:.1f} s, {seconds_per_epoch:.1f} s per epoch: "
            f"{epochs} epochs in the {left:.0f} s left",
            flush=True,
        )
        model = new_model()
        saved, train_losses, _ = train.train_seg(
            model.net, n_epochs=epochs, save_path=out, model_name=MODEL_NAME, **data
        )
        training = {
            "train_seconds": time.perf_counter() - start,
            "budget_seconds": budget,
            "epochs": epochs,
            "flows_seconds": flows_seconds,
            "calibration_epochs": calibration_epochs,
            "calibration_seconds_per_epoch": seconds_per_epoch,
            "final_train_loss": float(train_losses[-1]),
            "diameter": diameter,
            "diameter_source": diameter_source,
            "diam_labels": float(model.net.diam_labels.item()),
            "settings": settings,
            "weights": os.path.relpath(saved, ROOT),
        }
        (out / "training.json").write_text(json.dumps(training, indent=2) + "\n")

    if not weights.is_file():  # a missing path would make cellpose fetch cyto3
        raise SystemExit(f"no trained weights at {weights}")
    model = models.CellposeModel(gpu=False, pretrained_model=str(weights), model_type=None)

    def predict(image: np.ndarray) -> np.ndarray:
        masks, _, _ = model.eval(
            image,
            channels=channels,
            diameter=diameter,
            flow_threshold=args.flow_threshold,
            cellprob_threshold=args.cellprob_threshold,
        )
        return masks

    predict(x_val[0])  # warm-up, untimed
    predictions, seconds = [], []
    for image in x_val:
        t0 = time.perf_counter()
        predictions.append(predict(image))
        seconds.append(time.perf_counter() - t0)
    metrics = evaluate_instances(zip(y_val, predictions), THRESHOLDS, names=val_names).to_dict()

    row = {
        "model": f"cellpose {cellpose_version} (from scratch)",
        **{k: metrics[k] for k in ("ap@0.5", "ap@0.7", "ap@0.9", "f1@0.5")},
        "n_pred": metrics["n_pred"],
        "n_true": metrics["n_true"],
        "seconds_per_frame": statistics.median(seconds),
        "seconds_per_frame_all": seconds,
        "train_seconds": training["train_seconds"],
        "epochs": training["epochs"],
        "training": training,
        "prediction": {
            "diameter": diameter,
            "flow_threshold": args.flow_threshold,
            "cellprob_threshold": args.cellprob_threshold,
            "threads": args.threads,
        },
        "val_frames": val_names,
        "smoke": args.smoke,
        "versions": {
            "cellpose": cellpose_version,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "metrics": metrics,
    }
    print(
        f"{'model':<36}{'AP@0.5':>8}{'AP@0.7':>8}{'AP@0.9':>8}{'F1@0.5':>8}  found/true  "
        "s/frame  train s  epochs"
    )
    print(
        f"{row['model']:<36}{row['ap@0.5']:>8.3f}{row['ap@0.7']:>8.3f}{row['ap@0.9']:>8.3f}"
        f"{row['f1@0.5']:>8.3f}  {row['n_pred']}/{row['n_true']}  "
        f"{row['seconds_per_frame']:.2f}  {row['train_seconds']:.0f}  {row['epochs']}"
    )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps([row], indent=2) + "\n")


if __name__ == "__main__":
    main()
