"""Export job config (LLaMA-Factory's `export_*` keys) and the manifest every export writes."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ExportFormat(StrEnum):
    """What the export folder holds."""

    MERGED = "merged"  # Hugging Face folder: sharded safetensors + tokenizer (+ quantization)
    ONNX = "onnx"  # model.onnx with past key values, for onnxruntime
    TORCHSCRIPT = "torchscript"  # model.pt, logits only (no cache)
    OLLAMA = "ollama"  # merged safetensors + Modelfile with the chat template


class QuantizationMethod(StrEnum):
    """Libraries that quantize a merged model."""

    QUANTO = "quanto"  # optimum-quanto weight-only int8/int4: runs on any CPU
    BITSANDBYTES = "bitsandbytes"  # LLM.int8 / NF4: reload with from_pretrained
    GPTQ = "gptq"  # needs a CUDA GPU and gptqmodel


class ExportConfig(BaseModel):
    """An export job. Keys follow LLaMA-Factory's export config where it has one."""

    model_config = ConfigDict(extra="forbid")

    model_name_or_path: str | None = Field(
        None,
        description="Base model (folder, hub id or store:// prefix); default: the base named in the adapter's "
        "adapter_config.json. For a fully fine-tuned model, give its folder here and no adapter.",
    )
    adapter_name_or_path: str | None = Field(
        None, description="PEFT adapter folder or store:// prefix (e.g. a training job's final/)."
    )
    source_job_id: str | None = Field(
        None,
        description="Training job whose final/ output to export when adapter_name_or_path and model_name_or_path "
        "are unset; always recorded in the manifest.",
    )
    template: str | None = Field(
        None,
        description="LLaMA-Factory chat template name, recorded in the manifest; the tokenizer's own chat "
        "template is what gets exported.",
    )
    export_dir: str | None = Field(
        None, description="Local folder the CLI writes the export to (replaced atomically). Workers ignore it."
    )
    export_size: float = Field(5.0, gt=0, description="Largest safetensors shard in GB (1e9 bytes); fractions allowed.")
    export_quantization_bit: Literal[4, 8] | None = Field(
        None, description="Quantize the merged weights to 8 or 4 bits (export_format=merged only)."
    )
    export_quantization_method: QuantizationMethod = Field(
        QuantizationMethod.QUANTO, description="quanto (CPU-friendly), bitsandbytes, or gptq (CUDA + gptqmodel)."
    )
    export_quantization_dataset: str | None = Field(
        None,
        description="Text file (one passage per blank-line-separated block) to measure perplexity and calibrate "
        "GPTQ; default: a small built-in English sample.",
    )
    export_format: ExportFormat = Field(ExportFormat.MERGED, description="merged, onnx, torchscript or ollama.")
    verify_max_new_tokens: int = Field(
        8, ge=1, le=64, description="Greedy tokens generated to compare the export with its source."
    )

    @model_validator(mode="after")
    def _check_combination(self) -> ExportConfig:
        if not (self.model_name_or_path or self.adapter_name_or_path or self.source_job_id):
            raise ValueError("set model_name_or_path, adapter_name_or_path or source_job_id: nothing to export")
        if self.export_quantization_bit and self.export_format is not ExportFormat.MERGED:
            raise ValueError(
                f"export_quantization_bit is not supported with export_format={self.export_format.value}: "
                "quantization writes a Hugging Face folder (export_format=merged); for Ollama use "
                "`ollama create --quantize`"
            )
        return self


class ManifestFile(BaseModel):
    """One file of the export."""

    path: str = Field(description="Path relative to the export folder.")
    bytes: int = Field(description="Size.")
    sha256: str = Field(description="Hex SHA-256 of the content.")


class VerificationCheck(BaseModel):
    """One numerical comparison of the export against its source."""

    name: str = Field(description="What was compared, e.g. `merge_logits`, `onnx_logits`, `greedy_generation`.")
    passed: bool = Field(description="Whether the value is within tolerance.")
    value: float | None = Field(None, description="Measured figure (max abs difference, mismatching tokens...).")
    tolerance: float | None = Field(None, description="Largest value that passes.")
    detail: str = Field("", description="What the figure means.")


class QuantizationReport(BaseModel):
    """Effect of quantization on size and quality."""

    method: QuantizationMethod = Field(description="Library used.")
    bits: int = Field(description="Weight bits.")
    size_before_bytes: int = Field(description="Weight files of the full-precision merged model.")
    size_after_bytes: int = Field(description="Weight files of the quantized model.")
    perplexity_before: float = Field(description="Perplexity of the full-precision model on the calibration set.")
    perplexity_after: float = Field(description="Perplexity of the reloaded quantized model on the same set.")
    perplexity_change: float = Field(description="perplexity_after - perplexity_before.")
    calibration_tokens: int = Field(description="Tokens the perplexity was measured on.")
    reload: str = Field(description="How to load the quantized folder.")


class ExportManifest(BaseModel):
    """`manifest.json`: what an export is, where it came from, and how it was checked."""

    schema_version: int = Field(1, description="Manifest format version.")
    export_id: str = Field(description="Export job id (or the CLI's run id).")
    source_job_id: str | None = Field(None, description="Training job the adapter came from, if known.")
    base_model: str = Field(description="Base model the adapter was applied to.")
    adapter: str | None = Field(None, description="Adapter exported, if any.")
    method: str = Field(description="lora, dora, prefix_tuning, ..., or `full` for a model without adapter.")
    merged: bool = Field(description="Whether the adapter was merged into the base weights.")
    format: ExportFormat = Field(description="Export format.")
    template: str | None = Field(None, description="Chat template name from the config.")
    dtype: str = Field(description="Dtype of the exported floating-point weights.")
    quantization: QuantizationReport | None = Field(None, description="Set when the weights were quantized.")
    files: list[ManifestFile] = Field(default_factory=list, description="Every file except manifest.json.")
    verification: list[VerificationCheck] = Field(default_factory=list, description="Checks run; all passed.")
    messages: list[str] = Field(default_factory=list, description="Notes for the user (limits, warnings).")
    config: dict[str, Any] = Field(default_factory=dict, description="The resolved export config.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="When it was written.")
