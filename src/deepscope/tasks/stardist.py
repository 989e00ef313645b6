"""Task ``stardist``: star-convex instance segmentation in 2D and 3D (Schmidt et al. 2018;
Weigert et al. 2020), written from the papers.

For every pixel (every ``grid``-th pixel with an output grid) the network predicts an object
probability, the distance to the object's border normalised per object, and the distances
to that border along ``n_rays`` fixed rays. Candidates above ``prob_threshold`` become
polygons (polyhedra in 3D); non-maximum suppression keeps the best of overlapping ones and
the survivors are drawn as labels. Targets are computed on each augmented training patch by
a compiled kernel (:mod:`deepscope.starconvex.rays`), so training data is never stale.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator

from deepscope.errors import ConfigError, InputError
from deepscope.predict.stitch import Block, BlockObjects, own_labels, paint_labels
from deepscope.starconvex import (
    Painter,
    Rays,
    draw_labels,
    non_maximum_suppression,
    object_probability,
    ray_distances,
    rays_2d,
    rays_3d,
)
from deepscope.starconvex.rays import grid_offset
from deepscope.tasks.base import Result, Task, integer_mask, tuning_score


class StarDistParams(BaseModel):
    """Settings of the star-convex task; the two thresholds are tuned on validation data."""

    model_config = ConfigDict(extra="forbid")

    ndim: int = Field(2, ge=2, le=3, description="2 for images, 3 for volumes")
    n_rays: int | None = Field(None, ge=3, description="rays per object; default 32 (2D), 96 (3D)")
    anisotropy: tuple[float, float, float] | None = Field(
        None, description="3D voxel size (z, y, x) relative to the in-plane pixel size"
    )
    grid: int = Field(1, ge=1, le=8, description="output grid; set from the network")
    prob_threshold: float = Field(0.5, gt=0, lt=1, description="object probability of candidates")
    nms_threshold: float = Field(
        0.4, ge=0, le=1, description="overlap / smaller area above which NMS suppresses"
    )
    dist_loss_weight: float = Field(
        1.0, ge=0, description="weight of the ray-distance loss (0.2 in the StarDist paper)"
    )
    background_reg: float = Field(1e-4, ge=0, description="pull distances to 0 on background")
    small_object_area: float = Field(
        0.0,
        ge=0,
        description="2D: in the probability loss, the pixels of an object smaller than this "
        "many pixels weigh this area / its area (at most 10), so small objects count more "
        "nearly as much as large ones; 0 weighs every pixel alike",
    )

    @model_validator(mode="after")
    def _defaults_by_dimension(self) -> StarDistParams:
        if self.n_rays is None:
            self.n_rays = 32 if self.ndim == 2 else 96
        if self.ndim == 3 and self.anisotropy is None:
            self.anisotropy = (1.0, 1.0, 1.0)
        if self.ndim == 2 and self.anisotropy is not None:
            raise ValueError("anisotropy is for 3D only")
        if self.ndim == 3 and self.small_object_area:
            raise ValueError("small_object_area is for 2D only")
        return self


class StarDistTask(Task):
    """Objects as star-convex polygons / polyhedra: probability + ray distances + NMS."""

    name = "stardist"
    Params = StarDistParams
    predicts_objects = True
    warpable_target = True
    architecture = "stardist"

    @cached_property
    def rays(self) -> Rays:
        p = self.params
        return rays_2d(p.n_rays) if p.ndim == 2 else rays_3d(p.n_rays, p.anisotropy)

    @cached_property
    def painter(self) -> Painter:
        return Painter(self.rays)

    @property
    def out_channels(self) -> int:
        return 1 + self.params.n_rays

    def unflip(self, output: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        """Flipped back, and the ray distances re-ordered: ray ``k`` points at angle
        ``2 pi k / n`` (y = sin, x = cos), so a flip of x maps it to ray ``n/2 - k`` and a flip
        of y to ray ``-k`` (mod ``n``). 3D rays have no such symmetry: refused.

        With an output grid, a flip maps each grid cell of the (padded, so evenly divided)
        input onto a cell, but the pixel that stands for the cell (:func:`grid_offset`) onto
        its mirror: for grid 2 the flipped rays start one pixel before the cell's own pixel
        along each flipped axis. The distances are moved to the cell's pixel to first order
        (a border straight across the ray): ``d + shift * cos`` of the ray to that axis."""
        n = self.params.n_rays
        if self.params.ndim != 2 or n % 2:
            raise ConfigError(
                "test-time augmentation (tta) needs a 2D star-convex model with an even number "
                f"of rays; this one is {self.params.ndim}D with {n} rays: predict without tta"
            )
        out = np.flip(output, axes)
        source = np.arange(n)
        for axis in axes:
            source = (n // 2 - source) % n if axis == -1 else (-source) % n
        distances = out[:, 1:][:, source]
        grid = self.params.grid
        shift = grid - 1 - 2 * grid_offset(grid)
        if shift:
            for axis in axes:
                along = self.rays.vectors[:, axis].astype(distances.dtype)
                distances += shift * along[:, None, None]
        return np.concatenate([out[:, :1], distances], axis=1)

    def make_target(self, mask: np.ndarray) -> np.ndarray:
        if mask.ndim != self.params.ndim:
            raise InputError(
                f"masks must be {self.params.ndim}D label images, got shape {mask.shape}"
            )
        return integer_mask(mask).astype(np.int32)

    def batch_target(self, labels: np.ndarray) -> np.ndarray:
        """``(B, *patch)`` label patches -> ``(B, 1 + R, *patch // grid)``: probability, then
        ray distances, at the output grid."""
        grid = self.params.grid
        out = []
        for lab in labels:
            dist = ray_distances(lab, self.rays, grid)
            prob = object_probability(lab, dist, grid)
            out.append(np.concatenate([prob[None], dist]))
        return np.stack(out)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prob_t, dist_t = target[:, :1], target[:, 1:]
        weight = self._size_weights(prob_t, dist_t) if self.params.small_object_area else None
        bce = F.binary_cross_entropy_with_logits(output[:, :1], prob_t, weight=weight)
        error = (output[:, 1:] - dist_t).abs().mean(dim=1, keepdim=True)
        dist = (prob_t * error).mean()
        if self.params.background_reg > 0:
            background = (prob_t == 0).float()
            dist = dist + self.params.background_reg * (background * output[:, 1:].abs()).mean()
        return bce + self.params.dist_loss_weight * dist

    def _size_weights(self, prob_t: torch.Tensor, dist_t: torch.Tensor) -> torch.Tensor:
        """Per-pixel weights of the probability loss: ``small_object_area / area`` (1 to
        10) on the pixels of objects, their area being that of the polygon their true ray
        distances draw (``sin(2 pi / n) / 2 * sum d_k d_k+1``); 1 on background."""
        n = dist_t.shape[1]
        area = 0.5 * math.sin(2 * math.pi / n) * (dist_t * dist_t.roll(-1, dims=1)).sum(dim=1)
        ratio = self.params.small_object_area / area.clamp(min=1.0)
        return torch.where(prob_t > 0, ratio.clamp(1.0, 10.0)[:, None], 1.0)

    def candidates(
        self, output: np.ndarray, threshold: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of raw output ``(1 + R, *grid_spatial)`` with a probability above
        ``threshold`` (default ``prob_threshold``): full-resolution centres ``(N, ndim)``,
        distances ``(N, R)`` and probabilities ``(N,)``."""
        if threshold is None:
            threshold = self.params.prob_threshold
        prob = 1.0 / (1.0 + np.exp(-output[0].astype(np.float32)))
        index = np.nonzero(prob > threshold)
        grid = self.params.grid
        centres = np.stack(index, axis=1).astype(np.float64) * grid + grid_offset(grid)
        dists = np.maximum(output[(slice(1, None), *index)].T, 0)
        return centres, dists, prob[index]

    def suppress(self, centres, dists, scores, shape: tuple[int, ...]) -> np.ndarray:
        """Indices of the candidates that survive NMS, best first."""
        return non_maximum_suppression(
            self.painter, centres, dists, scores, shape, self.params.nms_threshold, self.params.grid
        )

    def labels(self, centres, dists, scores, shape: tuple[int, ...]) -> Result:
        """NMS over candidates, and the survivors drawn as a label image of ``shape``."""
        kept = self.suppress(centres, dists, scores, shape)
        return Result(labels=draw_labels(self.painter, centres[kept], dists[kept], shape))

    def postprocess(self, output: np.ndarray, shape: tuple[int, ...] | None = None) -> Result:
        if shape is None:
            shape = tuple(s * self.params.grid for s in output.shape[1:])
        return self.labels(*self.candidates(output), shape)

    def block_objects(self, output: np.ndarray, block: Block) -> BlockObjects:
        """The objects of one block's raw output (its whole read window) that the block
        owns: candidates suppressed and drawn on the read window, as for a whole image,
        then kept by :func:`~deepscope.predict.stitch.own_labels` (centroid in the core,
        not cut by the window)."""
        shape = tuple(s.stop - s.start for s in block.read)
        labels = self.postprocess(output, shape).labels
        return own_labels(labels, block)

    def merge_objects(self, parts: Sequence[BlockObjects], shape: tuple[int, ...]) -> Result:
        """Every block's owned objects painted into one label image
        (:func:`~deepscope.predict.stitch.paint_labels`: where objects of neighbouring
        blocks overlap, the earlier block's stays)."""
        labels, _ = paint_labels(parts, shape, 1)
        return Result(labels=labels)

    def tune(self, outputs: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> dict:
        """Grid-search the probability and NMS thresholds for the best mean AP over IoU
        0.5, 0.6 and 0.7 on validation data; keeps and returns the best.

        Candidates are extracted once per image at the lowest probability threshold; each
        setting keeps the subset above its own threshold.
        """
        prob_grid, nms_grid = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9), (0.1, 0.2, 0.3, 0.4, 0.5)
        pooled = [self.candidates(o, min(prob_grid)) for o in outputs]
        original = self.params
        best, best_score = {}, -1.0
        for prob_t, nms_t in itertools.product(prob_grid, nms_grid):
            self.params = original.model_copy(
                update={"prob_threshold": prob_t, "nms_threshold": nms_t}
            )
            pairs = []
            for (centres, dists, scores), t in zip(pooled, truths, strict=True):
                keep = scores > prob_t
                result = self.labels(centres[keep], dists[keep], scores[keep], t.shape)
                pairs.append((t, result.labels))
            score = tuning_score(pairs)
            if score > best_score:
                best_score, best = score, {"prob_threshold": prob_t, "nms_threshold": nms_t}
        self.params = original.model_copy(update=best)
        return best
