"""`tuneflow model init-tiny` builds models transformers loads; one loader takes paths, hub ids and store keys."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner, Result

from shared.modelkit import load_model, load_tokenizer, resolve_model_source
from shared.storage import InvalidKeyError, get_store, put_bytes, upload_dir
from tests.infra import reset_process_state
from tuneflow.cli import app

if TYPE_CHECKING:  # transformers loads in seconds; only the tests that use it should pay
    from transformers import PreTrainedTokenizerBase

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
TOOLS_SYSTEM = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n'
    "</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
    "</tool_call><|im_end|>\n"
)
ROUND_TRIP_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "你好，世界！今天我们用低秩适配微调一个小模型。",
    "Mixed 中英文 text: LoRA 微调, rank=8。",
    "emoji 😀👍🏽🇨🇳 and a ZWJ family 👨‍👩‍👧",
    "  leading spaces, tabs\t\tand\nnewlines\r\n\n trailing  ",
    "code: def f(x):\n    return {'a': [1, 2]}  # ünïcödé",
    "",
]


def init_tiny(*args: str) -> Result:
    return CliRunner().invoke(app, ["model", "init-tiny", *args])


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def cli_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model written by the CLI, as the issue names the command."""
    out = tmp_path_factory.mktemp(f"cli-{request.param}") / "model"
    result = init_tiny(
        "--arch", request.param, "--out", str(out), "--hidden-size", "32", "--layers", "2", "--vocab-size", "512"
    )
    assert result.exit_code == 0, result.output
    assert f"tiny {request.param} model written to {out}" in result.output
    return out


@pytest.fixture(scope="module")
def tokenizer(cli_model: Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(cli_model)


def test_cli_model_loads_with_auto_classes_and_runs(cli_model: Path, tokenizer: PreTrainedTokenizerBase) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(cli_model)
    model = AutoModelForCausalLM.from_pretrained(cli_model)
    ids = tokenizer("Fine-tuning adapts a model.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits

    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (32, 2, 512)
    assert len(tokenizer) <= config.vocab_size  # every token id has an embedding row
    assert logits.shape == (1, ids.shape[1], 512)
    assert torch.isfinite(logits).all()
    assert model.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_cli_writes_the_architecture_asked_for(cli_model: Path) -> None:
    from transformers import AutoConfig

    arch = "llama" if "llama" in cli_model.parent.name else "qwen2"
    assert AutoConfig.from_pretrained(cli_model).model_type == arch


def test_chat_template_renders_system_user_and_assistant_turns(tokenizer: PreTrainedTokenizerBase) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "你好"},
    ]

    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    assert rendered == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello.<|im_end|>\n"
        "<|im_start|>user\n你好<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chat_template_adds_the_default_system_prompt(tokenizer: PreTrainedTokenizerBase) -> None:
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)

    assert rendered == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"


def test_chat_template_renders_tools_calls_and_responses(tokenizer: PreTrainedTokenizerBase) -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "sunny, 21 C"},
    ]

    rendered = tokenizer.apply_chat_template(messages, tools=TOOLS, tokenize=False, add_generation_prompt=True)

    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant."
        + TOOLS_SYSTEM
        + "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        "<|im_end|>\n"
        "<|im_start|>user\n<tool_response>\nsunny, 21 C\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chat_markers_are_single_special_tokens(tokenizer: PreTrainedTokenizerBase) -> None:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=True, return_dict=False)
    start, end = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])

    assert ids.count(start) == 2 and ids.count(end) == 2
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS, ids=range(len(ROUND_TRIP_TEXTS)))
def test_text_round_trips_through_the_tokenizer_exactly(tokenizer: PreTrainedTokenizerBase, text: str) -> None:
    ids = tokenizer(text)["input_ids"]

    assert tokenizer.decode(ids) == text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "gpt2"], "arch must be one of ['llama', 'qwen2'], got 'gpt2'"),
        (["--hidden-size", "30"], "hidden_size 30 is not divisible by heads 4"),
        (["--heads", "4", "--kv-heads", "3"], "heads 4 is not divisible by kv_heads 3"),
        (["--layers", "0"], "layers must be at least 1"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    result = init_tiny("--out", str(tmp_path / "model"), *args)

    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "model").exists()  # refused before any work


@pytest.fixture(params=["local", "s3"])
def store_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Process settings pointing at a fresh store of each backend; returns the model cache folder."""
    for name in [n for n in os.environ if n.startswith("TUNEFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TUNEFLOW_HOME", str(tmp_path / "home"))
    if request.param == "s3":
        monkeypatch.setenv("TUNEFLOW_STORAGE_BACKEND", "s3")
        monkeypatch.setenv("TUNEFLOW_S3_ENDPOINT", request.getfixturevalue("s3_endpoint"))
        monkeypatch.setenv("TUNEFLOW_S3_ACCESS_KEY", "testing")
        monkeypatch.setenv("TUNEFLOW_S3_SECRET_KEY", "testing")
        monkeypatch.setenv("TUNEFLOW_S3_BUCKET", f"test-{uuid.uuid4().hex[:12]}")
    reset_process_state()
    yield tmp_path / "home" / "model-cache"
    reset_process_state()


@pytest.mark.integration
def test_store_model_downloads_once_then_hits_the_cache(
    store_env: Path, cli_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.storage.cache

    prefix = "users/u/models/m1/"
    upload_dir(get_store(), prefix, cli_model)
    downloads: list[str] = []
    real_download = shared.storage.cache.download_prefix
    monkeypatch.setattr(shared.storage.cache, "download_prefix", lambda *a: downloads.append(a[1]) or real_download(*a))

    first = Path(resolve_model_source(f"store://{prefix}"))
    mtime = (first / "config.json").stat().st_mtime_ns
    second = Path(resolve_model_source("store://users/u/models/m1"))  # trailing slash optional

    assert first == second and first.parent == store_env
    assert downloads == [prefix]
    assert (second / "config.json").stat().st_mtime_ns == mtime
    assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in cli_model.iterdir())
    assert [p.name for p in store_env.iterdir()] == [first.name]  # no half-downloaded folder left

    # A changed object (same size, new bytes) is a new model: fetched again, into a new folder.
    config = (cli_model / "config.json").read_bytes()
    time.sleep(0.02)  # local file dates tick with the kernel clock (a few ms): let this rewrite get a new one
    put_bytes(get_store(), prefix + "config.json", config.replace(b'"bos_token_id"', b'"bos_token_iX"'))
    third = Path(resolve_model_source(f"store://{prefix}"))
    assert third != first and downloads == [prefix, prefix]


@pytest.mark.integration
def test_load_model_and_tokenizer_from_the_store(store_env: Path, cli_model: Path) -> None:
    upload_dir(get_store(), "users/u/models/m2/", cli_model)

    model = load_model("store://users/u/models/m2/")
    tokenizer = load_tokenizer("store://users/u/models/m2/")

    assert model.config.vocab_size == 512 and tokenizer.decode(tokenizer("你好")["input_ids"]) == "你好"


def test_missing_store_prefix_is_a_clear_error(store_env: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing is stored under 'users/u/models/none/'"):
        resolve_model_source("store://users/u/models/none/")


def test_store_prefix_cannot_escape(store_env: Path) -> None:
    with pytest.raises(InvalidKeyError):
        resolve_model_source("store://users/u/../../etc/")


def test_local_paths_and_hub_ids(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"x")

    assert resolve_model_source(str(tmp_path / "model")) == str(tmp_path / "model")
    assert resolve_model_source("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"  # left to the hub
    with pytest.raises(ValueError, match="is a file; give the folder holding config.json"):
        resolve_model_source(str(tmp_path / "weights.bin"))
    with pytest.raises(FileNotFoundError, match="no model folder at"):
        resolve_model_source(str(tmp_path / "typo"))
