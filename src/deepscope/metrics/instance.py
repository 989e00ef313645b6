"""Instance segmentation metrics: one-to-one object matching by IoU.

The matching follows the convention of StarDist (``stardist.matching``) and Cellpose
(``cellpose.metrics``), so that numbers can be compared with published ones:

* An object is the set of all pixels sharing a non-zero label (it is not split into connected
  components); 0 is background. Labels need not be consecutive.
* For a threshold ``t``, a ground-truth object and a predicted object may be paired only if
  their IoU is at least ``t``. Among the allowed pairs, a one-to-one assignment is chosen with
  the Hungarian algorithm (:func:`scipy.optimize.linear_sum_assignment`) that first maximises
  the number of pairs and, among those, the sum of the IoUs of the pairs. For ``t >= 0.5`` an
  object can overlap at most one other object by more than half, so the matching is unique;
  the Hungarian step only matters for lower thresholds.
* Matched pairs are true positives (TP), unmatched predictions false positives (FP) and
  unmatched ground-truth objects false negatives (FN).

Scores derived from the counts (see :func:`scores`)::

    precision        = TP / (TP + FP)
    recall           = TP / (TP + FN)
    f1               = 2 TP / (2 TP + FP + FN)
    ap               = TP / (TP + FP + FN)   # StarDist/Cellpose "average precision"/"accuracy"
    mean_matched_iou = sum of matched IoUs / TP
    panoptic_quality = sum of matched IoUs / (TP + FP / 2 + FN / 2)
                     = mean_matched_iou * f1

Division by zero. When there are no objects at all (no ground truth and no prediction) the
empty prediction is perfect and every score is 1.0. Otherwise a ratio whose denominator is 0
is 0.0: precision when nothing is predicted, recall when there is no ground truth, and
mean_matched_iou when there is no match. With these rules ``panoptic_quality ==
mean_matched_iou * f1`` always holds and no score is ever NaN (the reports are JSON-safe).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from deepscope.errors import InputError
from deepscope.metrics.pixel import _as_label_array, _check_same_shape

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ERROR_KINDS",
    "SCORE_NAMES",
    "InstanceReport",
    "MatchCounts",
    "error_kinds",
    "evaluate_instances",
    "iou_matrix",
    "match_counts",
    "scores",
]

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
"""IoU thresholds used by default (those of the StarDist and Cellpose papers)."""

SCORE_NAMES: tuple[str, ...] = (
    "precision",
    "recall",
    "f1",
    "ap",
    "mean_matched_iou",
    "panoptic_quality",
)
"""Names of the scores returned by :func:`scores`, in order."""

ERROR_KINDS: tuple[str, ...] = (
    "fn_missed",
    "fn_merged",
    "fn_misshaped",
    "fp_spurious",
    "fp_split",
    "fp_misshaped",
)
"""Kinds of unmatched object that :func:`error_kinds` tells apart, in order."""

# Above this many (gt, pred) cells, overlaps are counted with np.unique instead of a dense
# np.bincount, so that memory stays bounded for images with very many objects.
_DENSE_PAIR_LIMIT = 1 << 23


# --------------------------------------------------------------------------- counting overlaps


def _sequential(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel a label image to ``0, 1, ..., n`` (order of the original labels is kept).

    Returns the flattened relabelled image (``intp``) and the pixel count of each object
    (``areas[k]`` is the area of new label ``k + 1``).
    """
    flat = labels.ravel()
    if flat.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64)
    top = int(flat.max())
    if top <= 4 * flat.size + 65536:
        # Small label values: a lookup table is faster than sorting.
        counts = np.bincount(flat, minlength=1)
        ids = np.flatnonzero(counts)
        ids = ids[ids > 0]
        lut = np.zeros(top + 1, dtype=np.intp)
        lut[ids] = np.arange(1, ids.size + 1)
        return lut[flat], counts[ids].astype(np.int64)
    uniq, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1).astype(np.intp)
    if uniq[0] == 0:
        return inverse, counts[1:].astype(np.int64)
    return inverse + 1, counts.astype(np.int64)


@dataclass(frozen=True)
class _Overlaps:
    """Sparse IoU table: pair ``k`` is gt object ``rows[k]`` with pred object ``cols[k]``."""

    n_true: int
    n_pred: int
    rows: np.ndarray
    cols: np.ndarray
    iou: np.ndarray


def _overlaps(gt: np.ndarray, pred: np.ndarray) -> _Overlaps:
    """Validate a (gt, pred) pair and compute the IoU of every overlapping pair of objects."""
    gt = _as_label_array(gt, "gt")
    pred = _as_label_array(pred, "pred")
    _check_same_shape(gt, pred, "gt", "pred")
    g, area_g = _sequential(gt)
    p, area_p = _sequential(pred)
    n_g, n_p = area_g.size, area_p.size
    both = (g > 0) & (p > 0)
    # 0-based object indices of the pixels that are foreground in both images
    g_both = g[both] - 1
    p_both = p[both] - 1
    if n_g * n_p <= _DENSE_PAIR_LIMIT:
        counts = np.bincount(g_both * n_p + p_both, minlength=n_g * n_p)
        keys = np.flatnonzero(counts)
        inter = counts[keys]
    else:
        keys, inter = np.unique(g_both.astype(np.int64) * n_p + p_both, return_counts=True)
    rows = (keys // max(n_p, 1)).astype(np.intp)
    cols = (keys % max(n_p, 1)).astype(np.intp)
    inter = inter.astype(np.float64)
    iou = inter / (area_g[rows] + area_p[cols] - inter)
    return _Overlaps(n_g, n_p, rows, cols, iou)


def iou_matrix(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every (ground-truth object, predicted object) pair.

    Parameters
    ----------
    gt : np.ndarray
        Ground-truth label image (2D, 3D or any shape): 0 is background, each positive integer
        one object. Labels need not be consecutive.
    pred : np.ndarray
        Predicted label image with the same shape.

    Returns
    -------
    np.ndarray
        ``float64`` array of shape ``(n_gt, n_pred)``. Row ``i`` is the ``i``-th smallest
        non-zero label present in ``gt``, column ``j`` the ``j``-th smallest present in
        ``pred``. Background is not included.

    Raises
    ------
    InputError
        If the shapes differ, or a label image has negative or non-integer values.

    Notes
    -----
    The overlaps are counted in one pass (a single :func:`numpy.bincount` over combined
    indices), not with a loop over objects, so thousands of objects are fast. The dense
    result still needs ``8 * n_gt * n_pred`` bytes; :func:`match_counts` does not build it.

    Examples
    --------
    >>> gt = np.array([[1, 1, 0, 0]])
    >>> pred = np.array([[0, 7, 7, 0]])
    >>> iou_matrix(gt, pred)
    array([[0.33333333]])
    """
    ov = _overlaps(gt, pred)
    out = np.zeros((ov.n_true, ov.n_pred), dtype=np.float64)
    out[ov.rows, ov.cols] = ov.iou
    return out


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class MatchCounts:
    """Result of matching one image (or a pooled dataset) at one IoU threshold.

    Attributes
    ----------
    threshold : float
        The IoU threshold.
    tp, fp, fn : int
        True positives (matched pairs), false positives (unmatched predictions) and false
        negatives (unmatched ground-truth objects).
    n_true, n_pred : int
        Number of ground-truth and predicted objects (``tp + fn`` and ``tp + fp``).
    sum_matched_iou : float
        Sum of the IoUs of the matched pairs.

    The derived scores are available as properties (``precision``, ``recall``, ``f1``, ``ap``,
    ``mean_matched_iou``, ``panoptic_quality``) and as a dict via :func:`scores`.
    """

    threshold: float
    tp: int
    fp: int
    fn: int
    n_true: int
    n_pred: int
    sum_matched_iou: float

    def _ratio(self, num: float, den: float) -> float:
        if self.n_true == 0 and self.n_pred == 0:
            return 1.0
        return float(num) / den if den else 0.0

    @property
    def precision(self) -> float:
        """``tp / (tp + fp)``."""
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """``tp / (tp + fn)``."""
        return self._ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """``2 tp / (2 tp + fp + fn)``."""
        return self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def ap(self) -> float:
        """``tp / (tp + fp + fn)``, the "average precision" of StarDist and Cellpose."""
        return self._ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def mean_matched_iou(self) -> float:
        """Mean IoU of the matched pairs, ``sum_matched_iou / tp``."""
        return self._ratio(self.sum_matched_iou, self.tp)

    @property
    def panoptic_quality(self) -> float:
        """``sum_matched_iou / (tp + fp / 2 + fn / 2)``."""
        return self._ratio(self.sum_matched_iou, self.tp + 0.5 * self.fp + 0.5 * self.fn)

    def as_dict(self) -> dict[str, float | int]:
        """All counts and scores as a flat dict of plain Python numbers."""
        out: dict[str, float | int] = {
            "threshold": float(self.threshold),
            "tp": int(self.tp),
            "fp": int(self.fp),
            "fn": int(self.fn),
            "n_true": int(self.n_true),
            "n_pred": int(self.n_pred),
            "sum_matched_iou": float(self.sum_matched_iou),
        }
        out.update(scores(self))
        return out


def scores(c: MatchCounts) -> dict[str, float]:
    """Scores derived from match counts.

    Parameters
    ----------
    c : MatchCounts
        Counts of one image or of a pooled dataset.

    Returns
    -------
    dict[str, float]
        Keys ``precision``, ``recall``, ``f1``, ``ap``, ``mean_matched_iou`` and
        ``panoptic_quality`` (see the module docstring for formulas and the 0/0 rules).

    Examples
    --------
    >>> scores(MatchCounts(0.5, tp=3, fp=1, fn=0, n_true=3, n_pred=4, sum_matched_iou=2.4))["ap"]
    0.75
    """
    return {name: getattr(c, name) for name in SCORE_NAMES}


def _check_thresholds(thresholds: Sequence[float] | float) -> tuple[float, ...]:
    if isinstance(thresholds, (int, float, np.number)):
        thresholds = (thresholds,)
    try:
        out = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError):
        raise InputError(f"thresholds must be numbers in (0, 1], got {thresholds!r}.") from None
    if not out:
        raise InputError("thresholds is empty; give at least one IoU threshold in (0, 1].")
    for t in out:
        if not 0.0 < t <= 1.0:
            raise InputError(f"IoU threshold {t:g} is outside (0, 1]; use e.g. 0.5.")
    keys = [f"{t:g}" for t in out]
    if len(set(keys)) != len(keys):
        raise InputError(f"thresholds {list(out)} contain duplicates; give each one once.")
    return out


def _match(ov: _Overlaps, threshold: float) -> tuple[int, float]:
    """Number of matched pairs and sum of their IoUs at one threshold."""
    keep = ov.iou >= threshold
    rows, cols, iou = ov.rows[keep], ov.cols[keep], ov.iou[keep]
    if rows.size == 0:
        return 0, 0.0
    # A pair whose gt object and pred object have no other allowed partner is always matched;
    # this covers every pair when threshold > 0.5, without calling the solver.
    row_degree = np.bincount(rows, minlength=ov.n_true)[rows]
    col_degree = np.bincount(cols, minlength=ov.n_pred)[cols]
    alone = (row_degree == 1) & (col_degree == 1)
    tp = int(np.count_nonzero(alone))
    total = float(iou[alone].sum())
    rows, cols, iou = rows[~alone], cols[~alone], iou[~alone]
    if rows.size == 0:
        return tp, total
    # The remaining pairs form a bipartite graph; solve each connected component separately.
    n_nodes = ov.n_true + ov.n_pred
    graph = coo_matrix((np.ones(rows.size), (rows, ov.n_true + cols)), shape=(n_nodes, n_nodes))
    _, component = connected_components(graph, directed=False)
    pair_component = component[rows]
    order = np.argsort(pair_component, kind="stable")
    starts = np.flatnonzero(np.diff(pair_component[order], prepend=-1))
    for chunk in np.split(order, starts[1:]):
        r_ids, r = np.unique(rows[chunk], return_inverse=True)
        c_ids, c = np.unique(cols[chunk], return_inverse=True)
        n_max = min(r_ids.size, c_ids.size)
        # Weight 1 per pair (maximise the number of matches) plus IoU / (2 n_max) as a
        # tie-breaker: at most n_max pairs contribute at most 1/2 in total, so one more match
        # always outweighs any IoU gain. Forbidden pairs weigh 0 and are dropped afterwards.
        weight = np.zeros((r_ids.size, c_ids.size))
        weight[r, c] = 1.0 + iou[chunk] / (2.0 * n_max)
        pair_iou = np.zeros_like(weight)
        pair_iou[r, c] = iou[chunk]
        sel_r, sel_c = linear_sum_assignment(weight, maximize=True)
        ok = weight[sel_r, sel_c] > 0
        tp += int(np.count_nonzero(ok))
        total += float(pair_iou[sel_r[ok], sel_c[ok]].sum())
    return tp, total


def _counts_from_overlaps(ov: _Overlaps, thresholds: tuple[float, ...]) -> list[MatchCounts]:
    out = []
    for t in thresholds:
        tp, total = _match(ov, t)
        out.append(
            MatchCounts(
                threshold=t,
                tp=tp,
                fp=ov.n_pred - tp,
                fn=ov.n_true - tp,
                n_true=ov.n_true,
                n_pred=ov.n_pred,
                sum_matched_iou=total,
            )
        )
    return out


def match_counts(
    gt: np.ndarray,
    pred: np.ndarray,
    thresholds: Sequence[float] | float = DEFAULT_THRESHOLDS,
) -> list[MatchCounts]:
    """Match predicted objects to ground-truth objects at each IoU threshold.

    Parameters
    ----------
    gt : np.ndarray
        Ground-truth label image (0 is background; labels need not be consecutive). Integer
        dtype, or float with whole-number values; no negative labels.
    pred : np.ndarray
        Predicted label image with the same shape.
    thresholds : sequence of float or float
        IoU thresholds in ``(0, 1]``.

    Returns
    -------
    list[MatchCounts]
        One entry per threshold, in the order given.

    Raises
    ------
    InputError
        If the shapes differ, a label image is invalid, or a threshold is outside ``(0, 1]``.

    Notes
    -----
    Pairs with IoU below the threshold are never matched. Among the others the Hungarian
    algorithm picks the one-to-one assignment with the most pairs and, among those, the
    largest total IoU (the StarDist/Cellpose rule). Empty images are fine: with no
    prediction every ground-truth object is a FN, with no ground truth every prediction a FP.

    TP, FP and FN always equal StarDist's. Below 0.5, ``sum_matched_iou`` can differ slightly
    from StarDist's ``sum_matched_score``: StarDist breaks ties between assignments with the
    same number of matches using below-threshold IoUs too, whereas here only the IoUs of the
    matched pairs count.

    Examples
    --------
    >>> gt = np.array([[1, 1, 1, 1, 0, 0]])
    >>> pred = np.array([[0, 2, 2, 2, 2, 0]])   # IoU 3/5
    >>> [(c.threshold, c.tp) for c in match_counts(gt, pred, thresholds=(0.5, 0.7))]
    [(0.5, 1), (0.7, 0)]
    """
    ts = _check_thresholds(thresholds)
    return _counts_from_overlaps(_overlaps(gt, pred), ts)


# --------------------------------------------------------------------------- dataset report


def _pool(counts: Sequence[MatchCounts], threshold: float) -> MatchCounts:
    return MatchCounts(
        threshold=threshold,
        tp=sum(c.tp for c in counts),
        fp=sum(c.fp for c in counts),
        fn=sum(c.fn for c in counts),
        n_true=sum(c.n_true for c in counts),
        n_pred=sum(c.n_pred for c in counts),
        sum_matched_iou=float(sum(c.sum_matched_iou for c in counts)),
    )


def _key(metric: str, threshold: float) -> str:
    return f"{metric}@{threshold:g}"


_FLAT_METRICS = (
    "ap",
    "f1",
    "precision",
    "recall",
    "mean_matched_iou",
    "panoptic_quality",
    "tp",
    "fp",
    "fn",
)
_ROW_METRICS = ("ap", "f1", "precision", "recall", "mean_matched_iou")


@dataclass(frozen=True)
class InstanceReport:
    """Instance matching results over a dataset, pooled and per image.

    Attributes
    ----------
    thresholds : tuple[float, ...]
        The IoU thresholds.
    pooled : list[dict]
        One dict per threshold (see :meth:`MatchCounts.as_dict`): counts summed over all
        images, then scores computed from the sums (StarDist's ``matching_dataset`` with
        ``by_image=False``). Large images with many objects weigh more than small ones.
    per_image : list[tuple[str, list[dict]]]
        ``(name, dicts)`` per image, in input order, with one dict per threshold.
    error_kinds : dict[str, int]
        Unmatched objects at IoU 0.5 by kind (:func:`error_kinds`), summed over images.
    """

    thresholds: tuple[float, ...]
    pooled: list[dict]
    per_image: list[tuple[str, list[dict]]]
    error_kinds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))

    def to_dict(self) -> dict[str, float | int]:
        """Pooled results as a flat, JSON-ready dict.

        Keys are ``n_images``, ``n_true``, ``n_pred`` and ``<metric>@<threshold>`` for metric
        in ``ap``, ``f1``, ``precision``, ``recall``, ``mean_matched_iou``,
        ``panoptic_quality``, ``tp``, ``fp``, ``fn`` and every threshold, written with
        ``f"{t:g}"`` (``ap@0.5``, ``ap@0.55``, ...), and ``<kind>@0.5`` for every kind of
        :data:`ERROR_KINDS`. Values are plain ``int`` / ``float``.
        """
        out: dict[str, float | int] = {
            "n_images": len(self.per_image),
            "n_true": int(self.pooled[0]["n_true"]) if self.pooled else 0,
            "n_pred": int(self.pooled[0]["n_pred"]) if self.pooled else 0,
        }
        for metric in _FLAT_METRICS:
            for t, row in zip(self.thresholds, self.pooled, strict=True):
                out[_key(metric, t)] = row[metric]
        for kind, count in self.error_kinds.items():
            out[_key(kind, 0.5)] = count
        return out

    def per_image_rows(self) -> list[dict[str, str | float | int]]:
        """One flat dict per image, ready for :class:`csv.DictWriter`.

        Keys: ``name``, ``n_true``, ``n_pred``, then ``ap@t``, ``f1@t``, ``precision@t``,
        ``recall@t`` and ``mean_matched_iou@t`` for every threshold ``t``.
        """
        rows: list[dict[str, str | float | int]] = []
        for name, per_t in self.per_image:
            row: dict[str, str | float | int] = {
                "name": name,
                "n_true": int(per_t[0]["n_true"]) if per_t else 0,
                "n_pred": int(per_t[0]["n_pred"]) if per_t else 0,
            }
            for metric in _ROW_METRICS:
                for t, d in zip(self.thresholds, per_t, strict=True):
                    row[_key(metric, t)] = d[metric]
            rows.append(row)
        return rows

    def table(self) -> str:
        """Pooled results as a plain-text table, one row per threshold."""
        header = ("thr", "TP", "FP", "FN", "precision", "recall", "F1", "AP", "mean IoU")
        lines = [header]
        for t, d in zip(self.thresholds, self.pooled, strict=True):
            lines.append(
                (
                    f"{t:g}",
                    str(d["tp"]),
                    str(d["fp"]),
                    str(d["fn"]),
                    f"{d['precision']:.3f}",
                    f"{d['recall']:.3f}",
                    f"{d['f1']:.3f}",
                    f"{d['ap']:.3f}",
                    f"{d['mean_matched_iou']:.3f}",
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = [
            "  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        ]
        return "\n".join(text)


def evaluate_instances(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    thresholds: Sequence[float] | float = DEFAULT_THRESHOLDS,
    names: Sequence[str] | None = None,
) -> InstanceReport:
    """Match objects in every image of a dataset; report pooled and per-image scores.

    Parameters
    ----------
    pairs : iterable of (gt, pred)
        Ground-truth and predicted label images, **ground truth first**. May be a generator;
        each pair is processed and released before the next one is read.
    thresholds : sequence of float or float
        IoU thresholds in ``(0, 1]``.
    names : sequence of str, optional
        One name per pair (e.g. file stems). Defaults to ``"0"``, ``"1"``, ...

    Returns
    -------
    InstanceReport
        Pooled scores (counts summed over images, then scores) and per-image scores.

    Raises
    ------
    InputError
        If there are no pairs, ``names`` does not have one name per pair, or a pair is invalid
        (the message names the image).
    """
    if isinstance(thresholds, Sequence) and any(np.ndim(t) > 0 for t in thresholds):
        raise InputError(
            "evaluate_instances takes one iterable of (gt, pred) pairs, not two lists of "
            "images: evaluate_instances(zip(truths, predictions))"
        )
    ts = _check_thresholds(thresholds)
    name_list = None if names is None else [str(n) for n in names]
    per_image_counts: list[tuple[str, list[MatchCounts]]] = []
    kinds = dict.fromkeys(ERROR_KINDS, 0)
    for index, pair in enumerate(pairs):
        if name_list is not None and index >= len(name_list):
            raise InputError(
                f"got more image pairs than names ({len(name_list)}); give one name per pair."
            )
        name = name_list[index] if name_list is not None else str(index)
        try:
            gt, pred = pair
        except (TypeError, ValueError):
            raise InputError(
                f"image {name}: each item of pairs must be a (gt, pred) tuple."
            ) from None
        try:
            ov = _overlaps(gt, pred)
        except InputError as err:
            raise InputError(f"image {name}: {err}") from None
        counts = _counts_from_overlaps(ov, ts)
        for kind, count in _kinds_from_overlaps(ov, 0.5).items():
            kinds[kind] += count
        per_image_counts.append((name, counts))
    if not per_image_counts:
        raise InputError("no image pairs to evaluate; give at least one (gt, pred) pair.")
    if name_list is not None and len(name_list) != len(per_image_counts):
        raise InputError(
            f"got {len(per_image_counts)} image pairs but {len(name_list)} names; "
            "give one name per pair."
        )
    pooled = [
        _pool([counts[i] for _, counts in per_image_counts], t).as_dict() for i, t in enumerate(ts)
    ]
    per_image = [(name, [c.as_dict() for c in counts]) for name, counts in per_image_counts]
    return InstanceReport(thresholds=ts, pooled=pooled, per_image=per_image, error_kinds=kinds)


# --------------------------------------------------------------------------- kinds of error


def error_kinds(
    gt: np.ndarray, pred: np.ndarray, threshold: float = 0.5, touch: float = 0.05
) -> dict[str, int]:
    """Why each unmatched object is unmatched at an IoU ``threshold`` of at least 0.5.

    An unmatched ground-truth object (a false negative) is *missed* when no prediction
    overlaps it with an IoU of at least ``touch``; *merged* when the prediction that
    overlaps it most also touches another ground-truth object (two nuclei in one polygon);
    else *misshaped* (a prediction is there, its outline is off). Unmatched predictions
    (false positives) are *spurious* (no ground-truth object touched), *split* (the object
    they overlap most is touched by another prediction too: one nucleus in two pieces) or
    *misshaped*. The six counts add up to the FN and FP of :func:`match_counts`.

    Examples
    --------
    >>> gt = np.array([[1, 1, 0, 2, 2, 0, 3, 3]])
    >>> pred = np.array([[5, 5, 5, 5, 5, 0, 0, 0]])   # 1 and 2 merged, 3 missed
    >>> error_kinds(gt, pred)["fn_merged"], error_kinds(gt, pred)["fn_missed"]
    (2, 1)
    """
    if not 0.5 <= threshold <= 1:
        raise InputError(
            f"error kinds need an IoU threshold from 0.5 to 1 (a unique matching), got {threshold}"
        )
    return _kinds_from_overlaps(_overlaps(gt, pred), threshold, touch)


def _kinds_from_overlaps(ov: _Overlaps, threshold: float, touch: float = 0.05) -> dict[str, int]:
    """:func:`error_kinds` from an image's overlap table."""
    touching = ov.iou >= touch
    gt_matched = np.zeros(ov.n_true, dtype=bool)
    pred_matched = np.zeros(ov.n_pred, dtype=bool)
    # above 0.5 each object has at most one partner; at exactly 0.5 (two halves of one
    # object) the best pairs go first and each object is matched once, as in _match
    for k in np.flatnonzero(ov.iou >= threshold)[np.argsort(-ov.iou[ov.iou >= threshold])]:
        g, p = ov.rows[k], ov.cols[k]
        if not (gt_matched[g] or pred_matched[p]):
            gt_matched[g] = pred_matched[p] = True
    gt_touches = np.bincount(ov.rows[touching], minlength=ov.n_true)
    pred_touches = np.bincount(ov.cols[touching], minlength=ov.n_pred)
    best_pred = _best_partner(ov.rows, ov.cols, ov.iou, ov.n_true)
    best_gt = _best_partner(ov.cols, ov.rows, ov.iou, ov.n_pred)
    fn = _kinds_of_unmatched(~gt_matched, gt_touches, best_pred, pred_touches)
    fp = _kinds_of_unmatched(~pred_matched, pred_touches, best_gt, gt_touches)
    return dict(zip(ERROR_KINDS, fn + fp, strict=True))


def _kinds_of_unmatched(
    unmatched: np.ndarray, touches: np.ndarray, best: np.ndarray, partner_touches: np.ndarray
) -> tuple[int, int, int]:
    """(alone, sharing, misshaped) counts of the ``unmatched`` objects of one side: alone
    touches nothing; sharing: its best partner also touches another object of this side."""
    alone = unmatched & (touches == 0)
    rest = unmatched & ~alone
    sharing = np.zeros_like(rest)
    if partner_touches.size:  # with no object on the other side, nothing is shared
        sharing = rest & (partner_touches[np.maximum(best, 0)] > 1)
    return int(alone.sum()), int(sharing.sum()), int((rest & ~sharing).sum())


def _best_partner(own: np.ndarray, other: np.ndarray, iou: np.ndarray, n: int) -> np.ndarray:
    """For each of ``n`` objects, the partner of its highest-IoU pair (-1 without one)."""
    best = np.full(n, -1, dtype=np.intp)
    order = np.argsort(iou, kind="stable")  # later (higher) IoUs overwrite earlier ones
    best[own[order]] = other[order]
    return best
