"""Loaded models: one base, plus an LRU of users' adapters (sharing the base weights) and exported models."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.modelkit import load_model, load_tokenizer, resolve_model_source

log = logging.getLogger(__name__)
BASE_GROUP = "base"


@dataclass(frozen=True)
class Target:
    """A model a request addresses: the base (`source` None), an adapter or an exported model."""

    name: str
    source: str | None = None


@dataclass
class Backbone:
    """A loaded network and what decoding it needs."""

    model: Any
    tokenizer: Any
    eos_ids: frozenset[int]
    max_positions: int
    group: str  # requests whose backbones share a group can share a batch


@dataclass
class _Entry:
    backbone: Backbone
    adapter: str | None  # peft adapter name on the base PeftModel; None for an exported model


def load_backbone(source: str, group: str) -> Backbone:
    """Load a causal LM and its tokenizer for inference on the best device here."""
    import torch

    from shared.modelkit import pick_device

    device = pick_device()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = load_model(source, dtype=dtype).to(device).eval()
    tokenizer = load_tokenizer(source)
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    positions = getattr(model.config, "max_position_embeddings", None) or tokenizer.model_max_length
    return Backbone(model, tokenizer, frozenset(eos_ids), int(positions), group)


def peft_adapter_name(name: str) -> str:
    """A module-safe adapter name (peft names become module keys; `ft:` names hold ':' and '.')."""
    return "a" + hashlib.sha256(name.encode()).hexdigest()[:16]


class ModelCache:
    """The base model, and an LRU of adapters and exported models loaded on first use.

    All adapters live on one `PeftModel` around the base, so they share one copy of its weights and
    rows for different adapters can share a batch through peft's `adapter_names`. Not thread-safe:
    the engine calls it from its single worker thread only.
    """

    def __init__(self, base: Backbone, capacity: int) -> None:
        self.base = base
        self.capacity = capacity
        self._peft: Any = None
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    @property
    def has_adapters(self) -> bool:
        """Whether the base is wrapped in a PeftModel (its forward then needs `adapter_names`)."""
        return self._peft is not None

    @property
    def base_module(self) -> Any:
        """The network to run for base-group rows."""
        return self._peft if self._peft is not None else self.base.model

    def acquire(self, target: Target, pinned: frozenset[str] = frozenset()) -> tuple[Backbone, str | None]:
        """Load `target` if needed and mark it used; return its backbone and peft adapter name.

        Args:
            target: The model to make ready.
            pinned: Names a running batch needs; never evicted to make room.
        """
        if target.source is None:
            return self.base, None
        entry = self._entries.get(target.name)
        if entry is None:
            entry = self._load(target)
            self._entries[target.name] = entry
            self._evict(pinned | {target.name})
        self._entries.move_to_end(target.name)
        return entry.backbone, entry.adapter

    def _load(self, target: Target) -> _Entry:
        assert target.source is not None
        path = Path(resolve_model_source(target.source))
        if not (path / "adapter_config.json").exists():
            log.info("loading exported model %s from %s", target.name, path)
            return _Entry(load_backbone(str(path), group=f"model:{target.name}"), adapter=None)
        adapter = peft_adapter_name(target.name)
        log.info("loading adapter %s from %s", target.name, path)
        if self._peft is None:
            from peft import PeftModel

            self._peft = PeftModel.from_pretrained(self.base.model, str(path), adapter_name=adapter).eval()
        else:
            self._peft.load_adapter(str(path), adapter_name=adapter)
            self._peft.eval()
        return _Entry(self.base, adapter)

    def _evict(self, pinned: frozenset[str] | set[str]) -> None:
        for name in list(self._entries):
            if len(self._entries) <= self.capacity:
                return
            if name in pinned:
                continue
            entry = self._entries.pop(name)
            # peft refuses to delete its last adapter; one stale adapter costs little.
            if entry.adapter is not None and len(self._peft.peft_config) > 1:
                with warnings.catch_warnings():
                    # peft warns when the "active" adapter goes; rows pick theirs by name, so none is active.
                    warnings.simplefilter("ignore", UserWarning)
                    self._peft.delete_adapter(entry.adapter)
            log.info("evicted %s from the model cache", name)
