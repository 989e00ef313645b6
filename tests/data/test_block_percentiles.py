"""Exact percentiles of an image read in blocks (two passes, bounded memory)."""

import numpy as np
import pytest

from deepscope.data.block_percentiles import block_percentiles
from deepscope.errors import InputError


def in_row_blocks(image: np.ndarray, rows: int):
    """A ``read_blocks`` function: the channel-first image in bands of ``rows`` rows."""
    return lambda: (image[:, i : i + rows] for i in range(0, image.shape[1], rows))


def numpy_percentiles(image: np.ndarray, q) -> np.ndarray:
    flat = image.astype(np.float32).reshape(image.shape[0], -1)
    return np.percentile(flat, q, axis=1).T


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64])
def test_equals_numpy_on_the_whole_image(dtype):
    rng = np.random.default_rng(1)
    image = (rng.normal(size=(2, 97, 61)) * 300 + 100).astype(dtype)
    q = [0, 1, 50, 99.8, 100]
    got = block_percentiles(in_row_blocks(image, 10), q)
    np.testing.assert_array_equal(got, numpy_percentiles(image, q))


def test_negative_values_zeros_and_ties():
    image = np.array([[[-5.5, -0.0, 0.0, 3, 3, 3, -5.5, 1e30, -1e-30]]], np.float32)
    q = [0, 10, 33, 50, 77, 100]
    got = block_percentiles(in_row_blocks(image, 1), q)
    np.testing.assert_array_equal(got, numpy_percentiles(image, q))


def test_a_single_pixel_is_every_percentile():
    image = np.full((1, 1, 1), 7, np.uint16)
    np.testing.assert_array_equal(block_percentiles(in_row_blocks(image, 1), [1, 99.8]), [[7, 7]])


def test_blocks_of_any_shape_give_the_same_result():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 4096, (1, 40, 50)).astype(np.uint16)
    columns = lambda: (image[:, :, j : j + 7] for j in range(0, 50, 7))  # noqa: E731
    q = [1, 99.8]
    np.testing.assert_array_equal(
        block_percentiles(columns, q), block_percentiles(in_row_blocks(image, 40), q)
    )


def test_not_finite_values_are_refused_with_advice():
    image = np.ones((1, 4, 4), np.float32)
    image[0, 2, 2] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        block_percentiles(in_row_blocks(image, 2), [1, 99])


def test_no_pixels_is_an_input_error():
    with pytest.raises(InputError, match="no pixels"):
        block_percentiles(lambda: iter(()), [1, 99])
