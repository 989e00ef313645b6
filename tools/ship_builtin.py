"""Copy a trained model package into the built-in models shipped with deepscope.

Usage: .venv/bin/python tools/ship_builtin.py runs/unet-nuclei-fluo [--float32]
           [--tile 2048] [--overlap 96] [--precision auto] [--cpu-backend onnx]
           [--config configs/unet-nuclei-fluo.yaml] [--version 1.1.0]
           [--int8-images TRAIN_IMAGES --int8-val VAL_IMAGES VAL_MASKS]

Prediction defaults are reset to those of this deepscope version, except the tile size,
overlap, network precision and faster CPU runtime given here (the runtime defaults to the
one the training measured). Weights are stored as
float16 (half the size; they are cast back to float32 on loading) unless --float32 is
given. model.json, history.csv, loss.png and the reports of crop models (confusion.png,
per_class.csv, reconstructions.png) are copied; checkpoints are not. With --config (the
repository config that trains the model, for a run started from a copy elsewhere), the
training command and the data paths recorded in model.json become those of that config, as
run from the repository root; --version sets the model's version (raise it with new weights).
--int8-images adds an int8 copy of the network calibrated on 32 of those images (from the
shipped float16 weights), scored on the --int8-val images and masks.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from deepscope.spec import Prediction, read_spec, read_weights, save_package
from deepscope.train.config import load_train_config
from deepscope.zoo.quantize import quantize_model
from deepscope.zoo.registry import BUILTIN_DIR

PATH_KEYS = ("out", "images", "masks", "val_images", "val_masks", "mapping", "init_from")


def recorded_as(training: dict, config: Path) -> dict:
    """``training`` with the command and paths of ``config`` (relative to the repository
    root), which must train a model of the same name."""
    repo = load_train_config(config)
    settings = dict(training["settings"])
    if repo.name != settings["name"]:
        raise SystemExit(f"{config} trains '{repo.name}', not '{settings['name']}'")
    for key in PATH_KEYS:
        value = getattr(repo, key)
        settings[key] = None if value is None else str(value)
    init = settings["init_from"]
    if init and "/" in init and not Path(init).is_absolute():  # a folder not made yet
        settings["init_from"] = str(config.parent / init)
    data = {**training["data"], **{k: settings[k] for k in ("images", "masks", "val_images")}}
    command = f"deepscope train {config}"
    return {**training, "command": command, "settings": settings, "data": data}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--float32", action="store_true")
    parser.add_argument("--tile", type=int, default=Prediction().tile)
    parser.add_argument("--overlap", type=int, default=Prediction().overlap)
    parser.add_argument(
        "--precision", default="float32", choices=["float32", "bfloat16", "int8", "auto"]
    )
    parser.add_argument("--cpu-backend", default=None, choices=["torch", "onnx"])
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--version", default=None)
    parser.add_argument("--int8-images", type=Path, default=None)
    parser.add_argument("--int8-val", type=Path, nargs=2, default=None, metavar=("IMAGES", "MASKS"))
    args = parser.parse_args()
    spec = read_spec(args.package)
    prediction = Prediction(
        tile=args.tile,
        overlap=args.overlap,
        precision=args.precision,
        cpu_backend=args.cpu_backend or spec.prediction.cpu_backend,
    )
    spec = spec.model_copy(update={"prediction": prediction})
    if args.version:
        spec = spec.model_copy(update={"version": args.version})
    if args.config:
        spec = spec.model_copy(update={"training": recorded_as(spec.training, args.config)})
    weights = read_weights(args.package, spec)
    if not args.float32:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    target = BUILTIN_DIR / spec.name
    shutil.rmtree(target, ignore_errors=True)
    save_package(target, spec, weights)
    for name in (
        "history.csv",
        "loss.png",
        "confusion.png",
        "per_class.csv",
        "reconstructions.png",
    ):
        if (args.package / name).is_file():
            shutil.copyfile(args.package / name, target / name)
    if args.int8_images:
        val_images, val_masks = args.int8_val or (None, None)
        quantize_model(target, args.int8_images, val_images=val_images, val_masks=val_masks)
    size = sum(p.stat().st_size for p in target.iterdir()) / 1e6
    print(f"shipped {spec.name} to {target} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
