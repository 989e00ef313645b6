"""Finding models by name or path, and listing them."""

import shlex
from pathlib import Path

import pytest
import yaml

from deepscope.errors import ModelError
from deepscope.nets import UNetConfig, build_unet
from deepscope.spec import ModelSpec, save_package
from deepscope.zoo import list_models, load_model, resolve_model


@pytest.fixture()
def library(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSCOPE_HOME", str(tmp_path / "home"))
    config = UNetConfig(depth=1, base_filters=2, out_channels=3)
    spec = ModelSpec(name="mine", task="semantic", network=config)
    save_package(tmp_path / "home" / "models" / "mine", spec, build_unet(config).state_dict())
    return tmp_path / "home" / "models"


def test_builtin_model_is_listed_and_loads():
    names = {row["name"]: row for row in list_models()}
    assert names["unet-nuclei-fluo"]["source"] == "builtin"
    model = load_model("unet-nuclei-fluo", device="cpu")
    assert model.spec.task == "semantic" and model.source == "builtin"


def test_user_library_model_by_name_and_by_path(library):
    assert resolve_model("mine") == (library / "mine", "user")
    assert resolve_model(library / "mine") == (library / "mine", "path")
    assert any(r["name"] == "mine" and r["source"] == "user" for r in list_models())


def test_unknown_model_lists_what_exists(library):
    with pytest.raises(ModelError, match=r"unknown model 'nope'.*unet-nuclei-fluo.*mine"):
        resolve_model("nope")


def test_folder_that_is_not_a_package(tmp_path):
    with pytest.raises(ModelError, match="not a model package"):
        resolve_model(tmp_path)


def test_an_output_folder_named_like_a_model_does_not_hide_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "unet-nuclei-fluo").mkdir()  # e.g. predict ... --out unet-nuclei-fluo
    assert resolve_model("unet-nuclei-fluo")[1] == "builtin"


def test_bfloat16_prediction_stays_close_to_float32():
    import numpy as np

    from deepscope.data.synthetic import synthetic_nuclei

    image, _ = synthetic_nuclei((128, 128), n=8, seed=1)
    exact = load_model("unet-nuclei-fluo", device="cpu", precision="float32").raw(image)
    fast = load_model("unet-nuclei-fluo", device="cpu", precision="bfloat16").raw(image)
    assert np.abs(exact - fast).mean() < 0.05


def test_an_unknown_precision_is_a_config_error():
    from deepscope.errors import ConfigError

    with pytest.raises(ConfigError, match="float32, bfloat16, int8 or auto"):
        load_model("unet-nuclei-fluo", precision="fp8")


@pytest.mark.parametrize("row", list_models(source="builtin"), ids=lambda row: row["name"])
def test_builtin_model_records_the_repository_config_that_trains_it(row):
    """`models show` tells how to retrain a built-in: a config under configs/ with the
    model's name and network, run from the repository root."""
    training = load_model(row["name"], device="cpu").spec.training
    words = shlex.split(training["command"])
    assert words[:3] == ["deepscope", "train", words[2]] and words[2].startswith("configs/")
    config = yaml.safe_load((Path(__file__).parents[2] / words[2]).read_text())
    assert config["name"] == row["name"]
    recorded = training["settings"]["network"]
    for key, value in config.get("network", {}).items():
        assert recorded[key] == value, key
