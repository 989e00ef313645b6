"""Task ``semantic``: pixel classification with N classes (the "UNET" model of ZeroCostDL4Mic).

With ``instances`` on (the default), ground truth is an instance label image that becomes
three classes, background / interior / boundary, and the output becomes instance labels by
a seeded watershed: seeds are connected regions of confident interior, grown over the
foreground along falling interior probability. This makes it comparable with instance methods.
With ``instances`` off, masks hold class indices ``0..n_classes-1`` and the output is a class map.

Instance labels of images larger than the prediction tile are found block by block
(:mod:`deepscope.predict.stitch`): each block's watershed runs on its read window (core
plus halo), the block keeps the objects whose centroid lies in its core, and the parts are
painted into one label image, so memory stays bounded by the block, not the image.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries, watershed

from deepscope.errors import InputError
from deepscope.metrics import iou_per_class
from deepscope.predict.stitch import Block, BlockObjects, own_labels, paint_labels
from deepscope.tasks.base import (
    Result,
    Task,
    integer_mask,
    remove_small_labels,
    tuning_score,
)

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2


class SemanticParams(BaseModel):
    """Settings of the semantic task; thresholds are tuned on validation data."""

    model_config = ConfigDict(extra="forbid")

    instances: bool = Field(True, description="masks are instance labels; output labels")
    n_classes: int = Field(3, ge=2, description="3 (bg/interior/boundary) when instances is on")
    class_weights: list[float] | None = Field(
        None, description="cross-entropy weight per class; default 1, 1, 2 for instances"
    )
    boundary_width: int = Field(1, ge=1, le=5, description="boundary class thickness (pixels)")
    seed_threshold: float = Field(0.6, gt=0, lt=1, description="interior probability of seeds")
    mask_threshold: float = Field(0.5, gt=0, lt=1, description="foreground probability")
    seed_sigma: float = Field(0.0, ge=0, description="Gaussian smoothing of interior for seeds")
    min_seed_size: int = Field(0, ge=0, description="seeds smaller than this are dropped")
    min_size: int = Field(8, ge=0, description="objects smaller than this (pixels) are removed")

    @model_validator(mode="after")
    def _three_classes_for_instances(self) -> SemanticParams:
        if self.instances and self.n_classes != 3:
            raise ValueError("instances needs n_classes = 3 (background, interior, boundary)")
        if self.class_weights is not None and len(self.class_weights) != self.n_classes:
            raise ValueError(f"class_weights needs {self.n_classes} values")
        return self


def labels_to_classes(labels: np.ndarray, boundary_width: int = 1) -> np.ndarray:
    """Three-class target: 0 background, 1 object interior, 2 object boundary.

    The boundary is the inner edge of each object, ``boundary_width`` pixels thick; a wider
    boundary separates touching objects more clearly but leaves small objects less interior.
    """
    classes = (labels > 0).astype(np.uint8)
    edge = find_boundaries(labels, mode="inner")
    if boundary_width > 1:
        edge = ndi.binary_dilation(edge, iterations=boundary_width - 1) & (labels > 0)
    classes[edge] = BOUNDARY
    return classes


def instances_from_probabilities(
    prob: np.ndarray,
    seed_threshold: float,
    mask_threshold: float,
    min_size: int,
    seed_sigma: float = 0.0,
    min_seed_size: int = 0,
) -> np.ndarray:
    """Seeded watershed on three-class probabilities ``(3, *spatial)`` -> instance labels.

    Seeds are connected regions where the (optionally smoothed) interior probability exceeds
    ``seed_threshold``; seeds under ``min_seed_size`` pixels are dropped, which stops the
    texture of large nuclei from splitting them. Seeds grow over the foreground
    (``1 - p(background) > mask_threshold``) along falling interior probability.
    """
    interior = prob[INTERIOR]
    if seed_sigma > 0:
        interior = ndi.gaussian_filter(interior, seed_sigma)
    foreground = (1.0 - prob[BACKGROUND]) > mask_threshold
    seeds, _ = ndi.label(interior > seed_threshold)
    if min_seed_size > 0:
        seeds = remove_small_labels(seeds, min_seed_size)
    labels = watershed(-interior, markers=seeds, mask=foreground)
    return remove_small_labels(labels, min_size)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the first axis of raw scores ``(K, *spatial)``."""
    e = np.exp(scores - scores.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


class SemanticTask(Task):
    """Pixel classification; with ``instances`` on, nuclei as bg / interior / boundary."""

    name = "semantic"
    Params = SemanticParams
    pixel_probabilities = True

    @property
    def out_channels(self) -> int:
        return self.params.n_classes

    def make_target(self, mask: np.ndarray) -> np.ndarray:
        mask = integer_mask(mask)
        if self.params.instances:
            return labels_to_classes(mask, self.params.boundary_width)
        if mask.max() >= self.params.n_classes:
            raise InputError(
                f"a mask holds class {int(mask.max())} but n_classes is {self.params.n_classes}; "
                "raise n_classes, or set instances on for instance label masks"
            )
        return mask.astype(np.uint8 if self.params.n_classes <= 256 else np.int64)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weights = self.params.class_weights
        if weights is None and self.params.instances:
            weights = [1.0, 1.0, 2.0]
        w = None if weights is None else torch.tensor(weights, device=output.device)
        return F.cross_entropy(output, target.long(), weight=w)

    @property
    def predicts_objects(self) -> bool:
        """Instance labels are stitched block by block; class maps are tiled as images."""
        return self.params.instances

    def labels_of(self, prob: np.ndarray) -> np.ndarray:
        """Instance labels of class probabilities ``(3, *spatial)`` with this task's settings."""
        p = self.params
        return instances_from_probabilities(
            prob, p.seed_threshold, p.mask_threshold, p.min_size, p.seed_sigma, p.min_seed_size
        )

    def postprocess(self, output: np.ndarray, shape: tuple[int, ...] | None = None) -> Result:
        prob = softmax(output.astype(np.float32))
        classes = prob.argmax(axis=0).astype(np.uint8)
        if not self.params.instances:
            return Result(classes=classes, probabilities=prob)
        return Result(labels=self.labels_of(prob), classes=classes, probabilities=prob)

    def block_objects(self, output: np.ndarray, block: Block) -> BlockObjects:
        """The objects of one block's raw output (its whole read window) that the block
        owns (:func:`~deepscope.predict.stitch.own_labels`)."""
        prob = softmax(output.astype(np.float32))
        return own_labels(self.labels_of(prob), block, prob)

    def merge_objects(self, parts: Sequence[BlockObjects], shape: tuple[int, ...]) -> Result:
        """Every block's owned objects painted into one label image; classes are the most
        probable class of the merged probabilities."""
        labels, prob = paint_labels(parts, shape, self.params.min_size)
        classes = np.empty(shape, dtype=np.uint8)
        for start in range(0, shape[0], 256):  # row bands: argmax's int64 stays small
            classes[start : start + 256] = prob[:, start : start + 256].argmax(axis=0)
        return Result(labels=labels, classes=classes, probabilities=prob)

    def evaluate(
        self,
        results: Sequence[Result],
        truths: Sequence[np.ndarray],
        names: Sequence[str] | None = None,
    ) -> dict:
        if self.params.instances:
            return super().evaluate(results, truths, names)
        ious = [
            iou_per_class(r.classes, t, self.params.n_classes)
            for r, t in zip(results, truths, strict=True)
        ]
        mean = np.nanmean(np.stack(ious), axis=0)
        out = {f"iou_class{k}": float(v) for k, v in enumerate(mean)}
        out["mean_iou"] = float(np.nanmean(mean))
        out["n_images"] = len(results)
        return out

    def tune(self, outputs: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> dict:
        """Grid-search seed threshold, mask threshold and minimum seed size on validation
        data for the best mean AP over IoU 0.5, 0.6 and 0.7; keeps and returns the best."""
        if not self.params.instances:
            return {}
        probs = [softmax(o.astype(np.float32)) for o in outputs]
        p = self.params
        best, best_score = {}, -1.0
        for seed_t, mask_t, min_seed in itertools.product(
            (0.5, 0.6, 0.7, 0.8, 0.9), (0.3, 0.4, 0.5, 0.6), (0, 5, 10, 20)
        ):
            pairs = [
                (
                    t,
                    instances_from_probabilities(
                        pr, seed_t, mask_t, p.min_size, p.seed_sigma, min_seed
                    ),
                )
                for pr, t in zip(probs, truths, strict=True)
            ]
            score = tuning_score(pairs)
            if score > best_score:
                best_score = score
                best = {
                    "seed_threshold": seed_t,
                    "mask_threshold": mask_t,
                    "min_seed_size": min_seed,
                }
        self.params = self.params.model_copy(update=best)
        return best
