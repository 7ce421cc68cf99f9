"""Plain data: :class:`Session` and :class:`Snapshot`, and their archive records.

A *record* is the dict stored as one JSON line in the archive (DESIGN §3). ``Snapshot.to_record`` always puts
``ts`` first so readers can filter lines by prefix. Unknown keys survive a round trip in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Session:
    """One processlist row. ``time`` is in seconds, ``time_ms`` in milliseconds when the source has it."""

    id: int
    user: str | None
    host: str | None
    db: str | None
    command: str | None
    time: int | None
    state: str | None
    info: str | None
    time_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """True when the session is running a statement."""
        return self.command not in IDLE_COMMANDS and self.info is not None

    @property
    def blocked_by(self) -> list[int]:
        """Thread ids holding the locks this session waits for (empty when not waiting or not recorded)."""
        value = self.extra.get("blocked_by")
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
        record.update(self.extra)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Session:
        """Build a Session from an archive record, keeping unknown keys in ``extra``; ValueError if malformed."""
        try:
            session_id = int(record["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"session record without a valid id: {exc}") from None
        time = record.get("time")
        time_ms = record.get("time_ms")
        return cls(
            id=session_id,
            user=_opt_str(record.get("user")),
            host=_opt_str(record.get("host")),
            db=_opt_str(record.get("db")),
            command=_opt_str(record.get("command")),
            time=int(time) if isinstance(time, int | float) else None,
            state=_opt_str(record.get("state")),
            info=_opt_str(record.get("info")),
            time_ms=float(time_ms) if isinstance(time_ms, int | float) else None,
            extra={k: v for k, v in record.items() if k not in SESSION_KEYS and k != "time_ms"},
        )


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
            kept = raw_sessions if include_idle else [r for r in raw_sessions if _active_dict(r)]
            sessions = tuple(Session.from_record(r) for r in kept if isinstance(r, dict))
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


def _active_dict(record: Any) -> bool:
    """Kept by the idle filter: running sessions, and idle ones holding an open transaction (possible blockers)."""
    return isinstance(record, dict) and (is_active_record(record) or "trx_state" in record)
