"""A blind-spot U-Net (Laine et al. 2019): a 2D network whose output at each pixel never
sees that pixel's own input value, so self-supervised denoising can train on every pixel
instead of a few masked ones (Noise2Void's masking trains on about 0.2 %).

How the centre is cut out: one branch U-Net sees only the half-plane *above* each pixel —
its convolutions are shifted down so that output row ``i`` depends on input rows ``<= i``,
pooling is preceded by a one-row shift so a coarse row never sees a finer row below the
pixels it is up-sampled to, and the branch output is shifted down by one more row, so row
``i`` depends on rows ``< i`` only. The branch runs on the image turned by 0, 90, 180 and
270 degrees; turned back, the four half-planes cover every pixel but the centre, and 1x1
convolutions (which mix channels, not pixels) combine them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from deepscope.errors import ConfigError
from deepscope.nets.layers import norm_layer


def shift_down(x: torch.Tensor, rows: int = 1) -> torch.Tensor:
    """``x`` moved down by ``rows`` along the second-last axis, zeros entering at the top."""
    return F.pad(x, (0, 0, rows, 0))[..., : x.shape[-2], :]


def turn(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x`` turned by ``k`` quarter turns counter-clockwise in its last two axes (as
    :func:`torch.rot90`, written with flips and transposes, which export to ONNX)."""
    k %= 4
    if k == 1:
        return x.transpose(-2, -1).flip(-2)
    if k == 2:
        return x.flip(-2).flip(-1)
    if k == 3:
        return x.flip(-2).transpose(-2, -1)
    return x


class UpwardConv2d(nn.Conv2d):
    """A 3x3 convolution whose output row ``i`` sees input rows ``i - 2 .. i`` only."""

    def __init__(self, c_in: int, c_out: int, bias: bool = True) -> None:
        super().__init__(c_in, c_out, 3, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (1, 1, 2, 0)))


def _block(c_in: int, c_out: int, norm: str) -> nn.Sequential:
    """Two upward convolutions, each followed by the normalisation ``norm`` and a ReLU."""
    bias = norm == "none"
    return nn.Sequential(
        UpwardConv2d(c_in, c_out, bias=bias),
        norm_layer(norm, 2, c_out),
        nn.ReLU(inplace=True),
        UpwardConv2d(c_out, c_out, bias=bias),
        norm_layer(norm, 2, c_out),
        nn.ReLU(inplace=True),
    )


class UpwardUNet(nn.Module):
    """The branch: a U-Net whose output row ``i`` depends on input rows ``< i`` only."""

    def __init__(self, c_in: int, base_filters: int, depth: int, norm: str) -> None:
        super().__init__()
        filters = [base_filters * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        for f in filters[:-1]:
            self.encoders.append(_block(c_in, f, norm))
            c_in = f
        self.bottom = _block(filters[-2], filters[-1], norm)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for f_low, f in reversed(list(zip(filters[1:], filters[:-1], strict=True))):
            self.ups.append(nn.ConvTranspose2d(f_low, f, 2, stride=2))
            self.decoders.append(_block(2 * f, f, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for enc in self.encoders:
            h = enc(h)
            skips.append(h)
            h = F.max_pool2d(shift_down(h), 2)
        h = self.bottom(h)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            h = dec(torch.cat([up(h), skip], dim=1))
        return shift_down(h)


class BlindSpotUNet(nn.Module):
    """Input ``(B, C, H, W)`` with ``H`` and ``W`` multiples of ``config.divisor``; output
    ``(B, out_channels, H, W)``, each pixel predicted from its surroundings without itself."""

    def __init__(self, config) -> None:
        super().__init__()
        if config.ndim != 2:
            raise ConfigError(
                "the blind-spot network is 2D only; for 3D use Noise2Void masking "
                "(task_params.method: masking, the default)"
            )
        if (
            config.grid > 1
            or config.residual
            or config.pool != "max"
            or not config.top_skip
            or config.head_filters
            or config.style
        ):
            raise ConfigError(
                "the blind-spot network takes none of grid, residual, pool blurmax, top_skip "
                "false, head_filters or style (with style every output sees its own pixel); "
                "leave those at their defaults"
            )
        self.config = config
        f = config.base_filters
        self.branch = UpwardUNet(config.in_channels, f, config.depth, config.norm)
        self.head = nn.Sequential(
            nn.Conv2d(4 * f, 4 * f, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * f, f, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(f, config.out_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        turns = range(4)
        if self.training and x.shape[-1] == x.shape[-2]:
            # square training patches: the four turns in one batch, one pass
            out = self.branch(torch.cat([turn(x, k) for k in turns]))
            parts = out.chunk(4)
        else:
            parts = [self.branch(turn(x, k)) for k in turns]
        back = [turn(p, -k) for k, p in zip(turns, parts, strict=True)]
        return self.head(torch.cat(back, dim=1))
