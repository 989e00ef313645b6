"""Counting block by block: the same objects table, summary and filtered labels as
counting the whole label image at once."""

import numpy as np
import pytest
import tifffile

from deepscope.api import count_files
from deepscope.count import count_objects
from deepscope.count_streamed import count_streamed
from deepscope.errors import ConfigError
from deepscope.io import read_image
from deepscope.io.lazy import LazyImage


def squares_and_discs() -> np.ndarray:
    """Hand-made objects on a 120 x 150 image: squares of known area across the block
    borders of a 50-pixel plan (50, 100), discs inside blocks, objects on the image edge."""
    labels = np.zeros((120, 150), np.int32)
    labels[45:55, 45:55] = 1  # 100 px on the corner of four blocks
    labels[10:16, 97:103] = 2  # 36 px across a vertical border
    labels[0:8, 20:28] = 3  # 64 px on the top edge
    labels[112:120, 140:150] = 4  # 80 px in the bottom right corner
    yy, xx = np.indices(labels.shape)
    labels[(yy - 80) ** 2 + (xx - 30) ** 2 <= 36] = 5
    labels[(yy - 75) ** 2 + (xx - 120) ** 2 <= 9] = 7  # a gap in the numbering
    labels[60:63, 70:73] = 6  # 9 px
    return labels


def with_merged_pairs() -> np.ndarray:
    """``squares_and_discs`` and three objects that are each two touching discs: one across
    the corner of four blocks, one inside a block, one on the image edge whose pieces
    differ in size (so a range keeps one of them)."""
    labels = squares_and_discs()
    yy, xx = np.indices(labels.shape)

    def pair(label, centre_a, centre_b, radius_a, radius_b):
        for (cy, cx), r in ((centre_a, radius_a), (centre_b, radius_b)):
            labels[((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & (labels == 0)] = label

    pair(8, (93, 93), (93, 107), 8, 8)
    pair(9, (25, 60), (25, 73), 7, 7)
    pair(10, (113, 70), (113, 82), 7, 5)
    return labels


@pytest.mark.parametrize(
    "exclude_border, split", [(False, False), (True, False), (False, True), (True, True)]
)
def test_rows_and_labels_equal_the_whole_image_count(exclude_border, split):
    labels = with_merged_pairs()
    image = np.random.default_rng(0).integers(0, 255, labels.shape).astype(np.uint8)
    ranges = ["area=10:"] if not split else ["area=80:"]
    expected = count_objects(
        labels, image, ranges, exclude_border, split, 40, pixel_size=(0.5, 0.25)
    )
    if split:  # the pairs were divided and one of the edge pair's pieces filtered out
        assert len(expected.objects) > len(
            count_objects(labels, image, ranges, exclude_border).objects
        )
    filtered = np.zeros_like(labels)
    got = count_streamed(
        labels,
        LazyImage(image, "YX", None, "test"),
        "YX",
        filtered,
        ranges,
        exclude_border,
        pixel_size=(0.5, 0.25),
        block=50,
        halo=20,
        split=split,
        min_split_size=40,
    )
    np.testing.assert_array_equal(filtered, expected.labels)
    assert [r["label"] for r in got.objects] == [r["label"] for r in expected.objects]
    for mine, theirs in zip(got.objects, expected.objects, strict=True):
        assert mine == pytest.approx(theirs)
    assert got.summary == pytest.approx(expected.summary)


def test_known_areas_and_border_objects():
    labels = squares_and_discs()
    filtered = np.zeros_like(labels)
    got = count_streamed(labels, None, "YX", filtered, exclude_border=True, block=50, halo=20)
    assert [r["area"] for r in got.objects] == [100, 36, 113, 9, 29]
    assert filtered.max() == 5 and not np.isin(filtered[0], [1, 2, 3, 4, 5]).any()


def test_an_unknown_column_is_named(tmp_path):
    labels = squares_and_discs()
    with pytest.raises(Exception, match="no column 'size'"):
        count_streamed(labels, None, "YX", np.zeros_like(labels), ["size=1:"], block=50, halo=20)


def test_count_files_streams_like_the_in_memory_count(shared_data, tmp_path):
    image = tifffile.imread(shared_data / "dsb2018/fluorescence/val/images/538b7673d507014d.tif")
    path = tmp_path / "field.tif"
    tifffile.imwrite(path, image[:400, :600], tile=(128, 128))
    options = {"ranges": ["area=30:2000"], "exclude_border": True, "tile": 256, "split": True}
    streamed = count_files("flows-nuclei-fluo", [path], tmp_path / "s", stream=True, **options)
    whole = count_files("flows-nuclei-fluo", [path], tmp_path / "w", **options)
    assert streamed == whole and streamed[0]["count"] > 30
    s, w = tmp_path / "s", tmp_path / "w"
    assert (s / "field_objects.csv").read_text() == (w / "field_objects.csv").read_text()
    np.testing.assert_array_equal(
        read_image(s / "field_labels.ome.zarr").data, read_image(w / "field_labels.tif").data
    )
    assert [p.name for p in s.iterdir()] != [] and not any(
        p.name.startswith(".") for p in s.iterdir()
    )


def test_options_that_need_the_whole_image_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="--diameter needs the whole image"):
        count_files("flows-nuclei-fluo", [tmp_path], tmp_path, diameter=20, stream=True)


def test_a_centroid_shifted_from_a_window_equals_the_whole_image_one_to_the_last_bit():
    from deepscope.count_streamed import _to_image_frame

    # 2,949 pixels whose rows sum to 104,549 in a window starting at row 37: adding the
    # window's offset to the window's centroid rounds differently from the whole image
    row = {"area": 2949.0, "centroid_y": 104549 / 2949, "bbox_min_y": 0, "bbox_max_y": 60}
    _to_image_frame(row, (37,), "y", None)
    assert row["centroid_y"] == (104549 + 37 * 2949) / 2949 != 104549 / 2949 + 37
    assert (row["bbox_min_y"], row["bbox_max_y"]) == (37, 97)


def test_an_image_without_objects_gets_the_same_table_header_streamed(tmp_path):
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "dark.tif", np.zeros((256, 256), np.uint8), tile=(128, 128))
    tables = []
    for stream in (True, False):
        out = tmp_path / str(stream)
        count_files("unet-nuclei-fluo", [tmp_path / "in"], out, stream=stream, tile=128)
        tables.append((out / "dark_objects.csv").read_text())
    streamed, whole = tables
    assert streamed == whole and streamed.startswith("label,centroid_y")  # was a lone 'label'
