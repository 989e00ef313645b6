"""bioimage.io pre- and post-processing steps applied to one channel-first sample.

Used for models imported from bioimage.io: their description lists steps such as
``scale_range`` or ``sigmoid`` with keyword arguments; we apply them to ``(C, *spatial)``
arrays. ``axes`` in a step name the axes to reduce over (``channel``, ``z``, ``y``, ``x``;
``batch`` is ignored since we process one sample at a time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SUPPORTED = (
    "ensure_dtype",
    "scale_range",
    "zero_mean_unit_variance",
    "fixed_zero_mean_unit_variance",
    "scale_linear",
    "clip",
    "sigmoid",
    "binarize",
)


def _reduce_axes(names: Sequence[str] | None, ndim: int) -> tuple[int, ...]:
    """Array axes of ``(C, *spatial)`` for axis names; ``None`` means all axes."""
    spatial = ("z", "y", "x")[3 - (ndim - 1) :]
    positions = {"channel": 0, "c": 0, **{a: i + 1 for i, a in enumerate(spatial)}}
    if names is None:
        return tuple(range(ndim))
    return tuple(sorted(positions[str(n)] for n in names if str(n) in positions))


def _per_channel(values, x: np.ndarray) -> np.ndarray:
    """A scalar or one value per channel, shaped to broadcast over ``(C, *spatial)``."""
    v = np.asarray(values, dtype=np.float32)
    return v.reshape((-1,) + (1,) * (x.ndim - 1)) if v.ndim else v


def apply_step(x: np.ndarray, step: dict) -> np.ndarray:
    """One bioimage.io processing step (``{"id": ..., "kwargs": {...}}``) on ``(C, *spatial)``."""
    kind, kw = step["id"], step.get("kwargs") or {}
    x = np.asarray(x, dtype=np.float32)
    if kind == "ensure_dtype":
        return x.astype(kw.get("dtype", "float32"))
    if kind == "scale_range":
        axes = _reduce_axes(kw.get("axes"), x.ndim)
        lo = np.percentile(x, kw.get("min_percentile", 0.0), axis=axes, keepdims=True)
        hi = np.percentile(x, kw.get("max_percentile", 100.0), axis=axes, keepdims=True)
        return ((x - lo) / (hi - lo + kw.get("eps", 1e-6))).astype(np.float32)
    if kind == "zero_mean_unit_variance":
        axes = _reduce_axes(kw.get("axes"), x.ndim)
        mean, std = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True)
        return ((x - mean) / (std + kw.get("eps", 1e-6))).astype(np.float32)
    if kind == "fixed_zero_mean_unit_variance":
        mean, std = _per_channel(kw["mean"], x), _per_channel(kw["std"], x)
        return ((x - mean) / (std + kw.get("eps", 1e-6))).astype(np.float32)
    if kind == "scale_linear":
        gain, offset = _per_channel(kw.get("gain", 1.0), x), _per_channel(kw.get("offset", 0.0), x)
        return (x * gain + offset).astype(np.float32)
    if kind == "clip":
        return np.clip(x, kw.get("min", -np.inf), kw.get("max", np.inf)).astype(np.float32)
    if kind == "sigmoid":
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    if kind == "binarize":
        return (x > _per_channel(kw["threshold"], x)).astype(np.float32)
    raise ValueError(f"unsupported bioimage.io processing step '{kind}'")


def apply_steps(x: np.ndarray, steps: Sequence[dict]) -> np.ndarray:
    """Apply bioimage.io processing ``steps`` in order to a ``(C, *spatial)`` sample."""
    for step in steps:
        x = apply_step(x, step)
    return np.asarray(x, dtype=np.float32)


def unsupported(steps: Sequence[dict]) -> list[str]:
    """Names of steps (or step options) this module cannot apply."""
    bad = []
    for step in steps:
        kw = step.get("kwargs") or {}
        if step["id"] not in SUPPORTED or kw.get("reference_tensor"):
            bad.append(step["id"])
    return bad
