"""Oldest-first retention: a pure plan with a reason for every partition, and a separate delete step.

The age window is measured from the newest stored snapshot, not from "now" (as restic does): after a month-long
outage of the daemon, the history from just before it is what an investigator needs. The size (``max_bytes``)
and free-space (``min_free``) guards still apply. The newest partition and any ``protected`` one (the partition
being written) are never deleted, so a plan can never keep nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from plsnap.archive.layout import Partition
from plsnap.config import MinFree, RetentionConfig
from plsnap.model import format_ts
from plsnap.units import format_duration, format_size


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """Filesystem figures in bytes."""

    total: int
    free: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one partition, and why."""

    partition: Partition
    keep: bool
    reason: str

    @property
    def action(self) -> str:
        """``keep`` or ``delete``."""
        return "keep" if self.keep else "delete"


def disk_usage(path: Path) -> DiskUsage:
    """Total and free bytes (as an unprivileged user sees them) of the filesystem holding ``path``."""
    stats = os.statvfs(path)
    return DiskUsage(total=stats.f_blocks * stats.f_frsize, free=stats.f_bavail * stats.f_frsize)


def plan(
    partitions: Sequence[Partition],
    policy: RetentionConfig,
    *,
    newest_snapshot: datetime | None,
    disk: DiskUsage | None = None,
    protected: Iterable[Path] = (),
) -> list[Decision]:
    """Decide, oldest first, which partitions to keep and which to delete, with a reason for each."""
    ordered = sorted(partitions, key=lambda p: p.start)
    if not ordered:
        return []
    shielded = {Path(p) for p in protected} | {ordered[-1].path}
    reference = newest_snapshot or ordered[-1].end
    cutoff = reference - timedelta(seconds=policy.max_age)
    age_text = format_duration(policy.max_age)
    reasons: dict[Path, tuple[bool, str]] = {}
    for part in ordered:
        if part.path in shielded:
            label = "being written" if part.path in {Path(p) for p in protected} else "newest partition"
            reasons[part.path] = (True, label)
        elif part.end <= cutoff:
            reasons[part.path] = (
                False,
                f"older than {age_text} before the newest snapshot ({format_ts(reference)})",
            )
        else:
            reasons[part.path] = (True, f"within {age_text} of the newest snapshot")
    kept = [p for p in ordered if reasons[p.path][0]]
    if policy.max_bytes:
        total = sum(p.size for p in kept)
        for part in list(kept):
            if total <= policy.max_bytes:
                break
            if part.path in shielded:
                continue
            reasons[part.path] = (False, f"over max_bytes {format_size(policy.max_bytes)}: oldest first")
            kept.remove(part)
            total -= part.size
    if policy.min_free is not None and disk is not None:
        _apply_min_free(
            ordered=ordered, kept=kept, reasons=reasons, shielded=shielded, floor=policy.min_free, disk=disk
        )
    return [Decision(p, *reasons[p.path]) for p in ordered]


def _apply_min_free(
    *,
    ordered: Sequence[Partition],
    kept: list[Partition],
    reasons: dict[Path, tuple[bool, str]],
    shielded: set[Path],
    floor: MinFree,
    disk: DiskUsage,
) -> None:
    required = floor.required(disk.total)
    free = disk.free + sum(p.size for p in ordered if not reasons[p.path][0])
    for part in list(kept):
        if free >= required:
            break
        if part.path in shielded:
            continue
        reasons[part.path] = (False, f"free space below {floor}: oldest first")
        kept.remove(part)
        free += part.size


def guard_tripped(partitions: Sequence[Partition], policy: RetentionConfig, disk: DiskUsage | None) -> bool:
    """True when the size or free-space guard asks for pruning now (checked after each write)."""
    if policy.max_bytes and sum(p.size for p in partitions) > policy.max_bytes:
        return True
    return bool(policy.min_free is not None and disk is not None and disk.free < policy.min_free.required(disk.total))


def delete(decisions: Iterable[Decision], instance_dir: Path) -> list[Decision]:
    """Delete the partitions marked ``delete`` and then-empty date folders; return what was deleted."""
    deleted: list[Decision] = []
    touched: set[Path] = set()
    for decision in decisions:
        if decision.keep:
            continue
        path = decision.partition.path
        if path.parent.parent != instance_dir:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        deleted.append(decision)
        touched.add(path.parent)
    for folder in touched:
        with contextlib.suppress(OSError):
            folder.rmdir()
    if touched:
        _fsync_dir(instance_dir)
    return deleted


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
