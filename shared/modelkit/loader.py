"""One way to load a model: a local folder, a Hugging Face hub id, or an object-store prefix."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

STORE_SCHEME = "store://"


def pick_device() -> str:
    """The best device here: CUDA, then Apple MPS, then CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


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
    from ..storage import check_file_name, download_prefix, get_store

    check_file_name(prefix.rstrip("/"))  # refuses '..', backslashes and control characters
    store = get_store()
    listing = sorted((info.key, info.size, info.etag or "", str(info.last_modified)) for info in store.list(prefix))
    if not listing:
        raise FileNotFoundError(f"no model stored under {prefix!r}")
    # The cache folder is named by the listing, so a changed object gets a fresh download.
    digest = hashlib.sha256(repr(listing).encode()).hexdigest()[:16]
    cache = get_settings().resolved_model_cache
    target = cache / digest
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    # Download beside the target and rename: a crash or a concurrent fetch never leaves a half model there.
    partial = Path(tempfile.mkdtemp(dir=cache, prefix=f".{digest}-"))
    try:
        download_prefix(store, prefix, partial)
        partial.rename(target)
    except OSError:
        if not target.is_dir():  # not "someone else finished first"
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def load_tokenizer(source: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    """Load the tokenizer for `source` (path, hub id or `store://` prefix)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_source(source), **kwargs)


def load_model(source: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    """Load a causal LM for `source` (path, hub id or `store://` prefix); kwargs go to from_pretrained."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(resolve_model_source(source), **kwargs)
