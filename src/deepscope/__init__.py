"""deepscope: deep learning for microscopy image analysis.

>>> import deepscope
>>> m = deepscope.load_model("unet-nuclei-fluo")   # doctest: +SKIP
>>> r = m.predict(image)                            # doctest: +SKIP
"""

__version__ = "0.1.0"

from deepscope.api import (
    count_files,
    deconvolve_files,
    evaluate,
    list_models,
    load_model,
    measure,
    predict_files,
    train,
    tune,
)
from deepscope.errors import DeepscopeError

__all__ = [
    "DeepscopeError",
    "__version__",
    "count_files",
    "deconvolve_files",
    "evaluate",
    "list_models",
    "load_model",
    "measure",
    "predict_files",
    "train",
    "tune",
]
