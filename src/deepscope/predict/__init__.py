"""Prediction on large images: tiled inference with overlap and smooth blending."""

from deepscope.predict.tiling import (
    EPS,
    Tile,
    balanced_tile,
    blend_window,
    plan_tiles,
    predict_tiled,
)

__all__ = ["EPS", "Tile", "balanced_tile", "blend_window", "plan_tiles", "predict_tiled"]
