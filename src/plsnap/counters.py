"""Server counters stored with each sample: gauges as they are, counters as rates per second between
neighbouring samples (pure functions; the values come from ``SHOW GLOBAL STATUS``).

A counter that goes down between two samples (the server restarted, or someone ran ``FLUSH STATUS``), or an
``Uptime`` that went down, gives no rate for that interval: never a negative one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from plsnap.model import Snapshot

#: Values that are a level, not a running total.
GAUGES = frozenset(
    {
        "Threads_running",
        "Threads_connected",
        "Threads_cached",
        "Innodb_row_lock_current_waits",
        "Innodb_history_list_length",
        "Max_used_connections",
        "Open_tables",
        "Open_files",
        "Innodb_buffer_pool_pages_dirty",
        "Innodb_buffer_pool_pages_free",
        "Uptime",
    }
)
#: Names of counters kept in ``INNODB_METRICS`` on MySQL 8 (not in SHOW GLOBAL STATUS), as plsnap stores them.
INNODB_METRICS = {"trx_rseg_history_len": "Innodb_history_list_length", "lock_deadlocks": "Innodb_deadlocks"}


def is_gauge(name: str) -> bool:
    """True for a level (``Threads_running``), False for a running total (``Questions``)."""
    return name in GAUGES or name.endswith("_current_waits")


def status_of(snapshot: Snapshot) -> dict[str, float]:
    """The counters recorded with a sample (invalid values left out)."""
    raw = snapshot.extra.get("status")
    if not isinstance(raw, dict):
        return {}
    values = {}
    for name, value in raw.items():
        if isinstance(name, str) and type(value) in (int, float) and math.isfinite(value) and value >= 0:
            values[name] = float(value)
    return values


def parse_status(rows: Iterable[tuple[Any, Any]]) -> dict[str, int | float]:
    """``SHOW GLOBAL STATUS`` rows (name, value as text or bytes) as numbers; non-numeric values are dropped."""
    values: dict[str, int | float] = {}
    for name, value in rows:
        key = name.decode() if isinstance(name, bytes) else str(name)
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        try:
            values[key] = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                continue
            if math.isfinite(number):
                values[key] = number
    return values


def rates(before: Mapping[str, float], after: Mapping[str, float], seconds: float) -> dict[str, float | None]:
    """Per-second rates of the counters between two readings ``seconds`` apart; None where a counter went down
    or the server restarted in between (``Uptime`` went down)."""
    if seconds <= 0:
        return {}
    restarted = "Uptime" in before and "Uptime" in after and after["Uptime"] < before["Uptime"]
    found: dict[str, float | None] = {}
    for name, value in after.items():
        if is_gauge(name) or name not in before:
            continue
        delta = value - before[name]
        found[name] = None if restarted or delta < 0 else delta / seconds
    return found


def rates_between(before: Snapshot, after: Snapshot) -> dict[str, float | None]:
    """Rates between two samples' counters."""
    return rates(status_of(before), status_of(after), (after.ts - before.ts).total_seconds())


@dataclass(slots=True)
class Range:
    """Minimum, mean and maximum of a series."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    @property
    def mean(self) -> float | None:
        """The mean, or None when empty."""
        return self.total / self.count if self.count else None


@dataclass(slots=True)
class CounterPoint:
    """The counters at one sample: gauges as read, rates since the previous sample."""

    ts: datetime
    gauges: dict[str, float]
    rates: dict[str, float | None]


@dataclass(slots=True)
class CounterSummary:
    """A window's counters: per name the range of gauge values or of rates, the points in time, and how many
    intervals had no rate because of a restart."""

    gauges: dict[str, Range] = field(default_factory=dict)
    rates: dict[str, Range] = field(default_factory=dict)
    points: list[CounterPoint] = field(default_factory=list)
    resets: int = 0

    @property
    def empty(self) -> bool:
        """True when no sample carried counters."""
        return not self.points


class CounterTracker:
    """Accumulates a window's counters from samples in ``ts`` order (gaps break the rate chain)."""

    def __init__(self) -> None:
        self.summary = CounterSummary()
        self._previous: tuple[datetime, dict[str, float]] | None = None

    def feed(self, snapshot: Snapshot) -> None:
        """Add one line (samples with counters; a gap resets the rate chain)."""
        if snapshot.is_gap:
            self._previous = None
            return
        status = status_of(snapshot)
        if not status:
            return
        gauges = {name: value for name, value in status.items() if is_gauge(name)}
        found: dict[str, float | None] = {}
        if self._previous is not None:
            ts, before = self._previous
            found = rates(before, status, (snapshot.ts - ts).total_seconds())
            if any(value is None for value in found.values()):
                self.summary.resets += 1
        for name, value in gauges.items():
            self.summary.gauges.setdefault(name, Range()).add(value)
        for name, rate in found.items():
            if rate is not None:
                self.summary.rates.setdefault(name, Range()).add(rate)
        self.summary.points.append(CounterPoint(snapshot.ts, gauges, found))
        self._previous = (snapshot.ts, status)
