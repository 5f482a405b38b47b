"""The training job config: LLaMA-Factory's key names and meanings, validated before any work starts.

A LLaMA-Factory YAML is flat; the composition root (`tuneflow train`, the gateway) hands its dataset keys
to the data service's `PrepareConfig` and the rest to `TrainJobConfig`. A few keys are needed by both
(`model_name_or_path`, `stage`, `cutoff_len`, `packing`, `seed`, ...).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

# LLaMA-Factory keys we accept and knowingly do not act on, with the reason shown to the user.
IGNORED_KEYS: dict[str, str] = {
    "do_train": "a training job always trains",
    "overwrite_cache": "prepared datasets are content-addressed; there is no stale cache",
    "overwrite_output_dir": "outputs always go under the job's own prefix",
    "preprocessing_num_workers": "tokenization is the data service's job",
    "plot_loss": "the loss curve is always plotted",
    "include_num_input_tokens_seen": "non-padding tokens are always counted",
    "ddp_timeout": "the launcher sets its own timeout",
    "trust_remote_code": "remote code is never executed on shared workers",
    "flash_attn": "the attention kernel is chosen per device",
    "enable_liger_kernel": "not installed",
    "use_unsloth": "not installed",
    "disable_tqdm": "workers report progress as events",
    "logging_first_step": "the first step is always logged",
    "neat_packing": "packed samples never attend to each other, whatever this says",
    "save_only_model": "checkpoints always keep optimizer, scheduler and RNG state, so a job can resume",
}

FinetuningType = Literal["full", "freeze", "lora", "ptuning_v2", "prompt"]


class TrainJobConfig(BaseModel):
    """Everything a training job needs besides its prepared dataset. Field names follow LLaMA-Factory."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # ### model
    model_name_or_path: str = Field(description="Base model: local folder, hub id or `store://` prefix.")
    quantization_bit: Literal[4, 8] | None = Field(
        None, description="Load the frozen base in 4 or 8 bits through bitsandbytes (QLoRA); LoRA only."
    )
    quantization_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type.")
    double_quantization: bool = Field(True, description="Quantize the 4-bit scales too (saves ~0.4 bit/param).")
    quantization_method: Literal["bnb"] = Field("bnb", description="Quantization backend; only bitsandbytes.")

    # ### method
    stage: Literal["pt", "sft"] = Field("sft", description="`pt`: causal LM on raw text; `sft`: prompt/response.")
    finetuning_type: FinetuningType = Field(
        "lora", description="full, freeze (last layers), lora (QLoRA with quantization_bit), ptuning_v2, prompt."
    )
    freeze_trainable_layers: int = Field(
        2, description="freeze: how many layers train; positive counts from the last layer, negative from the first."
    )
    freeze_trainable_modules: str = Field(
        "all", description="freeze: comma-separated module names inside the trainable layers, or `all`."
    )
    lora_rank: int = Field(8, ge=1, description="LoRA rank r.")
    lora_alpha: float | None = Field(None, gt=0, description="LoRA scale numerator; default 2 x lora_rank.")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    lora_target: str | list[str] = Field(
        "all", description="Modules that get adapters: `all` (every Linear but the head) or comma-separated names."
    )
    additional_target: str | None = Field(
        None, description="Comma-separated modules trained fully beside the adapters and saved with them (`norm`)."
    )
    use_rslora: bool = Field(False, description="Rank-stabilised scaling alpha/sqrt(r) instead of alpha/r.")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")
    num_virtual_tokens: int = Field(
        16,
        ge=1,
        validation_alias=AliasChoices("num_virtual_tokens", "pre_seq_len"),
        description="ptuning_v2/prompt: learned prefix length (`pre_seq_len` is accepted as an alias).",
    )
    prefix_projection: bool = Field(False, description="ptuning_v2: reparameterise the prefix through an MLP.")

    # ### dataset (the parts training needs; the rest is the data service's)
    dataset: str | None = Field(None, description="Dataset name(s), recorded with the job.")
    template: str | None = Field(None, description="Chat template name, recorded with the job.")
    cutoff_len: int = Field(2048, ge=8, description="Longest tokenized sample; bounds memory per sample.")
    packing: bool = Field(False, description="Concatenate short samples into one row (no cross-sample attention).")
    val_size: float = Field(0.0, ge=0.0, description="Held-out fraction (or count if >= 1) evaluated each eval step.")

    # ### train
    per_device_train_batch_size: int = Field(8, ge=1, description="Samples per device per micro-step.")
    per_device_eval_batch_size: int = Field(8, ge=1, description="Samples per device per eval step.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-steps per optimizer step.")
    learning_rate: float = Field(5e-5, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    num_train_epochs: float = Field(3.0, ge=0, description="Epochs; ignored when max_steps > 0.")
    max_steps: int = Field(-1, description="Optimizer steps to run; overrides num_train_epochs when > 0.")
    lr_scheduler_type: str = Field("linear", description="transformers scheduler name: linear, cosine, constant, ...")
    warmup_ratio: float = Field(0.0, ge=0.0, le=1.0, description="Warm-up as a fraction of total steps.")
    warmup_steps: float = Field(0, ge=0, description="Warm-up steps; a value below 1 is a fraction of total steps.")
    max_grad_norm: float = Field(1.0, ge=0.0, description="Clip gradients to this norm (0 disables).")
    optim: str = Field("adamw_torch", description="transformers optimizer name.")
    bf16: bool = Field(False, description="bfloat16 mixed precision (where the device supports it).")
    fp16: bool = Field(False, description="float16 mixed precision (CUDA only).")
    gradient_checkpointing: bool = Field(
        True, description="Recompute activations in backward: less memory, ~30% more compute (LLaMA-Factory's default)."
    )
    disable_gradient_checkpointing: bool = Field(False, description="LLaMA-Factory's switch to turn it off.")
    logging_steps: int = Field(10, ge=1, description="Emit metrics every this many optimizer steps.")
    save_strategy: Literal["steps", "epoch", "no"] = Field(
        "steps", description="When to checkpoint; `no` means a crashed job restarts from scratch."
    )
    save_steps: int = Field(500, ge=1, description="Checkpoint (to the object store) every this many steps.")
    save_total_limit: int | None = Field(2, ge=1, description="Local checkpoints kept; the store keeps the latest.")
    eval_strategy: Literal["steps", "epoch", "no"] = Field("no", description="When to evaluate the val split.")
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every this many steps (default logging_steps).")
    output_dir: str | None = Field(
        None, description="Accepted for LLaMA-Factory YAMLs; outputs always go under the job's object prefix."
    )
    resume_from_checkpoint: str | bool | None = Field(
        None, description="`store://` checkpoint prefix to start from; a restarted job resumes its own anyway."
    )
    seed: int = Field(42, description="Seed for weights init of adapters, data order and dropout.")
    report_to: str | list[str] = Field(
        "none", description="Extra trackers (wandb, mlflow); TensorBoard files are always written."
    )
    dataloader_num_workers: int = Field(0, ge=0, description="Data-loading processes per training process.")

    # ### launch
    num_processes: int = Field(1, ge=1, description="Data-parallel processes (torchrun; gloo on CPU, NCCL on GPU).")
    deepspeed: str | dict[str, Any] | None = Field(None, description="DeepSpeed config, passed to transformers.")
    fsdp: str | None = Field(None, description="FSDP options, passed to transformers (multi-GPU only).")
    fsdp_config: dict[str, Any] | None = Field(None, description="FSDP config, passed to transformers.")
    skip_preflight: bool = Field(False, description="Start even if the memory estimate says it will not fit.")

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored_refuse_unknown(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        ignored = sorted(k for k in data if k in IGNORED_KEYS)
        if ignored:
            reasons = "; ".join(f"{k} ({IGNORED_KEYS[k]})" for k in ignored)
            warnings.warn(f"ignoring LLaMA-Factory keys: {reasons}", UserWarning, stacklevel=2)
        known = set(cls.model_fields) | {"pre_seq_len"}
        unknown = sorted(k for k in data if k not in known and k not in IGNORED_KEYS)
        if unknown:
            raise ValueError(f"unknown training config keys: {', '.join(unknown)}")
        return {k: v for k, v in data.items() if k not in IGNORED_KEYS}

    @model_validator(mode="after")
    def _refuse_contradictions(self) -> TrainJobConfig:
        given = self.model_fields_set
        if self.bf16 and self.fp16:
            raise ValueError("bf16 and fp16 are both true; choose one mixed-precision type")
        if self.quantization_bit is not None and self.finetuning_type != "lora":
            raise ValueError(
                f"quantization_bit needs finetuning_type lora (QLoRA), not {self.finetuning_type!r}: "
                "a quantized base cannot be trained directly"
            )
        if self.disable_gradient_checkpointing:
            if "gradient_checkpointing" in given and self.gradient_checkpointing:
                raise ValueError("gradient_checkpointing is true but disable_gradient_checkpointing is also true")
            self.gradient_checkpointing = False
        if self.finetuning_type == "ptuning_v2" and self.gradient_checkpointing:
            # PEFT feeds the prefix as a KV cache, which checkpointing's recomputation extends a second time.
            if "gradient_checkpointing" in given:
                raise ValueError("gradient_checkpointing cannot be used with finetuning_type ptuning_v2")
            self.gradient_checkpointing = False
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError("max_steps and num_train_epochs are both 0: set one of them")
        if self.warmup_ratio and self.warmup_steps:
            raise ValueError("warmup_ratio and warmup_steps are both set; set one")
        if self.finetuning_type == "freeze" and self.freeze_trainable_layers == 0:
            raise ValueError("freeze_trainable_layers is 0: nothing would train")
        if self.eval_strategy != "no" and self.val_size <= 0:
            raise ValueError(f"eval_strategy is {self.eval_strategy!r} but val_size is 0: there is nothing to evaluate")
        if (self.deepspeed or self.fsdp) and self.num_processes < 2:
            raise ValueError("deepspeed/fsdp need num_processes >= 2")
        if self.packing and self.stage == "sft" and self.finetuning_type in ("ptuning_v2", "prompt"):
            raise ValueError(
                "packing with finetuning_type ptuning_v2/prompt would share one virtual prefix across packed samples"
            )
        return self

    @property
    def resolved_lora_alpha(self) -> float:
        """lora_alpha, defaulting to 2 x lora_rank as LLaMA-Factory does."""
        return self.lora_alpha if self.lora_alpha is not None else 2.0 * self.lora_rank

    @property
    def additional_target_modules(self) -> list[str] | None:
        """additional_target as a list of module names."""
        names = [n.strip() for n in (self.additional_target or "").split(",") if n.strip()]
        return names or None

    @property
    def lora_target_modules(self) -> list[str] | str:
        """`all-linear` for `all`, otherwise the list of module names."""
        names = self.lora_target if isinstance(self.lora_target, list) else self.lora_target.split(",")
        names = [n.strip() for n in names if n.strip()]
        return "all-linear" if names == ["all"] else names
