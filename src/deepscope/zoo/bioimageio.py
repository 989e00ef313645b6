"""bioimage.io model packages (format 0.5): export any deepscope model, import one back.

The export holds the network in TorchScript and ONNX (float32, batch norm folded), a test
input with the network's output on it, a cover picture, a README, and the pre-processing
as bioimage.io steps (percentile ``scale_range`` per image and channel). Other tools
(deepImageJ, Fiji, bioimageio.core) run the network from it; what turns its raw output
into objects (StarDist polygons and NMS, the U-Net's label rules) is ours and travels in
our own package, which the export carries as attachments so that deepscope re-imports it
exactly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import tifffile
import torch
import yaml

from deepscope.errors import ModelError
from deepscope.spec import SPEC_FILE, WEIGHTS_FILE, ModelSpec, read_spec, read_weights, sha256_of

RDF_FILE = "rdf.yaml"
FORMAT_VERSION = "0.5.4"
TORCHSCRIPT_FILE = "weights_torchscript.pt"
ONNX_FILE = "weights.onnx"


def is_bioimageio(folder: Path) -> bool:
    """Whether ``folder`` holds a bioimage.io description."""
    return (folder / RDF_FILE).is_file() or any(folder.glob("*.bioimageio.yaml"))


def _rdf_path(folder: Path) -> Path:
    found = [folder / RDF_FILE] if (folder / RDF_FILE).is_file() else []
    return (found or sorted(folder.glob("*.bioimageio.yaml")))[0]


def test_image(spec: ModelSpec, side: int) -> np.ndarray:
    """A test input ``(C, *spatial)`` for the export: a crop of the shipped nuclei sample
    for 2D, synthetic nuclei for 3D; each channel a copy."""
    from deepscope.data.synthetic import synthetic_nuclei
    from deepscope.demo import SAMPLE
    from deepscope.io import read_image

    c = spec.network.in_channels
    if spec.network.ndim == 2:
        image = read_image(SAMPLE).data[:side, :side].astype(np.float32)
    else:
        depth = max(spec.network.divisor * 2, 16)
        image, _ = synthetic_nuclei((depth, side, side), n=12, seed=0)
        image = (image * 200).astype(np.float32)
    return np.repeat(image[None], c, axis=0)


def _network(folder: Path, spec: ModelSpec) -> torch.nn.Module:
    from deepscope.nets.unet import build_unet, fuse_batchnorm

    net = build_unet(spec.network)
    net.load_state_dict(read_weights(folder, spec))
    return fuse_batchnorm(net).float().eval()


def _axes(spec: ModelSpec, names: list[str], size, scale: float = 1.0) -> list[dict]:
    spatial = ["y", "x"] if spec.network.ndim == 2 else ["z", "y", "x"]
    axes: list[dict] = [{"type": "batch"}, {"type": "channel", "channel_names": names}]
    for a in spatial:
        axis = {"type": "space", "id": a, "size": size(a)}
        if scale != 1.0:
            axis["scale"] = scale
        axes.append(axis)
    return axes


def _output_channel_names(spec: ModelSpec) -> list[str]:
    k = spec.network.out_channels
    if spec.task == "stardist":
        return ["object_probability_logit", *(f"ray_distance_{i}" for i in range(k - 1))]
    if spec.task == "semantic" and k == 3:
        return ["background_logit", "interior_logit", "boundary_logit"]
    return [f"output_{i}" for i in range(k)]


def _preprocessing(spec: ModelSpec) -> list[dict]:
    norm = spec.normalization
    steps: list[dict] = [{"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}]
    if norm.mode == "percentile":
        spatial = ["y", "x"] if spec.network.ndim == 2 else ["z", "y", "x"]
        kwargs = {
            "axes": spatial,
            "min_percentile": norm.low,
            "max_percentile": norm.high,
            "eps": 1e-6,
        }
        steps.append({"id": "scale_range", "kwargs": kwargs})
        if norm.clip:
            steps.append({"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}})
    return steps


def _readme(spec: ModelSpec) -> str:
    metrics = {k: v for k, v in spec.validation.items() if k.startswith("ap@")}
    lines = [
        f"# {spec.name}",
        "",
        spec.description or f"A deepscope {spec.task} model.",
        "",
        f"Exported from deepscope {spec.deepscope_version} (task `{spec.task}`, "
        f"architecture `{spec.tags.architecture}`, {spec.tags.dimensionality}).",
        "",
        "## Inputs and outputs",
        f"- input: {spec.network.in_channels} channel(s), each normalised per image "
        f"(percentiles {spec.normalization.low}-{spec.normalization.high} to 0-1).",
        f"- output: the raw network output, channels {', '.join(_output_channel_names(spec))}"
        + (f", on a grid of {spec.network.grid} pixels" if spec.network.grid > 1 else "")
        + ".",
        "",
        "## What only deepscope does",
        "Turning the output into objects is not part of bioimage.io: "
        + (
            "sigmoid of the probability, star-convex polygons from the ray distances, "
            "non-maximum suppression with the tuned thresholds "
            f"{spec.task_params.get('prob_threshold')}/{spec.task_params.get('nms_threshold')}"
            if spec.task == "stardist"
            else "softmax over the classes, then labels from the interior class"
        )
        + ". `deepscope models import` of this package restores the full deepscope model "
        "(attachments `model.json` and `weights.safetensors`).",
        "",
        "## Validation",
        *(f"- {k.upper()}: {v:.3f}" for k, v in metrics.items()),
        "",
        f"Licence: {spec.licence}.",
        "",
    ]
    return "\n".join(lines)


def _cover(image: np.ndarray, output: np.ndarray, spec: ModelSpec, path: Path) -> None:
    import imageio.v3 as iio

    from deepscope.render import overlay, to_display
    from deepscope.tasks import get_task

    first = image[0] if image.ndim == 3 else image[0, image.shape[1] // 2]
    labels = get_task(spec.task, spec.task_params).postprocess(output[0], image.shape[1:]).labels
    if labels.ndim == 3:
        labels = labels[labels.shape[0] // 2]
    picture = np.concatenate([to_display(first), overlay(first, labels)], axis=1)
    iio.imwrite(path, picture, extension=".png")


def export_bioimageio(folder: Path, out: Path, side: int = 256) -> Path:
    """Write the package in ``folder`` as a bioimage.io model: a folder, or a zip when
    ``out`` ends in ``.zip``. Returns ``out``."""
    from deepscope.data.normalize import normalize
    from deepscope.nets.onnx import export_onnx

    spec = read_spec(folder)
    net = _network(folder, spec)
    divisor = spec.network.divisor
    side = max(divisor, side // divisor * divisor)
    raw = test_image(spec, side)
    x = normalize(raw, spec.normalization)[None].astype(np.float32)
    with torch.inference_mode():
        y = net(torch.from_numpy(x)).numpy()

    if out.exists():
        raise ModelError(f"'{out}' exists; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        stage = work / "package"
        stage.mkdir()
        np.save(stage / "test_input.npy", raw[None].astype(np.float32))
        np.save(stage / "test_output.npy", y)
        for name, array in (("sample_input.tif", raw[None]), ("sample_output.tif", y)):
            tifffile.imwrite(stage / name, array.astype(np.float32), photometric="minisblack")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript is deprecated but still what
            traced = torch.jit.trace(net, torch.from_numpy(x))  # deepImageJ runs
        traced.save(str(stage / TORCHSCRIPT_FILE))
        (stage / ONNX_FILE).write_bytes(export_onnx(net))
        _cover(raw, y, spec, stage / "cover.png")
        (stage / "README.md").write_text(_readme(spec))
        shutil.copyfile(folder / SPEC_FILE, stage / SPEC_FILE)
        shutil.copyfile(folder / WEIGHTS_FILE, stage / WEIGHTS_FILE)
        (stage / RDF_FILE).write_text(yaml.safe_dump(_rdf(spec, stage), sort_keys=False))
        if out.suffix == ".zip":
            tmp = work / "package.zip"
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                for item in sorted(stage.iterdir()):
                    zf.write(item, item.name)
            os.replace(tmp, out)
        else:
            os.replace(stage, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _file(stage: Path, name: str) -> dict:
    return {"source": name, "sha256": sha256_of(stage / name)}


def _rdf(spec: ModelSpec, stage: Path) -> dict:
    from deepscope import __version__

    divisor, grid = spec.network.divisor, spec.network.grid

    def input_size(_axis: str) -> dict:
        return {"min": divisor, "step": divisor}

    def output_size(axis: str) -> dict:
        return {"tensor_id": "input", "axis_id": axis}

    return {
        "format_version": FORMAT_VERSION,
        "type": "model",
        "name": spec.name,
        "description": spec.description or f"deepscope {spec.task} model",
        "version": spec.version,
        "authors": [{"name": a} for a in spec.authors],
        "cite": [
            {
                "text": "deepscope: deep learning for microscopy image analysis",
                "url": "https://github.com/deepscope/deepscope",
            },
            *(
                [
                    {
                        "text": "Schmidt et al., Cell Detection with Star-convex Polygons, "
                        "MICCAI 2018",
                        "doi": "10.1007/978-3-030-00934-2_30",
                    }
                ]
                if spec.task == "stardist"
                else []
            ),
        ],
        "license": spec.licence,
        "documentation": "README.md",
        "covers": ["cover.png"],
        "tags": [
            spec.task,
            spec.tags.architecture,
            spec.tags.dimensionality,
            *spec.tags.domain.split(),
        ],
        "timestamp": spec.created,
        "inputs": [
            {
                "id": "input",
                "description": "image, channels first",
                "axes": _axes(
                    spec, [f"channel{i}" for i in range(spec.network.in_channels)], input_size
                ),
                "test_tensor": _file(stage, "test_input.npy"),
                "sample_tensor": _file(stage, "sample_input.tif"),
                "data": {"type": "float32"},
                "preprocessing": _preprocessing(spec),
            }
        ],
        "outputs": [
            {
                "id": "output",
                "description": "raw network output (see README for what deepscope does next)",
                "axes": _axes(spec, _output_channel_names(spec), output_size, float(grid)),
                "test_tensor": _file(stage, "test_output.npy"),
                "sample_tensor": _file(stage, "sample_output.tif"),
                "data": {"type": "float32"},
            }
        ],
        "weights": {
            "torchscript": {
                **_file(stage, TORCHSCRIPT_FILE),
                "pytorch_version": torch.__version__.split("+")[0],
            },
            "onnx": {**_file(stage, ONNX_FILE), "opset_version": 17, "parent": "torchscript"},
        },
        "attachments": [_file(stage, SPEC_FILE), _file(stage, WEIGHTS_FILE)],
        "config": {"deepscope": {"version": __version__, "task": spec.task}},
    }


def package_from_bioimageio(folder: Path, dest: Path) -> Path:
    """The deepscope package inside a bioimage.io model that deepscope exported, checked;
    a model from elsewhere is refused with a clear message."""
    try:
        rdf = yaml.safe_load(_rdf_path(folder).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ModelError(f"cannot read the bioimage.io description in {folder}: {err}") from None
    attached = {Path(str(a.get("source", ""))).name for a in rdf.get("attachments") or []}
    if not {SPEC_FILE, WEIGHTS_FILE} <= attached:
        raise ModelError(
            f"{folder} is a bioimage.io model from another tool; deepscope imports bioimage.io "
            "models that deepscope exported (with model.json attached) in this version"
        )
    dest.mkdir(parents=True)
    for name in (SPEC_FILE, WEIGHTS_FILE, "cover.png", "README.md"):
        if (folder / name).is_file():
            shutil.copyfile(folder / name, dest / name)
    return dest


def reproduce_test_tensors(folder: Path, atol: float = 1e-4) -> dict[str, float]:
    """Run the exported TorchScript and ONNX weights of a bioimage.io package on its test
    input, with its pre-processing, and return the largest absolute difference from the
    stored test output for each (``ModelError`` when one exceeds ``atol``)."""
    import onnxruntime as ort

    from deepscope.data.normalize import percentile_normalize

    rdf = yaml.safe_load(_rdf_path(folder).read_text())
    tensor = rdf["inputs"][0]
    x = np.load(folder / tensor["test_tensor"]["source"]).astype(np.float32)
    for step in tensor.get("preprocessing", []):
        if step["id"] == "scale_range":
            k = step["kwargs"]
            x = percentile_normalize(x[0], k["min_percentile"], k["max_percentile"])[None]
        elif step["id"] == "clip":
            x = np.clip(x, step["kwargs"]["min"], step["kwargs"]["max"])
    expected = np.load(folder / rdf["outputs"][0]["test_tensor"]["source"])
    weights = rdf["weights"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated, still what others run
        script = torch.jit.load(str(folder / weights["torchscript"]["source"]), map_location="cpu")
    with torch.inference_mode():
        from_script = script(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(
        str(folder / weights["onnx"]["source"]), providers=["CPUExecutionProvider"]
    )
    from_onnx = session.run(None, {session.get_inputs()[0].name: x})[0]
    diffs = {
        "torchscript": float(np.abs(from_script - expected).max()),
        "onnx": float(np.abs(from_onnx - expected).max()),
    }
    bad = {k: v for k, v in diffs.items() if v > atol}
    if bad:
        raise ModelError(f"{folder}: test output not reproduced ({bad}, tolerance {atol})")
    return diffs


__all__ = ["export_bioimageio", "package_from_bioimageio", "reproduce_test_tensors"]
