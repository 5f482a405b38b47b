"""Write canonical records back out in a chosen layout: alpaca, sharegpt, OpenAI messages or turn list."""

from __future__ import annotations

import json
from typing import Any

from .converters import Record, RecordError

FORMATS = ("alpaca", "sharegpt", "openai", "conversations")
SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "tool": "observation", "system": "system"}


def to_format(record: Record, fmt: str) -> dict[str, Any]:
    """`record` in layout `fmt`, or RecordError when the layout cannot hold it (tools in alpaca, ...)."""
    if "text" in record:
        return {"text": record["text"]}
    writers = {"alpaca": _alpaca, "sharegpt": _sharegpt, "openai": _openai, "conversations": _turns}
    if fmt not in writers:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    return writers[fmt](record)


def _split_system(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return "", messages


def _plain_pairs(messages: list[dict[str, Any]], fmt: str) -> list[tuple[str, str]]:
    if any(m["role"] == "tool" or m.get("tool_calls") for m in messages):
        raise RecordError("not_convertible", f"{fmt} cannot hold tool calls or tool results; use sharegpt or openai")
    return [(messages[i]["content"], messages[i + 1]["content"]) for i in range(0, len(messages) - 1, 2)]


def _alpaca(record: Record) -> dict[str, Any]:
    system, messages = _split_system(record["messages"])
    if "chosen" in record:
        pairs = _plain_pairs([*messages, {"role": "assistant", "content": ""}], "alpaca")
        out: dict[str, Any] = {"instruction": pairs[-1][0], "chosen": record["chosen"]["content"]}
        out["rejected"] = record["rejected"]["content"]
    else:
        pairs = _plain_pairs(messages, "alpaca")
        out = {"instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]}
    if system:
        out["system"] = system
    if pairs[:-1]:
        out["history"] = [list(pair) for pair in pairs[:-1]]
    return out


def _sharegpt_turn(message: dict[str, Any]) -> dict[str, str]:
    if message.get("tool_calls"):
        calls = [{"name": c["name"], "arguments": json.loads(c["arguments"])} for c in message["tool_calls"]]
        return {
            "from": "function_call",
            "value": json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False),
        }
    return {"from": SHAREGPT_ROLES[message["role"]], "value": message["content"]}


def _sharegpt(record: Record) -> dict[str, Any]:
    system, messages = _split_system(record["messages"])
    out: dict[str, Any] = {"conversations": [_sharegpt_turn(m) for m in messages]}
    if system:
        out["system"] = system
    if record.get("tools"):
        bare = [t["function"] if t.get("type") == "function" else t for t in record["tools"]]  # glaive style
        out["tools"] = json.dumps(bare, ensure_ascii=False)
    for key in ("chosen", "rejected"):
        if key in record:
            out[key] = _sharegpt_turn(record[key])
    return out


def _openai_message(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message["role"], "content": message["content"]}
    if message.get("tool_calls"):
        out["tool_calls"] = [{"type": "function", "function": call} for call in message["tool_calls"]]
    return out


def _openai(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"messages": [_openai_message(m) for m in record["messages"]]}
    if record.get("tools"):
        out["tools"] = [
            t if t.get("type") == "function" else {"type": "function", "function": t} for t in record["tools"]
        ]
    for key in ("chosen", "rejected"):
        if key in record:
            out[key] = _openai_message(record[key])
    return out


def _turns(record: Record) -> dict[str, Any]:
    if "chosen" in record:
        raise RecordError("not_convertible", "the turn-list layout cannot hold preference pairs")
    system, messages = _split_system(record["messages"])
    turns: list[dict[str, str]] = [{"input": q, "output": a} for q, a in _plain_pairs(messages, "conversations")]
    if system:
        turns[0] = {"system": system, **turns[0]}
    return {"conversations": turns}
