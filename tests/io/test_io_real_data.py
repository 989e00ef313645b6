"""Reading the real data sets next to the repository (skipped when they are absent)."""

import numpy as np

from deepscope.io import list_images, match_pairs, read_image


def test_real_files_of_every_kind(shared_data):
    grey = read_image(next((shared_data / "dsb2018/fluorescence/train/images").glob("*.tif")))
    assert grey.axes == "YX"
    assert grey.data.dtype == np.uint8

    nuclei = read_image(shared_data / "nuclei3d/train/1135_mini.h5:raw")
    assert nuclei.axes == "ZYX"
    assert nuclei.shape == (100, 100, 100)
    assert set(nuclei.pixel_size) == {"Z", "Y", "X"}
    assert 0.1 < nuclei.pixel_size["X"] < nuclei.pixel_size["Z"] < 1.0

    frame = read_image(shared_data / "tracking_bacteria/img/t000000.tif")  # zstd-compressed
    assert frame.axes == "YX"
    assert frame.shape == (1305, 1009)

    crop = read_image(next((shared_data / "mitosis_crops/inter").glob("*.png")))
    assert crop.axes == "YXC"
    assert crop.shape == (64, 64, 3)


def test_real_images_pair_with_their_masks(shared_data):
    folder = shared_data / "dsb2018/fluorescence/val"
    pairs = match_pairs(folder / "images", folder / "masks")
    assert len(pairs) == len(list_images([folder / "images"]))
    image, mask = pairs[0]
    assert read_image(image).shape[:2] == read_image(mask).shape[:2]
