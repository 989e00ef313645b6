"""Cell objects for the autoencoder: crops of CellH5 positions and folders of crop files."""

import numpy as np
import pytest

from deepscope.cell_objects import crop_files, objects_from_cellh5
from deepscope.errors import InputError
from deepscope.io import write_image
from deepscope.io.cellh5 import PositionData, PositionKey, write_cellh5


def test_crops_beside_class_folders_are_kept_too(tmp_path):
    for name in ("a.png", "b.png", "old/c.png"):
        write_image(tmp_path / name, np.zeros((16, 16), np.uint8))
    assert [p.name for p in crop_files(tmp_path)] == ["a.png", "b.png", "c.png"]


def test_a_cellh5_of_volumes_is_refused_not_cropped_from_its_first_plane(tmp_path):
    labels = np.zeros((1, 1, 3, 20, 30), np.int32)
    labels[0, 0, 2, 5:9, 5:9] = 1  # the object lies in plane 2, not plane 0
    volume = PositionData(
        key=PositionKey("p", "A01", "1"),
        image=np.ones((1, 1, 3, 20, 30), np.uint8),
        labels=labels,
        label_ids=np.array([1]),
        centers=[(7, 7)],
        bboxes=[(5, 9, 5, 9)],
    )
    path = write_cellh5(tmp_path / "v.ch5", [volume])
    with pytest.raises(InputError, match="holds a volume of 3 planes"):
        objects_from_cellh5(path, 8)
