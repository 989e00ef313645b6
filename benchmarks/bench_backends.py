"""torch versus onnxruntime on the CPU, per built-in model: prediction time and outputs.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_backends.py [--repeats 5] [--models NAME ...] [--out F]

For every built-in model (or those named), on an input of its kind: the median time over
``--repeats`` rounds (each round runs every variant once, in turn, so that a slow spell of a
shared machine hits all of them; the speed-ups are medians of the per-round ratios) of the
network alone (``Model.raw``, whole image) and of ``Model.predict`` end to end
(normalisation, network, post-processing) with torch float32, torch at the model's own
precision (bfloat16 where ``auto`` picks it), and onnxruntime float32; the largest absolute
difference of the raw outputs (onnxruntime vs torch float32) and how far the results agree
(the fraction of equal labels, or of equal classes; for restoration the largest difference
of the restored images); the network's arithmetic (GFLOP: convolutions counted with
forward hooks) and the rate each float32 runtime reaches with it (GFLOP/s), which shows how
far each runtime is from the CPU's peak. For a model with an int8 network, the same times with it
(``--precision int8``), its speed-up over onnxruntime float32, and its results' agreement
with torch float32. Inputs: one 1104x1104 fluorescence nuclei image for 2D
segmentation and restoration models (a timing input: any grey image of that size costs the
same), a 64x256x256 crop of the nuclei3d validation volume for 3D models, and the first
64x64 crop of ``mitosis_crops`` for crop classifiers. Writes benchmarks/results/backends.json
(or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from bench_nuclei_2d import image_1104
from machine import cpu_model

from deepscope.io import read_image
from deepscope.zoo import load_model
from deepscope.zoo.registry import builtin_names

ROOT = Path(__file__).resolve().parents[1]
VOLUME = ROOT.parent / "shared" / "data" / "nuclei3d" / "val" / "1137_mini.h5"
CROPS = ROOT.parent / "shared" / "data" / "mitosis_crops"


def input_for(model) -> np.ndarray:
    """A benchmark input of the kind ``model`` takes."""
    if model.spec.task == "classify":
        return read_image(sorted(CROPS.glob("*/*.png"))[0]).data
    if model.spec.network.ndim == 3:
        return read_image(f"{VOLUME}:raw").data[:64, :256, :256]
    return image_1104()


def agreement(a, b) -> float:
    """How far two results agree: the fraction of equal labels or classes, or for restored
    images the largest absolute difference."""
    if a.labels is not None:
        return float((a.labels == b.labels).mean())
    if a.image is not None:
        return float(np.abs(a.image - b.image).max())
    return float(
        np.mean(a.classes == b.classes) if a.class_name is None else a.class_name == b.class_name
    )


def interleaved_seconds(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each function over ``repeats`` rounds; every round calls all of them in
    turn, so a slow spell of the machine hits all alike, and each timed call follows an
    untimed one of the same function, so that it runs warm after the switch from another
    runtime."""
    runs = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            fn()
            start = time.perf_counter()
            fn()
            runs[key].append(time.perf_counter() - start)
    return runs


def network_gflop(model, image: np.ndarray) -> float:
    """Multiply-adds x 2 of the convolutions (and linear layers) of one ``Model.raw`` call
    on ``image``, counted with forward hooks on the torch network."""
    counted = []

    def count(module, inputs, output) -> None:
        if isinstance(module, torch.nn.Conv2d | torch.nn.Conv3d | torch.nn.Linear):
            per_output = module.weight[0].numel()
            counted.append(2 * output.numel() * per_output)
        elif isinstance(module, torch.nn.ConvTranspose2d | torch.nn.ConvTranspose3d):
            counted.append(2 * inputs[0].numel() * module.weight[0].numel())

    net = model.predictor.net
    hooks = [m.register_forward_hook(count) for m in net.modules()]
    try:
        model.raw(image, tile=None)
    finally:
        for hook in hooks:
            hook.remove()
    return sum(counted) / 1e9


def paired_speedup(slow: list[float], fast: list[float]) -> float:
    """Median over rounds of the ratio of two interleaved timings."""
    return statistics.median(s / f for s, f in zip(slow, fast, strict=True))


def bench_model(name: str, repeats: int) -> dict:
    variants = {
        "torch_float32": {"backend": "torch", "precision": "float32"},
        "torch_model_precision": {"backend": "torch", "precision": None},
        "onnx": {"backend": "onnx", "precision": "float32"},
        "auto": {"backend": "auto", "precision": None},
    }
    if load_model(name, device="cpu").spec.int8 is not None:
        variants["int8"] = {"backend": "onnx", "precision": "int8"}
    models = {key: load_model(name, device="cpu", **kw) for key, kw in variants.items()}
    image = input_for(models["onnx"])
    row = {"model": name, "image_shape": list(image.shape)}
    auto = models["auto"]
    row["auto_picks"] = "int8" if getattr(auto.predictor, "int8", False) else auto.backend
    timed = {key: model for key, model in models.items() if key != "auto"}
    runs = {}
    for stage, call in (
        ("network", lambda m: m.raw(image, tile=None)),
        ("predict", lambda m: m.predict(image)),
    ):
        fns = {key: (lambda m=model, c=call: c(m)) for key, model in timed.items()}
        for key, seconds in interleaved_seconds(fns, repeats).items():
            runs[f"{key}_{stage}"] = seconds
            row[f"{key}_{stage}_s"] = statistics.median(seconds)
    row["runs_s"] = runs
    # how close each runtime comes to the CPU's arithmetic peak explains the speed-ups
    row["network_gflop"] = network_gflop(models["torch_float32"], image)
    for key in ("torch_float32", "onnx"):
        row[f"{key}_gflop_per_s"] = row["network_gflop"] / row[f"{key}_network_s"]
    reference = models["torch_float32"].raw(image, tile=None)
    onnx_out = models["onnx"].raw(image, tile=None)
    row["max_abs_diff"] = float(np.abs(reference - onnx_out).max())
    row["results_agree"] = agreement(
        models["torch_float32"].predict(image), models["onnx"].predict(image)
    )
    for stage in ("network", "predict"):
        row[f"speedup_{stage}"] = paired_speedup(
            runs[f"torch_float32_{stage}"], runs[f"onnx_{stage}"]
        )
    if "int8" in models:
        row["int8_agree"] = agreement(
            models["torch_float32"].predict(image), models["int8"].predict(image)
        )
        for stage in ("network", "predict"):
            row[f"int8_speedup_{stage}"] = paired_speedup(
                runs[f"onnx_{stage}"], runs[f"int8_{stage}"]
            )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "backends.json"
    )
    args = parser.parse_args()
    rows = [bench_model(name, args.repeats) for name in args.models or builtin_names()]
    header = (
        f"{'model':24} {'network torch32':>15} {'torch model':>11} {'onnx':>7} {'speed-up':>8}"
        f" {'predict torch32':>15} {'torch model':>11} {'onnx':>7} {'speed-up':>8}"
        f" {'max|diff|':>9} {'agree':>7} {'auto':>5} {'GFLOP':>6} {'GFLOP/s torch32 / onnx':>22}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['model']:24} {r['torch_float32_network_s']:15.3f}"
            f" {r['torch_model_precision_network_s']:11.3f} {r['onnx_network_s']:7.3f}"
            f" {r['speedup_network']:7.2f}x {r['torch_float32_predict_s']:15.3f}"
            f" {r['torch_model_precision_predict_s']:11.3f} {r['onnx_predict_s']:7.3f}"
            f" {r['speedup_predict']:7.2f}x {r['max_abs_diff']:9.1e} {r['results_agree']:7.3g}"
            f" {r['auto_picks']:>5} {r['network_gflop']:6.1f}"
            f" {r['torch_float32_gflop_per_s']:11.0f} / {r['onnx_gflop_per_s']:<8.0f}"
        )
    int8_rows = [r for r in rows if "int8_agree" in r]
    if int8_rows:
        print(
            f"\n{'int8 network':24} {'network':>8} {'vs onnx':>8} {'predict':>8} {'vs onnx':>8}"
            f" {'agree':>7}"
        )
    for r in int8_rows:
        print(
            f"{r['model']:24} {r['int8_network_s']:8.3f} {r['int8_speedup_network']:7.2f}x"
            f" {r['int8_predict_s']:8.3f} {r['int8_speedup_predict']:7.2f}x {r['int8_agree']:7.3g}"
        )
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpu": cpu_model(),
        "native_bfloat16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    out.write_text(json.dumps({"machine": machine, "models": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
