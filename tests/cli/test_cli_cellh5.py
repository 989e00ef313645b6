"""`deepscope cellh5 build` as a user runs it."""

import subprocess
import sys

import numpy as np

from deepscope.data.synthetic import synthetic_nuclei
from deepscope.io import write_image
from deepscope.io.cellh5 import read_cellh5


def test_cellh5_build_from_images_labels_and_a_mapping_file(tmp_path):
    for i in range(2):
        image, labels = synthetic_nuclei((64, 64), n=4, seed=i)
        write_image(tmp_path / "img" / f"s{i}.tif", (image * 200).astype(np.uint8))
        write_image(tmp_path / "lab" / f"s{i}.tif", labels.astype(np.uint16))
    mapping = tmp_path / "map.txt"
    mapping.write_text(
        "Plate\tWell\tSite\tGene Symbol\tGroup\n"
        "P1\tA01\t1\tscrambled\tneg\n"
        "P1\tB02\t1\tKIF11\ttreated\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepscope",
            "cellh5",
            "build",
            str(tmp_path / "img"),
            "--labels",
            str(tmp_path / "lab"),
            "--mapping",
            str(mapping),
            "--out",
            str(tmp_path / "plate.ch5"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    positions = read_cellh5(tmp_path / "plate.ch5")
    assert [(p.key.plate, p.key.well) for p in positions] == [("P1", "A01"), ("P1", "B02")]
    assert all(p.n_objects > 0 for p in positions)

    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepscope",
            "cellh5",
            "build",
            str(tmp_path / "img"),
            "--out",
            str(tmp_path / "x.ch5"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.ch5").exists()
