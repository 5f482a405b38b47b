"""The object-store interface both backends implement."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from .keys import InvalidKeyError

CHUNK_SIZE = 1024 * 1024


class ObjectNotFoundError(FileNotFoundError):
    """The key names no object."""


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as listed."""

    key: str
    size: int
    last_modified: datetime | None
    etag: str | None = None


class ObjectStore(Protocol):
    """Streaming object storage. Keys come from `shared.storage.keys.object_key`."""

    def put_stream(self, key: str, stream: BinaryIO, length: int = -1, content_type: str = "") -> None:
        """Store everything read from `stream` under `key` (length -1: unknown, multipart)."""

    def open_read(self, key: str) -> Iterator[bytes]:
        """Yield the object's bytes in chunks of at most CHUNK_SIZE."""

    def stat(self, key: str) -> ObjectInfo:
        """Size and date of one object; ObjectNotFoundError if absent."""

    def list(self, prefix: str, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, in key order."""

    def delete(self, key: str) -> None:
        """Remove one object (absent is fine)."""

    def presigned_get_url(self, key: str, expires_s: int) -> str:
        """A URL that downloads the object without credentials for `expires_s` seconds."""


def put_bytes(store: ObjectStore, key: str, data: bytes, content_type: str = "") -> None:
    """Store a small in-memory payload."""
    store.put_stream(key, io.BytesIO(data), len(data), content_type)


def get_bytes(store: ObjectStore, key: str) -> bytes:
    """Read a small object fully into memory."""
    return b"".join(store.open_read(key))


def upload_file(store: ObjectStore, key: str, path: Path) -> None:
    """Stream a local file into the store."""
    with open(path, "rb") as fh:
        store.put_stream(key, fh, path.stat().st_size)


def download_file(store: ObjectStore, key: str, path: Path) -> None:
    """Stream an object to a local file, atomically (a partial download never has the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temp name in the same folder: concurrent downloads of one key cannot interleave,
    # and the final rename stays on one filesystem.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in store.open_read(key):
                fh.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def upload_dir(store: ObjectStore, prefix: str, folder: Path) -> list[str]:
    """Upload every file under `folder` to `prefix` + relative path; return the keys written."""
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(folder).as_posix()
        upload_file(store, key, path)
        keys.append(key)
    return keys


def download_prefix(store: ObjectStore, prefix: str, folder: Path) -> list[Path]:
    """Download every object under `prefix` into `folder`, keeping relative paths."""
    paths = []
    for info in store.list(prefix):
        rel = info.key[len(prefix) :]
        if not rel or rel.endswith("/"):
            continue
        target = folder / rel
        if not target.resolve().is_relative_to(folder.resolve()):
            # Keys written by hand (not through `object_key`) may hold '..'.
            raise InvalidKeyError(f"object key {info.key!r} would be written outside {folder}")
        download_file(store, info.key, target)
        paths.append(target)
    return paths


def delete_prefix(store: ObjectStore, prefix: str) -> int:
    """Delete every object under `prefix`; return how many."""
    keys = [info.key for info in store.list(prefix)]
    for key in keys:
        store.delete(key)
    return len(keys)
