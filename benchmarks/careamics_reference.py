r"""Train the reference CAREamics N2V or CARE on FMD confocal within a time budget; save its output.

CAREamics is the PyTorch reference implementation of Noise2Void and CARE. This script trains
it on the same data as our ``n2v-fmd-confocal`` and ``care-fmd-confocal`` models, stops on a
wall-clock budget, and writes its predictions for every test image as float32 TIFF files so
that our benchmark can score them next to ours. It imports nothing from ``deepscope``: it runs
in a separate virtual environment.

Environment (CPU only). CAREamics 0.3.5 requires ``torchvision<=0.26``, which would pull in a
different, multi-GB CUDA build of torch, so it is installed without dependencies and its
other requirements are installed with torch pinned by a constraints file::

    python3 -m venv /tmp/cam
    /tmp/cam/bin/pip install torch==2.13.0          # the CPU wheel (2.13.0+cpu) here
    /tmp/cam/bin/pip install --no-deps careamics==0.3.5
    echo "torch==2.13.0" > /tmp/cam_constraints.txt
    /tmp/cam/bin/pip install -c /tmp/cam_constraints.txt \
        "bioimageio-core>=0.9.0,<=0.11.0" "lightning>=2.2,<=2.6.6,!=2.6.2,!=2.6.3" \
        "matplotlib<=3.11.2" "microssim<=0.0.5" "numpy>=1.21,<=2.4.6" "pillow<=13.0.0" \
        "psutil<=7.2.2" "pydantic>=2.11,<=2.14.1" "pyyaml<=6.0.3,!=6.0.0" \
        "scikit-image<=0.26.0" "tifffile<=2026.3.3" "torchmetrics>0.7.0,<1.9.0" \
        "zarr>=3.0.0,<4.0.0"

Without torchvision, ``import careamics`` fails: its package ``__init__`` imports the
configuration package, which imports the LVAE (HDN/MicroSplit) noise models, and
``careamics/models/lvae/stochastic.py`` (also ``models/lvae/utils.py`` and
``lvae_training/lightning_module.py``) does ``import torchvision.transforms.functional as F``
at module level; ``careamics/model_io/bioimage/bioimage_utils.py`` (BioImage.IO export) does
``from torchvision import __version__``. N2V and CARE never call torchvision. The workaround,
applied to the installed package in the venv only (nothing in this repository), makes these
four imports optional::

    /tmp/cam/bin/python - <<'EOF'
    from pathlib import Path
    pkg = Path("/tmp/cam/lib/python3.11/site-packages/careamics")
    for name, var in [("models/lvae/stochastic.py", "F"), ("models/lvae/utils.py", "F"),
                      ("lvae_training/lightning_module.py", "F"),
                      ("model_io/bioimage/bioimage_utils.py", "TORCHVISION_VERSION")]:
        path = pkg / name
        lines = path.read_text().split("\n")
        i = next(i for i, line in enumerate(lines) if line.startswith(("import torchvision",
                                                                        "from torchvision")))
        lines[i:i + 1] = ["try:", "    " + lines[i], "except ImportError:  # no torchvision",
                          f"    {var} = None"]
        path.write_text("\n".join(lines))
    EOF

Data: ``runs/fmd`` from
``tools/fmd_pairs.py`` (noisy 512x512 uint8 frames; targets the field's 50-frame average;
fov01-11 train, fov12-13 val, fov14-16 test); it also predicts the 48 images of
``fmd_test_mix``.

Usage, from the repository root::

    /tmp/cam/bin/python benchmarks/careamics_reference.py --algorithm n2v --minutes 45 \
        --threads 1 --out runs/careamics

What it does: builds the configuration with CAREamics' own factory
(``create_advanced_n2v_config`` / ``create_advanced_care_config``) and keeps its defaults
otherwise: 2D, UNet depth 2 with 32 initial filters and batch norm, Adam and
ReduceLROnPlateau, flips and 90-degree rotations, mean/std normalisation, stratified patch
sampling, N2V loss / MAE for CARE. Patch 64x64 and batch 32 for N2V (noisy train inputs
only), patch 128x128 and batch 8 for CARE (input -> target pairs): the patch and batch sizes
of our ``configs/*-fmd-confocal.yaml``. Validation uses the val fields (N2V: noisy inputs;
CARE: pairs). The budget is Lightning's ``max_time`` (a Trainer parameter, passed through
the training configuration's ``trainer_params``) with a huge epoch count, so training stops
at the first step past the budget, mid-epoch; validation counts towards it, the data set-up
before it does not (``train_seconds`` in run.json is the whole ``train()`` call). CARE keeps
CAREamics' default early stopping on ``val_loss`` (``--no-early-stopping`` drops it);
run.json says what stopped training. ``torch.set_num_threads(T)`` and ``num_workers=0`` keep
it on T threads. Prediction follows CAREamics' default choice of weights: for CARE the best
checkpoint on the validation loss (the last weights if no validation has run yet), for N2V
the last weights (saved at the end of training, so that the partial last epoch counts);
whole 512x512 images, batch 1, no tiling (CAREamics warns about batch norm with batch 1; in
prediction the model is in eval mode, so it does not matter). Writes
``OUT/<algorithm>/<test file name>`` (float32, in the data's intensity units: CAREamics
denormalises its output) and ``OUT/<algorithm>/run.json`` (versions, budget, seconds,
steps, the full CAREamics configuration). CAREamics' checkpoints and CSV logs go to
``OUT/<algorithm>/work/``, emptied at the start of each run.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "runs" / "fmd"
MIX = ROOT.parent / "shared" / "data" / "fmd_test_mix"

SETTINGS = {  # per algorithm: patch size, batch size (those of our configs/*-fmd-confocal.yaml)
    "n2v": {"patch": 64, "batch": 32},
    "care": {"patch": 128, "batch": 8},
}


def load(split: str, kind: str, names: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """File names and a (S, Y, X) float32 stack of ``DATA/split/kind/*.tif``."""
    folder = DATA / split / kind
    if names is None:
        names = sorted(p.name for p in folder.glob("*.tif"))
    if not names:
        raise SystemExit(f"no TIFF in {folder}; run tools/fmd_pairs.py {DATA} first")
    stack = np.stack([tifffile.imread(folder / n).astype(np.float32) for n in names])
    return names, stack


def predict_and_write(careamist, checkpoint, names: list[str], x: np.ndarray, out: Path):
    """CAREamics' predictions of the ``(S, Y, X)`` stack ``x``, written as ``out/<name>``
    (float32, whole images, batch 1); returns them as one stack."""
    predictions, _ = careamist.predict(x, batch_size=1, num_workers=0, checkpoint=checkpoint)
    stack = np.concatenate([np.asarray(p, dtype=np.float32) for p in predictions])
    stack = stack.reshape(x.shape)
    for name, image in zip(names, stack, strict=True):
        tifffile.imwrite(out / name, image)
    return stack


def max_time(minutes: float) -> str:
    """Lightning's ``max_time`` string ``DD:HH:MM:SS`` (whole seconds, at least one)."""
    seconds = max(1, round(minutes * 60))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    return f"{days:02d}:{hours:02d}:{mins:02d}:{secs:02d}"


def build_config(args: argparse.Namespace):
    from careamics.config import create_advanced_care_config, create_advanced_n2v_config

    common = dict(
        experiment_name=f"fmd_{args.algorithm}",
        data_type="array",
        axes="SYX",
        patch_size=[args.patch_size, args.patch_size],
        batch_size=args.batch_size,
        num_epochs=1_000_000,  # the time budget stops training
        num_workers=0,
        trainer_params={
            "max_time": max_time(args.minutes),
            "accelerator": args.accelerator,
            "devices": 1,
        },
        seed=args.seed,
    )
    if args.algorithm == "n2v":
        config = create_advanced_n2v_config(**common)
    else:
        config = create_advanced_care_config(**common)
    if args.no_early_stopping:
        config.training_config.early_stopping_params = None
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithm", choices=["n2v", "care"], required=True)
    parser.add_argument("--minutes", type=float, required=True, help="training budget")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "careamics")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--patch-size", type=int, default=None, help="default: 64 n2v, 128 care")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 n2v, 8 care")
    parser.add_argument("--accelerator", default="cpu", help="Lightning accelerator")
    parser.add_argument(
        "--no-early-stopping",
        action="store_true",
        help="CARE only: drop CAREamics' default early stopping on val_loss (patience 3 "
        "validations), so that the whole budget is used as by our models",
    )
    args = parser.parse_args()
    args.patch_size = args.patch_size or SETTINGS[args.algorithm]["patch"]
    args.batch_size = args.batch_size or SETTINGS[args.algorithm]["batch"]

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    import careamics
    from careamics import CAREamist
    from lightning.pytorch.callbacks import EarlyStopping

    out = args.out / args.algorithm
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)  # a fresh run: CAREamics would otherwise resume version numbers
    work.mkdir(parents=True)

    train_names, train_x = load("train", "inputs")
    val_names, val_x = load("val", "inputs")
    data = {"train_data": train_x, "val_data": val_x}
    if args.algorithm == "care":  # targets in the same order as their inputs
        data["train_data_target"] = load("train", "targets", train_names)[1]
        data["val_data_target"] = load("val", "targets", val_names)[1]
    test_names, test_x = load("test", "inputs")

    config = build_config(args)
    careamist = CAREamist(config, work_dir=work, enable_progress_bar=False)

    start = time.perf_counter()
    careamist.train(**data)
    train_seconds = time.perf_counter() - start
    trainer = careamist.trainer

    stopped_early = any(
        isinstance(cb, EarlyStopping) and cb.stopped_epoch > 0 for cb in trainer.callbacks
    )
    final = work / "final.ckpt"
    trainer.save_checkpoint(final)  # the weights at the end of the budget
    best = trainer.checkpoint_callback.best_model_path or None
    if args.algorithm == "care" and best is not None:
        checkpoint = best  # CAREamics' default for CARE: the best checkpoint on val_loss
    else:
        # N2V: CAREamics predicts with the last weights (saved here, so that the partial
        # epoch at the end of the budget counts). CARE without any validation yet (tiny
        # budgets): the last weights too.
        checkpoint = final

    start = time.perf_counter()
    stack = predict_and_write(careamist, checkpoint, test_names, test_x, out)
    predict_seconds = time.perf_counter() - start
    # fmd_test_mix (other microscopes and samples), as bench_restoration_fmd.py scores it
    mix = sorted((MIX / "raw").glob("*.tif"))
    mix_x = np.stack([tifffile.imread(p).astype(np.float32) for p in mix])
    predict_and_write(careamist, checkpoint, [p.name for p in mix], mix_x, out)

    run = {
        "tool": "careamics",
        "careamics_version": careamics.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "algorithm": args.algorithm,
        "threads": args.threads,
        "minutes_budget": args.minutes,
        "seed": args.seed,
        "train_seconds": round(train_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "epochs": round(trainer.global_step / max(1, trainer.num_training_batches), 3),
        "steps": trainer.global_step,
        "steps_per_epoch": trainer.num_training_batches,
        "stopped_by": "early stopping" if stopped_early else "time budget",
        "train_images": len(train_names),
        "val_images": len(val_x),
        "test_images": len(test_names),
        "test_mix_images": len(mix),
        "predicted_with": Path(checkpoint).name,
        "prediction_mean": float(stack.mean()),
        "config": json.loads(careamist.config.model_dump_json()),
    }
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    print(
        f"{args.algorithm}: {run['steps']} steps, {run['epochs']} epochs in "
        f"{train_seconds:.0f} s; {len(test_names)} predictions in {predict_seconds:.0f} s -> {out}"
    )


if __name__ == "__main__":
    main()
