"""Finding image files (list_images) and pairing images with masks (match_pairs)."""

from pathlib import Path

import numpy as np
import pytest

from deepscope.errors import InputError, PairingError
from deepscope.io import image_stem, list_images, match_pairs, read_image, write_image


def _touch_images(folder: Path, *names: str) -> None:
    for name in names:
        write_image(folder / name, np.zeros((4, 4), np.uint8))


def test_list_images_of_a_folder_is_sorted_and_skips_other_files(tmp_path):
    _touch_images(tmp_path, "b.tif", "a.png", "c.npy")
    (tmp_path / "readme.txt").write_text("not an image")
    (tmp_path / ".hidden.tif").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    _touch_images(tmp_path / "sub", "deeper.tif")

    assert [p.name for p in list_images([tmp_path])] == ["a.png", "b.tif", "c.npy"]


def test_list_images_with_glob_file_and_duplicates(tmp_path):
    _touch_images(tmp_path, "t1.tif", "t2.tif", "other.png")

    found = list_images([tmp_path / "t2.tif", str(tmp_path / "t*.tif"), tmp_path])

    assert [p.name for p in found] == ["t2.tif", "t1.tif", "other.png"]


def test_list_images_accepts_a_single_path_and_hdf5_datasets(tmp_path):
    write_image(tmp_path / "stack.h5:raw", np.zeros((4, 4), np.uint8))
    assert list_images(str(tmp_path / "stack.h5:raw")) == [Path(f"{tmp_path / 'stack.h5'}:raw")]


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda folder: folder / "nothing_here.tif", "does not exist"),
        (lambda folder: str(folder / "*.tif"), "matches no image files"),
        (lambda folder: folder, "contains no image files"),
    ],
)
def test_list_images_names_the_input_that_matched_nothing(tmp_path, make_input, message):
    (tmp_path / "notes.txt").write_text("x")
    item = make_input(tmp_path)
    with pytest.raises(InputError, match=message) as caught:
        list_images([item])
    assert str(item) in str(caught.value)


def test_a_folder_of_class_sub_folders_says_how_to_take_their_images(tmp_path):
    for name in ("interphase", "mitosis"):
        write_image(tmp_path / "crops" / name / "a.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match=r"only in sub-folders \(interphase, mitosis\)") as caught:
        list_images([tmp_path / "crops"])
    pattern = str(caught.value).split("pass '")[1].split("'")[0]
    assert [p.parent.name for p in list_images([pattern])] == ["interphase", "mitosis"]


def test_list_images_refuses_an_unsupported_file(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a supported image file"):
        list_images([tmp_path / "notes.txt"])


def test_image_stem_removes_the_whole_image_extension():
    assert image_stem("data/cell_01.ome.tif") == "cell_01"
    assert image_stem("cell_01.TIF") == "cell_01"
    assert image_stem("plate.ome.zarr") == "plate"
    assert image_stem("nuclei.h5:raw") == "nuclei"
    assert image_stem("v1.2.png") == "v1.2"


def test_match_pairs_pairs_by_stem(tmp_path):
    _touch_images(tmp_path / "images", "b.tif", "a.ome.tif", "c.png")
    _touch_images(tmp_path / "masks", "a.tif", "b.png", "c.tif")

    pairs = match_pairs(tmp_path / "images", tmp_path / "masks")

    assert [(image.name, mask.name) for image, mask in pairs] == [
        ("a.ome.tif", "a.tif"),
        ("b.tif", "b.png"),
        ("c.png", "c.tif"),
    ]


def test_match_pairs_names_images_without_masks(tmp_path):
    _touch_images(tmp_path / "images", "a.tif", "b.tif", "c.tif")
    _touch_images(tmp_path / "masks", "a.tif")

    expected = r"2 images have no mask in .*: b\.tif, c\.tif"
    with pytest.raises(PairingError, match=expected) as caught:
        match_pairs(tmp_path / "images", tmp_path / "masks")
    assert "\n" not in str(caught.value)


def test_match_pairs_names_masks_without_images_and_caps_the_list(tmp_path):
    _touch_images(tmp_path / "images", "a.tif")
    _touch_images(tmp_path / "masks", "a.tif", *[f"extra{i}.tif" for i in range(7)])

    with pytest.raises(PairingError) as caught:
        match_pairs(tmp_path / "images", tmp_path / "masks")

    message = str(caught.value)
    assert "7 masks have no image" in message
    assert "extra0.tif, extra1.tif, extra2.tif, extra3.tif, extra4.tif, ... (2 more)" in message
    assert "extra5.tif" not in message


def test_match_pairs_calls_restoration_targets_targets(tmp_path):
    _touch_images(tmp_path / "noisy", "a.tif", "b.tif")
    _touch_images(tmp_path / "clean", "a.tif")

    with pytest.raises(PairingError, match=r"1 image has no target in .*give every image a target"):
        match_pairs(tmp_path / "noisy", tmp_path / "clean", partner="target")
    with pytest.raises(InputError, match=r"target folder .* does not exist"):
        match_pairs(tmp_path / "noisy", tmp_path / "missing", partner="target")


def test_match_pairs_refuses_two_files_with_one_stem(tmp_path):
    _touch_images(tmp_path / "images", "a.tif", "a.png")
    _touch_images(tmp_path / "masks", "a.tif")
    with pytest.raises(PairingError, match="two files with stem 'a'"):
        match_pairs(tmp_path / "images", tmp_path / "masks")


def test_match_pairs_needs_existing_non_empty_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    _touch_images(tmp_path / "images", "a.tif")
    with pytest.raises(InputError, match=r"mask folder .* does not exist"):
        match_pairs(tmp_path / "images", tmp_path / "missing")
    with pytest.raises(InputError, match=r"image folder .* contains no image files"):
        match_pairs(tmp_path / "empty", tmp_path / "images")


def test_match_pairs_reads_images_and_masks_from_datasets_of_the_same_files(tmp_path):
    from deepscope.io import read_image

    for name in ("a", "b"):
        write_image(f"{tmp_path / name}.h5:raw", np.full((4, 5, 6), 7, np.uint8))
        write_image(f"{tmp_path / name}.h5:label", np.ones((4, 5, 6), np.uint16))
    pairs = match_pairs(f"{tmp_path}:raw", f"{tmp_path}:label")
    assert [(image_stem(i), image_stem(m)) for i, m in pairs] == [("a", "a"), ("b", "b")]
    assert read_image(pairs[0][0]).data.max() == 7
    assert read_image(pairs[0][1]).data.dtype == np.uint16


def test_a_folder_with_a_dataset_name_lists_that_dataset_of_each_hdf5_file(tmp_path):
    import h5py

    for name in ("a.h5", "b.h5"):
        with h5py.File(tmp_path / name, "w") as handle:
            handle["raw"] = np.zeros((4, 8, 8), np.uint8)
    found = list_images([f"{tmp_path}:raw"])
    assert [p.name for p in found] == ["a.h5:raw", "b.h5:raw"]
    assert read_image(found[0]).data.shape == (4, 8, 8)
    (tmp_path / "tifs").mkdir()
    write_image(tmp_path / "tifs" / "c.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="holds no HDF5 or Zarr files"):
        list_images([f"{tmp_path / 'tifs'}:raw"])


def test_a_file_named_like_a_dataset_path_is_that_file(tmp_path):
    path = write_image(tmp_path / "run.h5:raw.tif", np.ones((4, 4), np.uint8))
    assert read_image(path).shape == (4, 4)  # was 'does not exist' (read as run.h5, 'raw.tif')
