"""Back from flows to labels: following flows, clustering end points, flow error, cleanup."""

import numpy as np
import pytest
import torch
from skimage.draw import disk

from deepscope.errors import ConfigError, InputError
from deepscope.flows import (
    cluster_endpoints,
    flow_error,
    flow_targets,
    flows_to_labels,
    follow_flows,
)
from deepscope.flows.dynamics import merge_fragments
from deepscope.metrics import iou_matrix

torch.set_num_threads(1)


def touching_discs_and_rod() -> np.ndarray:
    """Three touching discs (later ones cut into earlier ones) and a bent rod apart."""
    labels = np.zeros((96, 96), np.int32)
    for k, centre in enumerate([(20, 20), (20, 38), (36, 29)], start=1):
        labels[disk(centre, 10, shape=labels.shape)] = k
    yy, xx = np.indices(labels.shape)
    r = np.hypot(yy - 40, xx - 40)
    rod = (r >= 40) & (r < 47) & (yy >= 40) & (xx >= 40)  # quarter ring, 7 px wide
    labels[rod] = 9
    return labels


def touching_balls() -> np.ndarray:
    zz, yy, xx = np.indices((24, 24, 36))
    labels = np.zeros(zz.shape, np.int32)
    for k, (cz, cy, cx) in enumerate([(12, 12, 10), (12, 12, 25)], start=1):
        ball = (zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= 8**2
        labels[ball] = k
    return labels


def matched_ious(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of each true object with its best prediction, checking the pairing is one-to-one."""
    iou = iou_matrix(truth, pred)
    assert iou.shape[0] == iou.shape[1], f"{iou.shape[0]} objects, {iou.shape[1]} predicted"
    best = iou.argmax(axis=1)
    assert len(set(best.tolist())) == len(best)
    return iou.max(axis=1)


def test_following_a_constant_field_moves_pixels_and_stops_at_the_border():
    flows = np.zeros((2, 10, 12), np.float32)
    flows[1] = 1.0  # everything moves right (+x) one pixel per step
    mask = np.zeros((10, 12), bool)
    mask[3, 2] = mask[5, 9] = True
    final = follow_flows(flows, mask, n_steps=4)
    assert final.dtype == np.float32 and final.shape == (2, 2)
    assert np.allclose(final, [[3, 6], [5, 11]])  # the second is clamped at x = 11


def test_following_interpolates_between_pixels_and_accepts_tensors():
    flows = np.zeros((2, 4, 4), np.float32)
    flows[0, :, 1] = 1.0  # +y flow only in column 1
    mask = np.zeros((4, 4), bool)
    mask[0, 1] = True
    flows_t = torch.from_numpy(flows)
    final = follow_flows(flows_t, mask, n_steps=1, step=0.5)
    assert np.allclose(final, [[0.5, 1]])
    # from x = 1.5 the field is interpolated half way between columns 1 and 2
    flows[1, 0, 0:2] = 0.5
    mask[0, 1], mask[0, 0] = False, True
    final = follow_flows(flows, mask, n_steps=2, step=1.0)
    assert np.allclose(final, [[0.5, 1.0]])


def test_early_stop_leaves_settled_pixels_within_a_pixel_of_the_full_run():
    labels = touching_discs_and_rod()
    flows = flow_targets(labels)
    mask = labels > 0
    quick = follow_flows(flows, mask)  # settled pixels stop moving after a few tens of steps
    full = follow_flows(flows, mask, early_stop=False)
    assert np.abs(quick - full).max() < 1
    same = cluster_endpoints(quick, mask, mask.shape) == cluster_endpoints(full, mask, mask.shape)
    assert same.all()


@pytest.mark.parametrize("stop_at_reversal", [False, True])
def test_cpu_kernel_follows_the_same_paths_as_the_torch_loop(stop_at_reversal):
    # the CPU runs a compiled per-pixel loop; accelerators move all pixels as one tensor
    from deepscope.flows.dynamics import _follow_torch

    rng = np.random.default_rng(0)
    for labels in (touching_discs_and_rod(), touching_balls()):
        flows = flow_targets(labels, method="distance" if stop_at_reversal else "heat")
        flows += rng.normal(0, 0.05, flows.shape).astype(np.float32)  # off the pixel grid
        mask = labels > 0
        coords = np.stack(np.nonzero(mask), axis=1).astype(np.float32)
        kernel = follow_flows(flows, mask, n_steps=60, stop_at_reversal=stop_at_reversal)
        loop = _follow_torch(flows, coords, mask.shape, 60, 1.0, "cpu", stop_at_reversal, 10)
        assert np.abs(kernel - loop).max() < 1e-3


def test_clustering_groups_end_points_that_meet():
    mask = np.zeros((30, 30), bool)
    mask[2:8, 2:8] = True  # 36 pixels that will end near (10, 10)
    mask[20:25, 20:28] = True  # 40 pixels that will end near (20, 15)
    mask[28, 28] = True  # a straggler that ends alone
    ys, _ = np.nonzero(mask)  # the rows of `final` follow this order
    first = ys < 10
    rng = np.random.default_rng(0)
    final = rng.uniform(-1, 1, (len(ys), 2))
    final[first] += np.array([10, 10])
    final[~first] += np.array([20, 15])
    final[-1] = (2, 27)
    labels = cluster_endpoints(final, mask, mask.shape)
    assert labels.dtype == np.int32
    assert set(np.unique(labels[2:8, 2:8])) == {2}  # fewer pixels: the weaker seed
    assert set(np.unique(labels[20:25, 20:28])) == {1}
    assert labels[28, 28] == 0 and labels[~mask].max() == 0


def test_touching_discs_and_bent_rod_are_recovered_from_their_flows():
    labels = touching_discs_and_rod()
    flows = flow_targets(labels)
    pred = flows_to_labels(labels > 0, flows)
    assert pred.dtype == np.int32 and pred.max() == 4
    assert np.all(matched_ious(labels, pred) > 0.9)


def test_touching_balls_are_recovered_in_3d():
    labels = touching_balls()
    flows = flow_targets(labels)
    probability = (labels > 0).astype(np.float32)
    pred = flows_to_labels(probability, flows, n_steps=100)
    assert pred.shape == labels.shape and pred.max() == 2
    assert np.all(matched_ious(labels, pred) > 0.9)


def test_distance_flows_are_recovered_by_stopping_on_the_medial_axis():
    labels = touching_discs_and_rod()
    flows = flow_targets(labels, method="distance")
    pred = flows_to_labels(labels > 0, flows, method="distance")
    assert pred.max() == 4
    assert np.all(matched_ious(labels, pred) > 0.9)

    # why the stop matters: pixels sliding along the rod's medial axis gather at a few
    # scattered points, and the rod falls apart into several pieces
    mask = labels > 0
    sliding = follow_flows(flows, mask)
    pieces = cluster_endpoints(sliding, mask, mask.shape, n_grow=None)
    assert len(np.unique(pieces[labels == 9])) > 2


def test_flow_error_is_zero_for_exact_flows_and_large_for_wrong_ones():
    labels = np.zeros((40, 60), np.int32)
    labels[disk((20, 15), 10)] = 2
    labels[disk((20, 45), 10)] = 4
    flows = flow_targets(labels)
    flows[:, labels == 4] *= -1  # object 4 flows outwards
    errors = flow_error(labels, flows)
    assert errors.shape == (4,)  # entry i is label i + 1
    assert np.isnan(errors[0]) and np.isnan(errors[2])  # labels 1 and 3 are absent
    assert errors[1] < 1e-6
    assert errors[3] > 3.5  # opposite unit vectors: |a - b|**2 = 4 (0 at the source)


def test_flow_error_filter_removes_an_object_with_noisy_flows():
    labels = touching_discs_and_rod()
    flows = flow_targets(labels)
    noisy = labels == 2
    rng = np.random.default_rng(1)
    flows[:, noisy] = flows[:, noisy] + rng.normal(0, 1.0, (2, noisy.sum()))
    kept_all = flows_to_labels(labels > 0, flows, flow_threshold=None)
    filtered = flows_to_labels(labels > 0, flows, flow_threshold=0.4)

    # without the check, an object is made of the noisy disc; with it, none is (a few of
    # its pixels may have wandered into a neighbour's sink and joined that neighbour)
    assert iou_matrix(noisy, kept_all).max() > 0.5
    assert iou_matrix(noisy, filtered).max() < 0.05
    assert np.mean(filtered[noisy] == 0) > 0.95
    # the other objects are all kept, unchanged
    for k in (1, 3, 9):
        iou = iou_matrix(labels == k, filtered)
        assert iou.max() > 0.9, k
    assert filtered.max() == 3


def test_halves_of_a_rod_whose_flows_meet_in_one_centre_are_joined():
    rod = np.zeros((40, 80), np.int32)
    rod[15:25, 10:70] = 1
    flows = flow_targets(rod)  # the flows of one rod
    halves = rod.copy()
    halves[:, 40:] *= 2  # cut in the middle, as a clustering might at a constriction
    errors = flow_error(halves, flows)
    assert (errors > 0.4).all()  # each half alone fails the check
    joined = merge_fragments(halves.copy(), flows, errors, 0.4)
    np.testing.assert_array_equal(joined > 0, rod > 0)
    assert np.unique(joined[joined > 0]).size == 1
    assert errors[0] < 0.05 and np.isnan(errors[1])


def test_touching_cells_with_their_own_flows_stay_apart():
    labels = touching_discs_and_rod()
    flows = flow_targets(labels)
    errors = flow_error(labels, flows)
    errors[[0, 1]] = 1.0  # pretend discs 1 and 2 failed the check
    kept = merge_fragments(labels.copy(), flows, errors, 0.4)
    np.testing.assert_array_equal(kept, labels)


def test_small_objects_are_removed_and_holes_filled():
    labels = np.zeros((48, 48), np.int32)
    labels[disk((20, 20), 10)] = 1
    labels[38:42, 38:42] = 2  # 16 pixels
    flows = flow_targets(labels)
    probability = (labels > 0).astype(np.float32)
    probability[19:22, 23:25] = 0.1  # a hole of low probability inside the disc

    pred = flows_to_labels(probability, flows, min_size=15)
    assert pred.max() == 2
    assert pred[20, 23] == pred[20, 20] > 0  # the hole is filled
    assert np.all(matched_ious(labels, pred) > 0.95)

    pred = flows_to_labels(probability, flows, min_size=17)
    assert pred.max() == 1 and pred[38:42, 38:42].max() == 0


def test_reconstruction_is_deterministic():
    labels = touching_discs_and_rod()
    rng = np.random.default_rng(2)
    flows = flow_targets(labels) + rng.normal(0, 0.3, (2, *labels.shape)).astype(np.float32)
    probability = (labels > 0) * 0.9
    first = flows_to_labels(probability, flows, flow_threshold=None)
    second = flows_to_labels(probability, flows, flow_threshold=None)
    assert first.max() > 0
    assert np.array_equal(first, second)


def test_nothing_in_nothing_out_and_bad_shapes_are_refused():
    flows = np.zeros((2, 16, 16), np.float32)
    empty = flows_to_labels(np.zeros((16, 16)), flows)
    assert empty.shape == (16, 16) and empty.max() == 0
    assert follow_flows(flows, np.zeros((16, 16), bool)).shape == (0, 2)
    with pytest.raises(InputError):
        flows_to_labels(np.ones((16, 16)), np.zeros((3, 16, 16)))
    with pytest.raises(InputError):
        cluster_endpoints(np.zeros((4, 2)), np.ones((2, 2), bool), (3, 3))
    with pytest.raises(ConfigError):
        flows_to_labels(np.ones((16, 16)), flows, method="magic")
