"""One export from start to finish: load, merge, verify, write the format, write the manifest.

Everything is written into a fresh folder that is moved into place only after every check passed, so a
failed export leaves nothing behind.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.schemas.export import (
    ExportConfig,
    ExportFormat,
    ExportManifest,
    QuantizationMethod,
    QuantizationReport,
    VerificationCheck,
)

from .errors import ExportError
from .manifest import file_entries, write_manifest
from .merge import Source, load_base, load_source, merge_adapter, save_hf_folder
from .ollama import check_chatml, write_modelfile
from .onnx_export import check_onnx, export_onnx
from .quantize import RELOAD_HINTS, check_supported, load_quantized, quantize_folder, weight_bytes
from .torchscript_export import check_torchscript, export_torchscript
from .verify import (
    calibration_texts,
    close_check,
    greedy_tokens,
    logits_of,
    max_abs_diff,
    max_logit_diff,
    perplexity,
    require_passed,
    same_tokens_check,
    sample_inputs,
)

MERGE_TOLERANCE = 1e-4  # fp32: merging reorders the same float sums, nothing more
ROUND_TRIP_TOLERANCE = 1e-5  # a saved and reloaded model in the same dtype should be bit-identical
Progress = Callable[[str], object]  # return value ignored: `emit` returns its event


@dataclass
class _Run:
    """What the steps of one export share."""

    config: ExportConfig
    source: Source
    out: Path
    work: Path
    progress: Progress
    inputs: list[Any] = field(default_factory=list)
    merged: Any = None
    merged_logits: list[Any] = field(default_factory=list)
    merged_tokens: list[list[int]] = field(default_factory=list)
    checks: list[VerificationCheck] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    dtype: str = "float32"
    quantization: QuantizationReport | None = None
    ollama_system: str = ""


def build_export(
    config: ExportConfig, out: Path, work: Path, *, export_id: str, progress: Progress | None = None
) -> ExportManifest:
    """Write the export described by `config` into the new folder `out` (scratch files go to `work`)."""
    progress = progress or (lambda _message: None)
    progress("loading base model and adapter")
    source = load_source(config.model_name_or_path, config.adapter_name_or_path)
    out.mkdir(parents=True)
    work.mkdir(parents=True, exist_ok=True)
    run = _Run(config, source, out, work, progress, inputs=sample_inputs(source.tokenizer))
    run.messages += source.messages
    # Refuse what cannot work before the minutes of merging and checking.
    if config.export_quantization_bit:
        check_supported(config.export_quantization_method, config.export_quantization_bit, source.model)
    if config.export_format is ExportFormat.OLLAMA:
        run.ollama_system, template_check = check_chatml(source.tokenizer)
        run.checks.append(template_check)
    if source.adapter and source.adapter.prompt_learning:
        _write_prompt_adapter(run)
    else:
        _merge_and_check(run)
        {
            ExportFormat.MERGED: _write_merged,
            ExportFormat.ONNX: _write_onnx,
            ExportFormat.TORCHSCRIPT: _write_torchscript,
            ExportFormat.OLLAMA: _write_ollama,
        }[config.export_format](run)
    require_passed(run.checks)
    manifest = _manifest(run, export_id)
    write_manifest(out, manifest)
    progress(f"export written: {len(manifest.files)} files, {len(run.checks)} checks passed")
    return manifest


def _merge_and_check(run: _Run) -> None:
    """Merge, then prove the merged weights compute what base + adapter computed (before anything is written)."""
    n = run.config.verify_max_new_tokens
    expected = [logits_of(run.source.model)(ids) for ids in run.inputs]
    expected_tokens = greedy_tokens(run.source.model, run.inputs, n)
    if run.source.adapter:
        with run.source.model.disable_adapter():
            effect = max_logit_diff(expected, logits_of(run.source.model), run.inputs)
        if effect == 0.0:
            run.messages.append("the adapter does not change the base model's logits (untrained adapter?)")
    run.progress("merging adapter into the base weights" if run.source.adapter else "no adapter: exporting base")
    run.merged = merge_adapter(run.source)
    run.merged_logits = [logits_of(run.merged)(ids) for ids in run.inputs]
    run.merged_tokens = greedy_tokens(run.merged, run.inputs, n)
    run.checks += [
        close_check(
            "merge_logits",
            max_abs_diff(expected, run.merged_logits),
            MERGE_TOLERANCE,
            "max |logits| difference, merged model vs base + adapter (float32)",
        ),
        same_tokens_check("merge_greedy_generation", expected_tokens, run.merged_tokens, "greedy tokens"),
    ]
    require_passed(run.checks)


def _check_round_trip(run: _Run, reloaded: Any, what: str) -> None:
    """The written folder, reloaded, must hold exactly the merged weights (and, in float32, compute the same)."""
    import torch

    written = reloaded.state_dict()
    worst = max(
        float((written[name].float() - tensor.to(run.source.dtype).float()).abs().max())
        if name in written
        else math.inf
        for name, tensor in run.merged.state_dict().items()
    )
    run.checks.append(
        close_check(
            f"{what}_reload_weights", worst, 0.0, f"max |weight| difference, reloaded folder vs merged ({run.dtype})"
        )
    )
    if run.source.dtype != torch.float32:
        run.messages.append(f"{run.dtype} export: the merge was checked in float32 and the written weights bit for bit")
        return
    run.checks += [
        close_check(
            f"{what}_reload_logits",
            max_logit_diff(run.merged_logits, logits_of(reloaded), run.inputs),
            ROUND_TRIP_TOLERANCE,
            f"max |logits| difference, reloaded {what} folder vs the model that wrote it",
        ),
        same_tokens_check(
            f"{what}_reload_greedy_generation",
            run.merged_tokens,
            greedy_tokens(reloaded, run.inputs, run.config.verify_max_new_tokens),
            "greedy tokens of the reloaded folder",
        ),
    ]


def _save_and_reload(run: _Run, folder: Path, what: str) -> Any:
    """Write the merged model to `folder`, check the reloaded copy, and return it."""
    from transformers import AutoModelForCausalLM

    run.dtype = str(run.source.dtype).removeprefix("torch.")
    save_hf_folder(run.merged, run.source.tokenizer, folder, export_size=run.config.export_size, dtype=run.source.dtype)
    reloaded = AutoModelForCausalLM.from_pretrained(folder, dtype=run.source.dtype).eval()
    _check_round_trip(run, reloaded, what)
    return reloaded


def _write_merged(run: _Run) -> None:
    if run.config.export_quantization_bit:
        _write_quantized(run)
        return
    run.progress(f"writing safetensors shards of at most {run.config.export_size} GB")
    _save_and_reload(run, run.out, "merged")


def _write_quantized(run: _Run) -> None:
    """Quantize a full-precision copy in `work`, reload the result, and measure what quantization cost."""
    config = run.config
    bits, method = config.export_quantization_bit or 0, config.export_quantization_method
    texts = calibration_texts(config.export_quantization_dataset)
    full = run.work / "full-precision"
    # The baseline is the full-precision folder as written (in the base's dtype), not the float32 merge.
    ppl_before, tokens = perplexity(_save_and_reload(run, full, "merged"), run.source.tokenizer, texts)
    run.progress(f"quantizing to {bits} bits with {method.value}")
    quantize_folder(
        full,
        run.out,
        bits=bits,
        method=method,
        tokenizer=run.source.tokenizer,
        texts=texts,
        export_size=config.export_size,
    )
    quantized = load_quantized(run.out, method)
    generated = greedy_tokens(quantized, run.inputs, config.verify_max_new_tokens)
    ppl_after, _ = perplexity(quantized, run.source.tokenizer, texts)
    short = sum(len(g) != config.verify_max_new_tokens for g in generated)
    run.checks.append(
        VerificationCheck(
            name="quantized_reload_generate",
            passed=short == 0 and math.isfinite(ppl_after),
            value=float(short),
            tolerance=0.0,
            detail=f"reloaded quantized model: prompts that failed to generate {config.verify_max_new_tokens} tokens",
        )
    )
    run.quantization = QuantizationReport(
        method=method,
        bits=bits,
        size_before_bytes=weight_bytes(full),
        size_after_bytes=weight_bytes(run.out),
        perplexity_before=ppl_before,
        perplexity_after=ppl_after,
        perplexity_change=ppl_after - ppl_before,
        calibration_tokens=tokens,
        reload=RELOAD_HINTS[method],
    )
    if method is QuantizationMethod.QUANTO:
        run.messages.append("optimum-quanto writes its own shards: export_size does not apply to quantized weights")


def _write_onnx(run: _Run) -> None:
    run.progress("exporting ONNX with past key values")
    path = export_onnx(run.merged, run.out)
    run.progress("checking the ONNX file in onnxruntime")
    run.checks += check_onnx(path, run.merged, run.inputs, run.merged_tokens, run.config.verify_max_new_tokens)
    _write_side_files(run)
    run.messages.append(
        "ONNX inputs: input_ids, attention_mask, position_ids, past_key_values.{i}.key/value "
        "(batch, kv_heads, past, head_dim); outputs: logits, present.{i}.key/value. "
        "Next steps: OpenVINO `ovc model.onnx`, TensorRT `trtexec --onnx=model.onnx` where installed"
    )


def _write_torchscript(run: _Run) -> None:
    run.progress("tracing TorchScript")
    path = export_torchscript(run.merged, run.out)
    run.checks += check_torchscript(
        path, run.merged_logits, run.inputs, run.merged_tokens, run.config.verify_max_new_tokens
    )
    _write_side_files(run)
    run.messages.append("TorchScript module maps input_ids (batch, seq) to logits; it has no KV cache")


def _write_side_files(run: _Run) -> None:
    """Config, generation config and tokenizer beside a single-file export, so it can be served as is."""
    run.merged.config.save_pretrained(run.out)
    run.merged.generation_config.save_pretrained(run.out)
    run.source.tokenizer.save_pretrained(run.out)


def _write_ollama(run: _Run) -> None:
    _save_and_reload(run, run.out, "merged")
    write_modelfile(run.out, run.source.tokenizer, run.ollama_system)
    run.messages.append(
        "run `ollama create NAME -f Modelfile` inside this folder; Ollama imports safetensors for the "
        "architectures it supports (Llama, Mistral, Gemma, Phi-3, Qwen2, ...) and can quantize with "
        "`--quantize q4_K_M`; tool calls in the chat template are not translated"
    )


def _write_prompt_adapter(run: _Run) -> None:
    """Prompt-learning adapters cannot be merged: export the adapter itself and check it reloads."""
    from peft import PeftModel

    adapter, config = run.source.adapter, run.config
    assert adapter is not None
    if config.export_format is not ExportFormat.MERGED or config.export_quantization_bit:
        raise ExportError(
            f"{adapter.method} adapters cannot be merged into the base weights, so "
            f"export_format={config.export_format.value}"
            + (
                f" with export_quantization_bit={config.export_quantization_bit}"
                if config.export_quantization_bit
                else ""
            )
            + " (which needs merged weights) is not possible; use export_format=merged to export the adapter"
        )
    run.messages.append(
        f"{adapter.method} adapters cannot be merged into the base weights (they add virtual tokens / "
        "key-values, not weight deltas): exported as a PEFT adapter; load it with "
        "PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_model), export_dir)"
    )
    run.progress(run.messages[-1])
    n = config.verify_max_new_tokens
    expected = [logits_of(run.source.model)(ids) for ids in run.inputs]
    expected_tokens = greedy_tokens(run.source.model, run.inputs, n)
    run.source.model.save_pretrained(run.out)
    run.source.tokenizer.save_pretrained(run.out)
    reloaded = PeftModel.from_pretrained(load_base(run.source.base_source, run.source.model.dtype), run.out).eval()
    run.checks += [
        close_check(
            "adapter_reload_logits",
            max_logit_diff(expected, logits_of(reloaded), run.inputs),
            ROUND_TRIP_TOLERANCE,
            "max |logits| difference, base + exported adapter vs base + source adapter",
        ),
        same_tokens_check(
            "adapter_reload_greedy_generation", expected_tokens, greedy_tokens(reloaded, run.inputs, n), "greedy tokens"
        ),
    ]


def _manifest(run: _Run, export_id: str) -> ExportManifest:
    adapter = run.source.adapter
    return ExportManifest(
        export_id=export_id,
        source_job_id=run.config.source_job_id,
        base_model=run.source.base_source,
        adapter=run.config.adapter_name_or_path,
        method=adapter.method if adapter else "full",
        merged=bool(adapter and not adapter.prompt_learning),
        format=run.config.export_format,
        template=run.config.template,
        dtype=run.dtype,
        quantization=run.quantization,
        files=file_entries(run.out),
        verification=run.checks,
        messages=run.messages,
        config=run.config.model_dump(mode="json"),
    )


def export_to_dir(
    config: ExportConfig, export_dir: Path, *, export_id: str | None = None, progress: Progress | None = None
) -> ExportManifest:
    """Build the export beside `export_dir` and move it into place only once it is complete and verified.

    An existing `export_dir` is replaced; on any failure it is left exactly as it was (or absent).
    """
    export_dir = Path(export_dir).expanduser().resolve()
    if export_dir.exists() and not export_dir.is_dir():
        raise ExportError(f"export_dir {str(export_dir)!r} is a file")
    for name, source in (
        ("model_name_or_path", config.model_name_or_path),
        ("adapter_name_or_path", config.adapter_name_or_path),
    ):
        if (
            source
            and Path(source).expanduser().exists()
            and Path(source).expanduser().resolve().is_relative_to(export_dir)
        ):
            raise ExportError(f"export_dir {str(export_dir)!r} would replace {name} {source!r}: choose another folder")
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    # Same parent, same filesystem: the final rename is atomic.
    scratch = Path(tempfile.mkdtemp(dir=export_dir.parent, prefix=f".{export_dir.name}.tmp-"))
    try:
        manifest = build_export(
            config,
            scratch / "export",
            scratch / "work",
            export_id=export_id or f"export-{uuid.uuid4().hex[:12]}",
            progress=progress,
        )
        if export_dir.exists():
            os.rename(export_dir, scratch / "previous")
        os.rename(scratch / "export", export_dir)
        return manifest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
