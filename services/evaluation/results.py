"""Where a run's results live: `users/{user}/jobs/{job_id}/` holds results.json and predictions.jsonl."""

from __future__ import annotations

import json

from shared.schemas.evaluation import EvalResults, SampleResult
from shared.storage import ObjectKind, ObjectStore, get_bytes, object_key, put_bytes

from .runner import EvalOutcome

RESULTS = "results.json"
PREDICTIONS = "predictions.jsonl"
MC_PREDICTIONS = "mc_predictions.jsonl"


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def outcome_files(outcome: EvalOutcome) -> dict[str, bytes]:
    """File name -> content for one run (the task stores them, the CLI also copies them to output_dir)."""
    files = {
        RESULTS: outcome.results.model_dump_json(indent=2).encode(),
        PREDICTIONS: _jsonl([s.model_dump(mode="json") for s in outcome.samples]),
    }
    if outcome.mc_records:
        files[MC_PREDICTIONS] = _jsonl(outcome.mc_records)
    return files


def store_outcome(store: ObjectStore, *, user_id: str, job_id: str, outcome: EvalOutcome) -> dict[str, str]:
    """Write the run's files under the job's prefix (a rerun overwrites them); return name -> object key."""
    keys = {}
    for name, data in outcome_files(outcome).items():
        key = object_key(user_id, ObjectKind.JOBS, job_id, name)
        put_bytes(store, key, data, "application/json")
        keys[name] = key
    return keys


def load_run(store: ObjectStore, *, user_id: str, job_id: str) -> tuple[EvalResults, list[SampleResult]]:
    """Aggregate results and per-sample records of a finished evaluation job."""
    results = EvalResults.model_validate_json(get_bytes(store, object_key(user_id, ObjectKind.JOBS, job_id, RESULTS)))
    lines = get_bytes(store, object_key(user_id, ObjectKind.JOBS, job_id, PREDICTIONS)).decode().splitlines()
    return results, [SampleResult.model_validate_json(line) for line in lines if line.strip()]
