"""Window summaries, ASH-style: what dominated a time window, estimated from samples.

Each sample in which a session is running a statement counts as activity for that session's group, weighing the
time up to the next sample, at most its own interval. This is sampling: a statement shorter than the interval is
seen in proportion to its duration on average and may not be seen at all, so rare short statements are
under-counted. The summary is computed from a :class:`~plsnap.partial.Partial`, built in one pass here or joined
from the rollups' parts by :mod:`plsnap.query`; both give the same answer.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from plsnap.counters import CounterSummary
from plsnap.locks import Episode
from plsnap.model import Snapshot
from plsnap.partial import GAP, MARKER, Line, Partial, PartialBuilder, ms_of
from plsnap.replay import Execution

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
    builder = PartialBuilder((by,), cap=top, cell_seconds=cell_seconds_for(start, end))
    for snapshot in snapshots:
        if start <= snapshot.ts < end:
            builder.feed(snapshot)
    return finish(builder.finish(), start, end, by=by, top=top, instance=instance, bounds=bounds)


def cell_seconds_for(start: datetime, end: datetime) -> int:
    """The counters' cell size for a window: a minute for windows of an hour or more (every bucket size they
    can get is a multiple of it), else a second."""
    return 60 if (end - start).total_seconds() >= 3600 else 1


def finish(
    partial: Partial,
    start: datetime,
    end: datetime,
    *,
    by: str,
    top: int,
    instance: str = "",
    bounds: tuple[datetime, datetime] | None = None,
) -> WindowSummary:
    """The window's summary from the part of its lines (built in one pass or joined; it is not modified)."""
    timeline = _Timeline(start, end, bounds)
    timeline.replay(partial.lines)
    running_at, intervals, own_only, bursts = timeline.running_at, timeline.intervals, timeline.own, timeline.bursts
    holes, gap_ranges = timeline.holes, timeline.gap_ranges
    groups_state = partial.groups.get(by, {})
    pending = partial.pending
    extra_ms: dict[str, int] = {}
    total_ms = partial.total_ms
    if pending is not None:
        span = max(0, ms_of(end) - ms_of(pending.ts))
        weight = min(pending.interval_ms, span) if pending.interval_ms else span
        extra_ms = {key: count * weight for key, count in pending.counts.get(by, {}).items()}
        total_ms += pending.running * weight
    total = total_ms / 1000
    groups = []
    for key, state in groups_state.items():
        active = (state.active_ms + extra_ms.get(key, 0)) / 1000
        groups.append(
            Group(
                key,
                samples=state.samples,
                example=state.example,
                sessions=state.sessions,
                active_seconds=active,
                percent=100.0 * active / total if total else 0.0,
            )
        )
    ranked = sorted(groups, key=lambda g: (-g.active_seconds, -g.samples, g.key))[:top]
    interval = statistics.median(intervals) if intervals else _median_spacing([ts for ts, _ in running_at])
    ranges = tuple(sorted([*gap_ranges, *holes.finish(interval)], key=lambda g: g.first))
    bucket = choose_bucket((end - start).total_seconds(), interval)
    outside = holes.outside
    return WindowSummary(
        start=start,
        end=end,
        instance=instance,
        by=by,
        interval=interval,
        samples=len(running_at),
        gaps=ranges,
        gap_samples=sum(g.count for g in ranges if g.kind == "failed"),
        groups=tuple(ranked),
        total_active_seconds=total,
        longest=tuple(partial.stitch.longest(top)),
        bucket_seconds=bucket,
        activity=_activity(running_at, *_inside(start, end, outside), bucket),
        warnings=_warnings(len(running_at), ranges, interval, own_only, len(bursts)),
        outside=outside,
        own_only_samples=own_only,
        blockers=tuple(partial.episodes.finish()[:TOP_BLOCKERS]),
        counters=partial.counters.summary,
        bursts=tuple(bursts),
    )


class _Timeline:
    """What the light timeline says: samples with their running counts, intervals, gap ranges and holes."""

    def __init__(self, start: datetime, end: datetime, bounds: tuple[datetime, datetime] | None) -> None:
        self.start = start
        self.holes = _Holes(start, end, bounds)
        self.gap_ranges: list[GapRange] = []
        self.running_at: list[tuple[datetime, int]] = []
        self.intervals: list[float] = []
        self.own = 0
        self.bursts: list[Snapshot] = []

    def replay(self, lines: Iterable[Line]) -> None:
        failed: list[Line] = []
        for line in lines:
            if line.kind == MARKER:
                if line.marker is not None:
                    self.bursts.append(line.marker)
                continue
            self.holes.see(line)
            if line.kind == GAP:
                if line.since is not None:
                    count = line.missed if line.missed is not None else 1
                    span = GapRange(max(line.since, self.start), line.ts, count, line.error or "", "not_recorded")
                    self.gap_ranges.append(span)
                    continue
                if failed and failed[-1].error != line.error:
                    self.gap_ranges.append(_gap_range(failed))
                    failed = []
                failed.append(line)
                continue
            if failed:
                self.gap_ranges.append(_gap_range(failed))
                failed = []
            if line.interval:
                self.intervals.append(line.interval)
            self.own += line.own
            self.running_at.append((line.ts, line.running))
        if failed:
            self.gap_ranges.append(_gap_range(failed))


class _Holes:
    """Finds the spans of a window with no line at all, and the parts of it outside the archive."""

    def __init__(self, start: datetime, end: datetime, bounds: tuple[datetime, datetime] | None) -> None:
        self.start, self.end, self.bounds = start, end, bounds
        self.previous: datetime | None = None
        self.previous_interval: float | None = None
        self.first: datetime | None = None
        self.found: list[tuple[datetime, datetime, float | None]] = []
        self.outside: tuple[OutsideSpan, ...] = ()

    def see(self, line: Line) -> None:
        ts = line.ts
        if self.first is None:
            self.first = ts
        since = line.since or ts
        if self.previous is not None and since > self.previous:
            self.found.append((self.previous, since, self.previous_interval or line.interval))
        self.previous = max(self.previous or ts, ts)
        self.previous_interval = line.interval or self.previous_interval

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


def _gap_range(gaps: list[Line]) -> GapRange:
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
