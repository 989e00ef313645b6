"""Augmentation of (image, target) pairs: geometry applies to both, intensity to the image only."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy import ndimage


class Augmentation(BaseModel):
    """Which random transforms to apply to training patches."""

    model_config = ConfigDict(extra="forbid")

    flips: bool = True
    rotations: bool = Field(True, description="random 90 degree rotations in the YX plane")
    intensity_scale: tuple[float, float] = Field((0.8, 1.2), description="multiply by U(a, b)")
    intensity_shift: tuple[float, float] = Field((-0.1, 0.1), description="add U(a, b)")
    gamma: tuple[float, float] = Field((1.0, 1.0), description="x -> x**g on [0,1], (1,1) = off")
    noise_std: float = Field(0.0, ge=0, description="max std of added Gaussian noise")
    scale: tuple[float, float] = Field(
        (1.0, 1.0), description="zoom by U(a, b), > 1 enlarges objects; (1, 1) = off (2D)"
    )
    any_angle: bool = Field(False, description="rotate by a uniform random angle (2D)")
    stretch: tuple[float, float] = Field(
        (1.0, 1.0),
        description="elongate objects: the ratio of the zooms along two perpendicular axes "
        "(in a random direction, area kept) is drawn from U(a, b), a >= 1; (1, 1) = off (2D)",
    )

    @field_validator("scale")
    @classmethod
    def _scale_positive_and_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < value[0] <= value[1]:
            raise ValueError("scale must be (a, b) with 0 < a <= b; (1, 1) is off")
        return value

    @field_validator("stretch")
    @classmethod
    def _stretch_at_least_one(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 1.0 <= value[0] <= value[1]:
            raise ValueError("stretch must be (a, b) with 1 <= a <= b; (1, 1) is off")
        return value

    @property
    def stretches(self) -> bool:
        """Whether objects are elongated (``stretch`` above 1)."""
        return self.stretch[1] > 1.0

    @property
    def warps(self) -> bool:
        """Whether patches are zoomed, stretched or rotated by any angle (resampled, not
        just moved)."""
        return self.any_angle or tuple(self.scale) != (1.0, 1.0) or self.stretches


def warp_window(patch_size: int, settings: Augmentation) -> int:
    """Edge of the source window that a warped ``patch_size`` patch is sampled from: large
    enough that every output pixel, at the smallest zoom and any angle, falls inside."""
    # the stretch zooms one axis out by sqrt(ratio), in any direction
    reach = patch_size / min(settings.scale) * math.sqrt(settings.stretch[1])
    if settings.any_angle or settings.stretches:
        reach *= math.sqrt(2)
    return max(patch_size, math.ceil(reach))


def random_warp(
    image: np.ndarray,
    target: np.ndarray,
    patch_size: int,
    settings: Augmentation,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Zoom, stretch and rotate the centre of a 2D window into a ``patch_size`` patch.

    ``image (C, Y, X)`` is resampled linearly; ``target`` (label images, same spatial shape,
    with or without leading channel axes) by its nearest pixel, so labels stay labels. The
    zoom is drawn from ``settings.scale``, the angle from [0, 360) degrees when
    ``settings.any_angle``, and with ``settings.stretch`` objects are zoomed by ``sqrt(r)``
    along a random direction and by ``1 / sqrt(r)`` across it (``r`` from the stretch
    range: round nuclei become elongated ones of the same area); the window should be
    :func:`warp_window` pixels a side.
    """
    zoom = rng.uniform(*settings.scale)
    angle = rng.uniform(0, 2 * math.pi) if settings.any_angle else 0.0
    matrix = _rotation(angle) / zoom  # output pixel -> source pixel
    if settings.stretches:
        ratio = rng.uniform(*settings.stretch)
        direction = _rotation(rng.uniform(0, math.pi))
        squeeze = np.diag([1 / math.sqrt(ratio), math.sqrt(ratio)])
        matrix = matrix @ direction @ squeeze @ direction.T
    centre_in = (np.array(image.shape[-2:]) - 1) / 2
    offset = centre_in - matrix @ np.full(2, (patch_size - 1) / 2)
    out = (patch_size, patch_size)

    def warp(array: np.ndarray, order: int) -> np.ndarray:
        planes = array.reshape(-1, *array.shape[-2:])
        warped = [
            ndimage.affine_transform(p, matrix, offset, out, order=order, mode="reflect")
            for p in planes
        ]
        return np.stack(warped).reshape(*array.shape[:-2], *out)

    return warp(image, 1).astype(np.float32), warp(target, 0)


def _rotation(angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])


def augment(
    image: np.ndarray,
    target: np.ndarray,
    settings: Augmentation,
    rng: np.random.Generator,
    same_intensity: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Randomly transform a channel-first ``image (C, *spatial)`` and its ``target``.

    ``target`` has the same spatial shape, with or without leading channel axes; only
    the last ``image.ndim - 1`` axes of both are transformed geometrically. With
    ``same_intensity`` (targets that are images) the intensity scale and shift apply to
    the target too; gamma and noise stay off the target either way.
    """
    nd = image.ndim - 1
    if settings.flips:
        for ax in range(1, nd + 1):
            if rng.random() < 0.5:
                image = np.flip(image, axis=ax)
                target = np.flip(target, axis=target.ndim - nd + ax - 1)
    if settings.rotations and image.shape[-1] == image.shape[-2]:
        k = int(rng.integers(4))
        image = np.rot90(image, k, axes=(-2, -1))
        target = np.rot90(target, k, axes=(-2, -1))
    image = np.ascontiguousarray(image, dtype=np.float32)
    target = np.ascontiguousarray(target)
    g_lo, g_hi = settings.gamma
    if g_hi > g_lo or g_lo != 1.0:
        gamma = rng.uniform(g_lo, g_hi)
        image = np.sign(image) * np.abs(image) ** gamma
    scale, shift = rng.uniform(*settings.intensity_scale), rng.uniform(*settings.intensity_shift)
    image = image * scale + shift
    if same_intensity:
        target = (target * scale + shift).astype(np.float32)
    if settings.noise_std > 0:
        std = rng.uniform(0, settings.noise_std)
        image = image + rng.normal(0, std, image.shape).astype(np.float32)
    return image.astype(np.float32, copy=False), target
