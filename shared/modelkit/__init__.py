"""Model kit: build tiny local models and load any model by path, hub id or object-store key."""

from .loader import check_model_access, load_model, load_tokenizer, pick_device, resolve_model_source
from .tiny import TinyModelSpec, build_tiny_model

__all__ = [
    "check_model_access",
    "TinyModelSpec",
    "build_tiny_model",
    "load_model",
    "load_tokenizer",
    "pick_device",
    "resolve_model_source",
]
