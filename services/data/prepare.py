"""Prepare datasets for training: validate, clean, augment, mix, split, render, tokenize, write Parquet.

Read top to bottom: resolve inputs and the content-hash id -> reuse an existing prepared dataset -> pass 1
(validated, cleaned records per dataset to temporary JSONL) -> mix and pick the validation rows -> pass 2
(render, tokenize and write each split in batches) -> upload and write the manifest. Memory stays bounded
by a batch, whatever the input size.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shared.schemas.datasets import (
    JOB_MANIFEST_NAME,
    PREPARED_MANIFEST,
    DataReport,
    PrepareConfig,
    PreparedDataset,
)
from shared.storage import ObjectKind, ObjectNotFoundError, ObjectStore, get_bytes, object_key, put_bytes, upload_file

from .augmentation import augment
from .cleaning import Cleaner
from .converters import Record, RecordError
from .mixing import balanced_keep, mix_lines
from .paraphrase import Paraphrases, load_paraphrases
from .readers import Location
from .registry import DatasetAttr, dataset_label, resolve_dataset
from .rendering import Renderer
from .sources import file_sha256, local_dataset_dir
from .tokenization import Example, LabelOptions, build_example, encode_batch
from .validation import ReportBuilder, validated_records

PREPARE_VERSION = "1"  # bump when the same inputs would now give different rows
BATCH_RECORDS = 512
# Options that do not change the rows written, so they do not change the dataset id.
NOT_SHAPING = {"model_name_or_path", "streaming", "strict", "packing"}
INT_LIST = pa.list_(pa.int32())
Notify = Callable[[str, dict[str, Any]], object]


@dataclass
class Source:
    """One input dataset, resolved to a local path."""

    attr: DatasetAttr
    path: Path
    label: str
    sha256: str


@dataclass
class SplitWriter:
    """Streams one split's rows to Parquet and its canonical records to JSONL."""

    parquet: Path
    records: Path
    columns: list[str]
    writer: pq.ParquetWriter | None = None
    examples: int = 0
    tokens: int = 0
    trained: int = 0
    pending: dict[str, list[list[int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.records_file = open(self.records, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def add(self, rows: list[dict[str, list[int]]], record: Record) -> None:
        """Queue the rows one record became (several for long text) and write the record once."""
        for row in rows:
            for column in self.columns:
                self.pending.setdefault(column, []).append(row[column])
            self.examples += 1
            for ids, labels in zip(self.columns[::2], self.columns[1::2], strict=True):  # both sides of a pair
                self.tokens += len(row[ids])
                self.trained += len(row[labels]) - row[labels].count(-100)
        self.records_file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        """Write queued rows as one Parquet row group."""
        if not self.pending:
            return
        table = pa.table({c: pa.array(self.pending[c], type=INT_LIST) for c in self.columns})
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.parquet, table.schema)
        self.writer.write_table(table)
        self.pending = {}

    def close(self) -> None:
        """Finish the file (an empty split still gets a valid, empty Parquet file)."""
        self.flush()
        self.records_file.close()
        if self.writer is None:
            schema = pa.schema([(c, INT_LIST) for c in self.columns])
            self.writer = pq.ParquetWriter(self.parquet, schema)
        self.writer.close()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of everything in a tokenizer that changes token ids or rendering."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    parts = [vocab, str(tokenizer.chat_template), json.dumps(tokenizer.special_tokens_map, sort_keys=True)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def dataset_id_for(
    config: PrepareConfig, sources: list[Source], fingerprint: str, paraphrases_sha256: str | None = None
) -> str:
    """The content-hash id: identical inputs, shaping options, tokenizer and paraphrases give the identical id."""
    shaping = config.model_dump(mode="json", exclude=NOT_SHAPING)
    shaping["dataset"] = [(s.attr.model_dump(mode="json", exclude={"name", "file_name"}), s.sha256) for s in sources]
    shaping.pop("dataset_dir", None)
    if paraphrases_sha256 is not None:
        shaping["paraphrases"] = paraphrases_sha256
    payload = json.dumps([PREPARE_VERSION, shaping, fingerprint], sort_keys=True)
    return "ds-" + hashlib.sha256(payload.encode()).hexdigest()[:32]


def resolve_sources(config: PrepareConfig, dataset_dir: Path | None) -> list[Source]:
    """Each dataset's registry entry, local path and content hash."""
    sources = []
    for name in config.dataset:
        attr, path = resolve_dataset(name, dataset_dir)
        sources.append(Source(attr, path, dataset_label(attr, path, dataset_dir), file_sha256(path)))
    return sources


def cleaned_records(
    config: PrepareConfig, sources: list[Source], builder: ReportBuilder
) -> Iterator[tuple[int, Iterator[tuple[Location, Record]]]]:
    """Each source's number and its valid, cleaned records (up to `max_samples`), read one source at a time.

    Consume each source's records before asking for the next: one cleaner finds duplicates across sources.
    """
    cleaner = Cleaner(config.cleaning, builder)
    for number, source in enumerate(sources):
        records: Iterator[tuple[Location, Record]] = validated_records(
            source.path, source.attr, config.stage, builder, source.label, config.balance_by
        )
        records = cleaner.clean(records)
        if config.max_samples is not None:
            records = itertools.islice(records, config.max_samples)
        yield number, records


def load_prepared(store: ObjectStore, user_id: str, dataset_id: str) -> PreparedDataset | None:
    """The manifest of an already prepared dataset, or None."""
    try:
        raw = get_bytes(store, object_key(user_id, ObjectKind.DATASETS, dataset_id, PREPARED_MANIFEST))
    except ObjectNotFoundError:
        return None
    return PreparedDataset.model_validate_json(raw)


def prepare_dataset(
    config: PrepareConfig,
    *,
    store: ObjectStore,
    user_id: str,
    job_id: str | None = None,
    notify: Notify | None = None,
) -> PreparedDataset:
    """Prepare `config.dataset` for training and store it (or reuse the identical prepared dataset).

    Args:
        config: What to prepare and how.
        store: Where inputs (for `store://` folders) and outputs live.
        user_id: Owner; outputs go under `users/{user}/datasets/{dataset_id}/`.
        job_id: When given, the manifest is also written to `users/{user}/jobs/{job_id}/dataset/manifest.json`;
            with `augment.paraphrase_model` the job's generated paraphrases are read from its prefix.
        notify: Called with progress messages and numbers.

    Returns:
        The manifest.

    Raises:
        DataValidationError: strict mode found an invalid record.
        ValueError: nothing valid was left to write, or paraphrasing was asked for without a job.
        FileNotFoundError: the job's paraphrase responses are missing.
    """
    from shared.modelkit import load_tokenizer

    say = notify or (lambda message, data: None)
    sources = resolve_sources(config, local_dataset_dir(config.dataset_dir, store, user_id))
    tokenizer = load_tokenizer(config.model_name_or_path)
    fingerprint = tokenizer_fingerprint(tokenizer)
    paraphrases = None
    if config.augment is not None and config.augment.paraphrasing:
        paraphrases = load_paraphrases(store, user_id, job_id)
    dataset_id = dataset_id_for(config, sources, fingerprint, paraphrases.sha256 if paraphrases else None)
    manifest = load_prepared(store, user_id, dataset_id)
    if manifest is not None:
        say(f"reusing prepared dataset {dataset_id}", {"dataset_id": dataset_id, "reused": True})
    else:
        manifest = _build(config, sources, tokenizer, fingerprint, dataset_id, store, user_id, say, paraphrases)
    if job_id is not None:
        put_bytes(
            store, object_key(user_id, ObjectKind.JOBS, job_id, JOB_MANIFEST_NAME), manifest.model_dump_json().encode()
        )
    return manifest


def _build(
    config: PrepareConfig,
    sources: list[Source],
    tokenizer: Any,
    fingerprint: str,
    dataset_id: str,
    store: ObjectStore,
    user_id: str,
    say: Notify,
    paraphrases: Paraphrases | None,
) -> PreparedDataset:
    renderer = Renderer(tokenizer, config.template, chat=config.stage != "pt")
    builder = ReportBuilder(config.strict)
    with tempfile.TemporaryDirectory(prefix="tuneflow-prepare-") as tmp_name:
        tmp = Path(tmp_name)
        staged, keeps, total = _stage_sources(config, sources, builder, tmp, paraphrases)
        say("validated and cleaned", _summary(builder.report))
        lines = mix_lines(staged, keeps, config.mix_strategy, config.interleave_probs, config.seed)
        if config.mix_strategy != "concat" and len(staged) > 1:  # interleaved length is known only after a pass
            mixed = tmp / "mixed.jsonl"
            with open(mixed, "w", encoding="utf-8") as fh:
                fh.writelines(lines)
            total = _count_lines(mixed)
            lines = (row["line"] for row in _lines(mixed))
        validation = _validation_indices(total, config.val_size, config.seed)
        splits = _write_splits(config, lines, validation, renderer, tokenizer, builder, tmp)
        report = builder.report
        if report.records_written == 0:
            raise ValueError(f"no valid examples to write: {_summary(report)}; first problems: {report.problems[:5]}")
        keys = {}
        record_keys = {}
        for name, writer in splits.items():
            keys[name] = object_key(user_id, ObjectKind.DATASETS, dataset_id, f"{name}.parquet")
            record_keys[name] = object_key(user_id, ObjectKind.DATASETS, dataset_id, f"{name}.records.jsonl")
            upload_file(store, keys[name], writer.parquet)
            upload_file(store, record_keys[name], writer.records)
    manifest = PreparedDataset(
        dataset_id=dataset_id,
        stage=config.stage,
        template=config.template,
        cutoff_len=config.cutoff_len,
        packing=config.packing,
        tokenizer=config.model_name_or_path,
        tokenizer_fingerprint=fingerprint,
        splits=keys,
        records=record_keys,
        columns=_columns(config.stage),
        num_examples={n: w.examples for n, w in splits.items()},
        num_tokens={n: w.tokens for n, w in splits.items()},
        num_trained_tokens={n: w.trained for n, w in splits.items()},
        source_files=[f"{s.label} {s.sha256}" for s in sources],
        report=report,
        config=config.model_dump(mode="json"),
    )
    put_bytes(
        store,
        object_key(user_id, ObjectKind.DATASETS, dataset_id, PREPARED_MANIFEST),
        manifest.model_dump_json(indent=2).encode(),
        "application/json",
    )
    say(f"prepared dataset {dataset_id}", {"dataset_id": dataset_id, **manifest.num_examples, **_summary(report)})
    return manifest


def _summary(report: DataReport) -> dict[str, Any]:
    return {
        "records_read": report.records_read,
        "records_valid": report.records_valid,
        "records_written": report.records_written,
        "dropped": sum(report.dropped.values()),
        "truncated": report.truncated,
        "augmented": report.augmented,
    }


def _columns(stage: str) -> list[str]:
    if stage in ("rm", "dpo"):
        return ["chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"]
    return ["input_ids", "labels"]


def _lines(path: Path) -> Iterator[dict[str, str]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            yield {"line": line}


def _stage_sources(
    config: PrepareConfig, sources: list[Source], builder: ReportBuilder, tmp: Path, paraphrases: Paraphrases | None
) -> tuple[list[Path], list[set[int] | None], int]:
    """Pass 1: each dataset's valid, cleaned (and augmented) records to a JSONL file, with locations."""
    staged: list[Path] = []
    keeps: list[set[int] | None] = []
    total = 0
    for number, records in cleaned_records(config, sources, builder):
        if config.augment is not None:
            records = augment(records, config.augment, augment_seed(config, number), builder, paraphrases)
        path = tmp / f"source-{number}.jsonl"
        labels: list[str] = []
        with open(path, "w", encoding="utf-8") as fh:
            for loc, record in records:
                if config.balance_by is not None:
                    labels.append(record.pop("label"))
                fh.write(json.dumps({"loc": [loc.file, loc.line, loc.index], "record": record}, ensure_ascii=False))
                fh.write("\n")
        keep = balanced_keep(labels, config.seed) if config.balance_by is not None else None
        if keep is not None:
            builder.count("balanced_out", len(labels) - len(keep))
        total += len(keep) if keep is not None else _count_lines(path)
        staged.append(path)
        keeps.append(keep)
    return staged, keeps, total


def augment_seed(config: PrepareConfig, number: int) -> int:
    """The seed augmentation (and the choice of records to paraphrase) uses for source `number`."""
    return config.seed + number


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


def _validation_indices(total: int, val_size: float, seed: int) -> set[int]:
    """Which of the `total` mixed records go to validation: a seeded random choice of the requested size."""
    count = int(val_size) if val_size >= 1 else round(total * val_size)
    count = min(count, max(total - 1, 0))  # training always keeps at least one example
    return set(random.Random(seed).sample(range(total), count)) if count else set()


def _write_splits(
    config: PrepareConfig,
    lines: Iterator[str],
    validation: set[int],
    renderer: Renderer,
    tokenizer: Any,
    builder: ReportBuilder,
    tmp: Path,
) -> dict[str, SplitWriter]:
    """Pass 2: render, tokenize and write the rows of each split, a batch at a time."""
    # A preference pair cut before its final response would compare nothing, so overlong pairs are dropped.
    overlong = "drop" if config.stage in ("rm", "dpo") else config.overlong
    options = LabelOptions(config.cutoff_len, config.train_on_prompt, config.mask_history, overlong)
    columns = _columns(config.stage)
    names = ["train", "validation"] if validation else ["train"]
    writers = {n: SplitWriter(tmp / f"{n}.parquet", tmp / f"{n}.records.jsonl", columns) for n in names}
    try:
        batch: list[tuple[str, dict[str, Any]]] = []
        for index, line in enumerate(lines):
            batch.append(("validation" if index in validation else "train", json.loads(line)))
            if len(batch) >= BATCH_RECORDS:
                _write_batch(batch, renderer, tokenizer, options, columns, writers, builder)
                batch = []
        _write_batch(batch, renderer, tokenizer, options, columns, writers, builder)
    finally:
        for writer in writers.values():
            writer.close()
    return writers


def _write_batch(
    batch: list[tuple[str, dict[str, Any]]],
    renderer: Renderer,
    tokenizer: Any,
    options: LabelOptions,
    columns: list[str],
    writers: dict[str, SplitWriter],
    builder: ReportBuilder,
) -> None:
    rendered: list[tuple[str, Location, Record, list[Any]]] = []
    for split, item in batch:
        loc = Location(*item["loc"])
        try:
            rendered.append((split, loc, item["record"], renderer.render_record(item["record"])))
        except (RecordError, ValueError) as exc:
            code, reason = (exc.code, exc.reason) if isinstance(exc, RecordError) else ("render_error", str(exc))
            builder.drop(loc.problem(code, reason))
    texts = [r.text for *_, renderings in rendered for r in renderings]
    encodings = iter(encode_batch(tokenizer, texts)) if texts else iter(())
    for split, loc, record, renderings in rendered:
        encoded = [next(encodings) for _ in renderings]
        try:
            examples = [build_example(enc, r, options) for enc, r in zip(encoded, renderings, strict=True)]
        except RecordError as exc:
            builder.drop(loc.problem(exc.code, exc.reason))
            continue
        rows = list(_rows(examples, columns))
        writers[split].add(rows, record)
        builder.report.records_written += len(rows)
        if any(e.truncated for group in examples for e in group):
            builder.report.truncated += 1
    for writer in writers.values():
        writer.flush()


def _rows(examples: list[list[Example]], columns: list[str]) -> Iterator[dict[str, list[int]]]:
    if len(columns) == 2:  # text or conversation: one or more rows each
        for example in examples[0]:
            yield {"input_ids": example.input_ids, "labels": example.labels}
        return
    chosen, rejected = examples[0][0], examples[1][0]
    yield {
        "chosen_input_ids": chosen.input_ids,
        "chosen_labels": chosen.labels,
        "rejected_input_ids": rejected.input_ids,
        "rejected_labels": rejected.labels,
    }
