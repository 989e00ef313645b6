"""The model package: written atomically, validated on reading, weights checked by sha256."""

import json

import pytest
import torch

from deepscope.errors import ModelError
from deepscope.nets import UNetConfig, build_unet
from deepscope.spec import ModelSpec, read_spec, read_weights, save_package


def _package(tmp_path, **spec_fields):
    config = UNetConfig(depth=1, base_filters=2, out_channels=3)
    net = build_unet(config)
    spec = ModelSpec(name="m", task="semantic", network=config, **spec_fields)
    return save_package(tmp_path / "m", spec, net.state_dict()), net


def test_package_round_trip(tmp_path):
    folder, net = _package(tmp_path, description="test model")
    spec = read_spec(folder)
    assert spec.description == "test model"
    assert len(spec.weights_sha256) == 64
    weights = read_weights(folder, spec)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(weights[key], value)
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "weights.safetensors"]


def test_saving_again_replaces_the_package_and_keeps_other_files(tmp_path):
    folder, _ = _package(tmp_path)
    (folder / "history.csv").write_text("epoch\n1\n")
    _package(tmp_path, description="second")
    assert read_spec(folder).description == "second"
    assert (folder / "history.csv").read_text() == "epoch\n1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_changed_weights_are_detected(tmp_path):
    folder, _ = _package(tmp_path)
    data = bytearray((folder / "weights.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        read_weights(folder, read_spec(folder))


def test_newer_format_says_to_upgrade(tmp_path):
    folder, _ = _package(tmp_path)
    raw = json.loads((folder / "model.json").read_text())
    raw["format_version"] = 99
    (folder / "model.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="upgrade deepscope"):
        read_spec(folder)
    raw["format_version"] = "99"  # a string must not slip past the check
    (folder / "model.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="invalid at 'format_version'"):
        read_spec(folder)


def test_invalid_model_json_names_the_field(tmp_path):
    folder, _ = _package(tmp_path)
    raw = json.loads((folder / "model.json").read_text())
    raw["network"]["depth"] = "deep"
    (folder / "model.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match=r"network\.depth"):
        read_spec(folder)
    (folder / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="damaged"):
        read_spec(folder)


def test_folder_without_model_json_is_not_a_package(tmp_path):
    with pytest.raises(ModelError, match="not a model package"):
        read_spec(tmp_path)


def test_truncated_weights_are_refused(tmp_path):
    folder, _ = _package(tmp_path)
    data = (folder / "weights.safetensors").read_bytes()
    (folder / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="changed or damaged"):
        read_weights(folder, read_spec(folder))


def test_pickle_weights_are_refused_because_they_can_run_code(tmp_path):
    folder, _ = _package(tmp_path)
    (folder / "weights.safetensors").rename(folder / "model.pt")
    with pytest.raises(ModelError, match=r"pickle weights \(model.pt\)"):
        read_weights(folder, read_spec(folder))


def test_weights_without_a_checksum_are_refused(tmp_path):
    folder, _ = _package(tmp_path)
    raw = json.loads((folder / "model.json").read_text())
    raw["weights_sha256"] = ""
    (folder / "model.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="no weights_sha256"):
        read_weights(folder, read_spec(folder))
