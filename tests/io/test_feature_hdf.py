"""Features files (.hdf) in CellCognition Explorer's data model: round trip, layout, CSV,
errors."""

import csv

import h5py
import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.io.feature_hdf import (
    CSV_COLUMNS,
    ObjectFeatures,
    read_feature_hdf,
    write_feature_csv,
    write_feature_hdf,
)

SIZE = 16  # crop size S
CHANNELS = ["dna", "tubulin"]


def square_outline(half: int) -> np.ndarray:
    """A square outline around the crop centre, points (x, y)."""
    low, high = SIZE // 2 - half, SIZE // 2 + half
    return np.array([(low, low), (high, low), (high, high), (low, high), (low, low)])


def make_table(n: int = 4, n_features: int = 3, seed: int = 0, contours=True) -> ObjectFeatures:
    """n objects from two positions of one plate; the first position is the control."""
    rng = np.random.default_rng(seed)
    wells = ["A01" if i < n // 2 else "B02" for i in range(n)]
    centers = np.stack([rng.integers(20, 500, n), rng.integers(20, 300, n)], axis=1)
    return ObjectFeatures(
        features=rng.normal(size=(n, n_features)).astype(np.float32),
        feature_names=[f"ae_{k}" for k in range(n_features)],
        labels=np.arange(1, n + 1),
        centers=centers,
        bboxes=np.concatenate(
            [centers[:, 1:] - 5, centers[:, 1:] + 6, centers[:, :1] - 4, centers[:, :1] + 5], axis=1
        ),
        gallery=rng.integers(0, 4096, (n, len(CHANNELS), SIZE, SIZE)).astype(np.uint16),
        contours=[square_outline(2 + i % 4) for i in range(n)] if contours else [],
        channel_names=CHANNELS,
        positions=[f"plate1/{well}/1" for well in wells],
        plates=["plate1"] * n,
        wells=wells,
        sites=["1"] * n,
        genes=["scrambled" if well == "A01" else "KIF11" for well in wells],
        groups=["control" if well == "A01" else "target" for well in wells],
        is_control=np.array([well == "A01" for well in wells]),
        angle=rng.uniform(-90, 90, n),
        eccentricity=rng.uniform(0, 1, n),
        area=rng.uniform(50, 400, n),
    )


def test_round_trip_keeps_every_field(tmp_path):
    table = make_table()

    path = write_feature_hdf(tmp_path / "features.hdf", table)

    assert path == tmp_path / "features.hdf"
    assert [p.name for p in tmp_path.iterdir()] == ["features.hdf"]  # no temporary left
    read = read_feature_hdf(path)
    np.testing.assert_array_equal(read.features, table.features)
    assert read.features.dtype == np.float32
    assert read.feature_names == ["ae_0", "ae_1", "ae_2"]
    np.testing.assert_array_equal(read.labels, table.labels)
    np.testing.assert_array_equal(read.centers, table.centers)
    np.testing.assert_array_equal(read.bboxes, table.bboxes)
    np.testing.assert_array_equal(read.gallery, table.gallery)  # back to (N, C, S, S)
    assert read.gallery.dtype == np.uint16
    assert len(read.contours) == 4
    for before, after in zip(table.contours, read.contours, strict=True):
        np.testing.assert_array_equal(after, before)
    assert read.channel_names == CHANNELS
    for field in ("positions", "plates", "wells", "sites", "genes", "groups"):
        assert getattr(read, field) == getattr(table, field)
    np.testing.assert_array_equal(read.is_control, [True, True, False, False])
    for field in ("angle", "eccentricity", "area"):
        np.testing.assert_array_equal(getattr(read, field), getattr(table, field))
    assert (read.n_objects, read.n_features) == (4, 3)


def test_file_has_the_explorer_layout(tmp_path):
    table = make_table(n=5)
    path = write_feature_hdf(tmp_path / "features.hdf", table)

    with h5py.File(path, "r") as handle:
        assert list(handle.attrs["training_data"]) == ["data"]
        assert handle.attrs["generator"] == "deepscope"
        bbox = handle["/data/bbox"]
        assert bbox.shape == (5,)
        assert bbox.dtype.names == ("label", "x", "y", "top", "bottom", "left", "right")
        assert bbox.dtype["label"] == np.uint32
        assert all(bbox.dtype[name] == np.uint16 for name in bbox.dtype.names[1:])
        assert bbox["x"].tolist() == table.centers[:, 0].tolist()
        assert bbox["top"].tolist() == table.bboxes[:, 0].tolist()
        features = handle["/data/features"]
        assert features.dtype.names == ("ae_0", "ae_1", "ae_2")
        assert all(features.dtype[name] == np.float32 for name in features.dtype.names)
        gallery = handle["/data/gallery"]
        assert gallery.shape == (SIZE, SIZE, 2, 5)  # (S, S, C, N): objects last
        assert gallery.dtype == np.uint16
        np.testing.assert_array_equal(gallery[:, :, 1, 3], table.gallery[3, 1])
        contours = handle["/data/contours"]
        assert list(contours.attrs["channels"]) == CHANNELS
        for channel in CHANNELS:  # one segmentation: the same outline for every channel
            outlines = contours[channel]
            assert outlines.shape == (5, 2)
            assert h5py.check_vlen_dtype(outlines.dtype) == np.uint16
            xs, ys = outlines[2]
            assert xs.tolist() == table.contours[2][:, 0].tolist()
            assert ys.tolist() == table.contours[2][:, 1].tolist()
        objects = handle["/data/objects"]
        assert objects.dtype.names == (
            "position",
            "plate",
            "well",
            "site",
            "gene",
            "group",
            "is_control",
            "angle",
            "eccentricity",
            "area",
        )
        assert objects.dtype["position"].kind == "S"  # fixed-length bytes
        assert objects.dtype["is_control"] == np.uint8
        assert objects[0]["position"] == b"plate1/A01/1"


def test_without_outlines_writes_empty_ones(tmp_path):
    table = make_table(contours=False)

    path = write_feature_hdf(tmp_path / "features.hdf", table)

    with h5py.File(path, "r") as handle:
        assert [len(xs) for xs, _ in handle["/data/contours/dna"][()]] == [0, 0, 0, 0]
    assert read_feature_hdf(path).contours == []


def test_outlines_are_clipped_to_the_crop(tmp_path):
    table = make_table(n=2)
    table.contours[0] = np.array([[-3.0, 2.0], [40.0, 7.4]])

    read = read_feature_hdf(write_feature_hdf(tmp_path / "features.hdf", table))

    assert read.contours[0].tolist() == [[0, 2], [SIZE, 7]]


def test_csv_has_one_row_per_object(tmp_path):
    table = make_table()

    path = write_feature_csv(tmp_path / "tables" / "features.csv", table)

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [*CSV_COLUMNS, "ae_0", "ae_1", "ae_2"]
    assert CSV_COLUMNS[:7] == ("position", "plate", "well", "site", "gene", "group", "is_control")
    assert len(rows) == 4
    assert rows[0]["position"] == "plate1/A01/1"
    assert [row["is_control"] for row in rows] == ["1", "1", "0", "0"]
    assert int(rows[3]["x"]) == table.centers[3, 0]
    assert float(rows[1]["ae_2"]) == pytest.approx(table.features[1, 2], rel=1e-5)


def test_csv_refuses_a_feature_named_like_an_object_column(tmp_path):
    table = make_table()
    table.feature_names[1] = "area"

    with pytest.raises(InputError, match=r"area.*rename"):
        write_feature_csv(tmp_path / "features.csv", table)


def test_lengths_that_disagree_are_refused():
    good = make_table()
    fields = {name: getattr(good, name) for name in good.__dataclass_fields__}

    with pytest.raises(InputError, match="genes has 3 entries but there are 4 objects"):
        ObjectFeatures(**{**fields, "genes": ["a", "b", "c"]})
    with pytest.raises(InputError, match="gallery has shape"):
        ObjectFeatures(**{**fields, "gallery": np.zeros((4, 2, 8, 9))})
    with pytest.raises(InputError, match="channel_names has 1 entries but there are 2 channels"):
        ObjectFeatures(**{**fields, "channel_names": ["dna"]})
    with pytest.raises(InputError, match="feature_names has 2 entries but there are 3 feature"):
        ObjectFeatures(**{**fields, "feature_names": ["a", "b"]})
    with pytest.raises(InputError, match="bboxes is not a table of whole numbers"):
        ObjectFeatures(**{**fields, "bboxes": [[1, 2, 3, 4], [1, 2, 3]] * 2})
    with pytest.raises(InputError, match="contours has 2 outlines"):
        ObjectFeatures(**{**fields, "contours": fields["contours"][:2]})
    with pytest.raises(InputError, match="distinct"):
        ObjectFeatures(**{**fields, "feature_names": ["a", "a", "b"]})


def test_values_that_do_not_fit_are_refused_and_nothing_is_written(tmp_path):
    table = make_table()
    table.gallery = table.gallery.astype(np.int32) - 10  # negative pixels

    with pytest.raises(InputError, match="gallery pixel values range"):
        write_feature_hdf(tmp_path / "features.hdf", table)
    table.gallery = np.full(table.gallery.shape, 0.5, np.float32)  # crops normalised to 0..1
    with pytest.raises(InputError, match="gallery crops hold fractions"):
        write_feature_hdf(tmp_path / "features.hdf", table)
    assert list(tmp_path.iterdir()) == []


def test_reading_what_is_not_a_features_file(tmp_path):
    text = tmp_path / "notes.hdf"
    text.write_text("not HDF5")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as handle:
        handle["x"] = np.zeros(3)

    with pytest.raises(InputError, match="does not exist"):
        read_feature_hdf(tmp_path / "missing.hdf")
    with pytest.raises(InputError, match=r"cannot open .* as HDF5"):
        read_feature_hdf(text)
    with pytest.raises(InputError, match=r"not a features file.*training_data"):
        read_feature_hdf(plain)
