"""Validate a dataset record by record: a report entry per fault; strict mode stops at the first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from shared.schemas.datasets import DataReport, Problem

from .converters import Record, RecordError, convert_record
from .readers import Location, read_rows
from .registry import DatasetAttr

MAX_LISTED_PROBLEMS = 1000


class DataValidationError(ValueError):
    """Strict mode met a bad record; `report` holds what was found up to then."""

    def __init__(self, problem: Problem, report: DataReport):
        where = f"line {problem.line}" if problem.line is not None else f"record {problem.index}"
        field = f", field {problem.field}" if problem.field else ""
        super().__init__(f"{problem.file} {where}{field}: {problem.reason}")
        self.problem = problem
        self.report = report


class ReportBuilder:
    """Collects problems and counts into a `DataReport`, raising in strict mode."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.report = DataReport()

    def drop(self, problem: Problem) -> None:
        """Record that a record was dropped for `problem` (raises DataValidationError when strict)."""
        report = self.report
        report.dropped[problem.code] = report.dropped.get(problem.code, 0) + 1
        self._list(problem)
        if self.strict:
            raise DataValidationError(problem, report)

    def reject_paraphrase(self, problem: Problem, reason: str) -> None:
        """Record a paraphrase left out for `reason`; the record itself stays, so strict mode does not stop."""
        report = self.report
        report.paraphrases_dropped[reason] = report.paraphrases_dropped.get(reason, 0) + 1
        self._list(problem)

    def _list(self, problem: Problem) -> None:
        if len(self.report.problems) < MAX_LISTED_PROBLEMS:
            self.report.problems.append(problem)
        else:
            self.report.problems_omitted += 1

    def count(self, step: str, n: int = 1) -> None:
        """Count `n` records changed or removed by a cleaning step."""
        self.report.cleaning[step] = self.report.cleaning.get(step, 0) + n


def validated_records(
    path: Path,
    attr: DatasetAttr,
    stage: str,
    builder: ReportBuilder,
    label: str | None = None,
    label_column: str | None = None,
) -> Iterator[tuple[Location, Record]]:
    """Yield `(location, canonical record)` for every valid record of one dataset file or folder.

    Args:
        path: The dataset file or folder.
        attr: Its registry entry (layout, columns, tags).
        stage: `sft`, `pt`, `rm` or `dpo`.
        builder: Receives a problem per invalid record.
        label: File name used in problems (default: the file's name).
        label_column: Raw column copied to the record's `label` key, for balancing.
    """
    limit, valid = attr.num_samples, 0
    for row in read_rows(path, label):
        builder.report.records_read += 1
        if row.problem is not None:
            builder.drop(row.problem)
            continue
        try:
            record = convert_record(row.value, attr, stage)
        except RecordError as exc:
            builder.drop(row.loc.problem(exc.code, exc.reason, exc.field))
            continue
        if label_column is not None:
            record["label"] = str(row.value.get(label_column))
        builder.report.records_valid += 1
        valid += 1
        yield row.loc, record
        if limit is not None and valid >= limit:
            return
