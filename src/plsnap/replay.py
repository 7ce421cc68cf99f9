"""Replay: stitch samples into executions, and say what was running at an instant, with confidence.

An *execution* is one statement run by one session: (session id, ``started_at`` within ±1 s, same text), where
``started_at = ts - time`` (``time_ms`` when the source has it). Gap samples prove nothing either way, so they
neither extend nor end an execution. Definitions (docs/replay.md):

- **certain**: a sample at or after T still shows the execution with ``started_at <= T``, or samples on both
  sides of T show the same execution;
- **possible**: seen at or before T, and no later sample proves it still ran at T (it may have ended between).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from plsnap.counters import rates_between, status_of
from plsnap.locks import Edge, edges_of
from plsnap.model import Session, Snapshot

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

    @property
    def active(self) -> bool:
        """True for a statement, False for an idle stint."""
        return self.last.active

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
                match = Execution(session.id, session.info, start, ts, ts, session)
                started.append(match)
            else:
                match.last_seen, match.last = ts, session
                match.sightings += 1
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


def _find(candidates: Iterable[Execution], session: Session, start: datetime | None) -> Execution | None:
    for execution in candidates:
        if execution.info != session.info or execution.last.command != session.command:
            continue
        if start is None or execution.started_at is None or abs(start - execution.started_at) <= START_TOLERANCE:
            return execution
    return None


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


def sessions_at(
    snapshots: Sequence[Snapshot], moment: datetime, *, instance: str = "", include_idle: bool = False
) -> AtResult:
    """Sessions running at ``moment`` according to ``snapshots`` (sorted by ``ts``, gaps included).

    Without ``include_idle`` idle sessions are left out, except those holding a lock a listed session waits for.
    """
    samples = [s for s in snapshots if not s.is_gap]
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
    locks = tuple(edges_of(lock_sample)) if lock_sample is not None else ()
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
