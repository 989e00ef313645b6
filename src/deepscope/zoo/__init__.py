"""Model packages by name: built-in models shipped with deepscope, the user's library,
favourites, sharing (zip, bioimage.io) and int8 copies for fast CPU prediction."""

from deepscope.zoo.model import Model, load_model
from deepscope.zoo.quantize import quantize_model
from deepscope.zoo.registry import (
    favourites,
    list_models,
    remove_model,
    resolve_model,
    resolve_name,
    set_favourite,
)
from deepscope.zoo.share import export_model, import_model

__all__ = [
    "Model",
    "export_model",
    "favourites",
    "import_model",
    "list_models",
    "load_model",
    "quantize_model",
    "remove_model",
    "resolve_model",
    "resolve_name",
    "set_favourite",
]
