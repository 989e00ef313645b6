"""Task ``flows``: instance segmentation of objects of any shape by flow fields (Cellpose,
Stringer et al. 2021; Omnipose's distance flows for thin elongated cells, Cutler et al.
2022), written from the papers.

The network predicts, per pixel, the ``ndim`` components of a flow field that leads every
pixel of an object to the object's centre, and a logit of the probability that the pixel
belongs to an object. Targets are computed on every augmented training patch from its label
patch (:func:`deepscope.flows.flow_targets`: normalised gradients of heat diffused from each
object's centre, or of its distance field), so flips and rotations need no vector
bookkeeping. At prediction, pixels above the probability threshold follow the flows; pixels
whose end points converge form one object; objects whose flows disagree with the flows
recomputed from their own mask (flow error) are dropped (:func:`deepscope.flows.flows_to_labels`).

Images larger than the prediction tile are reconstructed block by block
(:mod:`deepscope.predict.stitch`): each block's labels are computed on its whole read window
(core plus halo of context), and the block keeps the objects it *owns*: those whose
centroid lies in its core and that do not touch an edge of the window that is not an edge
of the image (such an object is cut by the window; the block whose core holds its centroid
sees it whole, provided the halo is at least the size of the largest object).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from deepscope.flows import flow_targets, flows_to_labels
from deepscope.predict.stitch import Block, BlockObjects, own_labels, paint_labels
from deepscope.tasks.base import (
    Result,
    Task,
    integer_mask,
    remove_small_labels,
    tuning_score,
)

#: the network learns flows scaled by this factor (unit vectors are small next to logits)
FLOW_SCALE = 5.0
#: smallest-object sizes searched by :meth:`FlowsTask.tune`, as fractions of the median size
#: of the validation objects: debris and slivers of a split are dropped, small nuclei kept
MIN_SIZE_FRACTIONS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15)


class FlowsParams(BaseModel):
    """Settings of the flow task; the two thresholds are tuned on validation data."""

    model_config = ConfigDict(extra="forbid")

    ndim: int = Field(2, ge=2, le=3, description="2 for images, 3 for volumes")
    method: Literal["heat", "distance"] = Field(
        "heat", description="heat: Cellpose flows; distance: Omnipose-style, for thin rods"
    )
    prob_threshold: float = Field(0.5, gt=0, lt=1, description="object probability of pixels")
    flow_threshold: float | None = Field(
        0.4, ge=0, description="largest flow error an object may have (None: keep all)"
    )
    min_size: int = Field(15, ge=0, description="smallest object in pixels")
    n_steps: int = Field(200, ge=1, description="steps of flow following")


class FlowsTask(Task):
    """Objects from flow fields: flows + probability, followed and clustered."""

    name = "flows"
    Params = FlowsParams
    architecture = "flows"
    predicts_objects = True
    warpable_target = True
    pixel_probabilities = True

    @property
    def out_channels(self) -> int:
        return self.params.ndim + 1

    @property
    def probability_channels(self) -> int:
        """One: the object probability (the flows are not probabilities)."""
        return 1

    def unflip(self, output: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        """Flipped back, and the flow component along each flipped axis negated."""
        out = np.flip(output, axes).copy()
        for axis in axes:
            out[:, self.params.ndim + axis] *= -1  # flow channel c is image axis c
        return out

    def make_target(self, mask: np.ndarray) -> np.ndarray:
        """The label image itself (float32, one channel); flows are made per patch."""
        return integer_mask(mask).astype(np.float32)[None]

    def batch_target(self, targets: np.ndarray) -> np.ndarray:
        """``(B, ndim + 1, *patch)``: flows of each augmented label patch, then the object
        mask."""
        out = np.empty((targets.shape[0], self.out_channels, *targets.shape[2:]), np.float32)
        for i, patch in enumerate(targets[:, 0]):
            labels = np.rint(patch).astype(np.int32)
            out[i, :-1] = flow_targets(labels, self.params.method)
            out[i, -1] = labels > 0
        return out

    def foreground(self, target: np.ndarray) -> np.ndarray:
        return target[0] > 0

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Half the mean squared error of the scaled flows plus binary cross-entropy of the
        object probability (the Cellpose loss)."""
        flows = F.mse_loss(output[:, :-1], FLOW_SCALE * target[:, :-1]) / 2
        prob = F.binary_cross_entropy_with_logits(output[:, -1], target[:, -1])
        return flows + prob

    def probability(self, output: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-np.clip(output[-1], -30, 30)))

    def labels_of(self, output: np.ndarray, prob: np.ndarray) -> np.ndarray:
        """Instance labels of raw output ``(ndim + 1, *spatial)`` whose object probability
        is ``prob``."""
        p = self.params
        return flows_to_labels(
            prob,
            output[:-1] / FLOW_SCALE,
            prob_threshold=p.prob_threshold,
            flow_threshold=p.flow_threshold,
            min_size=p.min_size,
            n_steps=p.n_steps,
            method=p.method,
        )

    def postprocess(self, output: np.ndarray, shape: tuple[int, ...] | None = None) -> Result:
        prob = self.probability(output)
        return Result(
            labels=self.labels_of(output, prob), probabilities=prob[None].astype(np.float32)
        )

    def block_objects(self, output: np.ndarray, block: Block) -> BlockObjects:
        """The objects of one block's raw output (its whole read window) that the block
        owns: labels are reconstructed on the read window, then kept by
        :func:`~deepscope.predict.stitch.own_labels`."""
        prob = self.probability(output)
        return own_labels(self.labels_of(output, prob), block, prob[None])

    def merge_objects(self, parts: Sequence[BlockObjects], shape: tuple[int, ...]) -> Result:
        """Every block's owned objects painted into one label image
        (:func:`~deepscope.predict.stitch.paint_labels`)."""
        labels, prob = paint_labels(parts, shape, self.params.min_size)
        return Result(labels=labels, probabilities=prob)

    def tune(self, outputs: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> dict:
        """Grid-search the probability and flow-error thresholds and the smallest object
        (a fraction of the median size of the true objects, :data:`MIN_SIZE_FRACTIONS`) for
        the best mean AP over IoU 0.5, 0.6 and 0.7 on validation data; keeps and returns the
        best."""
        if not outputs:
            return {}
        sizes = np.concatenate([np.bincount(integer_mask(t).ravel())[1:] for t in truths])
        median_size = float(np.median(sizes[sizes > 0])) if sizes.any() else 0.0
        min_sizes = sorted({round(f * median_size) for f in MIN_SIZE_FRACTIONS})
        original = self.params
        best, best_score = {}, -1.0
        for prob_t, flow_t in itertools.product((0.3, 0.4, 0.5, 0.6), (0.4, 0.6, 0.8)):
            self.params = original.model_copy(
                update={"prob_threshold": prob_t, "flow_threshold": flow_t, "min_size": 0}
            )
            labels = [self.postprocess(o).labels for o in outputs]
            for min_size in min_sizes:
                pairs = [
                    (t, remove_small_labels(lab, min_size))
                    for lab, t in zip(labels, truths, strict=True)
                ]
                score = tuning_score(pairs)
                if score > best_score:
                    best_score = score
                    best = {
                        "prob_threshold": prob_t,
                        "flow_threshold": flow_t,
                        "min_size": min_size,
                    }
        self.params = original.model_copy(update=best)
        return best
