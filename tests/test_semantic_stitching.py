"""Task semantic on large images: the seeded watershed runs block by block and objects are
stitched like those of the other instance tasks (``predict.stitch``), so the memory of a
very large image is that of a block, not of the whole image."""

import numpy as np
import pytest

from deepscope.metrics import evaluate_instances
from deepscope.predict.stitch import Block, plan_blocks, predict_blockwise
from deepscope.tasks.semantic import SemanticTask, labels_to_classes


def touching_pairs(shape=(200, 200)) -> np.ndarray:
    """Pairs of touching 8x8 squares every 20 pixels; many straddle the cores of a
    64-pixel block plan (borders at 56, 112, 168 with align 8)."""
    labels = np.zeros(shape, np.int32)
    k = 0
    for y in range(3, shape[0] - 10, 20):
        for x in range(5, shape[1] - 18, 20):
            for dx in (0, 8):
                k += 1
                labels[y : y + 8, x + dx : x + dx + 8] = k
    return labels


def confident_scores(labels: np.ndarray) -> np.ndarray:
    """Raw scores a perfect network gives: the right class of each pixel at +10."""
    classes = labels_to_classes(labels)
    return 10.0 * np.moveaxis(np.eye(3, dtype=np.float32)[classes], -1, 0)


def stitched(task: SemanticTask, scores: np.ndarray, block: int = 64, halo: int = 32):
    shape = scores.shape[1:]
    return predict_blockwise(
        lambda b: task.block_objects(scores[(slice(None), *b.read)], b),
        lambda parts: task.merge_objects(parts, shape),
        shape,
        block,
        halo,
        8,
    )


def ap(truth: np.ndarray, pred: np.ndarray, iou: float) -> float:
    return evaluate_instances([(truth, pred)], thresholds=(iou,)).to_dict()[f"ap@{iou:g}"]


def test_touching_objects_across_block_borders_come_out_once_and_whole():
    truth = touching_pairs()
    n = int(truth.max())
    blocks = plan_blocks(truth.shape, 64, 32, 8)
    crossing = sum(
        len({i for i, b in enumerate(blocks) if (truth[b.core] == k).any()}) > 1
        for k in range(1, n + 1)
    )
    assert crossing >= 20  # the test really exercises the stitching

    result = stitched(SemanticTask(), confident_scores(truth))
    assert result.labels.dtype == np.int32 and result.labels.shape == truth.shape
    assert result.labels.max() == n and len(np.unique(result.labels)) == n + 1
    assert ap(truth, result.labels, 0.9) == 1.0
    for k in range(1, n + 1):  # not cut: one predicted object per true one
        inside = np.unique(result.labels[truth == k])
        assert len(inside[inside > 0]) == 1


def test_objects_on_the_image_edge_are_kept_however_thin_the_last_core():
    # 49 px in 16-px blocks: the last core is 1 px thick, so squares on the bottom and right
    # edges have their centroids in the cores before it, whose windows end at the image edge
    truth = np.zeros((49, 49), np.int32)
    for k, start in enumerate(range(2, 40, 9)):
        truth[43:49, start : start + 6] = 2 * k + 1
        truth[start : start + 6, 43:49] = 2 * k + 2
    blocks = plan_blocks(truth.shape, 16, 8, 8)
    assert min(b.core[0].stop - b.core[0].start for b in blocks) >= 8  # balanced cores

    result = stitched(SemanticTask(), confident_scores(truth), block=16, halo=8)
    assert ap(truth, result.labels, 0.9) == 1.0


def test_blockwise_result_matches_the_whole_image_postprocessing():
    truth = touching_pairs()
    scores = confident_scores(truth)
    scores += np.random.default_rng(0).normal(0, 2, scores.shape).astype(np.float32)
    task = SemanticTask({"min_seed_size": 5})
    whole = task.postprocess(scores)
    blockwise = stitched(task, scores)
    assert ap(whole.labels, blockwise.labels, 0.9) >= 0.97
    assert blockwise.probabilities.shape == whole.probabilities.shape == (3, *truth.shape)
    assert np.allclose(blockwise.probabilities, whole.probabilities, atol=1 / 255)
    assert (blockwise.classes == whole.classes).mean() > 0.99  # ties of rounded maps differ


def test_only_instance_labels_are_stitched_class_maps_are_tiled_as_images():
    assert SemanticTask().predicts_objects
    assert not SemanticTask({"instances": False, "n_classes": 4}).predicts_objects


def test_one_block_owns_every_object_of_a_window_that_is_the_whole_image():
    truth = touching_pairs((60, 60))
    whole_block = Block(*[(slice(0, 60),) * 2] * 2)
    part = SemanticTask().block_objects(confident_scores(truth), whole_block)
    assert part.count == truth.max()
    assert part.probability.dtype == np.uint8 and part.probability.shape == (3, 60, 60)


def test_the_real_model_gives_the_same_objects_block_by_block(shared_data):
    from deepscope import load_model
    from deepscope.io import read_image

    path = shared_data / "dsb2018/fluorescence/val/images/538b7673d507014d.tif"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    image = read_image(path).data[:500, :500]
    model = load_model("unet-nuclei-fluo", precision="float32")
    whole = model.predict(image, tile=None).labels
    blockwise = model.predict(image, tile=256)
    assert blockwise.labels.shape == blockwise.classes.shape == image.shape
    assert blockwise.probabilities.shape == (3, *image.shape)
    assert ap(whole, blockwise.labels, 0.5) >= 0.95


def test_volumes_are_stitched_block_by_block_too():
    truth = np.zeros((48, 48, 48), np.int32)
    k = 0
    for z in range(4, 40, 12):
        for y in range(4, 40, 12):
            for x in (4, 12):  # pairs of touching 8-voxel cubes
                k += 1
                truth[z : z + 8, y : y + 8, x + 2 * (y % 3) : x + 2 * (y % 3) + 8] = k
    task = SemanticTask({"n_classes": 3})
    result = stitched(task, confident_scores(truth), block=16, halo=8)
    assert len(plan_blocks(truth.shape, 16, 8, 8)) > 8
    assert result.labels.shape == truth.shape and result.labels.max() == k
    assert ap(truth, result.labels, 0.9) == 1.0
