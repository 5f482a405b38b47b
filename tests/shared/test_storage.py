"""Both object-store backends behave the same through the one `ObjectStore` interface."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import httpx
import pytest

from shared.settings import Settings
from shared.storage import (
    ObjectKind,
    ObjectNotFoundError,
    ObjectStore,
    create_store,
    delete_prefix,
    download_file,
    download_prefix,
    fetch_prefix,
    get_bytes,
    object_key,
    put_bytes,
    upload_dir,
)
from shared.storage.base import ObjectInfo
from shared.storage.keys import InvalidKeyError


def s3_settings(endpoint: str) -> Settings:
    """Settings for the S3 backend on a test server, in a bucket of its own."""
    return Settings(
        storage_backend="s3",
        s3_endpoint=endpoint,
        s3_access_key="testing",
        s3_secret_key="testing",
        s3_bucket=f"test-{uuid.uuid4().hex[:12]}",
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """A fresh, empty store of each backend."""
    if request.param == "local":
        return create_store(Settings(storage_backend="local", storage_path=tmp_path / "objects"))
    return create_store(s3_settings(request.getfixturevalue("s3_endpoint")))


def key(name: str, user: str = "alice", job: str = "job-1") -> str:
    return object_key(user, ObjectKind.JOBS, job, name)


def test_put_get_round_trip_and_stat(store: ObjectStore) -> None:
    payload = bytes(range(256)) * 1000
    put_bytes(store, key("weights.bin"), payload)

    assert get_bytes(store, key("weights.bin")) == payload
    info = store.stat(key("weights.bin"))
    assert (info.key, info.size) == (key("weights.bin"), len(payload))
    assert isinstance(info.last_modified, datetime) and info.last_modified.tzinfo is not None


def test_put_overwrites_in_place(store: ObjectStore) -> None:
    put_bytes(store, key("a.txt"), b"first")
    put_bytes(store, key("a.txt"), b"second")

    assert get_bytes(store, key("a.txt")) == b"second"
    assert [i.key for i in store.list(key(""))] == [key("a.txt")]


def test_put_stream_stores_exactly_the_announced_length(store: ObjectStore) -> None:
    store.put_stream(key("cut.bin"), io.BytesIO(b"0123456789" * 100), 25)
    assert get_bytes(store, key("cut.bin")) == (b"0123456789" * 3)[:25]

    with pytest.raises(OSError):
        store.put_stream(key("short.bin"), io.BytesIO(b"only 12 byte"), 100)
    with pytest.raises(ObjectNotFoundError):
        store.stat(key("short.bin"))  # nothing half-written is left under the key

    store.put_stream(key("unknown.bin"), io.BytesIO(b"x" * 3_000_000))  # length -1: read to the end
    assert store.stat(key("unknown.bin")).size == 3_000_000


def test_list_by_prefix_recursive_and_not(store: ObjectStore) -> None:
    names = ["a/1.txt", "a/2.txt", "a/sub/3.txt", "b.txt"]
    for name in names:
        put_bytes(store, key(name), name.encode())
    put_bytes(store, key("x.txt", user="bob"), b"not alice's")
    put_bytes(store, key("x.txt", job="job-10"), b"a sibling job")

    assert [i.key for i in store.list(key(""))] == [key(n) for n in names]
    assert [i.key for i in store.list(key("a/"), recursive=False)] == [key("a/1.txt"), key("a/2.txt")]
    assert [i.key for i in store.list(key(""), recursive=False)] == [key("b.txt")]
    # A prefix is a string prefix, not a folder: `job-1` also matches `job-10`, on both backends.
    assert len(list(store.list("users/alice/jobs/job-1"))) == len(names) + 1
    assert [i.size for i in store.list(key("a/sub/"))] == [len("a/sub/3.txt")]
    assert list(store.list("users/nobody/")) == []


def test_delete_and_delete_prefix(store: ObjectStore) -> None:
    for name in ["a/1", "a/2", "b"]:
        put_bytes(store, key(name), b"x")

    store.delete(key("b"))
    store.delete(key("b"))  # deleting an absent object is not an error
    with pytest.raises(ObjectNotFoundError):
        store.stat(key("b"))

    assert delete_prefix(store, key("a/")) == 2
    assert list(store.list(key(""))) == []


def test_missing_object_raises_object_not_found(store: ObjectStore) -> None:
    missing = key("nope.bin")
    with pytest.raises(ObjectNotFoundError, match="nope.bin"):
        store.stat(missing)
    with pytest.raises(ObjectNotFoundError, match="nope.bin"):
        get_bytes(store, missing)
    with pytest.raises(ObjectNotFoundError, match="nope.bin"):
        store.presigned_get_url(missing, 60)
    with pytest.raises(FileNotFoundError):  # ObjectNotFoundError is a FileNotFoundError for callers that only know that
        download_file(store, missing, Path("/nonexistent/never-written"))


def test_presigned_url_serves_the_bytes(store: ObjectStore) -> None:
    payload = "résumé ✓\n".encode() * 100
    put_bytes(store, key("report.txt"), payload)

    url = store.presigned_get_url(key("report.txt"), expires_s=120)

    if url.startswith("file://"):  # embedded mode has no HTTP server: the URL is the file
        assert Path(url2pathname(urlparse(url).path)).read_bytes() == payload
    else:
        assert "X-Amz-Expires=120" in url  # the expiry we asked for is signed into the URL
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200
        assert response.content == payload


def test_upload_dir_and_download_prefix_keep_relative_paths(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel in ["config.json", "tokenizer/vocab.json", "tokenizer/merges.txt"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)

    keys = upload_dir(store, key("model/"), src)
    paths = download_prefix(store, key("model/"), tmp_path / "dst")

    assert keys == sorted(
        key("model/" + rel) for rel in ["config.json", "tokenizer/merges.txt", "tokenizer/vocab.json"]
    )
    assert sorted(p.relative_to(tmp_path / "dst").as_posix() for p in paths) == sorted(
        p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()
    )
    assert all(p.read_text() == p.relative_to(tmp_path / "dst").as_posix() for p in paths)


class _BreaksMidway:
    """Wraps a store so that reading fails after the first chunk, like a dropped connection."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def open_read(self, key: str) -> Iterator[bytes]:
        chunks = self.store.open_read(key)
        yield next(chunks)
        raise ConnectionResetError("connection dropped mid-download")


def test_download_file_is_atomic(store: ObjectStore, tmp_path: Path) -> None:
    put_bytes(store, key("big.bin"), b"new" * 1_000_000)  # several chunks
    target = tmp_path / "out" / "big.bin"
    target.parent.mkdir()
    target.write_bytes(b"old")

    with pytest.raises(ConnectionResetError):
        download_file(_BreaksMidway(store), key("big.bin"), target)  # type: ignore[arg-type]

    assert target.read_bytes() == b"old"  # never half-replaced
    assert [p.name for p in target.parent.iterdir()] == ["big.bin"]  # no temp file left behind
    download_file(store, key("big.bin"), target)
    assert target.read_bytes() == b"new" * 1_000_000
    assert [p.name for p in target.parent.iterdir()] == ["big.bin"]


class _HandBuiltListing:
    """A store whose listing holds a key nobody built with `object_key` (written by another S3 client)."""

    def list(self, prefix: str, recursive: bool = True) -> Iterator[ObjectInfo]:
        yield ObjectInfo(prefix + "../../../escaped.txt", 1, None)

    def open_read(self, key: str) -> Iterator[bytes]:
        yield b"x"


def test_download_prefix_refuses_keys_that_leave_the_target_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidKeyError, match="outside"):
        download_prefix(_HandBuiltListing(), key("model/"), tmp_path / "dst")  # type: ignore[arg-type]
    assert not list(tmp_path.rglob("escaped.txt"))


@pytest.mark.parametrize(
    "hand_built",
    ["../outside.txt", "users/../../outside.txt", "/etc/passwd", "users/alice/../../../etc/passwd", "", "."],
)
def test_local_backend_refuses_keys_outside_its_root(tmp_path: Path, hand_built: str) -> None:
    store = create_store(Settings(storage_backend="local", storage_path=tmp_path / "objects"))

    with pytest.raises(InvalidKeyError, match="outside the storage folder"):
        put_bytes(store, hand_built, b"x")
    with pytest.raises(InvalidKeyError, match="outside the storage folder"):
        store.stat(hand_built)
    with pytest.raises(InvalidKeyError, match="outside the storage folder"):
        store.delete(hand_built)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_local_backend_refuses_listing_outside_its_root(tmp_path: Path) -> None:
    store = create_store(Settings(storage_backend="local", storage_path=tmp_path / "objects"))
    (tmp_path / "secret.txt").write_text("not an object")

    with pytest.raises(InvalidKeyError, match="outside the storage folder"):
        list(store.list("../"))


def test_local_backend_refuses_a_symlink_out_of_its_root(tmp_path: Path) -> None:
    store = create_store(Settings(storage_backend="local", storage_path=tmp_path / "objects"))
    (tmp_path / "outside").mkdir()
    (tmp_path / "objects" / "users").mkdir()
    (tmp_path / "objects" / "users" / "mallory").symlink_to(tmp_path / "outside")

    with pytest.raises(InvalidKeyError, match="outside the storage folder"):
        put_bytes(store, object_key("mallory", ObjectKind.UPLOADS, "f1", "x.txt"), b"x")
    assert list((tmp_path / "outside").iterdir()) == []


def test_fetch_prefix_downloads_once_and_again_after_a_change(store: ObjectStore, tmp_path: Path) -> None:
    put_bytes(store, key("model/config.json"), b'{"a": 1}')
    put_bytes(store, key("model/weights.bin"), b"w" * 10)
    cache = tmp_path / "cache"

    first = fetch_prefix(store, key("model/"), cache)
    mtime = (first / "weights.bin").stat().st_mtime_ns
    second = fetch_prefix(store, key("model/"), cache)
    time.sleep(0.02)  # local file dates tick with the kernel clock (a few ms): let this rewrite get a new one
    put_bytes(store, key("model/config.json"), b'{"a": 2}')  # same size, new bytes
    third = fetch_prefix(store, key("model/"), cache)

    assert first == second and (second / "weights.bin").stat().st_mtime_ns == mtime
    assert third != first and (third / "config.json").read_bytes() == b'{"a": 2}'
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.name, third.name])  # no temp folders left
    with pytest.raises(FileNotFoundError, match="nothing is stored under"):
        fetch_prefix(store, key("absent/"), cache)


def test_presigned_urls_name_the_public_endpoint_and_serve_the_bytes(s3_endpoint: str) -> None:
    # In compose, workers reach `minio:9000` but a user's browser reaches the published port instead.
    port = s3_endpoint.rsplit(":", 1)[1]
    settings = s3_settings(s3_endpoint).model_copy(update={"s3_public_endpoint": f"localhost:{port}"})
    store = create_store(settings)
    put_bytes(store, key("public.txt"), b"public bytes")

    url = store.presigned_get_url(key("public.txt"), expires_s=60)

    assert urlparse(url).netloc == f"localhost:{port}"
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200 and response.content == b"public bytes"
