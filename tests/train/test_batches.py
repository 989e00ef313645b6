"""Training batches drawn ahead by worker threads: the same batches in the same order."""

import numpy as np
import pytest
import torch

from deepscope.data.augment import Augmentation
from deepscope.train.batches import BatchStream, auto_workers
from deepscope.train.dataset import PatchSampler, Sample


def sampler() -> PatchSampler:
    rng = np.random.default_rng(1)
    samples = []
    for name in "abc":
        image = rng.random((1, 48, 48), dtype=np.float32)
        truth = np.zeros((48, 48), np.int64)
        samples.append(Sample(name, image, truth[None], truth, truth > 0))
    augmentation = Augmentation(noise_std=0.1, scale=(0.8, 1.2))
    return PatchSampler(samples, 16, 4, augmentation, 0.0, np.random.default_rng(0))


def take(stream: BatchStream, n: int) -> list[np.ndarray]:
    with stream:
        return [next(stream)[0] for _ in range(n)]


@pytest.mark.parametrize("workers", [1, 3])
def test_workers_give_the_batches_of_a_run_without_workers(workers):
    alone = take(BatchStream(sampler(), seed=7, first_step=0, workers=0), 6)
    ahead = take(BatchStream(sampler(), seed=7, first_step=0, workers=workers), 6)
    for a, b in zip(alone, ahead, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_resumed_run_gets_the_batches_it_would_have_had():
    straight = take(BatchStream(sampler(), seed=7, first_step=0, workers=2), 5)
    resumed = take(BatchStream(sampler(), seed=7, first_step=3, workers=2), 2)
    np.testing.assert_array_equal(resumed[0], straight[3])
    np.testing.assert_array_equal(resumed[1], straight[4])


def test_batches_differ_between_steps_and_seeds():
    first, second = take(BatchStream(sampler(), seed=7, first_step=0, workers=0), 2)
    other_seed = take(BatchStream(sampler(), seed=8, first_step=0, workers=0), 1)[0]
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, other_seed)


def test_a_closed_stream_stops_its_workers():
    stream = BatchStream(sampler(), seed=0, first_step=0, workers=2)
    next(stream)
    stream.close()
    assert stream._pool is None


def test_a_cpu_draws_its_own_batches_and_a_gpu_gets_workers():
    assert auto_workers(torch.device("cpu"), cpu_count=16) == 0
    assert auto_workers(torch.device("cuda"), cpu_count=16) == 4
    assert auto_workers(torch.device("cuda"), cpu_count=2) == 1
