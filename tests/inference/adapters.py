"""Train tiny LoRA adapters that always give one fixed reply, so tests can tell adapters apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROMPTS = ["hi", "What is your favourite fruit?", "Tell me something.", "weather?", "2+2", "Name a colour."]


def train_fixed_reply_adapter(
    base: Path,
    reply: str,
    out: Path,
    *,
    prompts: list[str] = PROMPTS,
    tools: list[dict[str, Any]] | None = None,
    steps: int = 40,
    seed: int = 0,
) -> Path:
    """A LoRA adapter on `base` that answers every chat prompt with `reply` (then end-of-turn).

    With `tools`, it learns the reply for prompts that offer those tools (the template adds them).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", lora_dropout=0.0)
    model = get_peft_model(model, config)
    rows, labels = [], []
    for prompt in prompts:
        head = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tools=tools, add_generation_prompt=True, tokenize=False
        )
        head_ids = tokenizer(head, add_special_tokens=False).input_ids
        reply_ids = tokenizer(reply, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        rows.append(head_ids + reply_ids)
        labels.append([-100] * len(head_ids) + reply_ids)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    label_ids = torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=mask, labels=label_ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    return out
