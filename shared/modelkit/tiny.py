"""Random-init Llama / Qwen2 models with a locally trained byte-level BPE tokenizer and a chat template."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@dataclass
class TinyModelSpec:
    """Shape of a tiny model. Defaults give a 2-layer, 64-dim model that trains in seconds on a CPU."""

    arch: str = "qwen2"  # llama | qwen2
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 0  # 0: 2.75 x hidden_size, as Llama-family models roughly use
    vocab_size: int = 2048  # upper bound; the BPE trainer stops early on a small corpus
    max_position_embeddings: int = 2048
    seed: int = 0
    corpus: list[Path] = field(default_factory=list)  # extra text files to train the tokenizer on


ARCHS = ("llama", "qwen2")


def _check_spec(spec: TinyModelSpec) -> None:
    """Raise ValueError naming the first impossible setting, before any slow work starts."""
    if spec.arch not in ARCHS:
        raise ValueError(f"arch must be one of {list(ARCHS)}, got {spec.arch!r}")
    for name in ("hidden_size", "layers", "heads", "kv_heads", "vocab_size"):
        if getattr(spec, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(spec, name)}")
    if spec.hidden_size % spec.heads:
        raise ValueError(f"hidden_size {spec.hidden_size} is not divisible by heads {spec.heads}")
    if spec.heads % spec.kv_heads:
        raise ValueError(f"heads {spec.heads} is not divisible by kv_heads {spec.kv_heads}")


def _train_tokenizer(spec: TinyModelSpec):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte: any text round-trips
        show_progress=False,
    )
    files = [str(HERE / "corpus.txt"), *map(str, spec.corpus)]
    tok.train(files, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        chat_template=(HERE / "chat_template.jinja").read_text(),
        clean_up_tokenization_spaces=False,
        model_max_length=spec.max_position_embeddings,
    )


def _model_config(spec: TinyModelSpec, vocab_size: int, eos_id: int, pad_id: int):  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig, Qwen2Config

    configs = {"llama": LlamaConfig, "qwen2": Qwen2Config}
    return configs[spec.arch](
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size or int(spec.hidden_size * 2.75),
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        vocab_size=vocab_size,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )


def build_tiny_model(spec: TinyModelSpec, out: Path) -> Path:
    """Write a random-init model, its tokenizer and generation config to `out`; return `out`.

    Raises:
        ValueError: The spec names an unknown architecture or impossible shapes.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    _check_spec(spec)
    out = Path(out)
    tokenizer = _train_tokenizer(spec)
    # Round the embedding up to a multiple of 64, as real models do, so matmuls stay aligned.
    vocab = max(spec.vocab_size, (len(tokenizer) + 63) // 64 * 64)
    config = _model_config(spec, vocab, tokenizer.eos_token_id, tokenizer.pad_token_id)
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
