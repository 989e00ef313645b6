"""Pixel-wise (semantic) segmentation metrics.

Every function takes integer class maps (or boolean masks) as numpy arrays and returns numpy
arrays or floats. Nothing here keeps state.

Conventions
-----------
* Argument order is ``(pred, target)`` everywhere in this module.
* ``confusion_matrix(pred, target, n)[i, j]`` counts the pixels whose *true* class is ``i`` and
  whose *predicted* class is ``j`` (rows are the target, columns the prediction, as in
  scikit-learn).
* A class absent from both the prediction and the target has no defined IoU or Dice: its entry
  is ``NaN``. Use :func:`numpy.nanmean` to average over classes.
"""

from __future__ import annotations

import numpy as np

from deepscope.errors import InputError

__all__ = [
    "binary_dice",
    "binary_iou",
    "confusion_matrix",
    "dice_per_class",
    "iou_per_class",
]


def _as_label_array(arr: np.ndarray, name: str) -> np.ndarray:
    """Return ``arr`` as a non-negative integer array, or raise :class:`InputError`.

    Booleans become 0/1. Floats are accepted when every value is a whole number. Signed
    integers must not be negative. The result has a dtype that :func:`numpy.bincount` and
    fancy indexing accept (``uint64`` is converted to ``int64``).
    """
    arr = np.asarray(arr)
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(np.intp)
    if kind in "iu":
        if arr.size and kind == "i" and arr.min() < 0:
            raise InputError(
                f"{name} contains negative labels (min {arr.min()}); "
                "use 0 for background and positive integers for labels."
            )
        if arr.dtype == np.uint64:
            if arr.size and arr.max() > np.iinfo(np.int64).max:
                raise InputError(f"{name} has labels above 2**63-1; relabel it first.")
            return arr.astype(np.int64)
        return arr
    if kind == "f":
        if arr.size and not np.all(np.isfinite(arr)):
            raise InputError(
                f"{name} contains NaN or infinite values; pass an integer label image."
            )
        if arr.size and not np.array_equal(arr, np.floor(arr)):
            raise InputError(
                f"{name} has non-integer values (dtype {arr.dtype}); "
                "pass an integer label image, not probabilities."
            )
        if arr.size and arr.min() < 0:
            raise InputError(
                f"{name} contains negative labels (min {arr.min():g}); "
                "use 0 for background and positive integers for labels."
            )
        if arr.size and arr.max() >= 2.0**63:
            raise InputError(f"{name} has labels above 2**63-1; relabel it first.")
        return arr.astype(np.int64)
    raise InputError(f"{name} has dtype {arr.dtype}; pass an integer (or boolean) array.")


def _check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise :class:`InputError` when two arrays differ in shape."""
    if a.shape != b.shape:
        raise InputError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; "
            "they must have the same shape."
        )


def _check_n_classes(n_classes: int) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise InputError(f"n_classes must be an integer, got {n_classes!r}.")
    if n_classes < 1:
        raise InputError(f"n_classes must be at least 1, got {n_classes}.")
    return int(n_classes)


def confusion_matrix(pred: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """Count pixels per (true class, predicted class) pair.

    Parameters
    ----------
    pred : np.ndarray
        Predicted class map, integer values in ``[0, n_classes)``.
    target : np.ndarray
        True class map with the same shape as ``pred``.
    n_classes : int
        Number of classes.

    Returns
    -------
    np.ndarray
        ``int64`` array of shape ``(n_classes, n_classes)``; entry ``[i, j]`` is the number of
        pixels of true class ``i`` predicted as class ``j``.

    Raises
    ------
    InputError
        If the shapes differ, the maps are not integer-valued, or a value is outside
        ``[0, n_classes)``.

    Examples
    --------
    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2)
    array([[1, 1],
           [0, 1]])
    """
    n = _check_n_classes(n_classes)
    p = _as_label_array(pred, "pred")
    t = _as_label_array(target, "target")
    _check_same_shape(p, t, "pred", "target")
    for arr, name in ((p, "pred"), (t, "target")):
        if arr.size and arr.max() >= n:
            raise InputError(
                f"{name} contains class {arr.max()} but n_classes is {n}; "
                f"class values must be in [0, {n - 1}]."
            )
    index = t.ravel().astype(np.int64) * n + p.ravel()
    counts = np.bincount(index, minlength=n * n)
    return counts.reshape(n, n).astype(np.int64, copy=False)


def _per_class_counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp  # predicted as the class, but another class in truth
    fn = cm.sum(axis=1) - tp  # the class in truth, but predicted as another
    return tp, fp, fn


def _ratio_or_nan(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def iou_per_class(pred: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """Intersection over union (Jaccard index) of each class.

    Parameters
    ----------
    pred : np.ndarray
        Predicted class map, integer values in ``[0, n_classes)``.
    target : np.ndarray
        True class map with the same shape as ``pred``.
    n_classes : int
        Number of classes.

    Returns
    -------
    np.ndarray
        ``float64`` array of length ``n_classes``: ``TP / (TP + FP + FN)`` per class, ``NaN``
        for a class present in neither map.

    Raises
    ------
    InputError
        See :func:`confusion_matrix`.
    """
    tp, fp, fn = _per_class_counts(confusion_matrix(pred, target, n_classes))
    return _ratio_or_nan(tp, tp + fp + fn)


def dice_per_class(pred: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """Dice coefficient (F1 score) of each class.

    Parameters
    ----------
    pred : np.ndarray
        Predicted class map, integer values in ``[0, n_classes)``.
    target : np.ndarray
        True class map with the same shape as ``pred``.
    n_classes : int
        Number of classes.

    Returns
    -------
    np.ndarray
        ``float64`` array of length ``n_classes``: ``2 TP / (2 TP + FP + FN)`` per class,
        ``NaN`` for a class present in neither map.

    Raises
    ------
    InputError
        See :func:`confusion_matrix`.
    """
    tp, fp, fn = _per_class_counts(confusion_matrix(pred, target, n_classes))
    return _ratio_or_nan(2 * tp, 2 * tp + fp + fn)


def _binary_counts(pred_mask: np.ndarray, target_mask: np.ndarray) -> tuple[int, int, int]:
    p = _as_label_array(pred_mask, "pred_mask") > 0
    t = _as_label_array(target_mask, "target_mask") > 0
    _check_same_shape(p, t, "pred_mask", "target_mask")
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(t)) - tp
    return tp, fp, fn


def binary_iou(pred_mask: np.ndarray, target_mask: np.ndarray) -> float:
    """Intersection over union of two foreground masks.

    Parameters
    ----------
    pred_mask, target_mask : np.ndarray
        Boolean masks of the same shape. Integer (or whole-number float) arrays are accepted
        too; every non-zero value counts as foreground, so label images work.

    Returns
    -------
    float
        ``|pred & target| / |pred | target|``, or ``NaN`` when both masks are empty.

    Raises
    ------
    InputError
        If the shapes differ or a mask has negative or non-integer values.
    """
    tp, fp, fn = _binary_counts(pred_mask, target_mask)
    den = tp + fp + fn
    return tp / den if den else float("nan")


def binary_dice(pred_mask: np.ndarray, target_mask: np.ndarray) -> float:
    """Dice coefficient of two foreground masks.

    Parameters
    ----------
    pred_mask, target_mask : np.ndarray
        As in :func:`binary_iou`.

    Returns
    -------
    float
        ``2 |pred & target| / (|pred| + |target|)``, or ``NaN`` when both masks are empty.

    Raises
    ------
    InputError
        If the shapes differ or a mask has negative or non-integer values.
    """
    tp, fp, fn = _binary_counts(pred_mask, target_mask)
    den = 2 * tp + fp + fn
    return 2 * tp / den if den else float("nan")
