"""Export a network to ONNX: float32, batch norm folded, any batch size and image size."""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from deepscope.nets.unet import fuse_batchnorm

OPSET = 17


def export_onnx(net: nn.Module, opset: int = OPSET) -> bytes:
    """The ONNX model of ``net`` (a U-Net or a crop classifier) as bytes.

    Input ``input (N, C, *spatial)`` and output ``output (N, K, *spatial / grid)`` keep their
    batch and spatial sizes free; spatial sizes must be multiples of ``net.config.divisor``,
    as for the torch network.
    """
    config = net.config
    fused = fuse_batchnorm(net).float().to("cpu", memory_format=torch.contiguous_format)
    side = max(config.divisor * 2, getattr(config, "min_size", 1))
    example = torch.zeros(1, config.in_channels, *[side] * config.ndim)
    spatial = {i + 2: f"s{i}" for i in range(config.ndim)}
    # a classifier's or encoder's output (N, K) has no spatial axes
    crop_net = getattr(config, "kind", "unet") in ("classifier", "autoencoder")
    out_spatial = {} if crop_net else spatial
    dynamic = {"input": {0: "batch", **spatial}, "output": {0: "batch", **out_spatial}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript-based exporter is deprecated in favour of dynamo, which needs
        # onnxscript and is slower; this one gives the same graph for our plain CNNs
        warnings.simplefilter("ignore")
        torch.onnx.export(
            fused,
            (example,),
            buffer,
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes=dynamic,
            opset_version=opset,
        )
    return buffer.getvalue()
