"""Output: tables for people (local time with offset, or UTC), JSON (always UTC, ``Z``) and CSV for tools.

Each ``*_json`` function returns the plain object that is printed, so the JSON shape is defined in one place.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

import orjson

from plsnap.counters import Cell, CounterSummary, Range, is_gauge
from plsnap.model import Session, Snapshot, format_ts
from plsnap.secretwords import may_hold_secret
from plsnap.units import format_duration, format_size

if TYPE_CHECKING:
    from pathlib import Path

    from plsnap.locks import Edge, Episode
    from plsnap.replay import AtResult, AtSession, Execution
    from plsnap.retention import Decision
    from plsnap.summary import GapRange, WindowSummary
    from plsnap.verify import VerifyReport

INFO_WIDTH = 100


Zone = tzinfo | None


def shown(text: str | None) -> str | None:
    """A statement text as every command shows it: secrets masked (:func:`plsnap.masking.mask_secrets`), since
    an archive written by another tool or an older plsnap may hold them in clear. Texts without a word that a
    secret needs are returned as they are, without loading the masker."""
    if text is None or not may_hold_secret(text):
        return text
    from plsnap.masking import mask_secrets

    return mask_secrets(text)


def show_time(moment: datetime | None, *, zone: Zone) -> str:
    """``2026-11-28 03:14:00+09:00`` in ``zone`` (None: the local zone), or ``2026-11-28 03:14:00Z`` in UTC."""
    if moment is None:
        return "-"
    if zone is UTC:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    local = moment.astimezone(zone)
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
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([["" if c is None else c for c in row] for row in rows])
    return buffer.getvalue().rstrip("\n")


def at_json(result: AtResult) -> dict[str, Any]:
    """The ``plsnap at --format json`` object (the docs/cli.md contract)."""
    return {
        "at": format_ts(result.at),
        "instance": result.instance,
        "before": _sample_ref(result.before),
        "after": _sample_ref(result.after),
        "gaps": [{"ts": format_ts(g.ts), "error": g.error} for g in result.gaps],
        "interval_s": result.interval,
        "visibility": result.visibility,
        "sessions": [_at_session(row) for row in result.sessions],
        "locks": [edge.to_record() for edge in result.locks],
        "root_blockers": _roots_of(result.locks),
        "counters": {
            "values": dict(result.counters),
            "rates": dict(result.rates),
            "rates_from": _ts(result.rates_span[0]) if result.rates_span else None,
            "rates_to": _ts(result.rates_span[1]) if result.rates_span else None,
        },
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
        "info": shown(s.info),
        "time": int(row.elapsed) if row.elapsed is not None else s.time,
        "started_at": _ts(execution.started_at),
        "first_seen": format_ts(execution.first_seen),
        "last_seen": format_ts(execution.last_seen),
        "ended_before": _ts(execution.ended_before),
        "confidence": row.confidence,
        "blocked_by": s.blocked_by,
        "trx_age": s.number("trx_age"),
        "trx_state": s.record.get("trx_state") if isinstance(s.record.get("trx_state"), str) else None,
        "trx_rows_locked": s.number("trx_rows_locked"),
    }


AT_COLUMNS = ("id", "user", "host", "db", "command", "time", "state", "confidence", "started_at", "blocked_by", "info")


def at_rows(result: AtResult, *, zone: Zone, full: bool = False) -> list[list[Any]]:
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
                item["state"]
                or (f"idle in transaction ({item['trx_age']:.0f}s)" if item["trx_age"] is not None else ""),
                item["confidence"],
                item["started_at"] if full else show_time(started, zone=zone),
                ",".join(map(str, item["blocked_by"])),
                item["info"] if full else _one_line(item["info"]),
            ]
        )
    return rows


def at_table(result: AtResult, *, zone: Zone) -> str:
    """The human ``at`` report: which samples were used, gaps, then the sessions."""
    lines = [f"at {show_time(result.at, zone=zone)}  (instance {result.instance})"]
    lines.append(f"  sample before: {_describe_sample(result.before, result.at, zone)}")
    lines.append(f"  sample after:  {_describe_sample(result.after, result.at, zone)}")
    if result.gaps:
        errors = sorted({g.error or "" for g in result.gaps})
        lines.append(f"  gap: {len(result.gaps)} failed sample(s) around this instant ({'; '.join(errors)})")
    if result.before is None:
        lines.append("  note: the instant is before the first sample of the archive")
    elif result.after is None:
        lines.append("  note: the instant is after the last sample; nothing proves what still ran")
    if result.visibility == "own":
        lines.append(
            "  note: these samples were taken by an account without the PROCESS privilege: they show only its own "
            "sessions; other sessions may have been running"
        )
    elif result.visibility == "unknown":
        lines.append("  note: whether the capture account could see every session is unknown")
    lines.append("")
    if not result.sessions:
        lines.append("no sessions running at this instant according to the samples")
    else:
        lines.append(table(AT_COLUMNS, at_rows(result, zone=zone)))
    if result.counters:
        lines += ["", *counter_lines(result.counters, result.rates, result.rates_span, zone)]
    if result.locks:
        lines += ["", *lock_tree_lines(result.locks, result.lock_sample)]
    return "\n".join(lines)


#: How counters are shown, first the ones an investigator reads first.
COUNTER_ORDER = (
    "Threads_running", "Threads_connected", "Questions", "Com_select", "Com_insert", "Com_update", "Com_delete",
    "Com_commit", "Com_rollback", "Innodb_row_lock_waits", "Innodb_row_lock_current_waits", "Innodb_row_lock_time",
    "Innodb_deadlocks", "Innodb_history_list_length", "Created_tmp_disk_tables", "Slow_queries",
    "Innodb_buffer_pool_reads", "Innodb_buffer_pool_read_requests", "Aborted_connects", "Aborted_clients",
    "Max_used_connections",
)  # fmt: skip


def _counter_names(names: Iterable[str]) -> list[str]:
    present = set(names) - {"Uptime"}
    return [n for n in COUNTER_ORDER if n in present] + sorted(present - set(COUNTER_ORDER))


def counter_lines(
    values: Mapping[str, float], rates: Mapping[str, float | None], span: tuple[datetime, datetime] | None, zone: Zone
) -> list[str]:
    """The server counters around an instant: gauges as read, counters as rates per second."""
    where = f" (rates {show_time(span[0], zone=zone)} .. {show_time(span[1], zone=zone)})" if span else ""
    cells = []
    for name in _counter_names(values):
        if is_gauge(name):
            cells.append(f"{name} {values[name]:g}")
        elif name in rates:
            rate = rates[name]
            cells.append(f"{name} {'restart' if rate is None else f'{rate:.4g}/s'}")
    lines = [f"server counters{where}:"]
    for start in range(0, len(cells), 4):
        lines.append("  " + "   ".join(cells[start : start + 4]))
    return lines


HOW_TEXT = {"lock_table": "proven", "derived": "derived", "inferred": "INFERRED (suspect, not proven)"}


#: Deeper levels of a blocking tree are not indented further (a chain of thousands would print megabytes of
#: blanks): their depth is printed instead.
MAX_TREE_INDENT = 12


def _roots_of(edges: Sequence[Edge]) -> list[int]:
    """:func:`plsnap.locks.roots_of`, loading the lock code only when there are edges (most samples have none)."""
    if not edges:
        return []
    from plsnap.locks import roots_of

    return roots_of(edges)


def lock_tree_lines(edges: Sequence[Edge], sample: Snapshot | None) -> list[str]:
    """The blocking trees of one sample: root blockers first, waiters indented under what they wait for."""
    by_id = {s.id: s for s in (sample.sessions or ())} if sample is not None else {}

    def rank(session_id: int) -> tuple[int, float]:
        """Idle holders of an open transaction first (the usual culprits), then older transactions."""
        session = by_id.get(session_id)
        if session is None:
            return (2, 0.0)
        return (0 if not session.active else 1, -(session.number("trx_age") or 0.0))

    from plsnap.locks import blocking_trees

    lines = ["blocking (root blockers first; each waiter under what it waits for):"]
    for tree in blocking_trees(edges, rank):
        for depth, node in tree.walk():
            session = by_id.get(node.session)
            indent = "  " + "    " * min(depth, MAX_TREE_INDENT) + ("└─ " if depth else "")
            if depth > MAX_TREE_INDENT:
                indent += f"[depth {depth}] "
            who = _who(node.session, session)
            if node.edge is None:
                lines.append(f"{indent}{who}  ROOT BLOCKER: {_blocker_state(session)}")
                continue
            if node.shown_elsewhere:
                lines.append(f"{indent}{who}  waits on this one too (shown above)")
                continue
            edge = node.edge
            modes = ", ".join(p for p in (f"wants {edge.mode}" if edge.mode else "",
                                          f"held {edge.blocker_mode}" if edge.blocker_mode else "") if p)  # fmt: skip
            waited = f", waiting {edge.wait_s:.0f}s" if edge.wait_s is not None else ""
            detail = f"{edge.kind} lock on {edge.object or '?'}" + (f" ({modes})" if modes else "")
            text = _one_line(shown(session.info) if session else None, 60)
            also = f", also behind {', '.join(map(str, node.also))}" if node.also else ""
            lines.append(f"{indent}{who}  {detail}, {HOW_TEXT[edge.how]}{waited}{also}: {text}")
    return lines


def _who(session_id: int, session: Session | None) -> str:
    if session is None:
        return f"{session_id}"
    return f"{session_id} {session.user or '?'}@{(session.host or '?').rsplit(':', 1)[0]}"


def _blocker_state(session: Session | None) -> str:
    if session is None:
        return "not in the sample"
    parts = []
    if session.active:
        parts.append(f"running {session.elapsed_seconds or 0:.0f}s: {_one_line(shown(session.info), 60)}")
    else:
        parts.append(f"idle {session.time or 0}s ({session.command})")
    age = session.number("trx_age")
    if age is not None:
        rows = session.number("trx_rows_locked")
        state = session.record.get("trx_state")
        parts.append(f"transaction open {age:.0f}s ({state}, {rows or 0:.0f} rows locked)")
    else:
        parts.append("no InnoDB transaction")
    return "; ".join(parts)


def _describe_sample(snapshot: Snapshot | None, moment: datetime, zone: Zone) -> str:
    if snapshot is None:
        return "none"
    delta = (snapshot.ts - moment).total_seconds()
    return f"{show_time(snapshot.ts, zone=zone)} ({delta:+.0f}s, {snapshot.session_count or 0} sessions)"


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
            {
                "from": format_ts(g.first),
                "to": format_ts(g.last),
                "count": g.count,
                "error": g.error,
                "kind": g.kind,
                "seconds": round(g.seconds, 3),
            }
            for g in summary.gaps
        ],
        "outside_archive": [
            {"from": format_ts(span.first), "to": format_ts(span.last), "side": span.side} for span in summary.outside
        ],
        "own_sessions_only_samples": summary.own_only_samples,
        "top_blockers": [episode_json(e) for e in summary.blockers],
        "counters": counters_json(summary.counters, summary.bucket_seconds),
        "total_active_seconds": summary.total_active_seconds,
        "top": [
            {
                "key": g.key,
                "samples": g.samples,
                "active_seconds": g.active_seconds,
                "percent": round(g.percent, 2),
                "sessions": len(g.sessions),
                "example": shown(g.example),
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
        "bursts": [
            {"ts": format_ts(m.ts), "condition": m.marker.get("condition"), "values": m.marker.get("values")}
            for m in summary.bursts
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
        "info": shown(e.info),
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
            shown(g.example) if full else _one_line(shown(g.example), 70),
        ]
        for rank, g in enumerate(summary.groups, 1)
    ]


def window_table(summary: WindowSummary, *, zone: Zone) -> str:
    """The human ``window`` report."""
    lines = [
        f"window {show_time(summary.start, zone=zone)} .. {show_time(summary.end, zone=zone)}  "
        f"(instance {summary.instance})",
        f"  samples: {summary.samples}, failed samples: {summary.gap_samples}, "
        f"interval: {format_duration(summary.interval) if summary.interval else 'unknown'}, "
        f"estimated active time: {summary.total_active_seconds:g}s",
    ]
    lines += [f"  note: {w}" for w in summary.warnings]
    for span in summary.outside:
        where = "before the archive begins" if span.side == "before" else "after the archive ends"
        lines.append(f"  outside: {show_time(span.first, zone=zone)} .. {show_time(span.last, zone=zone)} is {where}")
    for gap in summary.gaps[:10]:
        lines.append(f"  gap: {show_time(gap.first, zone=zone)} .. {show_time(gap.last, zone=zone)} {_gap_text(gap)}")
    if len(summary.gaps) > 10:
        lines.append(f"  ... and {len(summary.gaps) - 10} more gap ranges (see --format json)")
    lines += ["", f"top {summary.by} by estimated active time:"]
    if summary.groups:
        lines.append(table(TOP_COLUMNS, window_top_rows(summary)))
    elif summary.samples:
        lines.append("  (nothing was running in any sample)")
    else:
        lines.append("  (no successful sample: activity unknown)")
    lines += ["", "longest executions (seen running for at least min_s; ended by max_s):"]
    if summary.longest:
        rows = [
            [
                e.session_id,
                e.last.user,
                show_time(e.started_at or e.first_seen, zone=zone),
                f"{e.min_duration:.0f}",
                f"{e.max_duration:.0f}" if e.max_duration is not None else "still running",
                _one_line(shown(e.info), 70),
            ]
            for e in summary.longest
        ]
        lines.append(table(("id", "user", "started_at", "min_s", "max_s", "info"), rows))
    else:
        lines.append("  (none)")
    if not summary.counters.empty:
        lines += ["", *window_counter_lines(summary.counters)]
    if summary.blockers:
        lines += ["", "top blockers (lock-wait episodes by impact; details: plsnap locks FROM TO):"]
        rows = [row[:10] + row[11:12] for row in episode_rows(summary.blockers, zone=zone)]
        lines.append(table((*LOCK_COLUMNS[:10], "objects"), rows))
    lines += ["", f"running sessions per {format_duration(summary.bucket_seconds)} (mean / max):"]
    peak = max((b.max_running for b in summary.activity), default=0) or 1
    for b in summary.activity:
        bar = "#" * round(30 * b.mean_running / peak)
        lines.append(
            f"  {show_time(b.start, zone=zone)}  {b.mean_running:6.1f} / {b.max_running:<4d} {bar}"
            if b.samples
            else f"  {show_time(b.start, zone=zone)}    no samples"
        )
    return "\n".join(lines)


def _gap_text(gap: GapRange) -> str:
    span = format_duration(round(gap.seconds)) if gap.seconds >= 1 else "0s"
    if gap.kind == "no_samples":
        return f"({span}, about {gap.count} sample(s) missing): no samples recorded"
    if gap.kind == "not_recorded":
        return f"({span}, {gap.count} sample(s) not recorded): {gap.error}"
    return f"({gap.count} failed sample(s)): {gap.error}"


SNAPSHOT_COLUMNS = ("ts", "source", "duration_ms", "sessions", "running", "error")


def snapshot_row(snapshot: Snapshot, *, zone: Zone, raw: bool = False) -> list[Any]:
    """One ``snapshots`` row; ``raw`` keeps the UTC ``ts`` text (JSON/CSV). Marker lines (bursts) show their
    event in the error column and ``marker`` as their source."""
    if snapshot.is_marker:
        event = snapshot.marker
        detail = f"{event.get('event')}: {event['condition']}" if event.get("condition") else str(event.get("event"))
        when = format_ts(snapshot.ts) if raw else show_time(snapshot.ts, zone=zone)
        return [when, "marker", None, None, None, detail]
    return [
        format_ts(snapshot.ts) if raw else show_time(snapshot.ts, zone=zone),
        snapshot.source,
        snapshot.duration_ms,
        snapshot.session_count,
        None if snapshot.is_gap else snapshot.running,
        snapshot.error,
    ]


PRUNE_COLUMNS = ("action", "partition", "size", "reason")


def _partition_label(decision: Decision, instance_dir: Any) -> str:
    part = decision.partition
    label = str(part.path.relative_to(instance_dir))
    if part.damaged:
        label += f" (+{len(part.damaged)} damaged: {', '.join(part.damaged)})"
    return label


def prune_rows(decisions: Sequence[Decision], instance_dir: Any) -> list[list[Any]]:
    """One row per partition: action, relative path (with its damaged files), size, reason."""
    return [[d.action, _partition_label(d, instance_dir), format_size(d.partition.size), d.reason] for d in decisions]


def prune_json(decisions: Sequence[Decision], instance_dir: Any, dry_run: bool) -> dict[str, Any]:
    """The ``plsnap prune --format json`` object."""
    return {
        "dry_run": dry_run,
        "decisions": [
            {
                "action": d.action,
                "partition": str(d.partition.path.relative_to(instance_dir)),
                "files": [str(p.relative_to(instance_dir)) for p in d.partition.paths],
                "start": format_ts(d.partition.start),
                "bytes": d.partition.size,
                "reason": d.reason,
            }
            for d in decisions
        ],
    }


REINDEX_COLUMNS = ("partition", "action", "reason", "bytes")


def reindex_rows(done: Sequence[Any], instance_dir: Path) -> list[list[Any]]:
    """Rows of ``plsnap reindex``: per partition what was done and why."""
    return [[str(d.partition.path.relative_to(instance_dir)), d.action, d.reason, d.bytes] for d in done]


VERIFY_COLUMNS = ("partition", "status", "snapshots", "lost", "unverified", "detail")


def verify_rows(report: VerifyReport, instance_dir: Any) -> list[list[Any]]:
    """One row per partition checked."""
    return [
        [
            str(c.partition.path.relative_to(instance_dir)),
            c.status,
            c.snapshots,
            c.lost_text,
            c.unverified,
            "; ".join(c.problems) if c.problems else ("being written (or left by a crash)" if c.open_tail else ""),
        ]
        for c in report.partitions
    ]


def verify_json(report: VerifyReport, instance_dir: Any) -> dict[str, Any]:
    """The ``plsnap verify --format json`` object."""
    return {
        "ok": not report.damaged and not report.unreadable,
        "partitions": [
            {
                "partition": str(c.partition.path.relative_to(instance_dir)),
                "files": [str(p.relative_to(instance_dir)) for p in c.partition.paths],
                "status": c.status,
                "snapshots": c.snapshots,
                "lost": c.lost,
                "lost_unknown": c.lost_unknown,
                "lost_estimate": c.lost_estimate,
                "unverified": c.unverified,
                "problems": c.problems,
            }
            for c in report.partitions
        ],
        "foreign": [{"path": str(f.path), "reason": f.reason, "unreadable": f.unreadable} for f in report.foreign],
    }


LOCK_COLUMNS = ("rank", "root", "user", "state", "waiter_s", "peak", "waiters", "first_seen", "last_seen", "lasted_s",
                "kinds", "objects", "how", "note")  # fmt: skip


def episode_rows(items: Sequence[Episode], *, zone: Zone, raw: bool = False) -> list[list[Any]]:
    """One row per lock-wait episode (``raw`` keeps UTC ts text and unrounded numbers)."""
    rows = []
    for rank, e in enumerate(items, 1):
        lasted = f"{e.min_seconds:.0f}..{e.max_seconds:.0f}" if e.max_seconds is not None else f">={e.min_seconds:.0f}"
        rows.append(
            [
                rank,
                e.root.session,
                e.root.user,
                "idle" if e.idle else "running",
                round(e.waiter_seconds, 3) if raw else f"{e.waiter_seconds:g}",
                e.peak_waiters,
                len(e.waiters),
                format_ts(e.first_seen) if raw else show_time(e.first_seen, zone=zone),
                format_ts(e.last_seen) if raw else show_time(e.last_seen, zone=zone),
                lasted,
                ",".join(sorted(e.kinds)),
                ",".join(sorted(e.objects)),
                ",".join(sorted(e.hows, key=("lock_table", "derived", "inferred").index)),
                "crosses a gap" if e.crosses_gap else "",
            ]
        )
    return rows


def episode_json(e: Episode) -> dict[str, Any]:
    """One lock-wait episode as JSON."""
    return {
        "root": {
            "id": e.root.session,
            "user": e.root.user,
            "host": e.root.host,
            "command": e.command,
            "state": e.state,
            "info": shown(e.info),
            "idle": e.idle,
            "trx_age_first": e.first_trx_age,
            "trx_age_last": e.last_trx_age,
            "trx_state": e.trx_state,
            "rows_locked": e.rows_locked,
        },
        "kinds": sorted(e.kinds),
        "objects": sorted(e.objects),
        "how": sorted(e.hows),
        "first_seen": format_ts(e.first_seen),
        "last_seen": format_ts(e.last_seen),
        "min_seconds": round(e.min_seconds, 3),
        "max_seconds": round(e.max_seconds, 3) if e.max_seconds is not None else None,
        "samples": e.samples,
        "peak_waiters": e.peak_waiters,
        "waiters": sorted(e.waiters),
        "waiter_seconds": round(e.waiter_seconds, 3),
        "crosses_gap": e.crosses_gap,
    }


def locks_json(items: Sequence[Episode], start: datetime, end: datetime) -> dict[str, Any]:
    """The ``plsnap locks --format json`` object."""
    return {"from": format_ts(start), "to": format_ts(end), "episodes": [episode_json(e) for e in items]}


def locks_table(items: Sequence[Episode], start: datetime, end: datetime, *, zone: Zone) -> str:
    """The human ``locks`` report."""
    lines = [f"lock-wait episodes {show_time(start, zone=zone)} .. {show_time(end, zone=zone)}, by impact "
             "(waiter_s = waiters x seconds; how: lock_table = proven, derived, inferred = suspected):"]  # fmt: skip
    if not items:
        lines.append("  (no lock waits in any sample)")
        return "\n".join(lines)
    lines.append(table(LOCK_COLUMNS, episode_rows(items, zone=zone)))
    lines += ["", "root blockers:"]
    for e in items[:10]:
        age = (
            f"transaction open {e.first_trx_age:.0f}s -> {e.last_trx_age:.0f}s"
            if e.first_trx_age is not None and e.last_trx_age is not None
            else "no transaction seen"
        )
        state = "idle" if e.idle else "running"
        who = f"{e.root.session} {e.root.user}@{e.root.host}"
        lines.append(f"  {who}: {state} ({e.command}), {age}: {_one_line(shown(e.info), 70) or '-'}")
    return "\n".join(lines)


def _range_json(found: Range) -> dict[str, float | None]:
    return {
        "min": round(found.low, 3) if found.count else None,
        "mean": round(found.mean, 3) if found.mean is not None else None,
        "max": round(found.high, 3) if found.count else None,
    }


def counters_json(summary: CounterSummary, bucket_seconds: int) -> dict[str, Any]:
    """A window's counters: ranges of gauges and rates, and a series of bucket means (``counters over time``)."""
    series: dict[int, Cell] = {}
    step = summary.cell_seconds
    for index, cell in sorted(summary.cells.items()):
        series.setdefault(index * step // bucket_seconds, Cell()).merge(cell)
    return {
        "gauges": {name: _range_json(r) for name, r in summary.gauges.items()},
        "rates": {name: _range_json(r) for name, r in summary.rates.items()},
        "resets": summary.resets,
        "series": [
            {
                "start": format_ts(datetime.fromtimestamp(index * bucket_seconds, UTC)),
                "gauges": {n: round(r.mean or 0.0, 3) for n, r in cell.gauges.items()},
                "rates": {n: round(r.mean or 0.0, 3) for n, r in cell.rates.items()},
            }
            for index, cell in sorted(series.items())
        ],
    }


def window_counter_lines(summary: CounterSummary) -> list[str]:
    """The counters section of ``window``: gauges and rates, each min / mean / max."""
    lines = ["server counters (min / mean / max; counters per second):"]
    rows = []
    for name in _counter_names([*summary.gauges, *summary.rates]):
        found = summary.gauges.get(name) if is_gauge(name) else summary.rates.get(name)
        if found is None or not found.count:
            continue
        unit = "" if is_gauge(name) else "/s"
        rows.append([name, f"{found.low:.4g}{unit}", f"{found.mean or 0:.4g}{unit}", f"{found.high:.4g}{unit}"])
    lines.append(table(("counter", "min", "mean", "max"), rows))
    if summary.resets:
        lines.append(f"  note: {summary.resets} interval(s) without rates: a counter went down (server restart)")
    return lines
