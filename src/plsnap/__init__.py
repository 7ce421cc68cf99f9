"""plsnap: a flight recorder for MySQL and MariaDB sessions.

The public library API: read an archive, replay an instant, summarize a window. Names are imported lazily
(PEP 562) so that ``plsnap at`` starts fast; capturing (which needs PyMySQL) lives in :mod:`plsnap.source`,
:mod:`plsnap.recorder` and :mod:`plsnap.daemon`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ArchiveError": "plsnap.errors",
    "ArchiveReader": "plsnap.archive.reader",
    "ArchiveWriter": "plsnap.archive.writer",
    "AtResult": "plsnap.replay",
    "Config": "plsnap.config",
    "ConfigError": "plsnap.errors",
    "Execution": "plsnap.replay",
    "NoDataError": "plsnap.errors",
    "PlsnapError": "plsnap.errors",
    "Session": "plsnap.model",
    "Snapshot": "plsnap.model",
    "SourceError": "plsnap.errors",
    "UsageError": "plsnap.errors",
    "WindowSummary": "plsnap.summary",
    "load_config": "plsnap.config",
    "parse_time": "plsnap.timeparse",
    "sessions_at": "plsnap.replay",
    "stitch": "plsnap.replay",
    "summarize": "plsnap.summary",
}

__all__ = [
    "ArchiveError",
    "ArchiveReader",
    "ArchiveWriter",
    "AtResult",
    "Config",
    "ConfigError",
    "Execution",
    "NoDataError",
    "PlsnapError",
    "Session",
    "Snapshot",
    "SourceError",
    "UsageError",
    "WindowSummary",
    "__version__",
    "load_config",
    "parse_time",
    "sessions_at",
    "stitch",
    "summarize",
]

if TYPE_CHECKING:
    from plsnap.archive.reader import ArchiveReader
    from plsnap.archive.writer import ArchiveWriter
    from plsnap.config import Config, load_config
    from plsnap.errors import ArchiveError, ConfigError, NoDataError, PlsnapError, SourceError, UsageError
    from plsnap.model import Session, Snapshot
    from plsnap.replay import AtResult, Execution, sessions_at, stitch
    from plsnap.summary import WindowSummary, summarize
    from plsnap.timeparse import parse_time


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'plsnap' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
