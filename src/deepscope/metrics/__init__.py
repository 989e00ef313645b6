"""Evaluation metrics for segmentation.

* :mod:`deepscope.metrics.pixel`: per-class IoU and Dice of class maps, binary-mask IoU/Dice.
* :mod:`deepscope.metrics.instance`: one-to-one object matching by IoU (StarDist/Cellpose
  convention), precision/recall/F1/AP/panoptic quality, dataset reports.
"""

from deepscope.metrics.instance import (
    DEFAULT_THRESHOLDS,
    ERROR_KINDS,
    SCORE_NAMES,
    InstanceReport,
    MatchCounts,
    error_kinds,
    evaluate_instances,
    iou_matrix,
    match_counts,
    scores,
)
from deepscope.metrics.pixel import (
    binary_dice,
    binary_iou,
    confusion_matrix,
    dice_per_class,
    iou_per_class,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ERROR_KINDS",
    "SCORE_NAMES",
    "InstanceReport",
    "MatchCounts",
    "binary_dice",
    "binary_iou",
    "confusion_matrix",
    "dice_per_class",
    "error_kinds",
    "evaluate_instances",
    "iou_matrix",
    "iou_per_class",
    "match_counts",
    "scores",
]
