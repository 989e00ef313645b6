"""Why objects are unmatched: missed, merged, split, misshaped, spurious."""

import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.metrics import ERROR_KINDS, error_kinds, match_counts


def square(labels: np.ndarray, label: int, y: int, x: int, size: int = 10) -> None:
    labels[y : y + size, x : x + size] = label


def test_each_kind_of_error_is_named():
    gt = np.zeros((100, 100), np.int32)
    pred = np.zeros_like(gt)
    square(gt, 1, 0, 0)  # found exactly
    square(pred, 1, 0, 0)
    square(gt, 2, 20, 0)  # missed: nothing predicted there
    square(gt, 3, 40, 0)  # 3 and 4 touch each other and are predicted as one object
    square(gt, 4, 40, 10)
    square(pred, 2, 40, 0, size=20)
    square(gt, 5, 70, 0, size=20)  # one nucleus predicted in two pieces; the larger matches
    pred[70:90, 0:12] = 3
    pred[70:90, 12:20] = 4
    square(gt, 6, 0, 50)  # a prediction far too large: misshaped
    square(pred, 5, 0, 50, size=25)
    square(pred, 6, 60, 60)  # nothing there at all: spurious
    kinds = error_kinds(gt, pred)
    assert kinds == {
        "fn_missed": 1,
        "fn_merged": 2,
        "fn_misshaped": 1,  # under the too-large polygon
        "fp_spurious": 1,
        "fp_split": 1,
        "fp_misshaped": 2,  # the merged polygon and the too-large one
    }
    (counts,) = match_counts(gt, pred, thresholds=0.5)
    assert sum(kinds[k] for k in ERROR_KINDS if k.startswith("fn")) == counts.fn
    assert sum(kinds[k] for k in ERROR_KINDS if k.startswith("fp")) == counts.fp


def test_two_exact_halves_match_one_of_them():
    gt = np.zeros((20, 20), np.int32)
    square(gt, 1, 0, 0, size=20)
    pred = np.zeros_like(gt)
    pred[:, :10], pred[:, 10:] = 1, 2  # IoU exactly 0.5 each
    assert error_kinds(gt, pred)["fp_split"] == 1
    assert match_counts(gt, pred, thresholds=0.5)[0].fp == 1


def test_a_perfect_prediction_has_no_errors():
    gt = np.zeros((30, 30), np.int32)
    square(gt, 7, 5, 5)
    assert set(error_kinds(gt, gt).values()) == {0}


def test_nothing_predicted_means_everything_missed_and_nothing_predicted_nothing_spurious():
    gt = np.zeros((30, 30), np.int32)
    square(gt, 1, 0, 0)
    square(gt, 2, 15, 15)
    empty = np.zeros_like(gt)
    assert error_kinds(gt, empty)["fn_missed"] == 2
    assert error_kinds(empty, gt)["fp_spurious"] == 2
    assert set(error_kinds(empty, empty).values()) == {0}


def test_thresholds_below_one_half_are_refused():
    gt = np.zeros((8, 8), np.int32)
    with pytest.raises(InputError, match=r"from 0\.5 to 1"):
        error_kinds(gt, gt, threshold=0.3)
