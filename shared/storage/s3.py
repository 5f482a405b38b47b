"""Object store on S3 / MinIO through the `minio` SDK."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import BinaryIO

from minio import Minio
from minio.error import S3Error
from urllib3 import BaseHTTPResponse

from .base import CHUNK_SIZE, ObjectInfo, ObjectNotFoundError

_MISSING = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}
_MIB = 1024 * 1024
# An upload holds about (PARALLEL_PARTS + 1) parts in memory: one being read, the rest in flight.
PART_SIZE = 8 * _MIB
PARALLEL_PARTS = 3
MAX_PARTS = 10_000  # S3's limit on parts per upload


class S3ObjectStore:
    """All objects in one bucket; uploads stream as multipart, downloads in CHUNK_SIZE pieces."""

    def __init__(self, client: Minio, bucket: str, presign_client: Minio | None = None):
        self.client = client
        self.bucket = bucket
        # URLs for clients outside the platform must name the host they reach S3 at (e.g. not `minio:9000`).
        self.presign_client = presign_client or client

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet."""
        if not self.client.bucket_exists(self.bucket):
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:  # another process created it first
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def put_stream(self, key: str, stream: BinaryIO, length: int = -1, content_type: str = "") -> None:
        """Upload as multipart; with `length` -1 objects up to MAX_PARTS x PART_SIZE (78 GiB) fit."""
        # Known large objects get bigger parts, just enough to stay under S3's part-count limit.
        part_size = max(PART_SIZE, math.ceil(length / MAX_PARTS / _MIB) * _MIB)
        self.client.put_object(
            self.bucket,
            key,
            stream,
            length,
            content_type=content_type or "application/octet-stream",
            part_size=part_size,
            num_parallel_uploads=PARALLEL_PARTS,
        )

    def open_read(self, key: str) -> Iterator[bytes]:
        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectNotFoundError(f"no object at {key!r}") from exc
            raise
        return self._chunks(response)

    @staticmethod
    def _chunks(response: BaseHTTPResponse) -> Iterator[bytes]:
        try:
            yield from response.stream(CHUNK_SIZE)
        finally:
            response.close()
            response.release_conn()

    def stat(self, key: str) -> ObjectInfo:
        try:
            st = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectNotFoundError(f"no object at {key!r}") from exc
            raise
        return ObjectInfo(key, st.size or 0, st.last_modified, st.etag)

    def list(self, prefix: str, recursive: bool = True) -> Iterator[ObjectInfo]:
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=recursive):
            if not obj.is_dir:
                yield ObjectInfo(obj.object_name, obj.size or 0, obj.last_modified, obj.etag)

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)

    def presigned_get_url(self, key: str, expires_s: int) -> str:
        self.stat(key)  # a URL to nothing is a confusing 404 later
        return self.presign_client.presigned_get_object(self.bucket, key, expires=timedelta(seconds=expires_s))
