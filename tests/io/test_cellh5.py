"""CellH5 files (CellCognition's HDF5 layout), position mappings and building from images."""

import h5py
import numpy as np
import pytest

from deepscope.cellh5_build import build_cellh5
from deepscope.data.synthetic import synthetic_nuclei
from deepscope.errors import InputError
from deepscope.io import read_image, write_image
from deepscope.io.cellh5 import (
    MappingRow,
    PositionData,
    PositionKey,
    list_positions,
    read_cellh5,
    read_mapping,
    read_position,
    write_cellh5,
    write_mapping,
)

FEATURES = ["area", "mean_intensity"]


def _position(well: str, site: str, n_objects: int, seed: int) -> PositionData:
    """A hand-made position: 2 channels, 1 frame, 1 plane, 20 x 30 pixels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((1, 1, 1, 20, 30), np.int32)
    for k in range(1, n_objects + 1):
        labels[0, 0, 0, 2 * k : 2 * k + 2, 3 * k : 3 * k + 3] = k
    return PositionData(
        key=PositionKey("plate1", well, site),
        image=rng.integers(0, 4000, (2, 1, 1, 20, 30)).astype(np.uint16),
        labels=labels,
        label_ids=np.arange(1, n_objects + 1),
        centers=[(3 * k + 1, 2 * k) for k in range(1, n_objects + 1)],
        bboxes=[(3 * k, 3 * k + 3, 2 * k, 2 * k + 2) for k in range(1, n_objects + 1)],
        features=rng.random((n_objects, 2)).astype(np.float32),
        feature_names=FEATURES,
    )


def test_round_trip_of_two_positions(tmp_path):
    written = [_position("A01", "1", n_objects=3, seed=0), _position("B02", "7", 2, seed=1)]

    path = write_cellh5(tmp_path / "screen.ch5", written, channel_names=["dna", "tubulin"])

    assert path == tmp_path / "screen.ch5"
    assert [p.name for p in tmp_path.iterdir()] == ["screen.ch5"]  # no temporary left
    assert list_positions(path) == [
        PositionKey("plate1", "A01", "1"),
        PositionKey("plate1", "B02", "7"),
    ]
    read = read_cellh5(path)
    for before, after in zip(written, read, strict=True):
        assert after.key == before.key
        np.testing.assert_array_equal(after.image, before.image)
        assert after.image.dtype == np.uint16
        np.testing.assert_array_equal(after.labels, before.labels)
        np.testing.assert_array_equal(after.label_ids, before.label_ids)
        np.testing.assert_array_equal(after.time_idx, np.zeros(before.n_objects))
        np.testing.assert_array_equal(after.centers, before.centers)
        np.testing.assert_array_equal(after.bboxes, before.bboxes)
        np.testing.assert_array_equal(after.features, before.features)
        assert after.features.dtype == np.float32
        assert after.feature_names == FEATURES
    single = read_position(path, PositionKey("plate1", "B02", "7"))
    assert single.n_objects == 2


def test_file_has_the_cellh5_layout(tmp_path):
    path = write_cellh5(tmp_path / "screen.ch5", [_position("A01", "1", 3, seed=0)], ["dna", "tub"])

    site = "/sample/0/plate/plate1/experiment/A01/position/1"
    with h5py.File(path, "r") as handle:
        assert handle[f"{site}/image/channel"].shape == (2, 1, 1, 20, 30)  # c, t, z, y, x
        assert handle[f"{site}/image/region"].shape == (1, 1, 1, 20, 30)  # r, t, z, y, x
        objects = handle[f"{site}/object/primary__primary"]
        assert objects.dtype.names == ("time_idx", "obj_label_id")
        assert objects["obj_label_id"].tolist() == [1, 2, 3]
        features = handle[f"{site}/feature/primary__primary"]
        assert features["center"].dtype.names == ("x", "y")
        assert features["bounding_box"].dtype.names == ("left", "right", "top", "bottom")
        assert features["object_features"].shape == (3, 2)

        channels = handle["/definition/image/channel"]
        assert {"channel_name", "description", "is_physical", "voxel_size", "color"} <= set(
            channels.dtype.names
        )
        assert channels["channel_name"].tolist() == [b"dna", b"tub"]
        regions = handle["/definition/image/region"]
        assert regions["region_name"].tolist() == [b"region___primary__primary"]
        assert regions["channel_idx"].tolist() == [0]
        definition = handle["/definition/object"][0]
        assert (definition["name"], definition["type"]) == (b"primary__primary", b"region")
        assert {"source1", "source2"} <= set(handle["/definition/object"].dtype.names)
        names = handle["/definition/feature/primary__primary/object_features"]["name"]
        assert names.tolist() == [b"area", b"mean_intensity"]


def test_a_position_without_objects_and_a_file_without_optional_parts(tmp_path):
    empty = PositionData(
        PositionKey("plate1", "A01", "0"), image=np.zeros((2, 1, 1, 8, 8), np.uint8)
    )
    path = write_cellh5(tmp_path / "mixed.ch5", [empty, _position("A02", "0", 1, seed=0)])
    first, second = read_cellh5(path)
    assert first.n_objects == 0
    assert first.labels is None
    assert first.features.shape == (0, 2)
    assert first.feature_names == second.feature_names == FEATURES

    with h5py.File(tmp_path / "bare.ch5", "w") as handle:  # only the position groups
        handle.create_group("/sample/0/plate/P/experiment/W/position/3")
    (bare,) = read_cellh5(tmp_path / "bare.ch5")
    assert bare.key == PositionKey("P", "W", "3")
    assert bare.image is None and bare.n_objects == 0
    assert bare.centers.shape == (0, 2) and bare.bboxes.shape == (0, 4)


def test_a_failed_write_leaves_no_file(tmp_path):
    good, bad = _position("A01", "1", 2, seed=0), _position("A01", "1", 2, seed=1)
    with pytest.raises(InputError, match="given twice"):
        write_cellh5(tmp_path / "screen.ch5", [good, bad])
    with pytest.raises(InputError, match="uint8 or uint16"):
        write_cellh5(
            tmp_path / "screen.ch5",
            [PositionData(PositionKey("p", "w", "s"), image=np.zeros((1, 1, 1, 4, 4)))],
        )
    assert list(tmp_path.iterdir()) == []


def test_files_that_are_not_cellh5_give_input_errors(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["raw"] = np.zeros((5, 6), np.uint8)
    (tmp_path / "notes.ch5").write_text("not hdf5")

    with pytest.raises(InputError, match="not CellH5: it has no /sample/0/plate group") as caught:
        read_cellh5(tmp_path / "other.h5")
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match=r"cannot open .*notes\.ch5' as HDF5"):
        list_positions(tmp_path / "notes.ch5")
    with pytest.raises(InputError, match="does not exist"):
        read_cellh5(tmp_path / "missing.ch5")

    path = write_cellh5(tmp_path / "screen.ch5", [_position("A01", "1", 1, seed=0)])
    with pytest.raises(InputError, match=r"no position plate1/A01/2; choose one of: plate1/A01/1"):
        read_position(path, PositionKey("plate1", "A01", "2"))


MAPPING = (
    "Plate\tWell\tSite\tsiRNA ID\tGene Symbol\tGroup\n"
    "plate1\tA01\t1\ts001\tscrambled\tneg\n"
    "plate1\tA02\t1\ts002\tKIF11\ttarget\n"
    "\n"
    "plate1\tA03\t2\ts003\tINCENP\tNEG\n"
)


def test_mapping_file_rows_and_controls(tmp_path):
    (tmp_path / "mapping.tsv").write_text(MAPPING)

    rows = read_mapping(tmp_path / "mapping.tsv")

    assert [(r.well, r.site, r.gene) for r in rows] == [
        ("A01", "1", "scrambled"),
        ("A02", "1", "KIF11"),
        ("A03", "2", "INCENP"),
    ]
    assert [r.is_control for r in rows] == [True, False, True]  # "NEG" counts: case ignored
    assert rows[1].key == PositionKey("plate1", "A02", "1")
    assert [r.is_control for r in read_mapping(tmp_path / "mapping.tsv", "target")] == [
        False,
        True,
        False,
    ]

    copy = write_mapping(tmp_path / "copy.tsv", rows)
    assert copy.read_text().splitlines()[0] == "Plate\tWell\tSite\tGene Symbol\tGroup"
    assert read_mapping(copy) == rows


def test_mapping_file_errors_name_the_problem(tmp_path):
    (tmp_path / "no_group.tsv").write_text("Plate\tWell\tSite\tGene Symbol\np\tA01\t1\tKIF11\n")
    (tmp_path / "empty.tsv").write_text("")
    (tmp_path / "header_only.tsv").write_text("Plate\tWell\tSite\tGene Symbol\tGroup\n")

    with pytest.raises(InputError, match="lacks the column 'Group'"):
        read_mapping(tmp_path / "no_group.tsv")
    with pytest.raises(InputError, match="is empty"):
        read_mapping(tmp_path / "empty.tsv")
    with pytest.raises(InputError, match="no rows"):
        read_mapping(tmp_path / "header_only.tsv")
    (tmp_path / "twice.tsv").write_text(
        "Plate\tWell\tSite\tGene Symbol\tGroup\np\tA01\t1\tx\tneg\np\tA01\t1\ty\ttreated\n"
    )
    with pytest.raises(
        InputError, match=r"row 3: plate p, well A01, site 1 is given twice \(row 2"
    ):
        read_mapping(tmp_path / "twice.tsv")  # the second row won silently in encode


def _synthetic_files(folder, count):
    images, masks, counts = [], [], []
    for i in range(count):
        image, labels = synthetic_nuclei((64, 64), n=5, seed=i)
        images.append(
            write_image(folder / "images" / f"img{i}.tif", (image * 200).astype(np.uint8))
        )
        masks.append(write_image(folder / "masks" / f"img{i}.tif", labels.astype(np.uint16)))
        counts.append(len(np.unique(labels)) - 1)
    return images, masks, counts


def test_build_from_images_and_label_images(tmp_path):
    images, masks, counts = _synthetic_files(tmp_path, 2)

    out = build_cellh5(images, tmp_path / "screen.ch5", labels=masks, plate="P7")

    positions = read_cellh5(out)
    assert [p.key for p in positions] == [
        PositionKey("P7", "W0", "0"),
        PositionKey("P7", "W0", "1"),
    ]
    for position, mask, count in zip(positions, masks, counts, strict=True):
        assert position.n_objects == count
        assert position.image.shape == (1, 1, 1, 64, 64)
        assert position.image.dtype == np.uint8
        assert position.labels.shape == (1, 1, 1, 64, 64)
        assert position.features.shape == (count, len(position.feature_names))
        assert {"area", "centroid_y", "centroid_x", "mean_intensity"} <= set(position.feature_names)
        assert "label" not in position.feature_names
        area = position.features[:, position.feature_names.index("area")]
        ids = position.label_ids
        labels = position.labels[0, 0, 0]
        np.testing.assert_array_equal(labels, read_image(mask).data)
        np.testing.assert_array_equal(area, [np.count_nonzero(labels == k) for k in ids])
        x, y = position.centers[0]
        left, right, top, bottom = position.bboxes[0]
        assert left <= x < right and top <= y < bottom
        assert labels[y, x] == ids[0]


def test_a_mapping_with_a_file_column_pairs_rows_with_images_by_name(tmp_path):
    images, masks, _ = _synthetic_files(tmp_path, 3)  # img0, img1, img2
    rows = [  # rows in another order than the images, by stem or by file name
        MappingRow("P", "A03", "1", "INCENP", "treated", file="img2"),
        MappingRow("P", "A01", "1", "scrambled", "neg", file="img0.tif"),
        MappingRow("P", "A02", "1", "KIF11", "treated", file="img1"),
    ]
    mapping = write_mapping(tmp_path / "mapping.tsv", rows)
    assert mapping.read_text().splitlines()[0].endswith("\tFile")

    positions = read_cellh5(build_cellh5(images, tmp_path / "s.ch5", labels=masks, mapping=mapping))

    assert [p.key.well for p in positions] == ["A01", "A02", "A03"]
    write_mapping(mapping, [*rows[:2], MappingRow("P", "A02", "1", file="img7")])
    with pytest.raises(InputError, match=r"image 'img1\.tif' has no row in mapping file"):
        build_cellh5(images, tmp_path / "t.ch5", labels=masks, mapping=mapping)
    with pytest.raises(InputError, match=r"row 4, names 'img7', which is not among the images"):
        build_cellh5(images[::2], tmp_path / "t.ch5", labels=masks[::2], mapping=mapping)
    assert not (tmp_path / "t.ch5").exists()


def test_images_numbered_without_leading_zeros_are_not_paired_with_rows_by_name_order(tmp_path):
    names = ["pos1", "pos2", "pos10"]  # a folder lists them pos1, pos10, pos2
    for name in names:
        image, labels = synthetic_nuclei((32, 32), n=2, seed=1)
        write_image(tmp_path / "images" / f"{name}.tif", (image * 200).astype(np.uint8))
        write_image(tmp_path / "masks" / f"{name}.tif", labels)
    rows = [MappingRow("P", f"A0{i}", "1") for i in (1, 2, 3)]
    mapping = write_mapping(tmp_path / "mapping.tsv", rows)

    with pytest.raises(InputError, match=r"numbered in their names .* add a File column"):
        build_cellh5(tmp_path / "images", tmp_path / "s.ch5", labels=tmp_path / "masks",
                     mapping=mapping)  # fmt: skip

    in_order = [tmp_path / "images" / f"{name}.tif" for name in names]  # given one by one
    labels_in_order = [tmp_path / "masks" / f"{name}.tif" for name in names]
    positions = read_cellh5(
        build_cellh5(in_order, tmp_path / "s.ch5", labels=labels_in_order, mapping=mapping)
    )
    assert [p.key.well for p in positions] == ["A01", "A02", "A03"]


def test_build_stores_colour_images_and_stacks_channel_first(tmp_path):
    image, labels = synthetic_nuclei((32, 40), n=3, seed=4)
    colour = np.stack([image, image / 2, image / 4], axis=-1)  # YXC, float
    write_image(tmp_path / "rgb.tif", (colour * 250).astype(np.uint8), "YXC")
    write_image(tmp_path / "rgb_labels.tif", labels)
    stack, stack_labels = synthetic_nuclei((16, 24, 24), n=2, radius=(3.0, 5.0), seed=5)
    write_image(tmp_path / "stack.tif", stack, "ZYX")
    write_image(tmp_path / "stack_labels.tif", stack_labels, "ZYX")

    (rgb,) = read_cellh5(
        build_cellh5(tmp_path / "rgb.tif", tmp_path / "rgb.ch5", labels=tmp_path / "rgb_labels.tif")
    )
    (volume,) = read_cellh5(
        build_cellh5(
            tmp_path / "stack.tif", tmp_path / "stack.ch5", labels=tmp_path / "stack_labels.tif"
        )
    )

    assert rgb.image.shape == (3, 1, 1, 32, 40)
    assert {"mean_intensity_ch0", "mean_intensity_ch2"} <= set(rgb.feature_names)
    assert volume.image.shape == (1, 1, 16, 24, 24)
    assert volume.image.dtype == np.uint16  # float images are rescaled to uint16
    assert volume.labels.shape == (1, 1, 16, 24, 24)
    assert volume.n_objects == len(np.unique(stack_labels)) - 1


def test_build_with_a_segmentation_model(tmp_path):
    from deepscope.zoo import load_model

    images, _, _ = _synthetic_files(tmp_path, 1)
    model = load_model("unet-nuclei-fluo", device="cpu")

    (position,) = read_cellh5(build_cellh5(images, tmp_path / "predicted.ch5", model=model))

    labels = position.labels[0, 0, 0]
    assert position.n_objects == len(np.unique(labels)) - 1
    assert sorted(position.label_ids) == sorted(set(np.unique(labels)) - {0})


def test_build_needs_matching_inputs(tmp_path):
    images, masks, _ = _synthetic_files(tmp_path, 2)
    (tmp_path / "mapping.tsv").write_text(MAPPING)  # 3 rows for 2 images

    with pytest.raises(InputError, match="either a segmentation model or label images"):
        build_cellh5(images, tmp_path / "out.ch5")
    with pytest.raises(InputError, match="not both"):
        build_cellh5(images, tmp_path / "out.ch5", model="unet-nuclei-fluo", labels=masks)
    with pytest.raises(InputError, match="2 images but 1 label images"):
        build_cellh5(images, tmp_path / "out.ch5", labels=masks[:1])
    with pytest.raises(InputError, match="has 3 rows but there are 2 images"):
        build_cellh5(images, tmp_path / "out.ch5", labels=masks, mapping=tmp_path / "mapping.tsv")
    assert not (tmp_path / "out.ch5").exists()


def test_build_from_real_images_with_a_mapping(shared_data, tmp_path):
    folder = shared_data / "dsb2018/fluorescence/train"
    images = sorted((folder / "images").glob("*.tif"))[:3]
    masks = [folder / "masks" / image.name for image in images]
    rows = [
        MappingRow("plate1", "A01", "1", "scrambled", "neg"),
        MappingRow("plate1", "A02", "1", "KIF11", "treated"),
        MappingRow("plate1", "A03", "1", "INCENP", "treated"),
    ]
    mapping = write_mapping(tmp_path / "mapping.tsv", rows)

    out = build_cellh5(images, tmp_path / "dsb.ch5", labels=masks, mapping=mapping)

    assert [r.is_control for r in read_mapping(mapping)] == [True, False, False]
    positions = read_cellh5(out)
    assert [p.key for p in positions] == [r.key for r in rows]
    for position, mask in zip(positions, masks, strict=True):
        truth = read_image(mask).data
        np.testing.assert_array_equal(position.labels[0, 0, 0], truth)
        assert position.n_objects == len(np.unique(truth)) - 1 > 0
        assert position.image.shape[-2:] == truth.shape
        assert np.all(position.features[:, position.feature_names.index("area")] > 0)
