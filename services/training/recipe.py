"""The training recipe, run in the child process: set up, train, save. Readable top to bottom.

Every method family goes through here; what differs between them is how `methods` loads and wraps the
model. The process writes only under its work folder: the parent uploads the results once the run has
finished, so a crashed or cancelled run leaves no partial artefact behind.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.schemas.training import TrainJobConfig

OUTCOME_FILE = "outcome.json"


class RunSpec(BaseModel):
    """What the parent hands the training process (as a JSON file)."""

    job_id: str = Field(description="The job.")
    job_prefix: str = Field(description="The job's object-store prefix; checkpoints sync below it.")
    config: dict[str, Any] = Field(description="TrainJobConfig as a dict.")
    model_dir: str = Field(description="Local folder of the base model.")
    dataset_dir: str = Field(description="Local folder with the prepared dataset's manifest and Parquet files.")
    workdir: str = Field(description="Scratch folder for this run; outputs go to `final/`, `logs/`.")
    resume_from: str | None = Field(None, description="Local checkpoint folder to resume from.")
    worker: str = Field(description="The worker holding the job's lease; the run stops if another takes it over.")


class Outcome(BaseModel):
    """What the training process reports back (written to `workdir/outcome.json` by rank 0)."""

    status: Literal["completed", "cancelled", "lease_lost"] = Field(description="How the run ended.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Final numbers (train_loss, runtime...).")


def train(spec: RunSpec) -> Outcome:
    """Train as `spec.config` says and write `final/`, `logs/`, `metrics.json`, the loss plot and the outcome."""
    from transformers import AutoTokenizer, Trainer, set_seed

    from .callbacks import MetricsCallback, StopCallback, StoreSyncCallback
    from .data import PaddedCollator, PaddingFreeCollator, eval_split, load_splits
    from .methods import count_parameters, load_for_training
    from .plots import plot_loss

    config = TrainJobConfig.model_validate(spec.config)
    workdir = Path(spec.workdir)
    logs_dir = workdir / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    world = int(os.environ.get("WORLD_SIZE", "1"))

    # ---- setup
    set_seed(config.seed)
    check_precision(config)
    tokenizer = AutoTokenizer.from_pretrained(spec.model_dir)
    model = load_for_training(config, spec.model_dir)
    trainable, total = count_parameters(model)
    splits = load_splits(Path(spec.dataset_dir))
    train_set, eval_set = splits["train"], eval_split(splits)
    padding_free = config.packing or "position_ids" in train_set.column_names
    collator = PaddingFreeCollator() if padding_free else PaddedCollator(tokenizer.pad_token_id)

    samples_per_step = config.per_device_train_batch_size * config.gradient_accumulation_steps * world
    stop = StopCallback(spec.job_id, spec.worker)
    trainer = Trainer(
        model=model,
        args=training_arguments(config, workdir, has_eval=eval_set is not None),
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[
            MetricsCallback(spec.job_id, logs_dir, samples_per_step),
            stop,
            StoreSyncCallback(spec.job_prefix, logs_dir),
        ],
    )

    # ---- train
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=spec.resume_from)
    if stop.reason is not None:
        return _finish(workdir, Outcome(status=stop.reason), trainer)

    # ---- save
    metrics = {
        **{k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)},
        "global_step": float(trainer.state.global_step),
        "tokens_seen": float(trainer.state.num_input_tokens_seen),
        "trainable_params": float(trainable),
        "total_params": float(total),
        "wall_s": time.monotonic() - started,
        "peak_rss_mb": peak_rss_mb(),
    }
    metrics["tokens_per_s"] = metrics["tokens_seen"] / max(metrics.get("train_runtime", 0.0), 1e-9)
    if eval_set is not None:
        metrics.update({k: float(v) for k, v in trainer.evaluate().items() if isinstance(v, int | float)})
    if trainer.is_world_process_zero():
        final = workdir / "final"
        save_final(trainer.model, tokenizer, final, config)
        (workdir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        plot_loss(logs_dir / "trainer_log.jsonl", workdir / "loss.png")
    return _finish(workdir, Outcome(status="completed", metrics=metrics), trainer)


def training_arguments(config: TrainJobConfig, workdir: Path, *, has_eval: bool):  # type: ignore[no-untyped-def]
    """Map the job config onto transformers' TrainingArguments."""
    from transformers import TrainingArguments

    from shared.modelkit import pick_device

    extra_trackers = [r for r in _as_list(config.report_to) if r not in ("none", "tensorboard")]
    warmup = config.warmup_steps or config.warmup_ratio  # transformers 5: a value below 1 is a fraction
    return TrainingArguments(
        output_dir=str(workdir / "output"),
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=warmup,
        max_grad_norm=config.max_grad_norm,
        optim=config.optim,
        bf16=config.bf16,
        fp16=config.fp16,
        gradient_checkpointing=config.gradient_checkpointing,
        # Non-reentrant checkpointing needs no grad on the inputs, so frozen-embedding methods (LoRA) work as is.
        gradient_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        logging_steps=config.logging_steps,
        save_strategy=config.save_strategy,
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy=config.eval_strategy if has_eval else "no",
        eval_steps=config.eval_steps or config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        report_to=extra_trackers or "none",
        dataloader_num_workers=config.dataloader_num_workers,
        remove_unused_columns=False,  # the dataset holds exactly the model inputs already
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,  # progress travels as events
        deepspeed=config.deepspeed,
        fsdp=config.fsdp or "",
        fsdp_config=config.fsdp_config,
        ddp_find_unused_parameters=False,
        # accelerate sets up gloo data parallelism for torchrun only when told the device is the CPU.
        use_cpu=pick_device() == "cpu",
    )


def check_precision(config: TrainJobConfig) -> None:
    """Refuse mixed precision the device here cannot do, naming the field."""
    import torch

    from shared.modelkit import pick_device

    device = pick_device()
    if config.fp16 and device != "cuda":
        raise ValueError(f"fp16 needs a CUDA device, this worker has {device}; use bf16 or neither")
    if config.bf16 and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("bf16 is not supported by this GPU; use fp16")


def save_final(model, tokenizer, final: Path, config: TrainJobConfig) -> None:  # type: ignore[no-untyped-def]
    """Write what `from_pretrained` (transformers or peft) loads: weights or adapter, and the tokenizer."""
    peft_config = getattr(model, "peft_config", None)
    if peft_config:
        # Name the base the user gave (hub id or store:// prefix), not this worker's cache folder.
        for adapter in peft_config.values():
            adapter.base_model_name_or_path = config.model_name_or_path
    model.save_pretrained(final)
    tokenizer.save_pretrained(final)


def peak_rss_mb() -> float:
    """The largest resident set this process has had (what `/usr/bin/time -v` reports), in MiB."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _finish(workdir: Path, outcome: Outcome, trainer) -> Outcome:  # type: ignore[no-untyped-def]
    if trainer.is_world_process_zero():
        (workdir / OUTCOME_FILE).write_text(outcome.model_dump_json())
    return outcome


def _as_list(value: str | list[str]) -> list[str]:
    return [v.strip() for v in value.split(",")] if isinstance(value, str) else value
