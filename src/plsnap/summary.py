"""Window summaries, ASH-style: what dominated a time window, estimated from samples.

Each sample in which a session is running a statement counts as ``interval`` seconds of activity for that
session's group. This is sampling: a statement shorter than the interval is seen in proportion to its duration
on average and may not be seen at all, so rare short statements are under-counted.
"""

from __future__ import annotations

import heapq
import itertools
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from plsnap.fingerprint import fingerprint
from plsnap.model import IDLE_COMMANDS, Session, Snapshot
from plsnap.replay import Execution, Stitcher

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
    """Summarize the samples in ``[start, end)`` (in ``ts`` order) grouped by ``by``, in one streaming pass."""
    key_of = DIMENSIONS[by]
    groups: dict[str, Group] = {}
    gaps: list[Snapshot] = []
    gap_ranges: list[GapRange] = []
    running_at: list[tuple[datetime, int]] = []
    intervals: list[float] = []
    longest: list[tuple[float, int, Execution]] = []
    counter = itertools.count()

    def keep_longest(execution: Execution) -> None:
        if execution.active:
            item = (execution.min_duration, -next(counter), execution)
            (heapq.heappush if len(longest) < top else heapq.heappushpop)(longest, item)

    stitcher = Stitcher(include_idle=False, on_end=keep_longest)
    for snapshot in snapshots:
        if not start <= snapshot.ts < end:
            continue
        if snapshot.is_gap:
            if gaps and gaps[-1].error != snapshot.error:
                gap_ranges.append(_gap_range(gaps))
                gaps = []
            gaps.append(snapshot)
            continue
        if gaps:
            gap_ranges.append(_gap_range(gaps))
            gaps = []
        if snapshot.interval_s:
            intervals.append(snapshot.interval_s)
        running = 0
        for session in snapshot.sessions or ():
            if session.command in IDLE_COMMANDS or session.info is None:
                continue
            running += 1
            key = key_of(session)
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group(key, example=session.info)
            group.samples += 1
            group.sessions.add(session.id)
        running_at.append((snapshot.ts, running))
        stitcher.feed(snapshot)
    if gaps:
        gap_ranges.append(_gap_range(gaps))
    for execution in stitcher.finish():
        keep_longest(execution)
    interval = statistics.median(intervals) if intervals else _median_spacing([ts for ts, _ in running_at])
    total_samples = sum(g.samples for g in groups.values())
    for group in groups.values():
        group.active_seconds = group.samples * (interval or 0.0)
        group.percent = 100.0 * group.samples / total_samples if total_samples else 0.0
    ranked = sorted(groups.values(), key=lambda g: (-g.samples, g.key))[:top]
    bucket = choose_bucket((end - start).total_seconds(), interval)
    ranges = tuple(gap_ranges)
    return WindowSummary(
        start=start,
        end=end,
        instance=instance,
        by=by,
        interval=interval,
        samples=len(running_at),
        gaps=ranges,
        gap_samples=sum(g.count for g in ranges),
        groups=tuple(ranked),
        total_active_seconds=total_samples * (interval or 0.0),
        longest=tuple(e for _, _, e in sorted(longest, key=lambda item: (-item[0], -item[1]))),
        bucket_seconds=bucket,
        activity=_activity(running_at, start, end, bucket),
        warnings=_warnings(len(running_at), ranges, interval),
    )


def _gap_range(gaps: list[Snapshot]) -> GapRange:
    return GapRange(gaps[0].ts, gaps[-1].ts, len(gaps), gaps[0].error or "")


def _median_spacing(stamps: list[datetime]) -> float | None:
    if len(stamps) < 2:
        return None
    return statistics.median((b - a).total_seconds() for a, b in itertools.pairwise(stamps))


def _activity(
    running_at: list[tuple[datetime, int]], start: datetime, end: datetime, bucket: int
) -> tuple[Bucket, ...]:
    origin = datetime.fromtimestamp(start.timestamp() // bucket * bucket, start.tzinfo)
    counts: dict[int, list[int]] = {}
    for ts, count in running_at:
        index = int((ts - origin).total_seconds() // bucket)
        counts.setdefault(index, []).append(count)
    result = []
    index = 0
    step = timedelta(seconds=bucket)
    while origin + index * step < end:
        seen = counts.get(index, [])
        result.append(
            Bucket(
                start=origin + index * step,
                samples=len(seen),
                mean_running=sum(seen) / len(seen) if seen else 0.0,
                max_running=max(seen, default=0),
            )
        )
        index += 1
    return tuple(result)


def _warnings(samples: int, gaps: tuple[GapRange, ...], interval: float | None) -> tuple[str, ...]:
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
