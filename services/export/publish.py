"""Exports on the object store: under `users/{user}/exports/{export_id}/`, manifest last, presigned downloads."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from shared.modelkit.loader import STORE_SCHEME, check_model_access
from shared.schemas.export import ExportConfig, ExportManifest
from shared.settings import get_settings
from shared.storage import ObjectKind, ObjectNotFoundError, delete_prefix, get_store, object_key, upload_file

from .errors import ExportError
from .manifest import MANIFEST_NAME
from .pipeline import Progress, build_export


def export_prefix(user_id: str, export_id: str) -> str:
    """`users/{user}/exports/{export_id}/`."""
    return object_key(user_id, ObjectKind.EXPORTS, export_id)


def resolve_source_job(config: ExportConfig, user_id: str) -> ExportConfig:
    """Point a config that names only `source_job_id` at that job's `final/` output (adapter or full model)."""
    if config.adapter_name_or_path or config.model_name_or_path or not config.source_job_id:
        return config
    final = object_key(user_id, ObjectKind.JOBS, config.source_job_id, "final/")
    try:
        get_store().stat(final + "adapter_config.json")
        key = "adapter_name_or_path"
    except ObjectNotFoundError:
        key = "model_name_or_path"  # a full fine-tune writes a whole model there
    return config.model_copy(update={key: STORE_SCHEME + final})


def publish_export(folder: Path, *, user_id: str, export_id: str) -> str:
    """Upload `folder` under the export prefix, replacing any earlier attempt; return the prefix.

    The manifest goes last, so its presence marks a complete upload; a failed upload removes everything.
    """
    store, prefix = get_store(), export_prefix(user_id, export_id)
    delete_prefix(store, prefix)  # a redelivered task replaces, never mixes with, an earlier attempt
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    try:
        for path in sorted(files, key=lambda p: p.name == MANIFEST_NAME):
            upload_file(store, prefix + path.relative_to(folder).as_posix(), path)
    except BaseException:
        delete_prefix(store, prefix)
        raise
    return prefix


def export_to_store(
    config: ExportConfig, *, user_id: str, export_id: str, progress: Progress | None = None
) -> tuple[str, ExportManifest]:
    """Build the export in a scratch folder and publish it; return the prefix and the manifest."""
    config = resolve_source_job(config, user_id)
    try:
        check_model_access(config.model_name_or_path, user_id, "model_name_or_path")
        check_model_access(config.adapter_name_or_path, user_id, "adapter_name_or_path")
    except PermissionError as exc:
        raise ExportError(str(exc)) from exc
    scratch = Path(tempfile.mkdtemp(prefix=f"tuneflow-{export_id}-"))
    try:
        manifest = build_export(config, scratch / "export", scratch / "work", export_id=export_id, progress=progress)
        return publish_export(scratch / "export", user_id=user_id, export_id=export_id), manifest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def download_urls(user_id: str, export_id: str, expires_s: int | None = None) -> dict[str, str]:
    """Presigned download URL of every file of an export, by relative path."""
    store, prefix = get_store(), export_prefix(user_id, export_id)
    expires = expires_s or get_settings().presign_expiry_s
    return {info.key[len(prefix) :]: store.presigned_get_url(info.key, expires) for info in store.list(prefix)}
