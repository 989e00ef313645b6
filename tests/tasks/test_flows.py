"""Task flows: per-patch targets, loss, post-processing, tuning, and a tiny training run."""

import json

import numpy as np
import torch
from scipy import ndimage

from deepscope.api import evaluate, load_model, train
from deepscope.data.augment import Augmentation
from deepscope.data.synthetic import synthetic_nuclei
from deepscope.metrics import evaluate_instances
from deepscope.tasks import get_task
from deepscope.tasks.flows import FLOW_SCALE
from deepscope.train.dataset import PatchSampler, Sample


def perfect_output(task, labels: np.ndarray) -> np.ndarray:
    """The raw network output a perfect model would give for ``labels``."""
    target = task.batch_target(task.make_target(labels)[None])[0]
    logit = np.where(target[-1] > 0, 8.0, -8.0)
    return np.concatenate([FLOW_SCALE * target[:-1], logit[None]]).astype(np.float32)


def test_targets_are_flows_and_the_object_mask_of_each_augmented_patch():
    _, labels = synthetic_nuclei((64, 64), n=4, seed=1)
    task = get_task("flows")
    target = task.batch_target(task.make_target(labels)[None])
    assert target.shape == (1, 3, 64, 64)
    assert np.array_equal(target[0, 2], labels > 0)
    length = np.hypot(target[0, 0], target[0, 1])
    assert np.all(length[labels == 0] == 0)
    assert np.mean(np.isclose(length[labels > 0], 1, atol=1e-3)) > 0.95


def test_loss_prefers_the_perfect_output():
    _, labels = synthetic_nuclei((48, 48), n=3, seed=2)
    task = get_task("flows")
    target = torch.from_numpy(task.batch_target(task.make_target(labels)[None]))
    perfect = torch.from_numpy(perfect_output(task, labels)[None])
    assert task.loss(perfect, target) < 0.1 * task.loss(torch.zeros_like(perfect), target)


def test_postprocess_turns_a_perfect_output_back_into_the_objects():
    _, labels = synthetic_nuclei((96, 96), n=6, seed=3)
    task = get_task("flows")
    result = task.postprocess(perfect_output(task, labels))
    report = evaluate_instances([(labels, result.labels)]).to_dict()
    assert report["ap@0.5"] == 1.0 and report["ap@0.9"] > 0.8
    assert result.probabilities.shape == (1, 96, 96)


def test_tuning_keeps_thresholds_that_work():
    task = get_task("flows")
    pairs = [synthetic_nuclei((64, 64), n=4, seed=s)[1] for s in (4, 5)]
    tuned = task.tune([perfect_output(task, t) for t in pairs], pairs)
    assert set(tuned) == {"prob_threshold", "flow_threshold", "min_size"}
    assert task.params.prob_threshold == tuned["prob_threshold"]


def test_tuning_chooses_a_smallest_object_that_drops_debris_and_keeps_nuclei():
    task = get_task("flows")
    truths = [synthetic_nuclei((96, 96), n=5, seed=s)[1] for s in (6, 7)]
    outputs = []
    for labels in truths:
        with_debris = labels.copy()
        background = np.argwhere(ndimage.binary_dilation(labels > 0, iterations=4) == 0)
        for k, (y, x) in enumerate(background[:: len(background) // 4][:4]):
            with_debris[y : y + 4, x : x + 4] = labels.max() + 1 + k  # 4x4 specks: not nuclei
        outputs.append(perfect_output(task, with_debris))
    task.params = task.params.model_copy(update={"min_size": 0})
    tuned = task.tune(outputs, truths)
    nucleus_sizes = np.concatenate([np.bincount(t.ravel())[1:] for t in truths])
    assert 16 < tuned["min_size"] <= nucleus_sizes[nucleus_sizes > 0].min()
    report = evaluate_instances(
        [(t, task.postprocess(o).labels) for o, t in zip(outputs, truths)]
    ).to_dict()
    assert report["ap@0.5"] == 1.0


def test_a_tiny_flows_model_trains_predicts_and_scores_like_other_instance_tasks(
    tiny_settings, nuclei_folders
):
    folder = train(**{**tiny_settings, "task": "flows", "name": "tiny-flows"})
    spec = json.loads((folder / "model.json").read_text())
    assert spec["network"]["out_channels"] == 3 and spec["tags"]["architecture"] == "flows"
    assert "ap@0.5" in spec["validation"]
    model = load_model(folder, device="cpu")
    image = np.zeros((64, 64), np.float32)
    assert model.predict(image).labels.shape == (64, 64)
    metrics = evaluate(folder, nuclei_folders["val_images"], nuclei_folders["val_masks"])
    assert {"ap@0.5", "f1@0.5", "precision@0.5", "recall@0.5", "n_images"} <= set(metrics)


def test_flip_averaged_flows_still_point_where_the_unflipped_ones_do():
    from deepscope.predict.predictor import with_flips

    _, labels = synthetic_nuclei((64, 80), n=5, seed=4)
    task = get_task("flows")

    def network(batch):  # a perfect network whose input is the label image itself
        return np.stack([perfect_output(task, np.rint(b[0]).astype(np.int32)) for b in batch])

    batch = labels[None, None].astype(np.float32)
    direct = network(batch)[0, :2]
    inside = labels > 0

    def agreement(unflip):
        averaged = with_flips(network, unflip)(batch)[0, :2]
        return np.mean((direct * averaged).sum(axis=0)[inside] / FLOW_SCALE**2)

    assert agreement(task.unflip) > 0.9  # mean cosine-like agreement with the direct flows
    assert agreement(lambda out, axes: np.flip(out, axes)) < 0.5  # flows not turned back


def test_zoomed_and_turned_training_patches_get_the_flows_of_the_warped_cells():
    image, labels = synthetic_nuclei((96, 96), n=8, seed=1)
    task = get_task("flows")
    sample = Sample(
        "a",
        image[None].astype(np.float32),
        task.make_target(labels),
        labels,
        np.flatnonzero(labels),
    )
    warps = Augmentation(scale=(0.7, 1.5), any_angle=True, intensity_shift=(0.0, 0.0))
    sampler = PatchSampler(
        [sample], 32, 8, warps, 1.0, np.random.default_rng(0), task.prepare_batch
    )
    images, targets = sampler.batch()
    assert images.shape == (8, 1, 32, 32) and targets.shape == (8, 3, 32, 32)
    inside = targets[:, -1] > 0
    assert inside.any()
    lengths = np.linalg.norm(targets[:, :2], axis=1)
    assert np.median(np.abs(lengths[inside] - 1)) < 0.05  # unit flows inside every cell
    assert images[:, 0][inside].mean() > images[:, 0][~inside].mean() + 0.3  # still aligned
