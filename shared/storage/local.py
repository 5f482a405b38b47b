"""Object store on a local folder, for embedded mode."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from .base import CHUNK_SIZE, ObjectInfo, ObjectNotFoundError
from .keys import InvalidKeyError


class LocalObjectStore:
    """Keys map to files under `root`; writes are atomic (temp file, then rename)."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        # Keys normally come from `object_key`; this guards hand-built ones too.
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidKeyError(f"object key {key!r} resolves outside the storage folder")
        return path

    def put_stream(self, key: str, stream: BinaryIO, length: int = -1, content_type: str = "") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                if length < 0:
                    shutil.copyfileobj(stream, out, CHUNK_SIZE)
                else:
                    _copy_exactly(stream, out, length)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open_read(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no object at {key!r}")
        return self._chunks(path)

    @staticmethod
    def _chunks(path: Path) -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK_SIZE):
                yield chunk

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no object at {key!r}")
        st = path.stat()
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def list(self, prefix: str, recursive: bool = True) -> Iterator[ObjectInfo]:
        base = (self.root / prefix.rsplit("/", 1)[0]).resolve() if "/" in prefix else self.root
        if not base.is_relative_to(self.root):
            raise InvalidKeyError(f"prefix {prefix!r} resolves outside the storage folder")
        if not base.is_dir():
            return
        paths = base.rglob("*") if recursive else base.iterdir()
        keys = sorted(p.relative_to(self.root).as_posix() for p in paths if p.is_file())
        for key in keys:
            name = key.rsplit("/", 1)[-1]
            direct = recursive or "/" not in key[len(prefix) :]
            if key.startswith(prefix) and not name.startswith(".upload-") and direct:
                yield self.stat(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def presigned_get_url(self, key: str, expires_s: int) -> str:
        """Embedded mode has no HTTP object server: the URL is the file itself."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no object at {key!r}")
        return path.as_uri()


def _copy_exactly(stream: BinaryIO, out: BinaryIO, length: int) -> None:
    """Copy `length` bytes, as the S3 backend does: a longer stream is cut, a shorter one is an error."""
    remaining = length
    while remaining:
        chunk = stream.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            raise OSError(f"stream ended {remaining} bytes short of the {length} bytes announced")
        out.write(chunk)
        remaining -= len(chunk)
