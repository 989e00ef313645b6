"""Instance matching on tiny label images whose answers are worked out by hand.

Each test draws a few rectangles, says in a comment what the IoUs are, and checks the counts
(TP, FP, FN) or scores that follow from the StarDist/Cellpose matching rule.
"""

import json

import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.metrics import (
    DEFAULT_THRESHOLDS,
    ERROR_KINDS,
    InstanceReport,
    MatchCounts,
    evaluate_instances,
    iou_matrix,
    match_counts,
    scores,
)


def square(shape, top, left, size, label, out=None):
    """Draw a ``size`` x ``size`` square of ``label`` into ``out`` (a new image if None)."""
    out = np.zeros(shape, dtype=np.int32) if out is None else out
    out[top : top + size, left : left + size] = label
    return out


def tp_fp_fn(gt, pred, threshold):
    (c,) = match_counts(gt, pred, thresholds=(threshold,))
    return c.tp, c.fp, c.fn


# --------------------------------------------------------------------------- single images


def test_perfect_match_gives_ap_one_at_every_threshold():
    gt = square((12, 12), 0, 0, 4, 1)
    square((12, 12), 6, 6, 5, 2, out=gt)
    square((12, 12), 0, 8, 3, 3, out=gt)
    pred = gt * 10  # same objects, other label values

    counts = match_counts(gt, pred)

    assert [c.threshold for c in counts] == list(DEFAULT_THRESHOLDS)
    for c in counts:
        assert (c.tp, c.fp, c.fn, c.n_true, c.n_pred) == (3, 0, 0, 3, 3)
        assert c.ap == 1.0
        assert c.f1 == 1.0
        assert c.mean_matched_iou == pytest.approx(1.0)
        assert c.panoptic_quality == pytest.approx(1.0)


def test_shifted_square_iou_is_three_fifths():
    # Two 4x4 squares, the prediction shifted right by one pixel:
    # intersection 4x3 = 12, union 16 + 16 - 12 = 20, IoU = 0.6.
    gt = square((6, 8), 1, 1, 4, 1)
    pred = square((6, 8), 1, 2, 4, 1)
    np.testing.assert_allclose(iou_matrix(gt, pred), [[0.6]])

    counts = match_counts(gt, pred)

    # matched while the threshold is <= 0.6 (the comparison is IoU >= threshold) ...
    assert [c.tp for c in counts] == [1, 1, 1, 0, 0, 0, 0, 0, 0]
    at_05, at_07 = counts[0], counts[4]
    assert (at_05.tp, at_05.fp, at_05.fn) == (1, 0, 0)
    assert at_05.mean_matched_iou == pytest.approx(0.6)
    assert at_05.panoptic_quality == pytest.approx(0.6)
    # ... and counted as one false positive plus one false negative above it.
    assert (at_07.tp, at_07.fp, at_07.fn) == (0, 1, 1)
    assert at_07.ap == 0.0
    assert at_07.mean_matched_iou == 0.0


def test_square_shifted_by_half_is_missed_at_05():
    # Shift by two pixels: intersection 4x2 = 8, union 24, IoU = 1/3.
    gt = square((6, 8), 1, 1, 4, 1)
    pred = square((6, 8), 1, 3, 4, 1)
    np.testing.assert_allclose(iou_matrix(gt, pred), [[1 / 3]])
    assert tp_fp_fn(gt, pred, 0.5) == (0, 1, 1)
    assert tp_fp_fn(gt, pred, 0.3) == (1, 0, 0)


def test_split_object_with_a_large_part_keeps_one_match():
    # One 4x4 gt object (16 px) predicted as a 4x3 part (IoU 12/16 = 0.75)
    # and a 4x1 part (IoU 4/16 = 0.25).
    gt = np.zeros((4, 4), dtype=np.int32)
    gt[:, :] = 1
    pred = np.zeros((4, 4), dtype=np.int32)
    pred[:, :3] = 1
    pred[:, 3] = 2
    np.testing.assert_allclose(iou_matrix(gt, pred), [[0.75, 0.25]])

    assert tp_fp_fn(gt, pred, 0.5) == (1, 1, 0)  # big part matched, small part is a FP
    assert tp_fp_fn(gt, pred, 0.75) == (1, 1, 0)
    assert tp_fp_fn(gt, pred, 0.8) == (0, 2, 1)  # nothing good enough


def test_split_object_into_two_halves():
    # Each half has IoU exactly 8/16 = 0.5: at 0.5 one of them (either) is matched.
    gt = np.ones((4, 4), dtype=np.int32)
    pred = np.zeros((4, 4), dtype=np.int32)
    pred[:, :2] = 1
    pred[:, 2:] = 2

    (at_05, at_055) = match_counts(gt, pred, thresholds=(0.5, 0.55))

    assert (at_05.tp, at_05.fp, at_05.fn) == (1, 1, 0)
    assert at_05.sum_matched_iou == pytest.approx(0.5)
    assert (at_055.tp, at_055.fp, at_055.fn) == (0, 2, 1)


def test_merged_objects():
    # Two gt objects (4x3 and 4x1) predicted as one 4x4 object:
    # IoUs 12/16 = 0.75 and 4/16 = 0.25. The merged prediction can match only one of them.
    gt = np.zeros((4, 4), dtype=np.int32)
    gt[:, :3] = 1
    gt[:, 3] = 2
    pred = np.ones((4, 4), dtype=np.int32)
    np.testing.assert_allclose(iou_matrix(gt, pred), [[0.75], [0.25]])

    assert tp_fp_fn(gt, pred, 0.5) == (1, 0, 1)
    assert tp_fp_fn(gt, pred, 0.8) == (0, 1, 2)


def test_empty_ground_truth_makes_every_prediction_a_false_positive():
    gt = np.zeros((8, 8), dtype=np.uint16)
    pred = square((8, 8), 0, 0, 2, 1)
    square((8, 8), 4, 4, 2, 2, out=pred)

    c = match_counts(gt, pred, thresholds=(0.5,))[0]

    assert (c.tp, c.fp, c.fn, c.n_true, c.n_pred) == (0, 2, 0, 0, 2)
    assert scores(c) == {
        "precision": 0.0,
        "recall": 0.0,  # 0/0, but something was predicted: counted as a failure
        "f1": 0.0,
        "ap": 0.0,
        "mean_matched_iou": 0.0,
        "panoptic_quality": 0.0,
    }
    assert iou_matrix(gt, pred).shape == (0, 2)


def test_empty_prediction_makes_every_object_a_false_negative():
    gt = square((8, 8), 0, 0, 2, 1)
    square((8, 8), 4, 4, 2, 2, out=gt)
    pred = np.zeros((8, 8), dtype=np.uint16)

    c = match_counts(gt, pred, thresholds=(0.5,))[0]

    assert (c.tp, c.fp, c.fn) == (0, 0, 2)
    assert c.precision == 0.0  # 0/0, but objects were missed: counted as a failure
    assert c.recall == 0.0
    assert c.ap == 0.0
    assert iou_matrix(gt, pred).shape == (2, 0)


def test_both_empty_is_a_perfect_score():
    empty = np.zeros((5, 5), dtype=np.int32)

    counts = match_counts(empty, empty)

    for c in counts:
        assert (c.tp, c.fp, c.fn, c.n_true, c.n_pred) == (0, 0, 0, 0, 0)
        assert all(value == 1.0 for value in scores(c).values())
    assert iou_matrix(empty, empty).shape == (0, 0)


def test_non_consecutive_labels():
    # gt labels 5 and 900, pred labels 70000 and 3 (swapped order); IoU 1 and 0.5.
    gt = np.zeros((4, 10), dtype=np.int64)
    gt[:, 0:2] = 5
    gt[:, 5:9] = 900
    pred = np.zeros((4, 10), dtype=np.int64)
    pred[:, 0:2] = 70000
    pred[:, 5:7] = 3

    # rows: gt 5, 900; columns: pred 3, 70000 (sorted label order)
    np.testing.assert_allclose(iou_matrix(gt, pred), [[0.0, 1.0], [0.5, 0.0]])
    assert tp_fp_fn(gt, pred, 0.5) == (2, 0, 0)
    assert tp_fp_fn(gt, pred, 0.6) == (1, 1, 1)


def test_huge_label_values():
    gt = np.array([[2**40, 2**40, 0, 7]], dtype=np.uint64)
    pred = np.array([[1, 1, 0, 2**62]], dtype=np.int64)
    np.testing.assert_allclose(iou_matrix(gt, pred), [[0.0, 1.0], [1.0, 0.0]])


def test_3d_labels():
    # Two 2x2x2 cubes. The first is predicted exactly; the second is shifted by one plane in z:
    # intersection 1x2x2 = 4, union 8 + 8 - 4 = 12, IoU = 1/3.
    gt = np.zeros((4, 6, 6), dtype=np.uint8)
    gt[0:2, 0:2, 0:2] = 1
    gt[1:3, 3:5, 3:5] = 2
    pred = np.zeros_like(gt)
    pred[0:2, 0:2, 0:2] = 1
    pred[2:4, 3:5, 3:5] = 2

    np.testing.assert_allclose(iou_matrix(gt, pred), [[1.0, 0.0], [0.0, 1 / 3]])
    assert tp_fp_fn(gt, pred, 0.5) == (1, 1, 1)
    c = match_counts(gt, pred, thresholds=(0.3,))[0]
    assert (c.tp, c.fp, c.fn) == (2, 0, 0)
    assert c.mean_matched_iou == pytest.approx((1 + 1 / 3) / 2)


def test_hungarian_beats_greedy_at_low_threshold():
    # One row of pixels:
    #   gt    1 1 2 2 2 2 2
    #   pred  1 1 1 1 1 2 2
    # IoU(gt1, pred1) = 2/5, IoU(gt2, pred1) = 3/7, IoU(gt2, pred2) = 2/5, IoU(gt1, pred2) = 0.
    # Greedy matching takes the best pair first (gt2-pred1, 0.43) and then gt1 has no partner
    # left: 1 TP. The optimal assignment is gt1-pred1 + gt2-pred2: 2 TPs, total IoU 0.8.
    gt = np.array([[1, 1, 2, 2, 2, 2, 2]])
    pred = np.array([[1, 1, 1, 1, 1, 2, 2]])
    np.testing.assert_allclose(iou_matrix(gt, pred), [[2 / 5, 0.0], [3 / 7, 2 / 5]])

    (c,) = match_counts(gt, pred, thresholds=(0.1,))

    assert (c.tp, c.fp, c.fn) == (2, 0, 0)
    assert c.sum_matched_iou == pytest.approx(0.8)
    # Above 0.4 only gt2-pred1 is allowed.
    assert tp_fp_fn(gt, pred, 0.42) == (1, 1, 1)


def test_more_matches_win_over_a_higher_total_iou():
    # StarDist/Cellpose rule: maximise the number of matches first, IoU only breaks ties.
    #   gt    1 1 1 1 . 2 2 2 2 2 2 2 . . . .
    #   pred  . . 1 1 1 1 1 1 1 1 2 2 2 2 2 2
    # IoU(gt1, pred1) = 2/10, IoU(gt2, pred1) = 5/10, IoU(gt2, pred2) = 2/11.
    # At threshold 0.1, the single pair gt2-pred1 (total 0.5) loses to the two pairs
    # gt1-pred1 + gt2-pred2 (total 0.38).
    gt = np.array([[1, 1, 1, 1, 0, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0]])
    pred = np.array([[0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]])

    (c,) = match_counts(gt, pred, thresholds=(0.1,))

    assert (c.tp, c.fp, c.fn) == (2, 0, 0)
    assert c.sum_matched_iou == pytest.approx(2 / 10 + 2 / 11)


def test_scores_formulas():
    c = MatchCounts(threshold=0.5, tp=6, fp=2, fn=4, n_true=10, n_pred=8, sum_matched_iou=4.5)
    assert scores(c) == pytest.approx(
        {
            "precision": 6 / 8,
            "recall": 6 / 10,
            "f1": 12 / 18,
            "ap": 6 / 12,
            "mean_matched_iou": 4.5 / 6,
            "panoptic_quality": 4.5 / 9,
        }
    )
    # panoptic quality = segmentation quality (mean matched IoU) x recognition quality (F1)
    assert c.panoptic_quality == pytest.approx(c.mean_matched_iou * c.f1)


# --------------------------------------------------------------------------- datasets


def two_image_dataset():
    # Image "a": one object, predicted perfectly -> AP 1.
    # Image "b": three objects, nothing predicted -> AP 0.
    a = square((6, 6), 1, 1, 3, 1)
    b = square((6, 6), 0, 0, 2, 1)
    square((6, 6), 3, 0, 2, 2, out=b)
    square((6, 6), 0, 3, 2, 3, out=b)
    return [(a, a.copy()), (b, np.zeros_like(b))]


def test_pooled_and_per_image_aggregation_differ():
    report = evaluate_instances(two_image_dataset(), thresholds=(0.5,), names=["a", "b"])

    # Per image: AP 1 and 0 (their mean would be 0.5).
    (name_a, (a,)), (name_b, (b,)) = report.per_image
    assert (name_a, a["ap"], a["precision"]) == ("a", 1.0, 1.0)
    assert (name_b, b["ap"], b["precision"], b["fn"]) == ("b", 0.0, 0.0, 3)

    # Pooled: TP 1, FP 0, FN 3 summed first -> AP 1/4, precision 1, recall 1/4.
    (pooled,) = report.pooled
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (1, 0, 3)
    assert pooled["ap"] == pytest.approx(0.25)
    assert pooled["precision"] == 1.0
    assert pooled["recall"] == pytest.approx(0.25)
    assert pooled["mean_matched_iou"] == pytest.approx(1.0)


def test_to_dict_keys_and_json():
    report = evaluate_instances(two_image_dataset())
    d = report.to_dict()

    thresholds = ["0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9"]
    metrics = [
        "ap",
        "f1",
        "precision",
        "recall",
        "mean_matched_iou",
        "panoptic_quality",
        "tp",
        "fp",
        "fn",
    ]
    expected = {"n_images", "n_true", "n_pred"} | {f"{m}@{t}" for m in metrics for t in thresholds}
    kinds = {f"{k}@0.5" for k in ERROR_KINDS}
    assert set(d) == expected | kinds
    assert sum(d[k] for k in kinds if k.startswith("fn")) == d["fn@0.5"]
    assert sum(d[k] for k in kinds if k.startswith("fp")) == d["fp@0.5"]
    assert (d["n_images"], d["n_true"], d["n_pred"]) == (2, 4, 1)
    assert d["ap@0.5"] == pytest.approx(0.25)
    assert d["tp@0.9"] == 1
    json.dumps(d, allow_nan=False)  # plain numbers only, no NaN


def test_per_image_rows_for_csv():
    report = evaluate_instances(two_image_dataset(), thresholds=(0.5, 0.75))
    rows = report.per_image_rows()

    assert [row["name"] for row in rows] == ["0", "1"]  # default names: the pair index
    assert list(rows[1]) == [
        "name",
        "n_true",
        "n_pred",
        "ap@0.5",
        "ap@0.75",
        "f1@0.5",
        "f1@0.75",
        "precision@0.5",
        "precision@0.75",
        "recall@0.5",
        "recall@0.75",
        "mean_matched_iou@0.5",
        "mean_matched_iou@0.75",
    ]
    assert (rows[1]["n_true"], rows[1]["n_pred"], rows[1]["ap@0.5"]) == (3, 0, 0.0)


def test_table_has_one_row_per_threshold():
    report = evaluate_instances(two_image_dataset(), thresholds=(0.5, 0.75))
    lines = report.table().splitlines()

    assert len(lines) == 3
    assert lines[0].split() == [
        "thr",
        "TP",
        "FP",
        "FN",
        "precision",
        "recall",
        "F1",
        "AP",
        "mean",
        "IoU",
    ]
    assert lines[1].split() == ["0.5", "1", "0", "3", "1.000", "0.250", "0.400", "0.250", "1.000"]
    assert lines[2].split()[0] == "0.75"


def test_evaluate_accepts_a_generator():
    pairs = (pair for pair in two_image_dataset())
    report = evaluate_instances(pairs, thresholds=0.5)
    assert isinstance(report, InstanceReport)
    assert report.thresholds == (0.5,)
    assert len(report.per_image) == 2


# --------------------------------------------------------------------------- input errors


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(InputError, match=r"\(4, 5\).*\(5, 4\)"):
        match_counts(np.zeros((4, 5), int), np.zeros((5, 4), int))


def test_float_labels_must_be_whole_numbers():
    gt = square((6, 8), 1, 1, 4, 1)
    pred = square((6, 8), 1, 2, 4, 1)
    # whole-number floats (e.g. read from a float TIFF) are fine
    assert tp_fp_fn(gt.astype(np.float32), pred.astype(np.float64), 0.5) == (1, 0, 0)
    with pytest.raises(InputError, match="non-integer"):
        iou_matrix(gt, pred * 0.5)
    with pytest.raises(InputError):
        iou_matrix(gt.astype(float) * np.nan, pred)


def test_negative_labels_are_rejected():
    with pytest.raises(InputError, match="negative"):
        match_counts(np.array([[0, -1]]), np.array([[0, 1]]))


def test_invalid_thresholds_are_rejected():
    gt = square((4, 4), 0, 0, 2, 1)
    for bad in [(0.0,), (1.5,), (), (0.5, 0.5)]:
        with pytest.raises(InputError):
            match_counts(gt, gt, thresholds=bad)


def test_dataset_errors_name_the_image():
    good = square((4, 4), 0, 0, 2, 1)
    pairs = [(good, good), (good, np.zeros((3, 3), int))]
    with pytest.raises(InputError, match="image second"):
        evaluate_instances(pairs, names=["first", "second"])
    with pytest.raises(InputError, match="names"):
        evaluate_instances([(good, good)], names=["a", "b"])
    with pytest.raises(InputError, match="no image pairs"):
        evaluate_instances([])


def test_two_lists_of_images_instead_of_pairs_get_a_one_line_hint():
    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 1
    with pytest.raises(InputError, match=r"evaluate_instances\(zip\(truths, predictions\)\)"):
        evaluate_instances([labels], [labels])
