"""The incident report as Markdown (``plsnap report --format md``), for tickets and chat: the sections of the
HTML page as tables, and the DB load as text sparklines.

Archive-derived text is either inside a code span or code block (sized so that no backtick run in the text can
close it) or escaped so that Markdown and HTML in it are shown, never rendered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from plsnap.render import Zone, show_time
from plsnap.report import (
    GROUPS,
    LoadView,
    Report,
    Series,
    aas_text,
    change_text,
    clip,
    gaps_text,
    lasted_text,
    load_text,
    seconds_text,
    shares_text,
)
from plsnap.units import format_duration

BLOCKS = "▁▂▃▄▅▆▇█"
#: A bucket without samples in a sparkline: drawn as a gap, never as zero.
NO_DATA = "·"
EXAMPLE_CHARS = 300
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|~])")
_BACKTICKS = re.compile(r"`+")


def text(value: object) -> str:
    """Plain text for a table cell or a paragraph: one line, Markdown and HTML characters escaped."""
    flat = " ".join(("" if value is None else str(value)).split())
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", flat)


def code(value: str | None) -> str:
    """An inline code span for a table cell: one line, a fence longer than any backtick run inside, pipes
    escaped (GitHub tables split cells on them even inside code)."""
    if not value:
        return "-"
    flat = " ".join(value.split()).replace("|", "\\|")
    fence = "`" * (max((len(m) for m in _BACKTICKS.findall(flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def block(lines: Iterable[str], info: str = "text") -> list[str]:
    """A fenced code block that nothing inside can close."""
    body = list(lines)
    longest = max((len(m) for line in body for m in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", *body, fence]


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = ()) -> list[str]:
    """A GitHub table from cells that are already Markdown; ``numeric`` columns are right-aligned."""
    right = set(numeric)
    out = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|",
    ]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def sparkline(values: Sequence[float | None], top: float) -> str:
    """One character per bucket, ``▁`` to ``█`` scaled to ``top``; ``·`` where there is no sample."""
    out = []
    for value in values:
        if value is None:
            out.append(NO_DATA)
        else:
            level = 0 if top <= 0 else round(value / top * (len(BLOCKS) - 1))
            out.append(BLOCKS[min(len(BLOCKS) - 1, max(0, level))])
    return "".join(out)


def _t(moment: datetime | None, zone: Zone) -> str:
    return show_time(moment, zone=zone)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def render(report: Report, *, zone: Zone) -> str:
    """The whole document."""
    lines = [
        f"# plsnap report: instance {text(report.instance)}",
        "",
        f"{_t(report.start, zone)} .. {_t(report.end, zone)} "
        f"({format_duration(round((report.end - report.start).total_seconds()))})"
        + (" · statement texts redacted (literals)" if report.redacted else ""),
        "",
        " · ".join(f"[{title}](#{anchor(title)})" for _, title in report.sections),
    ]
    builders = {
        "summary": _summary,
        "load": _load,
        "counters": _counters,
        "statements": _statements,
        "compare": _compare,
        "groups": _groups,
        "locks": _locks,
        "longest": _longest,
        "peak": _peak,
        "bursts": _bursts,
    }
    for key, title in report.sections:
        lines += ["", f"## {title}", "", *builders[key](report, zone)]
        commands = report.commands.get(key, ())
        if commands:
            lines += ["", "Reproduce:", "", *block(commands, "sh")]
    lines += [
        "",
        f"_Made by plsnap {text(report.version)} at {_t(report.generated_at, UTC)} from the archive alone; numbers "
        "are estimated from samples._",
    ]
    return "\n".join(lines) + "\n"


def _summary(report: Report, zone: Zone) -> list[str]:
    load = report.load
    servers = "; ".join(f"{s.flavour} {s.version} ({s.samples} samples)" for s in report.servers) or "unknown"
    sources = "; ".join(f"{name or 'unknown'} ({count})" for name, count in report.sources) or "unknown"
    facts = [
        ("instance", report.instance),
        ("window", f"{_t(report.start, zone)} .. {_t(report.end, zone)}"),
        ("server", servers),
        ("capture source", sources),
        ("interval", format_duration(report.interval) if report.interval else "unknown"),
        ("samples", f"{report.samples} good, {report.gap_samples} failed"),
        ("gaps", gaps_text(report)),
        ("bursts", str(len(report.bursts))),
        ("average active sessions", load_text(report)),
        ("estimated active time", f"{seconds_text(report.total_active_seconds)} s"),
        (
            "statement texts",
            "literals redacted by this report (--redact literals)" if report.redacted else "as the archive holds them",
        ),
    ]
    if report.own_only_samples:
        facts.append(("visibility", f"{report.own_only_samples} sample(s) without PROCESS"))
    for span in load.outside:
        if (span.last - span.first).total_seconds() < 1:
            continue  # the archive began or ended a few milliseconds inside the window
        where = "before the archive begins" if span.side == "before" else "after the archive ends"
        facts.append(("outside the archive", f"{_t(span.first, zone)} .. {_t(span.last, zone)} ({where})"))
    lines = table(("", ""), [[text(k), text(v)] for k, v in facts])
    if report.warnings:
        lines += ["", *(f"- {text(w)}" for w in report.warnings)]
    if load.gaps:
        rows = [
            [text(_t(g.first, zone)), text(_t(g.last, zone)), g.kind, str(g.count), f"{g.seconds:g}", text(g.error)]
            for g in load.gaps[:50]
        ]
        lines += ["", "Gaps:", "", *table(("from", "to", "kind", "count", "seconds", "error"), rows, (3, 4))]
        if len(load.gaps) > 50:
            lines += ["", f"... and {len(load.gaps) - 50} more gap ranges."]
    return lines


def _series_rows(series: Sequence[Series], top: float) -> list[list[str]]:
    return [[text(s.label), aas_text(s.aas), f"{s.share:.1f}%", code(sparkline(s.values, top))] for s in series]


def _load(report: Report, zone: Zone) -> list[str]:
    view: LoadView = report.sparkline
    top = view.peak_aas
    first = view.starts[0] if view.starts else report.start
    return [
        f"Average active sessions per {format_duration(view.bucket_seconds)}, from {_t(first, zone)}; one character "
        f"per bucket, `█` = {aas_text(top)}, `{NO_DATA}` = no sample (a gap, not zero). The HTML report draws it "
        f"in {format_duration(report.load.bucket_seconds)} buckets.",
        "",
        *block([f"{sparkline(view.total, top)}  peak {aas_text(top)}, average {aas_text(report.aas)}"]),
        "",
        "By state:",
        "",
        *(
            table(("state", "AAS", "share", "over time"), _series_rows(view.charts["state"].series, top), (1, 2))
            if view.charts["state"].series
            else ["(nothing ran in any sample)" if report.sampled_seconds else "(no successful sample)"]
        ),
    ]


def _counters(report: Report, zone: Zone) -> list[str]:
    if not report.counter_rows:
        return [
            "This archive has no server counters in this window (samples written before plsnap recorded them, or "
            "`[capture] status` is empty): the section is left out."
        ]
    lines = []
    if report.counters:
        rows = []
        for counter in report.counters:
            peak = max((v for v in counter.values if v is not None), default=0.0)
            rows.append([text(counter.label), f"{peak:.4g}{counter.unit}", code(sparkline(counter.values, peak))])
        lines += [*table(("counter", "max", "over time"), rows, (1,)), ""]
    rows = [
        [text(r.name), f"{r.low:.4g}{r.unit}", f"{r.mean:.4g}{r.unit}", f"{r.high:.4g}{r.unit}"]
        for r in report.counter_rows
    ]
    lines += table(("counter", "min", "mean", "max"), rows, (1, 2, 3))
    if report.counter_resets:
        lines += ["", f"{report.counter_resets} interval(s) without rates: a counter went down."]
    return lines


def _statements(report: Report, zone: Zone) -> list[str]:
    if not report.statements:
        return ["Nothing was running in any sample."]
    rows = [
        [
            str(r.rank),
            code(r.key),
            f"{r.percent:.1f}%",
            aas_text(r.aas),
            seconds_text(r.active_seconds),
            str(r.samples),
            str(r.sessions),
            str(r.executions),
            f"{r.longest_seconds:.0f}",
            text(shares_text(r.users)),
            text(shares_text(r.hosts)),
            code(clip(r.example, EXAMPLE_CHARS)),
        ]
        for r in report.statements
    ]
    headers = ("#", "fingerprint", "share", "AAS", "active s", "samples", "sessions", "executions", "longest s",
               "users", "hosts", "example")  # fmt: skip
    return [
        "By estimated active time. AAS: average active sessions; executions: seen running in at least one sample; "
        "longest: seen running at least that long.",
        "",
        *table(headers, rows, (0, 2, 3, 4, 5, 6, 7, 8)),
    ]


def _compare(report: Report, zone: Zone) -> list[str]:
    found = report.comparison
    assert found is not None
    lines = [
        f"Baseline {_t(found.start, zone)} .. {_t(found.end, zone)}: {found.baseline_samples} samples over "
        f"{found.baseline_sampled_seconds:g}s; this window: {found.samples} samples over {found.sampled_seconds:g}s. "
        "Each window's load is divided by its own sampled time.",
    ]
    lines += [f"- {text(w)}" for w in found.warnings]
    rows = []
    for row in (found.total, *found.rows):
        flag = "**NEW**" if row.new else ("gone" if row.gone else "")
        key = "**all statements**" if row is found.total else code(row.key)
        rows.append([key, aas_text(row.baseline_aas), aas_text(row.aas), change_text(row), flag])
    lines += ["", *table(("fingerprint", "baseline AAS", "AAS", "change", ""), rows, (1, 2, 3))]
    if found.others:
        lines += ["", f"{found.others} more fingerprint(s) with less load are not listed."]
    return lines


def _groups(report: Report, zone: Zone) -> list[str]:
    lines: list[str] = []
    for name, title in GROUPS:
        rows = [
            [str(r.rank), text(r.key), f"{r.percent:.1f}%", aas_text(r.aas), seconds_text(r.active_seconds)]
            for r in report.groups[name]
        ]
        lines += [f"### Top {title}", ""]
        lines += [*table(("#", name, "share", "AAS", "active s"), rows, (0, 2, 3, 4)), ""] if rows else ["none", ""]
    return lines[:-1]


def _locks(report: Report, zone: Zone) -> list[str]:
    if not report.episodes:
        return ["No lock waits in any sample of this window."]
    rows = []
    for n, view in enumerate(report.episodes, 1):
        e = view.episode
        rows.append(
            [
                str(n),
                text(f"{e.root.session} {e.root.user or '?'}@{e.root.host or '?'}"),
                "idle" if e.idle else "running",
                f"{e.waiter_seconds:g}",
                str(e.peak_waiters),
                str(len(e.waiters)),
                text(_t(e.first_seen, zone)),
                lasted_text(e.min_seconds, e.max_seconds),
                text(", ".join(sorted(e.kinds))),
                text(", ".join(view.objects)),
                text(", ".join(sorted(e.hows))) + (" (crosses a gap)" if e.crosses_gap else ""),
                code(clip(view.info, EXAMPLE_CHARS)),
            ]
        )
    headers = ("#", "root blocker", "state", "waiter s", "peak", "waiters", "first seen", "lasted s", "kinds",
               "objects", "how known", "root's statement")  # fmt: skip
    lines = [
        "By impact (waiters x seconds); `plsnap locks` lists every episode. How known: lock_table = proven, "
        "derived, inferred = suspected, not proven.",
        "",
        *table(headers, rows, (0, 3, 4, 5, 7)),
    ]
    for n, view in enumerate(report.episodes, 1):
        if view.tree:
            lines += ["", f"#{n}: blocking tree at {text(_t(view.tree_at, zone))}:", "", *block(view.tree)]
    return lines


def _longest(report: Report, zone: Zone) -> list[str]:
    if not report.longest:
        return ["No statement was seen running."]
    rows = [
        [
            str(e.session_id),
            text(e.user),
            text(e.host),
            text(e.db),
            text(_t(e.started_at or e.first_seen, zone)),
            f"{e.min_seconds:.0f}",
            f"{e.max_seconds:.0f}" if e.max_seconds is not None else "still running",
            code(clip(e.info, EXAMPLE_CHARS)),
        ]
        for e in report.longest
    ]
    return [
        "Seen running for at least min s; ended by max s.",
        "",
        *table(("id", "user", "host", "db", "started", "min s", "max s", "statement"), rows, (0, 5, 6)),
    ]


def _peak(report: Report, zone: Zone) -> list[str]:
    peak = report.peak
    if peak is None:
        return ["No sample of this window shows a running statement."]
    rows = [
        [
            str(r.session_id),
            text(r.user),
            text(r.host),
            text(r.db),
            text(r.command),
            text(r.seconds),
            text(r.state),
            r.confidence,
            ",".join(map(str, r.blocked_by)),
            code(clip(r.info, EXAMPLE_CHARS)),
        ]
        for r in peak.rows
    ]
    headers = ("id", "user", "host", "db", "command", "time s", "state", "confidence", "blocked by", "statement")
    lines = [
        f"The busiest sample: {text(_t(peak.ts, zone))}, {peak.running} running statements.",
        "",
        *table(headers, rows, (0, 5)),
    ]
    if peak.tree:
        lines += ["", *block(peak.tree)]
    return lines


def _bursts(report: Report, zone: Zone) -> list[str]:
    if not report.bursts:
        return ["No triggered burst in this window."]
    lines: list[str] = []
    for burst in report.bursts:
        values = ", ".join(f"{k} = {v}" for k, v in burst.values.items())
        lines += [f"### {text(_t(burst.ts, zone))}: {text(burst.condition)}", "", text(values) or "-", ""]
        if burst.innodb_status:
            lines += ["SHOW ENGINE INNODB STATUS:", "", *block(burst.innodb_status.split("\n")), ""]
    return lines[:-1]
