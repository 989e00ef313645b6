"""Runtimes that apply a network to a numpy batch: torch (CPU, CUDA, MPS) and onnxruntime.

Each backend is a function ``(N, C, *spatial) float32 -> (N, K, *spatial / grid) float32``
that the tiled predictor calls; the choice of runtime changes speed, not results.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from deepscope.errors import ConfigError, ModelError

BatchFn = Callable[[np.ndarray], np.ndarray]
BACKENDS = ("auto", "torch", "onnx")


def use_bfloat16(precision: str, device: torch.device) -> bool:
    """Whether to run the network in bfloat16: ``'bfloat16'`` always, ``'auto'`` on a CPU
    with native bfloat16 arithmetic (AVX512-BF16 or AMX), where it is about 1.5x faster."""
    if precision == "bfloat16":
        return True
    if precision == "auto" and device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


@contextlib.contextmanager
def tf32_off(enabled: bool = True) -> Iterator[None]:
    """While inside (when ``enabled``), CUDA convolutions run in full float32 instead of
    TF32 (PyTorch's default on NVIDIA GPUs, a 10-bit mantissa); the caller's setting is
    restored on the way out."""
    if not enabled:
        yield
        return
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def torch_fn(net: torch.nn.Module, device: torch.device, precision: str = "float32") -> BatchFn:
    """Wrap ``net`` as a numpy batch function (eval mode, no grad); ``precision``
    ``'float32'`` (full float32 everywhere: TF32 off on CUDA, for outputs that agree with the
    CPU's), ``'bfloat16'`` or ``'auto'`` (the fastest: bfloat16 where
    :func:`use_bfloat16`, TF32 convolutions on CUDA)."""
    net.eval()
    channels_last = device.type == "cpu" and net.config.ndim == 2
    bf16 = use_bfloat16(precision, device)
    exact = precision == "float32" and device.type == "cuda"

    def fn(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with (
            torch.inference_mode(),
            torch.autocast(device.type, torch.bfloat16, enabled=bf16),
            tf32_off(exact),
        ):
            return net(x).float().cpu().numpy()

    return fn


def onnxruntime_available() -> bool:
    """Whether the ``onnxruntime`` package can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_fn(model: bytes, threads: int | None = None) -> BatchFn:
    """An onnxruntime CPU session for an ONNX model (bytes) as a numpy batch function;
    ``threads`` defaults to torch's intra-op thread count."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError(
            "the onnx backend needs onnxruntime: pip install onnxruntime, or use --backend torch"
        ) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # memory patterns are planned per input shape and kept: with tiles of several shapes
    # the arena grew block after block (1.7 -> 3.2 GB over five 1216² windows); off, the
    # peak stays at one window's (1.9 GB)
    options.enable_mem_pattern = False
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # a damaged file, or one written by a newer onnxruntime
        reason = str(error).strip().splitlines()[0][:200]
        raise ModelError(
            f"onnxruntime cannot load the model's ONNX network ({reason}); re-export or "
            "re-quantize the model, or use --backend torch --precision float32"
        ) from None
    name = session.get_inputs()[0].name

    def fn(batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return session.run(None, {name: x})[0]

    return fn


@functools.cache  # a fact of the machine
def cpu_fields() -> dict[str, str]:
    """The first processor's entries in ``/proc/cpuinfo`` (``'model name'``, ``'cpu
    family'``, ``'flags'``, ...); empty where there is no such file (macOS, Windows)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if not line.strip():  # the end of the first processor
                break
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


@functools.cache  # a fact of the machine, asked at every model load
def cpu_has_int8_dot_product() -> bool:
    """Whether this CPU multiplies 8-bit integers with wide accumulation in one instruction
    (x86: AVX512-VNNI or AVX-VNNI; ARM: the dot-product extension). Without it onnxruntime's
    u8s8 kernels are slower and can saturate intermediate sums, so ``'auto'`` keeps such
    CPUs on the float network."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy moved its private feature table: do not guess
        return False
    if features.get("AVX512VNNI") or features.get("ASIMDDP"):
        return True
    # AVX-VNNI (Intel 12th generation and later, AMD Zen 5) is not in numpy's table
    return "avx_vnni" in cpu_fields().get("flags", "").split()


def use_int8(
    precision: str, backend: str, device: torch.device, available: bool, quantizable: bool = True
) -> bool:
    """Whether to run the model's int8 network (``available``: the package has one):
    ``precision`` ``'int8'`` always (a clear error where it cannot run), ``'auto'`` on
    a CPU with 8-bit dot products (:func:`cpu_has_int8_dot_product`) unless the torch
    backend is asked for. With ``backend='auto'`` as well, the Predictor then only offers
    it among the runtimes it times (:mod:`deepscope.predict.runtime_choice`)."""
    check_backend(backend)
    if precision == "int8":
        if not available:
            make = (
                "make one with 'deepscope models quantize MODEL --images DIR', or "
                if quantizable
                else "and cannot get one (only our U-Net models are quantised); "
            )
            raise ConfigError(
                f"this model has no int8 network; {make}choose --precision float32 or auto"
            )
        if device.type != "cpu":
            raise ConfigError(
                f"int8 networks run on the CPU (onnxruntime); on {device.type} use "
                "--precision auto or float32"
            )
        if backend == "torch":
            raise ConfigError("int8 networks run in onnxruntime; drop --backend torch")
        if not onnxruntime_available():
            raise ConfigError("int8 networks need onnxruntime: pip install onnxruntime")
        return True
    return (
        precision == "auto"
        and available
        and device.type == "cpu"
        and backend != "torch"
        and onnxruntime_available()
        and cpu_has_int8_dot_product()
    )


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else a clear error."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
    return backend


def choose_backend(backend: str, device: torch.device, precision: str, faster: str) -> str:
    """The runtime to use: ``'torch'`` or ``'onnx'``.

    ``auto`` picks onnxruntime only on the CPU, for float32 arithmetic (onnxruntime has no
    bfloat16 path), when it is installed and ``faster`` (the model's measured preference,
    see :func:`time_backends`) says ``'onnx'``.
    """
    check_backend(backend)
    if backend == "onnx":
        if device.type != "cpu":
            raise ConfigError(
                f"the onnx backend runs on the CPU; use --backend torch for device {device.type}"
            )
        if precision == "bfloat16":
            raise ConfigError(
                "onnxruntime computes in float32 here, and bfloat16 runs in torch: drop "
                "--backend onnx, or ask for --precision float32"
            )
        return "onnx"
    if backend == "torch":
        return "torch"
    usable = device.type == "cpu" and onnxruntime_available()
    if usable and faster == "onnx" and not use_bfloat16(precision, device):
        return "onnx"
    return "torch"


def time_backends(fns: dict[str, BatchFn], batch: np.ndarray, repeats: int = 3) -> dict:
    """Median seconds per call of each batch function on ``batch`` (after one warm-up)."""
    seconds = {}
    for name, fn in fns.items():
        fn(batch)
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(batch)
            runs.append(time.perf_counter() - start)
        seconds[name] = float(np.median(runs))
    return seconds


def faster_cpu_backend(net: torch.nn.Module, shape: tuple[int, ...]) -> tuple[str, dict]:
    """Time the network in float32 on the CPU with torch and with onnxruntime on one
    ``(1, C, *shape)`` input; returns the faster runtime's name and the seconds of each."""
    import copy

    from deepscope.nets.onnx import export_onnx
    from deepscope.nets.unet import fuse_batchnorm

    cpu_net = fuse_batchnorm(copy.deepcopy(net).cpu()).float()
    if cpu_net.config.ndim == 2:
        cpu_net = cpu_net.to(memory_format=torch.channels_last)
    fns = {"torch": torch_fn(cpu_net, torch.device("cpu"))}
    if onnxruntime_available():
        fns["onnx"] = onnx_fn(export_onnx(cpu_net))
    batch = np.random.default_rng(0).random((1, net.config.in_channels, *shape), np.float32)
    seconds = time_backends(fns, batch)
    return min(seconds, key=seconds.get), seconds
