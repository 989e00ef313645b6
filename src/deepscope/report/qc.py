"""Quality-control report for image restoration: metrics and pictures in one HTML file.

:func:`qc_report` scores predictions against ground truth with
:func:`~deepscope.metrics.restoration.restoration_metrics`, next to two references computed
from the raw inputs when they are given: the raw input itself and a Gaussian filter of it
(the classical baseline a model must beat). It writes one self-contained HTML page (figures
embedded as PNG ``data:`` URIs, no external files, readable offline) with a summary table,
a per-image table, pictures of the images, error and SSIM maps, histograms, line profiles
and, when the model is named, its loss curves and recorded validation metrics.

Predictions are paired with ground truth by file stem after removing a trailing ``_pred``
(what ``deepscope predict`` appends), so ``cell_01_pred.tif`` is scored against
``cell_01.tif`` and the input ``cell_01.tif``.
"""

from __future__ import annotations

import csv
import html
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from skimage.metrics import structural_similarity

from deepscope import __version__
from deepscope.classical.filters import DEFAULT_SIGMAS, as_float_image, gaussian_denoise
from deepscope.errors import ConfigError, InputError, PairingError
from deepscope.io import image_stem, list_images, read_image
from deepscope.io.atomic import atomic_output, check_output_file
from deepscope.io.pairs import some_names
from deepscope.io.paths import is_image_path, split_folder_dataset
from deepscope.metrics.restoration import (
    SSIM_WINDOW,
    check_reference,
    fair_pair,
    psnr,
    restoration_metrics,
)
from deepscope.progress import Progress, ProgressCallback, report
from deepscope.report.html import CSS, data_uri, new_figure

__all__ = ["MAX_PANELS", "PRED_SUFFIX", "QCPair", "format_metric", "pair_predictions", "qc_report"]

MAX_PANELS = 12
"""At most this many images get pictures in the report; all of them are scored."""

PRED_SUFFIX = "_pred"
"""What ``deepscope predict`` appends to the stem of a restored image."""

# (key, label, higher is better, what it measures)
METRICS: tuple[tuple[str, str, bool, str], ...] = (
    ("psnr", "PSNR (dB)", True, "peak signal-to-noise ratio"),
    ("ssim", "SSIM", True, "structural similarity (1 = same structure)"),
    ("snr", "SNR (dB)", True, "signal power over error power"),
    ("rmse", "RMSE", False, "root-mean-square error"),
    ("nrmse", "NRMSE", False, "RMSE over the ground truth's range"),
    ("nrmse_notebook", "NRMSE (notebook)", False, "sqrt(mean |error|), ZeroCostDL4Mic"),
    ("mae", "MAE", False, "mean absolute error"),
    ("pearson_r", "Pearson r", True, "pixel-wise correlation"),
)
SOURCES = ("prediction", "gaussian", "input")

_DPI = 90
_COLOURS = {"input": "#8c8c8c", "gaussian": "#2b83ba", "prediction": "#d7191c", "gt": "#111111"}


@dataclass(frozen=True)
class QCPair:
    """One image to score: its name (the shared stem) and its files."""

    name: str
    pred: Path
    gt: Path
    input: Path | None = None


def _folder_images(folder: str | os.PathLike[str], role: str, flag: str) -> list[Path]:
    """The image files of one folder (sorted, not recursive); ``'folder:dataset'``, that
    dataset of each HDF5 or Zarr file in the folder."""
    path = Path(folder)
    if split_folder_dataset(folder)[1] is not None:
        return list_images([folder])
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise InputError(f"{flag} folder '{path}' {what}; pass the folder holding the {role}")
    try:
        files = sorted((p for p in path.iterdir() if is_image_path(p)), key=lambda p: p.name)
    except OSError as error:
        raise InputError(
            f"cannot list {flag} folder '{path}' ({error}); check its permissions"
        ) from None
    if not files:
        raise InputError(f"{flag} folder '{path}' contains no image files; pass the {role}")
    return files


def _pred_key(path: Path) -> str:
    stem = image_stem(path)
    if stem.endswith(PRED_SUFFIX) and len(stem) > len(PRED_SUFFIX):
        return stem[: -len(PRED_SUFFIX)]
    return stem


def _by_key(
    files: list[Path], key: Callable[[Path], str], folder: object, flag: str
) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in files:
        name = key(path)
        if name in found:
            raise PairingError(
                f"{flag} folder '{folder}' has two files for image {name!r} "
                f"({found[name].name}, {path.name}); keep one of them"
            )
        found[name] = path
    return found


def _pairs(
    pred_dir: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    input_dir: str | os.PathLike[str] | None,
) -> tuple[list[QCPair], int]:
    """The pairs and how many ground-truth images have no prediction."""
    preds = _folder_images(pred_dir, "predictions", "--pred")
    marked = [path for path in preds if _pred_key(path) != image_stem(path)]
    # A folder written by 'deepscope predict' also holds _uncertainty.tif, _overlay.png...
    preds_by = _by_key(marked or preds, _pred_key, pred_dir, "--pred")
    gts_by = _by_key(_folder_images(gt_dir, "ground truth", "--gt"), image_stem, gt_dir, "--gt")
    lonely = [preds_by[name] for name in sorted(preds_by) if name not in gts_by]
    if lonely:
        raise PairingError(
            f"{len(lonely)} prediction(s) have no ground truth in '{gt_dir}': "
            f"{some_names(lonely)}; "
            f"the ground truth of '<name>{PRED_SUFFIX}.tif' must be called '<name>' "
            "(any image extension)"
        )
    inputs_by: dict[str, Path] = {}
    if input_dir is not None:
        inputs = _folder_images(input_dir, "raw input images", "--input")
        inputs_by = _by_key(inputs, image_stem, input_dir, "--input")
        lonely = [preds_by[name] for name in sorted(preds_by) if name not in inputs_by]
        if lonely:
            raise PairingError(
                f"{len(lonely)} prediction(s) have no input image in '{input_dir}': "
                f"{some_names(lonely)}; give the folder of the images the model was applied to"
            )
    pairs = [
        QCPair(name, preds_by[name], gts_by[name], inputs_by.get(name)) for name in sorted(preds_by)
    ]
    return pairs, len(gts_by.keys() - preds_by.keys())


def pair_predictions(
    pred_dir: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    input_dir: str | os.PathLike[str] | None = None,
) -> list[QCPair]:
    """Pair predictions with ground truth (and raw inputs) by file stem.

    The stem of a prediction loses a trailing ``_pred`` first, so ``a_pred.tif`` pairs with
    ``a.tif`` (or ``a.png``...). When some files of ``pred_dir`` end in ``_pred``, only those
    are predictions (the folder ``deepscope predict`` wrote also holds ``_uncertainty.tif``
    and overlays); otherwise every image there is. Ground-truth images without a prediction
    are allowed and not scored.

    Parameters
    ----------
    pred_dir : str or Path
        Folder of restored images.
    gt_dir : str or Path
        Folder of ground-truth images.
    input_dir : str or Path, optional
        Folder of the raw images the predictions were made from.

    Returns
    -------
    list of QCPair
        Sorted by name.

    Raises
    ------
    InputError
        If a folder is missing or holds no image file.
    PairingError
        If a prediction has no ground truth or no input (the message names up to five), or
        two files of one folder stand for the same image.
    """
    return _pairs(pred_dir, gt_dir, input_dir)[0]


def _load(path: Path, role: str) -> np.ndarray:
    """A single-channel 2D or 3D image as float32 (singleton axes dropped)."""
    image = read_image(path)
    keep = [i for i, size in enumerate(image.shape) if size > 1]
    axes = "".join(image.axes[i] for i in keep)
    if axes not in ("YX", "ZYX"):
        raise InputError(
            f"{role} '{path}' has axes {image.axes} and shape {image.shape}; qc compares "
            "single-channel 2D (YX) or 3D (ZYX) images: split channels and time points first"
        )
    data = as_float_image(image.data.reshape([image.shape[i] for i in keep]), f"{role} '{path}'")
    if min(data.shape) < SSIM_WINDOW:
        raise InputError(
            f"{role} '{path}' has shape {data.shape}; SSIM needs at least {SSIM_WINDOW} "
            "pixels along every axis (3D stacks: at least 11 z slices)"
        )
    return data


def _load_pair(pair: QCPair) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    gt = _load(pair.gt, "ground truth")
    pred = _load(pair.pred, "prediction")
    raw = _load(pair.input, "input") if pair.input is not None else None
    for role, path, data in (("prediction", pair.pred, pred), ("input", pair.input, raw)):
        if data is not None and data.shape != gt.shape:
            raise InputError(
                f"{role} '{path}' has shape {data.shape} but its ground truth '{pair.gt}' has "
                f"{gt.shape}; give images of the same size"
            )
    check_reference(gt, f"ground truth '{pair.gt}'")
    return pred, gt, raw


def _check_out(out: str | os.PathLike[str]) -> Path:
    path = Path(out)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(
            f"the report is one HTML file: give --out a name ending in .html, not '{path.name}'"
        )
    return check_output_file(path, "--out")


def _choose_sigma(
    pairs: list[QCPair], progress: ProgressCallback | None
) -> tuple[float, list[float]]:
    """The Gaussian sigma with the best mean PSNR (on the fair scale) over all images."""
    totals = np.zeros(len(DEFAULT_SIGMAS))
    for done, pair in enumerate(pairs, 1):
        _, gt, raw = _load_pair(pair)
        assert raw is not None
        for k, sigma in enumerate(DEFAULT_SIGMAS):
            fitted, target = fair_pair(gaussian_denoise(raw, sigma), gt)
            totals[k] += psnr(fitted, target, 1.0)
        report(progress, Progress("baseline", done, len(pairs), message="choosing σ"))
    means = totals / len(pairs)
    return DEFAULT_SIGMAS[int(np.argmax(means))], [float(v) for v in means]


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key, *_ in METRICS}


# ----------------------------------------------------------------------------- figures


def _plane(array: np.ndarray) -> np.ndarray:
    """The middle z slice of a volume; a 2D image as it is."""
    return array[array.shape[0] // 2] if array.ndim == 3 else array


def _picture(figure, ax, plane: np.ndarray, title: str, bar: str | None, **style) -> None:
    """One image panel, with a horizontal colour bar below it when ``bar`` names one."""
    shown = ax.imshow(plane, interpolation="nearest", **style)
    ax.set_title(title)
    ax.set_axis_off()
    if bar is not None:
        colour_bar = figure.colorbar(
            shown, cax=ax.inset_axes([0.0, -0.1, 1.0, 0.045]), orientation="horizontal"
        )
        colour_bar.set_label(bar, fontsize=8)
        colour_bar.ax.tick_params(labelsize=8)


def _histograms(ax, views: dict[str, np.ndarray], titles: dict[str, str]) -> None:
    values = list(views.values())
    edges = np.linspace(
        min(float(np.percentile(v, 0.01)) for v in values),
        max(float(np.percentile(v, 99.99)) for v in values) + 1e-9,
        65,
    )
    for name, plane in views.items():
        counts, _ = np.histogram(plane, edges)
        ax.stairs(np.maximum(counts, 0.8), edges, color=_COLOURS[name], label=titles[name])
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.8)
    ax.set_xlabel("intensity")
    ax.set_ylabel("pixels")
    ax.set_title("histograms")
    ax.legend(fontsize=8)


def _profile(ax, views: dict[str, np.ndarray], titles: dict[str, str], row: int) -> None:
    for name, plane in views.items():
        ax.plot(
            plane[row],
            color=_COLOURS[name],
            label=titles[name],
            linewidth=0.8 if name in ("input", "gaussian") else 1.3,
            linestyle="--" if name == "gaussian" else "-",
        )
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("intensity")
    ax.set_title(f"profile along row y = {row}")
    ax.legend(fontsize=8)


def _image_figure(
    pred: np.ndarray,
    gt: np.ndarray,
    raw: np.ndarray | None,
    smooth: np.ndarray | None,
    sigma: float | None,
) -> str:
    """Pictures, SSIM and error maps, histograms and a line profile of one image, as a
    PNG ``data:`` URI; a volume shows its middle z slice."""
    fitted, target = fair_pair(pred, gt)
    _, ssim_map = structural_similarity(
        target,
        fitted,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    views = {"prediction": _plane(fitted), "gt": _plane(target)}
    titles = {"prediction": "prediction", "gt": "ground truth"}
    if raw is not None and smooth is not None:
        views = {
            "input": _plane(fair_pair(raw, gt)[0]),
            "gaussian": _plane(fair_pair(smooth, gt)[0]),
            **views,
        }
        titles.update(input="raw input", gaussian=f"Gaussian filter σ {sigma:g}")
        layout = [["input", "gaussian", "prediction", "gt"], ["ssim", "error", "hist", "profile"]]
    else:
        layout = [["prediction", "gt", "ssim", "error"], ["hist", "hist", "profile", "profile"]]
    # A fixed layout: constrained layout would cost about a second per figure.
    figure = new_figure(13.5, 7.6, constrained=False, dpi=_DPI)
    axes = figure.subplot_mosaic(
        layout,
        gridspec_kw={
            "left": 0.025,
            "right": 0.985,
            "top": 0.95,
            "bottom": 0.08,
            "wspace": 0.28,
            "hspace": 0.42,
        },
    )
    low, high = np.percentile(views["gt"], [1, 99.8])
    grey = {"cmap": "gray", "vmin": low, "vmax": high if high > low else low + 1}
    for name, plane in views.items():
        bar = "intensity" if name == "gt" else None
        _picture(figure, axes[name], plane, titles[name], bar, **grey)
    row = views["gt"].shape[0] // 2
    axes["gt"].axhline(row, color="#ffcc00", linewidth=0.9, linestyle="--")
    style = {"cmap": "magma", "vmin": 0.0, "vmax": 1.0}
    _picture(figure, axes["ssim"], _plane(ssim_map), "SSIM map of the prediction", "SSIM", **style)
    error = np.abs(views["prediction"] - views["gt"])
    top = float(np.percentile(error, 99.5)) or float(error.max()) or 1.0
    style = {"cmap": "inferno", "vmin": 0.0, "vmax": top}
    _picture(figure, axes["error"], error, "|prediction − ground truth|", "error", **style)
    order = ("input", "gaussian", "prediction", "gt")
    shown = {name: views[name] for name in order if name in views}
    _histograms(axes["hist"], shown, titles)
    _profile(axes["profile"], shown, titles, row)
    return data_uri(figure)


def _loss_figure(rows: list[dict[str, float]], title: str) -> str:
    """Training and validation loss per epoch (log scale when all losses are positive)."""
    figure = new_figure(7, 3.8, dpi=_DPI)
    ax = figure.add_subplot()
    everything = []
    for key, label, colour in (
        ("train_loss", "training loss", "#2b83ba"),
        ("val_loss", "validation loss", "#d7191c"),
    ):
        points = [(r["epoch"], r[key]) for r in rows if math.isfinite(r[key])]
        if points:
            ax.plot(*zip(*points, strict=True), label=label, color=colour, linewidth=1.3)
            everything += [value for _, value in points]
    validation = [(r["val_loss"], r["epoch"]) for r in rows if math.isfinite(r["val_loss"])]
    if validation:
        _, epoch = min(validation)
        ax.axvline(epoch, color="#777", linestyle=":", label=f"best validation (epoch {epoch:g})")
    if everything and min(everything) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return data_uri(figure)


# ----------------------------------------------------------------------------- model


@dataclass
class _ModelInfo:
    name: str
    task: str
    version: str
    description: str
    folder: Path
    restoration: bool
    validation: dict[str, Any]
    history: list[dict[str, float]] | None
    history_note: str


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _read_history(path: Path) -> tuple[list[dict[str, float]] | None, str]:
    if not path.is_file():
        return None, "This model package has no history.csv, so there are no loss curves."
    try:
        with open(path, newline="") as handle:
            rows = [
                {key: _number(row.get(key)) for key in ("epoch", "train_loss", "val_loss")}
                for row in csv.DictReader(handle)
            ]
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        return None, f"history.csv could not be read ({error}), so there are no loss curves."
    rows = [row for row in rows if math.isfinite(row["epoch"])]
    if not rows:
        return None, "history.csv holds no epochs, so there are no loss curves."
    return rows, ""


def _model_info(model: Any) -> _ModelInfo:
    """Name, task, validation metrics and history of a model (a loaded one, a name or a
    folder). Only ``model.json`` and ``history.csv`` are read, not the weights."""
    from deepscope.tasks import TASKS

    if hasattr(model, "spec") and hasattr(model, "folder"):
        spec, folder = model.spec, Path(model.folder)
    else:
        from deepscope.spec import read_spec
        from deepscope.zoo import resolve_model

        folder, _ = resolve_model(model)
        spec = read_spec(folder)
    task = TASKS.get(spec.task)
    history, note = _read_history(folder / "history.csv")
    return _ModelInfo(
        name=spec.name,
        task=spec.task,
        version=spec.version,
        description=spec.description,
        folder=folder,
        restoration=task is not None and task.output_kind == "image",
        validation=dict(spec.validation),
        history=history,
        history_note=note,
    )


# ----------------------------------------------------------------------------- HTML


def format_metric(key: str, value: float) -> str:
    """A metric as the report shows it: dB values with 2 decimals, others with 4."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.2f}" if key in ("psnr", "snr") else f"{value:.4f}"


def _best(key: str, values: dict[str, float]) -> set[str]:
    """Sources holding the best value of one metric."""
    finite = {source: v for source, v in values.items() if not math.isnan(v)}
    if len(finite) < 2:
        return set()
    higher = next(h for k, _, h, _ in METRICS if k == key)
    best = max(finite.values()) if higher else min(finite.values())
    return {source for source, v in finite.items() if v == best}


def _cells(key: str, values: dict[str, float]) -> str:
    best = _best(key, values)
    return "".join(
        f'<td class="best">{format_metric(key, v)}</td>'
        if source in best
        else f"<td>{format_metric(key, v)}</td>"
        for source, v in values.items()
    )


def _source_titles(sigma: float | None) -> dict[str, str]:
    return {
        "prediction": "prediction",
        "gaussian": f"Gaussian filter (σ {sigma:g} px)" if sigma is not None else "Gaussian",
        "input": "raw input",
    }


def _summary_table(means: dict[str, dict[str, float] | None], sigma: float | None) -> str:
    sources = [source for source in SOURCES if means.get(source) is not None]
    titles = _source_titles(sigma)
    head = "".join(f"<th>{titles[source]}</th>" for source in sources)
    rows = []
    for key, label, higher, what in METRICS:
        arrow = (
            '<span title="higher is better">↑</span>'
            if higher
            else '<span title="lower is better">↓</span>'
        )
        values = {source: means[source][key] for source in sources}
        rows.append(
            f"<tr><td>{label} {arrow}</td>{_cells(key, values)}"
            f'<td class="what">{html.escape(what)}</td></tr>'
        )
    return (
        f"<table><tr><th>metric</th>{head}<th>what it measures</th></tr>"
        + "".join(rows)
        + "</table>"
        + '<p class="note">↑ higher is better, ↓ lower is better; the best value of each row '
        "is highlighted. Means over all images.</p>"
    )


def _verdict(means: dict[str, dict[str, float] | None], sigma: float | None) -> str:
    pred, gauss, raw = means["prediction"], means.get("gaussian"), means.get("input")
    assert pred is not None
    if gauss is None or raw is None:
        return (
            "<p class='verdict'>The Gaussian-filter baseline and the raw-input scores need the "
            "raw images: run again with <code>--input DIR</code> (the images the model was "
            "applied to) to see whether the model beats a simple blur.</p>"
        )
    better = sum(
        (pred[key] > gauss[key]) if higher else (pred[key] < gauss[key])
        for key, _, higher, _ in METRICS
    )
    d_psnr, d_ssim = pred["psnr"] - gauss["psnr"], pred["ssim"] - gauss["ssim"]
    numbers = (
        f"PSNR {format_metric('psnr', pred['psnr'])} dB against "
        f"{format_metric('psnr', gauss['psnr'])} dB ({d_psnr:+.2f} dB), SSIM "
        f"{format_metric('ssim', pred['ssim'])} against {format_metric('ssim', gauss['ssim'])} "
        f"({d_ssim:+.4f}); better on {better} of {len(METRICS)} metrics"
    )
    if d_psnr > 0 and d_ssim > 0:
        headline = f"The prediction beats the best Gaussian filter (σ {sigma:g} px)"
    elif d_psnr <= 0 and d_ssim <= 0:
        headline = (
            f"The prediction does not beat a Gaussian filter (σ {sigma:g} px); a model that "
            "loses to a blur has learned nothing a one-line filter cannot do"
        )
    else:
        headline = f"Mixed result against the best Gaussian filter (σ {sigma:g} px)"
    gain = pred["psnr"] - raw["psnr"]
    return (
        f"<p class='verdict'><b>{headline}.</b> {numbers}. Against the raw input: "
        f"{gain:+.2f} dB PSNR.</p>"
    )


def _per_image_table(rows: list[dict[str, Any]], has_input: bool) -> str:
    if has_input:
        groups = [
            ("psnr", ("prediction", "gaussian", "input")),
            ("ssim", ("prediction", "gaussian", "input")),
        ]
        extra = ("nrmse", "mae", "pearson_r")
    else:
        groups = []
        extra = tuple(key for key, *_ in METRICS)
    labels = {key: label for key, label, *_ in METRICS}
    short = {"prediction": "pred.", "gaussian": "Gauss.", "input": "input"}
    head = "<th>image</th><th>size</th>"
    head += "".join(f"<th>{labels[key]} {short[s]}</th>" for key, group in groups for s in group)
    head += "".join(f"<th>{labels[key]} pred.</th>" for key in extra)
    body = []
    for index, row in enumerate(rows):
        name = html.escape(row["image"])
        link = f'<a href="#image-{index}">{name}</a>' if index < MAX_PANELS else name
        cells = "".join(
            _cells(key, {s: row[s][key] for s in group}) for key, group in groups
        ) + "".join(f"<td>{format_metric(key, row['prediction'][key])}</td>" for key in extra)
        size = "×".join(str(n) for n in row["shape"])
        body.append(f"<tr><td>{link}</td><td>{size}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _model_section(info: _ModelInfo | None) -> str:
    if info is None:
        return (
            "<h2>Training</h2><p class='note'>No model given: pass <code>--model NAME</code> "
            "(or the model folder) to add its loss curves and validation metrics.</p>"
        )
    parts = ["<h2>Training</h2>"]
    parts.append(
        f"<p class='meta'>Model <b>{html.escape(info.name)}</b> version "
        f"{html.escape(info.version)}, task <code>{html.escape(info.task)}</code>, package "
        f"<code>{html.escape(str(info.folder))}</code>.</p>"
    )
    if info.description:
        parts.append(f"<p>{html.escape(info.description)}</p>")
    if not info.restoration:
        parts.append(
            f"<p class='verdict'>Task <code>{html.escape(info.task)}</code> is not an image "
            "restoration task: check that these predictions came from this model.</p>"
        )
    if info.history is not None:
        uri = _loss_figure(info.history, f"{info.name}: loss per epoch")
        parts.append(
            f'<figure><img alt="loss curves" src="{uri}"><figcaption>Training and validation '
            f"loss per epoch ({len(info.history)} epochs in history.csv). Validation loss that "
            "rises while training loss falls means over-fitting.</figcaption></figure>"
        )
    else:
        parts.append(f"<p class='note'>{html.escape(info.history_note)}</p>")
    flat = _flatten(info.validation)
    if flat:
        items = "".join(
            f"<div><dt>{html.escape(key)}</dt><dd>{html.escape(value)}</dd></div>"
            for key, value in flat.items()
        )
        parts.append(
            "<h3>Validation metrics recorded at training</h3>"
            f'<dl class="kv">{items}</dl><p class="note">As stored in model.json, on the '
            "validation data of training; not comparable with the numbers above unless "
            "the images are the same.</p>"
        )
    else:
        parts.append("<p class='note'>The model records no validation metrics.</p>")
    return "".join(parts)


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            flat[name] = str(value)
        else:
            flat[name] = str(value) if isinstance(value, int) else f"{value:.4g}"
    return flat


def _panels_section(
    panels: list[str], rows: list[dict[str, Any]], has_input: bool, volume: bool
) -> str:
    shown = (
        "raw input, Gaussian filter, prediction and ground truth"
        if has_input
        else ("prediction and ground truth")
    )
    parts = [
        "<h2>Images</h2><p class='note'>Top: "
        f"{shown} on one intensity scale (the normalised scale of the metrics), displayed "
        "from the 1st to the 99.8th percentile of the ground truth. Bottom: the SSIM map of "
        "the prediction (dark = structure differs), the absolute error of the prediction, "
        "intensity histograms and the intensities along the dashed row."
        + (
            " 3D images show their middle z slice; their metrics use the whole volume."
            if volume
            else ""
        )
        + "</p>"
    ]
    if len(rows) > len(panels):
        parts.append(
            f"<p class='note'>Pictures of the first {len(panels)} of {len(rows)} images "
            "(by name); every image is in the tables.</p>"
        )
    for index, (uri, row) in enumerate(zip(panels, rows, strict=False)):
        where = ""
        if len(row["shape"]) == 3:
            where = f"; middle z slice {row['shape'][0] // 2} of {row['shape'][0]}"
        pred = row["prediction"]
        parts.append(
            f'<figure id="image-{index}"><img alt="{html.escape(row["image"])}" src="{uri}">'
            f"<figcaption><b>{html.escape(row['image'])}</b> ({'×'.join(map(str, row['shape']))}"
            f"{where}): prediction PSNR {format_metric('psnr', pred['psnr'])} dB, SSIM "
            f"{format_metric('ssim', pred['ssim'])}</figcaption></figure>"
        )
    return "".join(parts)


_DEFINITIONS = (
    "<h2>How the numbers are computed</h2><p class='note'>Restoration tools return images "
    "in different units, so every image is first put on one scale, as CSBDeep and the "
    "ZeroCostDL4Mic notebooks do: the ground truth is percentile-normalised (0.1th "
    "percentile → 0, 99.9th → 1) and the prediction (likewise the Gaussian filter and the "
    "raw input) is mapped onto it by the least-squares affine fit <i>a</i>·image + <i>b</i>. "
    "PSNR and SSIM then use a data range of 1; SSIM is the Gaussian-window SSIM of Wang et "
    "al. (σ 1.5). NRMSE is the RMSE over the ground truth's range; NRMSE (notebook), "
    "<code>nrmse_notebook</code> in the Python results, is what the ZeroCostDL4Mic notebooks "
    "call NRMSE: sqrt(mean |error|). The affine fit forgives "
    "a wrong brightness or contrast but not noise or blur.</p>"
)


def _document(
    result: dict[str, Any],
    panels: list[str],
    info: _ModelInfo | None,
    folders: dict[str, Any],
    unused_gt: int,
    sigma_means: list[float] | None,
) -> str:
    sigma = result["gaussian_sigma"]
    rows = result["per_image"]
    has_input = result["input"] is not None
    what = f"{info.name} ({info.task})" if info is not None else "image restoration"
    when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    sources = "".join(
        f"<br>{label}: <code>{html.escape(str(folder))}</code>"
        for label, folder in folders.items()
        if folder is not None
    )
    meta = (
        f"<p class='meta'>{result['n_images']} image(s), made {html.escape(when)} by deepscope "
        f"{html.escape(__version__)}.{sources}</p>"
    )
    if unused_gt:
        meta += (
            f"<p class='note'>{unused_gt} ground-truth image(s) have no prediction and are not "
            "scored.</p>"
        )
    volume = any(len(row["shape"]) == 3 for row in rows)
    if sigma is not None and sigma_means is not None:
        baseline = (
            f"<p class='note'>Gaussian filter baseline: the raw input smoothed with one σ for "
            f"all images, σ = {sigma:g} px, the σ of {DEFAULT_SIGMAS[0]:g} to "
            f"{DEFAULT_SIGMAS[-1]:g} px (step {DEFAULT_SIGMAS[1] - DEFAULT_SIGMAS[0]:g}) with "
            f"the best mean PSNR on these very images ({max(sigma_means):.2f} dB): an "
            "oracle choice that flatters the baseline.</p>"
        )
    else:
        baseline = (
            "<p class='note'>Gaussian filter baseline: needs the raw images "
            "(<code>--input DIR</code>).</p>"
        )
    body = [
        f"<h1>Quality-control report: {html.escape(what)}</h1>",
        meta,
        _verdict(result, sigma),
        "<h2>Summary</h2>",
        _summary_table(result, sigma),
        baseline,
        _DEFINITIONS,
        "<h2>Per image</h2>",
        _per_image_table(rows, has_input),
        _panels_section(panels, rows, has_input, volume),
        _model_section(info),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>QC: {html.escape(what)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# ----------------------------------------------------------------------------- the report


def qc_report(
    pred_dir: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    input_dir: str | os.PathLike[str] | None = None,
    model: Any = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Score restored images against ground truth and write a self-contained HTML report.

    Every prediction is scored with
    :func:`~deepscope.metrics.restoration.restoration_metrics` (the fair, normalised
    comparison). With ``input_dir`` the raw inputs are scored too, and so is a Gaussian
    filter of them: one sigma for all images, the one of
    :data:`~deepscope.classical.filters.DEFAULT_SIGMAS` with the best mean PSNR on these
    images (an oracle choice, the strongest such baseline).

    The report holds a summary table (prediction, Gaussian filter, raw input; best values
    highlighted), a per-image table, pictures of the first :data:`MAX_PANELS` images
    (input, filter, prediction and ground truth at one contrast, SSIM and error maps,
    histograms, a line profile; 3D images show their middle z slice) and, with ``model``,
    its loss curves and recorded validation metrics. Figures are embedded, so the file
    works offline and can be mailed.

    Parameters
    ----------
    pred_dir : str or Path
        Folder of predictions, e.g. ``<name>_pred.tif`` from ``deepscope predict``; see
        :func:`pair_predictions` for the pairing rules.
    gt_dir : str or Path
        Folder of ground-truth images, ``<name>.tif``.
    out : str or Path
        The report, ending in ``.html`` (or ``.htm``). Written atomically (missing folders
        are created).
    input_dir : str or Path, optional
        Folder of the raw images the predictions came from (``<name>.tif``).
    model : str, Path or Model, optional
        The model that made the predictions: a name, a package folder or a loaded
        :class:`~deepscope.zoo.Model`. Only its ``model.json`` and ``history.csv`` are read.
        A model that does not restore images (segmentation, say) gives a warning.
    progress : callable, optional
        Receives :class:`~deepscope.progress.Progress` events (stages ``"baseline"`` and
        ``"qc"``, one unit per image).

    Returns
    -------
    dict
        ``prediction``, ``gaussian`` and ``input``: mean metrics (``None`` without
        ``input_dir``); ``n_images``; ``gaussian_sigma`` (or ``None``); ``per_image``: one
        dict per image with ``image``, ``shape`` and the three metric dicts.

    Raises
    ------
    ConfigError
        If ``out`` does not end in ``.html`` or ``.htm``, or is a folder.
    InputError
        If a folder is missing or empty, an image is not single-channel 2D/3D, is smaller
        than 11 pixels along an axis, or differs in shape from its ground truth.
    PairingError
        If a prediction has no ground truth (or no input when ``input_dir`` is given).
    ModelError
        If ``model`` is not a model name or package.

    Examples
    --------
    >>> qc_report("pred", "gt", "qc.html", input_dir="raw", model="care-fmd")  # doctest: +SKIP
    {'prediction': {'psnr': 33.1, ...}, 'gaussian': {...}, 'input': {...}, 'n_images': 24, ...}
    """
    out_path = _check_out(out)
    info = _model_info(model) if model is not None else None
    if info is not None and not info.restoration:
        warnings.warn(
            f"--model '{info.name}' is a model of task '{info.task}', not an image "
            "restoration one: the report's training section (its loss curves and validation "
            "metrics) cannot be that of these predictions; give the model that made them, or "
            "leave out --model",
            stacklevel=2,
        )
    pairs, unused_gt = _pairs(pred_dir, gt_dir, input_dir)
    sigma, sigma_means = None, None
    if input_dir is not None:
        sigma, sigma_means = _choose_sigma(pairs, progress)
    rows: list[dict[str, Any]] = []
    panels: list[str] = []
    for done, pair in enumerate(pairs, 1):
        pred, gt, raw = _load_pair(pair)
        row: dict[str, Any] = {
            "image": pair.name,
            "shape": tuple(gt.shape),
            "prediction": restoration_metrics(pred, gt),
            "gaussian": None,
            "input": None,
        }
        smooth = None
        if raw is not None and sigma is not None:
            smooth = gaussian_denoise(raw, sigma)
            row["gaussian"] = restoration_metrics(smooth, gt)
            row["input"] = restoration_metrics(raw, gt)
        rows.append(row)
        if len(panels) < MAX_PANELS:
            panels.append(_image_figure(pred, gt, raw, smooth, sigma))
        report(progress, Progress("qc", done, len(pairs), message=pair.name))
    has_input = input_dir is not None
    result: dict[str, Any] = {
        "prediction": _mean([row["prediction"] for row in rows]),
        "gaussian": _mean([row["gaussian"] for row in rows]) if has_input else None,
        "input": _mean([row["input"] for row in rows]) if has_input else None,
        "n_images": len(rows),
        "gaussian_sigma": sigma,
        "per_image": rows,
    }
    folders = {"predictions": pred_dir, "ground truth": gt_dir, "raw input": input_dir}
    document = _document(result, panels, info, folders, unused_gt, sigma_means)
    with atomic_output(out_path) as temporary:
        temporary.write_text(document, encoding="utf-8")
    return result
