"""Readers for the deployment files (Dockerfile, compose file, systemd unit) shared by the deploy tests.

Each reader is deliberately small and strict: it understands the subset of the format our files use and fails
loudly on anything else, so a test never passes because a parser silently skipped a line.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
UNIT = ROOT / "systemd" / "plsnap.service"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
VENV_BIN = Path(sys.executable).parent


def plsnap_bin() -> Path:
    """The ``plsnap`` console script of the environment running the tests (what pip puts on PATH)."""
    path = VENV_BIN / "plsnap"
    if not path.is_file():
        pytest.fail(f"{path} is missing: install the package with pip install -e '.[test]'")
    return path


def require_tool(name: str, hint: str) -> str:
    """The absolute path of ``name`` (looked up in the venv's bin, then PATH); fails the test with ``hint``."""
    found = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is not installed: {hint}")
    return found


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction with its continuation lines joined; ``stage`` counts FROM lines from 0."""

    keyword: str
    args: str
    line: int
    stage: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction (ENTRYPOINT ["plsnap"]), None for shell form."""
        if not self.args.startswith("["):
            return None
        value = json.loads(self.args)
        assert isinstance(value, list), self
        return [str(item) for item in value]


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Every instruction of a Dockerfile; comment lines (also inside continuations) are dropped, as Docker does."""
    instructions: list[Instruction] = []
    stage = -1
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        continued = stripped.endswith("\\")
        buffer.append(stripped[:-1].strip() if continued else stripped)
        if continued:
            continue
        text = " ".join(buffer)
        buffer = []
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), start, stage))
    assert not buffer, f"{path}: the last instruction ends with a line continuation"
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    """The instructions of the last build stage (the image that ships)."""
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def dockerfile_env(instructions: list[Instruction]) -> dict[str, str]:
    """The ENV values the final image sets (``ENV KEY=VALUE ...`` form only)."""
    env: dict[str, str] = {}
    for instruction in final_stage(instructions):
        if instruction.keyword == "ENV":
            for item in shlex.split(instruction.args):
                key, sep, value = item.partition("=")
                assert sep, f"line {instruction.line}: use ENV KEY=VALUE, not the legacy ENV KEY VALUE"
                env[key] = value
    return env


def image_command(instructions: list[Instruction]) -> list[str]:
    """What ``docker run IMAGE`` executes: the exec-form ENTRYPOINT followed by the exec-form CMD."""
    stage = final_stage(instructions)
    entrypoint = [i for i in stage if i.keyword == "ENTRYPOINT"][-1].exec_form()
    cmd = [i for i in stage if i.keyword == "CMD"][-1].exec_form()
    assert entrypoint is not None, "ENTRYPOINT must use the exec form"
    assert cmd is not None, "CMD must use the exec form"
    return entrypoint + cmd


def healthcheck_command(instructions: list[Instruction]) -> list[str]:
    """The exec-form command of the final stage's HEALTHCHECK."""
    checks = [i for i in final_stage(instructions) if i.keyword == "HEALTHCHECK"]
    assert checks, "the image has no HEALTHCHECK"
    words = checks[-1].args.split(" ")
    options = [w for w in words if w.startswith("--")]
    rest = " ".join(words[len(options) :])
    assert rest.startswith("CMD ["), f"HEALTHCHECK must be CMD [...] in exec form, got {rest!r}"
    command = json.loads(rest[len("CMD ") :])
    assert isinstance(command, list)
    return [str(item) for item in command]


def parse_unit(path: Path = UNIT) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values in order]}}; repeated keys accumulate as systemd reads them."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"{path}:{number}: line continuations are not used in this unit"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path}:{number}: not a key=value line in a section: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def unit_value(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    """The effective (last) value of ``key``; fails when it is not set."""
    values = unit.get(section, {}).get(key)
    assert values, f"[{section}] {key}= is not set in {UNIT.name}"
    return values[-1]


def load_yaml(path: Path) -> Any:
    """Parse a YAML file with PyYAML (a test dependency)."""
    try:
        import yaml
    except ImportError:
        pytest.fail("PyYAML is missing: pip install -e '.[test]' (the test extra lists pyyaml)")
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)
