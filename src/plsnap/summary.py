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
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from plsnap.counters import CounterSummary
from plsnap.locks import Episode
from plsnap.model import Session, Snapshot
from plsnap.partial import DIMENSIONS, GAP, MARKER, Line, Partial, PartialBuilder, execution_group, ms_of
from plsnap.replay import Execution

BUCKET_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_BUCKETS = 60
#: Lock-wait episodes shown by ``window`` (``plsnap locks`` lists them all).
TOP_BLOCKERS = 5
#: What the DB load (:class:`Load`) is kept by: the report stacks its chart by :data:`CHART_DIMENSIONS` (kept
#: per bucket) and lists top users, hosts and databases; hosts and databases are kept as totals only.
LOAD_DIMENSIONS = ("state", "fingerprint", "user", "command", "host", "db")
CHART_DIMENSIONS = ("state", "fingerprint", "user", "command")


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
    load: Load | None = None


def choose_bucket(window_seconds: float, interval: float | None, max_buckets: int = MAX_BUCKETS) -> int:
    """A bucket size (seconds) giving at most ``max_buckets`` buckets and at least one sample per bucket."""
    floor = interval or 1
    for step in BUCKET_STEPS:
        if step >= floor and window_seconds / step <= max_buckets:
            return step
    return BUCKET_STEPS[-1]


@dataclass(slots=True)
class Load:
    """DB load over time (the report's charts) in seconds, as :meth:`LoadTracker.finish` gives it: plain sums
    keyed by value (spans join as trackers, in integer milliseconds), re-bucketed into coarser buckets by
    :meth:`rebucket`.

    Buckets are numbered ``epoch seconds // bucket_seconds``. ``sampled`` holds per bucket the seconds its
    samples weigh (the weight of ``active_seconds``: the time to the next sample, capped at the sample's own
    interval), ``samples`` their number; ``active[dimension][value][bucket]`` the running sessions x that weight
    (average active sessions = active / sampled) for :data:`CHART_DIMENSIONS`, ``spread[dimension][value]`` the
    same over the whole span for the others (hosts and databases). Per statement fingerprint: ``executions``
    seen, the ``longest`` one (seconds), its active seconds per ``users`` and ``hosts``. ``servers`` and
    ``sources`` count samples per ``VERSION()`` and source; ``peak`` is the busiest sample (most running sessions,
    the earliest on a tie).
    """

    bucket_seconds: int
    sampled: dict[int, float] = field(default_factory=dict)
    samples: dict[int, int] = field(default_factory=dict)
    active: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    spread: dict[str, dict[str, float]] = field(default_factory=dict)
    executions: dict[str, int] = field(default_factory=dict)
    longest: dict[str, float] = field(default_factory=dict)
    users: dict[str, dict[str, float]] = field(default_factory=dict)
    hosts: dict[str, dict[str, float]] = field(default_factory=dict)
    servers: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    peak: tuple[datetime, int] | None = None

    @property
    def sampled_seconds(self) -> float:
        """The seconds of the window that samples cover (the denominator of average active sessions)."""
        return sum(self.sampled.values())

    def totals(self, dimension: str) -> dict[str, float]:
        """Active seconds per value of ``dimension`` over the whole span."""
        if dimension in self.spread:
            return dict(self.spread[dimension])
        return {value: sum(buckets.values()) for value, buckets in self.active.get(dimension, {}).items()}

    def bucket_start(self, index: int) -> datetime:
        """The start of bucket ``index`` (UTC)."""
        return datetime.fromtimestamp(index * self.bucket_seconds, UTC)

    def rebucket(self, seconds: int) -> Load:
        """The same load in buckets of ``seconds`` (a multiple of ``bucket_seconds``)."""
        if seconds % self.bucket_seconds:
            raise ValueError(f"{seconds}s is not a multiple of {self.bucket_seconds}s")
        ratio = seconds // self.bucket_seconds

        def coarser(buckets: Mapping[int, Any]) -> dict[int, Any]:
            return _coarser(buckets, ratio)

        return Load(
            seconds,
            sampled=coarser(self.sampled),
            samples=coarser(self.samples),
            active={d: {v: coarser(b) for v, b in values.items()} for d, values in self.active.items()},
            spread={d: dict(totals) for d, totals in self.spread.items()},
            executions=dict(self.executions),
            longest=dict(self.longest),
            users={k: dict(v) for k, v in self.users.items()},
            hosts={k: dict(v) for k, v in self.hosts.items()},
            servers=dict(self.servers),
            sources=dict(self.sources),
            peak=self.peak,
        )


def _add(into: dict[Any, Any], other: Mapping[Any, Any]) -> None:
    for key, value in other.items():
        into[key] = into.get(key, 0) + value


def summarize(
    snapshots: Iterable[Snapshot],
    start: datetime,
    end: datetime,
    *,
    by: str = "fingerprint",
    top: int = 10,
    instance: str = "",
    bounds: tuple[datetime, datetime] | None = None,
    load_buckets: int = 0,
) -> WindowSummary:
    """Summarize the samples in ``[start, end)`` (in ``ts`` order) grouped by ``by``, in one streaming pass.

    ``bounds`` (the archive's first and last snapshot) lets the parts of the window outside the archive be
    reported once, as such, instead of as gaps or empty buckets. With ``load_buckets``, the same pass also
    keeps :class:`Load` in at most that many buckets (``WindowSummary.load``).
    """
    load = LoadTracker.for_window(start, end, load_buckets) if load_buckets else None
    builder = PartialBuilder((by,), cap=top, cell_seconds=cell_seconds_for(start, end), load=load)
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
    load_bucket: int = 0,
) -> WindowSummary:
    """The window's summary from the part of its lines (built in one pass or joined; it is not modified).
    ``load_bucket``: the seconds the DB load's buckets start from (default: the part's own)."""
    timeline = _Timeline(start, end, bounds)
    timeline.replay(partial.lines)
    running_at, intervals, own_only, bursts = timeline.running_at, timeline.intervals, timeline.own, timeline.bursts
    holes, gap_ranges = timeline.holes, timeline.gap_ranges
    groups_state = partial.groups.get(by, {})
    pending = partial.pending
    extra_ms: dict[str, int] = {}
    total_ms = partial.total_ms
    weight = 0
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
    load = None
    if partial.load is not None and partial.stitch.tally is not None:
        tracker = partial.load.copy_folded()
        tracker.weigh(weight)
        load = tracker.finish(interval, partial.stitch.tallied(execution_group), load_bucket or tracker.bucket_seconds)
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
        warnings=_warnings(len(running_at), ranges, interval, own_only, len(bursts), spread=_spread(intervals)),
        outside=outside,
        own_only_samples=own_only,
        blockers=tuple(partial.episodes.finish()[:TOP_BLOCKERS]),
        counters=partial.counters.summary,
        bursts=tuple(bursts),
        load=load,
    )


class LoadTracker:
    """The mergeable state of :class:`Load`, in integer milliseconds, so that one pass over raw rows and a join
    of parts (rollups keep one per minute-bucketed slice) give the same sums exactly.

    Each running session counts once per sample under one tuple of its values (fingerprint, then one per
    :data:`LOAD_DIMENSIONS`); :meth:`weigh` adds the counts x the weight (milliseconds) that ``active_seconds``
    gives the same sample into the tuples of its bucket; when the next bucket begins (samples come in ``ts``
    order), the bucket's tuples are spread over the dimensions and dropped. (A bucket holds far fewer distinct
    tuples than session-samples: this keeps the pass fast and its memory one bucket deep.) The last sample's
    counts wait for their weight (``pending``) until the next sample, the next part or the window's end."""

    def __init__(self, bucket_seconds: int) -> None:
        self.bucket_seconds = bucket_seconds
        self.hosts: dict[str, str] = {}
        self.counts: dict[tuple[str, ...], int] = {}
        self.pending: tuple[int, dict[tuple[str, ...], int]] | None = None
        self.bucket: tuple[int, dict[tuple[str, ...], int]] | None = None
        self.sampled: dict[int, int] = {}
        self.samples: dict[int, int] = {}
        self.active: dict[str, dict[str, dict[int, int]]] = {name: {} for name in CHART_DIMENSIONS}
        self.spread: dict[str, dict[str, int]] = {name: {} for name in LOAD_DIMENSIONS if name not in self.active}
        self.users: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.group_hosts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.servers: dict[str, int] = {}
        self.sources: dict[str, int] = {}
        self.peak: tuple[datetime, int] | None = None

    @classmethod
    def for_window(cls, start: datetime, end: datetime, max_buckets: int) -> LoadTracker:
        """A tracker whose buckets give at most ``max_buckets`` over the window (finish coarsens them to at least
        the interval)."""
        return cls(choose_bucket((end - start).total_seconds(), None, max_buckets))

    def see(self, session: Session, key: str) -> None:
        host = session.host or ""
        short = self.hosts.get(host)
        if short is None:
            short = self.hosts[host] = DIMENSIONS["host"](session)
        values = (key, session.state or "", session.user or "", session.command or "", short, session.db or "")
        self.counts[values] = self.counts.get(values, 0) + 1

    def sample(self, snapshot: Snapshot, running: int) -> None:
        index = int(snapshot.ts.timestamp() // self.bucket_seconds)
        self.pending, self.counts = (index, self.counts), {}
        self.samples[index] = self.samples.get(index, 0) + 1
        for into, value in ((self.servers, snapshot.server), (self.sources, snapshot.source)):
            into[value or ""] = into.get(value or "", 0) + 1
        if self.peak is None or running > self.peak[1]:
            self.peak = (snapshot.ts, running)

    def weigh(self, weight_ms: int) -> None:
        """Give the pending sample its weight (milliseconds)."""
        if self.pending is None:
            return
        index, counts = self.pending
        self.pending = None
        self.sampled[index] = self.sampled.get(index, 0) + weight_ms
        if self.bucket is None or self.bucket[0] != index:
            self.fold()
            self.bucket = (index, {})
        into = self.bucket[1]
        for values, count in counts.items():
            into[values] = into.get(values, 0) + count * weight_ms

    def fold(self) -> None:
        """Spread the current bucket's tuples over the dimensions."""
        if self.bucket is None:
            return
        index, weighed = self.bucket
        self.bucket = None
        users, hosts = self.users, self.group_hosts
        sums: list[defaultdict[str, int]] = [defaultdict(int) for _ in LOAD_DIMENSIONS]
        state, fingerprints, user, command, host, db = sums
        for (key, s, u, c, h, d), ms in weighed.items():
            state[s] += ms
            fingerprints[key] += ms
            user[u] += ms
            command[c] += ms
            host[h] += ms
            db[d] += ms
            users[key, u] += ms
            hosts[key, h] += ms
        for name, totals in zip(LOAD_DIMENSIONS, sums, strict=True):
            spread = self.spread.get(name)
            if spread is not None:
                _add(spread, totals)
                continue
            into = self.active[name]
            for value, ms in totals.items():
                buckets = into.setdefault(value, {})
                buckets[index] = buckets.get(index, 0) + ms

    def merge(self, later: LoadTracker) -> None:
        """Add the tracker of the span right after this one (same bucket size; this one's pending sample was
        weighed first; ``later`` is not modified)."""
        if later.bucket_seconds != self.bucket_seconds:
            raise ValueError(f"cannot merge {later.bucket_seconds}s buckets into {self.bucket_seconds}s buckets")
        self.fold()
        theirs = later.copy_folded()
        _add(self.sampled, theirs.sampled)
        _add(self.samples, theirs.samples)
        for name, values in theirs.active.items():
            mine = self.active.setdefault(name, {})
            for value, buckets in values.items():
                _add(mine.setdefault(value, {}), buckets)
        for name, totals in theirs.spread.items():
            _add(self.spread.setdefault(name, {}), totals)
        _add(self.users, theirs.users)
        _add(self.group_hosts, theirs.group_hosts)
        _add(self.servers, theirs.servers)
        _add(self.sources, theirs.sources)
        if theirs.peak is not None and (self.peak is None or theirs.peak[1] > self.peak[1]):
            self.peak = theirs.peak
        if theirs.pending is not None:
            self.pending = theirs.pending

    def copy_folded(self) -> LoadTracker:
        """A copy with the current bucket spread over the dimensions (this one is not modified)."""
        copy = LoadTracker(self.bucket_seconds)
        copy.bucket = None if self.bucket is None else (self.bucket[0], dict(self.bucket[1]))
        copy.sampled, copy.samples = dict(self.sampled), dict(self.samples)
        copy.active = {name: {v: dict(b) for v, b in values.items()} for name, values in self.active.items()}
        copy.spread = {name: dict(totals) for name, totals in self.spread.items()}
        copy.users, copy.group_hosts = defaultdict(int, self.users), defaultdict(int, self.group_hosts)
        copy.servers, copy.sources, copy.peak = dict(self.servers), dict(self.sources), self.peak
        copy.pending = None if self.pending is None else (self.pending[0], dict(self.pending[1]))
        copy.fold()
        return copy

    def finish(self, interval: float | None, executions: Mapping[str, tuple[int, float]], fine: int) -> Load:
        """The :class:`Load` (seconds), in buckets of ``fine`` seconds (a multiple of this tracker's) coarsened
        to at least ``interval``; ``executions``: per fingerprint, executions seen and the longest (seconds)."""
        folded = self.copy_folded()
        load = Load(
            self.bucket_seconds,
            sampled={i: ms / 1000 for i, ms in folded.sampled.items()},
            samples=dict(folded.samples),
            executions={key: count for key, (count, _) in executions.items()},
            longest={key: longest for key, (_, longest) in executions.items()},
            servers=dict(folded.servers),
            sources=dict(folded.sources),
            peak=folded.peak,
        )
        if fine != self.bucket_seconds:
            folded.sampled, folded.active = _coarser_ms(folded, fine)
            load.bucket_seconds = fine
            load.sampled = {i: ms / 1000 for i, ms in folded.sampled.items()}
            load.samples = _coarser(folded.samples, fine // self.bucket_seconds)
        load.active = {
            name: {value: {i: ms / 1000 for i, ms in buckets.items()} for value, buckets in values.items()}
            for name, values in folded.active.items()
            if values
        }
        load.spread = {
            name: {value: ms / 1000 for value, ms in totals.items()} for name, totals in folded.spread.items() if totals
        }
        for (key, value), ms in folded.users.items():
            load.users.setdefault(key, {})[value] = ms / 1000
        for (key, value), ms in folded.group_hosts.items():
            load.hosts.setdefault(key, {})[value] = ms / 1000
        for step in BUCKET_STEPS:
            if step >= fine and step >= (interval or 1) and step % fine == 0:
                return load.rebucket(step) if step != fine else load
        return load


def _coarser(buckets: Mapping[int, Any], ratio: int) -> dict[int, Any]:
    """``buckets`` summed into buckets ``ratio`` times as long."""
    out: dict[int, Any] = {}
    for index, value in buckets.items():
        out[index // ratio] = out.get(index // ratio, 0) + value
    return out


def _coarser_ms(tracker: LoadTracker, fine: int) -> tuple[dict[int, int], dict[str, dict[str, dict[int, int]]]]:
    if fine % tracker.bucket_seconds:
        raise ValueError(f"{fine}s is not a multiple of {tracker.bucket_seconds}s")
    ratio = fine // tracker.bucket_seconds
    active = {
        name: {value: _coarser(buckets, ratio) for value, buckets in values.items()}
        for name, values in tracker.active.items()
    }
    return _coarser(tracker.sampled, ratio), active


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


def _spread(intervals: list[float]) -> tuple[float, float] | None:
    """The shortest and the longest sampling interval of a window's samples (seconds), None when it has none."""
    return (min(intervals), max(intervals)) if intervals else None


def _warnings(
    samples: int,
    gaps: tuple[GapRange, ...],
    interval: float | None,
    own_only: int,
    bursts: int,
    *,
    spread: tuple[float, float] | None,
) -> tuple[str, ...]:
    notes = []
    changed = spread is not None and spread[0] < spread[1]
    if bursts:
        notes.append(
            f"{bursts} triggered burst(s) in this window: samples there are denser; each sample weighs the time up "
            "to the next one, capped at its own interval"
        )
    elif changed and spread is not None:
        notes.append(
            f"the cadence changes in this window (samples every {spread[0]:g}s to {spread[1]:g}s: a triggered burst "
            "that began before it, or a new [capture] interval); each sample weighs the time up to the next one, "
            "capped at its own interval"
        )
    if changed and spread is not None:
        notes.append(
            f"sampled every {spread[0]:g}s to {spread[1]:g}s: active time is estimated from samples (each weighs the "
            f"time to the next one, at most its interval); statements shorter than {spread[1]:g}s are under-counted "
            "or missed where the cadence is longest"
        )
        interval = None
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
