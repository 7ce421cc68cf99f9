"""Plain data: :class:`Session` and :class:`Snapshot`, and their archive records.

A *record* is the dict stored as one JSON line in the archive (docs/archive-format.md). ``Snapshot.to_record``
always puts ``ts`` first so readers can filter lines by prefix. Unknown keys survive a round trip.

Every value is validated where a record becomes an object (the reader's edge): a bad field is dropped (set to
None), a session without a valid id is dropped, and a line is rejected only when its ``ts`` or its structure is
bad. What was dropped is counted in an :class:`Issues`, which the reader reports.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

IDLE_COMMANDS = frozenset({"Sleep", "Daemon", "Binlog Dump", "Binlog Dump GTID", "Connect"})
SESSION_KEYS = ("id", "user", "host", "db", "command", "time", "state", "info")
SNAPSHOT_KEYS = ("ts", "v", "instance", "source", "server", "duration_ms", "error", "interval_s", "sessions")
#: Instants outside this range are rejected: arithmetic around them would overflow, and no sample is from there.
TS_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2200, 1, 1, tzinfo=UTC)
MAX_SESSION_ID = 2**64 - 1
#: The kinds of lock wait and how an edge is known (docs/archive-format.md, "Lock-wait edges").
LOCK_KINDS = ("row", "metadata", "table", "user")
LOCK_HOWS = ("lock_table", "derived", "inferred")
#: The largest value a server counter can hold (an unsigned 64-bit integer): anything above it, NaN and
#: infinities are not counters, and would make rates and sums overflow to infinity.
MAX_COUNTER = float(2**64)
#: Longest plausible statement or connection age, in seconds (100 years).
MAX_ELAPSED = 100 * 365 * 86400.0
MAX_INTERVAL = 7 * 86400.0
MIN_INTERVAL = 0.001


def format_ts(moment: datetime) -> str:
    """Render an aware datetime as ISO-8601 UTC with milliseconds and ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> datetime:
    """Parse a ``ts`` value (ISO-8601, ``Z`` or offset) into an aware UTC datetime; ValueError if malformed or
    outside 2000..2200."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text[:40]!r}")
    moment = moment.astimezone(UTC)
    if not TS_MIN <= moment < TS_MAX:
        raise ValueError(f"timestamp out of range: {text[:40]!r}")
    return moment


def is_active(command: Any, info: Any) -> bool:
    """The one definition of "running a statement": a statement text, and a command that is not idle."""
    return info is not None and command not in IDLE_COMMANDS


@dataclass(slots=True)
class Issues:
    """Counts of what validation dropped: single fields, whole sessions, lock-wait edges, counter values."""

    fields: int = 0
    sessions: int = 0
    edges: int = 0
    counters: int = 0

    def __bool__(self) -> bool:
        return bool(self.fields or self.sessions or self.edges or self.counters)

    def describe(self) -> str:
        """One line such as ``dropped 2 invalid field value(s) and 1 invalid session(s)``."""
        parts = []
        if self.fields:
            parts.append(f"{self.fields} invalid field value(s)")
        if self.sessions:
            parts.append(f"{self.sessions} invalid session(s)")
        if self.edges:
            parts.append(f"{self.edges} invalid lock-wait edge(s)")
        if self.counters:
            parts.append(f"{self.counters} invalid counter value(s)")
        return "dropped " + ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


def lock_edge_ok(record: Any) -> bool:
    """Whether an entry of a line's ``locks`` is a valid lock-wait edge (:class:`plsnap.locks.Edge`)."""
    if not isinstance(record, dict):
        return False
    waiter, blocker = record.get("waiter"), record.get("blocker")
    if type(waiter) is not int or type(blocker) is not int or waiter == blocker:
        return False
    if not (0 <= waiter <= MAX_SESSION_ID and 0 <= blocker <= MAX_SESSION_ID):
        return False
    return record.get("kind") in LOCK_KINDS and record.get("how") in LOCK_HOWS


def counter_ok(name: Any, value: Any) -> bool:
    """Whether an entry of a line's ``status`` is a counter value a server can hold."""
    return isinstance(name, str) and type(value) in (int, float) and 0 <= value <= MAX_COUNTER


_EMPTY: Mapping[str, Any] = MappingProxyType({})
_BASE_KEYS = frozenset((*SESSION_KEYS, "time_ms"))
_NO_ISSUES = Issues()


def marker_ok(marker: Any) -> bool:
    """Whether an event line's ``marker`` is as plsnap writes it: an object with a string ``event``, and where
    present a string ``condition``, an object ``values`` of finite numbers and flags (``per_second``) and a
    string ``innodb_status``."""
    if type(marker) is not dict or type(marker.get("event")) is not str:
        return False
    condition, values, status = marker.get("condition"), marker.get("values"), marker.get("innodb_status")
    if condition is not None and type(condition) is not str:
        return False
    if status is not None and type(status) is not str:
        return False
    if values is None:
        return True
    return type(values) is dict and all(
        type(k) is str
        and _VALUE_NAME.match(k) is not None
        and (type(v) is bool or finite(v, -MAX_COUNTER, MAX_COUNTER) is not None)
        for k, v in values.items()
    )


#: A name in a marker's ``values``: a status variable or one of the trigger's own (``checks``, ``wait_s``).
_VALUE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def _masked_marker(marker: dict[str, Any]) -> dict[str, Any]:
    """A marker whose ``condition`` is masked like a statement (plsnap writes none with a secret; another
    writer might), so that no reader shows a secret from it."""
    condition = marker.get("condition")
    if isinstance(condition, str):
        from plsnap.secretwords import may_hold_secret

        if may_hold_secret(condition):
            from plsnap.masking import mask_secrets

            return {**marker, "condition": mask_secrets(condition)}
    return marker


def _count_extras(record: dict[str, Any], issues: Issues) -> None:
    """Count the lock-wait edges and counter values of a line that readers will drop."""
    locks = record.get("locks")
    if locks is not None:
        issues.edges += sum(1 for edge in locks if not lock_edge_ok(edge)) if isinstance(locks, list) else 1
    status = record.get("status")
    if status is not None:
        if isinstance(status, dict):
            issues.counters += sum(1 for name, value in status.items() if not counter_ok(name, value))
        else:
            issues.counters += 1


class Session(NamedTuple):
    """One processlist row (immutable). ``time`` is in seconds, ``time_ms`` in milliseconds when the source has
    it. ``record`` holds the other columns; it may be the whole archive record (base keys there are ignored),
    which keeps reading an archive cheap."""

    id: int
    user: str | None
    host: str | None
    db: str | None
    command: str | None
    time: int | None
    state: str | None
    info: str | None
    time_ms: float | None = None
    record: Mapping[str, Any] = _EMPTY

    @property
    def extra(self) -> dict[str, Any]:
        """The columns beyond the base ones (``time_ms`` excluded), e.g. ``stage``, ``blocked_by``."""
        return {k: v for k, v in self.record.items() if k not in _BASE_KEYS}

    @property
    def active(self) -> bool:
        """True when the session is running a statement."""
        return is_active(self.command, self.info)

    @property
    def blocked_by(self) -> list[int]:
        """Thread ids holding the locks this session waits for (empty when not waiting or not recorded)."""
        value = self.record.get("blocked_by")
        if not isinstance(value, list):
            return []
        return [v for v in value if type(v) is int and 0 <= v <= MAX_SESSION_ID]

    def number(self, key: str) -> float | None:
        """A numeric extra column (e.g. ``trx_age``), or None when missing or not a finite number."""
        return finite(self.record.get(key), 0.0, MAX_ELAPSED * 1000)

    @property
    def elapsed_seconds(self) -> float | None:
        """How long the current command has run, in seconds, preferring ``time_ms``."""
        if self.time_ms is not None:
            return self.time_ms / 1000.0
        return None if self.time is None else float(self.time)

    def to_record(self) -> dict[str, Any]:
        """The JSON object stored in the archive (the ``record`` itself when it already is exactly that, as
        capture builds it: do not modify the result)."""
        own = self.record
        if (
            type(own) is dict
            and own.get("id") == self.id
            and own.get("info") is self.info
            and own.get("user") is self.user
            and own.get("state") is self.state
            and own.get("time") == self.time
            and own.get("time_ms") == self.time_ms
            and own.get("host") is self.host
            and own.get("db") is self.db
            and own.get("command") is self.command
        ):
            return own
        record: dict[str, Any] = {
            "id": self.id,
            "user": self.user,
            "host": self.host,
            "db": self.db,
            "command": self.command,
            "time": self.time,
            "state": self.state,
            "info": self.info,
        }
        if self.time_ms is not None:
            record["time_ms"] = self.time_ms
        for key, value in self.record.items():
            if key not in _BASE_KEYS:
                record[key] = value
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any], issues: Issues | None = None) -> Session:
        """A Session viewing an archive record (unknown keys stay in ``record``).

        Bad fields become None (counted in ``issues``); ValueError when the id is not a valid thread id.
        """
        get = record.get
        session_id = get("id")
        if type(session_id) is not int or not 0 <= session_id <= MAX_SESSION_ID:
            raise ValueError(f"session record without a valid id: {str(session_id)[:40]!r}")
        bad = 0
        time = get("time")
        if type(time) is not int or not 0 <= time <= MAX_ELAPSED:
            checked = finite(time, 0.0, MAX_ELAPSED)
            if time is not None and checked is None:
                bad += 1
            time = None if checked is None else int(checked)
        time_ms = get("time_ms")
        if time_ms is not None:
            checked_ms = finite(time_ms, 0.0, MAX_ELAPSED * 1000)
            if checked_ms is None:
                bad += 1
            time_ms = checked_ms
        values = []
        for key in ("user", "host", "db", "command", "state", "info"):
            value = get(key)
            if value is not None and type(value) is not str:
                bad += 1
                value = None
            values.append(value)
        if bad and issues is not None:
            issues.fields += bad
        user, host, db, command, state, info = values
        return cls(session_id, user, host, db, command, time, state, info, time_ms, record)


def finite(value: Any, low: float, high: float) -> float | None:
    """``value`` as a float when it is a finite number (not a bool) within ``[low, high]``, else None."""
    if type(value) is int:
        return float(value) if low <= value <= high else None
    if type(value) is float and math.isfinite(value) and low <= value <= high:
        return value
    return None


def _opt_str(value: Any) -> str | None:
    return value if value is None or type(value) is str else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One sample of the processlist, or a gap when ``sessions`` is None and ``error`` says why.

    ``ts`` is the capture instant (aware, UTC); ``duration_ms`` the time the sample took; ``interval_s`` the
    configured sampling interval in seconds; ``session_count`` the number of sessions before any reader filter.
    """

    ts: datetime
    instance: str
    source: str | None
    server: str | None
    duration_ms: float | None
    error: str | None
    sessions: tuple[Session, ...] | None
    interval_s: float | None = None
    session_count: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_gap(self) -> bool:
        """True when this line records a failed sample (or a span without samples)."""
        return self.sessions is None and not self.is_marker

    @property
    def is_sample(self) -> bool:
        """True for a successful sample (a processlist, possibly empty): neither a gap nor a marker."""
        return self.sessions is not None

    @property
    def is_marker(self) -> bool:
        """True for an event line (a burst starting or ending), which is neither a sample nor a gap."""
        return self.sessions is None and isinstance(self.extra.get("marker"), dict)

    @property
    def marker(self) -> dict[str, Any]:
        """The event of a marker line ({} otherwise)."""
        value = self.extra.get("marker")
        return value if isinstance(value, dict) else {}

    @property
    def running(self) -> int:
        """Number of sessions running a statement in this sample (0 for a gap)."""
        return sum(1 for s in self.sessions or () if s.active)

    @property
    def visibility(self) -> str | None:
        """What the capture account could see: ``all``, ``own`` (no PROCESS privilege) or ``unknown``."""
        value = self.extra.get("visibility")
        return value if value in ("all", "own", "unknown") else None

    @property
    def gap_since(self) -> datetime | None:
        """For a gap line that covers a span (skipped slots, failed writes): the first instant without data."""
        value = self.extra.get("gap_since")
        if not isinstance(value, str):
            return None
        try:
            since = parse_ts(value)
        except ValueError:
            return None
        return since if since <= self.ts else None

    def to_record(self) -> dict[str, Any]:
        """The JSON object stored as one archive line, ``ts`` first."""
        record: dict[str, Any] = {
            "ts": format_ts(self.ts),
            "v": 2,
            "instance": self.instance,
            "source": self.source,
            "server": self.server,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "interval_s": self.interval_s,
        }
        record.update(self.extra)
        record["sessions"] = None if self.sessions is None else [s.to_record() for s in self.sessions]
        return record

    @classmethod
    def from_record(
        cls, record: dict[str, Any], *, include_idle: bool = True, issues: Issues | None = None
    ) -> Snapshot:
        """Build a Snapshot from an archive record; ValueError if its ``ts`` or its sessions list is bad.

        With ``include_idle=False`` idle sessions are skipped (``session_count`` still counts them). Invalid
        fields and sessions are dropped and counted in ``issues``.
        """
        ts = record.get("ts")
        if not isinstance(ts, str):
            raise ValueError("line without a ts string")
        moment = parse_ts(ts)
        raw_sessions = record.get("sessions")
        sessions: tuple[Session, ...] | None
        if raw_sessions is None:
            sessions, count = None, None
        elif isinstance(raw_sessions, list):
            count = len(raw_sessions)
            blockers = _blockers(record.get("locks")) if not include_idle else frozenset()
            sessions = _sessions(raw_sessions, include_idle, issues if issues is not None else Issues(), blockers)
        else:
            raise ValueError("sessions is neither a list nor null")
        if "marker" in record:
            if raw_sessions is not None or not marker_ok(record["marker"]):
                raise ValueError("a marker line that is not a well-formed event")
            record = {**record, "marker": _masked_marker(record["marker"])}
        duration = finite(record.get("duration_ms"), 0.0, MAX_ELAPSED * 1000)
        interval = finite(record.get("interval_s"), MIN_INTERVAL, MAX_INTERVAL)
        if issues is not None:
            issues.fields += sum(
                1
                for key, checked in (("duration_ms", duration), ("interval_s", interval))
                if record.get(key) is not None and checked is None
            )
            _count_extras(record, issues)
        return cls(
            ts=moment,
            instance=_opt_str(record.get("instance")) or "",
            source=_opt_str(record.get("source")),
            server=_opt_str(record.get("server")),
            duration_ms=duration,
            error=_opt_str(record.get("error")),
            sessions=sessions,
            interval_s=interval,
            session_count=count,
            extra={k: v for k, v in record.items() if k not in SNAPSHOT_KEYS},
        )


def _sessions(raw: list[Any], include_idle: bool, issues: Issues, blockers: frozenset[int]) -> tuple[Session, ...]:
    """Valid sessions of a record; without ``include_idle`` only running ones, idle transaction holders and
    the blockers of a lock wait."""
    from_record = Session.from_record
    kept = []
    for item in raw:
        if type(item) is not dict:
            issues.sessions += 1
            continue
        if (
            not include_idle
            and not is_active(item.get("command"), item.get("info"))
            and "trx_state" not in item
            and item.get("id") not in blockers
        ):
            continue
        try:
            kept.append(from_record(item, issues))
        except ValueError:
            issues.sessions += 1
    return tuple(kept)


def _blockers(locks: Any) -> frozenset[int]:
    """The blocker ids named by a record's lock edges."""
    if not isinstance(locks, list):
        return frozenset()
    return frozenset(e["blocker"] for e in locks if type(e) is dict and type(e.get("blocker")) is int)
