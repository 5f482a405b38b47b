"""Validate (with statistics) and clean datasets without preparing them: what `data.validate` and `data.clean` run."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared.schemas.datasets import DataCheckConfig, DataReport, DatasetStats

from .cleaning import Cleaner
from .converters import Record, RecordError
from .readers import Location
from .registry import dataset_label, resolve_dataset
from .rendering import Renderer
from .sources import local_dataset_dir
from .stats import StatsCollector
from .tokenization import encode_batch
from .validation import ReportBuilder, validated_records

TOKEN_BATCH = 256


def _validated(
    config: DataCheckConfig, name: str, dataset_dir: Path | None, builder: ReportBuilder
) -> Iterator[tuple[Location, Record]]:
    attr, path = resolve_dataset(name, dataset_dir)
    return validated_records(path, attr, config.stage, builder, dataset_label(attr, path, dataset_dir))


def validate_dataset(config: DataCheckConfig, *, store: Any, user_id: str) -> tuple[DataReport, DatasetStats]:
    """Check every record and summarise the valid ones (token lengths when a tokenizer is given).

    Args:
        config: Which datasets, and how strictly.
        store: Object store, for `store://` dataset folders.
        user_id: Owner of the `store://` folder.

    Returns:
        The problem report and the statistics.
    """
    builder = ReportBuilder(config.strict)
    collector = StatsCollector()
    renderer = _renderer(config)
    pending: list[tuple[Location, Record]] = []
    dataset_dir = local_dataset_dir(config.dataset_dir, store, user_id)
    records = itertools.chain.from_iterable(_validated(config, n, dataset_dir, builder) for n in config.dataset)
    for loc, record in records:
        collector.add(record)
        if renderer is not None:
            pending.append((loc, record))
            if len(pending) >= TOKEN_BATCH:
                _measure(renderer, pending, collector, builder, config.cutoff_len)
                pending = []
    if renderer is not None:
        _measure(renderer, pending, collector, builder, config.cutoff_len)
    return builder.report, collector.result()


def _renderer(config: DataCheckConfig) -> Renderer | None:
    if config.model_name_or_path is None:
        return None
    from shared.modelkit import load_tokenizer

    return Renderer(load_tokenizer(config.model_name_or_path), config.template, chat=config.stage != "pt")


def _measure(
    renderer: Renderer,
    pending: list[tuple[Location, Record]],
    collector: StatsCollector,
    builder: ReportBuilder,
    cutoff_len: int | None,
) -> None:
    rendered: list[tuple[Location, str]] = []
    for loc, record in pending:
        try:
            rendered.append((loc, renderer.render_record(record)[0].text))
        except RecordError as exc:
            builder.drop(loc.problem(exc.code, exc.reason))
    if not rendered:
        return
    lengths = [len(e.ids) for e in encode_batch(renderer.tokenizer, [text for _, text in rendered])]
    collector.add_token_lengths(lengths)
    for (loc, _), length in zip(rendered, lengths, strict=True):
        if cutoff_len is not None and length > cutoff_len:
            reason = f"{length} tokens exceed cutoff_len {cutoff_len}; prepare keeps only the whole turns that fit"
            builder.drop(loc.problem("too_long", reason))


def clean_dataset(
    config: DataCheckConfig, *, store: Any, user_id: str, out_dir: Path
) -> tuple[DataReport, dict[str, Path]]:
    """Validate and clean each dataset, writing the surviving records as canonical JSONL.

    Args:
        config: Which datasets and which cleaning steps.
        store: Object store, for `store://` dataset folders.
        user_id: Owner of the `store://` folder.
        out_dir: Folder for `{dataset}.jsonl` outputs.

    Returns:
        The report (with per-step counts) and the file written per dataset name.
    """
    builder = ReportBuilder(config.strict)
    cleaner = Cleaner(config.cleaning, builder)
    dataset_dir = local_dataset_dir(config.dataset_dir, store, user_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {}
    for number, name in enumerate(config.dataset):
        target = out_dir / f"{number:02d}-{Path(name).stem}.jsonl"
        with open(target, "w", encoding="utf-8") as fh:
            for _, record in cleaner.clean(_validated(config, name, dataset_dir, builder)):
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                builder.report.records_written += 1
        outputs[name] = target
    return builder.report, outputs
