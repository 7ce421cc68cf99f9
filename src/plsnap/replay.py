"""Replay: stitch samples into executions, and say what was running at an instant, with confidence.

An *execution* is one statement run by one session: (session id, same text, and a start estimate within ±1 s of
the one at its previous sighting), where the start is ``ts - time`` (``time_ms`` when the source has it) and
``started_at`` is the earliest estimate. Gap samples prove nothing either way, so they neither extend nor end an
execution. Each sighting is matched against the previous one only, so stitching two spans of samples separately
and joining them (:func:`merge_stitch`) gives exactly what one pass gives. Definitions (docs/replay.md):

- **certain**: a sample at or after T still shows the execution with ``started_at <= T``, or samples on both
  sides of T show the same execution;
- **possible**: seen at or before T, and no later sample proves it still ran at T (it may have ended between).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from plsnap.counters import rates_between, status_of
from plsnap.model import Session, Snapshot
from plsnap.textref import text_key

if TYPE_CHECKING:
    from plsnap.locks import Edge

START_TOLERANCE = timedelta(seconds=1)


@dataclass(slots=True)
class Execution:
    """One statement (or idle stint) of one session, as stitched from the samples that saw it."""

    session_id: int
    info: str | None
    started_at: datetime | None
    first_seen: datetime
    last_seen: datetime
    last: Session
    sightings: int = 1
    ended_before: datetime | None = None
    last_start: datetime | None = None
    #: The statement's fingerprint, once asked for (:func:`plsnap.partial.execution_group`; rollups store it).
    group: str | None = None

    @property
    def active(self) -> bool:
        """True for a statement, False for an idle stint."""
        return self.last.active

    def copy(self) -> Execution:
        """A copy to change (the sessions it refers to are immutable)."""
        return Execution(self.session_id, self.info, self.started_at, self.first_seen, self.last_seen, self.last,
                         self.sightings, self.ended_before, self.last_start, self.group)  # fmt: skip

    @property
    def min_duration(self) -> float:
        """Seconds it certainly ran: from ``started_at`` (or first sighting) to the last sighting."""
        start = self.started_at or self.first_seen
        return max(0.0, (self.last_seen - start).total_seconds())

    @property
    def max_duration(self) -> float | None:
        """Seconds it at most ran (until ``ended_before``), or None when no later sample bounds it."""
        if self.ended_before is None:
            return None
        start = self.started_at or self.first_seen
        return max(0.0, (self.ended_before - start).total_seconds())


def started_at(session: Session, ts: datetime) -> datetime | None:
    """The estimated start of the session's current command: ``ts - time`` (``time_ms`` preferred)."""
    elapsed = session.elapsed_seconds
    return None if elapsed is None else ts - timedelta(seconds=elapsed)


class Stitcher:
    """Incremental stitching: :meth:`feed` samples in ``ts`` order; executions are reported when they end.

    ``on_end`` is called with each execution once a later good sample no longer shows it; :meth:`finish` returns
    the executions still open at the end. Memory holds only open executions.
    """

    def __init__(self, *, include_idle: bool = True, on_end: Callable[[Execution], None] | None = None) -> None:
        self.include_idle = include_idle
        self.on_end = on_end
        self._open: dict[int, list[Execution]] = {}

    def feed(self, snapshot: Snapshot) -> list[Execution]:
        """Add one sample (gaps are ignored); return the executions it started."""
        if snapshot.sessions is None:
            return []
        ts = snapshot.ts
        previous = self._open
        still_open: dict[int, list[Execution]] = {}
        started: list[Execution] = []
        include_idle = self.include_idle
        for session in snapshot.sessions:
            if not include_idle and not session.active:
                continue
            start = started_at(session, ts)
            candidates = previous.get(session.id)
            match = _find(candidates, session, start) if candidates else None
            if match is None:
                match = Execution(session.id, session.info, start, ts, ts, session, last_start=start)
                started.append(match)
            else:
                match.last_seen, match.last = ts, session
                match.sightings += 1
                match.last_start = start
                if start is not None and (match.started_at is None or start < match.started_at):
                    match.started_at = start
                candidates.remove(match)  # type: ignore[union-attr]
            still_open.setdefault(session.id, []).append(match)
        for ended in previous.values():
            for execution in ended:
                execution.ended_before = ts
                if self.on_end is not None:
                    self.on_end(execution)
        self._open = still_open
        return started

    def finish(self) -> list[Execution]:
        """The executions still open after the last sample."""
        return [e for group in self._open.values() for e in group]


def stitch(snapshots: Iterable[Snapshot], *, include_idle: bool = True) -> list[Execution]:
    """Group the sessions of ``snapshots`` (in ``ts`` order) into executions, in order of first sighting."""
    stitcher = Stitcher(include_idle=include_idle)
    executions: list[Execution] = []
    for snapshot in snapshots:
        executions.extend(stitcher.feed(snapshot))
    return executions


def _find(
    candidates: Iterable[Execution], session: Session, start: datetime | None, *, by_key: bool = False
) -> Execution | None:
    """The open execution that ``session`` continues (texts compared as they are, or by :func:`text_key` when
    one side may come from a rollup)."""
    for execution in candidates:
        if execution.last.command != session.command:
            continue
        if (text_key(execution.info) != text_key(session.info)) if by_key else (execution.info != session.info):
            continue
        previous = execution.last_start
        if start is None or previous is None or abs(start - previous) <= START_TOLERANCE:
            return execution
    return None


def longest_key(execution: Execution) -> tuple[float, datetime, int, str]:
    """The order of "longest executions": longest first, then first seen, session id and the text's digest (a
    total order, so that a top list is the same however the samples were split)."""
    return (-execution.min_duration, execution.first_seen, execution.session_id, text_key(execution.info) or "")


@dataclass(slots=True)
class StitchPart:
    """The executions of one span of samples, in a form that joins with the next span's (:func:`merge_stitch`).

    ``heads``: the executions seen in the span's first good sample, each with its start estimate there (the
    previous span may continue them); ``open``: those still running at its last good sample (the next span may
    continue them); ``ended``: the longest of the others, at most ``cap`` (``ended_count`` says how many ended).
    """

    cap: int
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    heads: list[tuple[Execution, datetime | None]] = field(default_factory=list)
    open: list[Execution] = field(default_factory=list)
    ended: list[Execution] = field(default_factory=list)
    ended_count: int = 0
    #: Per group (statement fingerprint), how many of the ``ended_count`` executions and the longest of them
    #: (seconds); kept only when the builder was given a ``key`` (the report's DB load needs it).
    tally: dict[str, tuple[int, float]] | None = None

    def executions(self) -> list[Execution]:
        """Every execution held, once."""
        seen: set[int] = set()
        found = []
        for execution in (*(e for e, _ in self.heads), *self.ended, *self.open):
            if id(execution) not in seen:
                seen.add(id(execution))
                found.append(execution)
        return found

    def complete_for(self, top: int) -> bool:
        """True when :meth:`longest` of ``top`` is exact (the ``ended`` list was not cut below ``top``)."""
        return top <= self.cap or self.ended_count <= len(self.ended)

    def longest(self, top: int) -> list[Execution]:
        """The ``top`` longest executions (by :func:`longest_key`)."""
        return sorted(self.executions(), key=longest_key)[:top]

    def tallied(self, key: Callable[[Execution], str]) -> dict[str, tuple[int, float]]:
        """Per group: every execution of the span (counted once) and the longest (seconds); needs ``tally``."""
        assert self.tally is not None
        found = dict(self.tally)
        seen: set[int] = set()
        for execution in (*(e for e, _ in self.heads), *self.open):
            if id(execution) not in seen:
                seen.add(id(execution))
                _count(found, key(execution), execution.min_duration)
        return found

    def trim(self) -> None:
        """Keep only the ``cap`` longest ended executions."""
        if len(self.ended) > self.cap:
            self.ended.sort(key=longest_key)
            del self.ended[self.cap :]


class StitchBuilder:
    """Builds the :class:`StitchPart` of a span from its samples in ``ts`` order (running statements only)."""

    def __init__(self, cap: int, *, key: Callable[[Execution], str] | None = None) -> None:
        self.part = StitchPart(cap=cap, tally=None if key is None else {})
        self.key = key
        self._heads: set[int] = set()
        self._stitcher = Stitcher(include_idle=False, on_end=self._ended)

    def feed(self, snapshot: Snapshot) -> None:
        """Add one line (gaps and markers are ignored)."""
        if snapshot.sessions is None:
            return
        started = self._stitcher.feed(snapshot)
        part = self.part
        if part.first_ts is None:
            part.first_ts = snapshot.ts
            part.heads = [(e, e.started_at) for e in started]
            self._heads = {id(e) for e in started}
        part.last_ts = snapshot.ts

    def _ended(self, execution: Execution) -> None:
        if id(execution) in self._heads:
            return
        part = self.part
        if part.tally is not None and self.key is not None:
            _count(part.tally, self.key(execution), execution.min_duration)
        part.ended_count += 1
        part.ended.append(execution)
        if len(part.ended) > 2 * part.cap + 16:
            part.trim()

    def finish(self) -> StitchPart:
        """The part (the builder must not be fed afterwards)."""
        self.part.open = self._stitcher.finish()
        self.part.trim()
        return self.part


def _count(tally: dict[str, tuple[int, float]], group: str, seconds: float) -> None:
    count, longest = tally.get(group, (0, 0.0))
    tally[group] = (count + 1, max(longest, seconds))


def _merge_tallies(
    left: dict[str, tuple[int, float]] | None, right: dict[str, tuple[int, float]] | None
) -> dict[str, tuple[int, float]] | None:
    if left is None or right is None:
        return None
    merged = dict(left)
    for group, (count, longest) in right.items():
        mine = merged.get(group, (0, 0.0))
        merged[group] = (mine[0] + count, max(mine[1], longest))
    return merged


def merge_stitch(left: StitchPart, right: StitchPart, *, key: Callable[[Execution], str] | None = None) -> StitchPart:
    """The part of two adjacent spans (``left`` before ``right``), as if stitched in one pass: ``right``'s first
    good sample continues or ends ``left``'s open executions. Neither input is modified. The tallies are kept
    when both parts have one (``key`` gives the group of an execution that ends at the seam)."""
    if left.first_ts is None:
        return left if right.first_ts is None and right.tally is None else right
    if right.first_ts is None:
        return left
    tally = _merge_tallies(left.tally, right.tally) if key is not None else None
    copies: dict[int, Execution] = {}

    def own(execution: Execution) -> Execution:
        mine = copies.get(id(execution))
        if mine is None:
            mine = copies[id(execution)] = execution.copy()
        return mine

    heads = [(own(e), start) for e, start in left.heads]
    head_ids = {id(e) for e, _ in heads}
    waiting: dict[int, list[Execution]] = {}
    for execution in left.open:
        waiting.setdefault(execution.session_id, []).append(own(execution))
    right_open = {id(e) for e in right.open}
    ended = [*left.ended, *right.ended]
    count = left.ended_count + right.ended_count

    def close(execution: Execution) -> None:
        nonlocal count
        ended.append(execution)
        count += 1
        if tally is not None and key is not None:
            _count(tally, key(execution), execution.min_duration)

    continued: dict[int, Execution] = {}
    for later, start in right.heads:
        candidates = waiting.get(later.session_id)
        match = _find(candidates, later.last, start, by_key=True) if candidates else None
        if match is None:
            if id(later) not in right_open:
                close(later)
            continue
        candidates.remove(match)  # type: ignore[union-attr]
        match.last_seen, match.last, match.last_start = later.last_seen, later.last, later.last_start
        match.sightings += later.sightings
        if later.started_at is not None and (match.started_at is None or later.started_at < match.started_at):
            match.started_at = later.started_at
        match.ended_before = later.ended_before
        continued[id(later)] = match
        if id(later) not in right_open and id(match) not in head_ids:
            close(match)
    for candidates in waiting.values():
        for execution in candidates:
            execution.ended_before = right.first_ts
            if id(execution) not in head_ids:
                close(execution)
    part = StitchPart(
        cap=min(left.cap, right.cap),
        first_ts=left.first_ts,
        last_ts=right.last_ts,
        heads=heads,
        open=[continued.get(id(e), e) for e in right.open],
        ended=ended,
        ended_count=count,
        tally=tally,
    )
    part.trim()
    return part


@dataclass(frozen=True, slots=True)
class AtSession:
    """A session's state at the instant asked about."""

    execution: Execution
    confidence: str
    elapsed: float | None

    @property
    def session(self) -> Session:
        """The latest sighting of the session."""
        return self.execution.last


@dataclass(frozen=True, slots=True)
class AtResult:
    """What was running at ``at``: the samples used and the sessions, running ones first, longest first."""

    at: datetime
    instance: str
    before: Snapshot | None
    after: Snapshot | None
    gaps: tuple[Snapshot, ...]
    sessions: tuple[AtSession, ...]
    interval: float | None
    visibility: str | None = None
    locks: tuple[Edge, ...] = ()
    lock_sample: Snapshot | None = None
    counters: Mapping[str, float] = field(default_factory=dict)
    rates: Mapping[str, float | None] = field(default_factory=dict)
    rates_span: tuple[datetime, datetime] | None = None

    @property
    def in_gap(self) -> bool:
        """True when a failed sample lies between the samples around ``at`` (the answer is less sure)."""
        return bool(self.gaps)


def _edges(sample: Snapshot) -> tuple[Edge, ...]:
    """The sample's lock-wait edges (:mod:`plsnap.locks` is loaded only when it recorded some)."""
    if not sample.extra.get("locks"):
        return ()
    from plsnap.locks import edges_of

    return tuple(edges_of(sample))


def sessions_at(
    snapshots: Sequence[Snapshot], moment: datetime, *, instance: str = "", include_idle: bool = False
) -> AtResult:
    """Sessions running at ``moment`` according to ``snapshots`` (sorted by ``ts``, gaps included).

    Without ``include_idle`` idle sessions are left out, except those holding a lock a listed session waits for.
    """
    samples = [s for s in snapshots if s.is_sample]
    before = next((s for s in reversed(samples) if s.ts <= moment), None)
    after = next((s for s in samples if s.ts >= moment), None)
    low = before.ts if before else moment
    high = after.ts if after else moment
    gaps = tuple(s for s in snapshots if s.is_gap and low <= s.ts <= high)
    rows: list[AtSession] = []
    for execution in stitch(samples):
        confidence = _confidence(execution, moment)
        if confidence is None:
            continue
        elapsed = (moment - execution.started_at).total_seconds() if execution.started_at else None
        rows.append(AtSession(execution, confidence, elapsed))
    lock_sample = _nearest(before, after, moment)
    locks = _edges(lock_sample) if lock_sample is not None else ()
    if not include_idle:
        blockers = {b for row in rows if row.execution.active for b in row.session.blocked_by}
        blockers |= {e.blocker for e in locks}
        rows = [row for row in rows if row.execution.active or row.session.id in blockers]
    rows.sort(key=_order)
    intervals = [s.interval_s for s in samples if s.interval_s]
    seen = {s.visibility for s in (before, after) if s is not None}
    visibility = next((v for v in ("own", "unknown", "all") if v in seen), None)
    return AtResult(
        at=moment,
        instance=instance,
        before=before,
        after=after,
        gaps=gaps,
        sessions=tuple(rows),
        interval=intervals[-1] if intervals else None,
        visibility=visibility,
        locks=locks,
        lock_sample=lock_sample,
        **_counters_around(samples, before, after),
    )


def _counters_around(samples: Sequence[Snapshot], before: Snapshot | None, after: Snapshot | None) -> dict[str, Any]:
    """The nearest sample's counters, and rates between the two samples around the instant (or the two
    before it when nothing follows)."""
    with_status = [s for s in samples if status_of(s)]
    first: Snapshot | None = None
    second: Snapshot | None = None
    if before is not None and after is not None and before is not after and status_of(before) and status_of(after):
        first, second = before, after
    elif before is not None and status_of(before):
        earlier = [s for s in with_status if s.ts < before.ts]
        if earlier:
            first, second = earlier[-1], before
    nearest = before if before is not None and status_of(before) else after
    counters = status_of(nearest) if nearest is not None else {}
    if first is None or second is None:
        return {"counters": counters}
    return {"counters": counters, "rates": rates_between(first, second), "rates_span": (first.ts, second.ts)}


def _nearest(before: Snapshot | None, after: Snapshot | None, moment: datetime) -> Snapshot | None:
    """The sample whose lock edges describe the instant: the closer of the two around it (before on a tie)."""
    if before is None or after is None:
        return before or after
    return after if (after.ts - moment) < (moment - before.ts) else before


def _confidence(execution: Execution, moment: datetime) -> str | None:
    started = execution.started_at
    if started is not None and started > moment:
        return None
    seen_before = execution.first_seen <= moment
    seen_after = execution.last_seen >= moment
    if seen_after and (started is not None or seen_before):
        return "certain"
    if seen_before and (execution.ended_before is None or execution.ended_before > moment):
        return "possible"
    return None


def _order(row: AtSession) -> tuple[int, int, float, int]:
    started = row.execution.started_at
    return (
        0 if row.execution.active else 1,
        0 if row.confidence == "certain" else 1,
        started.timestamp() if started else float("inf"),
        row.execution.session_id,
    )
