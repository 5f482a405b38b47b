"""`tuneflow train CONFIG.yaml [key=value ...]`: run a LLaMA-Factory-style YAML as a prepare -> train chain.

The YAML is flat, as LLaMA-Factory's; its dataset keys go to the data service's `PrepareConfig`, the rest
to `TrainJobConfig` (keys both need, such as `model_name_or_path` or `cutoff_len`, go to both). A key
neither knows fails before any work, naming it.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from shared.config_files import ConfigFileError, describe_validation_error, load_config
from shared.schemas.datasets import PrepareConfig
from shared.schemas.training import IGNORED_KEYS, TrainJobConfig

TRAIN_ONLY_ALIASES = {"pre_seq_len"}


class ConfigError(ConfigFileError):
    """The config's keys or values are invalid for the prepare/train halves; the message names the key."""


def split_config(flat: dict[str, Any]) -> tuple[PrepareConfig, TrainJobConfig]:
    """Validate a flat LLaMA-Factory config as the data service's and the trainer's halves."""
    train_keys = set(TrainJobConfig.model_fields) | TRAIN_ONLY_ALIASES | set(IGNORED_KEYS)
    unknown = sorted(k for k in flat if k not in PrepareConfig.model_fields and k not in train_keys)
    if unknown:
        raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
    try:
        prepare = PrepareConfig.model_validate({k: v for k, v in flat.items() if k in PrepareConfig.model_fields})
        train = TrainJobConfig.model_validate({k: v for k, v in flat.items() if k in train_keys})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc
    return prepare, train


def submit_training(prepare: PrepareConfig, train: TrainJobConfig, user_id: str) -> tuple[str, Future]:
    """Upload a local dataset_dir, create the job and send the prepare -> train chain.

    With `augment.paraphrase_model` the chain starts with planning and generating the paraphrases.

    Returns:
        The job id, and a future that completes when the chain has run (embedded) or been enqueued.
    """
    from services.data.chain import prepare_steps
    from services.data.sources import upload_dataset_folder
    from shared.db import migrate, session_scope
    from shared.db.jobs import create_job, ensure_user
    from shared.queue import TaskName, send_chain
    from shared.schemas import JobKind, TaskPayload
    from shared.settings import get_settings
    from shared.storage import get_store

    if prepare.dataset_dir and not prepare.dataset_dir.startswith("store://"):
        folder = Path(prepare.dataset_dir)
        prefix = upload_dataset_folder(get_store(), user_id, folder, prepare.dataset)
        prepare = prepare.model_copy(update={"dataset_dir": prefix})
    migrate(get_settings().resolved_database_url)
    with session_scope() as session:
        ensure_user(session, user_id)
        job = create_job(
            session,
            user_id=user_id,
            kind=JobKind.TRAINING,
            config=train.model_dump(mode="json"),
            model=train.model_name_or_path,
        )
        job_id = job.id
    steps = [
        *prepare_steps(prepare, job_id=job_id, user_id=user_id),
        (TaskName.TRAINING_RUN, TaskPayload(job_id=job_id, user_id=user_id, config=train.model_dump(mode="json"))),
    ]
    # Embedded mode runs the chain eagerly: in a thread, so the caller can follow the job meanwhile.
    return job_id, ThreadPoolExecutor(max_workers=1, thread_name_prefix=job_id).submit(send_chain, steps)


def follow_job(job_id: str, chain: Future, *, poll_s: float = 0.5) -> dict[str, Any]:
    """Show a progress bar from the job's metrics events until the chain ends; return the job row as a dict."""
    from tqdm import tqdm

    from shared.db import JobEvent, session_scope

    bar = tqdm(total=1, unit="step", desc="training", dynamic_ncols=True)
    while True:
        done = chain.done()
        with session_scope() as session:
            latest = (
                session.query(JobEvent)
                .filter_by(job_id=job_id, type="metrics")
                .order_by(JobEvent.created_at.desc())
                .first()
            )
            if latest is not None and "max_steps" in latest.data and latest.data["step"] != bar.n:
                bar.total, bar.n = latest.data["max_steps"], latest.data["step"]
                bar.set_postfix(loss=f"{latest.data['loss']:.3f}", tok_s=f"{latest.data['tokens_per_s']:.0f}")
                bar.refresh()
        if done:
            break
        time.sleep(poll_s)
    bar.close()
    if chain.exception() is not None:
        typer.echo(f"chain failed: {chain.exception()}", err=True)
    return job_record(job_id)


def job_record(job_id: str) -> dict[str, Any]:
    """The job's database row as a dict (status, result, error, ...)."""
    from shared.db import Job, session_scope

    with session_scope() as session:
        job = session.get(Job, job_id)
        return {c.name: getattr(job, c.name) for c in Job.__table__.columns}


def train_command(
    config: Annotated[Path, typer.Argument(help="LLaMA-Factory-style YAML (model/method/dataset/output/train keys).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value pairs overriding the YAML.")] = None,
    user: Annotated[str, typer.Option(help="Owner of the job.")] = "local",
) -> None:
    """Prepare the dataset and fine-tune (embedded mode runs here with a progress bar; distributed enqueues)."""
    import warnings

    from shared.settings import Mode, get_settings

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            prepare, train = split_config(load_config(config, overrides))
    except ConfigFileError as exc:
        typer.echo(f"invalid config: {exc}", err=True)
        raise typer.Exit(2) from exc
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)
    job_id, chain = submit_training(prepare, train, user)
    typer.echo(f"job {job_id} submitted")
    if get_settings().mode is not Mode.EMBEDDED:
        chain.result()
        typer.echo(f"queued; follow it with the gateway (GET /v1/fine_tuning/jobs/{job_id})")
        return
    row = follow_job(job_id, chain)
    if row["status"] != "succeeded":
        typer.echo(f"job {job_id} {row['status']}: {(row['error'] or {}).get('message', '')}", err=True)
        raise typer.Exit(1)
    metrics = row["result"].get("metrics", {})
    typer.echo(f"job {job_id} succeeded: {row['fine_tuned_model']}")
    typer.echo(f"  model:   {row['result']['model']}")
    typer.echo(
        f"  loss:    {metrics.get('train_loss', float('nan')):.4f} over {metrics.get('global_step', 0):.0f} steps"
    )
    if train.output_dir:
        _copy_outputs(row["result"]["outputs"], Path(train.output_dir))
        typer.echo(f"  copied to {train.output_dir}")


def _copy_outputs(outputs: dict[str, str], target: Path) -> None:
    """LLaMA-Factory users look in output_dir: copy the job's outputs there too."""
    from shared.storage import download_file, download_prefix, get_store

    store = get_store()
    for name, key in outputs.items():
        if key.endswith("/"):
            download_prefix(store, key, target / name)
        else:
            download_file(store, key, target / Path(key).name)
