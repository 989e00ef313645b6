"""Pixel-wise metrics on tiny class maps whose answers are worked out by hand."""

import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.metrics import (
    binary_dice,
    binary_iou,
    confusion_matrix,
    dice_per_class,
    iou_per_class,
)

# Three classes (0, 1, 2) on a 2x4 image.
TARGET = np.array(
    [
        [0, 0, 0, 1],
        [1, 1, 2, 2],
    ]
)
PRED = np.array(
    [
        [0, 0, 1, 1],
        [1, 2, 2, 2],
    ]
)
# Per pixel (true -> predicted): three 0s -> 0, 0, 1; three 1s -> 1, 1, 2; two 2s -> 2, 2.


def test_confusion_matrix_rows_are_truth_columns_are_prediction():
    cm = confusion_matrix(PRED, TARGET, n_classes=3)
    expected = np.array(
        [
            [2, 1, 0],  # true 0: two predicted 0, one predicted 1
            [0, 2, 1],  # true 1: two predicted 1, one predicted 2
            [0, 0, 2],  # true 2: both predicted 2
        ]
    )
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == TARGET.size


def test_iou_per_class_three_classes():
    # class 0: TP 2, FP 0, FN 1 -> 2/3
    # class 1: TP 2, FP 1, FN 1 -> 2/4
    # class 2: TP 2, FP 1, FN 0 -> 2/3
    np.testing.assert_allclose(iou_per_class(PRED, TARGET, 3), [2 / 3, 1 / 2, 2 / 3])


def test_dice_per_class_three_classes():
    # Dice = 2TP / (2TP + FP + FN): 4/5, 4/6, 4/5
    np.testing.assert_allclose(dice_per_class(PRED, TARGET, 3), [4 / 5, 4 / 6, 4 / 5])


def test_class_absent_from_both_maps_is_nan():
    iou = iou_per_class(PRED, TARGET, n_classes=4)
    dice = dice_per_class(PRED, TARGET, n_classes=4)
    assert np.isnan(iou[3]) and np.isnan(dice[3])
    assert np.nanmean(iou) == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)


def test_class_only_predicted_scores_zero():
    target = np.zeros((2, 2), dtype=np.uint8)
    pred = np.array([[0, 1], [0, 0]], dtype=np.uint8)
    np.testing.assert_allclose(iou_per_class(pred, target, 2), [3 / 4, 0.0])


def test_perfect_prediction_scores_one_for_present_classes():
    np.testing.assert_allclose(iou_per_class(TARGET, TARGET, 3), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(dice_per_class(TARGET, TARGET, 3), [1.0, 1.0, 1.0])


def test_binary_iou_and_dice():
    target = np.array([[1, 1, 1, 1, 0, 0]], dtype=bool)
    pred = np.array([[0, 0, 1, 1, 1, 1]], dtype=bool)
    # intersection 2, union 6, sizes 4 and 4
    assert binary_iou(pred, target) == pytest.approx(2 / 6)
    assert binary_dice(pred, target) == pytest.approx(4 / 8)


def test_binary_iou_treats_any_nonzero_label_as_foreground():
    target = np.array([[3, 3, 0, 7]])
    pred = np.array([[1, 0, 0, 1]])
    assert binary_iou(pred, target) == pytest.approx(2 / 3)


def test_binary_iou_of_two_empty_masks_is_nan():
    empty = np.zeros((3, 3), dtype=bool)
    assert np.isnan(binary_iou(empty, empty))
    assert np.isnan(binary_dice(empty, empty))


def test_shape_mismatch_is_an_input_error_naming_both_shapes():
    with pytest.raises(InputError, match=r"\(2, 4\).*\(4, 2\)"):
        iou_per_class(PRED, TARGET.reshape(4, 2), 3)
    with pytest.raises(InputError):
        binary_iou(np.zeros((2, 2), bool), np.zeros((2, 3), bool))


def test_class_value_out_of_range_is_an_input_error():
    with pytest.raises(InputError, match="n_classes"):
        iou_per_class(PRED, TARGET, n_classes=2)


def test_float_maps_must_hold_whole_numbers():
    np.testing.assert_allclose(
        iou_per_class(PRED.astype(np.float32), TARGET.astype(np.float64), 3),
        [2 / 3, 1 / 2, 2 / 3],
    )
    with pytest.raises(InputError, match="non-integer"):
        iou_per_class(PRED * 0.5, TARGET, 3)


def test_negative_class_is_an_input_error():
    with pytest.raises(InputError, match="negative"):
        dice_per_class(PRED - 1, TARGET, 3)
