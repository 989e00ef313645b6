"""The model package: a folder with ``model.json`` and ``weights.safetensors`` (never pickle).

``ModelSpec`` validates ``model.json``; ``save_package`` writes a package atomically and
``read_spec`` / ``read_weights`` read one back, checking the weights' sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from deepscope import __version__
from deepscope.data.normalize import Normalization
from deepscope.errors import ModelError
from deepscope.nets.autoencoder import AutoencoderConfig
from deepscope.nets.classifier import ClassifierConfig
from deepscope.nets.unet import UNetConfig

FORMAT_VERSION = 2
"""The newest package format this deepscope reads. 2 = 1 plus the optional int8 network
(``int8``); packages without one are still written as 1, so older versions read them."""
SPEC_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
INT8_FILE = "network-int8.onnx"


class Tags(BaseModel):
    """What a model is for, used by the model library's filters."""

    model_config = ConfigDict(extra="allow")

    architecture: str = "unet"
    domain: str = "fluorescence nuclei"
    dimensionality: str = "2d"


class Prediction(BaseModel):
    """Default tiling at prediction time (overridable per call)."""

    model_config = ConfigDict(extra="forbid")

    tile: int | None = Field(1024, description="largest tile edge in pixels; None = whole image")
    overlap: int = Field(96, description="overlap of neighbouring tiles in pixels")
    batch_size: int = 1
    tta: bool = Field(False, description="average over flips (4x slower, often more accurate)")
    precision: Literal["float32", "bfloat16", "int8", "auto"] = Field(
        "float32",
        description="network arithmetic; float32 = full float32 (TF32 off on NVIDIA GPUs); "
        "int8 = the package's int8 network in onnxruntime (CPU); auto = the fastest: on the "
        "CPU the fastest of torch (bfloat16 where native), onnxruntime and the int8 network "
        "(CPUs with VNNI), measured once per CPU and network; TF32 on NVIDIA GPUs",
    )
    cpu_backend: Literal["torch", "onnx"] = Field(
        "torch", description="the faster CPU runtime for this network, measured; used by auto"
    )


def default_prediction(ndim: int) -> Prediction:
    """The tiling a newly trained model gets: tiles of 1024² pixels in 2D, of 160³ voxels
    with 48 of overlap in 3D (as ``stardist-nuclei-3d``: a 1024³ block would hold a whole
    volume, and its memory, at once)."""
    return Prediction() if ndim == 2 else Prediction(tile=160, overlap=48)


class ExternalNetwork(BaseModel):
    """A network we did not build, imported with its ONNX or TorchScript weights file.

    Input ``(N, in_channels, *spatial)`` with spatial sizes ``min_size + k * divisor``;
    output ``(N, out_channels, *spatial / grid)``.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["external"] = "external"
    format: Literal["onnx", "torchscript"]
    file: str = Field(
        ..., pattern=r"^\w[\w.-]*$", description="weights file inside the package (a plain name)"
    )
    sha256: str = Field(..., min_length=64, max_length=64)
    ndim: Literal[2, 3] = 2
    in_channels: int = Field(1, ge=1)
    out_channels: int = Field(1, ge=1)
    divisor: int = Field(1, ge=1, description="input sizes must be multiples of this")
    min_size: int = Field(1, ge=1, description="smallest input size per spatial axis")
    grid: int = Field(1, ge=1, description="output subsampling")


class Int8Network(BaseModel):
    """An 8-bit integer copy of the network (ONNX, for onnxruntime on the CPU), made by
    :func:`deepscope.zoo.quantize.quantize_model` from the package's own weights."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(
        INT8_FILE, pattern=r"^[\w.-]+\.onnx$", description="ONNX file inside the package"
    )
    sha256: str = Field(..., min_length=64, max_length=64)
    calibration: dict[str, Any] = Field(
        default_factory=dict, description="the images whose value ranges set the scales"
    )
    validation: dict[str, Any] = Field(
        default_factory=dict, description="metrics of the int8 network, as 'validation'"
    )


def _network_kind(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in ("external", "classifier", "autoencoder") else "unet"


Network = Annotated[
    Annotated[UNetConfig, Tag("unet")]
    | Annotated[ExternalNetwork, Tag("external")]
    | Annotated[ClassifierConfig, Tag("classifier")]
    | Annotated[AutoencoderConfig, Tag("autoencoder")],
    Discriminator(_network_kind),
]
NETWORK_TAGS = ("unet", "external", "classifier", "autoencoder")


#: a model's name is the name of its package folder: letters, digits, ``.``, ``_``, ``-``,
#: starting with a letter or digit (so never a path, never hidden)
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


#: longest model name: folder names stay well inside every file system's limit
MODEL_NAME_MAX = 100


def is_model_name(name: object) -> bool:
    """Whether ``name`` can name a model package folder."""
    return (
        isinstance(name, str)
        and len(name) <= MODEL_NAME_MAX
        and re.fullmatch(MODEL_NAME_PATTERN, name) is not None
    )


def check_model_name(name: str) -> str:
    """``name`` if it can name a model package folder, else a clear error."""
    if not is_model_name(name):
        raise ModelError(
            f"'{str(name)[:60]}' cannot be a model name: use up to {MODEL_NAME_MAX} letters, "
            "digits, '.', '_' and '-', starting with a letter or digit"
        )
    return name


class ModelSpec(BaseModel):
    """Everything needed to rebuild, apply and judge a model; the content of ``model.json``."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = Field(1, strict=True, ge=1)  # "3" must not slip past the check
    name: str = Field(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX)
    version: str = "1.0.0"
    description: str = ""
    task: str
    task_params: dict[str, Any] = Field(default_factory=dict)
    network: Network
    normalization: Normalization = Field(default_factory=Normalization)
    input_axes: str = Field("YX", description="axes of one input image as users give it")
    pixel_size: dict[str, float] | None = Field(None, description="micrometres per pixel")
    object_diameter: float | None = Field(
        None,
        gt=0,
        description="median equivalent diameter (pixels) of the training objects; the size "
        "model rescales images to it (predict --diameter)",
    )
    prediction: Prediction = Field(default_factory=Prediction)
    int8: Int8Network | None = Field(
        None, description="an int8 copy of the network for fast CPU prediction, if made"
    )
    tags: Tags = Field(default_factory=Tags)
    training: dict[str, Any] = Field(default_factory=dict)
    validation: dict[str, Any] = Field(default_factory=dict)
    licence: str = "CC-BY-4.0"
    authors: list[str] = Field(default_factory=lambda: ["deepscope developers"])
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    deepscope_version: str = __version__
    weights_sha256: str = ""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_package(
    folder: str | Path,
    spec: ModelSpec,
    state_dict: dict[str, torch.Tensor],
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write a model package to ``folder`` atomically (a temporary folder, then a rename).

    ``extra_files`` maps names inside the package to files to copy in (history, plots).
    An existing package at ``folder`` is replaced; other files in it are kept.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        spec = spec.model_copy(update={"weights_sha256": sha256_of(tmp / WEIGHTS_FILE)})
        (tmp / SPEC_FILE).write_text(spec.model_dump_json(indent=2) + "\n")
        for name, src in (extra_files or {}).items():
            shutil.copyfile(src, tmp / name)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a package is not secret
        for item in tmp.iterdir():
            os.chmod(item, 0o666 & ~umask)
        if folder.exists():
            for item in folder.iterdir():
                if not (tmp / item.name).exists():
                    os.replace(item, tmp / item.name)
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def write_spec(folder: str | Path, spec: ModelSpec) -> Path:
    """Rewrite ``model.json`` of an existing package atomically (weights unchanged)."""
    path = Path(folder) / SPEC_FILE
    tmp = path.with_name(f".{SPEC_FILE}.tmp")
    tmp.write_text(spec.model_dump_json(indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_spec(folder: str | Path) -> ModelSpec:
    """Read and validate ``model.json`` of a package; errors say what is wrong."""
    path = Path(folder) / SPEC_FILE
    if not path.is_file():
        raise ModelError(f"'{folder}' is not a model package: it has no {SPEC_FILE}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read {path}: {err}; the package is damaged") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ModelError(
            f"{path} has format version {version} but this deepscope reads up to "
            f"{FORMAT_VERSION}; upgrade deepscope (pip install -U deepscope)"
        )
    try:
        return ModelSpec.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        loc = list(first["loc"])
        if loc[:1] == ["network"] and len(loc) > 1 and loc[1] in NETWORK_TAGS:
            del loc[1]
        where = ".".join(str(p) for p in loc)
        raise ModelError(f"{path} is invalid at '{where}': {first['msg']}") from None


PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def read_weights(folder: str | Path, spec: ModelSpec) -> dict[str, torch.Tensor]:
    """Load the weights of a package after checking their sha256 against ``model.json``.

    Only safetensors are read: pickle files (``.pt``, ``.pth``, ...) can run code when
    loaded and are refused.
    """
    folder = Path(folder)
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        pickles = sorted(p.name for p in folder.glob("*") if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise ModelError(
                f"model package '{folder}' has pickle weights ({pickles[0]}), which can run "
                f"code when loaded; deepscope only reads {WEIGHTS_FILE}"
            )
        raise ModelError(f"model package '{folder}' has no {WEIGHTS_FILE}")
    if not spec.weights_sha256:
        raise ModelError(
            f"{folder / SPEC_FILE} gives no weights_sha256, so {WEIGHTS_FILE} cannot be "
            "checked; ask for the package again, or re-save it with deepscope.spec.save_package"
        )
    if sha256_of(path) != spec.weights_sha256:
        raise ModelError(
            f"{path} does not match the sha256 in {SPEC_FILE}; the file was changed or damaged"
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ModelError(f"cannot read {path}: {err}") from None


def checked_file(folder: str | Path, name: str, sha256: str) -> Path:
    """A file of a package (an imported network's weights, the int8 network) after checking
    it exists and matches the ``sha256`` that ``model.json`` gives for it."""
    path = Path(folder) / name
    if not path.is_file():
        raise ModelError(f"model package '{folder}' has no {name}")
    if sha256_of(path) != sha256:
        raise ModelError(
            f"{path} does not match the sha256 in {SPEC_FILE}; the file was changed or damaged"
        )
    return path


def check_external_weights(folder: str | Path, network: ExternalNetwork) -> Path:
    """The weights file of an imported network, after checking its sha256."""
    return checked_file(folder, network.file, network.sha256)


def read_int8_network(folder: str | Path, spec: ModelSpec) -> bytes | None:
    """The package's int8 ONNX network after checking its sha256; ``None`` if it has none."""
    if spec.int8 is None:
        return None
    return checked_file(folder, spec.int8.file, spec.int8.sha256).read_bytes()


#: files a package may carry besides model.json and its networks: training reports, docs
PACKAGE_EXTRAS = (
    "history.csv",
    "loss.png",
    "confusion.png",
    "per_class.csv",
    "README.md",
    "cover.png",
)


def package_files(folder: str | Path, spec: ModelSpec) -> list[str]:
    """The names of the package's own files: ``model.json``, its network(s) and those of
    :data:`PACKAGE_EXTRAS` that ``folder`` holds. Importing and exporting copy these and
    nothing else (not training checkpoints, nor whatever else shares the folder)."""
    network = spec.network.file if isinstance(spec.network, ExternalNetwork) else WEIGHTS_FILE
    names = [SPEC_FILE, network] + ([spec.int8.file] if spec.int8 is not None else [])
    return names + [n for n in PACKAGE_EXTRAS if (Path(folder) / n).is_file()]


def check_weights(folder: str | Path, spec: ModelSpec) -> None:
    """Verify a package's weights (sha256, format) without building its network."""
    if isinstance(spec.network, ExternalNetwork):
        check_external_weights(folder, spec.network)
    else:
        read_weights(folder, spec)
    read_int8_network(folder, spec)
