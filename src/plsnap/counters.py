"""Server counters stored with each sample: gauges as they are, counters as rates per second between
neighbouring samples (pure functions; the values come from ``SHOW GLOBAL STATUS``).

A counter that goes down between two samples (the server restarted, or someone ran ``FLUSH STATUS``), or an
``Uptime`` that went down, gives no rate for that interval: never a negative one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from plsnap.model import Snapshot, counter_ok

#: Values that are a level, not a running total.
GAUGES = frozenset(
    {
        "Threads_running",
        "Threads_connected",
        "Threads_cached",
        "Innodb_row_lock_current_waits",
        "Innodb_row_lock_time_avg",
        "Innodb_row_lock_time_max",
        "Innodb_history_list_length",
        "Innodb_checkpoint_age",
        "Innodb_checkpoint_max_age",
        "Innodb_num_open_files",
        "Innodb_page_size",
        "Innodb_buffer_pool_bytes_data",
        "Innodb_buffer_pool_bytes_dirty",
        "Innodb_buffer_pool_pages_data",
        "Innodb_buffer_pool_pages_dirty",
        "Innodb_buffer_pool_pages_free",
        "Innodb_buffer_pool_pages_latched",
        "Innodb_buffer_pool_pages_misc",
        "Innodb_buffer_pool_pages_old",
        "Innodb_buffer_pool_pages_total",
        "Innodb_mem_adaptive_hash",
        "Innodb_mem_dictionary",
        "Innodb_os_log_pending_fsyncs",
        "Innodb_os_log_pending_writes",
        "Key_blocks_not_flushed",
        "Key_blocks_unused",
        "Key_blocks_used",
        "Max_used_connections",
        "Memory_used",
        "Memory_used_initial",
        "Not_flushed_delayed_rows",
        "Delayed_insert_threads",
        "Prepared_stmt_count",
        "Qcache_free_blocks",
        "Qcache_free_memory",
        "Qcache_queries_in_cache",
        "Qcache_total_blocks",
        "Replica_open_temp_tables",
        "Slave_open_temp_tables",
        "Slaves_connected",
        "Slaves_running",
        "Rpl_semi_sync_master_clients",
        "Rpl_semi_sync_source_clients",
        "Uptime",
        "Uptime_since_flush_status",
        "wsrep_cluster_size",
        "wsrep_local_recv_queue",
        "wsrep_local_send_queue",
        "wsrep_flow_control_paused",
        "wsrep_local_state",
        "wsrep_local_index",
        "wsrep_cluster_conf_id",
        "Innodb_available_undo_logs",
        "Innodb_ibuf_free_list",
        "Tc_log_max_pages_used",
        "Binlog_snapshot_position",
    }
)
#: Name shapes that are levels, not running totals: ``Open_tables`` (``Opened_tables`` counts), ACL entries, undo
#: tablespaces, ongoing transactions, a pending or current count, a queue's average, what is active now (X
#: Plugin connections), a size, waiting sessions (semi-sync; ``Mysqlx_sessions`` counts), memory in use
#: (``Global_connection_memory``).
_GAUGE_SHAPES = ("Open_", "Innodb_data_pending_", "Acl_", "Innodb_undo_tablespaces_", "Ongoing_")
_GAUGE_SUFFIXES = ("_current_waits", "_pending", "_avg", "_active", "_size", "_wait_sessions", "_memory")
#: Names of counters kept in ``INNODB_METRICS`` on MySQL 8 (not in SHOW GLOBAL STATUS), as plsnap stores them.
INNODB_METRICS = {"trx_rseg_history_len": "Innodb_history_list_length", "lock_deadlocks": "Innodb_deadlocks"}


_GAUGES_LOWER = frozenset(name.lower() for name in GAUGES)
_GAUGE_SHAPES_LOWER = tuple(shape.lower() for shape in _GAUGE_SHAPES)
_KNOWN = {name.lower(): name for name in (*GAUGES, *INNODB_METRICS.values())}


@functools.lru_cache(maxsize=4096)
def is_gauge(name: str) -> bool:
    """True for a level (``Threads_running``), False for a running total (``Questions``); the server's names
    are case-insensitive, and so is this."""
    lowered = name.lower()
    return lowered in _GAUGES_LOWER or lowered.startswith(_GAUGE_SHAPES_LOWER) or lowered.endswith(_GAUGE_SUFFIXES)


def canonical_name(name: str, known: Iterable[str] = ()) -> str:
    """A status variable's name as the server spells it (``questions`` -> ``Questions``): the spelling of a
    name in ``known`` or of this module, else the servers' rule (the first letter capital, the rest small;
    Galera's ``wsrep_`` names all small)."""
    lowered = name.lower()
    for candidate in known:
        if candidate.lower() == lowered:
            return candidate
    found = _KNOWN.get(lowered)
    if found is not None:
        return found
    return lowered if lowered.startswith("wsrep_") else lowered[:1].upper() + lowered[1:]


def lookup(values: Mapping[str, Any], name: str) -> Any:
    """``values[name]``, the name compared without case as the server compares it (None when absent)."""
    found = values.get(name)
    if found is not None:
        return found
    lowered = name.lower()
    return next((value for key, value in values.items() if key.lower() == lowered), None)


def status_of(snapshot: Snapshot) -> dict[str, float]:
    """The counters recorded with a sample (invalid values left out)."""
    raw = snapshot.extra.get("status")
    if not isinstance(raw, dict):
        return {}
    values = {}
    for name, value in raw.items():
        if counter_ok(name, value):
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
    """Count, total, minimum and maximum of a series of levels (the mean is total / count)."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def merge(self, other: Range) -> None:
        """Add the values counted in ``other``."""
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    @property
    def mean(self) -> float | None:
        """The mean, or None when empty."""
        return self.total / self.count if self.count else None


@dataclass(slots=True)
class RateRange(Range):
    """Rates over intervals: minimum and maximum of the per-interval rates, and as mean the total increase over
    the total time (per second), so that a long interval weighs more than a short one. ``total`` is the increase,
    ``ms`` the milliseconds it took."""

    ms: int = 0

    def add_rate(self, increase: float, ms: int) -> None:
        """Add one interval: the counter grew by ``increase`` in ``ms`` milliseconds."""
        rate = increase * 1000 / ms
        self.count += 1
        self.total += increase
        self.ms += ms
        self.low = min(self.low, rate)
        self.high = max(self.high, rate)

    def merge(self, other: Range) -> None:
        Range.merge(self, other)
        if isinstance(other, RateRange):
            self.ms += other.ms

    @property
    def mean(self) -> float | None:
        """Per second over all the intervals, or None when empty."""
        return self.total * 1000 / self.ms if self.count and self.ms else None


@dataclass(slots=True)
class Cell:
    """Counters in one aligned span of ``cell_seconds``: gauge levels and rates."""

    gauges: dict[str, Range] = field(default_factory=dict)
    rates: dict[str, RateRange] = field(default_factory=dict)

    def merge(self, other: Cell) -> None:
        """Add what ``other`` counted."""
        for name, found in other.gauges.items():
            self.gauges.setdefault(name, Range()).merge(found)
        for name, rate in other.rates.items():
            self.rates.setdefault(name, RateRange()).merge(rate)


@dataclass(slots=True)
class CounterSummary:
    """A span's counters, per aligned cell of ``cell_seconds`` (keyed by ``start // cell_seconds``), and how many
    intervals had no rate because of a restart. Totals over cells are taken in time order, so a summary built
    in one pass and one joined from parts (:func:`merge_counters`) agree exactly."""

    cell_seconds: int = 60
    cells: dict[int, Cell] = field(default_factory=dict)
    resets: int = 0

    @property
    def empty(self) -> bool:
        """True when no sample carried counters."""
        return not self.cells

    @property
    def gauges(self) -> dict[str, Range]:
        """Per gauge, its levels over the whole span."""
        found: dict[str, Range] = {}
        for _, cell in sorted(self.cells.items()):
            for name, value in cell.gauges.items():
                found.setdefault(name, Range()).merge(value)
        return found

    @property
    def rates(self) -> dict[str, RateRange]:
        """Per counter, its rates over the whole span."""
        found: dict[str, RateRange] = {}
        for _, cell in sorted(self.cells.items()):
            for name, value in cell.rates.items():
                found.setdefault(name, RateRange()).merge(value)
        return found

    def cell(self, ts: datetime) -> Cell:
        """The cell holding ``ts``."""
        index = _ms(ts) // (self.cell_seconds * 1000)
        found = self.cells.get(index)
        if found is None:
            found = self.cells[index] = Cell()
        return found


@dataclass(slots=True)
class CounterPart:
    """The counters of one span, in a form that joins with the next span's (:func:`merge_counters`): the
    first sample with counters (its rate needs the previous span), and the reading the next span's first rate
    starts from (None when a gap broke the chain after it, or the span had none)."""

    summary: CounterSummary
    first: tuple[datetime, dict[str, float]] | None = None
    head_break: bool = False
    tail: tuple[datetime, dict[str, float]] | None = None
    tail_break: bool = False


class CounterTracker:
    """Accumulates a span's counters from samples in ``ts`` order (gaps break the rate chain)."""

    def __init__(self, cell_seconds: int = 60) -> None:
        self.part = CounterPart(CounterSummary(cell_seconds=cell_seconds))

    @property
    def summary(self) -> CounterSummary:
        """What was accumulated so far."""
        return self.part.summary

    def feed(self, snapshot: Snapshot) -> None:
        """Add one line (samples with counters; a gap resets the rate chain)."""
        part = self.part
        if snapshot.is_gap:
            if part.first is None:
                part.head_break = True
            part.tail, part.tail_break = None, True
            return
        status = status_of(snapshot)
        if not status:
            return
        cell = part.summary.cell(snapshot.ts)
        for name, value in status.items():
            if is_gauge(name):
                cell.gauges.setdefault(name, Range()).add(value)
        if part.tail is not None:
            _add_rates(part.summary, part.tail, (snapshot.ts, status))
        if part.first is None:
            part.first = (snapshot.ts, status)
        part.tail, part.tail_break = (snapshot.ts, status), False


Reading = tuple[datetime, dict[str, float]]


def _add_rates(summary: CounterSummary, before: Reading, after: Reading) -> None:
    """Add the rates between two readings to the cell of the later one (a restart counts as a reset)."""
    ms = _ms(after[0]) - _ms(before[0])
    if ms <= 0:
        return
    old, new = before[1], after[1]
    restarted = "Uptime" in old and "Uptime" in new and new["Uptime"] < old["Uptime"]
    cell = summary.cell(after[0])
    reset = False
    for name, value in new.items():
        if is_gauge(name) or name not in old:
            continue
        increase = value - old[name]
        if restarted or increase < 0:
            reset = True
            continue
        cell.rates.setdefault(name, RateRange()).add_rate(increase, ms)
    if reset:
        summary.resets += 1


def merge_counters(left: CounterPart, right: CounterPart) -> CounterPart:
    """The counters of two adjacent spans (``left`` before ``right``), as if accumulated in one pass. Neither
    input is modified."""
    summary = CounterSummary(cell_seconds=left.summary.cell_seconds, resets=left.summary.resets + right.summary.resets)
    for source in (left.summary, right.summary):
        for index, cell in source.cells.items():
            summary.cells.setdefault(index, Cell()).merge(cell)
    if left.tail is not None and right.first is not None and not right.head_break:
        _add_rates(summary, left.tail, right.first)
    first: Reading | None
    if left.first is not None:
        first, head_break = left.first, left.head_break
    else:
        first, head_break = right.first, left.head_break or left.tail_break or right.head_break
    if right.first is not None or right.tail_break:
        tail, tail_break = right.tail, right.tail_break
    else:
        tail, tail_break = left.tail, left.tail_break
    return CounterPart(summary, first, head_break, tail, tail_break)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MILLISECOND
