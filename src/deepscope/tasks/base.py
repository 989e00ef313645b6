"""What every task provides: targets, output channels, loss, post-processing, metrics.

A task is the unit of extension: the trainer, the predictor, the CLI and the zoo only
talk to this interface, so adding a task touches none of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel
from skimage import measure

from deepscope.errors import InputError
from deepscope.metrics import evaluate_instances

if TYPE_CHECKING:
    from deepscope.predict.stitch import Block


#: the fields of a :class:`Result` that are per-pixel arrays (spatial axes last)
PIXEL_FIELDS = ("labels", "classes", "probabilities", "image", "uncertainty")


@dataclass
class Result:
    """What a model returns for one image; fields a task does not produce stay ``None``.

    Attributes
    ----------
    labels : integer instance label image (0 = background), same spatial shape as the input.
    classes : integer class map (semantic segmentation).
    probabilities : per-class probabilities ``(K, *spatial)``.
    image : a restored / predicted image.
    uncertainty : per-pixel uncertainty of ``image`` (probabilistic restoration models).
    class_name : the class of a whole crop (classifiers; ``probabilities`` then has shape
        ``(K,)`` and ``classes`` is the 0-d class index).
    features : learned features ``(F,)`` of a whole crop (autoencoders).
    diameter : the typical object diameter (pixels of the input) the size model used: the
        ``diameter`` given to ``predict``, or with ``'auto'`` the median diameter of the
        objects found; ``None`` without a diameter, or when ``'auto'`` found no objects.
    scale : the factor the image was rescaled by before the network saw it (1 = not).
    """

    labels: np.ndarray | None = None
    classes: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    image: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    class_name: str | None = None
    features: np.ndarray | None = None
    diameter: float | None = None
    scale: float = 1.0


def integer_mask(mask: np.ndarray, name: str = "masks") -> np.ndarray:
    """A user's mask as an integer array; non-integer or negative values are input errors
    that name ``name`` (the file, where known)."""
    if not np.issubdtype(mask.dtype, np.integer):
        if not np.all(np.mod(mask, 1) == 0):
            raise InputError(f"{name} must hold integer labels; got non-integer values")
        if mask.size and np.abs(mask).max() >= 2**63:
            raise InputError(
                f"{name} holds values beyond 64-bit integers ({float(np.abs(mask).max()):g}); "
                "give a label image: 0 for background, 1, 2, ... for objects"
            )
        mask = mask.astype(np.int64)
    if mask.min() < 0:
        raise InputError(f"{name} must not hold negative labels")
    return mask


def refuse_intensity_image(labels: np.ndarray, name: str = "labels") -> None:
    """Refuse a microscope image given where instance labels belong: each label of a label
    image covers one connected region (a few where objects are cut), while each grey
    value of an intensity image is scattered over many."""
    values = np.unique(labels)
    values = int(values.size - (values[0] == 0))
    regions = int(measure.label(labels, background=0, connectivity=1).max())
    if regions >= 100 and regions > 4 * values:
        raise InputError(
            f"{name} looks like an intensity image, not labels (its {values} values form "
            f"{regions} separate regions); give the label image: one integer per object, "
            "0 for background"
        )


#: IoU thresholds whose mean AP the instance tasks' ``tune`` maximises
TUNE_IOUS = (0.5, 0.6, 0.7)


def tuning_score(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean AP over :data:`TUNE_IOUS` of ``(truth, labels)`` pairs: what threshold
    searches maximise."""
    report = evaluate_instances(pairs, thresholds=TUNE_IOUS).to_dict()
    return float(np.mean([report[f"ap@{t:g}"] for t in TUNE_IOUS]))


def remove_small_labels(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Drop objects of fewer than ``min_size`` pixels and number the rest 1..N (int32)."""
    sizes = np.bincount(labels.ravel(), minlength=1)
    keep = (sizes >= min_size) & (sizes > 0)  # absent labels are not objects, even for 0
    keep[0] = False
    new_ids = np.zeros(sizes.size, dtype=np.int32)
    new_ids[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return new_ids[labels]


class Task(ABC):
    """Base class of a task; ``Params`` holds every setting, thresholds included."""

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    #: what ``Result`` field ``deepscope predict`` writes, and its file suffix
    output_kind: ClassVar[str] = "labels"
    #: the model family shown in the model library (the network is always our U-Net)
    architecture: ClassVar[str] = "unet"
    #: large images are predicted block by block as objects (see ``predict.stitch``); a
    #: task whose settings decide overrides it with a property
    predicts_objects: ClassVar[bool] = False
    #: targets are images ``(C, *spatial)`` in intensity units (restoration): they are read
    #: channel-first and intensity augmentation changes them like the input
    target_is_image: ClassVar[bool] = False
    #: validation patches when the training config gives none: enough that the validation
    #: loss ranks the epochs (it picks the weights that are kept)
    val_patches: ClassVar[int] = 64
    #: learns from the images alone (Noise2Void): no masks/targets needed for training
    self_supervised: ClassVar[bool] = False
    #: training targets are label images that stay valid when resampled by their nearest
    #: pixel (the task computes what it learns from them per batch): patches may be zoomed
    #: and rotated by any angle (``augmentation.scale``, ``augmentation.any_angle``)
    warpable_target: ClassVar[bool] = False
    #: training settings this task advises, used where a run does not set them
    train_defaults: ClassVar[dict] = {}
    #: results carry per-pixel probabilities, which ``deepscope predict --probabilities``
    #: writes (semantic classes, flows foreground)
    pixel_probabilities: ClassVar[bool] = False

    def __init__(self, params: BaseModel | dict | None = None) -> None:
        if params is None:
            params = self.Params()
        elif isinstance(params, dict):
            params = self.Params.model_validate(params)
        self.params = params

    @property
    @abstractmethod
    def out_channels(self) -> int:
        """Number of channels the network must output."""

    @property
    def probability_channels(self) -> int:
        """Channels of the per-pixel ``probabilities`` of a result (see
        :attr:`pixel_probabilities`): one per network output unless the task says less."""
        return self.out_channels

    @property
    def instance_labels(self) -> bool:
        """Whether results and ground-truth masks are instance labels, one per object
        (star-convex, flows, semantic with instances), scored object by object; not class
        maps, images or classes."""
        return self.output_kind == "labels" and self.params.model_dump().get("instances", True)

    @property
    def truth_name(self) -> str:
        """What the files paired with the images are called in messages: ``"target"``
        for image outputs (restoration), ``"mask"`` otherwise."""
        return "target" if self.output_kind == "image" else "mask"

    @property
    def blind_spot_network(self) -> bool:
        """Whether the network must never see the pixel it predicts (default: no)."""
        return False

    @abstractmethod
    def make_target(self, mask: np.ndarray) -> np.ndarray:
        """Turn a user's ground truth (e.g. an instance label image) into a training target."""

    def batch_target(self, targets: np.ndarray) -> np.ndarray:
        """Final training targets of a batch of augmented patches (default: unchanged).

        Tasks whose targets depend on geometry (ray distances, flows) build them here, after
        augmentation, from the patches that :meth:`make_target` prepared.
        """
        return targets

    def prepare_batch(
        self, images: np.ndarray, targets: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A training batch as the network and loss see it (default: the images unchanged,
        targets from :meth:`batch_target`). Self-supervised tasks mask the images here."""
        return images, self.batch_target(targets)

    def batch_metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """Scores of one batch logged per epoch beside the loss (default: none; classifiers
        give ``accuracy``)."""
        return {}

    def foreground(self, target: np.ndarray) -> np.ndarray:
        """Pixels that patch sampling should favour (default: non-zero target)."""
        return target > 0

    @abstractmethod
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss of raw network ``output (B, K, ...)`` against a batch of targets."""

    @abstractmethod
    def postprocess(self, output: np.ndarray, shape: tuple[int, ...] | None = None) -> Result:
        """Turn raw network output ``(K, *spatial)`` for one image into the user's result.

        ``shape`` is the image's spatial shape, for networks whose output is subsampled on
        a grid; default: the output's own spatial shape times the grid.
        """

    def unflip(self, output: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        """Raw output ``(B, K, *spatial)`` of a batch flipped along the spatial ``axes``
        (negative indices) brought back to the unflipped images, for test-time augmentation
        (default: flipped back; tasks whose channels hold directions turn those too)."""
        return np.flip(output, axes)

    def block_objects(self, output: np.ndarray, block: Block) -> Any:
        """Objects of one block's raw output that the block owns, in image coordinates."""
        raise NotImplementedError(f"task {self.name} does not predict objects block by block")

    def merge_objects(self, parts: Sequence[Any], shape: tuple[int, ...]) -> Result:
        """The result for a whole image of ``shape`` from every block's objects."""
        raise NotImplementedError(f"task {self.name} does not predict objects block by block")

    def evaluate(
        self,
        results: Sequence[Result],
        truths: Sequence[np.ndarray],
        names: Sequence[str] | None = None,
    ) -> dict:
        """Default metrics of ``results`` against ground truth, as a flat JSON-ready dict;
        for tasks that give instance labels: AP, F1, precision, recall at IoU 0.5 ... 0.9,
        and why objects are unmatched at IoU 0.5 (``fn_missed@0.5`` ..., summed over the
        images; see :func:`~deepscope.metrics.error_kinds`)."""
        pairs = [(t, r.labels) for r, t in zip(results, truths, strict=True)]
        return evaluate_instances(pairs, names=names).to_dict()

    def tune(self, outputs: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> dict:
        """Choose post-processing settings on validation data; returns the updates made."""
        return {}
