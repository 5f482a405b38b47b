"""Turn one raw record (alpaca, sharegpt, OpenAI messages, turn list, text, preference) into the canonical form.

The canonical forms are `shared.schemas.records`: `{"messages": [...], "tools": [...]}` for conversations,
`{"text": ...}` for pre-training, `{"messages", "chosen", "rejected"}` for preference pairs. Conversion is also
validation: the first fault found raises `RecordError` naming the field and saying what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from .registry import OPENAI_TAGS, DatasetAttr, Tags

Record = dict[str, Any]


class RecordError(ValueError):
    """A record that cannot be used, with the field at fault."""

    def __init__(self, code: str, reason: str, field: str | None = None):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.field = field


def convert_record(raw: Any, attr: DatasetAttr, stage: str) -> Record:
    """The canonical record for `raw`, or RecordError.

    Args:
        raw: One parsed row.
        attr: Its dataset's registry entry.
        stage: `sft`, `pt`, `rm` or `dpo`; decides which parts are required.
    """
    if not isinstance(raw, dict):
        raise RecordError("wrong_type", f"a record must be an object, got {_kind(raw)}")
    if stage == "pt":
        return _convert_text(raw, attr)
    if attr.formatting == "alpaca":
        record = _convert_alpaca(raw, attr, stage)
    elif attr.formatting == "turns":
        record = _convert_turns(raw, attr)
    else:
        tags = OPENAI_TAGS if attr.formatting == "openai" else attr.tags
        record = _convert_chat(raw, attr, tags, stage)
    if stage in ("rm", "dpo"):
        if "chosen" not in record:
            raise RecordError("missing_field", "preference stages need chosen and rejected responses", "chosen")
    else:
        record.pop("chosen", None)
        record.pop("rejected", None)
    return record


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _text(raw: dict[str, Any], key: str, *, required: bool, allow_empty: bool = False) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            raise RecordError("missing_field", f"required field {key!r} is missing", key)
        return ""
    if not isinstance(value, str):
        raise RecordError("wrong_type", f"{key!r} must be a string, got {_kind(value)}", key)
    if required and not allow_empty and not value.strip():
        raise RecordError("empty_field", f"{key!r} is empty", key)
    return value


def _convert_text(raw: dict[str, Any], attr: DatasetAttr) -> Record:
    key = attr.columns.prompt if attr.columns.prompt in raw or "text" not in raw else "text"
    return {"text": _text(raw, key, required=True)}


def _tools(raw: dict[str, Any], attr: DatasetAttr) -> list[dict[str, Any]] | None:
    key = attr.columns.tools
    value = raw.get(key) if key else None
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RecordError("invalid_tools", f"tool definitions are not valid JSON: {exc.msg}", key) from exc
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise RecordError("invalid_tools", "tool definitions must be a list of JSON objects", key)
    for i, tool in enumerate(value):
        body = tool.get("function", tool) if tool.get("type") == "function" else tool
        if not isinstance(body.get("name"), str) or not body["name"]:
            raise RecordError("invalid_tools", "a tool definition has no name", f"{key}[{i}].name")
    return value or None


def _convert_alpaca(raw: dict[str, Any], attr: DatasetAttr, stage: str) -> Record:
    cols = attr.columns
    messages: list[dict[str, Any]] = []
    system = _text(raw, cols.system, required=False) if cols.system else ""
    if system:
        messages.append({"role": "system", "content": system})
    history = raw.get(cols.history) if cols.history else None
    if history not in (None, ""):
        if isinstance(history, str):
            try:
                history = json.loads(history)
            except json.JSONDecodeError as exc:
                raise RecordError(
                    "wrong_type", "history must be a list of [prompt, response] pairs", cols.history
                ) from exc
        if not isinstance(history, list):
            raise RecordError("wrong_type", f"history must be a list of pairs, got {_kind(history)}", cols.history)
        for i, pair in enumerate(history):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise RecordError(
                    "wrong_type", "each history item must be [prompt, response] strings", f"{cols.history}[{i}]"
                )
            messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    prompt = _text(raw, cols.prompt, required=True)
    query = _text(raw, cols.query, required=False)
    messages.append({"role": "user", "content": f"{prompt}\n{query}" if query else prompt})
    record: Record = {"messages": messages}
    tools = _tools(raw, attr)
    if tools:
        record["tools"] = tools
    if attr.ranking:
        chosen_key, rejected_key = cols.chosen or "chosen", cols.rejected or "rejected"
        record["chosen"] = {"role": "assistant", "content": _text(raw, chosen_key, required=True)}
        record["rejected"] = {"role": "assistant", "content": _text(raw, rejected_key, required=True)}
        return record
    messages.append({"role": "assistant", "content": _text(raw, cols.response, required=True)})
    return record


def _convert_turns(raw: dict[str, Any], attr: DatasetAttr) -> Record:
    key = attr.columns.messages
    turns = raw.get(key)
    if turns is None:
        raise RecordError("missing_field", f"required field {key!r} is missing", key)
    if not isinstance(turns, list) or not turns:
        raise RecordError(
            "wrong_type" if not isinstance(turns, list) else "empty_field",
            f"{key!r} must be a non-empty list of turns",
            key,
        )
    messages: list[dict[str, Any]] = []
    for i, turn in enumerate(turns):
        where = f"{key}[{i}]"
        if not isinstance(turn, dict):
            raise RecordError("wrong_type", f"each turn must be an object, got {_kind(turn)}", where)
        system = turn.get("system")
        if system:
            if i:
                raise RecordError("role_order", "a system prompt may only open the conversation", f"{where}.system")
            messages.append({"role": "system", "content": _text(turn, "system", required=True)})
        for part, role in (("input", "user"), ("output", "assistant")):
            try:
                content = _text(turn, part, required=True)
            except RecordError as exc:
                raise RecordError(exc.code, exc.reason, f"{where}.{part}") from None
            messages.append({"role": role, "content": content})
    return {"messages": messages}


def _convert_chat(raw: dict[str, Any], attr: DatasetAttr, tags: Tags, stage: str) -> Record:
    key = attr.columns.messages
    turns = raw.get(key)
    if turns is None:
        raise RecordError("missing_field", f"required field {key!r} is missing", key)
    if isinstance(turns, str):
        try:
            turns = json.loads(turns)
        except json.JSONDecodeError as exc:
            raise RecordError("wrong_type", f"{key!r} must be a list of messages", key) from exc
    if not isinstance(turns, list):
        raise RecordError("wrong_type", f"{key!r} must be a list of messages, got {_kind(turns)}", key)
    if not turns:
        raise RecordError("empty_field", f"{key!r} has no messages", key)
    roles = {
        tags.user_tag: "user",
        tags.assistant_tag: "assistant",
        tags.observation_tag: "tool",
        tags.function_tag: "function",
        tags.system_tag: "system",
    }
    messages: list[dict[str, Any]] = []
    paths: list[str] = []  # where each message came from, for problems
    system = _text(raw, attr.columns.system, required=False) if attr.columns.system else ""
    if system:
        messages.append({"role": "system", "content": system})
        paths.append(str(attr.columns.system))
    for i, turn in enumerate(turns):
        messages.append(_convert_message(turn, f"{key}[{i}]", tags, roles))
        paths.append(f"{key}[{i}].{tags.role_tag}")
    record: Record = {"messages": messages}
    tools = _tools(raw, attr)
    if tools:
        record["tools"] = tools
    ranking = attr.ranking or stage in ("rm", "dpo")
    if ranking:
        for part in ("chosen", "rejected"):
            col = getattr(attr.columns, part) or part
            if col not in raw:
                raise RecordError("missing_field", f"required field {col!r} is missing", col)
            answer = _convert_message(raw[col], col, tags, roles)
            if answer["role"] != "assistant":
                raise RecordError("unknown_role", f"{col!r} must be an assistant message", col)
            record[part] = answer
    check_order(messages, paths, expect_response=not ranking)
    return record


def _convert_message(turn: Any, where: str, tags: Tags, roles: dict[str, str]) -> dict[str, Any]:
    if not isinstance(turn, dict):
        raise RecordError("wrong_type", f"each message must be an object, got {_kind(turn)}", where)
    if tags.role_tag not in turn:
        raise RecordError("missing_field", f"message has no {tags.role_tag!r}", f"{where}.{tags.role_tag}")
    role_value = turn[tags.role_tag]
    role = roles.get(role_value) if isinstance(role_value, str) else None
    if role is None:
        allowed = ", ".join(sorted(roles))
        raise RecordError(
            "unknown_role", f"unknown role {role_value!r}; expected one of {allowed}", f"{where}.{tags.role_tag}"
        )
    content = turn.get(tags.content_tag)
    calls = turn.get("tool_calls")
    if content is None and not calls:
        raise RecordError("missing_field", f"message has no {tags.content_tag!r}", f"{where}.{tags.content_tag}")
    if content is not None and not isinstance(content, str):
        raise RecordError(
            "wrong_type", f"{tags.content_tag!r} must be a string, got {_kind(content)}", f"{where}.{tags.content_tag}"
        )
    content = content or ""
    if role == "function":
        return {
            "role": "assistant",
            "content": "",
            "tool_calls": _parse_function_call(content, f"{where}.{tags.content_tag}"),
        }
    message: dict[str, Any] = {"role": role, "content": content}
    if calls:
        if role != "assistant":
            raise RecordError("wrong_type", "only assistant messages may carry tool_calls", f"{where}.tool_calls")
        message["tool_calls"] = _parse_openai_calls(calls, f"{where}.tool_calls")
    elif role in ("user", "assistant") and not content.strip():
        raise RecordError("empty_field", f"{role} message is empty", f"{where}.{tags.content_tag}")
    return message


def _parse_function_call(content: str, where: str) -> list[dict[str, str]]:
    try:
        value = json.loads(content)
    except json.JSONDecodeError as exc:
        raise RecordError("invalid_tool_call", f"function call is not valid JSON: {exc.msg}", where) from exc
    calls = value if isinstance(value, list) else [value]
    return [_tool_call(call, where) for call in calls]


def _parse_openai_calls(calls: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(calls, list):
        raise RecordError("wrong_type", f"tool_calls must be a list, got {_kind(calls)}", where)
    parsed = []
    for i, call in enumerate(calls):
        body = call.get("function", call) if isinstance(call, dict) else call
        parsed.append(_tool_call(body, f"{where}[{i}]"))
    return parsed


def _tool_call(call: Any, where: str) -> dict[str, str]:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
        raise RecordError("invalid_tool_call", "a tool call needs a string 'name'", where)
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise RecordError(
                "invalid_tool_call", f"tool call arguments are not valid JSON: {exc.msg}", f"{where}.arguments"
            ) from exc
        if not isinstance(parsed, dict):
            raise RecordError("invalid_tool_call", "tool call arguments must be a JSON object", f"{where}.arguments")
        return {"name": call["name"], "arguments": arguments}
    if not isinstance(arguments, dict):
        raise RecordError("invalid_tool_call", "tool call arguments must be a JSON object", f"{where}.arguments")
    return {"name": call["name"], "arguments": json.dumps(arguments, ensure_ascii=False)}


def check_order(messages: list[dict[str, Any]], paths: list[str], *, expect_response: bool) -> None:
    """Raise RecordError unless roles alternate: [system] user, assistant, (tool, assistant | user, assistant)...

    Args:
        messages: Canonical messages.
        paths: The raw field each message came from, named in the error.
        expect_response: The last message must be the assistant's (supervised data); preference prompts end
            with the user instead.
    """
    previous = None
    for i, message in enumerate(messages):
        role, where = message["role"], paths[i]
        after_call = previous == "assistant" and bool(messages[i - 1].get("tool_calls"))
        if role == "system":
            if i:
                raise RecordError("role_order", "a system message may only open the conversation", where)
            continue
        if previous is None and role != "user":
            raise RecordError("role_order", f"the conversation must start with the user, not the {role}", where)
        if role == "user" and previous == "user":
            raise RecordError("role_order", "two user messages in a row (an assistant reply is missing)", where)
        if role == "assistant" and previous == "assistant":
            raise RecordError("role_order", "two assistant messages in a row (a user turn is missing)", where)
        # LLaMA-Factory (and real datasets such as glaive zh) accept a tool result after a plain assistant turn.
        if role == "tool" and previous not in ("tool", "assistant"):
            raise RecordError("role_order", "a tool result must follow an assistant turn", where)
        if role == "user" and after_call:
            raise RecordError("role_order", "a tool call must be answered by a tool result", where)
        previous = role
    if previous is None:
        raise RecordError("empty_field", "the conversation has no user message", paths[-1] if paths else None)
    if expect_response and previous != "assistant":
        raise RecordError("role_order", "the conversation must end with an assistant response", paths[-1])
    if not expect_response and previous not in ("user", "tool"):
        raise RecordError("role_order", "a preference prompt must end with the user", paths[-1])
