"""One way to load a model: a local folder, a Hugging Face hub id, or an object-store prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STORE_SCHEME = "store://"
FINE_TUNED_PREFIX = "ft:"  # a training job's result: ft:<base>:<user>:<job_id>, as OpenAI names fine-tuned models


def pick_device() -> str:
    """The best device here: CUDA, then Apple MPS, then CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_model_access(source: str | None, user_id: str, field: str) -> None:
    """Refuse a `store://` model outside `user_id`'s own prefix: a user loads only models they own.

    Raises:
        PermissionError: naming the config field and the prefix the model must be under.
    """
    from ..storage import is_owned_key, user_prefix

    if not source or not source.startswith(STORE_SCHEME):
        return
    if not is_owned_key(source[len(STORE_SCHEME) :], user_id):
        raise PermissionError(f"{field}: {source!r} is not under {STORE_SCHEME}{user_prefix(user_id)}")


def resolve_model_source(source: str) -> str:
    """Turn `source` into something `from_pretrained` takes.

    - an existing local folder: returned as is;
    - `store://users/<user>/...`: that object-store prefix is downloaded once into the model cache;
    - anything else: a hub id, returned as is (transformers downloads it where the network allows).

    Raises:
        FileNotFoundError: A `store://` prefix holds no object, or a path-like source does not exist.
        ValueError: A local path names a file rather than a model folder.
    """
    if source.startswith(STORE_SCHEME):
        return str(_fetch_from_store(source[len(STORE_SCHEME) :].rstrip("/") + "/"))
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"model path {source!r} is a file; give the folder holding config.json")
        return str(path.resolve())
    if source.startswith(("/", "./", "../", "~")):
        # A hub id never looks like this; asking the hub would only hide the typo behind a network error.
        raise FileNotFoundError(f"no model folder at {source!r}")
    return source


def _fetch_from_store(prefix: str) -> Path:
    from ..settings import get_settings
    from ..storage import check_file_name, fetch_prefix, get_store

    check_file_name(prefix.rstrip("/"))  # refuses '..', backslashes and control characters
    return fetch_prefix(get_store(), prefix, get_settings().resolved_model_cache)


def load_tokenizer(source: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    """Load the tokenizer for `source` (path, hub id or `store://` prefix)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_source(source), **kwargs)


def load_model(source: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    """Load a causal LM for `source` (path, hub id or `store://` prefix); kwargs go to from_pretrained."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(resolve_model_source(source), **kwargs)
