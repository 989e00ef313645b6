"""Count: ranges, border objects, splitting merged objects, summaries (hand-made labels)."""

import numpy as np
import pytest
from skimage.draw import disk

from deepscope.count import (
    Range,
    count_objects,
    exclude_border_objects,
    parse_range,
    split_touching,
)
from deepscope.errors import InputError


def squares() -> np.ndarray:
    """Three squares of known area: 4x4 = 16 (on the top edge), 6x6 = 36, 10x10 = 100."""
    labels = np.zeros((40, 40), np.int32)
    labels[0:4, 10:14] = 1
    labels[10:16, 10:16] = 2
    labels[20:30, 20:30] = 3
    return labels


def figure_eight() -> np.ndarray:
    """Two disks of radius 10 whose centres are 16 px apart, merged into one object."""
    labels = np.zeros((50, 70), np.int32)
    labels[disk((25, 25), 10)] = 1
    labels[disk((25, 41), 10)] = 1
    return labels


def test_ranges_parse_with_open_sides():
    assert parse_range("area=30:2000") == Range("area", 30, 2000)
    assert parse_range("mean_intensity=0.1:") == Range("mean_intensity", 0.1, None)
    assert parse_range(" eccentricity = :0.8") == Range("eccentricity", None, 0.8)


@pytest.mark.parametrize("text", ["area", "area=30", "=1:2", "area=a:b", "area=9:1"])
def test_bad_ranges_are_one_line_input_errors(text):
    with pytest.raises(InputError):
        parse_range(text)


def test_area_range_keeps_only_the_middle_square():
    counted = count_objects(squares(), ranges=["area=20:50"])
    assert [row["area"] for row in counted.objects] == [36]
    assert counted.labels.max() == 1
    assert (counted.labels == 1).sum() == 36
    assert counted.summary["count"] == 1


def test_every_range_must_hold():
    counted = count_objects(squares(), ranges=["area=10:", "centroid_y=5:"])
    assert [row["area"] for row in counted.objects] == [36, 100]


def test_an_unknown_column_names_the_columns_there_are():
    with pytest.raises(InputError, match=r"no column 'size'.*area"):
        count_objects(squares(), ranges=["size=1:2"])


def test_an_unknown_column_is_refused_even_when_there_is_no_object():
    with pytest.raises(InputError, match=r"no column 'areaa'"):
        count_objects(np.zeros((8, 8), np.int32), np.zeros((8, 8)), ranges=["areaa=1:"])
    assert count_objects(np.zeros((8, 8), np.int32), ranges=["area=1:"]).objects == []


def test_exclude_border_drops_the_square_on_the_edge():
    assert set(np.unique(exclude_border_objects(squares()))) == {0, 2, 3}
    counted = count_objects(squares(), exclude_border=True)
    assert sorted(row["area"] for row in counted.objects) == [36, 100]


def test_split_divides_two_merged_disks_into_halves():
    pieces = split_touching(figure_eight(), min_size=50)
    assert pieces.max() == 2
    areas = np.bincount(pieces.ravel())[1:]
    assert abs(areas[0] - areas[1]) <= 0.05 * areas.sum()
    assert pieces[25, 25] != pieces[25, 41]


def test_split_leaves_a_single_round_object_whole():
    labels = np.zeros((40, 40), np.int32)
    labels[disk((20, 20), 12)] = 5
    assert split_touching(labels, min_size=30).max() == 1


@pytest.mark.parametrize(("half_length", "half_width"), [(20, 8), (40, 10)])
def test_split_leaves_a_long_single_object_whole(half_length, half_width):
    from skimage.draw import ellipse

    labels = np.zeros((100, 100), np.int32)
    labels[ellipse(50, 50, half_length, half_width)] = 1  # maxima all along its ridge, no neck
    assert split_touching(labels, min_size=30).max() == 1


@pytest.mark.parametrize(("apart", "pieces"), [(14, 1), (18, 2), (22, 2)])
def test_two_overlapping_disks_split_only_where_a_neck_is_left(apart, pieces):
    labels = np.zeros((60, 80), np.int32)
    for centre in (40 - apart // 2, 40 + apart // 2):
        labels[disk((30, centre), 12)] = 1  # neck half-width 9.7, 7.9, 5.3 px for radius 12
    assert split_touching(labels, min_size=30).max() == pieces


def test_a_large_minimum_size_stops_the_split():
    assert split_touching(figure_eight(), min_size=400).max() == 1


def test_split_then_count_measures_the_pieces():
    counted = count_objects(figure_eight(), split=True, min_split_size=50)
    assert counted.summary["count"] == 2
    assert counted.summary["mean_area"] == pytest.approx(figure_eight().sum() / 2)


def test_summary_and_physical_units_with_a_pixel_size():
    counted = count_objects(squares(), pixel_size=(0.5, 0.5), name="a.tif")
    s = counted.summary
    assert s["image"] == "a.tif"
    assert s["count"] == 3
    assert s["median_area"] == 36
    assert s["mean_area"] == pytest.approx((16 + 36 + 100) / 3)
    assert s["area_fraction"] == pytest.approx(152 / 1600)
    assert s["density_per_mm2"] == pytest.approx(3 / (1600 * 0.25) * 1e6)
    row = counted.objects[2]
    assert row["area_um2"] == pytest.approx(25.0)
    assert row["centroid_y_um"] == pytest.approx(24.5 * 0.5)


def test_intensity_ranges_use_the_image():
    labels = squares()
    image = np.where(labels == 3, 2.0, 1.0).astype(np.float32)
    counted = count_objects(labels, image, ranges=["mean_intensity=1.5:"])
    assert [row["area"] for row in counted.objects] == [100]
    assert counted.objects[0]["integrated_intensity"] == pytest.approx(200.0)


def test_no_objects_gives_an_empty_table_and_a_zero_count():
    counted = count_objects(np.zeros((8, 8), np.int32), ranges=["area=1:"])
    assert counted.objects == []
    assert counted.summary["count"] == 0


def test_label_volumes_made_elsewhere_are_counted_in_3d(tmp_path):
    from deepscope.api import count_files
    from deepscope.io import write_image

    labels = np.zeros((6, 40, 40), np.uint16)
    labels[1:4, 5:15, 5:15] = 1
    labels[2:5, 20:30, 22:34] = 2
    write_image(tmp_path / "in" / "cells.tif", (labels > 0).astype(np.float32) * 100, "ZYX")
    write_image(tmp_path / "labels" / "cells_labels.tif", labels, "ZYX")

    (summary,) = count_files(
        None, [tmp_path / "in"], tmp_path / "out", ["area=300:"], labels=tmp_path / "labels"
    )
    assert summary["count"] == 2 and summary["mean_area"] == (300 + 360) / 2
    assert summary["density_per_megavoxel"] == pytest.approx(2 / (6 * 40 * 40) * 1e6)


def test_label_ids_of_any_size_are_counted_apart():
    from deepscope.measure import measure_objects

    labels = np.zeros((64, 64), np.uint64)
    labels[10:20, 10:20] = 5
    labels[30:40, 30:45] = 2**32 + 5  # the same low 32 bits as 5
    labels[45:55, 5:15] = 2**31 + 3  # negative as int32
    counted = count_objects(labels, np.ones((64, 64)))
    assert sorted(row["area"] for row in counted.objects) == [100, 100, 150]
    assert sorted(row["label"] for row in measure_objects(labels)) == [5, 2**31 + 3, 2**32 + 5]


def test_negative_labels_and_pixel_sizes_are_refused_in_one_line_even_without_objects():
    with pytest.raises(InputError, match="labels must not be negative"):
        count_objects(np.full((8, 8), -3))
    with pytest.raises(InputError, match="pixel_size must be positive"):
        count_objects(np.zeros((8, 8), int), pixel_size=(-1, 0.5))


def test_a_binary_mask_of_several_regions_is_counted_with_a_warning():
    binary = (squares() > 0).astype(np.uint8) * 255
    with pytest.warns(UserWarning, match="only 0 and 255 in 3 separate regions"):
        counted = count_objects(binary, name="mask.png")
    assert counted.summary["count"] == 1  # as given: label it first to count three


def test_a_range_says_how_many_objects_it_left_out_for_having_no_value():
    labels = np.zeros((4, 12, 12), np.int32)
    labels[1, 2:8, 2:8] = 1  # one slice thick: no solidity
    labels[0:3, 8:11, 8:11] = 2
    with pytest.warns(UserWarning, match=r"1 object\(s\) have no solidity"):
        counted = count_objects(labels, ranges=["solidity=0:"])
    assert counted.summary["count"] == 1


def test_a_pixel_size_may_be_given_as_an_image_holds_it():
    labels = np.zeros((20, 20), int)
    labels[2:6, 2:6] = 1
    by_axis = count_objects(labels, pixel_size={"Y": 0.5, "X": 0.5}).objects[0]
    assert by_axis["area_um2"] == count_objects(labels, pixel_size=0.5).objects[0]["area_um2"]
    assert by_axis["area_um2"] == pytest.approx(4.0)


def test_a_micrometre_range_on_an_image_without_a_pixel_size_says_why_it_has_no_column():
    labels = np.zeros((20, 20), np.int32)
    labels[2:6, 2:6] = 1
    with pytest.raises(InputError, match="the µm columns need a pixel size, which this image"):
        count_objects(labels, ranges=["area_um2=1:"])
