"""Model packages by name: built-in models shipped with deepscope and the user's library."""

from deepscope.zoo.model import Model, load_model
from deepscope.zoo.registry import list_models, resolve_model

__all__ = ["Model", "list_models", "load_model", "resolve_model"]
