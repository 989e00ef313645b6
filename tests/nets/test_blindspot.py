"""The blind-spot U-Net: no output pixel depends on its own input pixel, every other
pixel around it can reach it; square and non-square images; ONNX export."""

import numpy as np
import pytest
import torch

from deepscope.errors import ConfigError
from deepscope.nets import UNetConfig, build_unet
from deepscope.nets.blindspot import BlindSpotUNet, shift_down, turn
from deepscope.nets.onnx import export_onnx
from deepscope.predict.backends import onnx_fn, torch_fn


def blind_spot_net(**kwargs) -> BlindSpotUNet:
    return build_unet(UNetConfig(**{"depth": 2, "base_filters": 4, "blind_spot": True, **kwargs}))


def input_gradient(net, shape, pixel) -> np.ndarray:
    """How much the output at ``pixel`` moves with each input pixel."""
    x = torch.randn(1, 1, *shape, requires_grad=True)
    (grad,) = torch.autograd.grad(net(x)[0, 0][pixel], x)
    return grad[0, 0].abs().numpy()


@pytest.mark.parametrize("pixel", [(9, 13), (0, 0), (15, 23), (8, 0)])
def test_no_output_pixel_sees_its_own_input(pixel):
    # 16 filters: with fewer, random weights leave whole paths dead behind the ReLUs
    grad = input_gradient(blind_spot_net(base_filters=16).eval(), (16, 24), pixel)
    assert grad[pixel] == 0
    y, x = pixel
    neighbours = [(y + dy, x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    inside = [(a, b) for a, b in neighbours if 0 <= a < 16 and 0 <= b < 24]
    assert all(grad[p] > 0 for p in inside)  # the four half-planes cover the rest


def test_training_on_square_patches_keeps_the_blind_spot():
    net = blind_spot_net(norm="none").train()  # batch norm statistics mix all pixels
    grad = input_gradient(net, (16, 16), (7, 9))
    assert grad[7, 9] == 0 and grad[6, 9] > 0


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_output_shape_and_channels_for_non_square_images(norm):
    net = blind_spot_net(in_channels=2, out_channels=2, norm=norm).eval()
    with torch.no_grad():
        assert net(torch.randn(3, 2, 8, 20)).shape == (3, 2, 8, 20)
    assert any(isinstance(m, torch.nn.GroupNorm) for m in net.modules()) == (norm == "group")


def test_turns_are_quarter_rotations_and_shift_moves_rows_down():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    for k in range(-3, 5):
        assert torch.equal(turn(x, k), torch.rot90(x, k, (-2, -1)))
    assert shift_down(x)[0, 0, 0].eq(0).all() and torch.equal(
        shift_down(x)[..., 1:, :], x[..., :2, :]
    )


def test_onnx_export_gives_the_torch_outputs():
    net = blind_spot_net().eval()
    batch = np.random.default_rng(0).normal(size=(2, 1, 16, 28)).astype(np.float32)
    np.testing.assert_allclose(
        onnx_fn(export_onnx(net))(batch), torch_fn(net, torch.device("cpu"))(batch), atol=1e-4
    )


def test_3d_and_incompatible_options_say_what_to_do():
    with pytest.raises(ConfigError, match="2D only"):
        blind_spot_net(ndim=3)
    with pytest.raises(ConfigError, match="defaults"):
        blind_spot_net(top_skip=False)
