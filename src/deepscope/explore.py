"""Explore a features file: maps, clusters and novelty against negative controls.

CellCognition Explorer (Sommer et al. 2017) finds what a perturbation does to cells by
comparing every cell object with the cells of negative-control positions: a one-class
model learns what control cells look like in feature space, and cells it rejects are
*novel*. :func:`explore` does the same for a features file written by
:func:`~deepscope.io.feature_hdf.write_feature_hdf` (e.g. by ``deepscope encode``):

1. features are standardised with the mean and spread of the control objects;
2. a one-class SVM fitted on control objects gives every object a novelty score, and the
   95th percentile of held-out control objects' scores is the novelty threshold;
3. positions are ranked by the fraction of their objects above the threshold;
4. PCA and t-SNE maps and k-means clusters show the structure of the whole population;

and writes one self-contained HTML page (figures embedded as PNG ``data:`` URIs). The
computations (:func:`analyse`) are kept apart from the page, so they can be used alone.
"""

from __future__ import annotations

import html
import math
import numbers
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from deepscope.errors import ConfigError, InputError
from deepscope.io.atomic import atomic_output, check_output_file
from deepscope.io.feature_hdf import ObjectFeatures, read_feature_hdf
from deepscope.progress import Progress, ProgressCallback, report
from deepscope.report.html import CSS, data_uri, new_figure

__all__ = [
    "MAX_TSNE",
    "MIN_CONTROLS",
    "NOVELTY_NU",
    "NOVELTY_PERCENTILE",
    "Exploration",
    "Novelty",
    "analyse",
    "channel_limits",
    "cluster_examples",
    "cluster_rows",
    "composite",
    "explore",
    "kmeans_clusters",
    "most_novel",
    "novelty_scores",
    "pca_map",
    "rank_positions",
    "reference_objects",
    "standardise",
    "tsne_map",
]

MAX_TSNE = 3000
"""t-SNE runs on a random subsample of at most this many objects."""

MIN_CONTROLS = 3
"""With fewer control objects than this, everything is measured against all objects."""

NOVELTY_NU = 0.05
"""``nu`` of the one-class SVM: at most this fraction of its training objects lie outside."""

NOVELTY_PERCENTILE = 95.0
"""The novelty threshold is this percentile of the reference objects' scores."""

MAX_FIT = 5000
"""The one-class SVM is fitted on at most this many reference objects (its cost grows with
the square of their number)."""

MIN_HELD_OUT = 20
"""With at least this many reference objects, half of them are held out to set the
threshold; with fewer, the threshold comes from the objects the model was fitted on."""

_STEPS = 7
_EXACT_TSNE = 100
_CONTROL = "control"
_CONTROL_COLOUR = "#9e9e9e"
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
_MAX_GROUPS = len(_PALETTE)
_TILE_INCHES = 1.3
_EXTRA_CSS = """
table.rank td:nth-child(2),table.rank td:nth-child(3),table.rank td:nth-child(4){
text-align:left}
td.novel{background:#fde0dd;font-weight:600}
"""


# ----------------------------------------------------------------------------- numbers


@dataclass(frozen=True, eq=False)
class Novelty:
    """Novelty scores of all objects and the threshold that marks the novel ones.

    Attributes
    ----------
    scores : ndarray, shape (N,)
        Minus the one-class SVM's decision function: higher means less like the reference.
    threshold : float
        The :data:`NOVELTY_PERCENTILE` th percentile of the held-out reference scores.
    n_fit, n_held_out : int
        Reference objects the model was fitted on and objects that set the threshold
        (``n_held_out`` is 0 when the threshold comes from the fitted objects).
    distance : ndarray, shape (N,)
        Root-mean-square standardised distance from the reference mean, in standard
        deviations. Far from the reference every SVM score levels off at the same value
        (the kernel vanishes); this distance does not, so it breaks those ties.
    """

    scores: np.ndarray
    threshold: float
    n_fit: int
    n_held_out: int
    distance: np.ndarray

    @property
    def novel(self) -> np.ndarray:
        """True for the objects whose score lies above the threshold."""
        return self.scores > self.threshold

    def tie_key(self, values: np.ndarray) -> np.ndarray:
        """Scores rounded to 9 significant digits relative to the largest, so that scores
        that differ only by rounding errors tie (and the distance decides)."""
        scale = float(np.abs(self.scores).max()) or 1.0
        return np.round(np.asarray(values, np.float64) / scale, 9)


@dataclass(eq=False)
class Exploration:
    """Everything :func:`explore` computes before drawing the page.

    Attributes
    ----------
    table : ObjectFeatures
        The objects as read.
    reference : ndarray of bool, shape (N,)
        The objects the scaler and the novelty model are fitted on: the controls, or all
        objects when there are fewer than :data:`MIN_CONTROLS` control objects.
    scaled : ndarray, shape (N, F)
        Standardised features.
    novelty : Novelty
        Scores and threshold.
    positions : list of dict
        One per position, strongest novelty first (see :func:`rank_positions`).
    pca : ndarray, shape (N, 2)
        First two principal components of ``scaled``.
    pca_variance : tuple of float
        Fraction of the variance they explain.
    tsne : ndarray or None, shape (M, 2)
        t-SNE map of the objects ``tsne_index`` (``None`` with ``method="none"``).
    tsne_index : ndarray or None, shape (M,)
        Which objects the t-SNE map shows (all of them up to :data:`MAX_TSNE`).
    clusters : ndarray of int, shape (N,)
        k-means cluster of every object, numbered by size (0 = the largest).
    """

    table: ObjectFeatures
    reference: np.ndarray
    scaled: np.ndarray
    novelty: Novelty
    positions: list[dict[str, Any]]
    pca: np.ndarray
    pca_variance: tuple[float, float]
    tsne: np.ndarray | None
    tsne_index: np.ndarray | None
    clusters: np.ndarray

    @property
    def uses_controls(self) -> bool:
        """Whether the reference is the control objects (not all objects)."""
        return bool(self.table.is_control.any()) and bool(
            np.array_equal(self.reference, self.table.is_control)
        )


def reference_objects(is_control: np.ndarray) -> np.ndarray:
    """The objects to compare against: the controls when there are at least
    :data:`MIN_CONTROLS`, else all objects."""
    is_control = np.asarray(is_control, bool)
    if int(is_control.sum()) >= MIN_CONTROLS:
        return is_control.copy()
    return np.ones_like(is_control)


def standardise(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Subtract the reference objects' mean and divide by their standard deviation.

    Features that do not vary among the reference objects are only centred.
    """
    rows = features[reference].astype(np.float64)
    mean = rows.mean(axis=0)
    spread = rows.std(axis=0)
    spread[~(spread > 1e-12)] = 1.0
    return ((features - mean) / spread).astype(np.float32)


def novelty_scores(scaled: np.ndarray, reference: np.ndarray, *, seed: int = 0) -> Novelty:
    """Score how unlike the reference objects every object is.

    A one-class SVM (RBF kernel, ``nu`` = :data:`NOVELTY_NU`, ``gamma="scale"``) is fitted
    on the reference objects; the score is minus its decision function. With at least
    :data:`MIN_HELD_OUT` reference objects, a random half of them (seeded) is held out of
    the fit and their scores set the threshold, so the threshold is what unseen control
    cells score; an object above it is *novel*, which by construction is true for about
    5 % of control cells.
    """
    # A one-class SVM rather than a robust Mahalanobis distance: it is what CellCognition
    # Explorer uses; it makes no Gaussian assumption (control cells are a mixture: cell
    # cycle phases, debris, mitoses); and it needs no covariance estimate, which fails when
    # there are fewer control cells than features.
    from sklearn.svm import OneClassSVM

    order = np.random.default_rng(seed).permutation(np.flatnonzero(reference))
    if len(order) >= MIN_HELD_OUT:
        half = len(order) // 2
        fit, held_out = order[:half], order[half:]
    else:
        fit, held_out = order, order[:0]
    fit = np.sort(fit[:MAX_FIT])
    model = OneClassSVM(nu=NOVELTY_NU, gamma="scale").fit(scaled[fit])
    scores = -model.decision_function(scaled).astype(np.float64)
    calibration = held_out if len(held_out) else fit
    threshold = float(np.percentile(scores[calibration], NOVELTY_PERCENTILE))
    distance = np.sqrt(np.mean(np.square(scaled, dtype=np.float64), axis=1))
    return Novelty(scores, threshold, len(fit), len(held_out), distance)


def rank_positions(table: ObjectFeatures, novelty: Novelty) -> list[dict[str, Any]]:
    """One dict per position, the most novel first.

    Positions are ranked by the fraction of their objects above the novelty threshold,
    then by their mean novelty score, then by their mean distance from the reference.
    Each dict holds ``rank``, ``position``, ``plate``, ``well``, ``site``, ``gene``,
    ``group``, ``is_control`` (any object of it is a control), ``n_objects``,
    ``mean_novelty``, ``fraction_novel`` and ``mean_distance``.
    """
    members: dict[str, list[int]] = {}
    for index, name in enumerate(table.positions):
        members.setdefault(name, []).append(index)
    novel = novelty.novel
    rows = []
    for name, indices in members.items():
        first = indices[0]
        rows.append(
            {
                "position": name,
                "plate": table.plates[first],
                "well": table.wells[first],
                "site": table.sites[first],
                "gene": table.genes[first],
                "group": table.groups[first],
                "is_control": bool(table.is_control[indices].any()),
                "n_objects": len(indices),
                "mean_novelty": float(novelty.scores[indices].mean()),
                "fraction_novel": float(novel[indices].mean()),
                "mean_distance": float(novelty.distance[indices].mean()),
            }
        )
    rows.sort(
        key=lambda row: (
            -row["fraction_novel"],
            -float(novelty.tie_key(row["mean_novelty"])),
            -row["mean_distance"],
            row["position"],
        )
    )
    return [{"rank": rank, **row} for rank, row in enumerate(rows, 1)]


def pca_map(scaled: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The first two principal components and the fraction of variance each explains
    (a single feature gives a second coordinate of zero)."""
    from sklearn.decomposition import PCA

    count = min(2, *scaled.shape)
    pca = PCA(n_components=count).fit(scaled)
    coords = np.zeros((len(scaled), 2))
    coords[:, :count] = pca.transform(scaled)
    ratios = [float(v) for v in np.nan_to_num(pca.explained_variance_ratio_)] + [0.0] * 2
    return coords, (ratios[0], ratios[1])


def tsne_map(scaled: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded t-SNE map of at most :data:`MAX_TSNE` objects (a random subsample beyond
    that) and the indices of the objects it shows. Perplexity is min(30, (M − 1) / 3); up
    to 100 objects the exact gradient is used, beyond that the Barnes-Hut approximation."""
    from sklearn.manifold import TSNE

    n = len(scaled)
    index = np.arange(n)
    if n > MAX_TSNE:
        index = np.sort(np.random.default_rng(seed).choice(n, MAX_TSNE, replace=False))
    data = scaled[index].astype(np.float64)
    if data.shape[1] > 50:  # the usual first step: t-SNE on the first 50 components
        from sklearn.decomposition import PCA

        data = PCA(n_components=50, random_state=seed).fit_transform(data)
    perplexity = min(30.0, (len(index) - 1) / 3)
    model = TSNE(
        perplexity=perplexity,
        init="pca" if data.shape[1] >= 2 else "random",
        # Barnes-Hut pays off only for many objects; for a few, the exact gradient is cheap.
        method="exact" if len(index) <= _EXACT_TSNE else "barnes_hut",
        random_state=seed,
    )
    return model.fit_transform(data), index


def kmeans_clusters(scaled: np.ndarray, n_clusters: int, *, seed: int = 0) -> np.ndarray:
    """k-means clusters (k = min(``n_clusters``, N), 4 seeded starts), numbered by size:
    cluster 0 is the largest."""
    from sklearn.cluster import KMeans

    k = int(min(n_clusters, len(scaled)))
    with warnings.catch_warnings():  # fewer distinct points than clusters is not an error
        warnings.simplefilter("ignore")
        labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(scaled)
    counts = np.bincount(labels, minlength=k)
    order = np.argsort(-counts, kind="stable")
    renumber = np.empty(k, np.int64)
    renumber[order] = np.arange(k)
    return renumber[labels]


def cluster_rows(exploration: Exploration, top: int = 3) -> list[dict[str, Any]]:
    """One dict per cluster: ``cluster``, ``n_objects``, ``fraction_control``,
    ``mean_novelty``, ``fraction_novel`` and ``top_positions`` (the positions with the
    most objects in it, as ``(position, count)``)."""
    rows = []
    novel = exploration.novelty.novel
    for cluster in range(int(exploration.clusters.max()) + 1):
        members = np.flatnonzero(exploration.clusters == cluster)
        if not len(members):
            continue
        counts = Counter(exploration.table.positions[i] for i in members)
        rows.append(
            {
                "cluster": cluster,
                "n_objects": len(members),
                "fraction_control": float(exploration.table.is_control[members].mean()),
                "mean_novelty": float(exploration.novelty.scores[members].mean()),
                "fraction_novel": float(novel[members].mean()),
                "top_positions": counts.most_common(top),
            }
        )
    return rows


def cluster_examples(exploration: Exploration, cluster: int, count: int) -> np.ndarray:
    """The ``count`` objects of a cluster nearest its centre (in standardised features)."""
    members = np.flatnonzero(exploration.clusters == cluster)
    centre = exploration.scaled[members].mean(axis=0)
    distance = ((exploration.scaled[members] - centre) ** 2).sum(axis=1)
    return members[np.argsort(distance, kind="stable")[:count]]


def most_novel(exploration: Exploration, count: int) -> np.ndarray:
    """Indices of the ``count`` objects with the highest novelty scores, highest first
    (equal scores: the farthest from the reference first)."""
    novelty = exploration.novelty
    return np.lexsort((-novelty.distance, -novelty.tie_key(novelty.scores)))[:count]


def _check_features(table: ObjectFeatures, source: str) -> None:
    if table.n_objects < 3:
        raise InputError(
            f"{source} holds {table.n_objects} object(s); explore needs at least 3: encode "
            "more images or positions"
        )
    if table.n_features == 0:
        raise InputError(f"{source} has no features; write it with 'deepscope encode'")
    bad = int((~np.isfinite(table.features).all(axis=1)).sum())
    if bad:
        raise InputError(
            f"{source}: {bad} object(s) have NaN or infinite features; re-encode them or "
            "leave those objects out"
        )


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_settings(n_clusters: int, method: str, max_gallery: int = 0) -> None:
    if method not in ("tsne", "none"):
        hint = " (UMAP is not installed)" if str(method).lower() == "umap" else ""
        raise ConfigError(f"unknown method {method!r}{hint}; use 'tsne' or 'none'")
    if not _whole(n_clusters) or n_clusters < 1:
        raise ConfigError(f"n_clusters is {n_clusters!r}; give a whole number of at least 1")
    if not _whole(max_gallery) or max_gallery < 0:
        raise ConfigError(f"max_gallery is {max_gallery!r}; give a whole number, 0 or more")


def analyse(
    table: ObjectFeatures,
    *,
    n_clusters: int = 8,
    method: str = "tsne",
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> Exploration:
    """Compute everything :func:`explore` shows, without drawing: standardised features,
    novelty, the position ranking, maps and clusters. Arguments as for :func:`explore`.

    Raises
    ------
    InputError
        If the table has fewer than 3 objects, no features or non-finite ones.
    ConfigError
        If ``method`` or ``n_clusters`` is invalid.
    """
    _check_settings(n_clusters, method)
    _check_features(table, "the table")
    step = _stepper(progress)
    reference = reference_objects(table.is_control)
    scaled = standardise(table.features, reference)
    step("novelty")
    novelty = novelty_scores(scaled, reference, seed=seed)
    positions = rank_positions(table, novelty)
    step("PCA")
    pca, variance = pca_map(scaled)
    tsne = tsne_index = None
    if method == "tsne":
        step("t-SNE")
        tsne, tsne_index = tsne_map(scaled, seed=seed)
    step("clusters")
    clusters = kmeans_clusters(scaled, n_clusters, seed=seed)
    return Exploration(
        table, reference, scaled, novelty, positions, pca, variance, tsne, tsne_index, clusters
    )


def _stepper(progress: ProgressCallback | None, start: int = 1):
    done = [start]

    def step(message: str) -> None:
        done[0] += 1
        report(progress, Progress("explore", min(done[0], _STEPS), _STEPS, message=message))

    return step


# ----------------------------------------------------------------------------- figures


def _categories(table: ObjectFeatures) -> tuple[list[str], np.ndarray]:
    """Category per object for the group colouring: 'control', else the object's group
    (or 'treated' without one); beyond :data:`_MAX_GROUPS` groups, 'other'."""
    names = [
        _CONTROL if control else (group or "treated")
        for control, group in zip(table.is_control, table.groups)
    ]
    others = [name for name, _ in Counter(n for n in names if n != _CONTROL).most_common()]
    if len(others) > _MAX_GROUPS:
        keep = set(others[: _MAX_GROUPS - 1])
        names = [n if n == _CONTROL or n in keep else "other" for n in names]
        others = [*others[: _MAX_GROUPS - 1], "other"]
    order = ([_CONTROL] if _CONTROL in names else []) + sorted(
        others, key=lambda n: (n == "other", n)
    )
    codes = np.array([order.index(n) for n in names])
    return order, codes


def _marker_size(n: int) -> float:
    return float(np.clip(3000 / max(n, 1), 1.0, 14.0))


def _scatter_panels(coords: np.ndarray, index: np.ndarray, exploration: Exploration, title: str):
    """Three maps side by side: coloured by group, by cluster and by novelty."""
    from matplotlib import colormaps

    figure = new_figure(15, 4.9)
    axes = figure.subplots(1, 3)
    size = _marker_size(len(index))
    names, codes = _categories(exploration.table)
    codes = codes[index]
    ax = axes[0]
    for code, name in enumerate(names):  # controls first, underneath
        shown = codes == code
        colour = _CONTROL_COLOUR if name == _CONTROL else _PALETTE[(code - 1) % len(_PALETTE)]
        ax.scatter(
            *coords[shown].T,
            s=size,
            c=colour,
            label=f"{name} ({shown.sum()})",
            linewidths=0,
            alpha=0.8,
        )
    ax.legend(fontsize=7, markerscale=max(1.0, 4 / math.sqrt(size)), loc="best")
    ax.set_title(f"{title}: group")
    clusters = exploration.clusters[index]
    k = int(exploration.clusters.max()) + 1
    palette = colormaps["tab20" if k > 10 else "tab10"]
    ax = axes[1]
    for cluster in range(k):
        shown = clusters == cluster
        ax.scatter(
            *coords[shown].T,
            s=size,
            color=palette(cluster % palette.N),
            label=str(cluster),
            linewidths=0,
            alpha=0.8,
        )
    ax.legend(
        fontsize=7,
        ncols=2,
        title="cluster",
        title_fontsize=7,
        markerscale=max(1.0, 4 / math.sqrt(size)),
    )
    ax.set_title(f"{title}: k-means cluster")
    ax = axes[2]
    scores = exploration.novelty.scores[index]
    order = np.argsort(scores, kind="stable")  # the most novel on top
    shown = ax.scatter(*coords[order].T, s=size, c=scores[order], cmap="viridis", linewidths=0)
    bar = figure.colorbar(shown, ax=ax, shrink=0.85)
    bar.set_label("novelty score", fontsize=8)
    bar.ax.axhline(exploration.novelty.threshold, color="#d62728", linewidth=1.5)
    ax.set_title(f"{title}: novelty (red line on the bar: threshold)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return figure


def _scatter_uri(coords: np.ndarray, index: np.ndarray, exploration: Exploration, title: str):
    return data_uri(_scatter_panels(coords, index, exploration, title))


def _channel_weights(channels: int) -> np.ndarray:
    """RGB weight of each shown channel: grey for one; green and magenta for two; red,
    green and blue for the first three of more."""
    if channels == 1:
        return np.array([[1.0, 1.0, 1.0]])
    if channels == 2:
        return np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    return np.eye(3)


def channel_limits(gallery: np.ndarray, *, seed: int = 0, sample: int = 500) -> np.ndarray:
    """Display range (0.5th and 99.8th percentile) of each of the first three channels,
    over the crops of the file (a random sample of ``sample`` crops): shape (channels, 2)."""
    shown = min(gallery.shape[1], 3)
    n = len(gallery)
    picked = np.arange(n)
    if n > sample:
        picked = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
    limits = np.zeros((shown, 2))
    for channel in range(shown):
        values = gallery[picked, channel].astype(np.float64)
        low, high = np.percentile(values, [0.5, 99.8]) if values.size else (0.0, 1.0)
        limits[channel] = (low, high if high > low else low + 1.0)
    return limits


def composite(crop: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """An RGB picture (S, S, 3) in 0..1 of a channel-first crop, its first channels
    stretched to ``limits`` and mixed with :func:`_channel_weights`."""
    weights = _channel_weights(len(limits))
    rgb = np.zeros((*crop.shape[1:], 3))
    for channel, (low, high) in enumerate(limits):
        stretched = np.clip((crop[channel].astype(np.float64) - low) / (high - low), 0, 1)
        rgb += stretched[..., None] * weights[channel]
    return np.clip(rgb, 0, 1)


def _short(text: str, size: int = 20) -> str:
    return text if len(text) <= size else "…" + text[-(size - 1) :]


def _gallery_uri(
    table: ObjectFeatures, indices: Sequence[int], limits: np.ndarray, captions: list[str]
) -> str:
    """One PNG of crops in a grid (6 per row), each with its outline and a caption."""
    count = len(indices)
    size = table.gallery.shape[-1]
    columns = min(count, 6)
    rows = math.ceil(count / columns)
    gap, band = max(2, size // 16), max(3, math.ceil(0.3 * size))
    cell_w, cell_h = size + gap, size + band + gap
    mosaic = np.ones((rows * cell_h + gap, columns * cell_w + gap, 3))
    figure = new_figure(
        columns * _TILE_INCHES,
        columns * _TILE_INCHES * len(mosaic) / len(mosaic[0]),
        constrained=False,
    )
    ax = figure.add_axes((0, 0, 1, 1))
    fontsize = 6.5
    for slot, index in enumerate(indices):
        top = gap + (slot // columns) * cell_h
        left = gap + (slot % columns) * cell_w
        mosaic[top : top + size, left : left + size] = composite(table.gallery[index], limits)
        if table.contours and len(table.contours[index]):
            points = table.contours[index]
            ax.plot(points[:, 0] + left, points[:, 1] + top, color="#ffd700", linewidth=0.7)
        ax.text(
            left + size / 2,
            top + size + 1,
            captions[slot],
            ha="center",
            va="top",
            fontsize=fontsize,
            parse_math=False,
        )
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_xlim(-0.5, mosaic.shape[1] - 0.5)
    ax.set_ylim(mosaic.shape[0] - 0.5, -0.5)
    ax.set_axis_off()
    return data_uri(figure)


# ----------------------------------------------------------------------------- the page


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _reference_note(exploration: Exploration) -> str:
    table = exploration.table
    n_controls = int(table.is_control.sum())
    novelty = exploration.novelty
    if exploration.uses_controls:
        what = f"the {n_controls} negative-control objects"
    elif n_controls:
        what = (
            f"all {table.n_objects} objects, because there are only {n_controls} control "
            f"object(s) (at least {MIN_CONTROLS} are needed)"
        )
    else:
        what = (
            f"all {table.n_objects} objects, because the file marks no object as a negative "
            "control: novelty here means unusual within this file, not unlike controls"
        )
    if novelty.n_held_out:
        calibration = (
            f"fitted on {novelty.n_fit} of them (a random half) and the threshold set from "
            f"the scores of the other {novelty.n_held_out}, which the model has not seen"
        )
    else:
        calibration = (
            f"fitted on all {novelty.n_fit} of them and the threshold set from their own "
            f"scores (fewer than {MIN_HELD_OUT}), which makes other objects look a little "
            "more novel than they are"
        )
    return (
        f"<p class='verdict'>Features are standardised and the novelty model is fitted on "
        f"{html.escape(what)}; the model was {calibration}.</p>"
    )


def _summary(exploration: Exploration, path: Path, n_clusters: int, method: str) -> str:
    table = exploration.table
    names = table.feature_names
    shown = ", ".join(html.escape(n) for n in names[:6]) + (" …" if len(names) > 6 else "")
    control_positions = sum(1 for row in exploration.positions if row["is_control"])
    items = {
        "objects": str(table.n_objects),
        "positions": str(len(exploration.positions)),
        "control objects": str(int(table.is_control.sum())),
        "control positions": str(control_positions),
        "features": f"{table.n_features} ({shown})",
        "channels": ", ".join(html.escape(c) for c in table.channel_names),
        "crop size": f"{table.gallery.shape[-1]} px",
        "clusters": str(n_clusters),
        "map": "PCA and t-SNE" if method == "tsne" else "PCA",
        "novelty threshold": f"{exploration.novelty.threshold:.3g}",
        "novel objects": _percent(float(exploration.novelty.novel.mean())),
    }
    rows = "".join(f"<tr><th>{key}</th><td>{value}</td></tr>" for key, value in items.items())
    return (
        f"<p class='meta'>File <code>{html.escape(str(path))}</code></p>"
        f"<table>{rows}</table>{_reference_note(exploration)}"
    )


def _positions_table(positions: list[dict[str, Any]], threshold: float) -> str:
    head = (
        "<tr><th>rank</th><th>position</th><th>gene</th><th>group</th><th>objects</th>"
        "<th>mean novelty</th><th>fraction novel</th><th>mean distance (SD)</th></tr>"
    )
    body = []
    for row in positions:
        flag = " class='novel'" if row["fraction_novel"] > 2 * NOVELTY_NU else ""
        control = " (control)" if row["is_control"] and row["group"] != _CONTROL else ""
        body.append(
            f"<tr><td>{row['rank']}</td><td>{html.escape(row['position'])}</td>"
            f"<td>{html.escape(row['gene'])}</td>"
            f"<td>{html.escape(row['group'])}{control}</td><td>{row['n_objects']}</td>"
            f"<td>{row['mean_novelty']:.3g}</td>"
            f"<td{flag}>{_percent(row['fraction_novel'])}</td>"
            f"<td>{row['mean_distance']:.3g}</td></tr>"
        )
    return (
        "<h2>Positions ranked by novelty</h2><p class='note'>Fraction novel: objects whose "
        f"novelty score exceeds the threshold {threshold:.3g}; about "
        f"{_percent(1 - NOVELTY_PERCENTILE / 100)} of control cells do by construction. "
        "Positions are ranked by it, then by their mean novelty score, then by their mean "
        "distance from the controls' mean (root-mean-square over the standardised features, "
        "in standard deviations); fractions above twice that are highlighted. Positions "
        "with few objects have uncertain fractions.</p>"
        f"<table class='rank'>{head}{''.join(body)}</table>"
    )


def _maps_section(exploration: Exploration, method: str) -> str:
    n = exploration.table.n_objects
    a, b = exploration.pca_variance
    uri = _scatter_uri(exploration.pca, np.arange(n), exploration, "PCA")
    parts = [
        "<h2>Maps</h2>",
        f'<figure><img src="{uri}" alt="PCA maps">'
        f"<figcaption>First two principal components of the standardised features "
        f"({_percent(a)} and {_percent(b)} of the variance), coloured by group, by k-means "
        "cluster and by novelty score.</figcaption></figure>",
    ]
    if exploration.tsne is not None and exploration.tsne_index is not None:
        m = len(exploration.tsne_index)
        sample = (
            f" t-SNE shows a random subsample of {m} of the {n} objects (at most {MAX_TSNE})."
            if m < n
            else ""
        )
        uri = _scatter_uri(exploration.tsne, exploration.tsne_index, exploration, "t-SNE")
        parts.append(
            f'<figure><img src="{uri}" alt="t-SNE maps"><figcaption>t-SNE map of the '
            f"standardised features (perplexity {min(30.0, (m - 1) / 3):.3g}); distances "
            f"between far-apart groups mean little, neighbourhoods do.{sample}</figcaption>"
            "</figure>"
        )
    else:
        parts.append(f"<p class='note'>No t-SNE map (method {html.escape(repr(method))}).</p>")
    return "".join(parts)


def _channel_note(table: ObjectFeatures) -> str:
    names = table.channel_names[:3]
    colours = {1: ["grey"], 2: ["green", "magenta"]}.get(len(names), ["red", "green", "blue"])
    mapping = ", ".join(f"{html.escape(n)} {c}" for n, c in zip(names, colours))
    outline = "; outlines in yellow" if table.contours else ""
    return (
        f"Crops: {mapping}, each channel stretched from its 0.5th to 99.8th percentile over "
        f"the file's crops{outline}."
    )


def _clusters_section(
    exploration: Exploration, limits: np.ndarray, max_gallery: int
) -> tuple[str, list[dict[str, Any]]]:
    table = exploration.table
    rows = cluster_rows(exploration)
    parts = [
        "<h2>Clusters</h2><p class='note'>k-means on the standardised features, clusters "
        "numbered by size. "
        + (
            f"Examples: the {max_gallery} objects nearest each cluster's centre. "
            if max_gallery
            else ""
        )
        + _channel_note(table)
        + "</p>"
    ]
    head = (
        "<tr><th>cluster</th><th>objects</th><th>controls</th><th>mean novelty</th>"
        "<th>fraction novel</th><th>most objects from</th></tr>"
    )
    body = "".join(
        f"<tr><td><a href='#cluster-{row['cluster']}'>{row['cluster']}</a></td>"
        f"<td>{row['n_objects']}</td><td>{_percent(row['fraction_control'])}</td>"
        f"<td>{row['mean_novelty']:.3g}</td><td>{_percent(row['fraction_novel'])}</td><td>"
        + ", ".join(f"{html.escape(p)} ({c})" for p, c in row["top_positions"])
        + "</td></tr>"
        for row in rows
    )
    parts.append(f"<table>{head}{body}</table>")
    if max_gallery:
        for row in rows:
            examples = cluster_examples(exploration, row["cluster"], max_gallery)
            captions = [f"{_short(table.positions[i])}\n#{table.labels[i]}" for i in examples]
            uri = _gallery_uri(table, examples, limits, captions)
            parts.append(
                f'<figure id="cluster-{row["cluster"]}"><img src="{uri}" '
                f'alt="cluster {row["cluster"]}"><figcaption>Cluster {row["cluster"]}: '
                f"{row['n_objects']} objects, {_percent(row['fraction_control'])} controls."
                "</figcaption></figure>"
            )
    return "".join(parts), rows


def _object_rows(exploration: Exploration, indices: np.ndarray) -> list[dict[str, Any]]:
    table = exploration.table
    return [
        {
            "rank": rank,
            "index": int(i),
            "position": table.positions[i],
            "gene": table.genes[i],
            "label": int(table.labels[i]),
            "x": int(table.centers[i, 0]),
            "y": int(table.centers[i, 1]),
            "novelty": float(exploration.novelty.scores[i]),
            "distance": float(exploration.novelty.distance[i]),
            "cluster": int(exploration.clusters[i]),
        }
        for rank, i in enumerate(indices, 1)
    ]


def _novel_section(exploration: Exploration, limits: np.ndarray, max_gallery: int) -> str:
    if not max_gallery:
        return ""
    table = exploration.table
    indices = most_novel(exploration, max_gallery)
    captions = [
        f"{_short(table.positions[i])}\n#{table.labels[i]} · {exploration.novelty.scores[i]:.2f}"
        for i in indices
    ]
    uri = _gallery_uri(table, indices, limits, captions)
    head = (
        "<tr><th>rank</th><th>position</th><th>gene</th><th>label</th><th>x</th><th>y</th>"
        "<th>novelty</th><th>distance (SD)</th><th>cluster</th></tr>"
    )
    body = "".join(
        f"<tr><td>{row['rank']}</td><td>{html.escape(row['position'])}</td>"
        f"<td>{html.escape(row['gene'])}</td><td>{row['label']}</td><td>{row['x']}</td>"
        f"<td>{row['y']}</td><td>{row['novelty']:.3g}</td>"
        f"<td>{row['distance']:.3g}</td><td>{row['cluster']}</td></tr>"
        for row in _object_rows(exploration, indices)
    )
    return (
        "<h2>Most novel objects</h2>"
        f'<figure><img src="{uri}" alt="most novel objects"><figcaption>'
        f"The {len(indices)} objects with the highest novelty scores (position, label and "
        "score under each). "
        f"{_channel_note(table)}</figcaption></figure>"
        f"<table class='rank'>{head}{body}</table>"
    )


_METHOD_NOTE = (
    "<h2>How novelty is computed</h2><p class='note'>Following CellCognition Explorer "
    "(Sommer et al. 2017), cells are compared with a one-class model of the negative "
    "controls. Every feature is standardised with the mean and standard deviation of the "
    "control objects; a one-class support vector machine (RBF kernel, "
    f"ν = {NOVELTY_NU}, γ = 1 / (features × variance)) learns the region of feature space "
    "where control cells lie. An object's novelty score is minus the model's decision "
    "function: negative inside the control region, positive outside, larger further away. "
    f"The threshold is the {NOVELTY_PERCENTILE:g}th percentile of the scores of control "
    "objects the model was not fitted on, so about 5 % of control cells count as novel; a "
    "position whose fraction of novel objects is well above that holds cells unlike the "
    "controls. Far from the controls the score levels off (the kernel vanishes), so very "
    "different cells score alike; the distance column, which does not level off, orders "
    "them. The score ranks objects, its units mean nothing on their own, and it depends on "
    "the features: a perturbation the features do not see is not found.</p>"
)


def _document(
    exploration: Exploration, path: Path, n_clusters: int, method: str, max_gallery: int
) -> tuple[str, list[dict[str, Any]]]:
    from deepscope import __version__

    limits = channel_limits(exploration.table.gallery)
    clusters_html, clusters = _clusters_section(exploration, limits, max_gallery)
    when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    body = [
        f"<h1>Explore: {html.escape(path.name)}</h1>",
        f"<p class='meta'>Made {html.escape(when)} by deepscope {html.escape(__version__)}.</p>",
        _summary(exploration, path, n_clusters, method),
        _positions_table(exploration.positions, exploration.novelty.threshold),
        _maps_section(exploration, method),
        clusters_html,
        _novel_section(exploration, limits, max_gallery),
        _METHOD_NOTE,
    ]
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Explore: {html.escape(path.name)}</title>"
        f"<style>{CSS}{_EXTRA_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    return document, clusters


# ----------------------------------------------------------------------------- entry point


def _check_out(out: Path) -> None:
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(
            f"the explore page is one HTML file: give a name ending in .html, not '{out.name}'"
        )
    check_output_file(out, "--out")


def explore(
    features_path: str | os.PathLike[str],
    out_html: str | os.PathLike[str],
    *,
    n_clusters: int = 8,
    method: str = "tsne",
    seed: int = 0,
    max_gallery: int = 12,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Compare cell objects with negative controls and write one self-contained HTML page.

    The page shows a summary, the positions ranked by novelty, PCA (and t-SNE) maps
    coloured by group, cluster and novelty, a gallery of example crops per k-means cluster
    and a gallery of the most novel objects. See :func:`analyse` and
    :func:`novelty_scores` for the numbers.

    Parameters
    ----------
    features_path : str or Path
        A features file (``.hdf``) written by
        :func:`~deepscope.io.feature_hdf.write_feature_hdf`.
    out_html : str or Path
        The page, ending in ``.html``; written atomically (missing folders are created).
    n_clusters : int
        Number of k-means clusters (at most the number of objects).
    method : {"tsne", "none"}
        Map drawn besides PCA: t-SNE (of at most :data:`MAX_TSNE` objects) or none.
    seed : int
        Seed of every random choice (held-out controls, subsample, t-SNE, k-means).
    max_gallery : int
        Crops shown per cluster and in the gallery of the most novel objects (0: none).
    progress : callable, optional
        Receives :class:`~deepscope.progress.Progress` events of stage ``"explore"``.

    Returns
    -------
    dict
        ``html`` and ``features_file`` (paths), ``n_objects``, ``n_positions``,
        ``n_controls`` (control objects), ``n_control_positions``, ``n_features``,
        ``reference`` (``"controls"`` or ``"all objects"``), ``n_fit``, ``n_held_out``,
        ``threshold``, ``fraction_novel`` (all objects), ``n_clusters``, ``n_tsne``
        (objects on the t-SNE map, 0 without), ``pca_variance``, ``positions`` (see
        :func:`rank_positions`), ``clusters`` (see :func:`cluster_rows`) and
        ``most_novel`` (the 20 or ``max_gallery`` most novel objects: ``rank``, ``index``,
        ``position``, ``gene``, ``label``, ``x``, ``y``, ``novelty``, ``cluster``).

    Raises
    ------
    ConfigError
        If ``out_html`` does not end in ``.html`` or a setting is invalid.
    InputError
        If the file is not a features file, holds fewer than 3 objects, has no features or
        non-finite ones.

    Examples
    --------
    >>> result = explore("features.hdf", "explore.html")  # doctest: +SKIP
    >>> result["positions"][0]["position"], result["positions"][0]["fraction_novel"]
    ('plate1/C03/1', 0.87)
    """
    path = Path(features_path)
    out = Path(out_html)
    _check_out(out)
    _check_settings(n_clusters, method, max_gallery)
    report(progress, Progress("explore", 0, _STEPS, message="reading"))
    table = read_feature_hdf(path)
    _check_features(table, f"features file '{path}'")
    report(progress, Progress("explore", 1, _STEPS, message="standardising"))
    exploration = analyse(table, n_clusters=n_clusters, method=method, seed=seed, progress=progress)
    report(progress, Progress("explore", _STEPS - 1, _STEPS, message="drawing"))
    document, clusters = _document(exploration, path, n_clusters, method, max_gallery)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as temporary:
        temporary.write_text(document, encoding="utf-8")
    report(progress, Progress("explore", _STEPS, _STEPS, message="done"))
    novelty = exploration.novelty
    return {
        "html": str(out),
        "features_file": str(path),
        "n_objects": table.n_objects,
        "n_positions": len(exploration.positions),
        "n_controls": int(table.is_control.sum()),
        "n_control_positions": sum(1 for row in exploration.positions if row["is_control"]),
        "n_features": table.n_features,
        "reference": "controls" if exploration.uses_controls else "all objects",
        "n_fit": novelty.n_fit,
        "n_held_out": novelty.n_held_out,
        "threshold": novelty.threshold,
        "fraction_novel": float(novelty.novel.mean()),
        "n_clusters": len(clusters),
        "n_tsne": 0 if exploration.tsne_index is None else len(exploration.tsne_index),
        "pca_variance": list(exploration.pca_variance),
        "positions": exploration.positions,
        "clusters": clusters,
        "most_novel": _object_rows(exploration, most_novel(exploration, max(max_gallery, 20))),
    }
