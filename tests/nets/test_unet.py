"""The U-Net shared by every task: shapes, variants, residual output."""

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from deepscope.errors import ConfigError
from deepscope.nets import UNet, UNetConfig, build_unet


def tiny(**kwargs) -> UNetConfig:
    return UNetConfig(**{"depth": 2, "base_filters": 2, **kwargs})


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize(("c_in", "c_out"), [(1, 1), (2, 3)])
def test_output_has_input_spatial_shape_and_out_channels(ndim, c_in, c_out):
    config = tiny(ndim=ndim, in_channels=c_in, out_channels=c_out)
    net = build_unet(config).eval()
    spatial = (8, 12, 16)[-ndim:]  # multiples of the divisor 4, not all equal
    with torch.no_grad():
        out = net(torch.randn(2, c_in, *spatial))
    assert out.shape == (2, c_out, *spatial)


@pytest.mark.parametrize(("depth", "base_filters"), [(1, 2), (2, 3), (3, 4)])
def test_depth_and_base_filters(depth, base_filters):
    config = UNetConfig(depth=depth, base_filters=base_filters)
    net = build_unet(config).eval()
    assert len(net.encoders) == depth and len(net.decoders) == depth
    assert net.encoders[0][0].out_channels == base_filters
    assert net.bottom[0].out_channels == base_filters * 2**depth  # doubled per level
    size = 2 * config.divisor
    with torch.no_grad():
        assert net(torch.randn(1, 1, size, size)).shape == (1, 1, size, size)


def test_divisor_is_two_to_the_depth():
    assert [UNetConfig(depth=d).divisor for d in (1, 2, 3, 4, 6)] == [2, 4, 8, 16, 64]


NORMS = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d, "group": nn.GroupNorm}


@pytest.mark.parametrize("norm", ["batch", "instance", "group", "none"])
def test_each_norm_kind_trains_and_predicts(norm):
    net = build_unet(tiny(norm=norm, base_filters=4))
    kinds = {type(m) for m in net.modules()}
    if norm == "none":
        assert not kinds & set(NORMS.values())
        assert net.encoders[0][0].bias is not None  # without a norm the convolutions need a bias
    else:
        assert NORMS[norm] in kinds
        assert not (set(NORMS.values()) - {NORMS[norm]}) & kinds
        assert net.encoders[0][0].bias is None
    x = torch.randn(2, 1, 8, 8)
    net.train()
    net(x).square().mean().backward()
    assert net.head.weight.grad is not None
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (2, 1, 8, 8)


def test_3d_norm_layers():
    net = build_unet(tiny(ndim=3, norm="instance"))
    assert any(isinstance(m, nn.InstanceNorm3d) for m in net.modules())
    assert any(isinstance(m, nn.Conv3d) for m in net.modules())


@pytest.mark.parametrize("base_filters", [3, 6, 12])
def test_group_norm_with_filters_not_a_multiple_of_8(base_filters):
    net = build_unet(tiny(norm="group", base_filters=base_filters))
    for m in net.modules():
        if isinstance(m, nn.GroupNorm):
            assert m.num_channels % m.num_groups == 0
            assert m.num_groups <= 8
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 1, 8, 8)).shape == (1, 1, 8, 8)


def test_group_norm_uses_8_groups_when_possible():
    net = build_unet(tiny(norm="group", base_filters=8))
    groups = {m.num_groups for m in net.modules() if isinstance(m, nn.GroupNorm)}
    assert groups == {8}


def zero_head(net: UNet) -> UNet:
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    return net


def test_residual_adds_the_input():
    net = zero_head(build_unet(tiny(in_channels=2, out_channels=2, residual=True))).eval()
    x = torch.randn(1, 2, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x), x)


def test_without_residual_a_zero_head_gives_zeros():
    net = zero_head(build_unet(tiny(in_channels=2, out_channels=2))).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 2, 8, 8))
    assert torch.count_nonzero(out) == 0


def test_residual_with_different_channel_counts_is_a_config_error():
    with pytest.raises(ConfigError, match="in_channels == out_channels"):
        build_unet(UNetConfig(in_channels=1, out_channels=3, residual=True))


@pytest.mark.parametrize(
    "bad",
    [{"depth": 0}, {"depth": 7}, {"ndim": 4}, {"norm": "layer"}, {"in_channels": 0}, {"x": 1}],
)
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ValidationError):
        UNetConfig(**bad)


def test_config_round_trips_through_json():
    config = tiny(ndim=3, norm="group", residual=True)
    again = UNetConfig.model_validate_json(config.model_dump_json())
    assert again == config
    a, b = build_unet(config), build_unet(again)
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]


def test_folding_batch_norm_keeps_the_outputs():
    import torch

    from deepscope.nets.unet import UNetConfig, build_unet, fuse_batchnorm

    net = build_unet(UNetConfig(depth=2, base_filters=4, grid=2))
    net.train()
    net(torch.randn(4, 1, 32, 32))  # give the batch norms running statistics
    net.eval()
    x = torch.randn(2, 1, 32, 32)
    fused = fuse_batchnorm(net)
    with torch.no_grad():
        assert torch.allclose(net(x), fused(x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # a copy


@pytest.mark.parametrize("ndim", [2, 3])
def test_n2v2_variant_blur_pools_and_drops_the_top_skip(ndim):
    config = UNetConfig(ndim=ndim, depth=2, base_filters=4, pool="blurmax", top_skip=False)
    net = build_unet(config).eval()
    assert net.decoders[-1][0].in_channels == 4  # no skip concatenated at full resolution
    x = torch.zeros(1, 1, *(16,) * ndim)
    x[(0, 0, *(8,) * ndim)] = 1.0
    assert net(x).shape == x.shape
    assert "pools.0.kernel" not in net.state_dict()  # the blur is fixed, not a weight


@pytest.mark.parametrize("ndim", [2, 3])
def test_a_head_convolution_widens_the_features_before_the_output(ndim):
    config = tiny(ndim=ndim, out_channels=5, head_filters=12, grid=2)
    net = build_unet(config).eval()
    assert net.features[0].out_channels == 12 and net.features[0].kernel_size == (3,) * ndim
    assert net.head.in_channels == 12
    with torch.no_grad():
        assert net(torch.randn(1, 1, *(16,) * ndim)).shape == (1, 5, *(8,) * ndim)
    assert isinstance(build_unet(tiny(ndim=ndim)).features, nn.Identity)  # off by default


@pytest.mark.parametrize("ndim", [2, 3])
def test_the_style_vector_lets_the_whole_input_shift_every_pixel(ndim):
    torch.manual_seed(0)
    net = build_unet(UNetConfig(ndim=ndim, depth=1, base_filters=4, style=True)).eval()
    spatial = (32,) * ndim
    x = torch.rand(1, 1, *spatial)
    far_away = x.clone()
    far_away[..., -4:] += 5.0  # a change outside the receptive field of the first pixels
    corner = (0, slice(None)) + (slice(0, 2),) * ndim
    with torch.no_grad():
        assert torch.equal(net(x)[corner], net(far_away)[corner])  # style starts at zero
        for linear in net.styles:
            nn.init.normal_(linear.weight)
        assert not torch.allclose(net(x)[corner], net(far_away)[corner])
