"""Window summaries, ASH-style: what dominated a time window, estimated from samples.

Each sample in which a session is running a statement counts as ``interval`` seconds of activity for that
session's group. This is sampling: a statement shorter than the interval is seen in proportion to its duration
on average and may not be seen at all, so rare short statements are under-counted.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from plsnap.fingerprint import fingerprint
from plsnap.model import Session, Snapshot
from plsnap.replay import Execution, stitch

DIMENSIONS: dict[str, Callable[[Session], str]] = {
    "fingerprint": lambda s: fingerprint(s.info or ""),
    "user": lambda s: s.user or "",
    "host": lambda s: (s.host or "").rsplit(":", 1)[0],
    "db": lambda s: s.db or "",
    "state": lambda s: s.state or "",
    "command": lambda s: s.command or "",
}
BUCKET_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_BUCKETS = 60


@dataclass(slots=True)
class Group:
    """One row of the top list: ``samples`` sightings, ``active_seconds = samples x interval``."""

    key: str
    samples: int = 0
    example: str | None = None
    sessions: set[int] = field(default_factory=set)
    active_seconds: float = 0.0
    percent: float = 0.0


@dataclass(frozen=True, slots=True)
class GapRange:
    """Consecutive failed samples."""

    first: datetime
    last: datetime
    count: int
    error: str


@dataclass(frozen=True, slots=True)
class Bucket:
    """Activity in ``[start, start + size)``: mean and peak running sessions over its samples."""

    start: datetime
    samples: int
    mean_running: float
    max_running: int


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """Everything ``plsnap window`` reports."""

    start: datetime
    end: datetime
    instance: str
    by: str
    interval: float | None
    samples: int
    gaps: tuple[GapRange, ...]
    gap_samples: int
    groups: tuple[Group, ...]
    total_active_seconds: float
    longest: tuple[Execution, ...]
    bucket_seconds: int
    activity: tuple[Bucket, ...]
    warnings: tuple[str, ...]


def estimate_interval(snapshots: list[Snapshot]) -> float | None:
    """The sampling interval in seconds: the recorded ``interval_s``, else the median spacing of samples."""
    recorded = [s.interval_s for s in snapshots if s.interval_s]
    if recorded:
        return statistics.median(recorded)
    if len(snapshots) < 2:
        return None
    spacings = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(snapshots)]
    return statistics.median(spacings)


def choose_bucket(window_seconds: float, interval: float | None) -> int:
    """A bucket size (seconds) giving at most ~60 buckets and at least one sample per bucket."""
    floor = interval or 1
    for step in BUCKET_STEPS:
        if step >= floor and window_seconds / step <= MAX_BUCKETS:
            return step
    return BUCKET_STEPS[-1]


def summarize(
    snapshots: Iterable[Snapshot],
    start: datetime,
    end: datetime,
    *,
    by: str = "fingerprint",
    top: int = 10,
    instance: str = "",
) -> WindowSummary:
    """Summarize the samples in ``[start, end)`` (in ``ts`` order) grouped by ``by``."""
    key_of = DIMENSIONS[by]
    all_snapshots = [s for s in snapshots if start <= s.ts < end]
    samples = [s for s in all_snapshots if not s.is_gap]
    interval = estimate_interval(samples)
    groups: dict[str, Group] = {}
    for snapshot in samples:
        for session in snapshot.sessions or ():
            if not session.active:
                continue
            key = key_of(session)
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group(key, example=session.info)
            group.samples += 1
            group.sessions.add(session.id)
    total_samples = sum(g.samples for g in groups.values())
    for group in groups.values():
        group.active_seconds = group.samples * (interval or 0.0)
        group.percent = 100.0 * group.samples / total_samples if total_samples else 0.0
    ranked = sorted(groups.values(), key=lambda g: (-g.samples, g.key))[:top]
    executions = [e for e in stitch(samples, include_idle=False) if e.active]
    longest = sorted(executions, key=lambda e: (-e.min_duration, e.first_seen))[:top]
    bucket = choose_bucket((end - start).total_seconds(), interval)
    gaps = _gap_ranges(all_snapshots)
    warnings = _warnings(samples, gaps, interval)
    return WindowSummary(
        start=start,
        end=end,
        instance=instance,
        by=by,
        interval=interval,
        samples=len(samples),
        gaps=gaps,
        gap_samples=sum(g.count for g in gaps),
        groups=tuple(ranked),
        total_active_seconds=total_samples * (interval or 0.0),
        longest=tuple(longest),
        bucket_seconds=bucket,
        activity=_activity(samples, start, end, bucket),
        warnings=warnings,
    )


def _gap_ranges(snapshots: list[Snapshot]) -> tuple[GapRange, ...]:
    ranges: list[GapRange] = []
    current: list[Snapshot] = []
    for snapshot in [*snapshots, None]:
        if snapshot is not None and snapshot.is_gap and (not current or current[-1].error == snapshot.error):
            current.append(snapshot)
            continue
        if current:
            ranges.append(GapRange(current[0].ts, current[-1].ts, len(current), current[0].error or ""))
            current = []
        if snapshot is not None and snapshot.is_gap:
            current.append(snapshot)
    return tuple(ranges)


def _activity(samples: list[Snapshot], start: datetime, end: datetime, bucket: int) -> tuple[Bucket, ...]:
    origin = datetime.fromtimestamp(start.timestamp() // bucket * bucket, start.tzinfo)
    counts: dict[int, list[int]] = {}
    for snapshot in samples:
        index = int((snapshot.ts - origin).total_seconds() // bucket)
        counts.setdefault(index, []).append(snapshot.running)
    result = []
    index = 0
    step = timedelta(seconds=bucket)
    while origin + index * step < end:
        running = counts.get(index, [])
        result.append(
            Bucket(
                start=origin + index * step,
                samples=len(running),
                mean_running=sum(running) / len(running) if running else 0.0,
                max_running=max(running, default=0),
            )
        )
        index += 1
    return tuple(result)


def _warnings(samples: list[Snapshot], gaps: tuple[GapRange, ...], interval: float | None) -> tuple[str, ...]:
    notes = []
    if interval:
        notes.append(
            f"sampled every {interval:g}s: active time is estimated as samples x {interval:g}s; statements "
            f"shorter than {interval:g}s are under-counted or missed"
        )
    if not samples:
        notes.append("no successful samples in this window")
    if gaps:
        notes.append(f"{sum(g.count for g in gaps)} failed sample(s) in this window: activity there is unknown")
    return tuple(notes)
