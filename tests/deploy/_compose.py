"""Readers for docker-compose.yml and infra/docker/*.Dockerfile that the deploy tests share."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILES = sorted((ROOT / "infra" / "docker").glob("*.Dockerfile"))

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; `$$` escapes a `$`.
VARIABLE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@cache
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@cache
def compose() -> dict[str, Any]:
    """The compose file as PyYAML reads it (anchors and `<<` merges resolved)."""
    return yaml.safe_load(compose_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def interpolate(value: str) -> str:
    """Resolve ${...} the way Compose does with no variables set, but fill required ones with a dummy."""
    return VARIABLE.sub(lambda m: m["arg"] if m["op"] in (":-", "-") else "dummy", value).replace("$$", "$")


def command_of(service: dict[str, Any]) -> list[str] | None:
    """The service's `command:` as an argument list, interpolated (None when the image's CMD applies)."""
    command = service.get("command")
    if command is None:
        return None
    assert isinstance(command, list), "write commands in exec (list) form: no shell, signals reach the process"
    return [interpolate(str(part)) for part in command]


@dataclass(frozen=True)
class Dockerfile:
    """One parsed Dockerfile."""

    path: Path
    instructions: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return self.path.name

    def final_stage(self) -> list[dict[str, Any]]:
        starts = [i for i, ins in enumerate(self.instructions) if ins["instruction"] == "FROM"]
        return self.instructions[starts[-1] :]

    def base_images(self) -> list[str]:
        """FROM targets, with ARG defaults substituted and earlier stages left out."""
        defaults = {}
        for ins in self.instructions:
            if ins["instruction"] == "ARG" and "=" in ins["value"]:
                key, default = ins["value"].split("=", 1)
                defaults.setdefault(key.strip(), default.strip())
        stages, images = set(), []
        for ins in self.instructions:
            if ins["instruction"] != "FROM":
                continue
            words = [w for w in ins["value"].split() if not w.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m[1], m[0]), words[0])
            if image not in stages:
                images.append(image)
            if len(words) == 3:
                stages.add(words[2])
        return images

    def exec_form(self, instruction: str) -> list[str] | None:
        """The last CMD/ENTRYPOINT of the final stage in exec form (None when absent)."""
        found = [ins for ins in self.final_stage() if ins["instruction"] == instruction]
        return json.loads(found[-1]["value"]) if found else None

    def copy_sources(self) -> Iterator[str]:
        """Build-context paths that COPY/ADD read (sources from other stages or contexts left out)."""
        for ins in self.instructions:
            if ins["instruction"] not in ("COPY", "ADD"):
                continue
            words = ins["value"].split()
            if any(w.startswith("--from=") for w in words):
                continue
            paths = [w for w in words if not w.startswith("--")]
            yield from paths[:-1]


@cache
def dockerfile(path: Path) -> Dockerfile:
    parser = DockerfileParser(path=str(path), cache_content=True)
    return Dockerfile(path=path, instructions=parser.structure)


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last matching pattern wins)."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    candidates = [path.strip("/")]
    parts = candidates[0].split("/")
    candidates += ["/".join(parts[:i]) for i in range(1, len(parts))]  # a path is out if a parent is
    ignored = False
    for pattern in (p for p in patterns if p and not p.startswith("#")):
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/").removeprefix("**/")
        if any(fnmatch.fnmatch(c, glob) or fnmatch.fnmatch(c.rsplit("/", 1)[-1], glob) for c in candidates):
            ignored = not negated
    return ignored
