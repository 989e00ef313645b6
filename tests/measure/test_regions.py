"""One row of measurements per object, and writing them as CSV."""

import csv
import warnings

import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.measure import measure_objects, write_table


def two_rectangles() -> np.ndarray:
    """Label 1: rows 1-2, columns 2-5 (8 pixels); label 4: rows 5-8, columns 7-9 (12 pixels)."""
    labels = np.zeros((10, 12), np.int32)
    labels[1:3, 2:6] = 1
    labels[5:9, 7:10] = 4
    return labels


def test_position_and_size_of_two_rectangles():
    rows = measure_objects(two_rectangles())
    assert [row["label"] for row in rows] == [1, 4]
    first, second = rows
    assert first["area"] == 8 and second["area"] == 12
    assert (first["centroid_y"], first["centroid_x"]) == (1.5, 3.5)
    assert (second["centroid_y"], second["centroid_x"]) == (6.5, 8.0)
    # bounding boxes: min inclusive, max exclusive, as slices
    assert [first[f"bbox_{s}_{a}"] for s in ("min", "max") for a in "yx"] == [1, 2, 3, 6]
    assert [second[f"bbox_{s}_{a}"] for s in ("min", "max") for a in "yx"] == [5, 7, 9, 10]
    assert first["solidity"] == pytest.approx(1.0)
    assert first["equivalent_diameter"] == pytest.approx(np.sqrt(4 * 8 / np.pi))
    assert not any("intensity" in key for key in first)  # no image, no intensities


def test_values_are_plain_python_numbers():
    for value in measure_objects(two_rectangles())[0].values():
        assert type(value) in (int, float)


def test_intensity_columns_with_an_image():
    labels = two_rectangles()
    image = np.arange(120, dtype=np.float32).reshape(10, 12)  # value = 12 * y + x
    first, second = measure_objects(labels, image)
    pixels = image[labels == 1]
    assert first["mean_intensity"] == pytest.approx(pixels.mean())
    assert first["min_intensity"] == 14.0  # (1, 2)
    assert first["max_intensity"] == 29.0  # (2, 5)
    assert first["integrated_intensity"] == pytest.approx(pixels.sum())
    assert second["integrated_intensity"] == pytest.approx(image[labels == 4].sum())


def test_channel_last_image_gives_columns_per_channel():
    labels = two_rectangles()
    grey = np.arange(120, dtype=np.float32).reshape(10, 12)
    first = measure_objects(labels, np.stack([grey, 2 * grey], axis=-1))[0]
    assert first["mean_intensity_ch1"] == pytest.approx(2 * first["mean_intensity_ch0"])
    assert first["integrated_intensity_ch0"] == pytest.approx(grey[labels == 1].sum())
    assert first["max_intensity_ch1"] == 58.0


def test_3d_labels():
    labels = np.zeros((3, 4, 5), np.uint16)
    labels[1:3, 1:3, 1:4] = 2
    (row,) = measure_objects(labels, np.full((3, 4, 5), 2.0))
    assert row["label"] == 2 and row["area"] == 12
    assert (row["centroid_z"], row["centroid_y"], row["centroid_x"]) == (1.5, 1.5, 2.0)
    assert (row["bbox_min_z"], row["bbox_max_z"]) == (1, 3)
    assert row["integrated_intensity"] == pytest.approx(24.0)


def test_no_objects_gives_an_empty_list():
    assert measure_objects(np.zeros((4, 4), np.uint8)) == []
    assert measure_objects(np.zeros((4, 4), np.uint8), np.ones((4, 4))) == []


def test_labels_saved_as_whole_floats_are_measured_and_fractions_refused():
    as_floats = measure_objects(two_rectangles().astype(np.float32))
    assert as_floats == measure_objects(two_rectangles())
    with pytest.raises(InputError, match="labels must be whole numbers"):
        measure_objects(two_rectangles() * 0.5)
    with pytest.raises(InputError, match=r"boolean mask, which is one object; .*measure\.label"):
        measure_objects(two_rectangles() > 0)
    with pytest.raises(InputError, match="the labels are empty"):
        measure_objects(np.zeros((0, 0), int))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_intensities_that_are_not_finite_numbers_are_refused(bad):
    image = np.ones((10, 12))
    image[3, 3] = bad  # inside the first rectangle: its mean would be NaN
    with pytest.raises(InputError, match="contains NaN or infinite values"):
        measure_objects(two_rectangles(), image)
    with pytest.raises(InputError, match="give real numbers"):
        measure_objects(two_rectangles(), np.ones((10, 12), complex))


def test_a_channel_first_image_is_told_to_put_its_channels_last():
    with pytest.raises(InputError, match=r"its channels come first: .*as_axes\('YXC'\)"):
        measure_objects(two_rectangles(), np.ones((2, 10, 12)))
    assert len(measure_objects(two_rectangles(), np.ones((10, 12, 2)))) == 2


@pytest.mark.parametrize("shape", [(10, 11), (12, 10), (10,)])
def test_image_of_another_shape_is_rejected(shape):
    with pytest.raises(InputError, match="does not match"):
        measure_objects(two_rectangles(), np.zeros(shape))


@pytest.mark.parametrize("shape", [(5,), (1, 2, 3, 4)])
def test_labels_must_be_2d_or_3d(shape):
    with pytest.raises(InputError, match="2D or 3D"):
        measure_objects(np.zeros(shape, np.int32))


def read_csv(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_write_table_writes_a_csv_with_a_header(tmp_path):
    rows = measure_objects(two_rectangles(), np.ones((10, 12)))
    path = write_table(rows, tmp_path / "out" / "objects.csv")  # the folder is created
    assert path == tmp_path / "out" / "objects.csv"
    header, read = read_csv(path)
    assert header == list(rows[0])
    assert [r["label"] for r in read] == ["1", "4"]
    assert float(read[1]["area"]) == 12 and float(read[0]["centroid_x"]) == 3.5
    assert float(read[0]["eccentricity"]) == pytest.approx(rows[0]["eccentricity"], rel=1e-5)
    assert [p.name for p in path.parent.iterdir()] == ["objects.csv"]  # no temporary file


def test_write_table_with_chosen_columns(tmp_path):
    rows = [{"label": 1, "area": 3.0, "x": 7}, {"label": 2, "area": 1.5, "x": 8}]
    header, read = read_csv(write_table(rows, tmp_path / "t.csv", columns=["label", "area"]))
    assert header == ["label", "area"]
    assert read == [{"label": "1", "area": "3"}, {"label": "2", "area": "1.5"}]


def test_write_table_without_rows_writes_only_a_header(tmp_path):
    header, read = read_csv(write_table([], tmp_path / "empty.csv"))
    assert header == ["label"] and read == []


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    class Unprintable:
        def __str__(self):
            raise RuntimeError("cannot format")

    path = write_table([{"label": 1}], tmp_path / "t.csv")
    with pytest.raises(RuntimeError):
        write_table([{"label": 2}, {"label": Unprintable()}], path)
    assert read_csv(path)[1] == [{"label": "1"}]
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_physical_columns_with_square_pixels_include_the_perimeter():
    (first, _) = measure_objects(two_rectangles(), pixel_size=(0.5, 0.5))
    assert first["area_um2"] == pytest.approx(8 * 0.25)
    assert first["perimeter_um"] == pytest.approx(first["perimeter"] * 0.5)


def test_oblong_pixels_give_physical_columns_without_a_perimeter():
    (first, _) = measure_objects(two_rectangles(), pixel_size=(0.5, 0.25))
    assert first["area_um2"] == pytest.approx(8 * 0.125)
    assert first["centroid_x_um"] == pytest.approx(3.5 * 0.25)
    assert "perimeter_um" not in first and "perimeter" in first


def test_a_flat_3d_object_has_no_solidity_rather_than_an_infinite_one():
    labels = np.zeros((4, 12, 12), np.int32)
    labels[1, 2:8, 2:8] = 1  # one plane thick: its convex hull has no volume
    labels[0:3, 8:11, 8:11] = 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and quietly: skimage printed qhull's complaint
        flat, solid = measure_objects(labels)
    assert np.isnan(flat["solidity"]) and solid["solidity"] == pytest.approx(1.0)


def test_tables_keep_ten_significant_digits(tmp_path):
    table = write_table([{"label": 1, "integrated_intensity": 1128892.0}], tmp_path / "t.csv")
    assert "1128892" in table.read_text()  # was 1.12889e+06


def test_each_object_keeps_its_largest_piece():
    from deepscope.measure.regions import keep_largest_pieces

    labels = np.zeros((12, 12), np.int32)
    labels[1:6, 1:6] = 1
    labels[9, 9] = 1  # a speck of object 1, apart from it
    labels[7, 2:5] = 2
    labels[8, 5] = 2  # touches object 2's piece diagonally: the same piece
    kept = keep_largest_pieces(labels)
    assert kept[9, 9] == 0 and (kept[1:6, 1:6] == 1).all()
    assert (kept == 2).sum() == 4 and labels[9, 9] == 1  # the input is left as it was
