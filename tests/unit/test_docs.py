"""The repository's docs are its contracts: generated pages are current, and the hand-written ones name every
command, config key and archive key, link only to what exists, and hold recipes that work as written."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import fields
from pathlib import Path
from types import ModuleType

import pytest

from plsnap.archive import ArchiveWriter
from plsnap.archive.format import encode_line
from plsnap.config import SCHEMA
from plsnap.model import SESSION_KEYS, SNAPSHOT_KEYS
from tests.synth import gap, idle, session, snap

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLE = ROOT / "config" / "plsnap.example.toml"
#: Every top-level key of an archive line (docs/archive-format.md, "Top-level keys").
TOP_LEVEL_KEYS = (
    "ts", "v", "instance", "source", "server", "duration_ms", "error", "interval_s", "sessions", "visibility",
    "account", "source_fallback", "locks_error", "gap_since", "missed", "lock_sources", "locks",
)  # fmt: skip
#: Every session key of an archive line (docs/archive-format.md, "Session keys").
SESSION_RECORD_KEYS = (
    "id", "user", "host", "db", "command", "time", "state", "info", "time_ms", "stage", "max_stage", "progress",
    "memory_used", "examined_rows", "trx_age", "trx_state", "trx_rows_locked", "blocked_by", "info_truncated",
    "info_length", "info_invalid_utf8", "info_base64", "info_has_nul",
)  # fmt: skip
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)


def gen_docs() -> ModuleType:
    """scripts/gen_docs.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_docs", module)
    spec.loader.exec_module(module)
    return module


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """Markdown without fenced code blocks and code spans (where brackets are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in _FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            name, number = base, 1
            while name in found:
                name, number = f"{base}-{number}", number + 1
            found.add(name)
    return found


def relative_links() -> list[tuple[Path, str, str]]:
    """(file, target path, anchor) for every relative link of README.md and docs/*.md."""
    links = []
    for path in markdown_files():
        for target in _LINK.findall(prose(path.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue
            file_part, _, anchor = target.partition("#")
            links.append((path, file_part, anchor))
    return links


def section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(heading + "\n")
    following = re.compile(rf"^#{{1,{level}}}\s", re.MULTILINE)
    match = following.search(text, start + len(heading) + 1)
    return text[start : match.start() if match else len(text)]


def test_generated_docs_are_current() -> None:
    """docs/cli-reference.md and docs/configuration.md are exactly what scripts/gen_docs.py generates now."""
    for path, text in gen_docs().outputs().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        assert current == text, f"{path.relative_to(ROOT)} is stale: run make docs"


def test_every_subcommand_is_in_cli_md() -> None:
    """Every subcommand of plsnap.cli.build_parser() is described in docs/cli.md."""
    from plsnap.cli import build_parser

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    names = gen_docs()._subcommands(build_parser())
    assert names
    for name in names:
        assert f"### `plsnap {name}" in text, f"docs/cli.md has no section for plsnap {name}"


def test_every_config_key_is_documented() -> None:
    """Every key of plsnap.config.SCHEMA appears in docs/configuration.md (in its section) and in the example
    config."""
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for name, (_, parsers) in SCHEMA.items():
        part = section(text, f"## [{name}]")
        for key in parsers:
            assert f"| `{key}` |" in part, f"[{name}] {key} is missing from docs/configuration.md"
            assert key in example.get(name, {}), f"[{name}] {key} is missing from {EXAMPLE.name}"


def test_example_config_values_are_the_defaults() -> None:
    """Every value written in config/plsnap.example.toml parses to the code's default for that key."""
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for name, (cls, parsers) in SCHEMA.items():
        defaults = {f.name: f.default for f in fields(cls)}
        for key, parse in parsers.items():
            if key in example.get(name, {}):  # a missing key is test_every_config_key_is_documented's failure
                assert parse(example[name][key]) == defaults[key], f"[{name}] {key}: the example is not the default"


def test_relative_links_point_to_existing_files() -> None:
    """Every relative link in README.md and docs/*.md points to a file or directory that exists."""
    links = relative_links()
    assert links
    for path, target, _ in links:
        if target:
            assert (path.parent / target).exists(), f"{path.relative_to(ROOT)}: broken link to {target}"


def test_link_anchors_point_to_headings() -> None:
    """Every #anchor of a relative link to a Markdown file names a heading of that file."""
    for path, target, anchor in relative_links():
        destination = (path.parent / target) if target else path
        if anchor and destination.suffix == ".md" and destination.is_file():
            assert anchor in anchors(destination), f"{path.relative_to(ROOT)}: no heading #{anchor} in {target}"


def test_every_archive_key_is_in_archive_format() -> None:
    """Every top-level archive key (and every key model.py names) is described in docs/archive-format.md."""
    text = (DOCS / "archive-format.md").read_text(encoding="utf-8")
    top = section(text, "### Top-level keys")
    for key in dict.fromkeys((*TOP_LEVEL_KEYS, *SNAPSHOT_KEYS)):
        assert f"| `{key}` |" in top, f"top-level key {key} is missing from docs/archive-format.md"


def test_every_session_key_is_in_archive_format() -> None:
    """Every session key of an archive line is described in docs/archive-format.md."""
    text = section((DOCS / "archive-format.md").read_text(encoding="utf-8"), "### Session keys")
    for key in dict.fromkeys((*SESSION_RECORD_KEYS, *SESSION_KEYS)):
        assert f"`{key}`" in text, f"session key {key} is missing from docs/archive-format.md"


def recipe(language: str, where: str = "docs") -> str:
    """The first fenced ``language`` recipe of docs/archive-format.md's interop section, or (``where`` "readme")
    the README's block of that language that reads the archive (``zstdcat`` or ``read_json``)."""
    if where == "docs":
        text = section((DOCS / "archive-format.md").read_text(encoding="utf-8"), "## Interop recipes")
        match = re.search(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
        assert match, f"no {language} recipe in docs/archive-format.md"
        return match.group(1)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    found = [b for b in blocks if "zstdcat" in b or "read_json" in b]
    assert found, f"the README has no {language} recipe reading the archive"
    return found[0]


def write_archive(instance_dir: Path, *snapshots: object) -> None:
    with ArchiveWriter(instance_dir, fsync=False) as writer:
        for s in snapshots:
            writer.append(encode_line(s.to_record()), s.ts)  # type: ignore[attr-defined]


@pytest.mark.parametrize("where", ["docs", "readme"])
def test_jq_recipe_works_as_written(tmp_path: Path, where: str) -> None:
    """The zstdcat | jq recipe of docs/archive-format.md (and the README's) prints the running statements of a
    partition that also holds gap lines."""
    if not (shutil.which("zstdcat") and shutil.which("jq")):
        pytest.fail("zstd and jq must be installed for the interop recipes")
    root = tmp_path / "default"
    write_archive(root, snap(0, session(1, "SELECT 1"), idle(2)), gap(10), snap(20, session(3, "SELECT 2")))
    command = recipe("sh", where).replace(
        "/var/lib/plsnap/default/2026-11-28/03.jsonl.zst", str(root / "2026-11-28/03.jsonl.zst")
    )
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == ['"SELECT 1"', '"SELECT 2"', ""]


@pytest.mark.parametrize("where", ["docs", "readme"])
def test_duckdb_recipe_works_as_written(tmp_path: Path, where: str) -> None:
    """The DuckDB recipe of docs/archive-format.md (and the README's) counts samples per statement across
    partitions, and returns nothing (instead of failing) on an archive holding only gap lines."""
    import duckdb

    full, gaps_only = tmp_path / "full", tmp_path / "gaps"
    write_archive(full, *[snap(t, session(1, "SELECT 1"), idle(2)) for t in range(0, 7200, 600)], gap(7300))
    write_archive(gaps_only, gap(0), gap(10))
    query = recipe("sql", where)
    assert "/var/lib/plsnap/default/" in query
    for root, expected in ((full, [("SELECT 1", 12)]), (gaps_only, [])):
        rows = duckdb.connect().sql(query.replace("/var/lib/plsnap/default/", f"{root}/")).fetchall()
        assert rows == expected, root.name
