"""deepscope: deep learning for microscopy image analysis.

>>> import deepscope
>>> m = deepscope.load_model("unet-nuclei-fluo")   # doctest: +SKIP
>>> r = m.predict(image)                            # doctest: +SKIP

The functions below live in :mod:`deepscope.api`, which imports torch (seconds); it is
imported on first use, so that the command line starts at once and catches Ctrl-C from the
start.
"""

__version__ = "0.1.0"

# ``deepscope.measure`` and ``deepscope.train`` name both a subpackage and an API function.
# Importing a subpackage binds its name here; importing them now and dropping the names lets
# the functions win, whatever is imported later.
import deepscope.measure
import deepscope.train  # noqa: F401
from deepscope.errors import DeepscopeError

del measure, train  # noqa: F821 (bound by the two imports above)

_API_FUNCTIONS = (
    "count_files",
    "deconvolve_files",
    "evaluate",
    "list_models",
    "load_model",
    "measure",
    "predict_files",
    "train",
    "tune",
)

__all__ = ["DeepscopeError", "__version__", *_API_FUNCTIONS]


def __getattr__(name: str):
    if name not in _API_FUNCTIONS:
        raise AttributeError(f"module 'deepscope' has no attribute {name!r}")
    from deepscope import api

    function = getattr(api, name)
    globals()[name] = function
    return function


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API_FUNCTIONS))
