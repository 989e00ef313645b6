"""Errors a user can cause when reading or writing, and atomic output."""

import numpy as np
import pytest

from deepscope.errors import AxesError, InputError
from deepscope.io import SUPPORTED_EXTENSIONS, read_image, write_image


def test_unknown_extension_names_the_file_and_the_supported_types(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "notes.txt")
    message = str(caught.value)
    assert "notes.txt" in message
    assert "unknown image type (.txt)" in message
    assert all(extension in message for extension in SUPPORTED_EXTENSIONS)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"missing\.tif' does not exist"):
        read_image(tmp_path / "missing.tif")
    with pytest.raises(InputError, match="does not exist"):
        read_image(f"{tmp_path / 'missing.h5'}:raw")


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(InputError, match="is a folder, not an image file; use list_images"):
        read_image(tmp_path)


@pytest.mark.parametrize("name", ["garbage.tif", "garbage.png", "garbage.jpg", "garbage.npy"])
def test_unreadable_file_gives_one_line_input_error(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not an image")
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / name)
    assert name in str(caught.value)
    assert "\n" not in str(caught.value)


def test_write_checks_axes_and_pixel_size(tmp_path):
    with pytest.raises(AxesError, match="2 dimensions but axes 'ZYX'"):
        write_image(tmp_path / "a.tif", np.zeros((5, 6), np.uint8), "ZYX")
    with pytest.raises(InputError, match=r"pixel_size .* key 'Z'"):
        write_image(tmp_path / "a.tif", np.zeros((5, 6), np.uint8), pixel_size={"Z": 1.0})
    with pytest.raises(InputError, match="not numeric"):
        write_image(tmp_path / "a.npy", np.array([["a", "b"], ["c", "d"]]))
    assert list(tmp_path.iterdir()) == []


def test_write_creates_parent_folders_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "deep" / "er" / "out.tif"
    assert write_image(target, np.zeros((5, 6), np.uint8)) == target
    assert [p.name for p in target.parent.iterdir()] == ["out.tif"]


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "result.tif"
    write_image(target, np.ones((5, 6), np.uint8))
    before = target.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("deepscope.io.tiff.tifffile.imwrite", fail)
    with pytest.raises(InputError, match=r"cannot write TIFF file .*disk full"):
        write_image(target, np.zeros((50, 60), np.uint8))

    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.tif"]


def test_overwrite_replaces_the_file(tmp_path):
    write_image(tmp_path / "a.npy", np.zeros((5, 6), np.uint8))
    write_image(tmp_path / "a.npy", np.ones((7, 8), np.uint8))
    assert read_image(tmp_path / "a.npy").shape == (7, 8)


def test_writing_onto_a_folder_is_refused(tmp_path):
    (tmp_path / "taken.tif").mkdir()
    with pytest.raises(InputError, match="a folder of that name exists"):
        write_image(tmp_path / "taken.tif", np.zeros((5, 6), np.uint8))


def test_a_file_name_of_up_to_255_bytes_can_be_written(tmp_path):
    path = tmp_path / ("n" * 251 + ".tif")  # the hidden temporary name would be longer
    write_image(path, np.zeros((4, 4), np.uint8))
    assert read_image(path).shape == (4, 4) and [p.name for p in tmp_path.iterdir()] == [path.name]
