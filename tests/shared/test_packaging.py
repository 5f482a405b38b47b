"""Images install TuneFlow with `pip install .`, which ships only files pyproject names: check that covers shared/."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_file_in_shared_is_installed() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["*"]
    files = [p for p in (ROOT / "shared").rglob("*") if p.is_file() and "__pycache__" not in p.parts]

    for path in files:
        rel = path.relative_to(ROOT)
        if path.suffix == ".py":
            # A module ships only inside a package: every folder above it needs an __init__.py.
            missing = [d for d in rel.parents[:-1] if not (ROOT / d / "__init__.py").is_file()]
            assert not missing, f"{rel} is not in a package: add {missing[0]}/__init__.py"
        else:
            assert any(fnmatch.fnmatch(path.name, p) for p in patterns), (
                f"{rel} is missing from [tool.setuptools.package-data] in pyproject.toml"
            )
