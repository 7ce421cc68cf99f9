"""Plain data: :class:`Session` and :class:`Snapshot`, and their archive records.

A *record* is the dict stored as one JSON line in the archive (DESIGN §3). ``Snapshot.to_record`` always puts
``ts`` first so readers can filter lines by prefix. Unknown keys survive a round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

IDLE_COMMANDS = frozenset({"Sleep", "Daemon", "Binlog Dump", "Binlog Dump GTID", "Connect"})
SESSION_KEYS = ("id", "user", "host", "db", "command", "time", "state", "info")
SNAPSHOT_KEYS = ("ts", "instance", "source", "server", "duration_ms", "error", "interval_s", "sessions")


def format_ts(moment: datetime) -> str:
    """Render an aware datetime as ISO-8601 UTC with milliseconds and ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> datetime:
    """Parse a ``ts`` value (ISO-8601, ``Z`` or offset) into an aware UTC datetime; ValueError if malformed."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return moment.astimezone(UTC)


def is_active_record(record: dict[str, Any]) -> bool:
    """True when a session record is running a statement (not idle, not a daemon thread)."""
    return record.get("command") not in IDLE_COMMANDS and record.get("info") is not None


_EMPTY: Mapping[str, Any] = MappingProxyType({})
_BASE_KEYS = frozenset((*SESSION_KEYS, "time_ms"))


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
        return self.command not in IDLE_COMMANDS and self.info is not None

    @property
    def blocked_by(self) -> list[int]:
        """Thread ids holding the locks this session waits for (empty when not waiting or not recorded)."""
        value = self.record.get("blocked_by")
        return [int(v) for v in value if isinstance(v, int)] if isinstance(value, list) else []

    @property
    def elapsed_seconds(self) -> float | None:
        """How long the current command has run, in seconds, preferring ``time_ms``."""
        if self.time_ms is not None:
            return self.time_ms / 1000.0
        return None if self.time is None else float(self.time)

    def to_record(self) -> dict[str, Any]:
        """The JSON object stored in the archive."""
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
    def from_record(cls, record: dict[str, Any]) -> Session:
        """A Session viewing an archive record (unknown keys stay in ``record``); ValueError if malformed."""
        get = record.get
        session_id = get("id")
        if type(session_id) is not int:
            try:
                session_id = int(session_id)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ValueError(f"session record without a valid id: {session_id!r}") from None
        time = get("time")
        time_ms = get("time_ms")
        return cls(
            session_id,
            _text(get("user")),
            _text(get("host")),
            _text(get("db")),
            _text(get("command")),
            time if type(time) is int else (int(time) if isinstance(time, float) else None),
            _text(get("state")),
            _text(get("info")),
            float(time_ms) if isinstance(time_ms, int | float) and not isinstance(time_ms, bool) else None,
            record,
        )


def _text(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


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
        """True when this line records a failed sample."""
        return self.sessions is None

    @property
    def running(self) -> int:
        """Number of sessions running a statement in this sample (0 for a gap)."""
        return sum(1 for s in self.sessions or () if s.active)

    def to_record(self) -> dict[str, Any]:
        """The JSON object stored as one archive line, ``ts`` first."""
        record: dict[str, Any] = {
            "ts": format_ts(self.ts),
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
    def from_record(cls, record: dict[str, Any], *, include_idle: bool = True) -> Snapshot:
        """Build a Snapshot from an archive record; ValueError if it lacks a valid ``ts`` or sessions list.

        With ``include_idle=False`` idle sessions are skipped (``session_count`` still counts them).
        """
        ts = record.get("ts")
        if not isinstance(ts, str):
            raise ValueError("line without a ts string")
        raw_sessions = record.get("sessions")
        sessions: tuple[Session, ...] | None
        if raw_sessions is None:
            sessions, count = None, None
        elif isinstance(raw_sessions, list):
            count = len(raw_sessions)
            kept = raw_sessions if include_idle else _keep_active(raw_sessions)
            from_record = Session.from_record
            sessions = tuple(from_record(r) for r in kept if type(r) is dict)
        else:
            raise ValueError("sessions is neither a list nor null")
        duration = record.get("duration_ms")
        interval = record.get("interval_s")
        return cls(
            ts=parse_ts(ts),
            instance=str(record.get("instance") or ""),
            source=_opt_str(record.get("source")),
            server=_opt_str(record.get("server")),
            duration_ms=float(duration) if isinstance(duration, int | float) else None,
            error=_opt_str(record.get("error")),
            sessions=sessions,
            interval_s=float(interval) if isinstance(interval, int | float) else None,
            session_count=count,
            extra={k: v for k, v in record.items() if k not in SNAPSHOT_KEYS},
        )


def _keep_active(records: list[Any]) -> list[Any]:
    """The idle filter: running sessions, and idle ones holding an open transaction (possible blockers)."""
    idle = IDLE_COMMANDS
    return [
        r
        for r in records
        if type(r) is dict and ((r.get("info") is not None and r.get("command") not in idle) or "trx_state" in r)
    ]
