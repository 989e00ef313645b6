"""Blind-spot masking for Noise2Void: where pixels are masked and what replaces them."""

import numpy as np
import pytest

from deepscope.data.blindspot import blind_spot_coordinates, mask_batch


def test_blind_spots_are_spread_over_the_patch_at_the_asked_density():
    coords = blind_spot_coordinates((64, 64), 0.01, np.random.default_rng(0))
    # one per 10x10 cell (7 cells per axis), kept where it falls inside the 64x64 patch
    assert 36 <= len(coords) <= 49
    assert coords.min() >= 0 and coords.max() < 64
    assert len({tuple(c) for c in coords}) == len(coords)


def test_only_blind_spots_change_and_take_a_neighbours_value():
    rng = np.random.default_rng(1)
    images = rng.random((2, 1, 32, 32)).astype(np.float32)
    masked, mask = mask_batch(images, rng, fraction=0.02, radius=1)
    changed = masked != images
    assert not changed[mask == 0].any()
    for b, c, y, x in np.argwhere(mask == 1):
        window = images[b, c, max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
        assert masked[b, c, y, x] in window


def test_median_replacement_excludes_the_pixel_itself():
    images = np.zeros((1, 1, 16, 16), np.float32)
    images[0, 0, 8, 8] = 100.0  # a hot pixel: its neighbours' median is 0
    rng = np.random.default_rng(2)
    for _ in range(20):
        masked, mask = mask_batch(images, rng, fraction=0.2, radius=1, replacement="median")
        assert masked.max() <= 100.0
        if mask[0, 0, 8, 8]:
            assert masked[0, 0, 8, 8] == 0.0
            return
    pytest.fail("the hot pixel was never a blind spot")


def test_struct_mask_hides_a_line_through_each_blind_spot():
    rng = np.random.default_rng(3)
    images = np.arange(32 * 32, dtype=np.float32).reshape(1, 1, 32, 32)
    masked, mask = mask_batch(images, rng, fraction=0.01, radius=1, struct_mask=(-1, 5))
    y, x = np.argwhere(mask[0, 0] == 1)[0]
    row = masked[0, 0, y, max(0, x - 2) : x + 3] != images[0, 0, y, max(0, x - 2) : x + 3]
    assert row.sum() >= 3  # the neighbours along X were replaced (random values may repeat)


def test_a_blind_spot_never_takes_its_own_value_even_at_the_edge():
    rng = np.random.default_rng(3)
    images = rng.permutation(2 * 32 * 32).astype(np.float32).reshape(2, 1, 32, 32)  # all unique
    for _ in range(50):
        masked, mask = mask_batch(images, rng, fraction=0.02)
        spots = mask > 0
        assert not (masked[spots] == images[spots]).any()  # 6 % leaked at 32² by clipping


def test_every_row_is_as_likely_to_hold_a_blind_spot():
    rng = np.random.default_rng(4)
    rows = np.concatenate([blind_spot_coordinates((64, 64), 0.002, rng)[:, 0] for _ in range(4000)])
    per_row = np.bincount(rows, minlength=64)
    assert per_row.max() < 1.25 * per_row.mean()  # the last row held 13 times its share
