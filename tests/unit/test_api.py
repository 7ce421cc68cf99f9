"""The public library API is pinned: changing it is a deliberate act."""

from __future__ import annotations

import subprocess
import sys

import pytest

import plsnap

EXPECTED = [
    "ArchiveError", "ArchiveReader", "ArchiveWriter", "AtResult", "Config", "ConfigError", "Execution",
    "NoDataError", "PlsnapError", "Session", "Snapshot", "SourceError", "UsageError", "WindowSummary",
    "__version__", "load_config", "parse_time", "sessions_at", "stitch", "summarize",
]  # fmt: skip


def test_all_is_pinned() -> None:
    """plsnap.__all__ is exactly the documented API and every name resolves."""
    assert sorted(plsnap.__all__) == sorted(EXPECTED)
    for name in plsnap.__all__:
        assert getattr(plsnap, name) is not None


def test_unknown_name_raises_attribute_error() -> None:
    """A name outside the API is an AttributeError, as for any module."""
    with pytest.raises(AttributeError):
        _ = plsnap.nothing_here  # type: ignore[attr-defined]


def test_import_is_lazy() -> None:
    """Importing plsnap loads none of the heavy modules until a name is used."""
    code = "import sys, plsnap; print(sorted(m for m in sys.modules if m.startswith('plsnap.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
