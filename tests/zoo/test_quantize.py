"""int8 copies of a model's network: calibration, the package record, and when they run."""

import json

import numpy as np
import pytest
import torch

import deepscope
from deepscope.errors import ConfigError, ModelError
from deepscope.io import read_image
from deepscope.nets import UNetConfig, build_unet
from deepscope.nets.quantize import quantize_int8
from deepscope.predict import backends
from deepscope.predict.backends import onnx_fn
from deepscope.predict.runtime_choice import cpu_key, runtimes_file
from deepscope.spec import INT8_FILE, read_spec
from deepscope.zoo import load_model, quantize_model
from deepscope.zoo.quantize import calibration_crop


@pytest.fixture(scope="module")
def trained(nuclei_folders, tmp_path_factory):
    """A semantic U-Net trained for a few seconds on the synthetic nuclei."""
    out = tmp_path_factory.mktemp("models")
    return deepscope.train(
        task="semantic",
        name="tiny-int8",
        out=out,
        images=nuclei_folders["train_images"],
        masks=nuclei_folders["train_masks"],
        val_images=nuclei_folders["val_images"],
        val_masks=nuclei_folders["val_masks"],
        network={"depth": 2, "base_filters": 8},
        patch_size=32,
        batch_size=2,
        epochs=3,
        steps_per_epoch=20,
        val_patches=2,
        threads=1,
        device="cpu",
    )


@pytest.fixture()
def quantized(trained, nuclei_folders, tmp_path):
    """A copy of the trained package with an int8 network scored on the val images."""
    import shutil

    folder = shutil.copytree(trained, tmp_path / "tiny-int8")
    return quantize_model(
        folder,
        nuclei_folders["train_images"],
        count=4,
        val_images=nuclei_folders["val_images"],
        val_masks=nuclei_folders["val_masks"],
    )


def test_calibration_crop_takes_the_centre_in_multiples_of_the_divisor():
    x = np.arange(100 * 37, dtype=np.float32).reshape(1, 100, 37)
    crop = calibration_crop(x, side=64, divisor=8)
    assert crop.shape == (1, 64, 32)
    np.testing.assert_array_equal(crop, x[:, 18:82, 2:34])
    assert calibration_crop(np.zeros((2, 5, 70), np.float32), 64, 8).shape == (2, 8, 64)


def test_int8_network_follows_the_float_network():
    torch.manual_seed(0)
    net = build_unet(UNetConfig(depth=2, base_filters=8, out_channels=2)).eval()
    rng = np.random.default_rng(0)
    images = [rng.normal(size=(1, 1, 64, 64)).astype(np.float32) for _ in range(4)]
    model = quantize_int8(net, images)
    int8 = onnx_fn(model, threads=1)
    x = rng.normal(size=(1, 1, 64, 96)).astype(np.float32)
    with torch.inference_mode():
        expected = net(torch.from_numpy(x)).numpy()
    got = int8(x)
    assert got.shape == expected.shape
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.99
    assert np.abs(got - expected).mean() < 0.01 * np.abs(expected).mean()


def test_int8_network_keeps_its_output_convolution_float():
    import onnx

    net = build_unet(UNetConfig(depth=1, base_filters=4)).eval()
    graph = onnx.load_from_string(quantize_int8(net, [np.ones((1, 1, 16, 16), np.float32)])).graph
    weights = {w.name: w.data_type for w in graph.initializer}
    (last,) = [n for n in graph.node if "output" in n.output]
    assert last.op_type == "Conv" and weights[last.input[1]] == onnx.TensorProto.FLOAT
    assert any(n.op_type == "DequantizeLinear" for n in graph.node)


def test_the_outer_level_can_stay_float_for_restoration_networks():
    import onnx

    net = build_unet(UNetConfig(depth=2, base_filters=4)).eval()
    images = [np.ones((1, 1, 16, 16), np.float32)]

    def float_convs(model: bytes) -> set[str]:
        graph = onnx.load_from_string(model).graph
        weights = {w.name: w.data_type for w in graph.initializer}
        return {
            n.name
            for n in graph.node
            if n.op_type == "Conv" and weights.get(n.input[1]) == onnx.TensorProto.FLOAT
        }

    assert float_convs(quantize_int8(net, images)) == {"/head/Conv"}
    outer = float_convs(quantize_int8(net, images, float_outer_level=True))
    assert outer == {
        "/encoders.0/encoders.0.0/Conv",
        "/encoders.0/encoders.0.3/Conv",
        "/decoders.1/decoders.1.0/Conv",
        "/decoders.1/decoders.1.3/Conv",
        "/head/Conv",
    }


def test_calibration_batches_must_fit_the_network():
    net = build_unet(UNetConfig(depth=2, base_filters=4))
    with pytest.raises(ConfigError, match="multiples of 4"):
        quantize_int8(net, [np.zeros((1, 1, 30, 32), np.float32)])
    with pytest.raises(ConfigError, match="at least one"):
        quantize_int8(net, [])


def test_quantized_package_records_its_int8_network_and_its_scores(quantized, trained):
    spec = read_spec(quantized)
    assert (quantized / INT8_FILE).is_file()
    assert len(spec.int8.sha256) == 64
    assert spec.format_version == 2 and read_spec(trained).format_version == 1
    assert len(spec.int8.calibration["images"]) == 4
    # scored, not compared: how close a few seconds of training come through 8-bit
    # arithmetic depends on the CPU (without VNNI intermediate sums can saturate)
    assert 0 <= spec.int8.validation["ap@0.5"] <= 1
    assert spec.int8.validation["n_images"] == 2


def test_the_library_says_which_models_carry_an_int8_network():
    from deepscope.zoo import list_models

    rows = {r["name"]: r for r in list_models(source="builtin")}
    assert rows["unet-nuclei-fluo"]["int8"] and not rows["care-fmd-confocal"]["int8"]


def test_int8_runs_with_precision_int8_or_auto_on_the_cpu(quantized, nuclei_folders, monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_int8_dot_product", lambda: True)
    image = read_image(sorted(nuclei_folders["val_images"].iterdir())[0]).data
    exact = load_model(quantized, device="cpu", precision="float32")
    fast = load_model(quantized, device="cpu", precision="int8")
    assert not exact.predictor.int8 and fast.predictor.int8 and fast.backend == "onnx"
    assert not load_model(quantized, device="cpu", precision="auto", backend="torch").predictor.int8
    a, b = exact.raw(image), fast.raw(image)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98
    found, fast_found = exact.predict(image).labels > 0, fast.predict(image).labels > 0
    assert found.sum() > 100
    assert (found & fast_found).sum() / (found | fast_found).sum() > 0.9


def test_auto_runs_what_was_measured_fastest_on_this_cpu(quantized, monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPSCOPE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(backends, "cpu_has_int8_dot_product", lambda: True)
    auto = load_model(quantized, device="cpu", precision="auto").predictor
    (record,) = json.loads(runtimes_file().read_text())[cpu_key()].values()
    assert set(record["seconds"]) == {"torch", "onnx", "int8"}
    assert record["seconds"][record["runtime"]] == min(record["seconds"].values())
    assert auto.int8 == (record["runtime"] == "int8")
    assert auto.backend == ("torch" if record["runtime"] == "torch" else "onnx")


def test_auto_builds_the_remembered_runtime(quantized, monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPSCOPE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(backends, "cpu_has_int8_dot_product", lambda: True)
    load_model(quantized, device="cpu", precision="auto")
    choices = json.loads(runtimes_file().read_text())
    for runtime, int8, backend in (("int8", True, "onnx"), ("torch", False, "torch")):
        (key,) = choices[cpu_key()]
        choices[cpu_key()][key]["runtime"] = runtime
        runtimes_file().write_text(json.dumps(choices))
        auto = load_model(quantized, device="cpu", precision="auto").predictor
        assert (auto.int8, auto.backend) == (int8, backend)


def test_auto_keeps_cpus_without_int8_dot_products_on_the_float_network(
    quantized, monkeypatch, tmp_path
):
    monkeypatch.setenv("DEEPSCOPE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(backends, "cpu_has_int8_dot_product", lambda: False)
    assert not load_model(quantized, device="cpu", precision="auto").predictor.int8
    (record,) = json.loads(runtimes_file().read_text())[cpu_key()].values()
    assert "int8" not in record["seconds"]
    assert load_model(quantized, device="cpu", precision="int8").predictor.int8  # asked for


def test_the_cpu_check_answers_without_failing():
    assert isinstance(backends.cpu_has_int8_dot_product(), bool)


def test_a_changed_int8_file_is_refused(quantized):
    path = quantized / INT8_FILE
    path.write_bytes(path.read_bytes()[:-10])
    for precision in ("auto", "float32"):  # a damaged package is refused, used file or not
        with pytest.raises(ModelError, match="changed or damaged"):
            load_model(quantized, device="cpu", precision=precision)


def test_int8_where_it_cannot_run_says_what_to_do(trained, quantized):
    with pytest.raises(ConfigError, match="models quantize"):
        load_model(trained, device="cpu", precision="int8")
    with pytest.raises(ConfigError, match="drop --backend torch"):
        load_model(quantized, device="cpu", precision="int8", backend="torch")
    with pytest.raises(ModelError, match="read-only"):
        quantize_model("unet-nuclei-fluo", ".")


def test_models_quantize_command_adds_the_network_and_prints_its_scores(
    trained, nuclei_folders, tmp_path
):
    import shutil

    from typer.testing import CliRunner

    from deepscope.cli.main import app

    folder = shutil.copytree(trained, tmp_path / "mine")
    args = ["models", "quantize", str(folder), "--images", str(nuclei_folders["train_images"])]
    scored = ["--val-images", str(nuclei_folders["val_images"])]
    scored += ["--val-masks", str(nuclei_folders["val_masks"])]
    run = CliRunner().invoke(app, [*args, "--count", "2", *scored])
    assert run.exit_code == 0, run.output
    assert "added an int8 network" in run.output and "AP" in run.output
    assert len(read_spec(folder).int8.calibration["images"]) == 2
    assert read_spec(folder).int8.calibration["float_outer_level"] is False

    run = CliRunner().invoke(app, [*args, "--count", "2", "--float-outer-level"])
    assert run.exit_code == 0, run.output
    assert read_spec(folder).int8.calibration["float_outer_level"] is True


def test_the_int8_network_travels_with_exports(quantized, tmp_path, monkeypatch):
    from deepscope.zoo import export_model, import_model

    monkeypatch.setenv("DEEPSCOPE_HOME", str(tmp_path / "home"))
    for format, out in (("deepscope", "mine.zip"), ("bioimageio", "mine-bioimageio.zip")):
        export_model(str(quantized), tmp_path / out, format)
        folder = import_model(tmp_path / out, name=f"mine-{format}")
        assert read_spec(folder).int8 == read_spec(quantized).int8
        assert load_model(folder, device="cpu", precision="int8").predictor.int8


def test_training_with_int8_adds_the_network_scored_on_the_validation_images(tiny_settings):
    folder = deepscope.train(**{**tiny_settings, "int8": True})
    spec = read_spec(folder)
    assert (folder / INT8_FILE).is_file()
    assert spec.int8.validation["n_images"] == 2
    assert set(spec.int8.validation) == set(spec.validation)


def test_int8_is_refused_for_crop_networks_before_training():
    from deepscope.train.config import make_train_config

    with pytest.raises(ConfigError, match="remove 'int8' for classify"):
        make_train_config({"task": "classify", "name": "m", "images": ".", "int8": True})


def test_validation_that_fails_leaves_the_int8_network_and_its_record_as_they_were(
    quantized, nuclei_folders, tmp_path
):
    before = {name: (quantized / name).read_bytes() for name in (INT8_FILE, "model.json")}
    (tmp_path / "masks").mkdir()  # no mask for any validation image
    with pytest.raises(deepscope.DeepscopeError, match="contains no image files"):
        quantize_model(
            quantized,
            nuclei_folders["train_images"],
            count=2,
            side=64,
            val_images=nuclei_folders["val_images"],
            val_masks=tmp_path / "masks",
        )
    assert {name: (quantized / name).read_bytes() for name in before} == before
    assert not list(quantized.glob(".*tmp"))


def test_a_built_in_model_given_by_its_folder_is_read_only_too():
    from deepscope.zoo.registry import BUILTIN_DIR

    folder = BUILTIN_DIR / "unet-nuclei-fluo"
    with pytest.raises(ModelError, match="is a built-in model, which is read-only"):
        quantize_model(folder, folder, count=1)
    with pytest.raises(ModelError, match="is a built-in model, which is read-only"):
        deepscope.tune(str(folder), folder, folder)
