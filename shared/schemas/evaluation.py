"""Contracts of the evaluation service: the job config, per-sample and aggregate results, comparisons, reviews."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class BuiltinMetric(StrEnum):
    """Metrics the service computes itself. Anything else in `metrics` is a custom metric."""

    BLEU = "bleu"  # corpus BLEU through sacrebleu
    CHRF = "chrf"  # corpus chrF through sacrebleu
    BLEU4 = "bleu-4"  # LLaMA-Factory's character-level sentence BLEU-4, averaged
    ROUGE = "rouge"  # rouge-1, rouge-2, rouge-l F1 through rouge-score
    EXACT_MATCH = "exact_match"
    NORMALIZED_MATCH = "normalized_match"
    PERPLEXITY = "perplexity"
    MC_ACCURACY = "mc_accuracy"


GENERATION_METRICS = frozenset(
    {
        BuiltinMetric.BLEU,
        BuiltinMetric.CHRF,
        BuiltinMetric.BLEU4,
        BuiltinMetric.ROUGE,
        BuiltinMetric.EXACT_MATCH,
        BuiltinMetric.NORMALIZED_MATCH,
    }
)


# An entry-point name (`my-metric`) or a dotted path (`pkg.module:function`); resolved when the job runs.
_METRIC_REF = re.compile(r"[A-Za-z_][\w.-]*(:[A-Za-z_]\w*)?")


def _split_list(value: Any) -> Any:
    # LLaMA-Factory YAML writes lists as comma-separated strings (`eval_dataset: a,b`).
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class EvalConfig(BaseModel):
    """One evaluation run. Keys follow LLaMA-Factory's names where one exists."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key must fail, not be silently ignored

    model_name_or_path: str = Field(description="Base model: local folder, hub id, `store://` prefix or `ft:` name.")
    adapter_name_or_path: str | None = Field(
        default=None, description="LoRA adapter on top of the base: local folder, `store://` prefix or `ft:` name."
    )
    eval_dataset: list[str] = Field(
        default_factory=list,
        description="Canonical JSONL records (object keys for the task; dataset names or files for the CLI).",
    )
    dataset_dir: str = Field(default="data", description="CLI only: folder with dataset_info.json for dataset names.")
    template: str | None = Field(
        default=None, description="`raw` for no chat template; any other value uses the tokenizer's own template."
    )
    metrics: list[str] = Field(
        default_factory=lambda: ["bleu", "chrf", "bleu-4", "rouge", "exact_match"],
        description="Built-in metric names, entry-point names (group `tuneflow.metrics`) or `module:function` paths.",
    )
    language: Literal["auto", "en", "zh"] = Field(
        default="auto", description="Reference language for BLEU/ROUGE tokenization; `auto` detects CJK text."
    )
    max_samples: int | None = Field(
        default=None, ge=1, description="Evaluate only the first N records of each dataset (as LLaMA-Factory)."
    )
    max_new_tokens: int = Field(default=128, ge=1, description="Generation length limit per sample.")
    batch_size: int = Field(default=8, ge=1, description="Prompts per forward pass (generation and scoring).")
    cutoff_len: int = Field(default=1024, ge=8, description="Max prompt tokens; also the perplexity window length.")
    ppl_stride: int | None = Field(
        default=None,
        ge=1,
        description="Sliding-window step for perplexity of long texts; default cutoff_len // 2 (smaller: more context).",
    )
    do_sample: bool = Field(default=False, description="Sample instead of greedy decoding (greedy is reproducible).")
    temperature: float = Field(default=1.0, gt=0, description="Sampling temperature (only with do_sample).")
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus sampling mass (only with do_sample).")
    seed: int = Field(default=42, description="Seed for sampling and for few-shot/review draws.")
    stop_words: list[str] = Field(default_factory=list, description="Generation stops at (and drops) these strings.")
    mc_dataset: str | None = Field(
        default=None, description="Multiple-choice question file (CSV/JSON/JSONL: question, A..D, answer)."
    )
    mc_dev_dataset: str | None = Field(
        default=None, description="Few-shot examples file; default: other questions of `mc_dataset`."
    )
    mc_n_shot: int = Field(default=0, ge=0, le=25, description="Solved examples put before each question.")
    mc_lang: Literal["en", "zh"] = Field(default="en", description="Prompt wording of multiple-choice questions.")
    mc_subject: str = Field(default="general knowledge", description="Subject named in the multiple-choice prompt.")
    output_dir: str | None = Field(default=None, description="CLI only: folder for results.json and predictions.jsonl.")
    model_label: str | None = Field(default=None, description="Name shown in comparisons; default: model/adapter.")

    @field_validator("eval_dataset", "metrics", "stop_words", mode="before")
    @classmethod
    def _comma_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @model_validator(mode="after")
    def _check_inputs(self) -> EvalConfig:
        if not self.metrics:
            raise ValueError("metrics: name at least one metric")
        builtin = {m.value for m in BuiltinMetric}
        wants_mc = BuiltinMetric.MC_ACCURACY in self.metrics
        if wants_mc and not self.mc_dataset:
            raise ValueError("mc_dataset: required when metrics includes mc_accuracy")
        needs_records = any(m != BuiltinMetric.MC_ACCURACY for m in self.metrics)
        if needs_records and not self.eval_dataset:
            raise ValueError("eval_dataset: required for every metric except mc_accuracy")
        for name in self.metrics:
            if name not in builtin and not _METRIC_REF.fullmatch(name):
                raise ValueError(
                    f"metrics: {name!r} is neither a built-in ({sorted(builtin)}), an entry-point name "
                    "nor a `module:function` path"
                )
        if self.ppl_stride is not None and self.ppl_stride >= self.cutoff_len:
            raise ValueError("ppl_stride: must be smaller than cutoff_len (windows must overlap to give context)")
        return self

    @property
    def label(self) -> str:
        """How this model is named in comparisons and reviews."""
        if self.model_label:
            return self.model_label
        return self.adapter_name_or_path or self.model_name_or_path


class SampleResult(BaseModel):
    """One evaluated record (one line of predictions.jsonl)."""

    index: int = Field(description="Position in the evaluation set; the same index means the same prompt.")
    prompt: str = Field(description="The last user turn, for display.")
    messages: list[dict[str, Any]] = Field(default_factory=list, description="All prompt turns sent to the model.")
    reference: str = Field(description="The expected response.")
    prediction: str = Field(description="What the model generated (after stop words).")
    scores: dict[str, float] = Field(default_factory=dict, description="Per-sample metric values.")
    output_tokens: int = Field(default=0, description="Generated token count.")
    truncated: bool = Field(default=False, description="Generation hit max_new_tokens without finishing.")


class LengthBucket(BaseModel):
    """Mean score of the samples whose reference length falls in one range."""

    range: str = Field(description="Reference length range in characters, e.g. `0-50`.")
    count: int = Field(description="Samples in the bucket.")
    mean_score: float = Field(description="Mean of the primary per-sample score.")


class ErrorAnalysis(BaseModel):
    """Where a model fails: worst samples, score by length, empty or truncated outputs."""

    primary_metric: str = Field(description="Per-sample score the analysis ranks by.")
    worst: list[SampleResult] = Field(default_factory=list, description="Lowest-scoring samples, worst first.")
    by_length: list[LengthBucket] = Field(default_factory=list, description="Score by reference length.")
    empty_indices: list[int] = Field(default_factory=list, description="Samples with an empty prediction.")
    truncated_indices: list[int] = Field(default_factory=list, description="Samples cut off by max_new_tokens.")


class EvalResults(BaseModel):
    """Everything results.json holds."""

    job_id: str = Field(description="Evaluation job.")
    model: str = Field(description="Label of the evaluated model.")
    metrics: dict[str, float] = Field(description="Aggregate scores keyed by metric name.")
    num_samples: int = Field(description="Generation samples evaluated.")
    analysis: ErrorAnalysis | None = Field(default=None, description="Error analysis of the generation samples.")
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per phase.")
    config: dict[str, Any] = Field(default_factory=dict, description="The resolved config.")


class Comparison(BaseModel):
    """Side-by-side scores of models evaluated on the same set."""

    models: list[str] = Field(description="Model labels; the first is the baseline.")
    job_ids: list[str] = Field(description="Evaluation jobs, in the order of `models`.")
    metrics: dict[str, dict[str, float]] = Field(description="metric -> model -> aggregate score.")
    deltas: dict[str, dict[str, float]] = Field(description="metric -> model -> score minus the baseline's.")
    wins: dict[str, dict[str, int]] = Field(
        description="model -> {better, same, worse} sample counts against the baseline on `primary_metric`."
    )
    primary_metric: str | None = Field(default=None, description="Per-sample score used for `wins`.")
    samples: list[dict[str, Any]] = Field(
        default_factory=list, description="Prompt, reference and each model's output."
    )


class ReviewItem(BaseModel):
    """One prompt as a reviewer sees it: outputs under neutral slot names, in shuffled order."""

    item_id: str = Field(description="Stable id of the item within the review.")
    prompt: str = Field(description="The prompt.")
    reference: str = Field(default="", description="The reference answer, if the review shows it.")
    outputs: dict[str, str] = Field(description="slot (`A`, `B`, ...) -> output text; models stay hidden.")


class ReviewSession(BaseModel):
    """What reviewers are shown. The slot -> model mapping is stored apart and never sent to them."""

    review_id: str = Field(description="Review id.")
    title: str = Field(default="", description="What is being reviewed.")
    items: list[ReviewItem] = Field(description="Items to rate.")


class Rating(BaseModel):
    """One reviewer's scores for one output."""

    reviewer: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Reviewer id (letters, digits, '_', '-', '.')."
    )
    item_id: str = Field(description="Reviewed item.")
    slot: str = Field(description="Which output of the item (`A`, `B`, ...).")
    quality: int = Field(ge=1, le=5, description="Overall generation quality, 1-5.")
    accuracy: int = Field(ge=1, le=5, description="Factual/task accuracy, 1-5.")
    fluency: int = Field(ge=1, le=5, description="Language fluency, 1-5.")
    comment: str = Field(default="", max_length=2000, description="Optional free text.")


class ModelReviewSummary(BaseModel):
    """Aggregated ratings of one model."""

    model: str = Field(description="Model label (revealed only in the summary).")
    ratings: int = Field(description="Number of ratings.")
    reviewers: int = Field(description="Distinct reviewers.")
    mean: dict[str, float] = Field(description="Criterion -> mean score.")


class ReviewSummary(BaseModel):
    """Per-model means plus inter-reviewer agreement."""

    review_id: str = Field(description="Review id.")
    models: list[ModelReviewSummary] = Field(description="One entry per model.")
    agreement: dict[str, float | None] = Field(
        description="Criterion -> Krippendorff's alpha (interval) over outputs rated by 2+ reviewers; None if undefined."
    )
