"""Output: tables for people (local time with offset, or UTC), JSON (always UTC, ``Z``) and CSV for tools.

Each ``*_json`` function returns the plain object that is printed, so the JSON shape is defined in one place.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from plsnap.model import Snapshot, format_ts
from plsnap.units import format_duration, format_size

if TYPE_CHECKING:
    from plsnap.replay import AtResult, AtSession, Execution
    from plsnap.retention import Decision
    from plsnap.summary import WindowSummary

INFO_WIDTH = 100


def show_time(moment: datetime | None, *, utc: bool) -> str:
    """``2026-11-28 03:14:00+09:00`` in local time, or ``2026-11-28 03:14:00Z`` with ``utc``."""
    if moment is None:
        return "-"
    if utc:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    local = moment.astimezone()
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M:%S") + f"{offset[:3]}:{offset[3:]}"


def to_json(value: Any) -> str:
    """Pretty JSON text."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _ts(moment: datetime | None) -> str | None:
    return format_ts(moment) if moment is not None else None


def _one_line(text: str | None, width: int = INFO_WIDTH) -> str:
    if text is None:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table; the last column is left unpadded."""
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    lines += ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([["" if c is None else c for c in row] for row in rows])
    return buffer.getvalue().rstrip("\n")


def at_json(result: AtResult) -> dict[str, Any]:
    """The ``plsnap at --format json`` object (DESIGN §6 contract)."""
    return {
        "at": format_ts(result.at),
        "instance": result.instance,
        "before": _sample_ref(result.before),
        "after": _sample_ref(result.after),
        "gaps": [{"ts": format_ts(g.ts), "error": g.error} for g in result.gaps],
        "interval_s": result.interval,
        "sessions": [_at_session(row) for row in result.sessions],
    }


def _sample_ref(snapshot: Snapshot | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {"ts": format_ts(snapshot.ts), "source": snapshot.source, "sessions": snapshot.session_count}


def _at_session(row: AtSession) -> dict[str, Any]:
    s = row.session
    execution = row.execution
    return {
        "id": s.id,
        "user": s.user,
        "host": s.host,
        "db": s.db,
        "command": s.command,
        "state": s.state,
        "info": s.info,
        "time": int(row.elapsed) if row.elapsed is not None else s.time,
        "started_at": _ts(execution.started_at),
        "first_seen": format_ts(execution.first_seen),
        "last_seen": format_ts(execution.last_seen),
        "ended_before": _ts(execution.ended_before),
        "confidence": row.confidence,
        "blocked_by": s.blocked_by,
        "trx_age": s.extra.get("trx_age"),
    }


AT_COLUMNS = ("id", "user", "host", "db", "command", "time", "state", "confidence", "started_at", "blocked_by", "info")


def at_rows(result: AtResult, *, utc: bool, full: bool = False) -> list[list[Any]]:
    """Rows of the ``at`` table or CSV (CSV keeps UTC and the full text)."""
    rows = []
    for row in result.sessions:
        item = _at_session(row)
        started = row.execution.started_at
        rows.append(
            [
                item["id"],
                item["user"],
                item["host"],
                item["db"],
                item["command"],
                item["time"],
                item["state"] or (f"idle in transaction ({item['trx_age']}s)" if item["trx_age"] is not None else ""),
                item["confidence"],
                item["started_at"] if full else show_time(started, utc=utc),
                ",".join(map(str, item["blocked_by"])),
                item["info"] if full else _one_line(item["info"]),
            ]
        )
    return rows


def at_table(result: AtResult, *, utc: bool) -> str:
    """The human ``at`` report: which samples were used, gaps, then the sessions."""
    lines = [f"at {show_time(result.at, utc=utc)}  (instance {result.instance})"]
    lines.append(f"  sample before: {_describe_sample(result.before, result.at, utc)}")
    lines.append(f"  sample after:  {_describe_sample(result.after, result.at, utc)}")
    if result.gaps:
        errors = sorted({g.error or "" for g in result.gaps})
        lines.append(f"  gap: {len(result.gaps)} failed sample(s) around this instant ({'; '.join(errors)})")
    if result.before is None:
        lines.append("  note: the instant is before the first sample of the archive")
    elif result.after is None:
        lines.append("  note: the instant is after the last sample; nothing proves what still ran")
    lines.append("")
    if not result.sessions:
        lines.append("no sessions running at this instant according to the samples")
    else:
        lines.append(table(AT_COLUMNS, at_rows(result, utc=utc)))
    return "\n".join(lines)


def _describe_sample(snapshot: Snapshot | None, moment: datetime, utc: bool) -> str:
    if snapshot is None:
        return "none"
    delta = (snapshot.ts - moment).total_seconds()
    return f"{show_time(snapshot.ts, utc=utc)} ({delta:+.0f}s, {snapshot.session_count or 0} sessions)"


def window_json(summary: WindowSummary) -> dict[str, Any]:
    """The ``plsnap window --format json`` object."""
    return {
        "from": format_ts(summary.start),
        "to": format_ts(summary.end),
        "instance": summary.instance,
        "by": summary.by,
        "interval_s": summary.interval,
        "samples": summary.samples,
        "gap_samples": summary.gap_samples,
        "gaps": [
            {"from": format_ts(g.first), "to": format_ts(g.last), "count": g.count, "error": g.error}
            for g in summary.gaps
        ],
        "total_active_seconds": summary.total_active_seconds,
        "top": [
            {
                "key": g.key,
                "samples": g.samples,
                "active_seconds": g.active_seconds,
                "percent": round(g.percent, 2),
                "sessions": len(g.sessions),
                "example": g.example,
            }
            for g in summary.groups
        ],
        "longest": [_execution_json(e) for e in summary.longest],
        "bucket_seconds": summary.bucket_seconds,
        "activity": [
            {
                "start": format_ts(b.start),
                "samples": b.samples,
                "mean_running": round(b.mean_running, 3),
                "max_running": b.max_running,
            }
            for b in summary.activity
        ],
        "warnings": list(summary.warnings),
    }


def _execution_json(e: Execution) -> dict[str, Any]:
    s = e.last
    return {
        "id": e.session_id,
        "user": s.user,
        "host": s.host,
        "db": s.db,
        "info": e.info,
        "started_at": _ts(e.started_at),
        "first_seen": format_ts(e.first_seen),
        "last_seen": format_ts(e.last_seen),
        "ended_before": _ts(e.ended_before),
        "min_seconds": round(e.min_duration, 3),
        "max_seconds": round(e.max_duration, 3) if e.max_duration is not None else None,
        "samples": e.sightings,
    }


TOP_COLUMNS = ("rank", "key", "samples", "active_s", "percent", "sessions", "example")


def window_top_rows(summary: WindowSummary, *, full: bool = False) -> list[list[Any]]:
    """Rows of the top-groups table (or CSV)."""
    return [
        [
            rank,
            g.key if full else _one_line(g.key, 60),
            g.samples,
            f"{g.active_seconds:g}",
            f"{g.percent:.1f}",
            len(g.sessions),
            g.example if full else _one_line(g.example, 70),
        ]
        for rank, g in enumerate(summary.groups, 1)
    ]


def window_table(summary: WindowSummary, *, utc: bool) -> str:
    """The human ``window`` report."""
    lines = [
        f"window {show_time(summary.start, utc=utc)} .. {show_time(summary.end, utc=utc)}  "
        f"(instance {summary.instance})",
        f"  samples: {summary.samples}, failed samples: {summary.gap_samples}, "
        f"interval: {format_duration(summary.interval) if summary.interval else 'unknown'}, "
        f"estimated active time: {summary.total_active_seconds:g}s",
    ]
    lines += [f"  note: {w}" for w in summary.warnings]
    for gap in summary.gaps[:10]:
        lines.append(
            f"  gap: {show_time(gap.first, utc=utc)} .. {show_time(gap.last, utc=utc)} ({gap.count}x): {gap.error}"
        )
    if len(summary.gaps) > 10:
        lines.append(f"  ... and {len(summary.gaps) - 10} more gap ranges")
    lines += ["", f"top {summary.by} by estimated active time:"]
    lines.append(table(TOP_COLUMNS, window_top_rows(summary)) if summary.groups else "  (nothing was running)")
    lines += ["", "longest executions (seen running for at least min_s; ended by max_s):"]
    if summary.longest:
        rows = [
            [
                e.session_id,
                e.last.user,
                show_time(e.started_at or e.first_seen, utc=utc),
                f"{e.min_duration:.0f}",
                f"{e.max_duration:.0f}" if e.max_duration is not None else "still running",
                _one_line(e.info, 70),
            ]
            for e in summary.longest
        ]
        lines.append(table(("id", "user", "started_at", "min_s", "max_s", "info"), rows))
    else:
        lines.append("  (none)")
    lines += ["", f"running sessions per {format_duration(summary.bucket_seconds)} (mean / max):"]
    peak = max((b.max_running for b in summary.activity), default=0) or 1
    for b in summary.activity:
        bar = "#" * round(30 * b.mean_running / peak)
        lines.append(
            f"  {show_time(b.start, utc=utc)}  {b.mean_running:6.1f} / {b.max_running:<4d} {bar}"
            if b.samples
            else f"  {show_time(b.start, utc=utc)}    no samples"
        )
    return "\n".join(lines)


SNAPSHOT_COLUMNS = ("ts", "source", "duration_ms", "sessions", "running", "error")


def snapshot_row(snapshot: Snapshot, *, utc: bool | None) -> list[Any]:
    """One ``snapshots`` row; ``utc=None`` keeps the raw UTC ``ts`` (JSON/CSV)."""
    return [
        format_ts(snapshot.ts) if utc is None else show_time(snapshot.ts, utc=utc),
        snapshot.source,
        snapshot.duration_ms,
        snapshot.session_count,
        None if snapshot.is_gap else snapshot.running,
        snapshot.error,
    ]


PRUNE_COLUMNS = ("action", "partition", "size", "reason")


def prune_rows(decisions: Sequence[Decision], instance_dir: Any) -> list[list[Any]]:
    """One row per partition: action, relative path, size, reason."""
    return [
        [d.action, str(d.partition.path.relative_to(instance_dir)), format_size(d.partition.size), d.reason]
        for d in decisions
    ]


def prune_json(decisions: Sequence[Decision], instance_dir: Any, dry_run: bool) -> dict[str, Any]:
    """The ``plsnap prune --format json`` object."""
    return {
        "dry_run": dry_run,
        "decisions": [
            {
                "action": d.action,
                "partition": str(d.partition.path.relative_to(instance_dir)),
                "start": format_ts(d.partition.start),
                "bytes": d.partition.size,
                "reason": d.reason,
            }
            for d in decisions
        ],
    }
