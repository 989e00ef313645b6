"""Pixel counts read from file headers, without decoding the pixels."""

import h5py
import imagecodecs
import numpy as np
import pytest
import tifffile

from deepscope.io.header import pixel_values


@pytest.mark.parametrize(
    "name, write",
    [
        ("a.png", lambda p, a: p.write_bytes(imagecodecs.png_encode(a))),
        ("a.jpg", lambda p, a: p.write_bytes(imagecodecs.jpeg8_encode(a))),
        ("a.tif", lambda p, a: tifffile.imwrite(p, a)),
        ("a.npy", lambda p, a: np.save(p, a)),
    ],
)
def test_the_header_gives_the_number_of_values(tmp_path, name, write):
    path = tmp_path / name
    write(path, np.zeros((30, 40, 3), np.uint8))
    assert pixel_values(path) == 30 * 40 * 3


def test_a_grey_png_and_an_hdf5_dataset(tmp_path):
    (tmp_path / "g.png").write_bytes(imagecodecs.png_encode(np.zeros((7, 9), np.uint16)))
    assert pixel_values(tmp_path / "g.png") == 63
    with h5py.File(tmp_path / "v.h5", "w") as handle:
        handle["raw"] = np.zeros((2, 5, 6))
    assert pixel_values(tmp_path / "v.h5") == pixel_values(f"{tmp_path / 'v.h5'}:raw") == 60


def test_a_huge_flat_png_is_measured_without_decoding_it(tmp_path):
    path = tmp_path / "flat.png"
    path.write_bytes(imagecodecs.png_encode(np.zeros((20_000, 10_000), np.uint8)))
    assert path.stat().st_size < 1_000_000
    assert pixel_values(path) == 200_000_000


def test_headers_that_cannot_tell_give_none(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"junk")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff")
    assert pixel_values(tmp_path / "junk.png") is None
    assert pixel_values(tmp_path / "junk.jpg") is None
    assert pixel_values(tmp_path / "missing.tif") is None
    assert pixel_values(tmp_path / "store.zarr") is None
