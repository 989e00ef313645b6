"""Train and apply the reference StarDist (PyPI ``stardist``, TensorFlow CPU) for a comparison.

Runs in its own environment, because the reference needs TensorFlow and numpy 1.x:

    python3.11 -m venv /tmp/refsd
    /tmp/refsd/bin/pip install tensorflow-cpu==2.15.1 stardist==0.9.2 csbdeep==0.8.2 \\
        numpy==1.26.4 tifffile
    /tmp/refsd/bin/python benchmarks/stardist_reference.py --minutes 80 --out runs/reference

It trains ``StarDist2D`` (32 rays, grid 2x2, the settings of the reference's own DSB2018
example, with flips, 90-degree rotations and intensity augmentation) on
``dsb2018/fluorescence/train`` until the wall-clock budget is used, optimises its thresholds
on ``val``, writes its labels for every ``val`` image to ``OUT/labels/`` and its timings to
``OUT/timings.json``. ``bench_stardist_vs_reference.py`` scores those labels with our metric
code next to ours. This file uses only the reference's public API.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import tifffile
from csbdeep.utils import normalize
from stardist.models import Config2D, StarDist2D
from tensorflow import keras

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence"


def load(split: str) -> tuple[list[Path], list[np.ndarray], list[np.ndarray]]:
    paths = sorted((DATA / split / "images").glob("*.tif"))
    images = [normalize(tifffile.imread(p).astype(np.float32), 1, 99.8) for p in paths]
    masks = [tifffile.imread(DATA / split / "masks" / p.name).astype(np.int32) for p in paths]
    return paths, images, masks


def augment(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = np.random.randint(4)
    x, y = np.rot90(x, k), np.rot90(y, k)
    for axis in (0, 1):
        if np.random.rand() < 0.5:
            x, y = np.flip(x, axis), np.flip(y, axis)
    x = x * np.random.uniform(0.7, 1.3) + np.random.uniform(-0.1, 0.1)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


class TimeLimit(keras.callbacks.Callback):
    """Stop training at the end of the first epoch past the budget."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def image_1104() -> np.ndarray:
    largest = max((DATA / "train" / "images").glob("*.tif"), key=lambda p: tifffile.imread(p).size)
    data = tifffile.imread(largest)
    pad = [(0, max(0, 1104 - s)) for s in data.shape]
    return np.pad(data, pad, mode="reflect")[:1104, :1104]


def time_on_request(out: Path, image: Path | None) -> None:
    """Serve end-to-end timings (normalisation, network, NMS, labels) of the model in
    ``out`` on ``image`` (a .npy file; default the 1104x1104 image), one per line of stdin,
    after one untimed warm-up."""
    import sys

    model = StarDist2D(None, name="stardist-reference", basedir=str(out))
    big = (np.load(image) if image else image_1104()).astype(np.float32)
    model.predict_instances(normalize(big, 1, 99.8))
    print("ready", flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        labels, _ = model.predict_instances(normalize(big, 1, 99.8))
        print(f"{time.perf_counter() - start} {int(labels.max())}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=80.0, help="training wall-clock budget")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "reference")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="skip training: load the model already trained in --out and redo the rest",
    )
    parser.add_argument(
        "--time-on-request",
        action="store_true",
        help="load the model trained in --out, then for every line read on stdin predict the "
        "1104x1104 image (or --image) once and print the seconds (for interleaved timing "
        "beside ours)",
    )
    parser.add_argument("--image", type=Path, help="with --time-on-request: a .npy image")
    args = parser.parse_args()
    if args.time_on_request:
        time_on_request(args.out, args.image)
        return
    args.out.mkdir(parents=True, exist_ok=True)

    _, x_train, y_train = load("train")
    val_paths, x_val, y_val = load("val")
    config = Config2D(
        n_rays=32,
        grid=(2, 2),
        n_channel_in=1,
        train_patch_size=(256, 256),
        train_batch_size=8,
        train_epochs=10_000,
        train_steps_per_epoch=100,
    )
    if args.evaluate_only:
        model = StarDist2D(None, name="stardist-reference", basedir=str(args.out))
        previous = json.loads((args.out / "training.json").read_text())
        train_seconds, epochs = previous["train_seconds"], previous["epochs"]
    else:
        model = StarDist2D(config, name="stardist-reference", basedir=str(args.out))
        model.prepare_for_training()
        model.callbacks.append(TimeLimit(args.minutes * 60))
        start = time.perf_counter()
        history = model.train(x_train, y_train, validation_data=(x_val, y_val), augmenter=augment)
        train_seconds = time.perf_counter() - start
        epochs = len(history.history["loss"])
        summary = {"train_seconds": train_seconds, "epochs": epochs}
        (args.out / "training.json").write_text(json.dumps(summary) + "\n")
    model.optimize_thresholds(x_val, y_val)

    labels_dir = args.out / "labels"
    labels_dir.mkdir(exist_ok=True)
    for path, x in zip(val_paths, x_val):
        labels, _ = model.predict_instances(x)
        tifffile.imwrite(labels_dir / path.name, labels.astype(np.int32))

    big = image_1104()
    model.predict_instances(normalize(big.astype(np.float32), 1, 99.8))  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        model.predict_instances(normalize(big.astype(np.float32), 1, 99.8))
        times.append(time.perf_counter() - t0)
    result = {
        "train_seconds": train_seconds,
        "epochs": epochs,
        "thresholds": model.thresholds._asdict(),
        "predict_1104_seconds_median": statistics.median(times),
        "predict_1104_seconds": times,
    }
    (args.out / "timings.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
