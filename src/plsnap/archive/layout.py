"""Mapping between time and partition paths: ``<data_dir>/<instance>/<YYYY-MM-DD>/<HH>.jsonl.zst`` (UTC)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from plsnap.errors import ConfigError, NoDataError

INSTANCE_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
DATE_DIR_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
PARTITION_RE = re.compile(r"^(\d{2})\.jsonl\.zst$")
SUFFIX = ".jsonl.zst"
LOCK_NAME = ".plsnap.lock"
HEARTBEAT_NAME = ".plsnap.heartbeat"
REPAIR_SUFFIX = ".repair"
OWN_HIDDEN = (LOCK_NAME, HEARTBEAT_NAME)
PARTITION_SPAN = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Partition:
    """One hourly partition file: ``start`` is its first instant (UTC), ``size`` its length in bytes."""

    path: Path
    start: datetime
    size: int

    @property
    def end(self) -> datetime:
        """The first instant after this partition (exclusive), UTC."""
        return self.start + PARTITION_SPAN


def validate_instance(name: str) -> str:
    """Return ``name`` if it is a valid instance name, else raise ConfigError."""
    if not INSTANCE_RE.match(name) or name in {".", ".."}:
        raise ConfigError(f"instance name {name!r} is invalid: use 1-128 characters of A-Z a-z 0-9 . _ -")
    return name


def hour_start(moment: datetime) -> datetime:
    """The start of the UTC hour containing ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def partition_path(instance_dir: Path, moment: datetime) -> Path:
    """The partition file that holds snapshots taken at ``moment``."""
    start = hour_start(moment)
    return instance_dir / start.strftime("%Y-%m-%d") / f"{start:%H}{SUFFIX}"


def parse_partition_path(path: Path) -> datetime | None:
    """The start instant of a partition path, or None if the path is not a partition name."""
    match_date = DATE_DIR_RE.match(path.parent.name)
    match_hour = PARTITION_RE.match(path.name)
    if not match_date or not match_hour:
        return None
    try:
        year, month, day = (int(g) for g in match_date.groups())
        return datetime(year, month, day, int(match_hour.group(1)), tzinfo=UTC)
    except ValueError:
        return None


def is_own_file(path: Path, instance_dir: Path) -> bool:
    """True for files that plsnap itself creates in an instance directory."""
    if path.parent == instance_dir:
        return path.name in OWN_HIDDEN
    if path.name.endswith(REPAIR_SUFFIX):
        return parse_partition_path(path.with_name(path.name.removesuffix(REPAIR_SUFFIX))) is not None
    return parse_partition_path(path) is not None


def list_partitions(instance_dir: Path) -> tuple[list[Partition], list[Path]]:
    """All partitions, oldest first, and every foreign path found beside them (never plsnap's own files)."""
    partitions: list[Partition] = []
    foreign: list[Path] = []
    try:
        entries = sorted(instance_dir.iterdir())
    except FileNotFoundError:
        return [], []
    for entry in entries:
        if entry.name in OWN_HIDDEN:
            continue
        if not entry.is_dir() or not DATE_DIR_RE.match(entry.name):
            foreign.append(entry)
            continue
        for child in sorted(entry.iterdir()):
            start = parse_partition_path(child)
            if start is not None and child.is_file():
                partitions.append(Partition(child, start, child.stat().st_size))
            elif not is_own_file(child, instance_dir):
                foreign.append(child)
    partitions.sort(key=lambda p: p.start)
    return partitions, foreign


def resolve_instance_dir(data_dir: Path, instance: str | None) -> Path:
    """The instance directory to read: the named one, or the only one present; NoDataError otherwise."""
    if instance is not None:
        path = data_dir / validate_instance(instance)
        if not path.is_dir():
            raise NoDataError(f"no archive for instance {instance!r} under {data_dir}")
        return path
    try:
        candidates = sorted(p for p in data_dir.iterdir() if p.is_dir() and INSTANCE_RE.match(p.name))
    except (FileNotFoundError, NotADirectoryError):
        raise NoDataError(f"no archive at {data_dir} (data directory does not exist)") from None
    if not candidates:
        raise NoDataError(f"no archive under {data_dir}")
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise NoDataError(f"several instances under {data_dir} ({names}): choose one with --instance")
    return candidates[0]
