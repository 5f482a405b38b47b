"""Loading the model under evaluation: a base model, optionally with a LoRA adapter on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.modelkit import load_model, load_tokenizer, pick_device, resolve_model_source
from shared.modelkit.loader import FINE_TUNED_PREFIX
from shared.storage import ObjectKind, object_key


def resolve_model_name(name: str) -> str:
    """Map the training service's `ft:{base}:{user}:{job_id}` names to that job's `final/` prefix."""
    if not name.startswith(FINE_TUNED_PREFIX):
        return name
    parts = name[len(FINE_TUNED_PREFIX) :].rsplit(":", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{name!r} is not a fine-tuned model name of the form ft:<base>:<user>:<job_id>")
    _, user, job_id = parts
    return "store://" + object_key(user, ObjectKind.JOBS, job_id, "final/")


def load_for_evaluation(model_name_or_path: str, adapter_name_or_path: str | None = None) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer); the tokenizer comes from the adapter folder when it has one."""
    base = resolve_model_source(resolve_model_name(model_name_or_path))
    tokenizer_source = base
    model = load_model(base)
    if adapter_name_or_path:
        from peft import PeftModel

        adapter = resolve_model_source(resolve_model_name(adapter_name_or_path))
        model = PeftModel.from_pretrained(model, adapter)
        if (Path(adapter) / "tokenizer_config.json").is_file():
            tokenizer_source = adapter  # training may have added tokens the base tokenizer lacks
    tokenizer = load_tokenizer(tokenizer_source)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # batching needs a pad id; it is always masked out
    model.to(pick_device())
    model.eval()
    return model, tokenizer
