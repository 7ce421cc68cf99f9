"""The on-disk archive: hourly zstd-compressed JSON Lines partitions (docs/archive-format.md)."""

from plsnap.archive.layout import Partition, list_partitions, open_instance, partition_path, resolve_instance
from plsnap.archive.reader import ArchiveReader
from plsnap.archive.writer import ArchiveWriter

__all__ = [
    "ArchiveReader",
    "ArchiveWriter",
    "Partition",
    "list_partitions",
    "open_instance",
    "partition_path",
    "resolve_instance",
]
