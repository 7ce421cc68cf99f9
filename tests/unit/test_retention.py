"""Retention plans on tables of synthetic partitions: oldest first, a reason for each, never the live one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from plsnap.archive.fs import SafeDir
from plsnap.archive.layout import Partition, partition_path
from plsnap.config import MinFree, RetentionConfig
from plsnap.retention import DiskUsage, delete, guard_tripped, plan

ROOT = Path("/archive/db1")
NEWEST = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)
DAY = 86400.0


def parts(hours: int, size: int = 100, newest: datetime = NEWEST) -> list[Partition]:
    """``hours`` hourly partitions ending with the hour of ``newest``."""
    last = newest.replace(minute=0)
    return [Partition(partition_path(ROOT, last - timedelta(hours=h)), last - timedelta(hours=h), size)
            for h in reversed(range(hours))]  # fmt: skip


def actions(decisions) -> list[str]:
    return [d.action for d in decisions]


def test_age_measured_from_newest_snapshot() -> None:
    """Partitions entirely older than max_age before the newest snapshot are deleted, the rest kept."""
    decisions = plan(parts(30), RetentionConfig(max_age=DAY), newest_snapshot=NEWEST)
    assert actions(decisions) == ["delete"] * 5 + ["keep"] * 25  # the 12:00 partition still holds 12:30-13:00
    assert "older than 1d before the newest snapshot" in decisions[0].reason
    assert decisions[-1].reason == "newest partition"


def test_long_outage_keeps_history_before_it() -> None:
    """A month without snapshots deletes nothing: age counts from the newest stored snapshot, not now."""
    month_ago = NEWEST - timedelta(days=30)
    decisions = plan(parts(48, newest=month_ago), RetentionConfig(max_age=7 * DAY), newest_snapshot=month_ago)
    assert set(actions(decisions)) == {"keep"}


@pytest.mark.parametrize(
    ("max_bytes", "deleted"),
    [(0, 0), (1000, 0), (999, 1), (500, 5), (100, 9), (1, 9)],
)
def test_max_bytes_deletes_oldest_first(max_bytes: int, deleted: int) -> None:
    """Over max_bytes, the oldest partitions go first, but never the newest one."""
    decisions = plan(parts(10), RetentionConfig(max_age=30 * DAY, max_bytes=max_bytes), newest_snapshot=NEWEST)
    assert actions(decisions) == ["delete"] * deleted + ["keep"] * (10 - deleted)
    if deleted:
        assert "over max_bytes" in decisions[0].reason


@pytest.mark.parametrize(
    ("free", "floor", "deleted"),
    [(10_000, MinFree(bytes=5000), 0), (4950, MinFree(bytes=5000), 1), (4801, MinFree(bytes=5000), 2),
     (0, MinFree(percent=1.0), 9), (9_900, MinFree(percent=1.0), 1)],
)  # fmt: skip
def test_min_free_deletes_oldest_until_floor(free: int, floor: MinFree, deleted: int) -> None:
    """Below the free-space floor, oldest partitions are deleted until enough space would be free."""
    decisions = plan(
        parts(10),
        RetentionConfig(max_age=30 * DAY, min_free=floor),
        newest_snapshot=NEWEST,
        disk=DiskUsage(total=1_000_000, free=free),
    )
    assert actions(decisions) == ["delete"] * deleted + ["keep"] * (10 - deleted)
    if deleted:
        assert "free space below" in decisions[0].reason


def test_protected_partition_is_never_deleted() -> None:
    """The partition being written survives every rule, even when it is not the newest (clock stepped back)."""
    partitions = parts(5)
    live = partitions[1].path
    decisions = plan(partitions, RetentionConfig(max_age=3600, max_bytes=1), newest_snapshot=NEWEST, protected=[live])
    assert [d.partition.path for d in decisions if d.keep] == [live, partitions[-1].path]
    assert next(d for d in decisions if d.partition.path == live).reason == "being written"


def test_empty_archive_plans_nothing() -> None:
    """No partitions, no decisions."""
    assert plan([], RetentionConfig(), newest_snapshot=None) == []


def test_guard_tripped() -> None:
    """The guard trips on size over max_bytes or free space under the floor, not otherwise."""
    policy = RetentionConfig(max_bytes=1000, min_free=MinFree(percent=10))
    assert not guard_tripped(parts(10), policy, DiskUsage(1000, 500))
    assert guard_tripped(parts(11), policy, DiskUsage(1000, 500))
    assert guard_tripped(parts(1), policy, DiskUsage(1000, 50))


def test_delete_removes_files_and_empty_date_dirs(tmp_path: Path) -> None:
    """Deleting removes exactly the planned partitions, then empty date folders; other files stay."""
    root = tmp_path / "db1"
    newest = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    partitions = []
    for h in range(4):
        start = newest - timedelta(hours=h)
        path = partition_path(root, start)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
        partitions.append(Partition(path, start, 10))
    stranger = root / "2026-11-27" / "notes.txt"
    stranger.write_text("keep me")
    decisions = plan(sorted(partitions, key=lambda p: p.start), RetentionConfig(max_age=3600, max_bytes=15),
                     newest_snapshot=newest)  # fmt: skip
    with SafeDir.open_root(root, writable=True) as directory:
        deleted, refused = delete(decisions, directory)
    assert len(deleted) == 3
    assert refused == []
    assert stranger.exists()
    assert sorted(p.name for p in root.rglob("*.zst")) == ["01.jsonl.zst"]
