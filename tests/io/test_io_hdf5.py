"""HDF5 files: 'file.h5:dataset' paths, attributes and dataset replacement."""

import h5py
import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.io import read_image, write_image


def test_hdf5_round_trip_with_dataset_path_and_attributes(tmp_path):
    volume = np.arange(3 * 20 * 30, dtype=np.uint16).reshape(3, 20, 30)
    pixel_size = {"Z": 0.28, "Y": 0.13, "X": 0.13}
    path = write_image(tmp_path / "nuclei.h5:raw", volume, "ZYX", pixel_size=pixel_size)

    image = read_image(path)

    assert image.axes == "ZYX"
    assert image.data.dtype == np.uint16
    np.testing.assert_array_equal(image.data, volume)
    assert image.pixel_size == pytest.approx(pixel_size)
    with h5py.File(tmp_path / "nuclei.h5", "r") as handle:
        assert handle["raw"].attrs["axes"] == "ZYX"
        assert handle["raw"].compression == "gzip"
        np.testing.assert_allclose(handle["raw"].attrs["element_size_um"], [0.28, 0.13, 0.13])


def test_hdf5_keeps_other_datasets_and_replaces_the_named_one(tmp_path):
    file = tmp_path / "sample.h5"
    write_image(f"{file}:raw", np.zeros((5, 6), np.float32))
    write_image(f"{file}:group/label", np.ones((5, 6), np.int32))
    write_image(f"{file}:raw", np.full((7, 8), 2.5, np.float32))

    with h5py.File(file, "r") as handle:
        assert sorted(handle) == ["group", "raw"]
    assert read_image(f"{file}:raw").shape == (7, 8)
    assert read_image(f"{file}:group/label").data.dtype == np.int32
    assert [p.name for p in tmp_path.iterdir()] == ["sample.h5"]  # no temporary left


def test_hdf5_without_dataset_uses_the_only_one(tmp_path):
    with h5py.File(tmp_path / "one.h5", "w") as handle:
        handle["volume"] = np.zeros((4, 5, 6), np.uint8)
    image = read_image(tmp_path / "one.h5")
    assert image.axes == "ZYX"
    assert image.pixel_size is None


def test_hdf5_missing_dataset_lists_the_datasets(tmp_path):
    with h5py.File(tmp_path / "two.h5", "w") as handle:
        handle["raw"] = np.zeros((5, 6), np.uint8)
        handle["label"] = np.zeros((5, 6), np.uint8)

    expected = "dataset 'mask' does not exist; choose one of: label, raw"
    with pytest.raises(InputError, match=expected):
        read_image(f"{tmp_path / 'two.h5'}:mask")
    with pytest.raises(InputError, match=r"holds 2 datasets \(label, raw\); name one as"):
        read_image(tmp_path / "two.h5")


def test_hdf5_reads_ilastik_style_element_size_and_axes_attribute(tmp_path):
    with h5py.File(tmp_path / "ilastik.h5", "w") as handle:
        dataset = handle.create_dataset("data", data=np.zeros((4, 5, 6, 2), np.uint8))
        dataset.attrs["axes"] = b"zyxc"
        dataset.attrs["element_size_um"] = np.array([1.0, 0.25, 0.25])

    image = read_image(tmp_path / "ilastik.h5:data")

    assert image.axes == "ZYXC"
    assert image.pixel_size == {"Z": 1.0, "Y": 0.25, "X": 0.25}


def test_hdf5_compression_choices(tmp_path):
    write_image(tmp_path / "plain.h5:x", np.zeros((5, 6), np.uint8), compression=None)
    with pytest.raises(InputError, match="not available for HDF5"):
        write_image(tmp_path / "other.h5:x", np.zeros((5, 6), np.uint8), compression="zstd")


def test_hdf5_refuses_to_overwrite_a_file_that_is_not_hdf5(tmp_path):
    (tmp_path / "notes.h5").write_text("not hdf5")
    with pytest.raises(InputError, match="exists but is not an HDF5 file"):
        write_image(tmp_path / "notes.h5:x", np.zeros((5, 6), np.uint8))
    assert (tmp_path / "notes.h5").read_text() == "not hdf5"


def test_unreadable_hdf5_gives_input_error(tmp_path):
    (tmp_path / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n broken")
    with pytest.raises(InputError, match=r"cannot open .*broken\.h5.* as HDF5"):
        read_image(tmp_path / "broken.h5")


def test_ilastik_axistags_give_the_axes(tmp_path):
    import json

    tags = json.dumps({"axes": [{"key": k, "typeFlags": 2} for k in "zyxc"]})
    with h5py.File(tmp_path / "ilastik.h5", "w") as fh:
        fh["exported_data"] = np.zeros((20, 48, 64, 1), np.uint8)
        fh["exported_data"].attrs["axistags"] = tags
    assert read_image(tmp_path / "ilastik.h5").axes == "ZYXC"  # guessed 'TZYX' before
