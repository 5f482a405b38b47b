"""Move dataset folders between a machine and the object store: the CLI uploads, workers download.

Tasks carry object keys only, so a local dataset folder is first uploaded under the owner's `uploads/`
prefix; the worker then reads it back through a `store://` prefix given as `dataset_dir`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from shared.modelkit.loader import STORE_SCHEME
from shared.settings import get_settings
from shared.storage import ObjectKind, ObjectStore, fetch_prefix, is_owned_key, object_key, upload_file, user_prefix

from .registry import REGISTRY_FILE, referenced_files

HASH_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (or of a folder's files, in name order), read in chunks."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def upload_dataset_folder(store: ObjectStore, user_id: str, folder: Path, names: list[str] | None = None) -> str:
    """Upload `dataset_info.json` and the files it references to `users/{user}/uploads/{id}/`.

    The upload id is a hash of the uploaded files' contents, so uploading the same folder twice writes
    to the same place.

    Args:
        store: The object store.
        user_id: Owner.
        folder: Local folder holding `dataset_info.json`.
        names: Registry entries whose files to upload (default: every entry with a local file).

    Returns:
        The `store://users/{user}/uploads/{id}/` prefix to pass as `dataset_dir`.
    """
    folder = Path(folder)
    wanted = [REGISTRY_FILE, *referenced_files(folder, names)]
    files: list[tuple[str, Path]] = []
    for name in dict.fromkeys(wanted):
        path = folder / name
        files += (
            [(p.relative_to(folder).as_posix(), p) for p in sorted(path.rglob("*")) if p.is_file()]
            if path.is_dir()
            else [(name, path)]
        )
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(f"{name}\0{file_sha256(path)}\0".encode())
    upload_id = f"ds-upload-{digest.hexdigest()[:24]}"
    for name, path in files:
        upload_file(store, object_key(user_id, ObjectKind.UPLOADS, upload_id, name), path)
    return STORE_SCHEME + object_key(user_id, ObjectKind.UPLOADS, upload_id)


def local_dataset_dir(dataset_dir: str | None, store: ObjectStore, user_id: str) -> Path | None:
    """A local folder for `dataset_dir`: the folder itself, or a cached download of a `store://` prefix.

    Raises:
        PermissionError: the prefix is outside `user_id`'s own objects.
    """
    if dataset_dir is None:
        return None
    if not dataset_dir.startswith(STORE_SCHEME):
        return Path(dataset_dir).expanduser()
    prefix = dataset_dir[len(STORE_SCHEME) :].rstrip("/") + "/"
    if not is_owned_key(prefix, user_id):
        raise PermissionError(f"dataset_dir {dataset_dir!r} is not under {user_prefix(user_id)!r}")
    return fetch_prefix(store, prefix, get_settings().home / "data-cache")
