"""Pre-flight memory check: estimate what a job needs on this worker and refuse early with a suggestion.

The estimate is deliberately simple (weights + gradients + AdamW states + activations + logits, plus a
fixed runtime overhead) and errs high; its purpose is to turn a certain OOM an hour in into a clear
message at submission, not to predict usage to the megabyte.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.schemas.training import TrainJobConfig

RUNTIME_OVERHEAD_B = 600 * 2**20  # interpreter, torch, tokenizer, allocator slack
ADAM_B_PER_TRAINABLE = 4 + 8  # fp32 gradient + two fp32 moments
SAFETY = 1.2


class PreflightError(ValueError):
    """The job will not fit; `param` names the config field to change first."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ModelShape:
    """The few numbers of a model config the estimate needs."""

    params: int
    linear_params: int  # inside the transformer blocks: what LoRA targets and bitsandbytes quantizes
    hidden: int
    intermediate: int
    layers: int
    heads: int
    vocab: int

    @classmethod
    def from_config(cls, hf_config) -> ModelShape:  # type: ignore[no-untyped-def]
        """Read the shape from a transformers config, counting parameters without allocating them."""
        h, i, n = hf_config.hidden_size, hf_config.intermediate_size, hf_config.num_hidden_layers
        heads = hf_config.num_attention_heads
        kv = getattr(hf_config, "num_key_value_heads", None) or heads
        head_dim = getattr(hf_config, "head_dim", None) or h // heads
        per_layer = h * heads * head_dim * 2 + h * kv * head_dim * 2 + 3 * h * i
        embeddings = hf_config.vocab_size * h * (1 if hf_config.tie_word_embeddings else 2)
        return cls(
            params=per_layer * n + embeddings,
            linear_params=per_layer * n,
            hidden=h,
            intermediate=i,
            layers=n,
            heads=heads,
            vocab=hf_config.vocab_size,
        )


def estimate_bytes(shape: ModelShape, config: TrainJobConfig, row_tokens: int) -> int:
    """Peak training memory in bytes for micro-batches of `per_device_train_batch_size` rows of `row_tokens`."""
    if config.quantization_bit:
        weights = shape.linear_params * config.quantization_bit // 8 + (shape.params - shape.linear_params) * 4
    else:
        weights = shape.params * (2 if config.bf16 and config.finetuning_type not in ("full", "freeze") else 4)
    trainable = {
        "full": shape.params,
        "freeze": shape.params * abs(config.freeze_trainable_layers) // max(shape.layers, 1),
        "lora": 2 * config.lora_rank * (shape.hidden + shape.intermediate) * 7 * shape.layers // 2,
    }.get(config.finetuning_type, config.num_virtual_tokens * shape.hidden * 2 * shape.layers)
    tokens = config.per_device_train_batch_size * row_tokens
    # Per token and layer: residual, norms, q/k/v/o inputs and outputs, the MLP's up/gate/act (fp32).
    per_layer_token = 4 * (10 * shape.hidden + 4 * shape.intermediate)
    attention = 4 * 2 * shape.heads * row_tokens * row_tokens * config.per_device_train_batch_size
    if config.gradient_checkpointing:
        activations = tokens * shape.layers * shape.hidden * 4 + tokens * per_layer_token + attention
    else:
        activations = (tokens * per_layer_token + attention) * shape.layers
    logits = tokens * shape.vocab * 4 * 3  # logits, their log-softmax and its gradient
    total = weights + trainable * ADAM_B_PER_TRAINABLE + activations + logits
    return int(total * SAFETY) + RUNTIME_OVERHEAD_B


def check_fits(shape: ModelShape, config: TrainJobConfig, row_tokens: int, available: int) -> int:
    """Return the estimate, or raise PreflightError with the most useful change when it exceeds `available`."""
    need = estimate_bytes(shape, config, row_tokens)
    if need <= available:
        return need
    gib = f"needs about {need / 2**30:.1f} GiB but {available / 2**30:.1f} GiB is free"
    batch = config.per_device_train_batch_size
    while batch > 1:
        batch //= 2
        smaller = config.model_copy(update={"per_device_train_batch_size": batch})
        if estimate_bytes(shape, smaller, row_tokens) <= available:
            accumulate = config.gradient_accumulation_steps * config.per_device_train_batch_size // batch
            raise PreflightError(
                f"{gib}: set per_device_train_batch_size={batch} with gradient_accumulation_steps={accumulate} "
                "(same effective batch)",
                "per_device_train_batch_size",
            )
    if not config.gradient_checkpointing:
        raise PreflightError(f"{gib}: turn gradient_checkpointing on", "gradient_checkpointing")
    if config.finetuning_type in ("full", "freeze"):
        raise PreflightError(f"{gib}: use finetuning_type=lora, with quantization_bit=4 (QLoRA)", "finetuning_type")
    if config.finetuning_type == "lora" and config.quantization_bit is None:
        raise PreflightError(f"{gib}: add quantization_bit=4 (QLoRA)", "quantization_bit")
    raise PreflightError(f"{gib}: lower cutoff_len or use a smaller model", "cutoff_len")


def available_bytes() -> int:
    """Free memory on the device training will use: GPU memory on CUDA, otherwise available RAM."""
    import psutil
    import torch

    if torch.cuda.is_available():
        return torch.cuda.mem_get_info()[0]
    return psutil.virtual_memory().available
