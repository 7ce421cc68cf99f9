"""Oldest-first retention: a pure plan with a reason for every partition, and a separate delete step.

The age window is measured from the newest stored snapshot, not from "now" (as restic does): after a month-long
outage of the daemon, the history from just before it is what an investigator needs. The size (``max_bytes``)
and free-space (``min_free``) guards still apply. Damaged files set aside beside a partition count toward both
guards and go with their partition. The newest partition and any ``protected`` one (the partition being
written) are never deleted, so a plan can never keep nothing. Deleting never follows a symlink and never
leaves the instance directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from plsnap.archive.fs import SafeDir
from plsnap.archive.layout import TEMP_RE, Listing, Partition, list_partitions
from plsnap.config import MinFree, RetentionConfig
from plsnap.errors import ArchiveError
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


@dataclass(frozen=True, slots=True)
class Outcome:
    """A retention run: every decision, what was deleted, and what could not be."""

    decisions: list[Decision]
    deleted: list[Decision]
    refused: list[str]
    listing: Listing


def disk_usage(directory: SafeDir) -> DiskUsage:
    """Total and free bytes (as an unprivileged user sees them) of the filesystem holding ``directory``."""
    total, free = directory.free_space()
    return DiskUsage(total=total, free=free)


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
    written = {Path(p) for p in protected}
    shielded = written | {ordered[-1].path}
    reference = newest_snapshot or ordered[-1].end
    cutoff = reference - timedelta(seconds=policy.max_age)
    age_text = format_duration(policy.max_age)
    reasons: dict[Path, tuple[bool, str]] = {}
    for part in ordered:
        if part.path in shielded:
            reasons[part.path] = (True, "being written" if part.path in written else "newest partition")
        elif part.end <= cutoff:
            reasons[part.path] = (False, f"older than {age_text} before the newest snapshot ({format_ts(reference)})")
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


def delete(decisions: Iterable[Decision], instance: SafeDir) -> tuple[list[Decision], list[str]]:
    """Delete every file of the partitions marked ``delete``, then empty date folders.

    Returns (deleted decisions, refusals): a date folder that is a symlink, not ours, or gone is refused and
    left alone, with the reason.
    """
    deleted: list[Decision] = []
    refused: list[str] = []
    touched: set[str] = set()
    for decision in decisions:
        if decision.keep:
            continue
        part = decision.partition
        try:
            folder = instance.subdir(part.date_name)
        except FileNotFoundError:
            continue
        except ArchiveError as exc:
            refused.append(str(exc))
            continue
        with folder:
            removed = [name for name in part.all_names if folder.unlink(name)]
            for name in _temp_files_of(folder, part):
                folder.unlink(name)
            folder.fsync()
        if removed:
            deleted.append(decision)
            touched.add(part.date_name)
    for name in touched:
        instance.rmdir(name)
    if touched:
        instance.fsync()
    return deleted, refused


def _temp_files_of(folder: SafeDir, part: Partition) -> list[str]:
    """Temp files a crash left for this hour (of its compaction or its rollup): they go with the hour."""
    prefix = f".{part.start:%H}."
    return [e.name for e in folder.entries() if e.kind != "dir" and e.name.startswith(prefix) and TEMP_RE.match(e.name)]


def run(
    instance: SafeDir,
    policy: RetentionConfig,
    *,
    newest_snapshot: datetime | None,
    protected: Iterable[Path] = (),
    dry_run: bool = False,
) -> Outcome:
    """List, plan and (unless ``dry_run``) delete: the one retention procedure of the daemon and ``prune``."""
    listing = list_partitions(instance)
    try:
        disk: DiskUsage | None = disk_usage(instance)
    except OSError:
        disk = None
    decisions = plan(listing.partitions, policy, newest_snapshot=newest_snapshot, disk=disk, protected=protected)
    if dry_run:
        return Outcome(decisions, [], [], listing)
    deleted, refused = delete(decisions, instance)
    return Outcome(decisions, deleted, refused, listing)
