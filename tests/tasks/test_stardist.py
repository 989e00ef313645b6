"""The stardist task: targets, loss, post-processing, threshold tuning, block stitching."""

import numpy as np
import pytest
import torch

from deepscope.data.augment import Augmentation
from deepscope.data.synthetic import synthetic_nuclei
from deepscope.errors import ConfigError
from deepscope.metrics import evaluate_instances
from deepscope.predict.stitch import Block, plan_blocks, predict_blockwise
from deepscope.tasks import get_task
from deepscope.tasks.stardist import StarDistTask
from deepscope.train.dataset import PatchSampler, Sample


def perfect_output(task: StarDistTask, labels: np.ndarray) -> np.ndarray:
    """The raw output a perfect network would give: probability logits and distances."""
    target = task.batch_target(labels[None].astype(np.int32))[0]
    prob = np.clip(target[0], 1e-4, 1 - 1e-4)
    return np.concatenate([np.log(prob / (1 - prob))[None], target[1:]])


def nuclei(shape=(96, 128), n=12, seed=0) -> np.ndarray:
    return synthetic_nuclei(shape, n=n, radius=(4.0, 8.0), seed=seed)[1].astype(np.int32)


def ap(truth: np.ndarray, labels: np.ndarray, iou: float = 0.5) -> float:
    return evaluate_instances([(truth, labels)], thresholds=(iou,)).to_dict()[f"ap@{iou:g}"]


def test_defaults_follow_the_dimensionality():
    assert get_task("stardist").params.n_rays == 32
    three_d = get_task("stardist", {"ndim": 3})
    assert three_d.params.n_rays == 96
    assert three_d.params.anisotropy == (1.0, 1.0, 1.0)
    assert three_d.out_channels == 97


def test_anisotropy_in_2d_is_refused():
    from deepscope.errors import ConfigError

    with pytest.raises(ConfigError, match="3D only"):
        get_task("stardist", {"anisotropy": (2, 1, 1)})


@pytest.mark.parametrize("grid", [1, 2])
def test_perfect_output_gives_back_every_object(grid):
    task = get_task("stardist", {"grid": grid})
    truth = nuclei()
    result = task.postprocess(perfect_output(task, truth), truth.shape)
    assert result.labels.shape == truth.shape
    assert ap(truth, result.labels) == 1.0
    assert ap(truth, result.labels, 0.7) > 0.85


def test_loss_is_smallest_for_the_perfect_output():
    task = get_task("stardist", {"grid": 2})
    labels = nuclei((64, 64), n=5)[None]
    target = torch.from_numpy(task.batch_target(labels))
    assert target.shape == (1, 33, 32, 32)
    best = torch.from_numpy(perfect_output(task, labels[0]))[None]
    worse = best + torch.randn_like(best)
    assert task.loss(best, target) < task.loss(worse, target)


def test_tuning_picks_thresholds_that_score_at_least_the_defaults():
    task = get_task("stardist")
    truths = [nuclei(seed=s) for s in range(2)]
    noisy = []
    rng = np.random.default_rng(0)
    for t in truths:
        out = perfect_output(task, t)
        out[0] += rng.normal(0, 2, out[0].shape)
        noisy.append(out)
    before = np.mean([ap(t, task.postprocess(o, t.shape).labels) for o, t in zip(noisy, truths)])
    tuned = task.tune(noisy, truths)
    assert set(tuned) == {"prob_threshold", "nms_threshold"}
    after = np.mean([ap(t, task.postprocess(o, t.shape).labels) for o, t in zip(noisy, truths)])
    assert after >= before


def test_blocks_partition_the_image_and_read_a_halo_around_each_core():
    blocks = plan_blocks((100, 130), block=48, halo=16, align=8)
    owned = np.zeros((100, 130), int)
    for b in blocks:
        owned[b.core] += 1
        for core, read in zip(b.core, b.read):
            assert read.start == max(0, core.start - 16)
            assert core.start % 8 == 0
    assert (owned == 1).all()


def test_an_image_a_little_larger_than_a_block_is_read_in_one_window():
    # 1104 px with 1024-px blocks and a 96-px halo: one window of 1104, not four of 648
    (only,) = plan_blocks((1104, 1104), block=1024, halo=96, align=16)
    assert only.core == only.read == (slice(0, 1104), slice(0, 1104))
    assert len(plan_blocks((1217, 1104), block=1024, halo=96, align=16)) == 2


@pytest.mark.parametrize("grid", [1, 2])
def test_block_stitching_neither_cuts_nor_duplicates_objects(grid):
    task = get_task("stardist", {"grid": grid})
    truth = nuclei((160, 200), n=40, seed=3)
    whole = task.postprocess(perfect_output(task, truth), truth.shape).labels

    def block_objects(block: Block):
        return task.block_objects(perfect_output(task, truth[block.read]), block)

    stitched = predict_blockwise(
        block_objects,
        lambda parts: task.merge_objects(parts, truth.shape),
        truth.shape,
        block=64,
        halo=32,
        align=8,
    ).labels
    assert stitched.max() == whole.max()
    assert ap(whole, stitched, 0.9) == 1.0


def balls(shape=(24, 48, 48), seed=0) -> np.ndarray:
    """A few non-overlapping balls, flattened 2x along z (anisotropy 2)."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    labels = np.zeros(shape, np.int32)
    centres = [(12, 12, 12), (12, 12, 34), (12, 34, 20), (10, 34, 38)]
    for k, (z, y, x) in enumerate(centres, start=1):
        r = rng.uniform(6, 8)
        labels[((zz - z) * 2) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 < r**2] = k
    return labels


@pytest.mark.parametrize("grid", [1, 2])
def test_perfect_3d_output_gives_back_every_object(grid):
    task = get_task("stardist", {"ndim": 3, "grid": grid, "anisotropy": (2.0, 1.0, 1.0)})
    truth = balls()
    result = task.postprocess(perfect_output(task, truth), truth.shape)
    assert result.labels.shape == truth.shape
    assert ap(truth, result.labels) == 1.0


def test_a_3d_model_trains_and_predicts_a_volume(tmp_path):
    from deepscope.io import write_image
    from deepscope.train.config import make_train_config
    from deepscope.train.trainer import train
    from deepscope.zoo import load_model

    for split in ("train", "val"):
        for i in range(2):
            truth = balls(seed=i)
            image = (truth > 0) * 150 + np.random.default_rng(i).integers(0, 40, truth.shape)
            write_image(tmp_path / split / "images" / f"v{i}.tif", image.astype(np.uint8))
            write_image(tmp_path / split / "masks" / f"v{i}.tif", truth.astype(np.uint16))
    config = make_train_config(
        {
            "task": "stardist",
            "name": "tiny-3d",
            "ndim": 3,
            "out": tmp_path / "models",
            "images": tmp_path / "train" / "images",
            "masks": tmp_path / "train" / "masks",
            "val_images": tmp_path / "val" / "images",
            "val_masks": tmp_path / "val" / "masks",
            "task_params": {"n_rays": 32, "anisotropy": (2.0, 1.0, 1.0)},
            "network": {"depth": 1, "base_filters": 4, "grid": 2},
            "patch_size": 16,
            "batch_size": 1,
            "epochs": 1,
            "steps_per_epoch": 2,
            "val_patches": 1,
            "threads": 1,
            "device": "cpu",
        }
    )
    model = load_model(train(config))
    assert model.spec.input_axes == "ZYX"
    assert model.spec.prediction.tile == 160  # blocks of 160³, not 1024³: memory stays bounded
    volume = (balls() > 0).astype(np.float32)
    labels = model.predict(volume).labels
    assert labels.shape == volume.shape and np.issubdtype(labels.dtype, np.integer)


def test_flip_averaged_ray_distances_keep_each_ray_on_its_direction():
    from deepscope.predict.predictor import with_flips

    task = get_task("stardist", {"grid": 1})
    truth = nuclei((64, 80), n=6, seed=1)

    def network(batch):  # a perfect network whose input is the label image itself
        return np.stack([perfect_output(task, np.rint(b[0]).astype(np.int32)) for b in batch])

    batch = truth[None, None].astype(np.float32)
    direct = network(batch)[0, 1:]
    inside = truth > 0

    def error(unflip):
        averaged = with_flips(network, unflip)(batch)[0, 1:]
        return np.abs(averaged - direct)[:, inside].mean()

    assert error(task.unflip) < 0.25  # pixels: ray marching differs a little when mirrored
    assert error(lambda out, axes: np.flip(out, axes)) > 1.0  # rays left in place


def test_flip_averaged_polygons_on_an_output_grid_stay_where_the_unflipped_ones_are():
    """With grid 2, a flipped cell's rays start one pixel before the cell's own pixel along
    the flipped axis; unflip moves them back, else flip averaging shifts every polygon by
    half a pixel in y and x."""
    from scipy import ndimage as ndi

    from deepscope.predict.predictor import with_flips

    task = get_task("stardist", {"grid": 2})
    truth = nuclei((64, 80), n=6, seed=1)

    def network(batch):  # a perfect grid-2 network whose input is the label image itself
        return task.batch_target(np.rint(batch[:, 0]).astype(np.int32))

    batch = truth[None, None].astype(np.float32)
    direct = network(batch)[0, 1:]
    cells = ndi.binary_erosion(truth > 0, iterations=2)[1::2, 1::2]  # away from borders

    def displacement(unflip):  # the least-squares shift (y, x) of each cell's polygon
        change = (with_flips(network, unflip)(batch)[0, 1:] - direct)[:, cells]
        return np.median(2 / task.params.n_rays * task.rays.vectors.T @ change, axis=1)

    def rays_reordered_only(out, axes):
        return get_task("stardist", {"grid": 1}).unflip(out, axes)

    assert np.all(np.abs(displacement(task.unflip)) < 0.1)
    assert np.all(displacement(rays_reordered_only) > 0.4)


def test_flip_averaging_is_refused_for_3d_rays():
    task = get_task("stardist", {"ndim": 3})
    with pytest.raises(ConfigError, match="tta"):
        task.unflip(np.zeros((1, 97, 8, 8, 8), np.float32), (-1,))


def test_small_objects_weigh_more_in_the_probability_loss():
    yy, xx = np.indices((48, 64))
    labels = np.zeros((48, 64), np.int32)
    labels[(yy - 24) ** 2 + (xx - 16) ** 2 <= 3**2] = 1  # 29 pixels
    labels[(yy - 24) ** 2 + (xx - 44) ** 2 <= 12**2] = 2  # 441 pixels
    task = get_task("stardist", {"small_object_area": 100})
    target = torch.from_numpy(task.batch_target(labels[None]))
    weights = task._size_weights(target[:, :1], target[:, 1:])[0, 0].numpy()
    assert weights[24, 16] == pytest.approx(100 / 29, rel=0.25)
    assert weights[24, 44] == 1 and weights[0, 0] == 1
    output = torch.zeros_like(target)  # probability 0.5 everywhere
    plain = get_task("stardist", {}).loss(output, target)
    assert task.loss(output, target) > plain  # the small disc's pixels count more


def test_small_object_weights_are_for_2d():
    with pytest.raises(ConfigError, match="2D only"):
        get_task("stardist", {"ndim": 3, "small_object_area": 50})


def test_zoomed_patches_give_targets_of_larger_objects():
    """Distances are computed from each resampled label patch: zooming by 2 doubles them."""
    labels = nuclei((128, 128), n=10, seed=3)
    task = get_task("stardist", {"grid": 1})
    sample = Sample(
        "a", (labels > 0)[None].astype(np.float32), labels, labels, np.flatnonzero(labels)
    )

    def largest_distance(zoom: float) -> float:
        warps = Augmentation(scale=(zoom, zoom), any_angle=True)
        rng = np.random.default_rng(0)
        sampler = PatchSampler([sample], 32, 16, warps, 1.0, rng, task.prepare_batch)
        _, targets = sampler.batch()
        assert targets.shape == (16, 1 + task.params.n_rays, 32, 32)
        return float(np.percentile(targets[:, 1:][targets[:, 1:] > 0], 90))

    assert 1.6 < largest_distance(2.0) / largest_distance(1.0) < 2.4
