"""Run an imported network (ONNX or TorchScript weights) as a numpy batch function."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from deepscope.errors import ModelError
from deepscope.predict.backends import BatchFn, onnx_fn
from deepscope.spec import ExternalNetwork, check_external_weights


class ExternalRunner:
    """An imported network, checked against its sha256 and ready to run.

    ONNX weights run on onnxruntime (CPU); TorchScript weights run on torch on ``device``.
    ``config`` describes the network's shapes like a U-Net's config does.
    """

    def __init__(self, folder: Path, config: ExternalNetwork, device: torch.device) -> None:
        path = check_external_weights(folder, config)
        self.config = config
        if config.format == "onnx":
            self.backend = "onnx"
            self.fn: BatchFn = onnx_fn(path.read_bytes())
        else:
            self.backend = "torch"
            self.fn = _torchscript_fn(path, device)


def _torchscript_fn(path: Path, device: torch.device) -> BatchFn:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated in favour of torch.export
        try:
            module = torch.jit.load(str(path), map_location=device).eval()
        except RuntimeError as err:
            raise ModelError(f"cannot load TorchScript weights {path}: {err}") from None

    def fn(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
        with torch.inference_mode():
            out = module(x)
        if isinstance(out, list | tuple):
            out = out[0]
        return out.float().cpu().numpy()

    return fn
