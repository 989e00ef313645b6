"""Which image a training patch comes from: uniformly, or weighted by foreground or objects."""

import numpy as np
import pytest

from deepscope.errors import ConfigError, InputError
from deepscope.train.config import load_train_config
from deepscope.train.dataset import (
    PatchSampler,
    Sample,
    foreground_probabilities,
    object_probabilities,
)


def sample(name: str, n_foreground: int, value: float) -> Sample:
    """A 16x16 image filled with ``value`` whose first ``n_foreground`` pixels are labelled."""
    mask = np.zeros((16, 16), np.int32)
    mask.flat[:n_foreground] = 1
    image = np.full((1, 16, 16), value, np.float32)
    return Sample(name, image, mask, mask, np.flatnonzero(mask))


def picked_values(sampler: PatchSampler, n: int) -> np.ndarray:
    return np.array([sampler.patch()[0][0, 0, 0] for _ in range(n)])


def test_foreground_weights_follow_the_labelled_pixels():
    p = foreground_probabilities([sample("sparse", 10, 0), sample("dense", 30, 1)])
    np.testing.assert_allclose(p, [0.25, 0.75])


def test_an_image_without_foreground_counts_as_the_smallest_annotated_one():
    p = foreground_probabilities([sample("empty", 0, 0), sample("a", 10, 1), sample("b", 20, 2)])
    np.testing.assert_allclose(p, [0.25, 0.25, 0.5])


def test_all_empty_images_are_picked_equally():
    p = foreground_probabilities([sample("a", 0, 0), sample("b", 0, 1)])
    np.testing.assert_allclose(p, [0.5, 0.5])


def test_foreground_sampling_picks_the_crowded_image_more_often():
    samples = [sample("sparse", 8, 0.0), sample("crowded", 72, 1.0)]
    sampler = PatchSampler(
        samples, 8, 1, None, 1.0, np.random.default_rng(0), sample_images_by="foreground"
    )
    share = picked_values(sampler, 2000).mean()
    assert share == pytest.approx(0.9, abs=0.03)


def test_uniform_sampling_picks_every_image_equally_often():
    samples = [sample("sparse", 8, 0.0), sample("crowded", 72, 1.0)]
    sampler = PatchSampler(samples, 8, 1, None, 1.0, np.random.default_rng(0))
    assert picked_values(sampler, 2000).mean() == pytest.approx(0.5, abs=0.04)


def nuclei(name: str, n_objects: int, value: float) -> Sample:
    """A 16x16 image with ``n_objects`` one-pixel objects along its first row."""
    mask = np.zeros((16, 16), np.int32)
    mask[0, :n_objects] = np.arange(1, n_objects + 1)
    image = np.full((1, 16, 16), value, np.float32)
    return Sample(name, image, mask, mask, np.flatnonzero(mask))


def test_object_weights_follow_the_number_of_labelled_objects():
    p = object_probabilities([nuclei("few", 2, 0), nuclei("many", 6, 1), nuclei("none", 0, 2)])
    np.testing.assert_allclose(p, [2 / 9, 6 / 9, 1 / 9])


def test_object_sampling_picks_the_image_with_more_nuclei_more_often():
    samples = [nuclei("few", 1, 0.0), nuclei("many", 9, 1.0)]
    sampler = PatchSampler(
        samples, 8, 1, None, 1.0, np.random.default_rng(0), sample_images_by="objects"
    )
    assert picked_values(sampler, 2000).mean() == pytest.approx(0.9, abs=0.03)


def test_object_sampling_needs_label_masks():
    pair = Sample("pair", np.zeros((1, 8, 8), np.float32), None, np.zeros((1, 8, 8)), np.arange(3))
    with pytest.raises(InputError, match="needs label masks"):
        object_probabilities([pair])


def test_unknown_sampling_is_refused():
    with pytest.raises(ValueError, match="'uniform', 'foreground' or 'objects'"):
        PatchSampler(
            [sample("a", 4, 0)], 8, 1, None, 1.0, np.random.default_rng(0), sample_images_by="dense"
        )


def test_a_config_file_takes_the_setting_and_refuses_others(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("task: flows\nname: m\nimages: im\nmasks: ma\nsample_images_by: foreground\n")
    assert load_train_config(path).sample_images_by == "foreground"
    path.write_text("task: flows\nname: m\nimages: im\nmasks: ma\nsample_images_by: crowded\n")
    with pytest.raises(ConfigError, match="sample_images_by"):
        load_train_config(path)


def test_images_of_different_channel_counts_are_named(tmp_path):
    from deepscope.io import write_image
    from deepscope.tasks import get_task
    from deepscope.train.dataset import read_pairs

    labels = np.zeros((32, 32), np.uint8)
    labels[4:12, 4:12] = 1
    write_image(tmp_path / "images" / "grey.tif", np.ones((32, 32), np.uint8))
    write_image(tmp_path / "images" / "two.tif", np.ones((2, 32, 32), np.uint8), "CYX")
    for name in ("grey.tif", "two.tif"):
        write_image(tmp_path / "masks" / name, labels)
    with pytest.raises(InputError, match=r"different channel counts \(grey has 1, two has 2\)"):
        read_pairs(tmp_path / "images", tmp_path / "masks", get_task("semantic"), 2)
