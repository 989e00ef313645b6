"""bioimage.io export of every built-in model: valid offline, test tensors reproduce,
and deepscope imports its own export back unchanged."""

import numpy as np
import pytest
import yaml
from bioimageio.spec import load_description
from bioimageio.spec.model.v0_5 import ModelDescr

from deepscope.errors import ModelError
from deepscope.nets import UNetConfig, build_unet
from deepscope.spec import ModelSpec, read_spec, read_weights, save_package
from deepscope.zoo import export_model, import_model, load_model, resolve_model
from deepscope.zoo.bioimageio import reproduce_test_tensors
from deepscope.zoo.registry import builtin_names


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_export_validates_and_reproduces_its_test_tensors(name, tmp_path):
    folder = export_model(name, tmp_path / name, format="bioimageio")
    description = load_description(folder / "rdf.yaml", perform_io_checks=False)
    assert isinstance(description, ModelDescr), description.validation_summary.format()
    assert description.validation_summary.status == "valid-format"
    assert description.weights.torchscript is not None and description.weights.onnx is not None
    diffs = reproduce_test_tensors(folder)
    assert diffs["torchscript"] < 1e-4 and diffs["onnx"] < 1e-4


def test_a_3d_export_keeps_its_test_tensors_small(tmp_path):
    folder = export_model("stardist-nuclei-3d", tmp_path / "sd3", format="bioimageio")
    sizes = [p.stat().st_size for p in folder.glob("*.npy")]
    assert sizes and max(sizes) < 30e6  # 16 x 256² x 97 channels made 407 MB


def test_grid_output_is_declared_at_half_resolution(tmp_path):
    folder = export_model("stardist-nuclei-fluo", tmp_path / "sd", format="bioimageio")
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    y_axis = rdf["outputs"][0]["axes"][2]
    assert y_axis["scale"] == 2.0 and y_axis["size"] == {"tensor_id": "input", "axis_id": "y"}
    assert "non-maximum suppression" in (folder / "README.md").read_text()


def test_our_own_export_imports_back_as_the_same_model(home, tmp_path):
    archive = export_model("stardist-nuclei-fluo", tmp_path / "sd.zip", format="bioimageio")
    folder = import_model(archive, name="sd-copy")
    builtin, _ = resolve_model("stardist-nuclei-fluo")
    original, copy = read_spec(builtin), read_spec(folder)
    assert copy.task_params == original.task_params
    assert copy.weights_sha256 == original.weights_sha256
    assert read_weights(folder, copy).keys() == read_weights(builtin, original).keys()
    assert not (folder / "rdf.yaml").exists()  # only the deepscope files, not the export's
    assert not list(folder.glob("*.npy")) and not list(folder.glob("weights_torchscript*"))


@pytest.mark.parametrize("attachments_listed", [False, True])
def test_our_export_without_its_deepscope_files_imports_as_a_plain_network(
    home, tmp_path, attachments_listed
):
    folder = export_model("unet-nuclei-fluo", tmp_path / "foreign", format="bioimageio")
    if not attachments_listed:  # else the description still names files that are gone
        rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
        del rdf["attachments"]
        (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    (folder / "model.json").unlink()
    imported = import_model(folder, name="unet-as-others-see-it")  # checks its test tensors
    assert read_spec(imported).task == "image"
    image = np.random.default_rng(0).random((64, 80)).astype(np.float32)
    result = load_model("unet-as-others-see-it", device="cpu").predict(image)
    assert result.image.shape[-2:] == (64, 80)


def test_export_never_overwrites(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ModelError, match="exists"):
        export_model("unet-nuclei-fluo", tmp_path / "taken", format="bioimageio")
    with pytest.raises(ModelError, match="format must be one of"):
        export_model("unet-nuclei-fluo", tmp_path / "x", format="keras")


def test_dataset_normalisation_travels_as_fixed_linear_scaling(tmp_path):
    config = UNetConfig(depth=1, base_filters=2, in_channels=2, out_channels=3)
    spec = ModelSpec(
        name="fixed-scale",
        task="semantic",
        network=config,
        input_axes="CYX",
        normalization={"mode": "dataset", "bounds": [(10.0, 210.0), (0.0, 4.0)]},
    )
    package = save_package(tmp_path / "fixed-scale", spec, build_unet(config).state_dict())
    folder = export_model(str(package), tmp_path / "exported", format="bioimageio")

    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    scale = rdf["inputs"][0]["preprocessing"][-1]
    assert scale["id"] == "scale_linear"
    np.testing.assert_allclose(scale["kwargs"]["gain"], [1 / 200, 1 / 4])
    np.testing.assert_allclose(scale["kwargs"]["offset"], [-10 / 200, 0.0])
    description = load_description(folder / "rdf.yaml", perform_io_checks=False)
    assert description.validation_summary.status == "valid-format"
    assert max(reproduce_test_tensors(folder).values()) < 1e-4
    test_input = np.load(folder / rdf["inputs"][0]["test_tensor"]["source"])
    assert not np.allclose(test_input[0, 0], test_input[0, 1])  # a channel swap would show


def test_a_classifier_export_says_crops_are_normalised_before_they_are_sized(tmp_path):
    folder = export_model("mitosis-phase-classifier", tmp_path / "cls", format="bioimageio")
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "normalises each crop as a whole, then centre-crops or zero-pads it" in readme


def test_a_flows_export_names_its_channels_and_explains_the_reconstruction(tmp_path):
    folder = export_model("flows-nuclei-fluo", tmp_path / "flows", format="bioimageio")
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    readme = (folder / "README.md").read_text(encoding="utf-8")
    channels = next(a for a in rdf["outputs"][0]["axes"] if a["type"] == "channel")
    assert channels["channel_names"] == ["flow_y_x5", "flow_x_x5", "cell_probability_logit"]
    assert "the Cellpose reconstruction" in readme and "softmax" not in readme
    assert "fluorescence nuclei" in rdf["tags"]  # the domain is one tag, not one per word
