"""Every object key comes from `object_key`, and no input can make it leave its owner's prefix."""

from __future__ import annotations

import posixpath
import random
import re

import pytest

from shared.storage import InvalidKeyError, ObjectKind, check_file_name, object_key, user_prefix

ESCAPING_NAMES = {
    "..": "'..' path segment",
    "../x": "'..' path segment",
    "a/../../b": "'..' path segment",
    "a/./b": "'.' or '..' path segment",
    "/etc/passwd": "is absolute",
    "a\\b": "backslash",
    "..\\..": "backslash",
    "a//b": "empty",
    "/": "is absolute",
    "a/b//": "empty",
    "a\x00b": "U+0000",
    "a\nb": "U+000A",
    "a\rb": "U+000D",
    "a\tb": "U+0009",
    "del\x7f": "U+007F",
    "evil\u202etxt.exe": "U+202E",  # right-to-left override: shows a different name than it is
    "zero\u200bwidth": "U+200B",
    "line\u2028sep": "U+2028",
    "x" * 256: "longer than 255 bytes",
    "é" * 128: "longer than 255 bytes",  # 256 bytes in UTF-8 though only 128 characters
    "/".join(["d" * 200] * 5): "longer than 1024 bytes",
}

BAD_IDS = ["", "../bob", "..", "bob/x", "bob x", " bob", "bob\n", "bob\x00", "-bob", ".bob", "a..b", "b" * 65, "böb"]


@pytest.mark.parametrize(("name", "reason"), ESCAPING_NAMES.items(), ids=[repr(n)[:30] for n in ESCAPING_NAMES])
def test_escaping_file_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(InvalidKeyError, match=re.escape(reason)):
        object_key("alice", ObjectKind.UPLOADS, "file-1", name)


def test_empty_file_name_is_refused() -> None:
    # object_key takes "" to mean the group's prefix, so only the name check itself sees this.
    with pytest.raises(InvalidKeyError, match="file name is empty"):
        check_file_name("")


@pytest.mark.parametrize("user", BAD_IDS, ids=repr)
def test_bad_user_ids_are_refused(user: str) -> None:
    with pytest.raises(InvalidKeyError, match="user .* is not allowed"):
        object_key(user, ObjectKind.UPLOADS, "file-1", "a.txt")
    with pytest.raises(InvalidKeyError):
        user_prefix(user)


@pytest.mark.parametrize("job", BAD_IDS, ids=repr)
def test_bad_object_ids_are_refused(job: str) -> None:
    with pytest.raises(InvalidKeyError, match="id .* is not allowed"):
        object_key("alice", ObjectKind.JOBS, job, "a.txt")


@pytest.mark.parametrize("kind", ["", "secrets", "../jobs", "JOBS", "jobs/"])
def test_unknown_kinds_are_refused(kind: str) -> None:
    with pytest.raises(InvalidKeyError, match="kind .* is not one of"):
        object_key("alice", kind, "job-1", "a.txt")


ACCEPTED = [
    ("alice", ObjectKind.JOBS, "ftjob-abc123", "checkpoints/step-000002/adapter_model.safetensors"),
    ("bob.smith", "datasets", "ds_1", "train.jsonl"),
    ("U-42", ObjectKind.MODELS, "m1", "tokenizer/"),
    ("alice", ObjectKind.UPLOADS, "f1", "数据集 训练.json"),
    ("alice", ObjectKind.UPLOADS, "f1", "...hidden..name"),  # dots inside a name are not traversal
    ("alice", ObjectKind.UPLOADS, "f1", "emoji 😀 name.txt"),
    ("alice", ObjectKind.LOGS, "j.1", ""),
    ("a", ObjectKind.EXPORTS, "e", "x" * 255),
]


@pytest.mark.parametrize(("user", "kind", "id_", "name"), ACCEPTED)
def test_accepted_keys_stay_under_the_owner_prefix(user: str, kind: str, id_: str, name: str) -> None:
    key = object_key(user, kind, id_, name)

    assert key.startswith(f"users/{user}/{ObjectKind(kind).value}/{id_}/")
    assert key == f"users/{user}/{ObjectKind(kind).value}/{id_}/{name}"
    # Normalising the path changes nothing but a trailing slash: no '..' or '.' to collapse.
    assert posixpath.normpath(key) == key.rstrip("/")
    assert len(key.encode()) <= 1024


def test_random_names_either_fail_or_stay_under_the_prefix() -> None:
    """A property test without extra dependencies: random names built from the dangerous alphabet."""
    alphabet = ["a", "Z", "0", ".", "..", "/", "\\", "\x00", "\n", "\x7f", "\u202e", " ", "é", "中", "😀", "%2e", "~"]
    rng = random.Random(0)
    accepted = 0
    for _ in range(5000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        try:
            key = object_key("alice", ObjectKind.UPLOADS, "f1", name)
        except InvalidKeyError:
            continue
        accepted += 1
        assert key.startswith("users/alice/uploads/f1/"), name
        assert posixpath.normpath(key) == key.rstrip("/"), name
        assert not any(ch in key for ch in "\\\x00\n\x7f\u202e"), name
    assert accepted > 500  # the generator also produces plenty of valid names
