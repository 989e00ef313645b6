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
import re
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import tifffile
import torch
import yaml

from deepscope.data.bioimageio_ops import apply_steps, unsupported
from deepscope.errors import ModelError
from deepscope.spec import (
    SPEC_FILE,
    WEIGHTS_FILE,
    ExternalNetwork,
    ModelSpec,
    read_spec,
    read_weights,
    sha256_of,
)
from deepscope.tasks.flows import FLOW_SCALE

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
    for 2D, synthetic nuclei for 3D; channel ``i`` is that image shifted by ``7 i`` pixels
    along X and scaled by ``1 / (i + 1)``, so that a consumer that mixes up the channels
    does not reproduce the test output."""
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
    return np.stack([np.roll(image, 7 * i, axis=-1) / (i + 1) for i in range(c)])


def _network(folder: Path, spec: ModelSpec) -> torch.nn.Module:
    """The package's network for export; an autoencoder exports its encoder (features)."""
    from deepscope.nets import AutoencoderConfig, build_network
    from deepscope.nets.unet import fuse_batchnorm
    from deepscope.predict.crops import EncoderOnly

    net = build_network(spec.network)
    net.load_state_dict(read_weights(folder, spec))
    if isinstance(spec.network, AutoencoderConfig):
        net = EncoderOnly(net)
    return fuse_batchnorm(net).float().eval()


def _is_crop_network(spec: ModelSpec) -> bool:
    """Classifiers and autoencoders: fixed-size crops in, one vector per crop out."""
    return getattr(spec.network, "kind", "unet") in ("classifier", "autoencoder")


def _crop_size(spec: ModelSpec) -> int:
    return int(spec.task_params.get("crop_size", 64))


def _axes(
    spec: ModelSpec, names: list[str], size, scale: float = 1.0, spatial: bool = True
) -> list[dict]:
    axes: list[dict] = [{"type": "batch"}, {"type": "channel", "channel_names": names}]
    if not spatial:
        return axes
    for a in ["y", "x"] if spec.network.ndim == 2 else ["z", "y", "x"]:
        axis = {"type": "space", "id": a, "size": size(a)}
        if scale != 1.0:
            axis["scale"] = scale
        axes.append(axis)
    return axes


def _output_channel_names(spec: ModelSpec) -> list[str]:
    if spec.task == "classify":
        return [f"{c}_logit" for c in spec.task_params["classes"]]
    if spec.task == "autoencoder":
        return [f"feature_{i}" for i in range(spec.network.latent)]
    k = spec.network.out_channels
    if spec.task == "stardist":
        return ["object_probability_logit", *(f"ray_distance_{i}" for i in range(k - 1))]
    if spec.task == "semantic" and k == 3:
        return ["background_logit", "interior_logit", "boundary_logit"]
    if spec.task == "flows" and k == spec.network.ndim + 1:
        flows = [f"flow_{a}_x{FLOW_SCALE:g}" for a in "zyx"[-spec.network.ndim :]]
        return [*flows, "cell_probability_logit"]
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
    if norm.mode == "dataset" and norm.bounds is not None:
        lo = [b[0] for b in norm.bounds]
        gain = [1.0 / (b[1] - b[0]) for b in norm.bounds]
        offset = [-a * g for a, g in zip(lo, gain, strict=True)]
        steps.append(
            {
                "id": "scale_linear",
                "kwargs": {"axis": "channel", "gain": gain, "offset": offset},
            }
        )
    if norm.mode in ("percentile", "dataset") and norm.clip:
        steps.append({"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}})
    return steps


def _input_scaling(spec: ModelSpec) -> str:
    norm = spec.normalization
    if norm.mode == "dataset" and norm.bounds is not None:
        ranges = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in norm.bounds)
        return (
            f"each scaled by fixed values to 0-1 (raw {ranges}: percentiles {norm.low}-"
            f"{norm.high} of the training images)"
        )
    if norm.mode == "percentile":
        return f"each normalised per image (percentiles {norm.low}-{norm.high} to 0-1)"
    return "as float32, not rescaled"


def _readme(spec: ModelSpec) -> str:
    shown = ("accuracy", "macro_f1", "psnr", "ssim", "reconstruction_mse")
    metrics = {
        k: v
        for k, v in spec.validation.items()
        if (k.startswith("ap@") or k in shown) and isinstance(v, int | float)
    }
    lines = [
        f"# {spec.name}",
        "",
        spec.description or f"A deepscope {spec.task} model.",
        "",
        f"Exported from deepscope {spec.deepscope_version} (task `{spec.task}`, "
        f"architecture `{spec.tags.architecture}`, {spec.tags.dimensionality}).",
        "",
        "## Inputs and outputs",
        f"- input: {spec.network.in_channels} channel(s), {_input_scaling(spec)}.",
        f"- output: the raw network output, channels {', '.join(_output_channel_names(spec))}"
        + (f", on a grid of {spec.network.grid} pixels" if spec.network.grid > 1 else "")
        + ".",
        "",
        "## What only deepscope does",
        _deepscope_only(spec)
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


def _crop_order(spec: ModelSpec) -> str:
    size = _crop_size(spec)
    return (
        f"deepscope normalises each crop as a whole, then centre-crops or zero-pads it to "
        f"{size}×{size} pixels; for crops of exactly that size this package gives the same "
        "input, for others the pixels normalised differ slightly"
    )


def _deepscope_only(spec: ModelSpec) -> str:
    """What deepscope does after the network, which the bioimage.io package leaves out."""
    if spec.task == "classify":
        return (
            f"{_crop_order(spec)}; the class is the largest logit (softmax gives "
            "probabilities); classifying every object of a segmentation (deepscope count "
            "--classify) is ours"
        )
    if spec.task == "autoencoder":
        return (
            f"{_crop_order(spec)}; the output is the encoder's features. The decoder, the "
            "features file of every object (deepscope encode) and the explore page are ours"
        )
    if spec.task == "stardist":
        return (
            "Turning the output into objects is not part of bioimage.io: sigmoid of the "
            "probability, star-convex polygons from the ray distances, non-maximum suppression "
            f"with the tuned thresholds {spec.task_params.get('prob_threshold')}/"
            f"{spec.task_params.get('nms_threshold')}"
        )
    if spec.task == "flows":
        p = spec.task_params
        return (
            "Turning the output into objects is not part of bioimage.io: the flows (divided "
            f"by {FLOW_SCALE:g}) are followed from every pixel whose sigmoid probability "
            f"exceeds {p.get('prob_threshold')} for {p.get('n_steps')} steps; the pixels that "
            "end together make one object; objects whose flows differ from the flows of their "
            f"own mask by more than {p.get('flow_threshold')} are dropped, holes filled and "
            f"objects under {p.get('min_size')} pixels removed (the Cellpose reconstruction)"
        )
    from deepscope.tasks import TASKS

    if TASKS[spec.task].target_is_image:
        return (
            "The output is in normalised units (the training targets' "
            f"{spec.task_params.get('target_low')}-{spec.task_params.get('target_high')} "
            "percentiles at 0-1); deepscope maps it back to the intensity units of each input "
            "image (the inverse of the input's percentile normalisation)"
        )
    return (
        "Turning the output into objects is not part of bioimage.io: softmax over the "
        "classes, then labels from the interior class"
    )


def _cover(image: np.ndarray, output: np.ndarray, spec: ModelSpec, path: Path) -> None:
    import imageio.v3 as iio

    from deepscope.render import overlay, to_display
    from deepscope.tasks import get_task

    first = image[0] if image.ndim == 3 else image[0, image.shape[1] // 2]
    result = get_task(spec.task, spec.task_params).postprocess(output[0], image.shape[1:])
    if _is_crop_network(spec):
        picture = np.kron(to_display(first), np.ones((4, 4), np.uint8))  # a crop is small
    elif result.labels is None:
        restored = np.asarray(result.image)
        restored = restored if restored.ndim == first.ndim else restored[0]
        if restored.ndim == 3:
            restored = restored[restored.shape[0] // 2]
        picture = np.concatenate([to_display(first), to_display(restored)], axis=1)
    else:
        labels = result.labels
        if labels.ndim == 3:
            labels = labels[labels.shape[0] // 2]
        picture = np.concatenate([to_display(first), overlay(first, labels)], axis=1)
    iio.imwrite(path, picture, extension=".png")


#: edge of the test volume of a 3D export (in y and x; 16 slices or more in z)
_SIDE_3D = 64


def export_bioimageio(folder: Path, out: Path, side: int = 256) -> Path:
    """Write the package in ``folder`` as a bioimage.io model: a folder, or a zip when
    ``out`` ends in ``.zip``. Returns ``out``."""
    from deepscope.data.normalize import normalize
    from deepscope.nets.onnx import export_onnx

    spec = read_spec(folder)
    if isinstance(spec.network, ExternalNetwork):
        raise ModelError(
            f"'{spec.name}' was imported from bioimage.io; share the original package instead"
        )
    net = _network(folder, spec)
    divisor = spec.network.divisor
    if spec.network.ndim == 3:  # a 16 x 256² test output of 97 ray channels was 407 MB
        side = min(side, _SIDE_3D)
    side = _crop_size(spec) if _is_crop_network(spec) else max(divisor, side // divisor * divisor)
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
        (stage / "README.md").write_text(_readme(spec), encoding="utf-8")
        for name in _own_files(spec):
            shutil.copyfile(folder / name, stage / name)
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


def _own_files(spec: ModelSpec) -> list[str]:
    """The files of our own package, attached to a bioimage.io export so that it imports
    back unchanged."""
    return [SPEC_FILE, WEIGHTS_FILE] + ([spec.int8.file] if spec.int8 else [])


def _file(stage: Path, name: str) -> dict:
    return {"source": name, "sha256": sha256_of(stage / name)}


def _rdf(spec: ModelSpec, stage: Path) -> dict:
    from deepscope import __version__

    divisor, grid = spec.network.divisor, spec.network.grid
    crops = _is_crop_network(spec)

    def input_size(_axis: str) -> dict | int:
        return _crop_size(spec) if crops else {"min": divisor, "step": divisor}

    def output_size(axis: str) -> dict:
        return {"tensor_id": "input", "axis_id": axis}

    return {
        "format_version": FORMAT_VERSION,
        "type": "model",
        # bioimage.io wants names of at least 5 characters
        "name": spec.name if len(spec.name) >= 5 else f"deepscope {spec.name}",
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
            *(t.strip() for t in spec.tags.domain.split(",") if t.strip()),
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
                "axes": _axes(
                    spec, _output_channel_names(spec), output_size, float(grid), not crops
                ),
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
        "attachments": [_file(stage, name) for name in _own_files(spec)],
        "config": {"deepscope": {"version": __version__, "task": spec.task}},
    }


def _inside(folder: Path, source: object) -> Path:
    """The file a description names (``source``), refused when it lies outside ``folder``
    (an absolute path, ``..``, or a link): importing a package reads only the package."""
    path = folder / str(source)
    if path.is_symlink() or not path.resolve().is_relative_to(folder.resolve()):
        raise ModelError(
            f"the model's description names '{source}', which is outside its package; "
            "refusing to import it (a package holds all of its files)"
        )
    return path


def package_from_bioimageio(folder: Path, dest: Path) -> Path:
    """A deepscope package in ``dest`` for the bioimage.io model in ``folder``.

    A deepscope export carries our own package as attachments, which is taken as it is.
    A model from another tool becomes a package of task ``image`` around its ONNX weights
    (preferred) or TorchScript weights, with its pre- and post-processing steps; its test
    input must reproduce its test output before it is accepted.
    """
    try:
        rdf = yaml.safe_load(_rdf_path(folder).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ModelError(f"cannot read the bioimage.io description in {folder}: {err}") from None
    if not isinstance(rdf, dict):
        raise ModelError(
            f"the bioimage.io description in {folder} is not a mapping of fields; give a "
            "model's rdf.yaml"
        )
    attachments = rdf.get("attachments") or []
    attachments = attachments if isinstance(attachments, list) else [attachments]
    attached = {
        Path(str(a.get("source", "") if isinstance(a, dict) else a)).name for a in attachments
    }
    dest.mkdir(parents=True)
    ours = {SPEC_FILE, WEIGHTS_FILE}
    if ours <= attached and all((folder / name).is_file() for name in ours):
        for name in sorted(attached | {"cover.png", "README.md"}):
            if (folder / name).is_file():
                shutil.copyfile(_inside(folder, name), dest / name)
        return dest
    return _convert_foreign(folder, rdf, dest)


def _describe(folder: Path):
    """The bioimage.io description, validated and updated to the latest 0.5 format."""
    try:
        from bioimageio.spec import InvalidDescr, load_description
        from bioimageio.spec.model.v0_5 import ModelDescr
    except ImportError:
        raise ModelError(
            "importing bioimage.io models from other tools needs bioimageio.spec: "
            "pip install 'deepscope[bioimageio]'"
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        descr = load_description(
            _rdf_path(folder), perform_io_checks=False, format_version="latest"
        )
    if isinstance(descr, InvalidDescr) or not isinstance(descr, ModelDescr):
        first = descr.validation_summary.errors[:1] if isinstance(descr, InvalidDescr) else []
        why = f": {first[0].msg} at {first[0].loc}" if first else ""
        raise ModelError(f"{folder} is not a valid bioimage.io model description{why}")
    return descr


def _space_axes(tensor, what: str) -> tuple[list, int]:
    """The space axes of a tensor laid out as batch, channel, (z,) y, x; its channels."""
    kinds = [a.type for a in tensor.axes]
    spatial = [a for a in tensor.axes if a.type == "space"]
    ids = [str(a.id) for a in spatial]
    if kinds[:2] != ["batch", "channel"] or kinds[2:] != ["space"] * len(spatial):
        raise ModelError(
            f"the model's {what} axes are {kinds}; deepscope runs models laid out as "
            "batch, channel, (z,) y, x"
        )
    if ids not in (["y", "x"], ["z", "y", "x"]):
        raise ModelError(f"the model's {what} space axes are {ids}; expected y, x or z, y, x")
    return spatial, len(tensor.axes[1].channel_names)


def _convert_foreign(folder: Path, rdf: dict, dest: Path) -> Path:
    from bioimageio.spec.model.v0_5 import ParameterizedSize, SizeReference

    from deepscope.spec import write_spec

    descr = _describe(folder)
    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise ModelError("deepscope runs bioimage.io models with one input and one output tensor")
    inp, outp = descr.inputs[0], descr.outputs[0]
    in_space, in_channels = _space_axes(inp, "input")
    out_space, out_channels = _space_axes(outp, "output")
    sizes = {a.size.step if isinstance(a.size, ParameterizedSize) else None for a in in_space}
    mins = {a.size.min if isinstance(a.size, ParameterizedSize) else None for a in in_space}
    if None in sizes or len(sizes) != 1 or len(mins) != 1:
        raise ModelError(
            "the model's input sizes are fixed or differ between axes; deepscope runs models "
            "that take any size min + k * step, the same on every axis"
        )
    step, smallest = max(1, sizes.pop()), mins.pop()
    scales = set()
    for a_in, a_out in zip(in_space, out_space, strict=True):
        if not isinstance(a_out.size, SizeReference) or a_out.size.offset:
            raise ModelError("the model's output size does not follow its input size")
        scales.add(a_out.scale / a_in.scale)
    grid = scales.pop() if len(scales) == 1 else 0
    if grid < 1 or grid != int(grid):
        raise ModelError("the model's output is not its input size divided by a whole number")
    pre = [p.model_dump(mode="json", exclude_none=True) for p in inp.preprocessing]
    post = [p.model_dump(mode="json", exclude_none=True) for p in outp.postprocessing]
    bad = unsupported(pre + post)
    if bad:
        raise ModelError(f"the model uses processing steps deepscope cannot apply: {bad}")
    weights = rdf.get("weights") or {}
    fmt = next((f for f in ("onnx", "torchscript") if f in weights), None)
    if fmt is None:
        raise ModelError(
            f"the model has {', '.join(weights) or 'no'} weights; deepscope runs ONNX or "
            "TorchScript weights"
        )
    source = _inside(folder, weights[fmt]["source"])
    if not source.is_file():
        raise ModelError(f"the model's {fmt} weights {source.name} are missing from {folder}")
    target = f"weights.{'onnx' if fmt == 'onnx' else 'torchscript.pt'}"
    shutil.copyfile(source, dest / target)
    if weights[fmt].get("sha256") and sha256_of(dest / target) != weights[fmt]["sha256"]:
        raise ModelError(f"{source} does not match the sha256 in the model's description")
    ndim = len(in_space)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(descr.name)).lower()
    name = name.strip("-._")[:100].rstrip("-._") or "imported"  # a valid model name
    spec = ModelSpec(
        name=name,
        version=str(descr.version or "1.0.0"),
        description=f"Imported from bioimage.io: {descr.description}",
        task="image",
        task_params={"out_channels": out_channels, "postprocessing": post},
        network=ExternalNetwork(
            format=fmt,
            file=target,
            sha256=sha256_of(dest / target),
            ndim=ndim,
            in_channels=in_channels,
            out_channels=out_channels,
            divisor=step,
            min_size=smallest,
            grid=int(grid),
        ),
        normalization={"mode": "bioimageio", "steps": pre},
        input_axes=("C" if in_channels > 1 else "") + ("YX" if ndim == 2 else "ZYX"),
        tags={
            "architecture": "external",
            "domain": ", ".join(descr.tags[:4]) or "unknown",
            "dimensionality": f"{ndim}d",
        },
        training={"source": "bioimage.io", "rdf": str(_rdf_path(folder).name)},
        licence=str(descr.license or "unknown"),
        authors=[a.name for a in descr.authors] or ["unknown"],
        weights_sha256="",
    )
    write_spec(dest, spec)
    for name_ in ("cover.png", "README.md"):
        if (folder / name_).is_file():
            shutil.copyfile(_inside(folder, name_), dest / name_)
    _check_foreign_test_tensors(folder, rdf, dest)
    return dest


def _check_foreign_test_tensors(folder: Path, rdf: dict, package: Path) -> None:
    """Run the converted package on the model's test input; it must give the test output."""
    from deepscope.zoo.model import Model

    try:
        x = np.load(_inside(folder, rdf["inputs"][0]["test_tensor"]["source"]))
        expected = np.load(_inside(folder, rdf["outputs"][0]["test_tensor"]["source"]))
    except (KeyError, TypeError, OSError, ValueError) as err:
        raise ModelError(f"cannot read the model's test tensors: {err}") from None
    model = Model(read_spec(package), package, "path", device="cpu")
    got = model.predict(x[0], axes=("CYX" if x.ndim == 4 else "CZYX"), tile=None).image
    want = expected[0, 0] if expected.shape[1] == 1 else expected[0]
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-4):
        diff = np.abs(got - want).max() if got.shape == want.shape else "shape"
        raise ModelError(
            f"the imported model does not reproduce its own test output (max difference "
            f"{diff}); it may need processing deepscope does not know"
        )


def reproduce_test_tensors(folder: Path, atol: float = 1e-4) -> dict[str, float]:
    """Run the exported TorchScript and ONNX weights of a bioimage.io package on its test
    input, with its pre-processing, and return the largest absolute difference from the
    stored test output for each (``ModelError`` when one exceeds ``atol``)."""
    import onnxruntime as ort

    rdf = yaml.safe_load(_rdf_path(folder).read_text())
    tensor = rdf["inputs"][0]
    x = np.load(folder / tensor["test_tensor"]["source"]).astype(np.float32)
    x = apply_steps(x[0], tensor.get("preprocessing", []))[None]
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
