"""Triggered bursts, decided purely: when a condition holds (pt-stalk's ``--function``/``--variable``,
``--threshold`` and ``--cycles``), and whether a burst may start now (cooldown, bursts per hour, free space).

The daemon feeds :class:`Trigger` the counters of its cheap check between samples and every sample it takes;
:class:`Guards` says yes, or why not. Times are aware datetimes (UTC); rates are per second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from plsnap.config import TriggerConfig
from plsnap.counters import lookup
from plsnap.locks import edges_of, waiting_kind
from plsnap.model import Snapshot


@dataclass(frozen=True, slots=True)
class Fired:
    """A condition that held: a one-line description and the values that made it hold."""

    condition: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The archive form (inside a burst marker line)."""
        return {"condition": self.condition, "values": dict(self.values)}


class Trigger:
    """Evaluates the ``[trigger]`` conditions. ``threads_running`` must hold for ``cycles`` consecutive checks
    (a check is the counters read between samples, or a sample's own counters)."""

    def __init__(self, config: TriggerConfig) -> None:
        self.config = config
        self.streak = 0
        #: Per rate condition's counter (and ``Uptime``), its last reading: (when, value).
        self._last: dict[str, tuple[datetime, float]] = {}

    def check_counters(self, ts: datetime, status: Mapping[str, float]) -> Fired | None:
        """One check of the counters (``Threads_running`` and the rate conditions' counters). A check that did
        not read ``Threads_running`` (a sample whose ``[capture] status`` leaves it out) neither extends nor
        breaks its streak; a rate is taken from each counter's last reading, whichever check read it."""
        config = self.config
        fired: Fired | None = None
        if config.threads_running:
            running = lookup(status, "Threads_running")
            if running is not None:
                self.streak = self.streak + 1 if running > config.threads_running else 0
                if self.streak >= config.cycles:
                    fired = Fired(
                        f"Threads_running > {config.threads_running} for {config.cycles} consecutive checks",
                        {"Threads_running": running, "checks": self.streak},
                    )
        if config.rates:
            fired = self._rate_fired(ts, status) if fired is None else fired
        return fired

    def _rate_fired(self, ts: datetime, status: Mapping[str, float]) -> Fired | None:
        uptime = lookup(status, "Uptime")
        before = self._last.get("Uptime")
        if uptime is not None:
            if before is not None and uptime < before[1]:
                self._last.clear()  # the server restarted: no rate across it
            self._last["Uptime"] = (ts, uptime)
        fired: Fired | None = None
        for name, limit in self.config.rates:
            value = lookup(status, name)
            if value is None:
                continue
            last = self._last.get(name)
            self._last[name] = (ts, value)
            if last is None or fired is not None:
                continue
            seconds = (ts - last[0]).total_seconds()
            if seconds > 0 and value >= last[1] and (value - last[1]) / seconds > limit:
                rate = (value - last[1]) / seconds
                fired = Fired(f"{name} > {limit:g}/s", {name: round(rate, 3), "per_second": True})
        return fired

    def check_sample(self, snapshot: Snapshot) -> Fired | None:
        """The conditions on a sample: running sessions, lock-wait age, and the sample's own counters."""
        if snapshot.sessions is None:
            return None
        config = self.config
        if config.running_sessions and snapshot.running > config.running_sessions:
            return Fired(f"running sessions > {config.running_sessions}", {"running": snapshot.running})
        if config.lock_wait:
            oldest = _oldest_lock_wait(snapshot)
            if oldest is not None and oldest > config.lock_wait:
                return Fired(f"a lock wait older than {config.lock_wait:g}s", {"wait_s": round(oldest, 3)})
        status = snapshot.extra.get("status")
        if isinstance(status, dict) and (config.threads_running or config.rates):
            numbers = {k: float(v) for k, v in status.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            return self.check_counters(snapshot.ts, numbers)
        return None


def _oldest_lock_wait(snapshot: Snapshot) -> float | None:
    waits = [edge.wait_s for edge in edges_of(snapshot) if edge.wait_s is not None]
    for session in snapshot.sessions or ():
        if waiting_kind(session) is not None or session.record.get("trx_state") == "LOCK WAIT":
            elapsed = session.elapsed_seconds
            if elapsed is not None:
                waits.append(elapsed)
    return max(waits, default=None)


class Guards:
    """Whether a burst may start now: not during another, not within ``cooldown`` of the last one's end, not
    more than ``max_per_hour`` in any hour, and not when the archive's filesystem is short of ``min_free``."""

    def __init__(self, config: TriggerConfig) -> None:
        self.config = config
        self.started: deque[datetime] = deque()
        self.last_end: datetime | None = None
        self.running = False

    def refusal(self, now: datetime, disk: tuple[int, int] | None) -> str | None:
        """None when a burst may start, else the guard that stops it (``burst running``, ``cooldown``,
        ``max_per_hour``, ``min_free``). ``disk`` is (total, free) bytes."""
        config = self.config
        if self.running:
            return "burst running"
        self._clamp(now)
        if self.last_end is not None and now - self.last_end < timedelta(seconds=config.cooldown):
            return "cooldown"
        while self.started and now - self.started[0] >= timedelta(hours=1):
            self.started.popleft()
        if len(self.started) >= config.max_per_hour:
            return "max_per_hour"
        if config.min_free is not None and disk is not None:
            total, free = disk
            if free < config.min_free.required(total):
                return "min_free"
        return None

    def _clamp(self, now: datetime) -> None:
        """Times after ``now`` (recorded while the clock was ahead) count as ``now``: a clock set back never holds
        bursts off for longer than the cooldown and the hour."""
        if self.last_end is not None and self.last_end > now:
            self.last_end = now
        if self.started and self.started[-1] > now:
            self.started = deque(min(ts, now) for ts in self.started)

    def restore(self, events: Iterable[tuple[datetime, str]], now: datetime) -> None:
        """Take up the bursts an earlier run of the daemon recorded (``burst_start`` and ``burst_end`` markers,
        any order), so that a restart resets neither the cooldown nor the count per hour. A burst without its
        end (the daemon died in it) counts as ending when it would have, at the latest ``now``."""
        pending: datetime | None = None
        for ts, event in sorted(events):
            if event == "burst_start":
                self.started.append(ts)
                pending = ts
            elif event == "burst_end":
                self.last_end = ts if self.last_end is None else max(self.last_end, ts)
                pending = None
        if pending is not None:
            ended = min(now, pending + timedelta(seconds=self.config.burst_duration))
            self.last_end = ended if self.last_end is None else max(self.last_end, ended)
        self._clamp(now)

    def start(self, now: datetime) -> None:
        """Record that a burst started."""
        self.running = True
        self.started.append(now)

    def end(self, now: datetime) -> None:
        """Record that the running burst ended."""
        self.running = False
        self.last_end = now
