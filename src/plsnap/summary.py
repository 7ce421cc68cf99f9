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

from plsnap.counters import CounterSummary, CounterTracker
from plsnap.fingerprint import fingerprint
from plsnap.locks import Episode, EpisodeTracker
from plsnap.model import Session, Snapshot, is_active
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
#: Lock-wait episodes shown by ``window`` (``plsnap locks`` lists them all).
TOP_BLOCKERS = 5


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
    """A span without data: ``failed`` samples (gap lines), samples ``not_recorded`` (skipped slots, failed
    writes: a gap line with ``gap_since``), or ``no_samples`` at all (the daemon was not running)."""

    first: datetime
    last: datetime
    count: int
    error: str
    kind: str = "failed"

    @property
    def seconds(self) -> float:
        """The span's length in seconds."""
        return (self.last - self.first).total_seconds()


@dataclass(frozen=True, slots=True)
class OutsideSpan:
    """Part of the window before the archive's first snapshot or after its last one."""

    first: datetime
    last: datetime
    side: str  # "before" or "after"


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
    outside: tuple[OutsideSpan, ...] = ()
    own_only_samples: int = 0
    blockers: tuple[Episode, ...] = ()
    counters: CounterSummary = field(default_factory=CounterSummary)
    bursts: tuple[Snapshot, ...] = ()


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
    bounds: tuple[datetime, datetime] | None = None,
) -> WindowSummary:
    """Summarize the samples in ``[start, end)`` (in ``ts`` order) grouped by ``by``, in one streaming pass.

    ``bounds`` (the archive's first and last snapshot) lets the parts of the window outside the archive be
    reported once, as such, instead of as gaps or empty buckets.
    """
    window = _Window(start, end, by=by, top=top, bounds=bounds)
    for snapshot in snapshots:
        if start <= snapshot.ts < end:
            window.add(snapshot)
    return window.finish(instance)


class _Window:
    """The streaming state of one summary."""

    def __init__(
        self, start: datetime, end: datetime, *, by: str, top: int, bounds: tuple[datetime, datetime] | None
    ) -> None:
        self.start, self.end, self.by, self.top = start, end, by, top
        self.key_of = DIMENSIONS[by]
        self.groups: dict[str, Group] = {}
        self.failed: list[Snapshot] = []
        self.gap_ranges: list[GapRange] = []
        self.running_at: list[tuple[datetime, int]] = []
        self.intervals: list[float] = []
        self.longest: list[tuple[float, int, Execution]] = []
        self.counter = itertools.count()
        self.holes = _Holes(start, end, bounds)
        self.own_only = 0
        self.stitcher = Stitcher(include_idle=False, on_end=self.keep_longest)
        self.lock_episodes = EpisodeTracker()
        self.counters = CounterTracker()
        self.pending: tuple[datetime, float | None, dict[str, int], int] | None = None
        self.total_active = 0.0
        self.bursts: list[Snapshot] = []

    def keep_longest(self, execution: Execution) -> None:
        if execution.active:
            item = (execution.min_duration, -next(self.counter), execution)
            (heapq.heappush if len(self.longest) < self.top else heapq.heappushpop)(self.longest, item)

    def add(self, snapshot: Snapshot) -> None:
        if snapshot.is_marker:
            if snapshot.marker.get("event") == "burst_start":
                self.bursts.append(snapshot)
            return
        self.holes.see(snapshot)
        self.lock_episodes.feed(snapshot)
        self.counters.feed(snapshot)
        if snapshot.is_gap:
            self.add_gap(snapshot)
            return
        self.settle(snapshot.ts)
        self.close_failed()
        if snapshot.interval_s:
            self.intervals.append(snapshot.interval_s)
        if snapshot.visibility == "own":
            self.own_only += 1
        running = 0
        groups, key_of = self.groups, self.key_of
        counts: dict[str, int] = {}
        for session in snapshot.sessions or ():
            if not is_active(session.command, session.info):
                continue
            running += 1
            key = key_of(session)
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group(key, example=session.info)
            group.samples += 1
            group.sessions.add(session.id)
            counts[key] = counts.get(key, 0) + 1
        self.running_at.append((snapshot.ts, running))
        self.pending = (snapshot.ts, snapshot.interval_s, counts, running)
        self.stitcher.feed(snapshot)

    def settle(self, next_ts: datetime) -> None:
        """Weigh the previous sample by the time up to the next sample, capped at its own interval (seconds):
        across a burst, DB time is neither counted twice nor lost. Failed samples do not end the weight."""
        if self.pending is None:
            return
        ts, interval, counts, running = self.pending
        self.pending = None
        span = max(0.0, (next_ts - ts).total_seconds())
        weight = min(interval, span) if interval else span
        for key, count in counts.items():
            self.groups[key].active_seconds += count * weight
        self.total_active += running * weight

    def add_gap(self, snapshot: Snapshot) -> None:
        since = snapshot.gap_since
        if since is not None:
            missed = snapshot.extra.get("missed")
            count = missed if type(missed) is int and missed >= 0 else 1
            span = GapRange(max(since, self.start), snapshot.ts, count, snapshot.error or "", "not_recorded")
            self.gap_ranges.append(span)
            return
        if self.failed and self.failed[-1].error != snapshot.error:
            self.close_failed()
        self.failed.append(snapshot)

    def close_failed(self) -> None:
        if self.failed:
            self.gap_ranges.append(_gap_range(self.failed))
            self.failed = []

    def finish(self, instance: str) -> WindowSummary:
        self.settle(self.end)
        self.close_failed()
        for execution in self.stitcher.finish():
            self.keep_longest(execution)
        running_at = self.running_at
        intervals = self.intervals
        interval = statistics.median(intervals) if intervals else _median_spacing([ts for ts, _ in running_at])
        ranges = tuple(sorted([*self.gap_ranges, *self.holes.finish(interval)], key=lambda g: g.first))
        total = self.total_active
        for group in self.groups.values():
            group.percent = 100.0 * group.active_seconds / total if total else 0.0
        ranked = sorted(self.groups.values(), key=lambda g: (-g.active_seconds, -g.samples, g.key))[: self.top]
        bucket = choose_bucket((self.end - self.start).total_seconds(), interval)
        outside = self.holes.outside
        longest = sorted(self.longest, key=lambda item: (-item[0], -item[1]))
        return WindowSummary(
            start=self.start,
            end=self.end,
            instance=instance,
            by=self.by,
            interval=interval,
            samples=len(running_at),
            gaps=ranges,
            gap_samples=sum(g.count for g in ranges if g.kind == "failed"),
            groups=tuple(ranked),
            total_active_seconds=total,
            longest=tuple(e for _, _, e in longest),
            bucket_seconds=bucket,
            activity=_activity(running_at, *_inside(self.start, self.end, outside), bucket),
            warnings=_warnings(len(running_at), ranges, interval, self.own_only, len(self.bursts)),
            outside=outside,
            own_only_samples=self.own_only,
            blockers=tuple(self.lock_episodes.finish()[:TOP_BLOCKERS]),
            counters=self.counters.summary,
            bursts=tuple(self.bursts),
        )


class _Holes:
    """Finds the spans of a window with no line at all, and the parts of it outside the archive."""

    def __init__(self, start: datetime, end: datetime, bounds: tuple[datetime, datetime] | None) -> None:
        self.start, self.end, self.bounds = start, end, bounds
        self.previous: datetime | None = None
        self.previous_interval: float | None = None
        self.first: datetime | None = None
        self.found: list[tuple[datetime, datetime, float | None]] = []
        self.outside: tuple[OutsideSpan, ...] = ()

    def see(self, snapshot: Snapshot) -> None:
        ts = snapshot.ts
        if self.first is None:
            self.first = ts
        since = snapshot.gap_since or ts
        if self.previous is not None and since > self.previous:
            self.found.append((self.previous, since, self.previous_interval or snapshot.interval_s))
        self.previous = max(self.previous or ts, ts)
        self.previous_interval = snapshot.interval_s or self.previous_interval

    def finish(self, interval: float | None) -> list[GapRange]:
        start, end, bounds = self.start, self.end, self.bounds
        outside = []
        lead_from = start
        tail_to = end
        if bounds is not None:
            first, last = bounds
            if start < first:
                outside.append(OutsideSpan(start, min(first, end), "before"))
                lead_from = first
            if end > last >= start:
                tolerance = 1.5 * (self.previous_interval or interval or 0.0)
                if (end - last).total_seconds() > tolerance:
                    outside.append(OutsideSpan(max(last, start), end, "after"))
                tail_to = max(last, start)
            elif end > last:
                outside.append(OutsideSpan(start, end, "after"))
        self.outside = tuple(outside)
        holes: list[GapRange] = []
        if self.first is not None and lead_from < self.first:
            self.found.insert(0, (lead_from, self.first, interval))
        if self.previous is not None and self.previous < tail_to:
            self.found.append((self.previous, tail_to, self.previous_interval or interval))
        for low, high, every in self.found:
            step = every or interval
            if step and (high - low).total_seconds() > 1.5 * step:
                missing = max(1, round((high - low).total_seconds() / step) - 1)
                holes.append(GapRange(low, high, missing, "no samples recorded", "no_samples"))
        return holes


def _inside(start: datetime, end: datetime, outside: tuple[OutsideSpan, ...]) -> tuple[datetime, datetime]:
    """The part of ``[start, end)`` inside the archive (for activity buckets)."""
    low, high = start, end
    for span in outside:
        if span.side == "before":
            low = max(low, span.last)
        else:
            high = min(high, span.first)
    return low, max(low, high)


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


def _warnings(
    samples: int, gaps: tuple[GapRange, ...], interval: float | None, own_only: int, bursts: int
) -> tuple[str, ...]:
    notes = []
    if bursts:
        notes.append(
            f"{bursts} triggered burst(s) in this window: samples there are denser; each sample weighs the time up "
            "to the next one, capped at its own interval"
        )
    if own_only:
        notes.append(
            f"{own_only} of {samples} sample(s) were taken by an account without the PROCESS privilege: they show "
            "only that account's own sessions, so other activity is missing"
        )
    if interval:
        notes.append(
            f"sampled every {interval:g}s: active time is estimated from samples (each weighs the time to the next "
            f"one, at most its interval); statements shorter than {interval:g}s are under-counted or missed"
        )
    if not samples:
        notes.append("no successful samples in this window: activity is unknown")
    failed = sum(g.count for g in gaps if g.kind == "failed")
    if failed:
        notes.append(f"{failed} failed sample(s) in this window: activity there is unknown")
    unsampled = sum(g.seconds for g in gaps if g.kind != "failed")
    if unsampled:
        notes.append(f"{unsampled:g}s of this window have no samples (see gaps): activity there is unknown")
    return tuple(notes)
