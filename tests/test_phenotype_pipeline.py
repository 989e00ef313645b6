"""CellCognition-style phenotyping end to end on real nuclei: build a CellH5 file from
images, train an autoencoder on the negative controls, encode every object, explore."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from deepscope.cellh5_build import build_cellh5
from deepscope.encode import encode
from deepscope.errors import InputError
from deepscope.explore import explore
from deepscope.io import write_image
from deepscope.io.feature_hdf import read_feature_hdf

IMAGES = [
    "00071198d059ba7f.tif",
    "003cee89357d9fe1.tif",
    "0287e7ee5b007c91.tif",
    "03398329ced0c23b.tif",
]


@pytest.fixture(scope="module")
def plate(shared_data, tmp_path_factory):
    """A CellH5 file of four DSB2018 images (two control wells, two 'treated')."""
    root = tmp_path_factory.mktemp("plate")
    folder = shared_data / "dsb2018" / "fluorescence" / "train"
    mapping = root / "mapping.txt"
    mapping.write_text(
        "Plate\tWell\tSite\tGene Symbol\tGroup\n"
        "P1\tA01\t1\tscrambled\tneg\n"
        "P1\tA02\t1\tscrambled\tneg\n"
        "P1\tB01\t1\tKIF11\ttreated\n"
        "P1\tB02\t1\tINCENP\ttreated\n"
    )
    path = build_cellh5(
        [folder / "images" / n for n in IMAGES],
        root / "plate.ch5",
        labels=[folder / "masks" / n for n in IMAGES],
        mapping=mapping,
    )
    return {"cellh5": path, "mapping": mapping, "root": root}


@pytest.fixture(scope="module")
def autoencoder(plate):
    """Trained from the command line on the controls, with tiny settings."""
    out = plate["root"] / "models"
    done = subprocess.run(
        [
            sys.executable, "-m", "deepscope", "train", "autoencoder",
            "--cellh5", plate["cellh5"], "--mapping", plate["mapping"],
            "--name", "ae", "--out", out, "--crop-size", "32", "--architecture", "c8.3r_p2",
            "--latent", "4", "--corruption", "0.2", "--epochs", "2", "--steps", "3",
            "--batch-size", "16", "--threads", "1", "--device", "cpu",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out / "ae"


def test_autoencoder_trains_on_control_objects_only(autoencoder):
    import json

    spec = json.loads((autoencoder / "model.json").read_text())
    assert spec["training"]["data"]["objects"] == "negative controls"
    assert spec["training"]["settings"]["optimizer"] == "adagrad"  # the module's advice
    assert spec["network"]["kind"] == "autoencoder" and spec["network"]["latent"] == 4
    assert (autoencoder / "reconstructions.png").is_file()
    assert 0 < spec["validation"]["reconstruction_mse"]


def test_encode_writes_the_explorer_layout_and_explore_ranks_positions(plate, autoencoder):
    out = plate["root"] / "features.hdf"
    paths = encode(autoencoder, out, cellh5=plate["cellh5"], mapping=plate["mapping"])
    assert paths["csv"].is_file()
    with h5py.File(out, "r") as f:
        n = f["data/bbox"].shape[0]
        assert n > 20
        assert {"label", "x", "y", "top", "bottom", "left", "right"} <= set(
            f["data/bbox"].dtype.names
        )
        assert f["data/features"].dtype.names == ("ae_0", "ae_1", "ae_2", "ae_3")
        assert f["data/gallery"].shape == (32, 32, 1, n)
        assert len(f["data/contours"]) == 1
    table = read_feature_hdf(out)
    assert set(table.groups) == {"neg", "treated"}
    assert {"KIF11", "INCENP", "scrambled"} == set(table.genes)
    assert table.is_control.sum() == sum(g == "neg" for g in table.groups)
    assert np.isfinite(table.features).all()

    summary = explore(out, plate["root"] / "explore.html", n_clusters=3, method="none")
    page = (plate["root"] / "explore.html").read_text()
    assert "P1/B01/1" in page and "data:image/png;base64," in page
    assert summary["n_objects"] == n

    done = subprocess.run(
        [sys.executable, "-m", "deepscope", "explore", out, "--out", plate["root"] / "cli.html",
         "--embedding", "none", "--clusters", "3"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (plate["root"] / "cli.html").is_file()


def test_encode_refuses_a_model_that_is_not_an_autoencoder(plate):
    with pytest.raises(InputError, match="train autoencoder"):
        encode("unet-nuclei-fluo", plate["root"] / "x.hdf", cellh5=plate["cellh5"])


def test_predict_points_an_autoencoder_to_encode(autoencoder, tmp_path):
    from deepscope import predict_files
    from deepscope.errors import ConfigError

    with pytest.raises(ConfigError, match="gives cell features, not images: use deepscope encode"):
        predict_files(autoencoder, [tmp_path], tmp_path / "out")


def test_encode_never_writes_over_its_input_or_its_own_table(plate, autoencoder):
    before = plate["cellh5"].read_bytes()
    with pytest.raises(InputError, match="is an input of this command"):
        encode(autoencoder, plate["cellh5"], cellh5=plate["cellh5"])
    assert plate["cellh5"].read_bytes() == before
    with pytest.raises(InputError, match="is the features file"):
        encode(autoencoder, plate["root"] / "features.csv", cellh5=plate["cellh5"])
    mapping = plate["root"] / "mapping.csv"  # a mapping saved as CSV, as features.csv is
    mapping.write_bytes(plate["mapping"].read_bytes())
    with pytest.raises(InputError, match=r"--out's table .*mapping\.csv' is an input"):
        encode(autoencoder, mapping.with_suffix(".hdf"), cellh5=plate["cellh5"], mapping=mapping)
    assert mapping.read_bytes() == plate["mapping"].read_bytes()


def test_cellh5_build_never_writes_over_an_image_label_or_mapping(shared_data, tmp_path):
    folder = shared_data / "dsb2018" / "fluorescence" / "train"
    label = tmp_path / "l.tif"
    label.write_bytes((folder / "masks" / IMAGES[0]).read_bytes())
    with pytest.raises(InputError, match=r"--out '.*l\.tif' is an input of this command"):
        build_cellh5([folder / "images" / IMAGES[0]], label, labels=[label])
    assert label.read_bytes() == (folder / "masks" / IMAGES[0]).read_bytes()


def test_outputs_that_cannot_be_written_are_refused_before_the_work(plate, autoencoder):
    blocker = plate["root"] / "a_file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot write --out"):
        encode(autoencoder, blocker / "f.hdf", cellh5=plate["cellh5"])
    with pytest.raises(InputError, match="cannot write --out"):
        explore(plate["root"] / "missing.hdf", blocker / "page.html")
    image = write_image(plate["root"] / "tiny.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="cannot write --out"):
        build_cellh5([image], blocker / "p.ch5", labels=[image])


def test_a_bad_plate_name_is_refused_before_any_image_is_segmented(tmp_path):
    image = write_image(tmp_path / "tiny.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="plate 'my plate/1' cannot be an HDF5 group name"):
        build_cellh5([image], tmp_path / "p.ch5", model="unet-nuclei-fluo", plate="my plate/1")


def test_an_autoencoder_exports_its_encoder_to_bioimageio(autoencoder, tmp_path):
    from bioimageio.spec import load_description
    from bioimageio.spec.model.v0_5 import ModelDescr

    from deepscope.zoo import export_model
    from deepscope.zoo.bioimageio import reproduce_test_tensors

    folder = export_model(str(autoencoder), tmp_path / "ae-bio", format="bioimageio")
    description = load_description(folder / "rdf.yaml", perform_io_checks=False)
    assert isinstance(description, ModelDescr), description.validation_summary.format()
    assert np.load(folder / "test_output.npy").shape == (1, 4)  # four features per crop
    assert max(reproduce_test_tensors(folder).values()) < 1e-4
