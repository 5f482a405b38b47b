"""LLaMA-Factory's named chat templates, with their exact strings, for models whose tokenizer has none.

Each template is a set of slots, as in LLaMA-Factory's `register_template`: `{{content}}` is the message,
`{{bos_token}}` / `{{eos_token}}` are the tokenizer's. Tool definitions and calls are written in the
template family's own tool format. Add a template by adding one `NamedTemplate` to `TEMPLATES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

EOS = "{{eos_token}}"
BOS = "{{bos_token}}"

DEFAULT_TOOL_PROMPT = (
    "You have access to the following tools:\n{tool_text}"
    "Use the following format if using a tool:\n"
    "```\n"
    "Action: tool name (one of [{tool_names}])\n"
    "Action Input: the input to the tool, in a JSON format representing the kwargs "
    '(e.g. ```{{"input": "hello world", "num_beams": 5}}```)\n'
    "```\n"
)
GLM4_TOOL_PROMPT = (
    "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 模型开发的，"
    "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具{tool_text}"
)
LLAMA3_TOOL_PROMPT = (
    "Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n"
    "You have access to the following functions. To call a function, please respond with JSON for a function call. "
    'Respond in the format {{"name": function name, "parameters": dictionary of argument name and its value}}. '
    "Do not use variables.\n\n{tool_text}"
)
QWEN_TOOL_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, '
    '"arguments": <args-json-object>}}\n</tool_call>'
)


def _bare(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function", tool) if tool.get("type") == "function" else tool


def _wrapped(tool: dict[str, Any]) -> dict[str, Any]:
    return tool if tool.get("type") == "function" else {"type": "function", "function": tool}


def _dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(value, ensure_ascii=False, **kwargs)


def _default_tools(tools: list[dict[str, Any]]) -> str:
    tool_text, names = "", []
    for tool in map(_bare, tools):
        params = ""
        schema = tool.get("parameters") or {}
        for name, param in (schema.get("properties") or {}).items():
            required = ", required" if name in schema.get("required", []) else ""
            enum = ", should be one of [{}]".format(", ".join(param["enum"])) if param.get("enum") else ""
            items = (
                ", where each item should be {}".format(param["items"].get("type", "")) if param.get("items") else ""
            )
            params += f"  - {name} ({param.get('type', '')}{required}): {param.get('description', '')}{enum}{items}\n"
        tool_text += (
            f"> Tool Name: {tool['name']}\nTool Description: {tool.get('description', '')}\nTool Args:\n{params}\n"
        )
        names.append(tool["name"])
    return DEFAULT_TOOL_PROMPT.format(tool_text=tool_text, tool_names=", ".join(names))


def _default_calls(calls: list[tuple[str, str]]) -> str:
    return "\n".join(f"Action: {name}\nAction Input: {arguments}" for name, arguments in calls)


def _glm4_tools(tools: list[dict[str, Any]]) -> str:
    tool_text = ""
    for tool in map(_bare, tools):
        body = _dumps(tool, indent=4)
        tool_text += f"\n\n## {tool['name']}\n\n{body}\n在调用上述函数时，请使用 Json 格式表示调用的参数。"
    return GLM4_TOOL_PROMPT.format(tool_text=tool_text)


def _glm4_calls(calls: list[tuple[str, str]]) -> str:
    if len(calls) > 1:
        raise ValueError("GLM-4 templates do not support parallel tool calls")
    return f"{calls[0][0]}\n{calls[0][1]}"


def _llama3_tools(tools: list[dict[str, Any]]) -> str:
    tool_text = "".join(_dumps(_wrapped(tool), indent=4) + "\n\n" for tool in tools)
    return LLAMA3_TOOL_PROMPT.format(date=date.today().strftime("%d %b %Y"), tool_text=tool_text)


def _llama3_calls(calls: list[tuple[str, str]]) -> str:
    objects = [{"name": name, "parameters": json.loads(arguments)} for name, arguments in calls]
    return _dumps(objects[0] if len(objects) == 1 else objects)


def _mistral_tools(tools: list[dict[str, Any]]) -> str:
    return "[AVAILABLE_TOOLS] " + _dumps([_wrapped(tool) for tool in tools]) + "[/AVAILABLE_TOOLS]"


def _mistral_calls(calls: list[tuple[str, str]]) -> str:
    return _dumps([{"name": name, "arguments": json.loads(arguments)} for name, arguments in calls])


def _qwen_tools(tools: list[dict[str, Any]]) -> str:
    return QWEN_TOOL_PROMPT.format(tool_text="".join("\n" + _dumps(_wrapped(tool)) for tool in tools))


def _qwen_calls(calls: list[tuple[str, str]]) -> str:
    texts = [_dumps({"name": name, "arguments": json.loads(arguments)}) for name, arguments in calls]
    return "\n".join(f"<tool_call>\n{text}\n</tool_call>" for text in texts)


ToolFormat = tuple[Callable[[list[dict[str, Any]]], str], Callable[[list[tuple[str, str]]], str]]
TOOL_FORMATS: dict[str, ToolFormat] = {
    "default": (_default_tools, _default_calls),
    "glm4": (_glm4_tools, _glm4_calls),
    "llama3": (_llama3_tools, _llama3_calls),
    "mistral": (_mistral_tools, _mistral_calls),
    "qwen": (_qwen_tools, _qwen_calls),
}


@dataclass(frozen=True)
class NamedTemplate:
    """One LLaMA-Factory template. Unset slots take LLaMA-Factory's defaults (see `resolved`)."""

    name: str
    user: str = "{{content}}"
    assistant: str | None = None  # default: content + eos, or content alone with efficient_eos
    system: str = "{{content}}"
    function: str | None = None  # default: the assistant slot
    observation: str | None = None  # default: the user slot
    prefix: str = ""
    default_system: str = ""
    tool_format: str = "default"
    efficient_eos: bool = False  # eos is appended once, after the last response, instead of after each
    fuse_system: bool = False  # Llama-2 style: system text goes inside the first user message

    @property
    def assistant_slot(self) -> str:
        """The assistant slot with LLaMA-Factory's default applied."""
        if self.assistant is not None:
            return self.assistant
        return "{{content}}" if self.efficient_eos else "{{content}}" + EOS

    @property
    def function_slot(self) -> str:
        """The tool-call slot with its default applied."""
        return self.function if self.function is not None else self.assistant_slot

    @property
    def observation_slot(self) -> str:
        """The tool-result slot with its default applied."""
        return self.observation if self.observation is not None else self.user

    def format_tools(self, tools: list[dict[str, Any]]) -> str:
        """Tool definitions as this family writes them into the system prompt."""
        return TOOL_FORMATS[self.tool_format][0](tools)

    def format_calls(self, calls: list[tuple[str, str]]) -> str:
        """Assistant tool calls (name, JSON arguments) as this family writes them."""
        return TOOL_FORMATS[self.tool_format][1](calls)


_LLAMA3_HEADER = "<|start_header_id|>{role}<|end_header_id|>\n\n"
TEMPLATES: dict[str, NamedTemplate] = {
    t.name: t
    for t in [
        NamedTemplate(
            name="default",
            user="Human: {{content}}" + EOS + "\nAssistant:",
            assistant="{{content}}" + EOS + "\n",
            system="System: {{content}}" + EOS + "\n",
        ),
        NamedTemplate(name="empty", assistant="{{content}}"),
        NamedTemplate(
            name="qwen",
            user="<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n",
            assistant="{{content}}<|im_end|>\n",
            system="<|im_start|>system\n{{content}}<|im_end|>\n",
            function="{{content}}<|im_end|>\n",
            observation=(
                "<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
            ),
            default_system="You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
            tool_format="qwen",
        ),
        NamedTemplate(
            name="chatml",
            user="<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n",
            assistant="{{content}}<|im_end|>\n",
            system="<|im_start|>system\n{{content}}<|im_end|>\n",
            observation="<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n",
        ),
        NamedTemplate(
            name="llama2",
            user=BOS + "[INST] {{content}} [/INST]",
            system="<<SYS>>\n{{content}}\n<</SYS>>\n\n",
            fuse_system=True,
        ),
        NamedTemplate(
            name="llama3",
            user=_LLAMA3_HEADER.format(role="user") + "{{content}}<|eot_id|>" + _LLAMA3_HEADER.format(role="assistant"),
            assistant="{{content}}<|eot_id|>",
            system=_LLAMA3_HEADER.format(role="system") + "{{content}}<|eot_id|>",
            function="{{content}}<|eot_id|>",
            observation=(
                _LLAMA3_HEADER.format(role="ipython")
                + "{{content}}<|eot_id|>"
                + _LLAMA3_HEADER.format(role="assistant")
            ),
            prefix=BOS,
            tool_format="llama3",
        ),
        NamedTemplate(name="baichuan2", user="<reserved_106>{{content}}<reserved_107>", efficient_eos=True),
        NamedTemplate(
            name="chatglm3",
            user="<|user|>\n{{content}}<|assistant|>",
            assistant="\n{{content}}",
            system="<|system|>\n{{content}}",
            function="{{content}}",
            observation="<|observation|>\n{{content}}<|assistant|>",
            prefix="[gMASK]sop",
            tool_format="glm4",
            efficient_eos=True,
        ),
        NamedTemplate(
            name="mistral",
            user="[INST] {{content}}[/INST]",
            assistant=" {{content}}" + EOS,
            system="{{content}}\n\n",
            function="[TOOL_CALLS] {{content}}" + EOS,
            observation='[TOOL_RESULTS] {"content": {{content}}}[/TOOL_RESULTS]',
            prefix=BOS,
            tool_format="mistral",
            fuse_system=True,
        ),
    ]
}


def get_template(name: str) -> NamedTemplate:
    """The named template, or ValueError listing the known names."""
    if name not in TEMPLATES:
        raise ValueError(f"template {name!r} is unknown; choose one of {sorted(TEMPLATES)} or leave it unset")
    return TEMPLATES[name]
