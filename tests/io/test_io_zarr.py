"""Zarr and OME-Zarr folders: reading every layout, writing OME-Zarr (NGFF 0.4)."""

import numpy as np
import pytest
import zarr

from deepscope.errors import InputError
from deepscope.io import read_image, write_image


def _ngff_axes():
    return [
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]


def _datasets():
    return [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 2, 0.5, 0.5]}]},
        {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 2, 1, 1]}]},
    ]


def _pyramid():
    full = np.arange(2 * 3 * 8 * 10, dtype=np.uint16).reshape(2, 3, 8, 10)
    return full, full[:, :, ::2, ::2]


@pytest.fixture
def ome_zarr_v04(tmp_path):
    """A two-level OME-Zarr image in NGFF 0.4 layout (Zarr v2, metadata in .zattrs)."""
    full, half = _pyramid()
    group = zarr.open_group(tmp_path / "cells.ome.zarr", mode="w", zarr_format=2)
    group.create_array("0", data=full, chunks=(1, 1, 8, 10))
    group.create_array("1", data=half)
    group.attrs["multiscales"] = [
        {"version": "0.4", "name": "cells", "axes": _ngff_axes(), "datasets": _datasets()}
    ]
    return tmp_path / "cells.ome.zarr", full


def test_ome_zarr_v04_reads_full_resolution_axes_and_pixel_size(ome_zarr_v04):
    path, full = ome_zarr_v04

    image = read_image(path)

    assert image.axes == "CZYX"
    np.testing.assert_array_equal(image.data, full)
    assert image.pixel_size == {"Z": 2.0, "Y": 0.5, "X": 0.5}


def test_ome_zarr_level_keeps_the_image_metadata(ome_zarr_v04):
    path, full = ome_zarr_v04

    level = read_image(f"{path}:1")

    assert level.axes == "CZYX"
    np.testing.assert_array_equal(level.data, full[:, :, ::2, ::2])
    assert level.pixel_size == {"Z": 2.0, "Y": 1.0, "X": 1.0}


def test_ome_zarr_v05(tmp_path):
    full, half = _pyramid()
    group = zarr.open_group(tmp_path / "cells.zarr", mode="w", zarr_format=3)
    group.create_array("0", data=full)
    group.create_array("1", data=half)
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{"axes": _ngff_axes(), "datasets": _datasets()}],
    }

    image = read_image(tmp_path / "cells.zarr")

    assert image.axes == "CZYX"
    np.testing.assert_array_equal(image.data, full)
    assert image.pixel_size == {"Z": 2.0, "Y": 0.5, "X": 0.5}


def test_plain_zarr_array_uses_default_axes(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    zarr.create_array(tmp_path / "plain.zarr", data=data)

    image = read_image(tmp_path / "plain.zarr")

    assert image.axes == "ZYX"
    assert image.pixel_size is None
    np.testing.assert_array_equal(image.data, data)
    assert read_image(tmp_path / "plain.zarr", axes="TYX").axes == "TYX"


def test_zarr_group_without_ome_metadata_needs_an_array_path(tmp_path):
    group = zarr.open_group(tmp_path / "store.zarr", mode="w")
    group.create_array("raw", data=np.zeros((5, 6), np.uint8))
    group.create_array("label", data=np.ones((5, 6), np.uint8))

    with pytest.raises(InputError, match=r"holds 2 arrays \(label, raw\)"):
        read_image(tmp_path / "store.zarr")
    assert read_image(f"{tmp_path / 'store.zarr'}:label").data.max() == 1
    with pytest.raises(InputError, match="no array or group 'mask'; choose one of: label, raw"):
        read_image(f"{tmp_path / 'store.zarr'}:mask")


def test_folder_named_zarr_that_is_not_zarr(tmp_path):
    (tmp_path / "fake.zarr").mkdir()
    with pytest.raises(InputError, match=r"cannot open .*fake\.zarr.* as Zarr"):
        read_image(tmp_path / "fake.zarr")


def test_ome_zarr_round_trip_keeps_data_axes_and_pixel_size(tmp_path):
    volume = np.random.default_rng(0).random((6, 40, 50), dtype=np.float32)

    path = write_image(
        tmp_path / "nuclei.ome.zarr", volume, "ZYX", pixel_size={"Z": 2, "Y": 0.3, "X": 0.3}
    )

    image = read_image(path)
    assert image.axes == "ZYX"
    np.testing.assert_array_equal(image.data, volume)
    assert image.pixel_size == {"Z": 2.0, "Y": 0.3, "X": 0.3}
    group = zarr.open_group(path, mode="r")
    assert group.attrs["multiscales"][0]["version"] == "0.4"
    assert group["0"].chunks == (6, 40, 50)  # chunks never larger than the image


def test_ome_zarr_stores_channels_before_space(tmp_path):
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)

    image = read_image(write_image(tmp_path / "rgb.ome.zarr", rgb, "YXC"))

    assert image.axes == "CYX"
    np.testing.assert_array_equal(image.data, np.moveaxis(rgb, -1, 0))


def test_writing_replaces_an_earlier_store_but_never_another_folder(tmp_path):
    path = tmp_path / "labels.ome.zarr"
    write_image(path, np.ones((8, 8), np.int32))
    write_image(path, np.full((4, 4), 7, np.int32))
    assert read_image(path).data.shape == (4, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.ome.zarr"]  # no leftovers

    (tmp_path / "photos.zarr").mkdir()
    (tmp_path / "photos.zarr" / "holiday.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="a folder of that name exists"):
        write_image(tmp_path / "photos.zarr", np.ones((8, 8), np.uint8))
    assert (tmp_path / "photos.zarr" / "holiday.jpg").exists()


def test_a_path_inside_a_zarr_output_is_refused(tmp_path):
    with pytest.raises(InputError, match="a Zarr output is a whole store"):
        write_image(f"{tmp_path / 'out.zarr'}:labels", np.zeros((5, 6), np.uint8))
