"""The read commands' library calls: what ``at``, ``window``, ``locks``, ``snapshots`` and ``report`` ask of an
archive, and the policy of when there is no answer (:class:`~plsnap.errors.NoDataError`, exit code 3) and why.

These functions read through :class:`~plsnap.archive.reader.ArchiveReader` (and the rollups) and hand plain data
to the pure modules (:mod:`plsnap.replay`, :mod:`plsnap.summary`); the CLI and the report only render what they
return. What only windows need is imported when a window is asked for, so that ``plsnap at`` starts fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from plsnap.archive.reader import ArchiveReader
from plsnap.errors import NoDataError
from plsnap.model import Snapshot, format_ts
from plsnap.replay import AtResult, sessions_at
from plsnap.textref import TextRef, text_key
from plsnap.units import format_duration

if TYPE_CHECKING:
    from plsnap.archive.layout import Partition
    from plsnap.locks import Episode
    from plsnap.partial import Partial
    from plsnap.rollup import Rollup, Rollups
    from plsnap.summary import WindowSummary

#: How far around the instant ``at`` reads first, and how far it looks for the nearest sample on each side.
CONTEXT = timedelta(minutes=2)
NEAR = timedelta(hours=1)
#: An instant more than this many intervals after the last sample (and with none after it) has no answer.
STALE_INTERVALS = 2.0


def snapshots_around(reader: ArchiveReader, moment: datetime, *, include_idle: bool) -> list[Snapshot]:
    """Snapshots from a few minutes before ``moment`` to the first good sample after it (each side within an
    hour), gaps included, in ``ts`` order."""
    snapshots = list(reader.iter_snapshots(moment - CONTEXT, moment + CONTEXT, include_idle=include_idle))
    if not any(s.is_sample and s.ts <= moment for s in snapshots):
        for record in reader.iter_records_backwards(moment - CONTEXT):
            snapshot = reader.to_snapshot(record, include_idle=include_idle)
            if snapshot is None:
                continue
            if moment - snapshot.ts > NEAR:
                break
            snapshots.insert(0, snapshot)
            if snapshot.is_sample:
                break
    if not any(s.is_sample and s.ts >= moment for s in snapshots):
        for snapshot in reader.iter_snapshots(moment + CONTEXT, moment + NEAR, include_idle=include_idle):
            snapshots.append(snapshot)
            if snapshot.is_sample:
                break
    return snapshots


def at(reader: ArchiveReader, moment: datetime, *, include_idle: bool = False) -> AtResult:
    """What was running at ``moment``; NoDataError when no sample can answer, saying why."""
    snapshots = snapshots_around(reader, moment, include_idle=include_idle)
    result = sessions_at(snapshots, moment, instance=reader.instance, include_idle=include_idle)
    before, after = result.before, result.after
    if before is None:
        raise NoDataError(_why_no_sample(reader, moment, snapshots))
    interval = result.interval or before.interval_s or 0.0
    stale = (moment - before.ts).total_seconds()
    if after is None and interval and stale > STALE_INTERVALS * interval:
        bounds = reader.bounds()
        end = f"; the archive ends at {format_ts(bounds[1])}" if bounds else ""
        failed = [s for s in snapshots if s.is_gap and s.ts > before.ts]
        since = f"; failed samples since: {_errors(failed)}" if failed else ""
        raise NoDataError(
            f"no sample near {format_ts(moment)}: the last one before it is {format_duration(round(stale))} "
            f"earlier ({format_ts(before.ts)}) and none follows{since}{end}"
        )
    return result


def _why_no_sample(reader: ArchiveReader, moment: datetime, snapshots: Sequence[Snapshot]) -> str:
    bounds = reader.bounds()
    stamp = format_ts(moment)
    if bounds is None:
        failed = [s for s in reader.iter_snapshots() if s.is_gap][-3:]
        if failed:
            return f"the archive {reader.instance_dir} holds only failed samples; the last: {_errors(failed)}"
        return f"the archive {reader.instance_dir} holds no snapshots"
    first, last = bounds
    gaps = [s for s in snapshots if s.is_gap]
    if moment < first:
        return f"{stamp} is before the archive begins (first sample {format_ts(first)})"
    if gaps:
        near = format_duration(NEAR.total_seconds())
        return f"no successful sample within {near} before {stamp}; failed samples around it: {_errors(gaps)}"
    if moment > last:
        return f"{stamp} is after the archive ends (last sample {format_ts(last)})"
    return (
        f"no sample within {format_duration(NEAR.total_seconds())} before {stamp}: the archive has a hole there "
        f"(it covers {format_ts(first)} .. {format_ts(last)}; see plsnap snapshots)"
    )


def _errors(gaps: Sequence[Snapshot]) -> str:
    counts: dict[str, int] = {}
    for gap in gaps:
        counts[gap.error or "unknown error"] = counts.get(gap.error or "unknown error", 0) + 1
    return "; ".join(f"{error} ({count}x)" for error, count in counts.items())


def window(
    reader: ArchiveReader,
    start: datetime,
    end: datetime,
    *,
    by: str = "fingerprint",
    top: int = 10,
    rollups: Rollups | None = None,
    load_buckets: int = 0,
) -> WindowSummary:
    """The ASH-style summary of ``[start, end)``; NoDataError when the window holds no line at all. With
    ``rollups``, whole hours and 5-minute slices are read from them (the answer is the same).

    ``load_buckets`` > 0 also keeps the DB load over time in at most that many buckets (``summary.load``, for
    ``plsnap report``; only ``by="fingerprint"``), in the same pass. Rollups keep it per minute, so they serve
    it when those buckets are whole minutes (windows of six hours or more at the report's 360 buckets)."""
    from plsnap.partial import LOAD_BUCKET
    from plsnap.summary import LoadTracker, finish

    fine = LoadTracker.for_window(start, end, load_buckets).bucket_seconds if load_buckets else 0
    if load_buckets and fine % LOAD_BUCKET:
        rollups = None
    partial = window_part(reader, start, end, by=by, top=top, rollups=rollups, load_buckets=load_buckets)
    bounds = archive_bounds(reader, rollups)
    summary = finish(partial, start, end, by=by, top=top, instance=reader.instance, bounds=bounds, load_bucket=fine)
    if rollups is not None:
        resolved = resolve_texts(summary, lambda refs: fetch_texts(reader, refs))
        if resolved is None:
            reader.report(f"{reader.instance_dir}: a statement a rollup points to was not found; read the raw rows")
            partial = window_part(reader, start, end, by=by, top=top, load_buckets=load_buckets)
            resolved = finish(
                partial, start, end, by=by, top=top, instance=reader.instance, bounds=bounds, load_bucket=fine
            )
        summary = resolved
    if summary.samples == 0 and not summary.gaps:
        if bounds is None:
            raise NoDataError(f"the archive {reader.instance_dir} holds no snapshots")
        raise NoDataError(
            f"no sample in {format_ts(start)} .. {format_ts(end)}: the archive covers "
            f"{format_ts(bounds[0])} .. {format_ts(bounds[1])}"
        )
    return summary


def lock_episodes(
    reader: ArchiveReader, start: datetime, end: datetime, *, rollups: Rollups | None = None
) -> list[Episode]:
    """The lock-wait episodes of ``[start, end)``, highest impact first; NoDataError when the window holds no
    sample at all."""
    partial = window_part(reader, start, end, by="state", top=1, rollups=rollups)
    if not partial.lines:
        bounds = archive_bounds(reader, rollups)
        covers = f"; the archive covers {format_ts(bounds[0])} .. {format_ts(bounds[1])}" if bounds else ""
        raise NoDataError(f"no sample in {format_ts(start)} .. {format_ts(end)}{covers}")
    return partial.episodes.finish()


def window_part(
    reader: ArchiveReader,
    start: datetime,
    end: datetime,
    *,
    by: str,
    top: int,
    rollups: Rollups | None = None,
    load_buckets: int = 0,
) -> Partial:
    """The part of ``[start, end)``: from rollups where a valid one covers a whole slice or hour (windows of an
    hour or more), from raw rows elsewhere; the same, key for key, as one pass over the raw rows. With
    ``load_buckets``, the part also keeps the DB load over time (:class:`~plsnap.summary.LoadTracker`, in the
    window's buckets from raw rows, per minute from rollups)."""
    from plsnap.partial import LOAD_BUCKET, build, join
    from plsnap.rollup import RollupError
    from plsnap.summary import LoadTracker, cell_seconds_for

    cell = cell_seconds_for(start, end)
    fine = LoadTracker.for_window(start, end, load_buckets).bucket_seconds if load_buckets else 0
    use_rollups = rollups is not None and cell == 60 and fine % LOAD_BUCKET == 0
    bucket = LOAD_BUCKET if use_rollups else fine

    def raw(low: datetime, high: datetime, in_bucket: int = fine) -> Partial:
        load = LoadTracker(in_bucket) if load_buckets else None
        snapshots = reader.iter_snapshots(low, high, include_idle=False)
        return build(snapshots, (by,), cap=top, cell_seconds=cell, load=load)

    if rollups is None or not use_rollups:
        return raw(start, end)
    try:
        parts = _plan(
            reader, rollups, start, end, by=by, top=top, load=bool(load_buckets), raw=lambda a, b: raw(a, b, bucket)
        )
    except RollupError as exc:
        reader.report(f"{reader.instance_dir}: a rollup could not be read ({exc}); read the raw rows instead")
        return raw(start, end)
    joined = join(parts, (by,), cap=top, cell_seconds=cell, load=LoadTracker(bucket) if load_buckets else None)
    if not joined.stitch.complete_for(top) or (load_buckets and (joined.load is None or joined.stitch.tally is None)):
        return raw(start, end)
    return joined


def _plan(
    reader: ArchiveReader,
    rollups: Rollups,
    start: datetime,
    end: datetime,
    *,
    by: str,
    top: int,
    load: bool,
    raw: Callable[[datetime, datetime], Partial],
) -> list[Partial]:
    from plsnap.rollup import SLICE

    parts: list[Partial] = []
    pending: datetime | None = None

    def usable(part: Partial | None) -> Partial | None:
        if part is None or not part.stitch.complete_for(top):
            return None
        return None if load and part.lines and (part.load is None or part.stitch.tally is None) else part

    def flush(until: datetime) -> None:
        nonlocal pending
        if pending is not None and pending < until:
            parts.append(raw(pending, until))
        pending = None

    for partition in reader.partitions():
        if partition.end <= start or partition.start >= end:
            continue
        rollup = rollups.get(partition)
        low, high = max(start, partition.start), min(end, partition.end)
        if rollup is None:
            pending = low if pending is None else pending
            continue
        whole = usable(rollup.hour_part((by,), load=load)) if (low, high) == (partition.start, partition.end) else None
        if whole is not None:
            flush(low)
            parts.append(whole)
            continue
        slot = partition.start
        while slot < high:
            following = slot + SLICE
            if following > low:
                part = usable(rollup.slice_part(slot, (by,), load=load)) if low <= slot and following <= high else None
                if part is None:
                    pending = max(slot, low) if pending is None else pending
                else:
                    flush(slot)
                    parts.append(part)
            slot = following
    flush(end)
    return parts


Texts = dict[str, str]


def resolve_texts(summary: WindowSummary, fetch: Callable[[list[TextRef]], Texts]) -> WindowSummary | None:
    """The summary with the statement texts that rollups hold by reference (examples, longest executions)
    fetched; None when one of them is not there any more."""
    refs = [g.example for g in summary.groups if isinstance(g.example, TextRef)]
    refs += [e.info for e in summary.longest if isinstance(e.info, TextRef)]
    if not refs:
        return summary
    texts = fetch(refs)
    if any(ref not in texts for ref in refs):
        return None

    def text(value: str | None) -> str | None:
        return texts[value] if isinstance(value, TextRef) else value

    groups = tuple(dataclasses.replace(g, example=text(g.example)) for g in summary.groups)
    longest = tuple(
        dataclasses.replace(e, info=text(e.info), last=e.last._replace(info=text(e.info))) for e in summary.longest
    )
    return dataclasses.replace(summary, groups=groups, longest=longest)


def fetch_texts(reader: ArchiveReader, refs: Iterable[TextRef]) -> Texts:
    """The statement texts that ``refs`` point to, from the raw rows (one 5-minute span read per group of
    nearby refs)."""
    from plsnap.rollup import slice_start

    wanted: dict[datetime, list[TextRef]] = {}
    for ref in refs:
        wanted.setdefault(slice_start(ref.ts), []).append(ref)
    found: Texts = {}
    for group in wanted.values():
        low, high = min(r.ts for r in group), max(r.ts for r in group) + timedelta(milliseconds=1)
        found.update(texts_in(reader.iter_snapshots(low, high, include_idle=False), group))
    return found


def texts_in(snapshots: Iterable[Snapshot], refs: Iterable[TextRef]) -> Texts:
    """The texts of ``refs`` found in ``snapshots`` (keyed by the reference): for each, the first running session
    with its id in the line with its ``ts`` whose text has its digest, or that belongs to its group."""
    from plsnap.partial import DIMENSIONS

    by_ts: dict[datetime, list[TextRef]] = {}
    for ref in refs:
        by_ts.setdefault(ref.ts, []).append(ref)
    found: Texts = {}
    for snapshot in snapshots:
        for ref in by_ts.get(snapshot.ts, ()):
            if ref in found:
                continue
            for session in snapshot.sessions or ():
                if session.id != ref.sid or not session.active:
                    continue
                if ref.key is not None and text_key(session.info) != ref.key:
                    continue
                if ref.group is not None and DIMENSIONS[ref.group[0]](session) != ref.group[1]:
                    continue
                found[ref] = session.info or ""
                break
    return found


def archive_bounds(reader: ArchiveReader, rollups: Rollups | None = None) -> tuple[datetime, datetime] | None:
    """The archive's first and last snapshot instants (what :meth:`ArchiveReader.bounds` says), taken from
    valid rollups where they can answer."""
    if rollups is None:
        return reader.bounds()
    from plsnap.rollup import RollupError

    def checked(partition: Partition) -> Rollup | None:
        rollup = rollups.get(partition)
        try:
            if rollup is not None:
                rollup.checked_span()
        except RollupError as exc:
            reader.report(f"{partition.path}: its rollup is not used for the archive's bounds: {exc}")
            return None
        return rollup

    first = last = None
    for partition in reader.partitions():
        rollup = checked(partition)
        first = rollup.header.first_ts if rollup is not None else reader.partition_first(partition)
        if first is not None:
            break
    for partition in reversed(reader.partitions()):
        rollup = checked(partition)
        last = rollups.last_ts(partition, rollup) if rollup is not None else reader.partition_last(partition)
        if last is not None:
            break
    if first is None or last is None:
        return None
    return first, last


def snapshots(reader: ArchiveReader, start: datetime | None, end: datetime | None) -> list[Snapshot]:
    """Every sample and gap line in ``[start, end)`` (default: the last hour of the archive)."""
    if start is None:
        newest = reader.newest_ts()
        if newest is None:
            raise NoDataError(f"the archive {reader.instance_dir} holds no snapshots")
        start = newest - timedelta(hours=1)
    found = list(reader.iter_snapshots(start, end))
    if not found:
        bounds = reader.bounds()
        covers = f"; the archive covers {format_ts(bounds[0])} .. {format_ts(bounds[1])}" if bounds else ""
        raise NoDataError(f"no snapshot from {format_ts(start)}{' to ' + format_ts(end) if end else ''}{covers}")
    return found
