"""Task flows on large images: block-wise reconstruction with object-level stitching.

Each block reconstructs labels on its read window (core + halo) and keeps the objects whose
centroid lies in its core and that the window does not cut; the merge paints them into one
label image. Objects crossing block borders must come out once and whole.
"""

import warnings

import numpy as np
import pytest

from deepscope.metrics import evaluate_instances
from deepscope.predict.stitch import Block, plan_blocks, predict_blockwise
from deepscope.tasks import get_task
from deepscope.tasks.flows import FLOW_SCALE

VAL_IMAGE = "dsb2018/fluorescence/val/images/538b7673d507014d.tif"  # 603 x 1272, ~200 nuclei


def perfect_output(task, labels: np.ndarray) -> np.ndarray:
    """The raw output a perfect network would give for ``labels``: scaled flows, logit."""
    target = task.batch_target(task.make_target(labels)[None])[0]
    logit = np.where(target[-1] > 0, 8.0, -8.0)
    return np.concatenate([FLOW_SCALE * target[:-1], logit[None]]).astype(np.float32)


def discs_and_rods(shape=(200, 200), seed=0) -> np.ndarray:
    """About 30 separate discs (radius 4-8) and rods (up to 26 px long), several of them
    centred on the core borders of a 64-pixel block plan (56, 112, 168 with align 8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(shape)
    labels = np.zeros(shape, np.int32)
    # forced on block borders first, then random positions
    centres = [(56, 30), (112, 56), (168, 112), (30, 168), (56, 56), (112, 113), (150, 56)]
    k, tries = 0, 0
    while k < 30 and tries < 2000:
        tries += 1
        if centres:
            cy, cx = centres.pop(0)
        else:
            cy, cx = rng.uniform(10, shape[0] - 10), rng.uniform(10, shape[1] - 10)
        if k % 2 == 0:
            obj = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(4, 8) ** 2
        else:  # a capsule: points within `width` of a segment of length `length`
            length, width = rng.uniform(14, 26), rng.uniform(2.5, 3.5)
            angle = rng.uniform(0, np.pi)
            dy, dx = np.sin(angle), np.cos(angle)
            t = np.clip((yy - cy) * dy + (xx - cx) * dx, -length / 2, length / 2)
            obj = (yy - cy - t * dy) ** 2 + (xx - cx - t * dx) ** 2 <= width**2
        grown = (np.abs(yy - cy) <= 16) & (np.abs(xx - cx) <= 16) & (labels > 0)
        near = np.zeros_like(obj)
        near[1:-1, 1:-1] = obj[:-2, 1:-1] | obj[2:, 1:-1] | obj[1:-1, :-2] | obj[1:-1, 2:]
        if ((obj | near) & grown).any() or obj.sum() < 20:
            continue
        k += 1
        labels[obj] = k
    return labels


def stitched(task, truth: np.ndarray, block: int = 64, halo: int = 32):
    """Block-wise result of perfect outputs, and the per-block parts."""
    parts = []

    def block_objects(b: Block):
        parts.append(task.block_objects(perfect_output(task, truth[b.read]), b))
        return parts[-1]

    result = predict_blockwise(
        block_objects, lambda p: task.merge_objects(p, truth.shape), truth.shape, block, halo, 8
    )
    return result, parts


def ap(truth: np.ndarray, pred: np.ndarray, iou: float) -> float:
    return evaluate_instances([(truth, pred)], thresholds=(iou,)).to_dict()[f"ap@{iou:g}"]


def test_objects_crossing_block_borders_come_out_once_and_whole():
    task = get_task("flows")
    truth = discs_and_rods()
    n = int(truth.max())
    assert n >= 28
    blocks = plan_blocks(truth.shape, 64, 32, 8)
    crossing = sum(
        len({b for b, blk in enumerate(blocks) if (truth[blk.core] == k).any()}) > 1
        for k in range(1, n + 1)
    )
    assert crossing >= 5  # the test really exercises the stitching

    result, parts = stitched(task, truth)
    labels = result.labels
    assert labels.dtype == np.int32 and labels.shape == truth.shape
    # every object owned by a block (one near a core border by both), kept once, 1..n
    assert sum(p.count for p in parts) >= n
    assert labels.max() == n and len(np.unique(labels)) == n + 1
    report = evaluate_instances([(truth, labels)], thresholds=(0.9,)).to_dict()
    assert report["tp@0.9"] == n and report["fp@0.9"] == 0
    for k in range(1, n + 1):  # not cut: one predicted label per true object
        inside = np.unique(labels[truth == k])
        assert len(inside[inside > 0]) == 1
    # parts are compact: crops no larger than the read window
    assert all(p.labels.shape[0] <= 64 + 2 * 32 for p in parts)


def test_blockwise_labels_match_the_whole_image_reconstruction():
    task = get_task("flows")
    truth = discs_and_rods(seed=1)
    whole = task.postprocess(perfect_output(task, truth))
    result, _ = stitched(task, truth)
    assert ap(whole.labels, result.labels, 0.9) >= 0.95
    assert result.probabilities.shape == whole.probabilities.shape
    assert np.allclose(result.probabilities, whole.probabilities, atol=1 / 255)


def test_overlapping_objects_of_two_blocks_are_kept_once():
    task = get_task("flows", {"min_size": 5})
    disc = np.zeros((40, 40), np.int32)
    disc[10:20, 10:20] = 1
    part = task.block_objects(perfect_output(task, disc), Block(*[(slice(0, 40),) * 2] * 2))
    shifted = type(part)(**{**part.__dict__, "offset": (part.offset[0] + 1, part.offset[1])})
    far = type(part)(**{**part.__dict__, "offset": (part.offset[0] + 15, part.offset[1])})
    labels = task.merge_objects([part, shifted, far], (40, 40)).labels
    assert labels.max() == 2  # the near-duplicate dropped, the separate copy kept
    assert (labels == 1).sum() == 100


def test_an_object_larger_than_the_halo_is_dropped_with_a_warning_not_kept_in_pieces():
    task = get_task("flows")
    truth = np.zeros((128, 128), np.int32)
    truth[60:66, 20:110] = 1  # a 90-pixel rod across the border at x = 64, halo 16
    truth[20:30, 20:30] = 2
    with pytest.warns(UserWarning, match="larger overlap .--overlap"):
        result, _ = stitched(task, truth, block=64, halo=16)
    assert result.labels.max() == 1 and (result.labels[truth == 2] > 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result, _ = stitched(task, truth, block=64, halo=64)
    assert ap(truth, result.labels, 0.9) == 1.0


def test_the_real_model_gives_the_same_objects_block_by_block(shared_data):
    from deepscope import load_model
    from deepscope.io import read_image

    path = shared_data / VAL_IMAGE
    if not path.exists():
        pytest.skip(f"{path} is absent")
    image = read_image(path).data[:500, :500]
    model = load_model("flows-nuclei-fluo")
    whole = model.predict(image, tile=None).labels
    blockwise = model.predict(image, tile=256)
    assert blockwise.labels.shape == image.shape
    assert blockwise.probabilities.shape == (1, *image.shape)
    assert ap(whole, blockwise.labels, 0.5) >= 0.95


def test_an_object_two_blocks_see_on_either_side_of_their_border_is_kept_once():
    # Two blocks whose cores meet at y = 32 predict the same disc a pixel apart: the upper
    # block sees its centroid just below the border, the lower one just above it, so by
    # centroid alone each would leave it to the other and it would be lost.
    from deepscope.predict.stitch import own_labels, paint_labels

    upper = Block((slice(0, 32), slice(0, 64)), (slice(0, 48), slice(0, 64)), (64, 64))
    lower = Block((slice(32, 64), slice(0, 64)), (slice(16, 64), slice(0, 64)), (64, 64))
    seen_by_upper = np.zeros((48, 64), np.int32)
    seen_by_upper[27:38, 20:30] = 1  # centroid y = 32.0, in the lower core
    seen_by_lower = np.zeros((48, 64), np.int32)
    seen_by_lower[26 - 16 : 37 - 16, 20:30] = 1  # centroid y = 31.0, in the upper core

    parts = [own_labels(seen_by_upper, upper), own_labels(seen_by_lower, lower)]
    labels, _ = paint_labels(parts, (64, 64), min_size=1)

    assert labels.max() == 1
    assert (labels == 1).sum() == 110
