"""Local copies of object-store prefixes, downloaded once and reused while the objects are unchanged."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from .base import ObjectStore, download_prefix


def fetch_prefix(store: ObjectStore, prefix: str, cache_dir: Path) -> Path:
    """Download every object under `prefix` into a folder of `cache_dir` once, and return that folder.

    The folder is named by the listing (keys, sizes, etags and dates), so an unchanged prefix is reused
    and a changed object is fetched afresh into a new folder. A download lands in a temporary sibling
    that is renamed into place, so a crash or a concurrent fetch never leaves a half-filled folder.
    On the local backend a same-size rewrite is seen through the file's date, which ticks every few
    milliseconds: a rewrite within that tick of the previous write goes unnoticed.

    Raises:
        FileNotFoundError: Nothing is stored under `prefix`.
    """
    # The date matters: the local backend has no etag, so a same-size rewrite shows only there.
    listing = sorted((info.key, info.size, info.etag or "", str(info.last_modified)) for info in store.list(prefix))
    if not listing:
        raise FileNotFoundError(f"nothing is stored under {prefix!r}")
    digest = hashlib.sha256(repr(listing).encode()).hexdigest()[:16]
    target = cache_dir / digest
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{digest}-"))
    try:
        download_prefix(store, prefix, partial)
        partial.rename(target)
    except OSError:
        if not target.is_dir():  # anything but "a concurrent fetch finished first"
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
