"""The on-disk archive: hourly zstd-compressed JSON Lines partitions (docs/archive-format.md).

Names are imported on first access (PEP 562), so that reading never loads the writer."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ArchiveReader": "plsnap.archive.reader",
    "ArchiveWriter": "plsnap.archive.writer",
    "Partition": "plsnap.archive.layout",
    "list_partitions": "plsnap.archive.layout",
    "open_instance": "plsnap.archive.layout",
    "partition_path": "plsnap.archive.layout",
    "resolve_instance": "plsnap.archive.layout",
}
__all__ = [
    "ArchiveReader",
    "ArchiveWriter",
    "Partition",
    "list_partitions",
    "open_instance",
    "partition_path",
    "resolve_instance",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'plsnap.archive' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
