"""Task ``semantic``: targets, loss, watershed post-processing, metrics and tuning."""

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from deepscope.errors import ConfigError, InputError
from deepscope.metrics import DEFAULT_THRESHOLDS, match_counts
from deepscope.tasks import TASKS, Result, get_task
from deepscope.tasks.base import remove_small_labels
from deepscope.tasks.semantic import (
    BACKGROUND,
    BOUNDARY,
    INTERIOR,
    SemanticTask,
    instances_from_probabilities,
    labels_to_classes,
    softmax,
)


def touching_squares() -> np.ndarray:
    """Two 6x6 squares sharing an edge (labels 1 and 2) and a separate one (label 7)."""
    labels = np.zeros((16, 20), np.int32)
    labels[2:8, 2:8] = 1
    labels[2:8, 8:14] = 2
    labels[10:15, 12:18] = 7
    return labels


def one_hot(classes: np.ndarray) -> np.ndarray:
    """Probabilities ``(3, *spatial)`` that are 1 for the given class of each pixel."""
    return np.moveaxis(np.eye(3, dtype=np.float32)[classes], -1, 0)


def perfect_ap(truth: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    return match_counts(truth, labels, thresholds=threshold)[0].ap


# --------------------------------------------------------------------------- targets


def test_touching_objects_are_separated_by_a_boundary():
    labels = touching_squares()
    classes = labels_to_classes(labels)
    assert classes.dtype == np.uint8
    assert set(np.unique(classes)) == {BACKGROUND, INTERIOR, BOUNDARY}
    np.testing.assert_array_equal(classes[labels == 0], BACKGROUND)
    # the shared edge is boundary on both sides
    assert np.all(classes[3:7, 7] == BOUNDARY) and np.all(classes[3:7, 8] == BOUNDARY)
    # so the interiors are three separate components, each inside one object
    interiors, n = ndi.label(classes == INTERIOR)
    assert n == 3
    for k in range(1, n + 1):
        assert len(np.unique(labels[interiors == k])) == 1


def test_single_object_interior_and_inner_edge():
    labels = np.zeros((5, 5), np.uint16)
    labels[1:4, 1:4] = 3
    expected = np.zeros((5, 5), np.uint8)
    expected[1:4, 1:4] = BOUNDARY
    expected[2, 2] = INTERIOR
    np.testing.assert_array_equal(labels_to_classes(labels), expected)


# --------------------------------------------------------------------------- post-processing


def test_objects_are_recovered_from_their_own_class_map():
    truth = touching_squares()
    prob = one_hot(labels_to_classes(truth))
    labels = instances_from_probabilities(prob, seed_threshold=0.6, mask_threshold=0.5, min_size=0)
    assert labels.shape == truth.shape
    assert labels.max() == 3  # the touching squares are not merged
    assert perfect_ap(truth, labels, 0.5) == 1.0
    assert perfect_ap(truth, labels, 1.0) == 1.0  # even pixel for pixel


def test_objects_are_recovered_in_3d():
    truth = np.zeros((6, 8, 12), np.int32)
    truth[1:5, 1:6, 1:6] = 1
    truth[1:5, 1:6, 6:11] = 2  # touching the first one
    prob = one_hot(labels_to_classes(truth))
    labels = instances_from_probabilities(prob, 0.6, 0.5, 0)
    assert labels.shape == truth.shape and labels.max() == 2
    assert perfect_ap(truth, labels, 0.5) == 1.0


def test_small_objects_are_dropped_by_min_size():
    truth = touching_squares()
    prob = one_hot(labels_to_classes(truth))
    # the squares have 36 pixels, the third object 30
    labels = instances_from_probabilities(prob, 0.6, 0.5, min_size=31)
    assert labels.max() == 2
    assert np.all(labels[truth == 7] == 0)


def test_no_seeds_no_objects():
    prob = one_hot(labels_to_classes(touching_squares()))
    prob[INTERIOR] *= 0.5  # interior never above the seed threshold
    assert instances_from_probabilities(prob, 0.6, 0.5, 0).max() == 0


def test_labels_are_consecutive_when_a_seed_lies_outside_the_foreground():
    prob = one_hot(labels_to_classes(touching_squares()))
    # a pixel left of the objects: interior 0.5 is a seed at 0.3, but foreground 0.55 < 0.7
    prob[:, 4, 0] = [0.45, 0.5, 0.05]
    labels = instances_from_probabilities(prob, seed_threshold=0.3, mask_threshold=0.7, min_size=0)
    assert labels[4, 0] == 0
    np.testing.assert_array_equal(np.unique(labels), [0, 1, 2, 3])


def test_remove_small_labels_drops_and_renumbers():
    labels = np.zeros((6, 6), np.int64)
    labels[0, :5] = 9  # 5 pixels
    labels[2, :2] = 4  # 2 pixels
    labels[4:6, 0:5] = 3  # 10 pixels
    out = remove_small_labels(labels, min_size=5)
    assert out.dtype == np.int32
    assert sorted(np.unique(out)) == [0, 1, 2]  # 1..N, no gaps
    assert np.all(out[2, :2] == 0)
    # the order of the labels is kept: 3 -> 1, 9 -> 2
    assert np.all(out[4:6, 0:5] == 1) and np.all(out[0, :5] == 2)
    np.testing.assert_array_equal(out > 0, (labels > 0) & (labels != 4))


def test_remove_small_labels_with_zero_keeps_all():
    labels = np.array([[0, 5, 0, 2]])
    np.testing.assert_array_equal(remove_small_labels(labels, 0), [[0, 2, 0, 1]])


def test_softmax_over_the_class_axis():
    scores = np.array([[0.0, 1000.0], [0.0, 1000.0], [np.log(2.0), 990.0]])[:, None, :]
    prob = softmax(scores)
    assert np.all(np.isfinite(prob))  # large scores do not overflow
    np.testing.assert_allclose(prob.sum(axis=0), 1.0)
    np.testing.assert_allclose(prob[:, 0, 0], [0.25, 0.25, 0.5])
    np.testing.assert_allclose(softmax(scores + 3.0), prob)


# --------------------------------------------------------------------------- the task


def test_make_target_of_instance_labels():
    task = SemanticTask()
    labels = touching_squares()
    np.testing.assert_array_equal(task.make_target(labels), labels_to_classes(labels))
    # whole numbers stored as floats are accepted
    np.testing.assert_array_equal(
        task.make_target(labels.astype(np.float32)), labels_to_classes(labels)
    )


@pytest.mark.parametrize(
    "mask",
    [
        np.array([[0, -1], [1, 1]]),
        np.array([[0, -1.0], [1, 1]]),
        np.array([[0, 0.5], [1, 1]]),
        np.array([[0, np.nan], [1, 1]]),
    ],
)
@pytest.mark.parametrize("instances", [True, False])
def test_make_target_rejects_negative_and_non_integer_masks(mask, instances):
    with pytest.raises(InputError):
        SemanticTask({"instances": instances, "n_classes": 3}).make_target(mask)


def test_make_target_of_class_masks():
    task = SemanticTask({"instances": False, "n_classes": 4})
    mask = np.array([[0, 1], [2, 3]], np.int64)
    target = task.make_target(mask)
    assert target.dtype == np.uint8
    np.testing.assert_array_equal(target, mask)
    with pytest.raises(InputError, match="n_classes is 4"):
        task.make_target(np.array([[0, 4]]))


def scores_for(classes: np.ndarray, k: int = 3, right: bool = True) -> np.ndarray:
    """Confident raw network scores ``(k, *spatial)`` for a class map (or a wrong one)."""
    chosen = classes if right else (classes + 1) % k
    return 10.0 * np.moveaxis(np.eye(k, dtype=np.float32)[chosen], -1, 0)


@pytest.mark.parametrize("instances", [True, False])
def test_loss_is_lower_for_right_scores(instances):
    task = SemanticTask({"instances": instances, "n_classes": 3})
    classes = labels_to_classes(touching_squares())
    target = torch.from_numpy(classes[None])  # a batch of one, uint8 as make_target gives
    right = torch.from_numpy(scores_for(classes)[None])
    wrong = torch.from_numpy(scores_for(classes, right=False)[None])
    low, high = task.loss(right, target), task.loss(wrong, target)
    assert low.ndim == 0
    assert float(low) < 0.01 < 1.0 < float(high)


def test_class_weights_change_the_loss():
    classes = labels_to_classes(touching_squares())
    target = torch.from_numpy(classes[None])
    output = torch.zeros(1, 3, *classes.shape)  # uniform: every pixel costs log 3
    plain = SemanticTask({"class_weights": [1, 1, 1]}).loss(output, target)
    weighted = SemanticTask().loss(output, target)  # boundary weighs 2 by default
    assert float(plain) == pytest.approx(np.log(3), rel=1e-5)
    assert float(weighted) == pytest.approx(np.log(3), rel=1e-5)  # weighted mean of equals
    confident = torch.from_numpy(scores_for(classes)[None])
    confident[0, :, classes == BOUNDARY] = 0.0  # unsure on the boundary only
    assert float(SemanticTask().loss(confident, target)) > float(
        SemanticTask({"class_weights": [1, 1, 1]}).loss(confident, target)
    )


def test_postprocess_returns_instance_labels():
    truth = touching_squares()
    result = SemanticTask().postprocess(scores_for(labels_to_classes(truth)))
    assert isinstance(result, Result)
    assert result.labels.shape == truth.shape and result.labels.dtype == np.int32
    assert result.classes.shape == truth.shape
    assert result.probabilities.shape == (3, *truth.shape)
    np.testing.assert_allclose(result.probabilities.sum(axis=0), 1.0, rtol=1e-5)
    assert perfect_ap(truth, result.labels) == 1.0


def test_postprocess_without_instances_returns_a_class_map():
    classes = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    result = SemanticTask({"instances": False, "n_classes": 4}).postprocess(scores_for(classes, 4))
    assert result.labels is None
    np.testing.assert_array_equal(result.classes, classes)


def test_evaluate_instances_reports_ap_per_threshold():
    task = SemanticTask()
    truth = touching_squares()
    empty = np.zeros_like(truth)
    results = [Result(labels=truth.copy()), Result(labels=empty)]
    report = task.evaluate(results, [truth, truth], names=["good", "missed"])
    for t in DEFAULT_THRESHOLDS:
        assert f"ap@{t:g}" in report
    assert {"ap@0.5", "ap@0.9", "n_images"} <= set(report)
    assert report["n_images"] == 2
    assert report["ap@0.5"] == pytest.approx(0.5)  # 3 of 6 objects found, no false ones


def test_evaluate_class_maps_reports_iou_per_class():
    task = SemanticTask({"instances": False, "n_classes": 2})
    truth = np.array([[0, 0, 1, 1]])
    report = task.evaluate([Result(classes=np.array([[0, 1, 1, 1]]))], [truth])
    assert report["iou_class0"] == pytest.approx(0.5)
    assert report["iou_class1"] == pytest.approx(2 / 3)
    assert report["mean_iou"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert report["n_images"] == 1


def unsure_scores(labels: np.ndarray) -> np.ndarray:
    """Log-probabilities of a net that is right but not confident about the interior (0.55)."""
    classes = labels_to_classes(labels)
    table = np.array([[0.90, 0.05, 0.05], [0.05, 0.55, 0.40], [0.05, 0.25, 0.70]], dtype=np.float32)
    return np.log(np.moveaxis(table[classes], -1, 0))


def mean_ap(task: SemanticTask, outputs, truths) -> float:
    report = task.evaluate([task.postprocess(o) for o in outputs], truths)
    return float(np.mean([report[f"ap@{t:g}"] for t in (0.5, 0.6, 0.7)]))


def test_tune_picks_thresholds_at_least_as_good_as_the_defaults():
    truths = [touching_squares(), np.rot90(touching_squares()).copy()]
    outputs = [unsure_scores(t) for t in truths]
    default = SemanticTask()
    tuned = SemanticTask()
    updates = tuned.tune(outputs, truths)
    assert set(updates) == {"seed_threshold", "mask_threshold", "min_seed_size"}
    assert tuned.params.seed_threshold == updates["seed_threshold"]
    assert tuned.params.mask_threshold == updates["mask_threshold"]
    assert updates["seed_threshold"] < 0.55  # seeds need interior probability above it
    # the default seed threshold 0.6 finds no seed at all here
    assert mean_ap(default, outputs, truths) == 0.0
    assert mean_ap(tuned, outputs, truths) == 1.0
    assert default.params.seed_threshold == 0.6  # tuning one task does not change another


def test_tune_never_does_worse_than_the_defaults():
    truths = [touching_squares()]
    outputs = [scores_for(labels_to_classes(truths[0]))]  # defaults are already perfect
    tuned = SemanticTask()
    tuned.tune(outputs, truths)
    assert mean_ap(tuned, outputs, truths) >= mean_ap(SemanticTask(), outputs, truths) == 1.0


def test_tune_does_nothing_for_class_maps():
    task = SemanticTask({"instances": False, "n_classes": 2})
    assert task.tune([np.zeros((2, 4, 4))], [np.zeros((4, 4), int)]) == {}


# --------------------------------------------------------------------------- get_task


def test_get_task_builds_the_semantic_task():
    task = get_task("semantic")
    assert isinstance(task, SemanticTask) and "semantic" in TASKS
    assert task.out_channels == 3
    assert get_task("semantic", {"instances": False, "n_classes": 5}).out_channels == 5
    assert get_task("semantic", {"min_size": 0}).params.min_size == 0


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown task 'nope'.*semantic"):
        get_task("nope")


@pytest.mark.parametrize(
    "params",
    [
        {"n_classes": 4},  # instances need exactly 3 classes
        {"class_weights": [1.0, 2.0]},  # one weight per class
        {"seed_threshold": 1.5},
        {"mask_threshold": 0},
        {"min_size": -1},
        {"instances": False, "n_classes": 1},
        {"colour": "red"},  # unknown setting
    ],
)
def test_bad_params_are_a_config_error(params):
    with pytest.raises(ConfigError, match="invalid settings for task 'semantic'") as caught:
        get_task("semantic", params)
    assert "\n" not in str(caught.value) and "errors.pydantic.dev" not in str(caught.value)


def test_a_bad_setting_is_named_by_its_task_params_path():
    with pytest.raises(ConfigError, match=r"'task_params\.colour': Extra inputs"):
        get_task("semantic", {"colour": "red"})


def test_a_wider_boundary_leaves_less_interior():
    truth = np.zeros((20, 20), np.int32)
    truth[2:12, 2:12] = 1
    thin, wide = labels_to_classes(truth), labels_to_classes(truth, boundary_width=2)
    assert (thin == 1).sum() == 8 * 8 and (wide == 1).sum() == 6 * 6
    assert ((wide == 2) == ((truth > 0) & (wide != 1))).all()
