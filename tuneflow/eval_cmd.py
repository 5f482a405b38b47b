"""`tuneflow eval CONFIG.yaml [key=value ...]`: evaluate a model in embedded mode, results into output_dir.

The command is the composition root: it turns LLaMA-Factory-style datasets into canonical records with
the data service's converters, stores them under the job, and runs the same `evaluation.run` task a
worker would run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.schemas.evaluation import EvalConfig


def _canonical_jsonl(name: str, dataset_dir: str) -> bytes:
    """Records of dataset `name` (a registry name in dataset_dir, or a file) as canonical JSONL."""
    from services.data.converters import RecordError, convert_record
    from services.data.readers import read_rows
    from services.data.registry import resolve_dataset

    folder = None if Path(name).expanduser().exists() else Path(dataset_dir)
    attr, path = resolve_dataset(name, folder)
    lines = []
    for row in read_rows(path, name):
        if row.problem is not None:
            raise ValueError(f"{name}: {row.problem.reason} ({row.loc})")
        try:
            lines.append(json.dumps(convert_record(row.value, attr, "sft"), ensure_ascii=False))
        except RecordError as exc:
            raise ValueError(f"{name} ({row.loc}): {exc.reason}") from exc
    return ("\n".join(lines) + "\n").encode()


def _stage_inputs(config: EvalConfig, user_id: str, job_id: str) -> EvalConfig:
    """Store the job's inputs under its prefix; return the config with object keys in place of files."""
    from shared.storage import ObjectKind, get_store, object_key, put_bytes

    store = get_store()
    update: dict[str, Any] = {"eval_dataset": []}
    for index, name in enumerate(config.eval_dataset):
        key = object_key(user_id, ObjectKind.JOBS, job_id, f"inputs/eval_dataset_{index}.jsonl")
        put_bytes(store, key, _canonical_jsonl(name, config.dataset_dir))
        update["eval_dataset"].append(key)
    for field in ("mc_dataset", "mc_dev_dataset"):
        path = getattr(config, field)
        if path is not None:
            key = object_key(user_id, ObjectKind.JOBS, job_id, f"inputs/{field}{Path(path).suffix}")
            put_bytes(store, key, Path(path).expanduser().read_bytes())
            update[field] = key
    return config.model_copy(update=update)


def eval_command(
    config: Annotated[Path, typer.Argument(help="YAML with LLaMA-Factory-style keys (model_name_or_path, ...).")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value pairs overriding the YAML, e.g. max_samples=20.")
    ] = None,
) -> None:
    """Evaluate a model (embedded mode): results.json and predictions.jsonl land in output_dir."""
    from services.evaluation.config import EvalConfigError, load_eval_config
    from shared.db import migrate, session_scope
    from shared.db.jobs import LOCAL_USER, create_job, ensure_user
    from shared.queue import TaskName, send_task
    from shared.schemas import JobKind, TaskPayload
    from shared.settings import Mode, get_settings
    from shared.storage import ObjectKind, get_bytes, get_store, object_key

    settings = get_settings()
    if settings.mode is not Mode.EMBEDDED:
        raise typer.BadParameter("`tuneflow eval` runs in embedded mode; submit through the gateway otherwise")
    try:
        eval_config, ignored = load_eval_config(config, overrides)
    except EvalConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    if not eval_config.output_dir:
        typer.echo("output_dir is not set: give it in the YAML or as output_dir=PATH", err=True)
        raise typer.Exit(1)
    for key in ignored:
        typer.echo(f"note: {key} is a LLaMA-Factory training key; evaluation ignores it")
    migrate(settings.resolved_database_url)
    with session_scope() as session:
        ensure_user(session, LOCAL_USER)
        job_id = create_job(
            session, user_id=LOCAL_USER, kind=JobKind.EVALUATION, config=eval_config.model_dump(mode="json")
        ).id
    try:
        task_config = _stage_inputs(eval_config, LOCAL_USER, job_id)
        result = send_task(
            TaskName.EVALUATION_RUN,
            TaskPayload(job_id=job_id, user_id=LOCAL_USER, config=task_config.model_dump(mode="json")),
        ).get()
    except (ValueError, KeyError, OSError) as exc:  # bad data, names or paths: a message, not a traceback
        typer.echo(f"evaluation {job_id} failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    out = Path(eval_config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in result["outputs"]:
        (out / name).write_bytes(get_bytes(get_store(), object_key(LOCAL_USER, ObjectKind.JOBS, job_id, name)))
    typer.echo(json.dumps(result["metrics"], indent=2))
    typer.echo(f"evaluation {job_id}: results.json and predictions.jsonl written to {out}")
