"""Mergeable summaries of spans of samples: what a window's summary is made of.

A :class:`Partial` holds everything ``window`` and ``locks`` report about a span of lines, in a form that joins
with the next span's (:meth:`Partial.extend`): the light timeline (per line its ``ts``, interval, running count
and gap fields), per ``--by`` dimension the groups, the executions and lock-wait episodes that may continue
across the span's edges, and the counters per aligned cell. Time is weighed in integer milliseconds and
floating totals are taken per cell in time order, so a summary built in one pass and one joined from parts (the
rollups beside the archive hold parts per 5 minutes and per hour) are identical, key for key.

Only the weight of a span's last good sample is left open (it depends on when the next sample comes); it is
settled by the next part, or by the window's end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from plsnap.counters import CounterPart, CounterTracker, merge_counters
from plsnap.locks import EpisodePart, EpisodeTracker, merge_episodes
from plsnap.model import Session, Snapshot, is_active
from plsnap.replay import Execution, StitchBuilder, StitchPart, merge_stitch
from plsnap.textref import TextRef

#: Bumped whenever :func:`plsnap.fingerprint.fingerprint` may return something else for a statement: rollups
#: grouped with another version are stale.
FINGERPRINT_VERSION = 2
#: The bucket (seconds) of the DB load that rollups keep in each part.
LOAD_BUCKET = 60


def _fingerprint(session: Session) -> str:
    """The session's statement fingerprint (:mod:`plsnap.fingerprint` is loaded on the first call)."""
    return _fingerprint_text(session.info or "")


def _fingerprint_text(text: str) -> str:
    global _fingerprint_of  # noqa: PLW0603 - bound once, on first use, to keep start-up light
    if _fingerprint_of is None:
        from plsnap.fingerprint import fingerprint

        _fingerprint_of = fingerprint
    return _fingerprint_of(text)


_fingerprint_of: Callable[[str], str] | None = None


def execution_group(execution: Execution) -> str:
    """The fingerprint of an execution's statement (computed once; a rollup's executions carry theirs)."""
    group = execution.group
    if group is None:
        if isinstance(execution.info, TextRef):
            raise ValueError("an execution read from a rollup has no fingerprint")
        group = execution.group = _fingerprint_text(execution.info or "")
    return group


DIMENSIONS: dict[str, Callable[[Session], str]] = {
    "fingerprint": _fingerprint,
    "user": lambda s: s.user or "",
    "host": lambda s: (s.host or "").rsplit(":", 1)[0],
    "db": lambda s: s.db or "",
    "state": lambda s: s.state or "",
    "command": lambda s: s.command or "",
}
SAMPLE, GAP, MARKER = 0, 1, 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def ms_of(moment: datetime) -> int:
    """Milliseconds since the epoch (the archive's ``ts`` precision)."""
    return (moment - _EPOCH) // _MILLISECOND


def interval_ms(interval: float | None) -> int | None:
    """An interval in seconds as whole milliseconds (None stays None)."""
    return None if not interval else round(interval * 1000)


class Line(NamedTuple):
    """One line of the timeline: a sample, a gap line or a burst marker, with what the summary needs of it."""

    ts: datetime
    kind: int
    interval: float | None = None
    running: int = 0
    own: bool = False
    error: str | None = None
    since: datetime | None = None
    missed: int | None = None
    marker: Snapshot | None = None


@dataclass(slots=True)
class GroupState:
    """One value of a dimension: samples in which a session ran with it, its active milliseconds, the sessions,
    and the first statement seen (with the ``ts`` of its sample and its session id, where a rollup finds it)."""

    samples: int = 0
    active_ms: int = 0
    example: str | None = None
    sessions: set[int] = field(default_factory=set)
    example_at: tuple[datetime, int] | None = None


class Pending(NamedTuple):
    """The last good sample of a span, whose weight is not known yet: per dimension its running count by value."""

    ts: datetime
    interval_ms: int | None
    counts: dict[str, dict[str, int]]
    running: int


@dataclass(slots=True)
class Partial:
    """The mergeable summary of a span of lines (see the module docstring)."""

    dims: tuple[str, ...]
    lines: list[Line] = field(default_factory=list)
    groups: dict[str, dict[str, GroupState]] = field(default_factory=dict)
    total_ms: int = 0
    pending: Pending | None = None
    stitch: StitchPart = field(default_factory=lambda: StitchPart(cap=10))
    episodes: EpisodePart = field(default_factory=EpisodePart)
    counters: CounterPart = field(default_factory=lambda: CounterPart(CounterTracker().summary))
    #: The report's DB load over time (:class:`plsnap.summary.LoadTracker`), when the part was built with one:
    #: rollups keep it per minute; a join keeps it only if every part with samples has it.
    load: Any = None

    def extend(self, later: Partial) -> None:
        """Append the part of the span right after this one (``later`` is not modified; this part is)."""
        if later.stitch.first_ts is not None:
            self.settle(later.stitch.first_ts)
        self.lines.extend(later.lines)
        for dim in self.dims:
            mine = self.groups.setdefault(dim, {})
            for key, theirs in later.groups.get(dim, {}).items():
                group = mine.get(key)
                if group is None:
                    mine[key] = GroupState(
                        theirs.samples, theirs.active_ms, theirs.example, set(theirs.sessions), theirs.example_at
                    )
                    continue
                group.samples += theirs.samples
                group.active_ms += theirs.active_ms
                group.sessions |= theirs.sessions
        self.total_ms += later.total_ms
        if later.pending is not None:
            self.pending = later.pending
        if self.load is not None:
            if later.load is not None:
                self.load.merge(later.load)
            elif later.lines:
                self.load = None
        self.stitch = merge_stitch(self.stitch, later.stitch, key=execution_group)
        self.episodes = merge_episodes(self.episodes, later.episodes)
        self.counters = merge_counters(self.counters, later.counters)

    def settle(self, next_ts: datetime) -> None:
        """Weigh the pending sample by the time up to ``next_ts``, at most its interval (milliseconds)."""
        pending = self.pending
        if pending is None:
            return
        self.pending = None
        span = max(0, ms_of(next_ts) - ms_of(pending.ts))
        weight = min(pending.interval_ms, span) if pending.interval_ms else span
        if self.load is not None:
            self.load.weigh(weight)
        for dim, counts in pending.counts.items():
            groups = self.groups.get(dim)
            if groups is None:
                continue
            for key, count in counts.items():
                groups[key].active_ms += count * weight
        self.total_ms += pending.running * weight


class PartialBuilder:
    """Builds the :class:`Partial` of a span from its lines in ``ts`` order.

    ``dims``: the ``--by`` dimensions to group by; ``cap``: how many of the longest executions that ended
    inside the span to keep; ``cell_seconds``: the counters' cell size.
    """

    def __init__(self, dims: Iterable[str], *, cap: int = 10, cell_seconds: int = 60, load: Any = None) -> None:
        self.dims = tuple(dims)
        self.key_of = [(dim, DIMENSIONS[dim]) for dim in self.dims]
        if load is not None and self.dims[0] != "fingerprint":
            raise ValueError("the DB load is kept for parts grouped by fingerprint first")
        self.partial = Partial(self.dims, groups={dim: {} for dim in self.dims}, load=load)
        self.stitch = StitchBuilder(cap, key=None if load is None else execution_group)
        self.episodes = EpisodeTracker()
        self.counters = CounterTracker(cell_seconds)

    def feed(self, snapshot: Snapshot) -> None:
        """Add one line: a sample, a gap line or a marker."""
        lines = self.partial.lines
        if snapshot.is_marker:
            if snapshot.marker.get("event") == "burst_start":
                lines.append(Line(snapshot.ts, MARKER, marker=snapshot))
            return
        self.episodes.feed(snapshot)
        self.counters.feed(snapshot)
        if snapshot.is_gap:
            missed = snapshot.extra.get("missed")
            lines.append(
                Line(
                    snapshot.ts,
                    GAP,
                    snapshot.interval_s,
                    error=snapshot.error,
                    since=snapshot.gap_since,
                    missed=missed if type(missed) is int and missed >= 0 else None,
                )
            )
            return
        partial = self.partial
        partial.settle(snapshot.ts)
        running = 0
        counts: dict[str, dict[str, int]] = {dim: {} for dim in self.dims}
        groups = partial.groups
        plan = [(key_of, groups[dim], counts[dim]) for dim, key_of in self.key_of]
        ts = snapshot.ts
        load = partial.load
        for session in snapshot.sessions or ():
            if not is_active(session.command, session.info):
                continue
            running += 1
            sid = session.id
            first = None
            for key_of, by_key, found in plan:
                key = key_of(session)
                if first is None:
                    first = key
                group = by_key.get(key)
                if group is None:
                    group = by_key[key] = GroupState(example=session.info, example_at=(ts, sid))
                group.samples += 1
                group.sessions.add(sid)
                found[key] = found.get(key, 0) + 1
            if load is not None:
                load.see(session, first)
        if load is not None:
            load.sample(snapshot, running)
        lines.append(Line(snapshot.ts, SAMPLE, snapshot.interval_s, running, snapshot.visibility == "own"))
        partial.pending = Pending(snapshot.ts, interval_ms(snapshot.interval_s), counts, running)
        self.stitch.feed(snapshot)

    def finish(self) -> Partial:
        """The part (the builder must not be fed afterwards)."""
        partial = self.partial
        partial.stitch = self.stitch.finish()
        partial.episodes = self.episodes.part()
        partial.counters = self.counters.part
        return partial


def build(
    snapshots: Iterable[Snapshot], dims: Iterable[str], *, cap: int = 10, cell_seconds: int = 60, load: Any = None
) -> Partial:
    """The part of ``snapshots`` (in ``ts`` order); ``load`` (a :class:`plsnap.summary.LoadTracker`) is fed by the
    same pass."""
    builder = PartialBuilder(dims, cap=cap, cell_seconds=cell_seconds, load=load)
    for snapshot in snapshots:
        builder.feed(snapshot)
    return builder.finish()


def join(
    parts: Iterable[Partial], dims: Iterable[str], *, cap: int = 10, cell_seconds: int = 60, load: Any = None
) -> Partial:
    """The parts of consecutive spans, in order, as one (none of them is modified). With ``load`` (an empty
    :class:`plsnap.summary.LoadTracker` of the parts' bucket size), their DB load is joined too; the result's
    ``load`` is None when a part with samples had none."""
    joined = Partial(tuple(dims), groups={dim: {} for dim in dims}, load=load)
    joined.stitch = StitchPart(cap=cap, tally=None if load is None else {})
    joined.counters = CounterPart(CounterTracker(cell_seconds).summary)
    for part in parts:
        joined.extend(part)
    return joined
