"""Copy a trained model package into the built-in models shipped with deepscope.

Usage: .venv/bin/python tools/ship_builtin.py runs/unet-nuclei-fluo [--float32]
           [--tile 2048] [--overlap 96] [--precision auto] [--cpu-backend onnx]

Prediction defaults are reset to those of this deepscope version, except the tile size,
overlap, network precision and faster CPU runtime given here (the runtime defaults to the
one the training measured). Weights are stored as
float16 (half the size; they are cast back to float32 on loading) unless --float32 is
given. model.json, history.csv, loss.png and the reports of crop models (confusion.png,
per_class.csv, reconstructions.png) are copied; checkpoints are not.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from deepscope.spec import Prediction, read_spec, read_weights, save_package
from deepscope.zoo.registry import BUILTIN_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--float32", action="store_true")
    parser.add_argument("--tile", type=int, default=Prediction().tile)
    parser.add_argument("--overlap", type=int, default=Prediction().overlap)
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16", "auto"])
    parser.add_argument("--cpu-backend", default=None, choices=["torch", "onnx"])
    args = parser.parse_args()
    spec = read_spec(args.package)
    prediction = Prediction(
        tile=args.tile,
        overlap=args.overlap,
        precision=args.precision,
        cpu_backend=args.cpu_backend or spec.prediction.cpu_backend,
    )
    spec = spec.model_copy(update={"prediction": prediction})
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
    size = sum(p.stat().st_size for p in target.iterdir()) / 1e6
    print(f"shipped {spec.name} to {target} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
