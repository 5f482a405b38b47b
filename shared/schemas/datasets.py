"""The data service's contract: how to ask for a prepared dataset, and the manifest of what was written.

Key names follow LLaMA-Factory's data arguments, so a user's existing YAML works unchanged. A prepared dataset
is immutable: its id is a content hash of the raw inputs, the options that shape the output and the
tokenizer, and it lives at `users/{user}/datasets/{dataset_id}/`:

- `{split}.parquet` with int32 list columns `input_ids` and `labels` (-100 where no loss is taken); for the
  preference stages (`rm`, `dpo`) `chosen_input_ids`, `chosen_labels`, `rejected_input_ids`, `rejected_labels`;
- `{split}.records.jsonl`: the same examples in the canonical record form of `shared.schemas.records`;
- `manifest.json`: a `PreparedDataset`.

`data.prepare` also copies the manifest to `users/{user}/jobs/{job_id}/dataset/manifest.json`, the fixed key
a chained training task reads.

With `augment.paraphrase_model`, the chain runs `data.plan_paraphrases` first (requests at
`users/{user}/jobs/{job_id}/paraphrase/requests.jsonl`), then `inference.generate` (responses at
`.../paraphrase/responses.jsonl`), which `data.prepare` merges as variants.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IGNORE_INDEX = -100
PREPARED_MANIFEST = "manifest.json"
JOB_MANIFEST_NAME = "dataset/manifest.json"  # under users/{user}/jobs/{job_id}/
PARAPHRASE_REQUESTS_NAME = "paraphrase/requests.jsonl"  # under users/{user}/jobs/{job_id}/
PARAPHRASE_RESPONSES_NAME = "paraphrase/responses.jsonl"  # under users/{user}/jobs/{job_id}/
DEFAULT_PARAPHRASE_PROMPT = (
    "Rewrite the following request so that it asks for exactly the same thing in different words. Keep every "
    "detail, name and number. Reply with the rewritten request only.\n\n{instruction}"
)

Stage = Literal["sft", "pt", "rm", "dpo"]
MixStrategy = Literal["concat", "interleave_under", "interleave_over"]


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class CleaningConfig(BaseModel):
    """What cleaning does before rendering; each step reports how many records it changed or removed."""

    model_config = ConfigDict(extra="forbid")

    unicode_form: Literal["NFC", "NFKC"] | None = Field(
        "NFC", description="Unicode normalisation of every text field (NFKC also folds full-width forms)."
    )
    strip_whitespace: bool = Field(True, description="Trim text fields and collapse runs of spaces and tabs.")
    min_chars: int = Field(1, ge=0, description="Drop records whose response (or text) is shorter than this.")
    max_chars: int | None = Field(
        None, ge=1, description="Drop records whose text fields together are longer than this many characters."
    )
    dedup: Literal["none", "exact", "near"] = Field(
        "exact", description="Remove exact duplicates, or also near-duplicates (MinHash LSH)."
    )
    near_dup_threshold: float = Field(
        0.85, gt=0, le=1, description="Estimated Jaccard similarity above which two records count as duplicates."
    )
    mask_pii: bool = Field(False, description="Replace e-mail addresses, phone numbers and ID numbers by tags.")


class AugmentConfig(BaseModel):
    """Seeded augmentation: rule-based variants and model paraphrases of each record, added after the original."""

    model_config = ConfigDict(extra="forbid")

    system_prompts: list[str] = Field(
        default_factory=list, description="System prompts to draw from for variants (one drawn per variant)."
    )
    instruction_templates: list[str] = Field(
        default_factory=list,
        description="Templates for the first user turn, each containing `{instruction}` (one drawn per variant).",
    )
    variants: int = Field(1, ge=0, le=16, description="Rule-based variants added per record.")
    paraphrase_model: str | None = Field(
        None,
        description="Model that paraphrases the first user turn through the inference service: a local folder, "
        "hub id, `store://users/...` prefix or your `ft:` name; None: no paraphrasing.",
    )
    paraphrase_adapter: str | None = Field(
        None, description="LoRA adapter run on `paraphrase_model`: a `store://users/...` prefix or your `ft:` name."
    )
    paraphrases: int = Field(1, ge=1, le=8, description="Paraphrases asked for per picked record.")
    paraphrase_fraction: float = Field(
        1.0, gt=0, le=1, description="Share of conversations picked for paraphrasing (seeded, by content)."
    )
    paraphrase_prompt: str = Field(
        DEFAULT_PARAPHRASE_PROMPT,
        description="The user message sent to the paraphrase model; `{instruction}` is the first user turn.",
    )
    paraphrase_max_new_tokens: int = Field(
        256, ge=1, le=8192, description="Longest paraphrase; one cut at this length is dropped as truncated."
    )
    paraphrase_temperature: float = Field(
        0.7, ge=0, le=2, description="Sampling temperature; above 0 so several paraphrases of a record differ."
    )
    paraphrase_top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass for paraphrasing.")

    @property
    def paraphrasing(self) -> bool:
        """Whether model paraphrases are asked for."""
        return self.paraphrase_model is not None

    @field_validator("instruction_templates")
    @classmethod
    def _templates_have_slot(cls, value: list[str]) -> list[str]:
        for template in value:
            if "{instruction}" not in template:
                raise ValueError(f"instruction template {template!r} lacks the `{{instruction}}` placeholder")
        return value

    @field_validator("paraphrase_prompt")
    @classmethod
    def _prompt_has_slot(cls, value: str) -> str:
        if "{instruction}" not in value:
            raise ValueError("paraphrase_prompt lacks the `{instruction}` placeholder")
        return value

    @model_validator(mode="after")
    def _check_paraphrasing(self) -> AugmentConfig:
        if self.paraphrase_model is None:
            stray = sorted(f for f in self.model_fields_set if f.startswith("paraphrase") and f != "paraphrase_model")
            if stray:
                raise ValueError(f"{stray[0]}: set paraphrase_model too, or drop the paraphrase options")
        elif self.paraphrases > 1 and self.paraphrase_temperature == 0:
            raise ValueError(
                "paraphrase_temperature: with paraphrases > 1 sample above 0, else every paraphrase of a record "
                "is the same"
            )
        return self


class PrepareConfig(BaseModel):
    """Everything `data.prepare` needs. Unknown keys are refused with the offending field named."""

    model_config = ConfigDict(extra="forbid")

    model_name_or_path: str = Field(
        description="Tokenizer source: a local folder, a hub id, or a `store://users/...` prefix."
    )
    stage: Stage = Field("sft", description="`sft` conversations, `pt` raw text, `rm`/`dpo` preference pairs.")
    dataset: list[str] = Field(
        description="Dataset names in `dataset_dir/dataset_info.json`, or file paths when no `dataset_dir` is given "
        "(a comma-separated string is accepted)."
    )
    dataset_dir: str | None = Field(
        None,
        description="Local folder or `store://users/...` prefix holding `dataset_info.json` and the files; "
        "None: the dataset names are file paths.",
    )
    template: str | None = Field(
        None, description="None: the tokenizer's own chat_template; or a LLaMA-Factory template name (`qwen`, ...)."
    )
    cutoff_len: int = Field(2048, ge=8, description="Maximum tokens per example after rendering.")
    overlong: Literal["truncate", "drop"] = Field(
        "truncate",
        description="Examples longer than `cutoff_len`: `truncate` keeps the whole turns that fit (never a "
        "response cut mid-way) and drops the record only if not even one turn fits; `drop` removes them. Both "
        "are reported.",
    )
    max_samples: int | None = Field(None, ge=1, description="Keep at most this many records per dataset.")
    val_size: float = Field(
        0.0, ge=0, description="Validation split: a fraction if below 1, else a record count (whole number)."
    )
    train_on_prompt: bool = Field(False, description="Take loss on prompt tokens too.")
    mask_history: bool = Field(False, description="Take loss only on the last assistant turn.")
    packing: bool = Field(
        False,
        description="Recorded for the training collator, which packs rows (with position_ids restarting per "
        "sequence); prepared rows are never packed here.",
    )
    mix_strategy: MixStrategy = Field(
        "concat", description="How several datasets combine: concatenated or interleaved by probability."
    )
    interleave_probs: list[float] | None = Field(
        None, description="Sampling probability per dataset for interleaving (default: equal); comma string accepted."
    )
    balance_by: str | None = Field(
        None,
        description="Raw column whose values are balanced by down-sampling every label to the rarest one's count.",
    )
    seed: int = Field(42, description="Seed for splitting, interleaving, balancing and augmentation.")
    streaming: bool = Field(
        False, description="Accepted for LLaMA-Factory compatibility: preparation always streams with bounded memory."
    )
    strict: bool = Field(False, description="Fail on the first invalid record instead of dropping and reporting it.")
    cleaning: CleaningConfig = Field(default_factory=CleaningConfig, description="Cleaning steps.")
    augment: AugmentConfig | None = Field(None, description="Rule-based variants and model paraphrases; None: off.")

    @field_validator("dataset", "interleave_probs", mode="before")
    @classmethod
    def _accept_comma_strings(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("dataset")
    @classmethod
    def _some_dataset(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one dataset")
        return value

    @model_validator(mode="after")
    def _check_cross_fields(self) -> PrepareConfig:
        if self.val_size >= 1 and self.val_size != int(self.val_size):
            raise ValueError("val_size: a count (>= 1) must be a whole number")
        if self.interleave_probs is not None:
            if len(self.interleave_probs) != len(self.dataset):
                raise ValueError("interleave_probs: give one probability per dataset")
            if abs(sum(self.interleave_probs) - 1.0) > 1e-6:
                raise ValueError("interleave_probs: probabilities must sum to 1")
        if self.stage == "pt" and self.template is not None:
            raise ValueError("template: pre-training (stage pt) renders raw text, drop the template")
        if self.stage != "sft" and self.augment is not None and self.augment.paraphrasing:
            raise ValueError(
                f"augment.paraphrase_model: only sft conversations are paraphrased, not stage {self.stage}"
            )
        return self


class Problem(BaseModel):
    """One fault in the input, located precisely enough to fix it."""

    file: str = Field(description="File name (relative to the dataset folder when there is one).")
    line: int | None = Field(None, description="1-based line (JSONL, CSV, TXT).")
    index: int | None = Field(None, description="0-based record index (JSON arrays, Parquet rows).")
    field: str | None = Field(None, description="Field at fault, as a path (`conversations[2].from`).")
    code: str = Field(description="Machine-readable kind (`invalid_json`, `unknown_role`, `too_long`, ...).")
    reason: str = Field(description="What is wrong, for a person.")


class DataReport(BaseModel):
    """What validation, cleaning and preparation found and did."""

    records_read: int = Field(0, description="Records read from the files (valid or not).")
    records_valid: int = Field(0, description="Records that passed validation.")
    records_written: int = Field(0, description="Examples written across all splits.")
    dropped: dict[str, int] = Field(default_factory=dict, description="Records dropped, by problem code.")
    cleaning: dict[str, int] = Field(default_factory=dict, description="Records changed or removed, by step.")
    truncated: int = Field(0, description="Examples shortened to `cutoff_len` at a turn boundary.")
    augmented: int = Field(0, description="Variants added by augmentation (paraphrases included).")
    paraphrased: int = Field(0, description="Paraphrase variants added.")
    paraphrases_dropped: dict[str, int] = Field(
        default_factory=dict,
        description="Paraphrases not added, by reason (`empty`, `identical`, `truncated`, `duplicate`, `error`, "
        "`missing`).",
    )
    problems: list[Problem] = Field(default_factory=list, description="Located problems (first 1000).")
    problems_omitted: int = Field(0, description="Problems counted but not listed beyond the first 1000.")


class PreparedDataset(BaseModel):
    """Manifest of one prepared, immutable dataset."""

    dataset_id: str = Field(description="Content hash of raw inputs, shaping options and tokenizer.")
    stage: Stage = Field(description="Stage the rows are shaped for.")
    template: str | None = Field(description="Named template used, or None for the tokenizer's chat_template.")
    cutoff_len: int = Field(description="No row is longer than this.")
    packing: bool = Field(False, description="Whether the trainer should pack rows (never packed here).")
    tokenizer: str = Field(description="`model_name_or_path` the tokenizer came from.")
    tokenizer_fingerprint: str = Field(description="Hash of the tokenizer's vocabulary, specials and chat template.")
    splits: dict[str, str] = Field(description="Split name (`train`, `validation`) -> Parquet object key.")
    records: dict[str, str] = Field(default_factory=dict, description="Split name -> canonical JSONL object key.")
    columns: list[str] = Field(description="Parquet columns (int32 lists).")
    num_examples: dict[str, int] = Field(description="Rows per split.")
    num_tokens: dict[str, int] = Field(
        description="Tokens per split (all non-padding tokens; both sides of a preference pair)."
    )
    num_trained_tokens: dict[str, int] = Field(description="Tokens per split whose label is not -100.")
    source_files: list[str] = Field(description="Input files, as `name sha256`.")
    report: DataReport = Field(description="Validation, cleaning and truncation summary.")
    config: dict[str, Any] = Field(description="The resolved PrepareConfig.")


class DataCheckConfig(BaseModel):
    """Config of `data.validate` and `data.clean`: which datasets, read how, cleaned how."""

    model_config = ConfigDict(extra="forbid")

    dataset: list[str] = Field(description="Dataset names (with `dataset_dir`) or file paths; comma string accepted.")
    dataset_dir: str | None = Field(None, description="Local folder or `store://users/...` prefix with the registry.")
    stage: Stage = Field("sft", description="Which parts a record must have (`pt`: text; `rm`/`dpo`: pairs).")
    strict: bool = Field(False, description="Fail on the first invalid record.")
    model_name_or_path: str | None = Field(None, description="Tokenizer for the token-length histogram (optional).")
    template: str | None = Field(None, description="Template used to render records for token lengths.")
    cutoff_len: int | None = Field(
        None, ge=8, description="With a tokenizer: report records whose rendered length exceeds this."
    )
    cleaning: CleaningConfig = Field(default_factory=CleaningConfig, description="Cleaning steps (`data.clean`).")

    @field_validator("dataset", mode="before")
    @classmethod
    def _accept_comma_strings(cls, value: Any) -> Any:
        return _split_commas(value)


class LengthStats(BaseModel):
    """Distribution of one length (characters or tokens) over records."""

    count: int = Field(0, description="Records measured.")
    min: int = Field(0, description="Shortest.")
    max: int = Field(0, description="Longest.")
    mean: float = Field(0.0, description="Average.")
    p50: int = Field(0, description="Median.")
    p95: int = Field(0, description="95th percentile.")
    histogram: dict[str, int] = Field(default_factory=dict, description="Power-of-two buckets `lo-hi` -> records.")


class DatasetStats(BaseModel):
    """Summary statistics of the valid records of a dataset."""

    records: int = Field(0, description="Valid records.")
    kinds: dict[str, int] = Field(default_factory=dict, description="Records by kind (conversation, text, preference).")
    turns: dict[str, int] = Field(default_factory=dict, description="Conversations by number of user turns.")
    with_tools: int = Field(0, description="Conversations that define tools or call them.")
    languages: dict[str, int] = Field(default_factory=dict, description="Records by dominant script (cheap detector).")
    duplicates: int = Field(0, description="Exact duplicates of an earlier record.")
    chars: LengthStats = Field(default_factory=LengthStats, description="Characters per record.")
    tokens: LengthStats | None = Field(None, description="Tokens per rendered record, with the chosen tokenizer.")
