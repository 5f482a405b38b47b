"""Turning records into model text: the chat template for prompts, and the prompt/response split for scoring."""

from __future__ import annotations

from typing import Any

RAW_TEMPLATES = {"raw", "empty", "none"}  # LLaMA-Factory's `empty` template means plain concatenation


def uses_chat_template(tokenizer: Any, template: str | None) -> bool:
    """Whether prompts go through the tokenizer's chat template (it must have one unless `template` is raw)."""
    if template is not None and template.lower() in RAW_TEMPLATES:
        return False
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"template: the tokenizer has no chat template; set template: raw (got {template!r})")
    return True


def render_prompt(tokenizer: Any, messages: list[dict[str, Any]], template: str | None) -> str:
    """The text the model continues: chat template with the generation prompt, or the turns joined raw."""
    if uses_chat_template(tokenizer, template):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n".join(m["content"] for m in messages)


def render_exchange(
    tokenizer: Any, messages: list[dict[str, Any]], response: str, template: str | None
) -> tuple[str, str]:
    """(prompt text, response text) whose concatenation is the full templated conversation.

    The response text is everything the template renders for the final assistant turn (its end-of-turn
    marker included), so perplexity counts exactly the tokens a fine-tune is trained to produce.
    """
    prompt = render_prompt(tokenizer, messages, template)
    if not uses_chat_template(tokenizer, template):
        return prompt + "\n", response + (tokenizer.eos_token or "")
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": response}], tokenize=False, add_generation_prompt=False
    )
    if not full.startswith(prompt):
        raise ValueError("the chat template renders the prompt differently once a response follows it")
    return prompt, full[len(prompt) :]


def encode_exchange(tokenizer: Any, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt and response, encoded apart so no BPE merge crosses the boundary."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    return prompt_ids, response_ids
