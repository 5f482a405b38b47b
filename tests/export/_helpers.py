"""Helpers for export tests: adapters made directly with peft, fixed inputs, the unmerged reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

PROMPTS = ["The river runs past the old mill.", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"]


def make_adapter(base_dir: Path, peft_config: Any, out: Path, *, steps: int = 3) -> Path:
    """Train `peft_config` on `base_dir` for a few AdamW steps on fixed tokens and save it to `out`."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), peft_config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(10, 500, (2, 12))
    for _ in range(steps):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    return out


def fixed_inputs(base_dir: Path) -> list[torch.Tensor]:
    """Fixed token ids, tokenized independently of the export service."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    return [tokenizer(p, return_tensors="pt", add_special_tokens=False)["input_ids"] for p in PROMPTS]


def peft_reference(base_dir: Path, adapter_dir: Path) -> Any:
    """Base + unmerged adapter, loaded fresh in float32: what an export must reproduce."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir).eval()
