"""Networks shared by every task."""

from deepscope.nets.unet import UNet, UNetConfig, build_unet

__all__ = ["UNet", "UNetConfig", "build_unet"]
