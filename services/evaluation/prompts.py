"""Turning records into model text: the chat template for prompts, and the prompt/response split for scoring."""

from __future__ import annotations

import json
from typing import Any

RAW_TEMPLATES = {"raw", "empty", "none"}  # LLaMA-Factory's `empty` template means plain concatenation


def uses_chat_template(tokenizer: Any, template: str | None) -> bool:
    """Whether prompts go through the tokenizer's chat template (it must have one unless `template` is raw)."""
    if template is not None and template.lower() in RAW_TEMPLATES:
        return False
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"template: the tokenizer has no chat template; set template: raw (got {template!r})")
    return True


def render_prompt(
    tokenizer: Any, messages: list[dict[str, Any]], template: str | None, tools: list[dict[str, Any]] | None = None
) -> str:
    """The text the model continues: chat template (with any tool definitions) and generation prompt, or raw turns."""
    if uses_chat_template(tokenizer, template):
        return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    return "\n".join(m["content"] for m in messages)


def _raw_reply(response: dict[str, Any]) -> str:
    """Content, then one `{"name": ..., "arguments": {...}}` line per tool call (no template to format them)."""
    calls = [
        json.dumps(
            {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}, ensure_ascii=False
        )
        for c in response.get("tool_calls") or []
    ]
    return "\n".join([response["content"], *calls]).strip()


def render_exchange(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    response: dict[str, Any],
    template: str | None,
    tools: list[dict[str, Any]] | None = None,
) -> tuple[str, str]:
    """(prompt text, response text) whose concatenation is the full templated conversation.

    The response text is everything the template renders for the final assistant turn (tool calls and
    end-of-turn marker included), so perplexity counts exactly the tokens a fine-tune learns to produce.
    """
    prompt = render_prompt(tokenizer, messages, template, tools)
    if not uses_chat_template(tokenizer, template):
        return prompt + "\n", _raw_reply(response) + (tokenizer.eos_token or "")
    full = tokenizer.apply_chat_template(
        [*messages, response], tools=tools, tokenize=False, add_generation_prompt=False
    )
    if not full.startswith(prompt):
        raise ValueError("the chat template renders the prompt differently once a response follows it")
    return prompt, full[len(prompt) :]


def reference_text(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    response: dict[str, Any],
    template: str | None,
    tools: list[dict[str, Any]] | None = None,
) -> str:
    """The reply as the model should generate it: the content, or for tool calls the template's rendering."""
    if not response.get("tool_calls"):
        return response["content"]
    if not uses_chat_template(tokenizer, template):
        return _raw_reply(response)
    _, full = render_exchange(tokenizer, messages, response, template, tools)
    # What the template adds after any reply is what it renders for an empty one: the end-of-turn tail.
    _, tail = render_exchange(tokenizer, messages, {"role": "assistant", "content": ""}, template, tools)
    return (full[: len(full) - len(tail)] if full.endswith(tail) else full).strip()


def encode_exchange(tokenizer: Any, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt and response, encoded apart so no BPE merge crosses the boundary."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    return prompt_ids, response_ids
