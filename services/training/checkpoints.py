"""Checkpoints in the object store: the only copy that outlives a worker, so a restarted job resumes from it.

A checkpoint is the Trainer's own folder (weights or adapter, optimizer, scheduler, RNG states and
`trainer_state.json`, which holds the data position), plus the job's logs so far. It is uploaded file by
file and then marked complete; a checkpoint without its marker (the worker died mid-upload) is ignored.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from shared.storage import ObjectStore, delete_prefix, download_prefix, put_bytes, upload_dir

COMPLETE_MARKER = "COMPLETE"
_STEP = re.compile(r"checkpoint-(\d+)/")


def checkpoints_prefix(job_prefix: str) -> str:
    """Where a job's checkpoints live."""
    return f"{job_prefix}checkpoints/"


def upload_checkpoint(store: ObjectStore, job_prefix: str, folder: Path, logs_dir: Path) -> str:
    """Upload `folder` (a Trainer `checkpoint-N`) and the logs, mark it complete, drop older ones; return its prefix."""
    prefix = f"{checkpoints_prefix(job_prefix)}{folder.name}/"
    upload_dir(store, prefix, folder)
    if logs_dir.is_dir():
        upload_dir(store, prefix + "logs/", logs_dir)
    put_bytes(store, prefix + COMPLETE_MARKER, b"")  # written last: its presence means the rest is there
    for _step, older in list_checkpoints(store, job_prefix):
        if older != prefix:
            delete_prefix(store, older)
    return prefix


def list_checkpoints(store: ObjectStore, job_prefix: str) -> list[tuple[int, str]]:
    """Complete checkpoints as (step, prefix), oldest first."""
    found = []
    for info in store.list(checkpoints_prefix(job_prefix)):
        match = _STEP.search(info.key)
        if match and info.key.endswith("/" + COMPLETE_MARKER):
            found.append((int(match.group(1)), info.key[: -len(COMPLETE_MARKER)]))
    return sorted(found)


def restore_latest(store: ObjectStore, job_prefix: str, workdir: Path) -> Path | None:
    """Download the newest complete checkpoint into `workdir`; its logs go to `workdir/logs`. None if none."""
    checkpoints = list_checkpoints(store, job_prefix)
    if not checkpoints:
        return None
    step, prefix = checkpoints[-1]
    folder = workdir / "output" / f"checkpoint-{step}"
    download_prefix(store, prefix, folder)
    (folder / COMPLETE_MARKER).unlink()
    if (folder / "logs").is_dir():
        shutil.move(folder / "logs", workdir / "logs")
    return folder
