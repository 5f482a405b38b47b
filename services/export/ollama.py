"""Ollama Modelfile for a merged safetensors folder, with the chat template translated to Go's syntax.

Only ChatML-family templates (Qwen, Yi, OpenHermes, ...) are translated. The translation is checked by
rendering sample conversations through the tokenizer's Jinja template and through a Python mirror of the
Go template; any difference (tool calls, reasoning blocks, custom roles) refuses the export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.schemas.export import VerificationCheck

from .errors import ExportError

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
# LLaMA-Factory's ChatML Modelfile template: system from SYSTEM or the request, then the turns.
GO_TEMPLATE = (
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{ range .Messages }}"
    '{{ if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n<|im_start|>assistant\n'
    '{{ else if eq .Role "assistant" }}{{ .Content }}<|im_end|>\n{{ end }}'
    "{{ end }}"
)
SAMPLE_CONVERSATIONS = (
    [{"role": "user", "content": "Hi there"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
    [
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "Two."},
        {"role": "user", "content": "Three?"},
    ],
)


def _render_go_template(messages: list[dict[str, str]], system: str) -> str:
    """What Ollama renders with GO_TEMPLATE: a request's system message replaces the Modelfile's SYSTEM."""
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    text = f"{IM_START}system\n{system}{IM_END}\n" if system else ""
    for message in messages:
        if message["role"] == "user":
            text += f"{IM_START}user\n{message['content']}{IM_END}\n{IM_START}assistant\n"
        else:
            text += f"{message['content']}{IM_END}\n"
    return text


def _default_system(tokenizer: Any) -> str:
    """The system prompt the template adds when a conversation has none (empty if it adds none)."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True)
    head = f"{IM_START}system\n"
    return text[len(head) : text.index(IM_END)] if text.startswith(head) else ""


def check_chatml(tokenizer: Any) -> tuple[str, VerificationCheck]:
    """Return the default system prompt, refusing templates the Go translation would render differently."""
    template = tokenizer.chat_template or ""
    if IM_START not in template or IM_END not in template:
        raise ExportError(
            "export_format=ollama translates only ChatML-family chat templates (<|im_start|> ... <|im_end|>); "
            "this tokenizer's template is not one. Write the Modelfile TEMPLATE by hand"
        )
    system = _default_system(tokenizer)
    mismatched = sum(
        tokenizer.apply_chat_template(list(conv), tokenize=False, add_generation_prompt=True)
        != _render_go_template(list(conv), system)
        for conv in SAMPLE_CONVERSATIONS
    )
    if mismatched:
        raise ExportError(
            f"the chat template renders {mismatched} of {len(SAMPLE_CONVERSATIONS)} sample conversations "
            "differently from plain ChatML, so it cannot be translated to an Ollama template faithfully"
        )
    check = VerificationCheck(
        name="ollama_template",
        passed=True,
        value=0.0,
        tolerance=0.0,
        detail=f"conversations rendered differently by the Jinja and Go templates (of {len(SAMPLE_CONVERSATIONS)})",
    )
    return system, check


def _quoted(text: str) -> str:
    if '"""' in text:
        raise ExportError('the default system prompt contains """, which a Modelfile cannot quote')
    return f'"""{text}"""'


def write_modelfile(out: Path, tokenizer: Any, system: str) -> Path:
    """Write `out/Modelfile` pointing at the safetensors in the same folder (`ollama create NAME -f Modelfile`)."""
    stops = [IM_END, IM_START]
    if tokenizer.eos_token and tokenizer.eos_token not in stops:
        stops.append(tokenizer.eos_token)
    lines = ["# Ollama Modelfile written by TuneFlow", "FROM .", "", f"TEMPLATE {_quoted(GO_TEMPLATE)}", ""]
    if system:
        lines += [f"SYSTEM {_quoted(system)}", ""]
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    path = out / "Modelfile"
    path.write_text("\n".join(lines) + "\n")
    return path
