"""Percentile normalisation: its settings are stored in the model and reapplied at prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from deepscope.errors import InputError

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)


def check_float32_range(
    x: np.ndarray, name: str = "the image", doing: str = "predicting", whole: bool = True
) -> float:
    """Raise a one-line :class:`InputError` if the float image ``x`` holds NaN or infinity,
    or values beyond float32's range, or (``whole``: ``x`` is all of the image) only values
    too small for it (networks and the classical filters compute in float32: they would
    become infinity or 0). ``name`` and ``doing`` word the message ("the image" ...
    "before predicting"). Returns the largest absolute value, for a caller that checks an
    image block by block to pass to :func:`check_float32_not_tiny` at the end."""
    with np.errstate(invalid="ignore"):
        lowest, highest = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(lowest) and np.isfinite(highest)):
        raise InputError(
            f"{name} contains NaN or infinite values; replace them (with 0 or the "
            f"background level, say) before {doing}"
        )
    largest = max(abs(lowest), abs(highest))
    if largest > _FLOAT32_MAX:
        raise InputError(
            f"{name} has values up to {largest:.3g}, beyond float32's range "
            f"({_FLOAT32_MAX:.3g}) in which it is processed; rescale it (divide it by a "
            f"constant) before {doing}"
        )
    if whole:
        check_float32_not_tiny(largest, name, doing)
    return largest


def check_float32_not_tiny(
    largest: float, name: str = "the image", doing: str = "predicting"
) -> None:
    """Raise a one-line :class:`InputError` if an image whose largest absolute value is
    ``largest`` is not all zeros but below float32's smallest normal number."""
    if 0 < largest < _FLOAT32_TINY:
        raise InputError(
            f"{name} has values of at most {largest:.3g}, below float32's smallest normal "
            f"number ({_FLOAT32_TINY:.3g}) in which it is processed: they would become 0; "
            f"rescale it (multiply it by a constant) before {doing}"
        )


class Normalization(BaseModel):
    """How raw intensities become network input.

    ``percentile``: per image and channel, map the ``low`` percentile to 0 and the ``high``
    percentile to 1 (CSBDeep convention); ``dataset``: the same percentiles, but measured
    once over all training images and stored in ``bounds``, so that every image keeps its
    absolute brightness (photon-limited noise grows with it; a denoiser can use that);
    ``none``: cast to float32 only; ``bioimageio``: the pre-processing ``steps`` of an
    imported bioimage.io model.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["percentile", "dataset", "none", "bioimageio"] = "percentile"
    low: float = Field(1.0, ge=0, le=100)
    high: float = Field(99.8, ge=0, le=100)
    clip: bool = False
    bounds: list[tuple[float, float]] | None = Field(
        None,
        description="mode dataset: per channel, the raw values mapped to 0 and 1; measured "
        "on the training images when training starts",
    )
    steps: list[dict[str, Any]] = Field(
        default_factory=list, description="bioimage.io steps ({id, kwargs}) for mode bioimageio"
    )

    @model_validator(mode="after")
    def _low_below_high(self) -> Normalization:
        if self.mode in ("percentile", "dataset") and self.low >= self.high:
            raise ValueError(f"low percentile {self.low} must be below high {self.high}")
        return self


def dataset_bounds(
    images: Sequence[np.ndarray],
    low: float = 1.0,
    high: float = 99.8,
    max_samples: int = 4_000_000,
    seed: int = 0,
) -> list[tuple[float, float]]:
    """Per-channel ``low`` and ``high`` percentiles pooled over channel-first ``images``
    (at most ``max_samples`` pixels per channel, drawn evenly from every image,
    reproducibly); a constant channel gets ``(value, value + 1)``."""
    rng = np.random.default_rng(seed)
    per_image = max(1, max_samples // max(1, len(images)))
    pooled = []
    for image in images:
        flat = np.asarray(image).reshape(image.shape[0], -1)
        if flat.shape[1] > per_image:
            flat = flat[:, rng.choice(flat.shape[1], per_image, replace=False)]
        pooled.append(flat.astype(np.float32))
    lo, hi = np.percentile(np.concatenate(pooled, axis=1), [low, high], axis=1)
    return [(float(a), float(b) if b > a else float(a) + 1.0) for a, b in zip(lo, hi, strict=True)]


def _as_numbers(image: np.ndarray) -> np.ndarray:
    """``image`` as an array numpy can do arithmetic on: a boolean image becomes 0/1
    ``uint8`` (a view, no copy); other types are returned as they are."""
    x = np.asarray(image)
    return x.view(np.uint8) if x.dtype == bool else x


def _stored_bounds(settings: Normalization, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if settings.bounds is None:
        raise InputError(
            "normalization mode 'dataset' has no stored bounds; they are measured on the "
            "training images when training starts (set normalization.bounds to use it elsewhere)"
        )
    if len(settings.bounds) != image.shape[0]:
        raise InputError(
            f"the model's normalisation holds {len(settings.bounds)} channel(s) but the image "
            f"has {image.shape[0]}; give images with the channels it was trained on"
        )
    shape = (image.shape[0],) + (1,) * (image.ndim - 1)
    lo, hi = np.asarray(settings.bounds, dtype=np.float32).T
    return lo.reshape(shape), hi.reshape(shape)


def percentile_bounds(
    image: np.ndarray, low: float = 1.0, high: float = 99.8
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``low`` and ``high`` percentiles of a channel-first image, shaped to
    broadcast against it (a boolean image counts as 0 and 1)."""
    x = _as_numbers(image)
    flat = x.reshape(x.shape[0], -1)
    lo, hi = np.percentile(flat, [low, high], axis=1)
    if (hi <= lo).any():  # rare: only then the extremes
        lo, hi = widen_collapsed(lo, hi, flat.min(axis=1), flat.max(axis=1))
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    dtype = np.float64 if _precise(x.dtype) else np.float32
    return lo.astype(dtype).reshape(shape), hi.astype(dtype).reshape(shape)


def _precise(dtype: np.dtype) -> bool:
    """Whether values of ``dtype`` can differ by less than float32 resolves at their
    magnitude (float64, 32- and 64-bit integers: an image offset by 4e9 whose signal
    spans a few hundred); such images are normalised in float64."""
    return dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4)


def widen_collapsed(
    lo: np.ndarray, hi: np.ndarray, lowest: np.ndarray, highest: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the percentiles ``lo`` and ``hi``; where they are equal, ``lo`` (the
    value that nearly every pixel has) and ``lo`` plus the channel's range (``highest -
    lowest``). A sparse image (beads, a few spots on 0) has equal 1st and 99.8th
    percentiles although it is not flat, and dividing by their difference would blow it
    up to infinity: its background maps to 0 and its brightest spot to 1. A saturated
    field with a few darker pixels keeps its background at 0 too (those pixels go below
    0), instead of the bright 1 that reads as one huge object."""
    collapsed = np.asarray(hi) <= np.asarray(lo)
    spread = np.asarray(highest) - np.asarray(lowest)
    return np.asarray(lo), np.where(collapsed, np.asarray(lo) + spread, hi)


def safe_spread(lo: np.ndarray, hi: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The divisor of normalisation: ``hi - lo``, but at least ``eps`` times the intensity
    scale ``max(|lo|, |hi|)``, and never 0.

    The floor is relative, so normalisation does not depend on the units: ``image * s``
    normalises like ``image`` for any ``s > 0`` (1e-30 as well as 1e30). The default 1e-6
    is about 8 float32 roundings: a channel whose percentiles are closer than that is flat
    up to rounding, and its rounding noise is not stretched to the full range. Only for
    a channel that is exactly 0 does the floor become absolute (float32's smallest normal
    number), so that a constant channel maps to 0 instead of dividing by zero.
    """
    lo64, hi64 = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    scale = np.maximum(np.abs(lo64), np.abs(hi64))
    return np.maximum(hi64 - lo64, np.maximum(eps * scale, _FLOAT32_TINY))


def _working_type(lo: np.ndarray, hi: np.ndarray) -> type:
    """float32, or float64 for intensities within a factor 1000 of float32's largest
    value, where ``x - lo`` or ``output * spread`` could overflow float32 on the way."""
    scale = max(float(np.max(np.abs(lo))), float(np.max(np.abs(hi))))
    return np.float64 if scale > 1e-3 * _FLOAT32_MAX else np.float32


def _spread_and_type(
    dtype: np.dtype, lo: np.ndarray, hi: np.ndarray, eps: float
) -> tuple[np.ndarray, type]:
    """The divisor of normalisation (:func:`safe_spread`) and the float type to compute in,
    for an image of ``dtype``: float64 images and wide integers in float64, where a channel
    is flat only up to float64's rounding; everything else in float32 (:func:`_working_type`)."""
    if _precise(dtype):
        eps *= float(np.finfo(np.float64).eps / np.finfo(np.float32).eps)
        return safe_spread(lo, hi, eps), np.float64
    return safe_spread(lo, hi, eps), _working_type(lo, hi)


def _scale(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, clip: bool, eps: float) -> np.ndarray:
    """``(x - lo) / safe_spread(lo, hi)`` as float32, optionally clipped to [0, 1]."""
    divisor, dtype = _spread_and_type(_as_numbers(x).dtype, lo, hi, eps)
    out = (np.asarray(x, dtype) - lo.astype(dtype)) / divisor.astype(dtype)
    out = out.astype(np.float32, copy=False)
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def percentile_normalize(
    image: np.ndarray, low: float = 1.0, high: float = 99.8, clip: bool = False, eps: float = 1e-6
) -> np.ndarray:
    """Normalise a channel-first image ``(C, *spatial)`` per channel to float32.

    The ``low`` percentile of each channel maps to 0 and ``high`` to 1, whatever the
    units: ``percentile_normalize(image * s)`` equals ``percentile_normalize(image)``
    for any ``s > 0`` (up to float32 rounding). A constant channel maps to 0 everywhere
    instead of dividing by zero. ``eps``: the smallest spread of the percentiles,
    relative to their magnitude (see :func:`safe_spread`). A boolean image counts as 0
    and 1.
    """
    x = _as_numbers(image)
    x = x if _precise(x.dtype) else x.astype(np.float32, copy=False)
    lo, hi = percentile_bounds(x, low, high)
    return _scale(x, lo, hi, clip, eps)


def input_bounds(image: np.ndarray, settings: Normalization) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel values of a channel-first ``image`` that its normalisation maps to
    0 and 1: its percentiles, the stored ``bounds`` (mode ``dataset``), or 0 and 1."""
    if settings.mode == "percentile":
        return percentile_bounds(image, settings.low, settings.high)
    if settings.mode == "dataset":
        return _stored_bounds(settings, image)
    shape = (image.shape[0],) + (1,) * (image.ndim - 1)
    return np.zeros(shape, np.float32), np.ones(shape, np.float32)


def denormalize(
    output: np.ndarray,
    image: np.ndarray,
    settings: Normalization,
    shift: bool = True,
    eps: float = 1e-6,
) -> np.ndarray:
    """Map a network output ``(C, *spatial)`` in normalised units back to the intensity
    units of the channel-first ``image`` it was predicted from (the inverse of
    :func:`percentile_normalize` with the image's own percentiles; ``shift=False`` only
    rescales, for spreads such as uncertainties). Outputs of other normalisation modes, or
    with another channel count, are returned unchanged. The spread is the one
    :func:`normalize` divided by (:func:`safe_spread`, ``eps`` relative), so
    ``denormalize(normalize(image), image)`` gives back ``image`` at any intensity scale."""
    if settings.mode not in ("percentile", "dataset") or output.shape[0] != image.shape[0]:
        return output
    lo, hi = input_bounds(image, settings)
    divisor, dtype = _spread_and_type(_as_numbers(image).dtype, lo, hi, eps)
    out = np.asarray(output, dtype) * divisor.astype(dtype)
    if shift:
        out += lo.astype(dtype)
    return out.astype(np.float32, copy=False)


def normalize(image: np.ndarray, settings: Normalization) -> np.ndarray:
    """Apply stored normalisation ``settings`` to a channel-first image (a boolean
    image counts as 0 and 1)."""
    image = _as_numbers(image)
    if settings.mode == "none":
        return np.asarray(image, dtype=np.float32)
    if settings.mode == "bioimageio":
        from deepscope.data.bioimageio_ops import apply_steps

        return apply_steps(image, settings.steps)
    if settings.mode == "dataset":
        lo, hi = _stored_bounds(settings, image)
        return _scale(image, lo, hi, settings.clip, 1e-6)
    return percentile_normalize(image, settings.low, settings.high, settings.clip)
