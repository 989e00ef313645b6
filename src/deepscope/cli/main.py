"""``deepscope`` commands. Each one parses its options, calls the API and shows the result.

Errors a user can cause print one line (``error: ...``) and exit with status 1.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from deepscope.errors import DeepscopeError, TrainingInterrupted

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Deep learning for microscopy: train, predict, evaluate, count.",
)
models_app = typer.Typer(
    no_args_is_help=True, help="The model library: list, show, favourites, import, export."
)
app.add_typer(models_app, name="models")
cellh5_app = typer.Typer(
    no_args_is_help=True, help="CellH5 files (CellCognition's HDF5 layout): build from images."
)
app.add_typer(cellh5_app, name="cellh5")
# markup off: model names, descriptions and file names are printed as they are written
# (a '[' in one would otherwise be read as a style, or break the line)
out_console = Console(markup=False)
err_console = Console(stderr=True, markup=False)


def _tell(label: str, style: str, message: object) -> None:
    """One line on stderr: a coloured ``label`` and the message as it is."""
    err_console.print(Text.assemble((label, style), " ", str(message)), soft_wrap=True)


KeepGoingOption = Annotated[
    bool,
    typer.Option(
        help="skip images that cannot be read or processed (one line each) and go on; "
        "exit status 1 at the end if any was skipped"
    ),
]
PrecisionOption = Annotated[
    str | None,
    typer.Option(
        help="float32|bfloat16|int8|auto (auto: the model's int8 network where it has one "
        "and the CPU has 8-bit dot products (VNNI), else bfloat16 where the CPU has it "
        "natively, TF32 on NVIDIA GPUs; float32: full float32 everywhere)"
    ),
]
BackendOption = Annotated[
    str,
    typer.Option(help="auto|torch|onnx (auto: onnxruntime on the CPU where it is faster)"),
]
TileOption = Annotated[
    int | None,
    typer.Option(help="tile edge in pixels (0 = whole image; default: the model's)"),
]
OverlapOption = Annotated[
    int | None,
    typer.Option(
        help="context read around each tile, in pixels (default: the model's); objects "
        "larger than it are dropped at tile borders"
    ),
]
ChannelOption = Annotated[
    int | None,
    typer.Option(
        help="predict from this channel of multichannel images alone (0 = the first), e.g. "
        "the nuclear stain for a one-channel nuclei model"
    ),
]
DiameterOption = Annotated[
    str | None,
    typer.Option(
        help="typical object diameter in pixels, or auto (estimated): rescales each image "
        "so its objects have the model's training size"
    ),
]

Slices3dOption = Annotated[
    bool,
    typer.Option(
        "--slices3d",
        help="segment 3D volumes with a 2D flows model run on their XY, XZ and YZ slices",
    ),
]
AnisotropyOption = Annotated[
    float | None,
    typer.Option(help="with --slices3d: z step / xy pixel size of the volumes, e.g. 2.2"),
]


def _diameter(value: str | None) -> float | str | None:
    """A --diameter checked before any model is loaded: auto or a positive number."""
    from deepscope.predict.rescale import parse_diameter

    return parse_diameter(value)


def _parse_sets(values: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs (values parsed as YAML; dotted keys nest) into a dict."""
    import yaml

    result: dict[str, Any] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DeepscopeError(f"--set takes key=value, got '{item}'")
        node = result
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise DeepscopeError(
                    f"--set {item}: '{'.'.join(parts[: i + 1])}' is given a value of its own "
                    "too; set either it or the settings inside it"
                )
        node[parts[-1]] = yaml.safe_load(value)
    if not isinstance(result.get("task_params", {}), dict):
        raise DeepscopeError("--set task_params takes settings inside it: task_params.NAME=VALUE")
    return result


@app.command()
def train(
    task_or_config: Annotated[
        str, typer.Argument(help="a task name (semantic) or a YAML file with the settings")
    ],
    images: Annotated[
        Path | None, typer.Option("--images", "--inputs", help="folder of training images")
    ] = None,
    masks: Annotated[
        Path | None,
        typer.Option(
            "--masks", "--targets", help="folder of masks or target images (same file stems)"
        ),
    ] = None,
    val_images: Annotated[Path | None, typer.Option(help="folder of validation images")] = None,
    val_masks: Annotated[
        Path | None,
        typer.Option(
            "--val-masks", "--val-targets", help="folder of validation masks or target images"
        ),
    ] = None,
    cellh5: Annotated[
        Path | None,
        typer.Option(help="autoencoder: a CellH5 file whose objects are the training crops"),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="autoencoder with --cellh5: position mapping (Plate, Well, Site, Gene Symbol, "
            "Group); trains on the negative controls (Group 'neg')"
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="model name")] = None,
    out: Annotated[Path | None, typer.Option(help="folder that receives the model")] = None,
    epochs: Annotated[int | None, typer.Option(help="number of epochs")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="steps per epoch")] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option(
            help="time budget: as many epochs (up to --epochs) as fit these minutes, the "
            "learning-rate schedule fitted to them"
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="patches per step")] = None,
    patch_size: Annotated[int | None, typer.Option(help="patch edge in pixels")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="initial learning rate")] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="adam|adamw|sgd (Nesterov momentum)|adagrad")
    ] = None,
    momentum: Annotated[
        float | None, typer.Option(help="SGD momentum (autoencoder advice: 0.5-0.9)")
    ] = None,
    crop_size: Annotated[
        int | None,
        typer.Option(help="classify/autoencoder: crop edge in pixels (about the object size)"),
    ] = None,
    corruption: Annotated[
        float | None,
        typer.Option(help="autoencoder: fraction of input pixels zeroed (advice: 0-0.3)"),
    ] = None,
    architecture: Annotated[
        str | None,
        typer.Option(
            help="autoencoder encoder layers, e.g. c16.5r_p2_c32.3r_p2_d256.1r (cF.Sa conv, "
            "pK pool, dN.Da dense with dropout 0.D)"
        ),
    ] = None,
    latent: Annotated[
        int | None, typer.Option(help="autoencoder: number of learned features")
    ] = None,
    axes: Annotated[str | None, typer.Option(help="axes of the images, e.g. YX or YXC")] = None,
    device: Annotated[str | None, typer.Option(help="auto|cpu|cuda|mps")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    resume: Annotated[bool, typer.Option(help="go on from the last checkpoint")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="any other setting as key=value, e.g. --set network.depth=3"),
    ] = None,
) -> None:
    """Train a model and write its package to OUT/NAME.

    Autoencoder (CellCognition's Deep Learning Module), its advice as defaults: AdaGrad or
    SGD with Nesterov momentum; learning rate 0.01-0.1 (default 0.05); momentum 0.5-0.9;
    mini-batch 32-256 (default 128); corruption 0-0.3 (default 0.1); epochs 64-1000
    (default 64).
    """
    from deepscope.api import train as api_train
    from deepscope.cli.progress_bar import progress_bar
    from deepscope.tasks import TASKS

    given = {
        "images": images,
        "masks": masks,
        "val_images": val_images,
        "val_masks": val_masks,
        "name": name,
        "out": out,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "max_minutes": max_minutes,
        "batch_size": batch_size,
        "patch_size": patch_size,
        "learning_rate": learning_rate,
        "optimizer": optimizer,
        "axes": axes,
        "device": device,
        "threads": threads,
        "seed": seed,
    }
    if cellh5 is not None:
        if images is not None:
            raise DeepscopeError("give --images or --cellh5, not both")
        given["images"] = cellh5
    given.update(mapping=mapping, momentum=momentum)
    settings = {k: v for k, v in given.items() if v is not None}
    task_params = {
        "crop_size": crop_size,
        "corruption": corruption,
        "architecture": architecture,
        "latent": latent,
    }
    if any(v is not None for v in task_params.values()):
        settings["task_params"] = {k: v for k, v in task_params.items() if v is not None}
    sets = _parse_sets(set_)
    settings["task_params"] = {**settings.get("task_params", {}), **sets.pop("task_params", {})}
    if not settings["task_params"]:
        del settings["task_params"]
    both = sorted(k for k in sets if k in settings and k != "task_params")
    if both:
        flag = both[0].replace("steps_per_epoch", "steps").replace("_", "-")
        raise DeepscopeError(
            f"'{both[0]}' is given twice, by --{flag} and by --set {both[0]}=...; give it once"
        )
    settings.update(sets)
    command = "deepscope " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if task_or_config.endswith((".yaml", ".yml")):
        config_path: str | None = task_or_config
    elif task_or_config in TASKS and task_or_config != "image":  # 'image': imported models
        config_path = None
        settings["task"] = task_or_config
        cls = TASKS[task_or_config]
        # self-supervised tasks learn from the images alone; classifiers from class folders
        needed = (
            ("images", "name")
            if cls.self_supervised or cls.output_kind == "class"
            else ("images", "masks", "name")
        )
        truth = "targets" if cls.output_kind == "image" else "masks"
        for required in needed:
            if required not in settings:
                option = truth if required == "masks" else required
                if task_or_config == "autoencoder" and required == "images":
                    option = "images (a folder of crops) or --cellh5 (a CellH5 file)"
                raise DeepscopeError(f"train {task_or_config} needs --{option}")
    else:
        raise DeepscopeError(
            f"'{task_or_config}' is neither a task you can train "
            f"({', '.join(t for t in TASKS if t != 'image')}) nor a .yaml file"
        )
    with progress_bar(err_console) as callback:
        folder = api_train(
            config_path, resume=resume, progress=callback, command=command, **settings
        )
    spec = json.loads((folder / "model.json").read_text())
    _print_metrics(spec.get("validation", {}), title=f"validation of {spec['name']}")


def _skipping(skipped: list[Path]):
    """The ``on_error`` of ``--keep-going``: say which image was skipped and why, on one
    line, and note it in ``skipped``."""

    def skip(path: Path, error: Exception) -> None:
        _tell("skipped:", "yellow", error)
        skipped.append(path)

    return skip


def _report_skipped(skipped: list[Path], out: Path) -> None:
    """Exit status 1 after a ``--keep-going`` run that skipped images, saying so."""
    if skipped:
        raise DeepscopeError(
            f"{len(skipped)} image(s) could not be processed (see 'skipped:' above); the "
            f"others are in {out}"
        )


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="a built-in model name or a model folder")],
    inputs: Annotated[list[str], typer.Argument(help="image files, folders or glob patterns")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("predictions"),
    axes: Annotated[str | None, typer.Option(help="axes of the inputs, e.g. YX, YXC, ZYX")] = None,
    tile: TileOption = None,
    overlap: OverlapOption = None,
    probabilities: Annotated[bool, typer.Option(help="also write probabilities")] = False,
    overlay: Annotated[bool, typer.Option(help="also write an outline overlay PNG")] = False,
    tta: Annotated[
        bool | None, typer.Option("--tta/--no-tta", help="average over flips (4x slower)")
    ] = None,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps")] = "auto",
    precision: PrecisionOption = None,
    backend: BackendOption = "auto",
    diameter: DiameterOption = None,
    slices3d: Slices3dOption = False,
    anisotropy: AnisotropyOption = None,
    keep_going: KeepGoingOption = False,
    output_format: Annotated[
        str,
        typer.Option(
            "--format", help="tif|ome.zarr: file type of the images written (OME-Zarr: NGFF 0.4)"
        ),
    ] = "tif",
    stream: Annotated[
        bool,
        typer.Option(
            help="read, predict and write block by block, for images larger than memory "
            "(TIFF/Zarr/HDF5 in, --format ome.zarr out; every model but crop classifiers)"
        ),
    ] = False,
    channel: ChannelOption = None,
) -> None:
    """Apply a model to images; writes <stem>_labels.tif per image to OUT (restoration:
    <stem>_pred.tif; classifiers: one predictions.csv with the class of each crop)."""
    from deepscope.api import predict_files
    from deepscope.cli.progress_bar import progress_bar
    from deepscope.zoo import load_model

    size = _diameter(diameter)
    m = load_model(model, device=device, precision=precision, backend=backend)
    tile_arg = -1 if tile is None else (None if tile == 0 else tile)
    skipped: list[Path] = []
    with progress_bar(err_console) as callback:
        written = predict_files(
            m,
            inputs,
            out,
            axes=axes,
            tile=tile_arg,
            overlap=overlap,
            save_probabilities=probabilities,
            overlay=overlay,
            progress=callback,
            tta=tta,
            diameter=size,
            slices3d=slices3d,
            anisotropy=anisotropy,
            on_error=_skipping(skipped) if keep_going else None,
            output_format=output_format,
            stream=stream,
            channel=channel,
        )
    out_console.print(f"wrote {len(written)} file(s) to {out}")
    _report_skipped(skipped, out)


@app.command()
def count(
    model: Annotated[
        str,
        typer.Argument(help="a segmentation model (name or folder); with --labels, an input"),
    ],
    inputs: Annotated[
        list[str] | None, typer.Argument(help="image files, folders or glob patterns")
    ] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("counts"),
    range_: Annotated[
        list[str] | None,
        typer.Option(
            "--range", help="keep objects with COLUMN in LOW:HIGH, e.g. area=30:2000 (repeatable)"
        ),
    ] = None,
    exclude_border: Annotated[
        bool, typer.Option(help="drop objects that touch the image edge")
    ] = False,
    split: Annotated[bool, typer.Option(help="divide merged / touching objects")] = False,
    min_split_size: Annotated[
        int, typer.Option(help="smallest piece a split may leave (pixels)")
    ] = 30,
    axes: Annotated[str | None, typer.Option(help="axes of the inputs, e.g. YX, YXC, ZYX")] = None,
    tile: TileOption = None,
    overlap: OverlapOption = None,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps")] = "auto",
    precision: PrecisionOption = None,
    backend: BackendOption = "auto",
    classify: Annotated[
        str | None,
        typer.Option(
            "--classify",
            help="a classifier model: adds class and prob_<class> columns per object "
            "(trained at the same magnification)",
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="a folder of label images (<stem>.tif or <stem>_labels.tif) to count instead "
            "of segmenting; then every positional argument is an input"
        ),
    ] = None,
    diameter: DiameterOption = None,
    keep_going: KeepGoingOption = False,
    stream: Annotated[
        bool,
        typer.Option(
            help="segment, measure and write block by block, for images larger than memory "
            "(TIFF/Zarr/HDF5 in; labels written as <stem>_labels.ome.zarr)"
        ),
    ] = False,
    channel: Annotated[
        int | None,
        typer.Option(
            help="segment this channel of multichannel images alone (0 = the first); every "
            "channel is still measured, and seen by --classify"
        ),
    ] = None,
) -> None:
    """Segment, split, filter by measurement ranges and measure objects; writes
    <stem>_labels.tif, <stem>_objects.csv per image and summary.csv to OUT."""
    from deepscope.api import count_files
    from deepscope.cli.progress_bar import progress_bar
    from deepscope.zoo import load_model

    size = _diameter(diameter)
    if labels is not None:
        inputs, m = [model, *(inputs or [])], None
    elif not inputs:
        raise DeepscopeError("give a segmentation model and the images: count MODEL INPUT...")
    else:
        m = load_model(model, device=device, precision=precision, backend=backend)
    tile_arg = -1 if tile is None else (None if tile == 0 else tile)
    skipped: list[Path] = []
    with progress_bar(err_console) as callback:
        summaries = count_files(
            m,
            inputs,
            out,
            ranges=range_ or [],
            exclude_border=exclude_border,
            split=split,
            min_split_size=min_split_size,
            axes=axes,
            tile=tile_arg,
            overlap=overlap,
            progress=callback,
            classifier=load_model(classify, device=device) if classify else None,
            labels=labels,
            diameter=size,
            on_error=_skipping(skipped) if keep_going else None,
            stream=stream,
            channel=channel,
        )
    source = m.name if m is not None else f"labels in {labels}"
    table = Table("image", "count", "mean area", "median area", title=f"counted with {source}")
    for s in summaries:
        table.add_row(
            s["image"], str(s["count"]), f"{s['mean_area']:.1f}", f"{s['median_area']:.1f}"
        )
    out_console.print(table)
    images = len({s["image"] for s in summaries})
    rows = f" ({len(summaries)} time points)" if len(summaries) != images else ""
    out_console.print(
        f"counted {images} image(s){rows}; wrote their tables and summary.csv to {out}"
    )
    _report_skipped(skipped, out)


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="a built-in model name or a model folder")],
    images: Annotated[Path, typer.Option("--images", "--inputs", help="folder of images")],
    masks: Annotated[
        Path | None,
        typer.Option(
            "--masks",
            "--targets",
            help="folder of ground-truth masks or target images (classifiers: none, the "
            "images folder has one sub-folder per class)",
        ),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="write metrics here")] = None,
    per_image: Annotated[Path | None, typer.Option(help="write per-image CSV here")] = None,
    axes: Annotated[str | None, typer.Option(help="axes of the images")] = None,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps")] = "auto",
    tta: Annotated[
        bool | None, typer.Option("--tta/--no-tta", help="average over flips (4x slower)")
    ] = None,
    precision: PrecisionOption = None,
    backend: BackendOption = "auto",
    diameter: DiameterOption = None,
    slices3d: Slices3dOption = False,
    anisotropy: AnisotropyOption = None,
    channel: ChannelOption = None,
) -> None:
    """Score a model against ground truth: AP, F1, precision, recall for segmentation;
    PSNR, SSIM, NRMSE, MAE for restoration; accuracy, macro F1 for classifiers."""
    from deepscope.api import check_table_output
    from deepscope.api import evaluate as api_evaluate
    from deepscope.cli.progress_bar import progress_bar
    from deepscope.errors import InputError
    from deepscope.io.atomic import atomic_output
    from deepscope.zoo import load_model

    size = _diameter(diameter)
    if json_path is not None:
        check_table_output(json_path, "--json", [images, masks])
        if per_image is not None and json_path.resolve() == per_image.resolve():
            raise InputError("--json and --per-image name the same file; give each its own")
    m = load_model(model, device=device, precision=precision, backend=backend)
    with progress_bar(err_console) as callback:
        metrics = api_evaluate(
            m,
            images,
            masks,
            axes=axes,
            per_image_csv=per_image,
            progress=callback,
            tta=tta,
            diameter=size,
            slices3d=slices3d,
            anisotropy=anisotropy,
            channel=channel,
        )
    _print_metrics(metrics, title=f"{m.name} on {images}")
    if json_path is not None:
        with atomic_output(json_path) as temporary:
            temporary.write_text(json.dumps(metrics, indent=2) + "\n")


@app.command()
def tune(
    model: Annotated[str, typer.Argument(help="a model folder (or name in your library)")],
    images: Annotated[Path, typer.Option(help="folder of validation images")],
    masks: Annotated[Path, typer.Option(help="folder of validation masks (same stems)")],
    axes: Annotated[str | None, typer.Option(help="axes of the images")] = None,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps")] = "auto",
    precision: PrecisionOption = None,
    backend: BackendOption = "auto",
) -> None:
    """Choose post-processing thresholds on validation data and store them in model.json."""
    from deepscope.api import tune as api_tune
    from deepscope.cli.progress_bar import progress_bar
    from deepscope.zoo import load_model

    m = load_model(model, device=device, precision=precision, backend=backend)
    with progress_bar(err_console) as callback:
        outcome = api_tune(m, images, masks, axes=axes, progress=callback)
    out_console.print(f"stored in {m.folder / 'model.json'}: {outcome['tuned']}")
    _print_metrics(outcome["validation"], title=f"{m.name} on {images} after tuning")


def _print_class_metrics(metrics: dict, title: str) -> None:
    classes = [k.split("/", 1)[1] for k in metrics if k.startswith("f1/")]
    table = Table("class", "precision", "recall", "F1", "support", title=title)
    for c in classes:
        table.add_row(
            c,
            *(f"{metrics[f'{k}/{c}']:.3f}" for k in ("precision", "recall", "f1")),
            str(metrics[f"support/{c}"]),
        )
    out_console.print(table)
    out_console.print(
        f"accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f}, "
        f"balanced accuracy {metrics['balanced_accuracy']:.3f}, {metrics['n_images']} crops"
    )


def _print_metrics(metrics: dict, title: str) -> None:
    if "macro_f1" in metrics:
        _print_class_metrics(metrics, title)
        return
    thresholds = sorted({k.split("@")[1] for k in metrics if k.startswith("ap@")}, key=float)
    if not thresholds:
        for k, v in metrics.items():
            out_console.print(f"{k}: {v}")
        return
    table = Table(title=title)
    for col in ("IoU", "AP", "F1", "precision", "recall", "TP", "FP", "FN", "matched IoU"):
        table.add_column(col, justify="right")
    for t in thresholds:
        table.add_row(
            t,
            *(f"{metrics[f'{k}@{t}']:.3f}" for k in ("ap", "f1", "precision", "recall")),
            *(str(metrics.get(f"{k}@{t}", "")) for k in ("tp", "fp", "fn")),
            f"{metrics[f'mean_matched_iou@{t}']:.3f}",
        )
    out_console.print(table)
    if "n_images" in metrics:
        out_console.print(f"{metrics['n_images']} images")


@app.command()
def deconvolve(
    inputs: Annotated[list[str], typer.Argument(help="YX or ZYX images: files, folders, globs")],
    out: Annotated[Path, typer.Option(help="output folder")],
    psf: Annotated[Path | None, typer.Option(help="measured PSF image (centred)")] = None,
    psf_sigma: Annotated[
        str | None, typer.Option(help="Gaussian PSF sigma in pixels: S or SZ,SY,SX")
    ] = None,
    wavelength: Annotated[float | None, typer.Option(help="emission wavelength (nm)")] = None,
    na: Annotated[float | None, typer.Option(help="numerical aperture")] = None,
    pixel_size: Annotated[
        float | None, typer.Option(help="pixel size (um); default: from the file")
    ] = None,
    z_step: Annotated[
        float | None, typer.Option(help="z step (um); default: from the file")
    ] = None,
    refractive_index: Annotated[float, typer.Option(help="immersion medium")] = 1.33,
    confocal: Annotated[bool, typer.Option(help="confocal instead of widefield PSF")] = False,
    method: Annotated[str, typer.Option(help="rl (Richardson-Lucy) | wiener")] = "rl",
    iterations: Annotated[
        int | None, typer.Option(help="Richardson-Lucy iterations (default 30)")
    ] = None,
    balance: Annotated[
        float | None, typer.Option(help="Wiener regularisation (default 0.01)")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu|cuda")] = "cpu",
    axes: Annotated[
        str | None, typer.Option(help="axes of the inputs, e.g. ZYX, or TYX to refuse a series")
    ] = None,
    keep_going: KeepGoingOption = False,
) -> None:
    """Deconvolve images with a known or modelled PSF; writes <stem>_deconv.tif to OUT."""
    from deepscope.api import deconvolve_files
    from deepscope.cli.progress_bar import progress_bar
    from deepscope.errors import ConfigError

    ignored = {"rl": ("--balance", balance), "wiener": ("--iterations", iterations)}.get(method)
    if ignored is not None and ignored[1] is not None:
        raise ConfigError(
            f"{ignored[0]} does not apply to --method {method}; "
            + ("Richardson-Lucy takes --iterations" if method == "rl" else "Wiener takes --balance")
        )
    skipped: list[Path] = []
    with progress_bar(err_console) as callback:
        files = deconvolve_files(
            inputs,
            out,
            psf=psf,
            psf_sigma=psf_sigma,
            wavelength_nm=wavelength,
            na=na,
            pixel_size_um=pixel_size,
            z_step_um=z_step,
            refractive_index=refractive_index,
            confocal=confocal,
            method=method,
            iterations=30 if iterations is None else iterations,
            balance=0.01 if balance is None else balance,
            device=device,
            axes=axes,
            progress=callback,
            on_error=_skipping(skipped) if keep_going else None,
        )
    out_console.print(f"wrote {len(files)} file(s) to {out}")
    _report_skipped(skipped, out)


@app.command()
def qc(
    pred: Annotated[
        Path, typer.Option(help="folder of predictions (<name>_pred.tif from deepscope predict)")
    ],
    gt: Annotated[Path, typer.Option(help="folder of ground-truth images (<name>.tif)")],
    out: Annotated[Path, typer.Option(help="the report to write (.html)")],
    input_dir: Annotated[
        Path | None,
        typer.Option("--input", help="folder of the raw images: adds the Gaussian baseline"),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="the model that made the predictions (name or folder)")
    ] = None,
) -> None:
    """Quality-control report of restored images against ground truth: one HTML file."""
    from deepscope.cli.progress_bar import progress_bar
    from deepscope.report import qc_report

    with progress_bar(err_console) as callback:
        result = qc_report(pred, gt, out, input_dir=input_dir, model=model, progress=callback)
    sigma = result["gaussian_sigma"]
    titles = {
        "prediction": "prediction",
        "gaussian": f"Gaussian filter (sigma {sigma:g} px)" if sigma is not None else "",
        "input": "raw input",
    }
    for source, title in titles.items():
        if result[source] is not None:
            out_console.print(f"{title}, mean of {result['n_images']} image(s):")
            _print_metrics({k: round(v, 4) for k, v in result[source].items()}, title=title)
    out_console.print(f"wrote {out}")


@app.command()
def encode(
    model: Annotated[str, typer.Argument(help="an autoencoder (name or model folder)")],
    out: Annotated[Path, typer.Option(help="features file to write, e.g. features.hdf")],
    cellh5: Annotated[Path | None, typer.Option(help="CellH5 file whose objects to encode")] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(help="position mapping (Plate, Well, Site, Gene Symbol, Group)"),
    ] = None,
    images: Annotated[
        Path | None, typer.Option(help="a folder of crops instead (sub-folders become groups)")
    ] = None,
    axes: Annotated[str | None, typer.Option(help="axes of the crops, e.g. YXC")] = None,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps")] = "auto",
) -> None:
    """Learned features of every cell object: writes OUT (data/bbox, data/features,
    data/gallery, data/contours, data/objects) and the same table as CSV beside it."""
    from deepscope.cli.progress_bar import progress_bar
    from deepscope.encode import encode as api_encode
    from deepscope.zoo import load_model

    with progress_bar(err_console) as callback:
        paths = api_encode(
            load_model(model, device=device),
            out,
            cellh5=cellh5,
            mapping=mapping,
            images=images,
            axes=axes,
            progress=callback,
        )
    out_console.print(f"wrote {paths['hdf']} and {paths['csv']}")


@app.command()
def explore(
    features: Annotated[Path, typer.Argument(help="a features file from 'deepscope encode'")],
    out: Annotated[Path, typer.Option(help="the HTML page to write")] = Path("explore.html"),
    clusters: Annotated[int, typer.Option(help="number of clusters (k-means)")] = 8,
    embedding: Annotated[str, typer.Option(help="tsne|none (PCA is always shown)")] = "tsne",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """One page to explore learned features: PCA / t-SNE maps coloured by group, cluster and
    novelty, galleries per cluster, and positions ranked by how unlike the negative
    controls their cells are."""
    from deepscope.cli.progress_bar import progress_bar
    from deepscope.explore import explore as api_explore

    if embedding not in ("tsne", "none"):
        raise DeepscopeError(f"--embedding must be tsne or none, got '{embedding}'")
    with progress_bar(err_console) as callback:
        api_explore(
            features, out, n_clusters=clusters, method=embedding, seed=seed, progress=callback
        )
    out_console.print(f"wrote {out}")


@cellh5_app.command("build")
def cellh5_build(
    images: Annotated[list[str], typer.Argument(help="image files, folders or glob patterns")],
    out: Annotated[Path, typer.Option(help="the CellH5 file to write, e.g. plate.ch5")],
    model: Annotated[
        str | None, typer.Option(help="segmentation model that finds the objects")
    ] = None,
    labels: Annotated[
        list[str] | None,
        typer.Option(help="label images instead of a model, one per image in the same order"),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(help="tab-separated Plate, Well, Site, Gene Symbol, Group; one row per image"),
    ] = None,
    plate: Annotated[str, typer.Option(help="plate name when there is no mapping")] = "plate0",
    axes: Annotated[str | None, typer.Option(help="axes of the images, e.g. YX or YXC")] = None,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps")] = "auto",
) -> None:
    """Segment (or take labels), measure and write images as one CellH5 file: image, label
    region, object centres, bounding boxes and the measurement table as features."""
    from deepscope.cellh5_build import build_cellh5
    from deepscope.cli.progress_bar import progress_bar
    from deepscope.zoo import load_model

    with progress_bar(err_console) as callback:
        path = build_cellh5(
            images,
            out,
            model=load_model(model, device=device) if model else None,
            labels=labels,
            mapping=mapping,
            plate=plate,
            axes=axes,
            progress=callback,
        )
    out_console.print(f"wrote {path}")


@models_app.command("list")
def models_list(
    task: Annotated[str | None, typer.Option(help="only this task, e.g. stardist")] = None,
    arch: Annotated[str | None, typer.Option(help="only this architecture, e.g. unet")] = None,
    domain: Annotated[str | None, typer.Option(help="domain contains this, e.g. nuclei")] = None,
    favourites: Annotated[bool, typer.Option("--favourites", help="only favourites")] = False,
    mine: Annotated[bool, typer.Option("--mine", help="only your library")] = False,
    builtin: Annotated[bool, typer.Option("--builtin", help="only built-in models")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List built-in models and the models in your library."""
    from deepscope.zoo import list_models

    if mine and builtin:
        raise DeepscopeError("give --mine or --builtin, not both")
    source = "user" if mine else "builtin" if builtin else None
    rows = list_models(task, arch, domain, source, favourites)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        everything = list_models()
        tasks = ", ".join(sorted({r["task"] for r in everything}))
        archs = ", ".join(sorted({r["architecture"] for r in everything}))
        err_console.print(
            f"no model matches these filters; the tasks here are {tasks} and the "
            f"architectures {archs} (deepscope models list shows them all)",
            highlight=False,
            soft_wrap=True,
        )
        return
    table = Table(title="models (* favourite)", box=None, pad_edge=False)
    for col in ("name", "task", "arch", "dim", "source", "AP@0.5", "domain"):
        # the name is what users copy: never cut; the domain, last, wraps into what is left
        table.add_column(
            col,
            no_wrap=col not in ("arch", "domain"),
            overflow="fold",
            min_width=10 if col == "domain" else None,
        )
    for r in rows:
        ap = r["validation"].get("ap@0.5")
        table.add_row(
            r["name"] + (" *" if r["favourite"] else ""),
            r["task"],
            r["architecture"],
            r["dimensionality"],
            r["source"],
            f"{ap:.3f}" if isinstance(ap, float) else "",
            r["domain"],
        )
    out_console.print(table)


@models_app.command("show")
def models_show(name: Annotated[str, typer.Argument(help="model name or folder")]) -> None:
    """Print a model's model.json, and (on stderr) the CPU runtime measured for it here."""
    from deepscope.predict.runtime_choice import describe_choice, remembered
    from deepscope.spec import read_spec
    from deepscope.zoo import resolve_model
    from deepscope.zoo.model import runtime_key

    folder, _ = resolve_model(name)
    spec = read_spec(folder)
    out_console.print_json(spec.model_dump_json())
    runtime = describe_choice(remembered(runtime_key(spec)), spec.prediction.precision)
    err_console.print(f"CPU runtime: {runtime}", highlight=False, soft_wrap=True)


@models_app.command("favourite")
def models_favourite(name: Annotated[str, typer.Argument(help="model name")]) -> None:
    """Mark a model as a favourite."""
    from deepscope.zoo import set_favourite

    set_favourite(name, True)
    out_console.print(f"{name} is a favourite")


@models_app.command("unfavourite")
def models_unfavourite(name: Annotated[str, typer.Argument(help="model name")]) -> None:
    """Remove a model from the favourites."""
    from deepscope.zoo import set_favourite

    set_favourite(name, False)
    out_console.print(f"{name} is no longer a favourite")


@models_app.command("import")
def models_import(
    source: Annotated[Path, typer.Argument(help="package folder or zip, or bioimage.io model")],
    name: Annotated[str | None, typer.Option(help="store it under this name")] = None,
    replace: Annotated[bool, typer.Option(help="overwrite a model of the same name")] = False,
) -> None:
    """Check a model and copy it into your library."""
    from deepscope.zoo import import_model

    folder = import_model(source, name, replace)
    out_console.print(f"imported {folder.name} into {folder.parent}")


@models_app.command("export")
def models_export(
    name: Annotated[str, typer.Argument(help="model name or folder")],
    out: Annotated[Path, typer.Option(help="output zip or folder")],
    format: Annotated[str, typer.Option(help="deepscope|bioimageio")] = "deepscope",
) -> None:
    """Write a model for sharing: our package (zip or folder) or a bioimage.io model."""
    from deepscope.zoo import export_model

    path = export_model(name, out, format)
    out_console.print(f"wrote {path}")


@models_app.command("quantize")
def models_quantize(
    name: Annotated[str, typer.Argument(help="model name (your library) or folder")],
    images: Annotated[
        list[Path], typer.Option("--images", help="images to calibrate on (repeatable)")
    ],
    count: Annotated[int, typer.Option(help="how many of the images to use")] = 32,
    side: Annotated[int, typer.Option(help="largest crop edge per image, pixels")] = 512,
    axes: Annotated[str | None, typer.Option(help="axes of the images")] = None,
    val_images: Annotated[
        Path | None, typer.Option(help="score the int8 network on these images")
    ] = None,
    val_masks: Annotated[
        Path | None, typer.Option("--val-masks", "--val-targets", help="their ground truth")
    ] = None,
    float_outer_level: Annotated[
        bool,
        typer.Option(
            help="keep the full-resolution convolutions float (for restoration models, "
            "whose 8-bit outputs would lose detail)"
        ),
    ] = False,
) -> None:
    """Add an int8 copy of a U-Net model's network for fast CPU prediction (onnxruntime;
    used with --precision int8 or auto); calibrated on images like those it will see."""
    from deepscope.spec import read_spec
    from deepscope.zoo import quantize_model

    folder = quantize_model(
        name, images, count, side, axes, val_images, val_masks, float_outer_level
    )
    metrics = read_spec(folder).int8.validation
    if metrics:
        _print_metrics(metrics, title=f"int8 network on {val_images}")
    out_console.print(f"added an int8 network to {folder}")


@models_app.command("remove")
def models_remove(name: Annotated[str, typer.Argument(help="model name")]) -> None:
    """Delete a model from your library (built-in models stay)."""
    from deepscope.zoo import remove_model

    folder = remove_model(name)
    out_console.print(f"removed {folder}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("demo_output"),
) -> None:
    """Segment the sample nuclei image with the built-in model; writes labels, CSV and overlay."""
    from deepscope.demo import run_demo

    summary = run_demo(out)
    out_console.print(
        f"found {summary['n_objects']} nuclei in {summary['seconds']:.2f} s; wrote "
        + ", ".join(str(p) for p in summary["files"])
    )


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="interface to listen on; not loopback needs --token")
    ] = ("127.0.0.1"),
    port: Annotated[int, typer.Option(help="port to listen on")] = 8765,
    data_root: Annotated[
        list[Path] | None,
        typer.Option("--data-root", help="a folder the app may browse (repeat for more)"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="DEEPSCOPE_TOKEN", help="access token every request must carry"),
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="where jobs, uploads and results are kept")
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(help="largest upload accepted")] = 200,
    max_image_mp: Annotated[
        float, typer.Option(help="largest image the Analyse page predicts, in megapixels")
    ] = 200,
    keep_results_days: Annotated[
        float, typer.Option(help="previews and exports older than this are deleted at start")
    ] = 7,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps for predictions and jobs")] = (
        "auto"
    ),
) -> None:
    """Run the web app: models, Predict Preview, Count, training and jobs in a browser."""
    import uvicorn
    from pydantic import ValidationError

    from deepscope.app import ServerSettings, create_app
    from deepscope.app.state import hold_state_dir

    for root in data_root or []:
        if not root.is_dir():
            raise DeepscopeError(f"--data-root {root} is not a folder")
    given = {"state_dir": state_dir} if state_dir is not None else {}
    try:
        settings = ServerSettings(
            host=host,
            port=port,
            data_roots=data_root or [],
            token=token,
            max_upload_mb=max_upload_mb,
            max_image_megapixels=max_image_mp,
            keep_results_days=keep_results_days,
            device=device,
            **given,
        )
    except ValidationError as err:
        first = err.errors()[0]
        option = "--" + "-".join(str(part) for part in first["loc"]).replace("_", "-")
        raise DeepscopeError(f"{option}: {first['msg']}") from None
    with hold_state_dir(settings.state_dir):
        pass  # a second server on the same folder stops here with one line, not in uvicorn
    _check_port_free(host, port)
    web = create_app(settings)
    err_console.print(f"deepscope serves on http://{host}:{port} (Ctrl-C stops it)")
    uvicorn.run(web, host=host, port=port, log_level="warning")


def _check_port_free(host: str, port: int) -> None:
    """One line, before the server starts, when ``port`` cannot be listened on."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as err:
        raise DeepscopeError(
            f"cannot serve on {host}:{port} ({err.strerror or err}); choose another --port "
            "or stop the program that holds it"
        ) from None


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr, like errors: ``warning: ...``."""
    _tell("warning:", "yellow", message)


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit status 1, and
    warnings into one line each."""
    warnings.showwarning = _one_line_warning
    terminated = []

    def terminate(signum: int, frame: object) -> None:
        # SIGTERM (a batch system's time limit, kill) unwinds like Ctrl-C, so that partial
        # outputs and temporary files are removed on the way out
        terminated.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        # typer >= 0.29 turns Ctrl-C into a returned status (130) when not standalone
        status = app(standalone_mode=False)
    except KeyboardInterrupt:
        status = 130
    except TrainingInterrupted as err:  # saved and resumable; 130 or 143 as for other commands
        _tell("stopped:", "yellow", err)
        sys.exit(128 + (terminated[0] if terminated else err.signum))
    except DeepscopeError as err:
        _tell("error:", "red", err)
        sys.exit(1)
    except MemoryError:
        _tell(
            "error:",
            "red",
            "out of memory; predict and count: use a smaller --tile; "
            "train: use a smaller --patch-size or --batch-size",
        )
        sys.exit(1)
    except OSError as err:  # a file system refusal we did not foresee, as one line
        where = f" '{err.filename}'" if err.filename else ""
        _tell(
            "error:",
            "red",
            f"cannot access{where}: {err.strerror or err}; check the path and its permissions",
        )
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # usage errors of click (older typer) or of typer's own parser (typer >= 0.29)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            command = ctx.command_path if ctx is not None else "deepscope"
            message = exc.format_message().rstrip(".")
            _tell("error:", "red", f"{message}; see '{command} --help'")
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":
            sys.exit(1)
        raise
    if terminated and status == 130:
        err_console.print("terminated", soft_wrap=True)
        sys.exit(143)
    if status == 130:
        err_console.print("interrupted", soft_wrap=True)
    if isinstance(status, int) and status:
        sys.exit(status)


if __name__ == "__main__":
    main()
