"""plsnap: a flight recorder for MySQL and MariaDB sessions.

The public library API: read an archive, replay an instant, summarize a window. Capturing (which needs PyMySQL)
lives in :mod:`plsnap.source`, :mod:`plsnap.recorder` and :mod:`plsnap.daemon`.
"""

from plsnap.archive import ArchiveReader, ArchiveWriter
from plsnap.config import Config, load_config
from plsnap.errors import ArchiveError, ConfigError, NoDataError, PlsnapError, SourceError, UsageError
from plsnap.model import Session, Snapshot
from plsnap.replay import AtResult, Execution, sessions_at, stitch
from plsnap.summary import WindowSummary, summarize
from plsnap.timeparse import parse_time

__version__ = "0.1.0"

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
