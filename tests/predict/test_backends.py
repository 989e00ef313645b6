"""Runtimes: onnxruntime gives the torch network's outputs; auto picks by measurement."""

import numpy as np
import pytest
import torch

from deepscope.errors import ConfigError
from deepscope.nets import UNetConfig, build_unet
from deepscope.nets.onnx import export_onnx
from deepscope.predict.backends import (
    choose_backend,
    onnx_fn,
    tf32_off,
    time_backends,
    torch_fn,
)
from deepscope.tasks import TASKS, get_task
from deepscope.zoo import load_model

CPU = torch.device("cpu")


def trained_looking(config: UNetConfig, seed: int = 0) -> torch.nn.Module:
    """A network with random weights, non-trivial batch-norm statistics and style layers
    that are not silent."""
    torch.manual_seed(seed)
    net = build_unet(config)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight)
    return net.eval()


NETWORKS = {
    "2d": UNetConfig(ndim=2, in_channels=2, out_channels=3, depth=2, base_filters=8),
    "2d-grid": UNetConfig(ndim=2, out_channels=33, depth=2, base_filters=8, grid=2),
    "3d": UNetConfig(ndim=3, out_channels=5, depth=2, base_filters=4, grid=2),
    "2d-n2v2": UNetConfig(depth=2, base_filters=8, pool="blurmax", top_skip=False),
    "3d-n2v2": UNetConfig(ndim=3, depth=2, base_filters=4, pool="blurmax", top_skip=False),
    "2d-style": UNetConfig(ndim=2, out_channels=3, depth=2, base_filters=8, style=True),
    "3d-style": UNetConfig(ndim=3, out_channels=4, depth=2, base_filters=4, style=True),
}


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_onnx_outputs_equal_torch_outputs(kind):
    config = NETWORKS[kind]
    net = trained_looking(config)
    shape = (48, 64) if config.ndim == 2 else (16, 32, 24)
    batch = np.random.default_rng(0).normal(size=(2, config.in_channels, *shape))
    batch = batch.astype(np.float32)
    expected = torch_fn(net, CPU)(batch)
    got = onnx_fn(export_onnx(net))(batch)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_network_exports(task):
    config = UNetConfig(out_channels=get_task(task).out_channels, depth=2, base_filters=4)
    assert export_onnx(trained_looking(config)).startswith(b"\x08")  # an ONNX protobuf


def test_builtin_model_predicts_the_same_objects_with_both_backends():
    image = np.random.default_rng(1).random((96, 128)).astype(np.float32)
    image[20:40, 30:50] += 2  # one bright square nucleus
    # float32: the model's default 'auto' would run int8 in onnxruntime and may run
    # bfloat16 in torch, which are faster but not the same arithmetic
    torch_model = load_model("unet-nuclei-fluo", device="cpu", backend="torch", precision="float32")
    onnx_model = load_model("unet-nuclei-fluo", device="cpu", backend="onnx", precision="float32")
    assert (torch_model.backend, onnx_model.backend) == ("torch", "onnx")
    a, b = torch_model.predict(image), onnx_model.predict(image)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_auto_uses_onnx_only_where_it_was_measured_faster_and_float32():
    assert choose_backend("auto", CPU, "float32", faster="onnx") == "onnx"
    assert choose_backend("auto", CPU, "float32", faster="torch") == "torch"
    assert choose_backend("auto", CPU, "bfloat16", faster="onnx") == "torch"
    with pytest.raises(ConfigError, match="bfloat16 runs in torch"):  # not float32 silently
        choose_backend("onnx", CPU, "bfloat16", faster="onnx")
    assert choose_backend("auto", torch.device("cuda"), "float32", faster="onnx") == "torch"
    assert choose_backend("torch", CPU, "float32", faster="onnx") == "torch"


def test_bad_backend_choices_say_what_to_do():
    with pytest.raises(ConfigError, match="one of auto, torch, onnx"):
        choose_backend("tensorrt", CPU, "float32", faster="torch")
    with pytest.raises(ConfigError, match="--backend torch"):
        choose_backend("onnx", torch.device("cuda"), "float32", faster="onnx")


def test_time_backends_reports_seconds_per_backend():
    seconds = time_backends({"a": lambda b: b, "b": lambda b: b * 2}, np.ones((1, 1, 8, 8)), 2)
    assert set(seconds) == {"a", "b"} and all(s >= 0 for s in seconds.values())


def test_float32_switches_tf32_off_only_inside_and_restores_the_users_setting():
    torch.backends.cudnn.allow_tf32 = True
    with tf32_off():
        assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is True
    with tf32_off(enabled=False):
        assert torch.backends.cudnn.allow_tf32 is True
    with pytest.raises(RuntimeError), tf32_off():
        raise RuntimeError("a failing batch")
    assert torch.backends.cudnn.allow_tf32 is True


def test_an_onnx_network_onnxruntime_cannot_load_is_one_line():
    from deepscope.errors import ModelError
    from deepscope.predict.backends import onnx_fn

    with pytest.raises(ModelError, match="onnxruntime cannot load the model's ONNX network"):
        onnx_fn(b"not an onnx file")
