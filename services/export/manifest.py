"""manifest.json: file checksums and the record of what an export is and how it was checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

from shared.schemas.export import ExportManifest, ManifestFile

MANIFEST_NAME = "manifest.json"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks so large shards never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(folder: Path) -> list[ManifestFile]:
    """Path, size and checksum of every file under `folder` except the manifest itself."""
    return [
        ManifestFile(path=p.relative_to(folder).as_posix(), bytes=p.stat().st_size, sha256=sha256_file(p))
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    ]


def write_manifest(folder: Path, manifest: ExportManifest) -> Path:
    """Write `manifest.json` into `folder` and return its path."""
    path = folder / MANIFEST_NAME
    path.write_text(manifest.model_dump_json(indent=2) + "\n")
    return path


def verify_files(folder: Path, manifest: ExportManifest) -> list[str]:
    """Files whose size or checksum no longer matches the manifest (empty: the export is intact)."""
    bad = []
    for entry in manifest.files:
        path = folder / entry.path
        if not path.is_file() or path.stat().st_size != entry.bytes or sha256_file(path) != entry.sha256:
            bad.append(entry.path)
    return bad
