"""Object storage: one interface, a local-folder backend and an S3/MinIO backend."""

from __future__ import annotations

from functools import lru_cache

from ..settings import Settings, StorageBackend, get_settings
from .base import (
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    delete_prefix,
    download_file,
    download_prefix,
    get_bytes,
    put_bytes,
    upload_dir,
    upload_file,
)
from .cache import fetch_prefix
from .keys import InvalidKeyError, ObjectKind, check_file_name, is_owned_key, object_key, user_prefix

__all__ = [
    "InvalidKeyError",
    "ObjectInfo",
    "ObjectKind",
    "ObjectNotFoundError",
    "ObjectStore",
    "check_file_name",
    "create_store",
    "delete_prefix",
    "download_file",
    "download_prefix",
    "fetch_prefix",
    "get_bytes",
    "get_store",
    "is_owned_key",
    "object_key",
    "put_bytes",
    "upload_dir",
    "upload_file",
    "user_prefix",
]


def create_store(settings: Settings) -> ObjectStore:
    """Build the object store the settings describe (creating the bucket or folder if needed)."""
    if settings.storage_backend is StorageBackend.S3:
        from minio import Minio

        from .s3 import S3ObjectStore

        def client(endpoint: str) -> Minio:
            return Minio(
                endpoint,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key.get_secret_value(),
                secure=settings.s3_secure,
                region=settings.s3_region,  # known region: presigning needs no request to the server
            )

        public = client(settings.s3_public_endpoint) if settings.s3_public_endpoint else None
        store = S3ObjectStore(client(settings.s3_endpoint), settings.s3_bucket, presign_client=public)
        store.ensure_bucket()
        return store
    from .local import LocalObjectStore

    return LocalObjectStore(settings.resolved_storage_path)


@lru_cache
def get_store() -> ObjectStore:
    """The process-wide store for the current settings."""
    return create_store(get_settings())
