"""Restoration tasks: targets, losses, N2V masking, CARE uncertainty, output units."""

import numpy as np
import pytest
import torch

from deepscope.data.normalize import (
    Normalization,
    denormalize,
    input_bounds,
    percentile_normalize,
)
from deepscope.errors import ConfigError, InputError
from deepscope.tasks import Result, get_task


def test_n2v_loss_looks_only_at_blind_spots():
    task = get_task("n2v")
    images = np.random.default_rng(0).random((2, 1, 32, 32)).astype(np.float32)
    _, target = task.prepare_batch(images, images.copy(), np.random.default_rng(1))
    assert target.shape == (2, 2, 32, 32) and target[:, 1].sum() > 0
    perfect_at_spots = torch.from_numpy(np.where(target[:, 1:] > 0, images, 99.0))
    assert float(task.loss(perfect_at_spots, torch.from_numpy(target))) == 0.0
    assert float(task.loss(torch.zeros(2, 1, 32, 32), torch.from_numpy(target))) > 0


def test_n2v_with_the_blind_spot_network_trains_on_every_unmasked_pixel():
    task = get_task("n2v", {"method": "blind_spot_network"})
    images = np.random.default_rng(0).random((2, 1, 16, 16)).astype(np.float32)
    inputs, target = task.prepare_batch(images, images.copy(), np.random.default_rng(1))
    assert task.blind_spot_network and not get_task("n2v").blind_spot_network
    np.testing.assert_array_equal(inputs, images)
    assert (target[:, 1] == 1).all()


def test_blind_spot_predictions_are_blended_with_the_noisy_input_unless_switched_off():
    rng = np.random.default_rng(0)
    noisy = rng.normal(0.5, 0.1, (1, 32, 32)).astype(np.float32)
    flat = np.full((32, 32), 0.5, np.float32)
    blended = get_task("n2v", {"method": "blind_spot_network"}).combine_with_input(
        Result(image=flat.copy()), noisy
    )
    assert blended.image.shape == (32, 32)
    assert np.abs(blended.image - flat).max() < np.abs(noisy[0] - flat).max()
    for params in ({"method": "blind_spot_network", "blend": False}, {}):
        same = get_task("n2v", params).combine_with_input(Result(image=flat.copy()), noisy)
        np.testing.assert_array_equal(same.image, flat)


def test_structn2v_masks_need_the_masking_method():
    with pytest.raises(ConfigError, match="method 'masking'"):
        get_task("n2v", {"method": "blind_spot_network", "struct_length": 5})


@pytest.mark.parametrize("axis", [2, -3])
def test_a_structn2v_axis_beyond_the_image_axes_is_refused(axis):
    from deepscope.train.config import make_train_config

    settings = {"task": "n2v", "name": "m", "images": "im", "task_params": {"struct_axis": axis}}
    with pytest.raises(ConfigError, match=f"struct_axis {axis} is not an axis of 2D images"):
        make_train_config(settings)
    make_train_config({**settings, "task_params": {"struct_axis": -2}})


def test_patches_favour_bright_targets_only_when_asked():
    target = np.zeros((2, 8, 8), np.float32)
    target[0, 2, 3] = 1.0  # bright in the first channel
    target[1, 5, 5] = 0.3  # dim in the second
    assert not get_task("care").foreground(target).any()
    bright = get_task("care", {"signal_level": 0.4, "channels": 2}).foreground(target)
    assert bright.shape == (8, 8) and list(zip(*np.nonzero(bright))) == [(2, 3)]


def test_care_targets_are_normalised_images_with_the_right_channels():
    task = get_task("care")
    target = task.make_target(np.linspace(0, 255, 64, dtype=np.float32).reshape(1, 8, 8))
    assert target.shape == (1, 8, 8) and target.min() < 0.05 and target.max() > 0.95
    with pytest.raises(InputError, match=r"task_params\.channels=2"):
        task.make_target(np.zeros((2, 8, 8), np.float32))


def test_probabilistic_care_gives_an_uncertainty_map():
    task = get_task("care", {"probabilistic": True})
    assert task.out_channels == 2
    output = np.zeros((2, 8, 8), np.float32)
    output[1] = 3.0  # a raw scale; the task makes it positive
    result = task.postprocess(output)
    assert result.image.shape == (8, 8) and (result.uncertainty > 0).all()
    target = torch.zeros(1, 1, 8, 8)
    confident_right = torch.cat([torch.zeros(1, 1, 8, 8), torch.full((1, 1, 8, 8), -5.0)], 1)
    confident_wrong = torch.cat([torch.ones(1, 1, 8, 8), torch.full((1, 1, 8, 8), -5.0)], 1)
    assert task.loss(confident_right, target) < task.loss(confident_wrong, target)


def test_outputs_go_back_to_the_input_intensity_units():
    image = np.random.default_rng(2).random((1, 16, 16)).astype(np.float32) * 300 + 50
    settings = Normalization()
    back = denormalize(percentile_normalize(image), image, settings)
    np.testing.assert_allclose(back, image, rtol=1e-4)
    unchanged = denormalize(np.zeros((2, 16, 16), np.float32), image, settings)
    assert unchanged.shape == (2, 16, 16) and not unchanged.any()


def test_restoration_evaluation_reports_the_issue_keys():
    task = get_task("n2n")
    truth = np.random.default_rng(3).random((1, 16, 16)).astype(np.float32)
    metrics = task.evaluate([task.postprocess(truth * 2)], [truth])
    assert {"psnr", "ssim", "nrmse", "mae", "n_images"} <= metrics.keys()
    assert metrics["n_images"] == 1 and metrics["ssim"] == pytest.approx(1.0)


def test_targets_normalised_like_their_input_come_back_in_target_units():
    rng = np.random.default_rng(4)
    source = rng.random((1, 16, 16)).astype(np.float32) * 100 + 20
    target = source * 0.9 + 3  # same scene, slightly other intensities
    settings = Normalization()
    task = get_task("n2n")  # default: normalised like the input
    normalised = task.make_target(target, input_bounds(source, settings))
    np.testing.assert_allclose(denormalize(normalised, source, settings), target, rtol=1e-4)
    own = get_task("care").make_target(target, input_bounds(source, settings))
    assert own.min() == pytest.approx(0.0, abs=0.05)  # care: its own percentiles
