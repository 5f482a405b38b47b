"""The one function that builds object keys, so no key can leave its owner's prefix."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

MAX_NAME_BYTES = 255
MAX_KEY_BYTES = 1024
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # used with fullmatch: `$` would let "bob\n" through


class ObjectKind(StrEnum):
    """Top-level folders under a user's prefix."""

    UPLOADS = "uploads"
    DATASETS = "datasets"
    JOBS = "jobs"
    MODELS = "models"
    EXPORTS = "exports"
    EVALUATIONS = "evaluations"
    LOGS = "logs"


class InvalidKeyError(ValueError):
    """A user, id or file name that cannot safely become part of an object key."""


def _check_id(what: str, value: str) -> str:
    if not _ID.fullmatch(value) or ".." in value:
        raise InvalidKeyError(
            f"{what} {value!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', starting with a "
            "letter or digit"
        )
    return value


def check_file_name(name: str) -> str:
    """Validate a relative file name (sub-folders allowed with '/') and return it unchanged.

    A name ending in '/' names a sub-prefix (a folder of objects), e.g. `checkpoints/step-2/`.

    Raises:
        InvalidKeyError: The name is empty, absolute, or holds a backslash, a control character,
            an empty, '.' or '..' segment, or a segment over MAX_NAME_BYTES.
    """
    if not name:
        raise InvalidKeyError("file name is empty")
    if name.startswith("/"):
        raise InvalidKeyError(f"file name {name!r} is absolute; give a relative name")
    if "\\" in name:
        raise InvalidKeyError(f"file name {name!r} contains a backslash")
    bad = next((ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")), None)
    if bad is not None:
        raise InvalidKeyError(f"file name {name!r} contains control character U+{ord(bad):04X}")
    for part in name.removesuffix("/").split("/"):
        if part in ("", ".", ".."):
            raise InvalidKeyError(f"file name {name!r} has an empty, '.' or '..' path segment")
        if len(part.encode()) > MAX_NAME_BYTES:
            raise InvalidKeyError(f"file name segment {part[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
    return name


def user_prefix(user: str) -> str:
    """The prefix that holds everything a user owns."""
    return f"users/{_check_id('user', user)}/"


def is_owned_key(key: str, user: str) -> bool:
    """Whether a client-supplied key or prefix lies under `user`'s prefix with no '..' segment to climb out."""
    return key.startswith(user_prefix(user)) and ".." not in key.split("/")


def object_key(user: str, kind: ObjectKind | str, id: str, name: str = "") -> str:
    """Build `users/{user}/{kind}/{id}/{name}`; raise InvalidKeyError for anything that could escape it.

    An empty `name` gives the prefix of that object group (ending in '/'), and a name ending in '/'
    a sub-prefix inside it.

    Raises:
        InvalidKeyError: Any part is unsafe; the message names the part and the rule it breaks.
    """
    try:
        kind = ObjectKind(kind)
    except ValueError:
        raise InvalidKeyError(f"kind {kind!r} is not one of {[k.value for k in ObjectKind]}") from None
    prefix = f"{user_prefix(user)}{kind.value}/{_check_id('id', id)}/"
    key = prefix + (check_file_name(name) if name else "")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"object key for {name[:40]!r}... is longer than {MAX_KEY_BYTES} bytes")
    return key
