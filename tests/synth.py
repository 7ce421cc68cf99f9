"""Synthetic sessions and snapshots with known truth, for unit tests of pure logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from plsnap.model import Session, Snapshot

T0 = datetime(2026, 11, 28, 3, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """``T0 + seconds``."""
    return T0 + timedelta(seconds=seconds)


def session(sid: int, info: str | None = "SELECT 1", *, time: int = 0, command: str = "Query", **extra: Any) -> Session:
    """A processlist row; ``time`` in seconds."""
    return Session(
        id=sid,
        user=extra.pop("user", "app"),
        host=extra.pop("host", "10.0.0.5:51234"),
        db=extra.pop("db", "shop"),
        command=command,
        time=time,
        state=extra.pop("state", "Sending data" if command == "Query" else ""),
        info=info if command != "Sleep" else None,
        time_ms=extra.pop("time_ms", None),
        record=extra,
    )


def idle(sid: int, *, time: int = 0, **extra: Any) -> Session:
    """An idle (Sleep) session."""
    return session(sid, None, time=time, command="Sleep", **extra)


def snap(seconds: float, *sessions: Session, interval: float = 10.0, instance: str = "test") -> Snapshot:
    """A successful sample at ``T0 + seconds``."""
    return Snapshot(
        ts=at(seconds),
        instance=instance,
        source="information_schema",
        server="10.11.19-MariaDB",
        duration_ms=3.5,
        error=None,
        sessions=tuple(sessions),
        interval_s=interval,
        session_count=len(sessions),
    )


def gap(seconds: float, error: str = "connect failed: (2003) Can't connect", interval: float = 10.0) -> Snapshot:
    """A failed sample at ``T0 + seconds``."""
    return Snapshot(
        ts=at(seconds),
        instance="test",
        source=None,
        server=None,
        duration_ms=1.0,
        error=error,
        sessions=None,
        interval_s=interval,
    )


def running(sid: int, info: str, *, started: float, now: float, **extra: Any) -> Session:
    """A session at ``T0 + now`` running ``info`` since ``T0 + started`` (Time truncated to whole seconds)."""
    return session(sid, info, time=int(now - started), **extra)
