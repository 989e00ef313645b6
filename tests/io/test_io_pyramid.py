"""Lower-resolution levels of written OME-Zarr images, for viewers of large images."""

import numpy as np
import zarr

from deepscope.io import read_image, write_image
from deepscope.io.pyramid import halve


def test_labels_keep_every_second_pixel():
    labels = np.array([[1, 1, 2], [1, 1, 2], [3, 3, 0]], np.int32)
    np.testing.assert_array_equal(halve(labels, "nearest"), [[1, 2], [3, 0]])


def test_float_images_average_each_square_and_odd_edges_round_up():
    image = np.arange(15, dtype=np.float32).reshape(3, 5)
    half = halve(image, "mean")
    assert half.shape == (2, 3) and half.dtype == np.float32
    assert half[0, 0] == np.mean([0, 1, 5, 6])
    assert half[0, 2] == np.mean([4, 9])  # the last column alone
    assert half[1, 2] == 14


def test_a_large_label_image_gets_levels_down_to_1024(tmp_path):
    labels = np.zeros((2500, 3000), np.int32)
    labels[100:900, 2000:2900] = 7
    labels[2400:, :] = 3
    path = write_image(tmp_path / "labels.ome.zarr", labels, "YX", pixel_size={"Y": 0.5, "X": 0.5})

    group = zarr.open_group(path, mode="r")
    multiscale = group.attrs["multiscales"][0]
    assert [d["path"] for d in multiscale["datasets"]] == ["0", "1", "2"]
    assert [group[d["path"]].shape for d in multiscale["datasets"]] == [
        (2500, 3000),
        (1250, 1500),
        (625, 750),
    ]
    scales = [d["coordinateTransformations"][0]["scale"] for d in multiscale["datasets"]]
    assert scales == [[0.5, 0.5], [1.0, 1.0], [2.0, 2.0]]
    assert multiscale["type"] == "nearest"
    np.testing.assert_array_equal(group["2"][...], labels[::4, ::4])
    # readers still get the full resolution
    np.testing.assert_array_equal(read_image(path).data, labels)


def test_levels_of_a_multichannel_float_image_are_means(tmp_path):
    rng = np.random.default_rng(0)
    prob = rng.random((2, 1030, 2040), dtype=np.float32)
    path = write_image(tmp_path / "prob.ome.zarr", prob, "CYX")

    group = zarr.open_group(path, mode="r")
    assert group.attrs["multiscales"][0]["type"] == "mean"
    assert group["1"].shape == (2, 515, 1020) and "2" not in group
    np.testing.assert_allclose(group["1"][1, 3, 4], prob[1, 6:8, 8:10].mean(), rtol=1e-6)


def test_a_small_image_has_one_level(tmp_path):
    path = write_image(tmp_path / "small.ome.zarr", np.ones((6, 64, 64), np.uint16), "ZYX")
    multiscale = zarr.open_group(path, mode="r").attrs["multiscales"][0]
    assert len(multiscale["datasets"]) == 1 and "type" not in multiscale
