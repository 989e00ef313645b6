"""Quantise a U-Net to 8-bit integers for onnxruntime on the CPU (static, calibrated).

Weights become signed 8-bit per output channel; activations unsigned 8-bit per tensor, with
ranges measured (min/max) on calibration inputs: real images of the kind the model will
see, normalised as for prediction. The output convolution stays float: its outputs are the
results themselves (ray distances, flows, intensities), where 8-bit steps show (on
stardist-nuclei-fluo, AP@0.9 0.117 with it quantised, 0.129 without, float 0.130). The
result is an ONNX model in QDQ form, which onnxruntime runs with integer convolutions (VNNI
on recent x86 CPUs, dot-product on ARM).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn

from deepscope.errors import ConfigError
from deepscope.nets.onnx import export_onnx


def _calibration_reader(batches: Sequence[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.pending = iter(batches)

        def get_next(self) -> dict | None:
            batch = next(self.pending, None)
            return None if batch is None else {"input": np.ascontiguousarray(batch, np.float32)}

    return Reader()


def float_nodes(path: Path, depth: int, outer_level: bool) -> list[str]:
    """Names of the nodes of the ONNX model at ``path`` to keep float: those that write its
    outputs (the output convolution) and, with ``outer_level``, every node of the U-Net's
    outermost level (first encoder block, last decoder block, the head), as the export
    names them after the modules."""
    import onnx

    graph = onnx.load(str(path)).graph
    outputs = {o.name for o in graph.output}
    prefixes = ("/encoders.0/", f"/decoders.{depth - 1}/", "/features/", "/head/")
    return [
        node.name
        for node in graph.node
        if outputs & set(node.output) or (outer_level and node.name.startswith(prefixes))
    ]


def quantize_int8(
    net: nn.Module, batches: Sequence[np.ndarray], float_outer_level: bool = False
) -> bytes:
    """The int8 ONNX model of a U-Net ``net``, calibrated on ``batches``.

    ``batches``: float32 arrays ``(N, C, *spatial)`` normalised as the network's inputs at
    prediction, spatial sizes multiples of ``net.config.divisor``. ``float_outer_level``
    keeps the outermost level's convolutions float as well (:func:`float_nodes`):
    slower, but restoration networks, whose outputs are intensities, lose nothing (CARE on
    FMD: 36.04 dB all int8, 36.39 dB with it, 36.39 dB float).
    """
    try:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise ConfigError(
            "int8 quantisation needs onnxruntime and onnx: pip install onnxruntime onnx"
        ) from None
    if getattr(net.config, "kind", "unet") != "unet":
        raise ConfigError("int8 quantisation is for U-Net models (segmentation, restoration)")
    if not batches:
        raise ConfigError("int8 quantisation needs at least one calibration image")
    divisor = net.config.divisor
    for batch in batches:
        if batch.ndim != net.config.ndim + 2 or any(s % divisor for s in batch.shape[2:]):
            raise ConfigError(
                f"calibration batches must be (N, C, *spatial) with spatial sizes multiples "
                f"of {divisor}, got {batch.shape}"
            )
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # the quantiser logs advice at INFO/WARNING
    try:
        with tempfile.TemporaryDirectory(prefix="deepscope-int8-") as tmp:
            folder = Path(tmp)
            (folder / "float.onnx").write_bytes(export_onnx(net))
            quant_pre_process(
                folder / "float.onnx", folder / "prepared.onnx", skip_symbolic_shape=True
            )
            quantize_static(
                folder / "prepared.onnx",
                folder / "int8.onnx",
                _calibration_reader(batches),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=float_nodes(
                    folder / "prepared.onnx", net.config.depth, float_outer_level
                ),
            )
            return (folder / "int8.onnx").read_bytes()
    finally:
        logging.getLogger().setLevel(quiet)
