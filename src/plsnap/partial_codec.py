"""A :class:`~plsnap.partial.Partial` as plain JSON values and back (the rollup file's content).

Instants are integer microseconds since the epoch (exact for every ``datetime``), sets are sorted lists, and
executions and episodes are tables referenced by position so that an object held in two lists stays one
object. Statement texts of examples and executions are stored by reference (where they are in the raw rows,
and a digest; :mod:`plsnap.textref`): they decode as :class:`~plsnap.textref.TextRef`. :func:`decode` trusts
nothing: any value of the wrong shape raises :class:`CodecError`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from plsnap.counters import Cell, CounterPart, CounterSummary, Range, RateRange
from plsnap.locks import BlockerIdentity, Episode, EpisodePart
from plsnap.model import MAX_COUNTER, MAX_ELAPSED, MAX_INTERVAL, MIN_INTERVAL, Session, Snapshot
from plsnap.partial import (
    DIMENSIONS,
    GAP,
    LOAD_BUCKET,
    MARKER,
    SAMPLE,
    GroupState,
    Line,
    Partial,
    Pending,
    execution_group,
    interval_ms,
    ms_of,
)
from plsnap.replay import Execution, StitchPart
from plsnap.textref import TextRef, text_key

if TYPE_CHECKING:
    from plsnap.summary import LoadTracker

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: Instants are stored relative to the part's first line (microseconds), which keeps the numbers short.
_BASE: ContextVar[int] = ContextVar("plsnap_codec_base", default=0)
#: While decoding: the timeline's instants by their stored value (most instants of a part are lines' ``ts``).
_MOMENTS: ContextVar[dict[int, datetime]] = ContextVar("plsnap_codec_moments")


class CodecError(ValueError):
    """A value that is not what :func:`encode` writes."""


def encode(partial: Partial, dims: Iterable[str] | None = None, *, cap: int | None = None) -> dict[str, Any]:
    """``partial`` (only the groups of ``dims``, default all it has) as JSON values; with ``cap``, only that
    many of the longest ended executions are kept."""
    base = (partial.lines[0].ts - _EPOCH) // _MICROSECOND if partial.lines else 0
    token = _BASE.set(base)
    try:
        return {"base": base, **_encode(partial, dims, cap)}
    finally:
        _BASE.reset(token)


def _encode(partial: Partial, dims: Iterable[str] | None, cap: int | None) -> dict[str, Any]:
    wanted = tuple(partial.dims if dims is None else dims)
    where: dict[datetime, int] = {}
    for position, line in enumerate(partial.lines):
        where.setdefault(line.ts, position)
    pending = partial.pending
    return {
        "dims": list(wanted),
        "lines": _lines(partial.lines),
        "groups": {
            dim: {
                "groups": [
                    [key, g.samples, g.active_ms, _example(g, where), _deltas(g.sessions)]
                    for key, g in partial.groups[dim].items()
                ],
                "pending": pending.counts.get(dim, {}) if pending is not None else None,
            }
            for dim in wanted
        },
        "total_ms": partial.total_ms,
        "pending": None if pending is None else [us(pending.ts), pending.interval_ms, pending.running],
        "stitch": _stitch(partial.stitch, cap),
        "episodes": _episodes(partial.episodes),
        "counters": _counters(partial.counters),
        "load": None if partial.load is None else _load(partial.load),
    }


def decode(value: Any, dims: Iterable[str] | None = None) -> Partial:
    """The Partial that :func:`encode` made ``value`` from (only the groups of ``dims``, default all)."""
    try:
        return _decode(value, dims)
    except CodecError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"malformed part ({type(exc).__name__})") from None


def decode_timeline(value: Any) -> list[Line]:
    """Only the timeline (the lines) of a part :func:`encode` made ``value`` from."""
    try:
        obj = _dict(value)
        token, moments = _BASE.set(_int(obj["base"])), _MOMENTS.set({})
        try:
            return _unlines(obj["lines"])
        finally:
            _BASE.reset(token)
            _MOMENTS.reset(moments)
    except CodecError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"malformed part ({type(exc).__name__})") from None


def _decode(value: Any, dims: Iterable[str] | None) -> Partial:
    obj = _dict(value)
    token = _BASE.set(_int(obj["base"]))
    moments = _MOMENTS.set({})
    try:
        return _decode_based(obj, dims)
    finally:
        _BASE.reset(token)
        _MOMENTS.reset(moments)


def _decode_based(obj: dict[str, Any], dims: Iterable[str] | None) -> Partial:
    stored = tuple(_str(d) for d in _list(obj["dims"]))
    if any(d not in DIMENSIONS for d in stored):
        raise CodecError("unknown dimension")
    wanted = stored if dims is None else tuple(dims)
    if any(d not in stored for d in wanted):
        raise CodecError("dimension not stored")
    groups_obj = _dict(obj["groups"])
    lines = _unlines(obj["lines"])
    by_dim = {dim: _dict(groups_obj[dim]) for dim in wanted}
    groups = {dim: _groups(value["groups"], dim, lines) for dim, value in by_dim.items()}
    total_ms = _int(obj["total_ms"])
    pending = _unpending(obj["pending"], {dim: value["pending"] for dim, value in by_dim.items()})
    _check_totals(lines, groups, total_ms, pending)
    stitch = _unstitch(obj["stitch"])
    load = obj.get("load")
    return Partial(
        dims=wanted,
        lines=lines,
        groups=groups,
        total_ms=total_ms,
        pending=pending,
        stitch=stitch,
        episodes=_unepisodes(obj["episodes"]),
        counters=_uncounters(obj["counters"], lines),
        load=None if load is None else _unload(load, lines, total_ms, pending),
    )


def _check_totals(
    lines: list[Line], groups: dict[str, dict[str, GroupState]], total_ms: int, pending: Pending | None
) -> None:
    """What :class:`~plsnap.partial.PartialBuilder` always makes true: each dimension's groups split the part's
    session-samples and active milliseconds exactly, and the pending sample's counts its running sessions. A
    value that breaks it (absurd, negative, or from another part) raises CodecError."""
    samples = sum(line.running for line in lines)
    if samples < 0 or total_ms < 0:
        raise CodecError("negative totals")
    for dim, found in groups.items():
        if any(g.samples < 0 or g.active_ms < 0 for g in found.values()):
            raise CodecError("negative group totals")
        if sum(g.samples for g in found.values()) != samples or sum(g.active_ms for g in found.values()) != total_ms:
            raise CodecError(f"the {dim} groups do not add up to the part's totals")
        if pending is not None:
            counts = pending.counts.get(dim, {})
            if any(v < 0 or k not in found for k, v in counts.items()) or sum(counts.values()) != pending.running:
                raise CodecError("the pending sample's counts do not match its groups")


# --- instants and scalars ----------------------------------------------------------------------------------


def us(moment: datetime | None) -> int | None:
    """Microseconds since the part's base (None stays None)."""
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND - _BASE.get()


def from_us(value: Any) -> datetime:
    """The instant of a microsecond count from the part's base."""
    if type(value) is not int:
        raise CodecError("not an integer")
    known = _MOMENTS.get(None)
    found = known.get(value) if known is not None else None
    return found if found is not None else _EPOCH + timedelta(0, 0, value + _BASE.get())


def _opt_time(value: Any) -> datetime | None:
    return None if value is None else from_us(value)


def _int(value: Any) -> int:
    if type(value) is not int:
        raise CodecError("not an integer")
    return value


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _num(value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise CodecError("not a finite number")
    return float(value)


def _opt_num(value: Any) -> float | None:
    return None if value is None else _num(value)


def _str(value: Any) -> str:
    if type(value) is not str:
        raise CodecError("not a string")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise CodecError("not a boolean")
    return value


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise CodecError("not a list")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise CodecError("not an object")
    return value


def _index(value: Any, table: list[Any]) -> Any:
    position = _int(value)
    if not 0 <= position < len(table):
        raise CodecError("reference out of range")
    return table[position]


# --- timeline, groups, pending -----------------------------------------------------------------------------


def _lines(lines: list[Line]) -> dict[str, Any]:
    """The timeline as columns: ``ts`` (differences, microseconds), ``kind`` and ``own`` (digit strings),
    ``interval`` and ``running`` per line, and ``other`` for gap and marker lines (by position)."""
    stamps = [us(line.ts) or 0 for line in lines]
    other: dict[str, Any] = {}
    for position, line in enumerate(lines):
        if line.kind == MARKER:
            assert line.marker is not None
            other[str(position)] = line.marker.to_record()
        elif line.kind != SAMPLE:
            other[str(position)] = [line.error, us(line.since), line.missed]
    return {
        "ts": [b - a for a, b in zip([0, *stamps], stamps, strict=False)],
        "kind": "".join(str(line.kind) for line in lines),
        "own": "".join("1" if line.own else "0" for line in lines),
        "interval": [line.interval for line in lines],
        "running": [line.running for line in lines],
        "other": other,
    }


def _unlines(value: Any) -> list[Line]:
    obj = _dict(value)
    steps, kinds, owns = _list(obj["ts"]), _str(obj["kind"]), _str(obj["own"])
    intervals, running, other = _list(obj["interval"]), _list(obj["running"]), _dict(obj["other"])
    size = len(steps)
    if not len(kinds) == len(owns) == len(intervals) == len(running) == size:
        raise CodecError("timeline columns differ in length")
    if steps and (type(sum(steps)) is not int or min(steps[1:], default=0) < 0):
        raise CodecError("bad timeline instants (not in order)")
    if running and (type(sum(running)) is not int or min(running) < 0):
        raise CodecError("bad running counts")
    if not set(kinds) <= {"0", "1", "2"} or not set(owns) <= {"0", "1"}:
        raise CodecError("bad timeline kinds")
    if any(i is not None and (type(i) not in (int, float) or not MIN_INTERVAL <= i <= MAX_INTERVAL) for i in intervals):
        raise CodecError("bad intervals")
    base = _BASE.get()
    moments = _MOMENTS.get({})
    lines = []
    for position, (at, kind, own, interval, count) in enumerate(
        zip(itertools.accumulate(steps), kinds, owns, intervals, running, strict=True)
    ):
        ts = moments[at] = _EPOCH + timedelta(0, 0, at + base)
        if kind == "0":
            lines.append(Line(ts, SAMPLE, interval, count, own == "1"))
            continue
        if count:
            raise CodecError("a gap or marker with running sessions")
        extra = other[str(position)]
        if kind == "2":
            marker = Snapshot.from_record(_dict(extra))
            if not marker.is_marker:
                raise CodecError("not a marker")
            lines.append(Line(ts, MARKER, marker=marker))
            continue
        error, since, missed = _list(extra)
        if missed is not None and _int(missed) < 0:
            raise CodecError("a negative count of missed samples")
        lines.append(Line(ts, GAP, interval, 0, own == "1", _opt_str(error), _opt_time(since), _opt_int(missed)))
    return lines


def _example(group: GroupState, where: Mapping[datetime, int]) -> list[Any] | str | None:
    """Where the group's example is in the raw rows: [position of its line in the timeline, session id] (its
    text when that is not known)."""
    if group.example is None:
        return None
    at = group.example_at
    position = where.get(at[0]) if at is not None else None
    if at is None or position is None:
        return str(group.example) if not isinstance(group.example, TextRef) else None
    return [position, at[1]]


def _groups(value: Any, dim: str, lines: list[Line]) -> dict[str, GroupState]:
    found: dict[str, GroupState] = {}
    for item in _list(value):
        key, samples, active, example, sessions = _list(item)
        name = _str(key)
        text: str | None = None
        where = None
        if type(example) is str:
            text = example
        elif example is not None:
            position, sid = _list(example)
            where = (_index(position, lines).ts, _int(sid))
            text = TextRef(None, where[0], where[1], (dim, name))
        found[name] = GroupState(_int(samples), _int(active), text, _undeltas(sessions), where)
    return found


def _deltas(ids: set[int]) -> list[int]:
    """Sorted ids as the first one and the differences between neighbours (short numbers)."""
    ordered = sorted(ids)
    return [b - a for a, b in zip([0, *ordered], ordered, strict=False)]


def _undeltas(value: Any) -> set[int]:
    steps = _list(value)
    if steps and (type(sum(steps)) is not int or steps[0] < 0 or min(steps[1:], default=1) < 1):
        raise CodecError("bad session ids (negative or repeated)")
    return set(itertools.accumulate(steps))


def _unpending(value: Any, counts: dict[str, Any]) -> Pending | None:
    if value is None:
        return None
    ts, interval, running = _list(value)
    parsed = {dim: {_str(k): _int(v) for k, v in _dict(raw).items()} for dim, raw in counts.items()}
    return Pending(from_us(ts), _opt_int(interval), parsed, _int(running))


# --- executions ---------------------------------------------------------------------------------------------


def _stitch(part: StitchPart, cap: int | None) -> dict[str, Any]:
    if cap is not None and cap < part.cap:
        part = dataclasses.replace(part, cap=cap, ended=list(part.ended))
        part.trim()
    table: list[Execution] = part.executions()
    where = {id(e): i for i, e in enumerate(table)}
    return {
        "cap": part.cap,
        "first": us(part.first_ts),
        "last": us(part.last_ts),
        "executions": [_execution(e) for e in table],
        "heads": [[where[id(e)], us(start)] for e, start in part.heads],
        "open": [where[id(e)] for e in part.open],
        "ended": [where[id(e)] for e in part.ended],
        "ended_count": part.ended_count,
        "tally": None if part.tally is None else [[k, n, longest] for k, (n, longest) in part.tally.items()],
    }


def _execution(e: Execution) -> list[Any]:
    """An execution's fields; its last sighting's state is not kept (no summary shows it), nor its last start
    estimate when that is ``started_at``."""
    s = e.last
    last_start = None if e.last_start == e.started_at else [us(e.last_start)]
    return [e.session_id, text_key(e.info), us(e.started_at), us(e.first_seen), us(e.last_seen), e.sightings,
            us(e.ended_before), last_start, s.user, s.host, s.db, s.command, execution_group(e)]  # fmt: skip


def _unexecution(value: Any) -> Execution:
    """An execution; its text is a reference to its first sighting (the session in the line of ``first_seen``)."""
    sid, key, started, first, last, sightings, ended, last_start, user, host, db, command, group = _list(value)
    first_seen = from_us(first)
    info = None if key is None else TextRef(_str(key), first_seen, _int(sid))
    session = Session(_int(sid), _opt_str(user), _opt_str(host), _opt_str(db), _opt_str(command), None, None, info)
    started_at = _opt_time(started)
    estimate = started_at if last_start is None else _opt_time(_list(last_start)[0])
    return Execution(session.id, info, started_at, first_seen, from_us(last), session, _int(sightings),
                     _opt_time(ended), estimate, _str(group))  # fmt: skip


def _unstitch(value: Any) -> StitchPart:
    obj = _dict(value)
    table = [_unexecution(item) for item in _list(obj["executions"])]
    heads = []
    for item in _list(obj["heads"]):
        position, start = _list(item)
        heads.append((_index(position, table), _opt_time(start)))
    cap = _int(obj["cap"])
    if cap < 1:
        raise CodecError("bad cap")
    return StitchPart(
        cap=cap,
        first_ts=_opt_time(obj["first"]),
        last_ts=_opt_time(obj["last"]),
        heads=heads,
        open=[_index(i, table) for i in _list(obj["open"])],
        ended=[_index(i, table) for i in _list(obj["ended"])],
        ended_count=_int(obj["ended_count"]),
        tally=_untally(obj["tally"], _int(obj["ended_count"])),
    )


def _load(tracker: LoadTracker) -> dict[str, Any]:
    """A :class:`~plsnap.summary.LoadTracker` (folded), compactly: every string once in ``values`` and referred
    to by position, bucket numbers relative to ``first``, series as flat ``[bucket, ms, bucket, ms, ...]``."""
    folded = tracker.copy_folded()
    indexes = [*folded.sampled, *folded.samples, *(folded.pending[:1] if folded.pending else ())]
    first = min(indexes, default=0)
    table: dict[str, int] = {}

    def ref(value: str) -> int:
        return table.setdefault(value, len(table))

    def series(buckets: Mapping[int, int]) -> list[int]:
        return [x for index, value in sorted(buckets.items()) for x in (index - first, value)]

    def per_key(pairs: Mapping[tuple[str, str], int]) -> list[list[int]]:
        grouped: dict[int, list[int]] = {}
        for (key, value), ms in pairs.items():
            grouped.setdefault(ref(key), []).extend((ref(value), ms))
        return [[key, *flat] for key, flat in grouped.items()]

    pending = folded.pending
    return {
        "bucket": folded.bucket_seconds,
        "first": first,
        "sampled": series(folded.sampled),
        "samples": series(folded.samples),
        "active": {
            name: [[ref(value), *series(buckets)] for value, buckets in values.items()]
            for name, values in folded.active.items()
            if values
        },
        "spread": {
            name: [x for value, ms in totals.items() for x in (ref(value), ms)]
            for name, totals in folded.spread.items()
            if totals
        },
        "users": per_key(folded.users),
        "hosts": per_key(folded.group_hosts),
        "servers": [[value, n] for value, n in folded.servers.items()],
        "sources": [[value, n] for value, n in folded.sources.items()],
        "peak": None if folded.peak is None else [us(folded.peak[0]), folded.peak[1]],
        "pending": None
        if pending is None
        else [pending[0] - first, [[*map(ref, k), n] for k, n in pending[1].items()]],
        "values": list(table),
    }


def _pairs(flat: list[Any]) -> list[tuple[int, int]]:
    """``[a, b, c, d, ...]`` as ``[(a, b), (c, d), ...]`` of non-negative integers."""
    if len(flat) % 2:
        raise CodecError("odd series")
    numbers = [_int(x) for x in flat]
    if any(x < 0 for x in numbers[1::2]):
        raise CodecError("negative load")
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def _unload(value: Any, lines: list[Line], total_ms: int, pending: Pending | None) -> LoadTracker:
    """The tracker :func:`_load` stored, checked against the part it belongs to: every dimension splits the
    part's active milliseconds, the samples per bucket its samples, the pending counts its pending sample."""
    from plsnap.summary import CHART_DIMENSIONS, LoadTracker

    obj = _dict(value)
    bucket = _int(obj["bucket"])
    if bucket != LOAD_BUCKET:
        raise CodecError("another load bucket")
    tracker = LoadTracker(bucket)
    first = _int(obj["first"])
    table = [_str(v) for v in _list(obj["values"])]
    if len(set(table)) != len(table):
        raise CodecError("a string twice in the load's table")

    def unseries(flat: list[Any]) -> dict[int, int]:
        found = {index + first: amount for index, amount in _pairs(flat)}
        if len(found) * 2 != len(flat):
            raise CodecError("a bucket twice in a series")
        return found

    def totals(flat: list[Any]) -> dict[str, int]:
        found = {_index(position, table): amount for position, amount in _pairs(flat)}
        if len(found) * 2 != len(flat):
            raise CodecError("a value twice")
        return found

    tracker.sampled, tracker.samples = unseries(_list(obj["sampled"])), unseries(_list(obj["samples"]))
    for name, values in _dict(obj["active"]).items():
        if name not in CHART_DIMENSIONS:
            raise CodecError("unknown load dimension")
        items = [_list(item) for item in _list(values)]
        tracker.active[name] = {_index(item[0], table): unseries(item[1:]) for item in items}
        if len(tracker.active[name]) != len(items):
            raise CodecError("a value twice in the load")
    for name, flat in _dict(obj["spread"]).items():
        if name not in tracker.spread:
            raise CodecError("unknown load dimension")
        tracker.spread[name] = totals(_list(flat))
    for into, raw in ((tracker.users, obj["users"]), (tracker.group_hosts, obj["hosts"])):
        rows = [_list(item) for item in _list(raw)]
        if len({_index(row[0], table) for row in rows}) != len(rows):
            raise CodecError("a statement twice in the load")
        for row in rows:
            key = _index(row[0], table)
            for other, ms in totals(row[1:]).items():
                into[key, other] = ms
    tracker.servers, tracker.sources = _named_counts(obj["servers"]), _named_counts(obj["sources"])
    peak = obj["peak"]
    if peak is not None:
        ts, running = _list(peak)
        tracker.peak = (from_us(ts), _int(running))
    tracker.pending = _unpending_load(obj["pending"], table, first)
    _check_load(tracker, lines, total_ms, pending)
    return tracker


def _named_counts(value: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in _list(value):
        name, count = _list(item)
        if _str(name) in found:
            raise CodecError("a server or source twice in the load")
        found[name] = _int(count)
    return found


def _unpending_load(value: Any, table: list[str], first: int) -> tuple[int, dict[tuple[str, ...], int]] | None:
    from plsnap.summary import LOAD_DIMENSIONS

    if value is None:
        return None
    index, items = _list(value)
    counts: dict[tuple[str, ...], int] = {}
    for item in map(_list, _list(items)):
        *values, count = item
        key = tuple(_index(v, table) for v in values)
        if len(values) != len(LOAD_DIMENSIONS) or _int(count) < 1 or key in counts:
            raise CodecError("bad pending load")
        counts[key] = count
    return _int(index) + first, counts


def _timeline_load(
    samples: list[Line], bucket: int
) -> tuple[dict[int, int], dict[int, int], tuple[datetime, int] | None]:
    """Per bucket the samples and their weights (ms, to the next sample at most the interval; the last one is
    pending), and the busiest sample (the earliest on a tie), as :class:`~plsnap.summary.LoadTracker` keeps them."""
    counts: dict[int, int] = {}
    weights: dict[int, int] = {}
    peak: tuple[datetime, int] | None = None
    for position, line in enumerate(samples):
        index = int(line.ts.timestamp() // bucket)
        counts[index] = counts.get(index, 0) + 1
        if peak is None or line.running > peak[1]:
            peak = (line.ts, line.running)
        if position + 1 < len(samples):
            span = max(0, ms_of(samples[position + 1].ts) - ms_of(line.ts))
            cap = interval_ms(line.interval)
            weights[index] = weights.get(index, 0) + (min(cap, span) if cap else span)
    return counts, weights, peak


def _check_load(tracker: LoadTracker, lines: list[Line], total_ms: int, pending: Pending | None) -> None:
    """What the part's own timeline fixes is recomputed and must match: samples, their weights and the busiest
    sample per bucket, the pending sample's bucket; what it does not (the splits by value) must add up to the
    part's active milliseconds."""
    samples = [line for line in lines if line.kind == SAMPLE]
    bucket = tracker.bucket_seconds
    counts, weights, peak = _timeline_load(samples, bucket)
    if tracker.samples != counts or {i: w for i, w in tracker.sampled.items() if w or i in weights} != weights:
        raise CodecError("the load's samples do not match the part's")
    if tracker.peak != peak:
        raise CodecError("the load's peak does not match the part's samples")
    for named in (tracker.servers, tracker.sources):
        if any(n < 1 for n in named.values()) or sum(named.values()) != len(samples):
            raise CodecError("the load's samples per server or source do not match the part's")
    for name, values in tracker.active.items():
        if any(not buckets.keys() <= counts.keys() for buckets in values.values()) or (
            sum(sum(b.values()) for b in values.values()) != total_ms
        ):
            raise CodecError(f"the load by {name} does not add up to the part's active time")
    for name, spread in tracker.spread.items():
        if sum(spread.values()) != total_ms:
            raise CodecError(f"the load by {name} does not add up to the part's active time")
    if sum(tracker.users.values()) != total_ms or sum(tracker.group_hosts.values()) != total_ms:
        raise CodecError("the load per statement does not add up to the part's active time")
    if (tracker.pending is None) != (pending is None):
        raise CodecError("the load's pending sample does not match the part's")
    if tracker.pending is not None and pending is not None:
        index, waiting = tracker.pending
        if index != int(pending.ts.timestamp() // bucket) or sum(waiting.values()) != pending.running:
            raise CodecError("the load's pending sample does not match the part's")


def _untally(value: Any, ended_count: int) -> dict[str, tuple[int, float]] | None:
    if value is None:
        return None
    tally: dict[str, tuple[int, float]] = {}
    for item in _list(value):
        key, count, longest = _list(item)
        if _int(count) < 1 or not 0 <= _num(longest) <= 2 * MAX_ELAPSED or _str(key) in tally:
            raise CodecError("bad executions' tally")
        tally[_str(key)] = (count, float(longest))
    if sum(count for count, _ in tally.values()) != ended_count:
        raise CodecError("the executions' tally does not add up to the ended count")
    return tally


# --- lock-wait episodes -------------------------------------------------------------------------------------


def _identity(who: BlockerIdentity | None) -> list[Any] | None:
    return None if who is None else [who.session, who.user, who.host, us(who.trx_started)]


def _unidentity(value: Any) -> BlockerIdentity:
    session, user, host, trx = _list(value)
    return BlockerIdentity(_int(session), _opt_str(user), _opt_str(host), _opt_time(trx))


def _episode(e: Episode) -> list[Any]:
    return [
        _identity(e.root), _identity(e.current), us(e.first_seen), us(e.last_seen), us(e.previous_sample),
        us(e.next_sample), e.samples, e.waiter_ms, e.peak_waiters, sorted(e.waiters), sorted(e.kinds),
        sorted(e.objects), sorted(e.hows), e.crosses_gap, e.first_trx_age, e.last_trx_age, e.command, e.idle,
        e.state, e.info, e.trx_state, e.rows_locked, e.longest_wait, e.root_seen,
    ]  # fmt: skip


def _unepisode(value: Any) -> Episode:
    items = _list(value)
    root, current, first, last, previous, following, samples, waiter_ms, peak, waiters, kinds, objects = items[:12]
    hows, crosses, first_age, last_age, command, idle, state, info, trx_state, rows, longest, root_seen = items[12:]
    return Episode(
        root=_unidentity(root),
        first_seen=from_us(first),
        last_seen=from_us(last),
        previous_sample=_opt_time(previous),
        next_sample=_opt_time(following),
        samples=_int(samples),
        waiter_ms=_int(waiter_ms),
        peak_waiters=_int(peak),
        waiters={_int(w) for w in _list(waiters)},
        kinds={_str(k) for k in _list(kinds)},
        objects={_str(o) for o in _list(objects)},
        hows={_str(h) for h in _list(hows)},
        crosses_gap=_bool(crosses),
        first_trx_age=_opt_num(first_age),
        last_trx_age=_opt_num(last_age),
        command=_opt_str(command),
        idle=_bool(idle),
        state=_opt_str(state),
        info=_opt_str(info),
        trx_state=_opt_str(trx_state),
        rows_locked=_opt_num(rows),
        longest_wait=_num(longest),
        root_seen=_bool(root_seen),
        current=None if current is None else _unidentity(current),
    )


def _episodes(part: EpisodePart) -> dict[str, Any]:
    table: list[Episode] = []
    where: dict[int, int] = {}
    for episode in (*part.heads, *part.open, *part.done):
        if id(episode) not in where:
            where[id(episode)] = len(table)
            table.append(episode)
    pending = None
    if part.pending is not None:
        ts, weight, weights = part.pending
        pending = [us(ts), weight, [[where[id(e)], n] for e, n in weights]]
    return {
        "first": us(part.first_ts),
        "last": us(part.last_ts),
        "last_interval": part.last_interval,
        "episodes": [_episode(e) for e in table],
        "heads": [where[id(e)] for e in part.heads],
        "open": [where[id(e)] for e in part.open],
        "done": [where[id(e)] for e in part.done],
        "pending": pending,
        "leading_gap": part.leading_gap,
        "trailing_gap": part.trailing_gap,
    }


def _unepisodes(value: Any) -> EpisodePart:
    obj = _dict(value)
    table = [_unepisode(item) for item in _list(obj["episodes"])]
    pending = None
    if obj["pending"] is not None:
        ts, weight, weights = _list(obj["pending"])
        pairs = []
        for item in _list(weights):
            position, count = _list(item)
            pairs.append((_index(position, table), _int(count)))
        pending = (from_us(ts), _int(weight), pairs)
    return EpisodePart(
        first_ts=_opt_time(obj["first"]),
        last_ts=_opt_time(obj["last"]),
        last_interval=_opt_num(obj["last_interval"]),
        heads=[_index(i, table) for i in _list(obj["heads"])],
        open=[_index(i, table) for i in _list(obj["open"])],
        done=[_index(i, table) for i in _list(obj["done"])],
        pending=pending,
        leading_gap=_bool(obj["leading_gap"]),
        trailing_gap=_bool(obj["trailing_gap"]),
    )


# --- counters -----------------------------------------------------------------------------------------------


def _range(found: Range) -> list[Any]:
    values = [found.count, found.total, found.low, found.high]
    if isinstance(found, RateRange):
        values.append(found.ms)
    return values


def _unrange(value: Any, *, rate: bool) -> Range:
    items = _list(value)
    count, total, low, high = _int(items[0]), _num(items[1]), _num(items[2]), _num(items[3])
    ceiling = MAX_COUNTER * 1000 if rate else MAX_COUNTER
    if count < 1 or total < 0 or not 0 <= low <= high <= ceiling:
        raise CodecError("bad range")
    ms = _int(items[4]) if rate else 0
    mean, span = (total * 1000 / ms, 1) if rate and ms >= 1 else (total, count)
    slack = 1e-9 * span * high + 1e-6
    if (rate and ms < 1) or not low * span - slack <= mean <= high * span + slack:
        raise CodecError("bad range")
    return RateRange(count, total, low, high, ms) if rate else Range(count, total, low, high)


def _reading(reading: tuple[datetime, dict[str, float]] | None) -> list[Any] | None:
    return None if reading is None else [us(reading[0]), reading[1]]


def _unreading(value: Any) -> tuple[datetime, dict[str, float]] | None:
    if value is None:
        return None
    ts, status = _list(value)
    values = {_str(k): _num(v) for k, v in _dict(status).items()}
    if not all(0 <= v <= MAX_COUNTER for v in values.values()):
        raise CodecError("a counter reading out of range")
    return from_us(ts), values


def _counters(part: CounterPart) -> dict[str, Any]:
    summary = part.summary
    return {
        "cell_seconds": summary.cell_seconds,
        "resets": summary.resets,
        "cells": [
            [index, {n: _range(r) for n, r in cell.gauges.items()}, {n: _range(r) for n, r in cell.rates.items()}]
            for index, cell in sorted(summary.cells.items())
        ],
        "first": _reading(part.first),
        "head_break": part.head_break,
        "tail": _reading(part.tail),
        "tail_break": part.tail_break,
    }


def _uncounters(value: Any, lines: list[Line]) -> CounterPart:
    """The counters of a part, whose cells are those of its samples (a cell elsewhere is no cell plsnap made)."""
    obj = _dict(value)
    cell_seconds = _int(obj["cell_seconds"])
    if cell_seconds < 1:
        raise CodecError("bad cell size")
    samples = [line for line in lines if line.kind == SAMPLE]
    allowed = {ms_of(line.ts) // (cell_seconds * 1000) for line in samples}
    cells: dict[int, Cell] = {}
    for item in _list(obj["cells"]):
        index, gauges, rates = _list(item)
        if _int(index) not in allowed:
            raise CodecError("a counter cell outside the part's samples")
        cells[index] = Cell(
            {_str(n): _unrange(r, rate=False) for n, r in _dict(gauges).items()},
            {_str(n): _rate(r) for n, r in _dict(rates).items()},
        )
    resets = _int(obj["resets"])
    if not 0 <= resets <= len(samples):
        raise CodecError("more counter resets than samples")
    summary = CounterSummary(cell_seconds=cell_seconds, cells=cells, resets=resets)
    return CounterPart(
        summary,
        first=_unreading(obj["first"]),
        head_break=_bool(obj["head_break"]),
        tail=_unreading(obj["tail"]),
        tail_break=_bool(obj["tail_break"]),
    )


def _rate(value: Any) -> RateRange:
    found = _unrange(value, rate=True)
    assert isinstance(found, RateRange)
    return found
