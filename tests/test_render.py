"""Outline overlays: label boundaries drawn over the image, saved as PNG."""

import imageio.v3 as iio
import numpy as np
import pytest
from skimage.segmentation import find_boundaries

from deepscope.render import label_colours, overlay, save_overlay


def square_labels() -> np.ndarray:
    labels = np.zeros((12, 16), np.int32)
    labels[2:7, 3:9] = 1
    labels[8:11, 10:15] = 2
    return labels


def grey_image() -> np.ndarray:
    return np.random.default_rng(0).random((12, 16)).astype(np.float32)


def test_overlay_is_uint8_rgb_of_the_image_shape():
    out = overlay(grey_image(), square_labels())
    assert out.shape == (12, 16, 3)
    assert out.dtype == np.uint8


def test_boundary_pixels_get_their_object_colour():
    labels = square_labels()
    out = overlay(grey_image(), labels)
    edges = find_boundaries(labels, mode="inner")
    colours = label_colours(2)
    np.testing.assert_array_equal(out[edges], colours[labels[edges]])
    assert not np.array_equal(colours[1], colours[2])  # each object its own colour
    assert edges[2, 3] and not edges[4, 5]  # a corner is an edge, the centre is not
    # everything else shows the grey image
    rest = out[~edges]
    assert np.all(rest[:, 0] == rest[:, 1]) and np.all(rest[:, 1] == rest[:, 2])
    assert rest[:, 0].std() > 10  # and not one flat colour


def test_no_objects_leaves_the_grey_image():
    out = overlay(grey_image(), np.zeros((12, 16), np.int32))
    assert np.all(out[..., 0] == out[..., 2])
    assert out.max() == 255 and out.min() == 0  # stretched to the full range


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_channel_last_images_give_rgb(channels):
    image = np.random.default_rng(1).random((12, 16, channels))
    out = overlay(image, square_labels())
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8


def test_colour_image_is_kept_in_colour():
    image = np.zeros((12, 16, 3))
    image[..., 0] = 1.0  # pure red
    image[0, 0] = 0.0
    out = overlay(image, np.zeros((12, 16), np.int32))
    assert out[5, 5].tolist() == [255, 0, 0]


def test_save_overlay_writes_a_png(tmp_path):
    image, labels = grey_image(), square_labels()
    path = save_overlay(image, labels, tmp_path / "pictures" / "cells_overlay.png")
    assert path == tmp_path / "pictures" / "cells_overlay.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(iio.imread(path), overlay(image, labels))
    assert [p.name for p in path.parent.iterdir()] == ["cells_overlay.png"]  # no temporary
