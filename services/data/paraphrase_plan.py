"""`data.plan_paraphrases`: read and clean the datasets exactly as `data.prepare` does, and write the requests."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from shared.schemas.datasets import PARAPHRASE_REQUESTS_NAME, PrepareConfig
from shared.storage import ObjectKind, ObjectStore, object_key, upload_file

from .paraphrase import paraphrase_requests
from .prepare import Notify, augment_seed, cleaned_records, resolve_sources
from .sources import local_dataset_dir
from .validation import ReportBuilder


def plan_paraphrases(
    config: PrepareConfig, *, store: ObjectStore, user_id: str, job_id: str, notify: Notify | None = None
) -> tuple[str, int]:
    """Write the job's paraphrase requests to `users/{user}/jobs/{job_id}/paraphrase/requests.jsonl`.

    One request per picked conversation and paraphrase, in dataset order; a record that occurs twice
    (deduplication off) is asked about once. The same inputs and seed give the same file.

    Returns:
        The requests' object key and how many there are.

    Raises:
        ValueError: `config.augment.paraphrase_model` is not set.
        DataValidationError: strict mode found an invalid record.
    """
    if config.augment is None or not config.augment.paraphrasing:
        raise ValueError("augment.paraphrase_model: set it to plan paraphrases")
    say = notify or (lambda message, data: None)
    sources = resolve_sources(config, local_dataset_dir(config.dataset_dir, store, user_id))
    builder = ReportBuilder(config.strict)
    key = object_key(user_id, ObjectKind.JOBS, job_id, PARAPHRASE_REQUESTS_NAME)
    asked: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="tuneflow-paraphrase-") as tmp:
        path = Path(tmp) / "requests.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for number, records in cleaned_records(config, sources, builder):
                for _, record in records:
                    for request in paraphrase_requests(record, config.augment, augment_seed(config, number)):
                        if request.id not in asked:
                            asked.add(request.id)
                            fh.write(
                                json.dumps(request.model_dump(mode="json", exclude_none=True), ensure_ascii=False)
                                + "\n"
                            )
        upload_file(store, key, path)
    say(
        f"planned {len(asked)} paraphrase requests",
        {"requests": len(asked), "records_valid": builder.report.records_valid, "key": key},
    )
    return key, len(asked)
