"""The read commands' library calls: what ``at``, ``window``, ``locks``, ``snapshots`` and ``report`` ask of an
archive, and the policy of when there is no answer (:class:`~plsnap.errors.NoDataError`, exit code 3) and why.

These functions read through :class:`~plsnap.archive.reader.ArchiveReader` and hand plain data to the pure
modules (:mod:`plsnap.replay`, :mod:`plsnap.summary`); the CLI and the report only render what they return.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from plsnap.archive.reader import ArchiveReader
from plsnap.errors import NoDataError
from plsnap.locks import Episode, EpisodeTracker
from plsnap.model import Snapshot, format_ts
from plsnap.replay import AtResult, sessions_at
from plsnap.summary import WindowSummary, summarize
from plsnap.units import format_duration

#: How far around the instant ``at`` reads first, and how far it looks for the nearest sample on each side.
CONTEXT = timedelta(minutes=2)
NEAR = timedelta(hours=1)
#: An instant more than this many intervals after the last sample (and with none after it) has no answer.
STALE_INTERVALS = 2.0


def snapshots_around(reader: ArchiveReader, moment: datetime, *, include_idle: bool) -> list[Snapshot]:
    """Snapshots from a few minutes before ``moment`` to the first good sample after it (each side within an
    hour), gaps included, in ``ts`` order."""
    snapshots = list(reader.iter_snapshots(moment - CONTEXT, moment + CONTEXT, include_idle=include_idle))
    if not any(not s.is_gap and s.ts <= moment for s in snapshots):
        for record in reader.iter_records_backwards(moment - CONTEXT):
            snapshot = reader.to_snapshot(record, include_idle=include_idle)
            if snapshot is None:
                continue
            if moment - snapshot.ts > NEAR:
                break
            snapshots.insert(0, snapshot)
            if not snapshot.is_gap:
                break
    if not any(not s.is_gap and s.ts >= moment for s in snapshots):
        for snapshot in reader.iter_snapshots(moment + CONTEXT, moment + NEAR, include_idle=include_idle):
            snapshots.append(snapshot)
            if not snapshot.is_gap:
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
        raise NoDataError(
            f"no sample near {format_ts(moment)}: the last one before it is {format_duration(round(stale))} "
            f"earlier ({format_ts(before.ts)}) and none follows{end}"
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
    load_buckets: int = 0,
) -> WindowSummary:
    """The ASH-style summary of ``[start, end)``; NoDataError when the window holds no line at all.

    ``load_buckets`` > 0 also keeps the DB load over time in at most that many buckets (``summary.load``, for
    ``plsnap report``), in the same pass."""
    bounds = reader.bounds()
    summary = summarize(
        reader.iter_snapshots(start, end, include_idle=False),
        start,
        end,
        by=by,
        top=top,
        instance=reader.instance,
        bounds=bounds,
        load_buckets=load_buckets,
    )
    if summary.samples == 0 and not summary.gaps:
        if bounds is None:
            raise NoDataError(f"the archive {reader.instance_dir} holds no snapshots")
        raise NoDataError(
            f"no sample in {format_ts(start)} .. {format_ts(end)}: the archive covers "
            f"{format_ts(bounds[0])} .. {format_ts(bounds[1])}"
        )
    return summary


def lock_episodes(reader: ArchiveReader, start: datetime, end: datetime) -> list[Episode]:
    """The lock-wait episodes of ``[start, end)``, highest impact first; NoDataError when the window holds no
    sample at all."""
    tracker = EpisodeTracker()
    seen = 0
    for snapshot in reader.iter_snapshots(start, end, include_idle=False):
        seen += 1
        tracker.feed(snapshot)
    if not seen:
        bounds = reader.bounds()
        covers = f"; the archive covers {format_ts(bounds[0])} .. {format_ts(bounds[1])}" if bounds else ""
        raise NoDataError(f"no sample in {format_ts(start)} .. {format_ts(end)}{covers}")
    return tracker.finish()


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
