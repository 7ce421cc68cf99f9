"""The on-disk archive: hourly zstd-compressed JSON Lines partitions (DESIGN §3)."""

from plsnap.archive.layout import Partition, list_partitions, partition_path, resolve_instance_dir
from plsnap.archive.reader import ArchiveReader
from plsnap.archive.writer import ArchiveWriter

__all__ = [
    "ArchiveReader",
    "ArchiveWriter",
    "Partition",
    "list_partitions",
    "partition_path",
    "resolve_instance_dir",
]
