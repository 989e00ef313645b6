"""Importing bioimage.io models made by other tools: ONNX or TorchScript weights, their own
pre- and post-processing, checked against their test tensors, then run by ``predict``."""

import numpy as np
import pytest
import torch
import yaml

from deepscope.errors import ModelError
from deepscope.io import read_image, write_image
from deepscope.spec import sha256_of
from deepscope.zoo import import_model, list_models, load_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Blur(torch.nn.Module):
    """Someone else's network: a 3x3 mean filter giving two channels."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
        torch.nn.init.constant_(self.conv.weight, 1 / 9)
        with torch.no_grad():
            self.conv.bias.copy_(torch.tensor([0.0, -1.0]))

    def forward(self, x):
        return self.conv(x)


def space(axis, size):
    return {"type": "space", "id": axis, "size": size}


def make_foreign_model(folder, weights="onnx", pre=None, input_size=None):
    """A bioimage.io 0.5 model folder written by hand, as another tool would."""
    folder.mkdir()
    net = Blur().eval()
    x = np.random.default_rng(0).random((1, 1, 32, 48)).astype(np.float32) * 100
    pre = pre or [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}]
    normed = (x - x.mean()) / (x.std() + 1e-6)
    with torch.no_grad():
        y = torch.sigmoid(net(torch.from_numpy(normed.astype(np.float32)))).numpy()
    np.save(folder / "in.npy", x)
    np.save(folder / "out.npy", y)
    example = torch.zeros(1, 1, 16, 16)
    if weights == "onnx":
        torch.onnx.export(net, (example,), str(folder / "net.onnx"), dynamo=False,
                          input_names=["raw"], output_names=["out"], opset_version=17,
                          dynamic_axes={"raw": {0: "b", 2: "y", 3: "x"},
                                        "out": {0: "b", 2: "y", 3: "x"}})  # fmt: skip
        entry = {"onnx": {"source": "net.onnx", "sha256": sha256_of(folder / "net.onnx"),
                          "opset_version": 17}}  # fmt: skip
    else:
        torch.jit.trace(net, example).save(str(folder / "net.pt"))
        entry = {"torchscript": {"source": "net.pt", "sha256": sha256_of(folder / "net.pt"),
                                 "pytorch_version": "2.13"}}  # fmt: skip
    size = input_size or {"min": 16, "step": 8}
    rdf = {
        "format_version": "0.5.4",
        "type": "model",
        "name": "Blur Model",
        "description": "a mean filter from another tool",
        "authors": [{"name": "Someone Else"}],
        "cite": [{"text": "a paper", "doi": "10.1000/xyz"}],
        "license": "MIT",
        "documentation": "README.md",
        "tags": ["fluorescence", "demo"],
        "inputs": [{
            "id": "raw",
            "axes": [{"type": "batch"}, {"type": "channel", "channel_names": ["c0"]},
                     space("y", size), space("x", size)],
            "test_tensor": {"source": "in.npy", "sha256": sha256_of(folder / "in.npy")},
            "preprocessing": pre,
        }],
        "outputs": [{
            "id": "out",
            "axes": [{"type": "batch"}, {"type": "channel", "channel_names": ["a", "b"]},
                     space("y", {"tensor_id": "raw", "axis_id": "y"}),
                     space("x", {"tensor_id": "raw", "axis_id": "x"})],
            "test_tensor": {"source": "out.npy", "sha256": sha256_of(folder / "out.npy")},
            "postprocessing": [{"id": "sigmoid"}],
        }],
        "weights": entry,
    }  # fmt: skip
    (folder / "README.md").write_text("# Blur\n")
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False))
    return folder


@pytest.mark.parametrize("weights", ["onnx", "torchscript"])
def test_foreign_model_is_imported_checked_and_predicts(home, tmp_path, weights):
    folder = import_model(make_foreign_model(tmp_path / "blur", weights))
    assert folder.name == "blur-model"
    row = next(r for r in list_models(source="user"))
    assert (row["task"], row["architecture"], row["licence"]) == ("image", "external", "MIT")
    model = load_model("blur-model", device="cpu")
    image = np.random.default_rng(1).random((40, 56)).astype(np.float32)
    result = model.predict(image)
    assert result.image.shape == (2, 40, 56)
    assert 0 < result.image.min() and result.image.max() < 1  # the sigmoid step ran


def test_a_model_is_imported_from_its_rdf_yaml_as_from_its_folder(home, tmp_path):
    folder = import_model(make_foreign_model(tmp_path / "blur") / "rdf.yaml")
    assert folder.name == "blur-model"


def test_foreign_model_predicts_from_the_command_line(home, tmp_path):
    import subprocess
    import sys

    import_model(make_foreign_model(tmp_path / "blur"))
    write_image(tmp_path / "in" / "cells.tif", np.ones((64, 64), np.uint16))
    run = subprocess.run(
        [sys.executable, "-m", "deepscope", "predict", "blur-model", str(tmp_path / "in"),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env={**__import__("os").environ,
                                             "DEEPSCOPE_HOME": str(home)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert read_image(tmp_path / "out" / "cells_pred.tif").data.shape == (2, 64, 64)


def test_foreign_model_that_does_not_reproduce_its_test_output_is_refused(home, tmp_path):
    folder = make_foreign_model(tmp_path / "blur")
    np.save(folder / "out.npy", np.zeros((1, 2, 32, 48), np.float32))
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    rdf["outputs"][0]["test_tensor"]["sha256"] = sha256_of(folder / "out.npy")
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    with pytest.raises(ModelError, match="does not reproduce its own test output"):
        import_model(folder)
    assert list_models(source="user") == []


def test_foreign_models_deepscope_cannot_run_are_refused_clearly(home, tmp_path):
    steps = [{"id": "scale_mean_variance", "kwargs": {"reference_tensor": "raw"}}]
    with pytest.raises(ModelError):
        import_model(make_foreign_model(tmp_path / "a", pre=steps))
    with pytest.raises(ModelError, match="fixed"):
        import_model(make_foreign_model(tmp_path / "b", input_size=32))


def test_foreign_model_smaller_image_than_its_minimum_is_an_input_error(home, tmp_path):
    from deepscope.errors import InputError

    import_model(make_foreign_model(tmp_path / "blur"))
    with pytest.raises(InputError, match="smallest input"):
        load_model("blur-model", device="cpu").predict(np.ones((8, 64), np.float32))


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_a_description_that_names_files_outside_its_package_is_refused(home, tmp_path, where):
    folder = make_foreign_model(tmp_path / "blur")
    outside = tmp_path / "outside.onnx"
    (folder / "net.onnx").rename(outside)  # the weights now lie beside the package
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    rdf["weights"]["onnx"]["source"] = str(outside) if where == "absolute" else "../outside.onnx"
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False))

    with pytest.raises(ModelError, match="outside its package"):
        import_model(folder)
    assert not (home / "models" / "blur-model").exists()


@pytest.mark.parametrize("content", ["- a list\n- of things\n", b"name: \xff\xfe\n"])
def test_a_description_that_is_not_a_mapping_of_text_is_refused_in_one_line(
    home, tmp_path, content
):
    folder = make_foreign_model(tmp_path / "blur")
    raw = content if isinstance(content, bytes) else content.encode()
    (folder / "rdf.yaml").write_bytes(raw)
    with pytest.raises(ModelError, match=r"bioimage\.io description"):
        import_model(folder)
