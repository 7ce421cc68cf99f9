"""The incident report as one self-contained HTML page (``plsnap report --format html``).

The page makes no request of any kind: the charts are SVG drawn here, the style is inline, and there is no
script at all (the stack-by switch of the load chart is radio buttons and CSS). A Content-Security-Policy of
``default-src 'none'`` makes the browser refuse anything else. Every string that comes from the archive is
escaped (:func:`html.escape`, quotes too): statement text is attacker-controlled.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from plsnap.render import Zone, show_time
from plsnap.report import (
    GROUPS,
    STACKS,
    Chart,
    CounterSeries,
    LoadView,
    Report,
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

#: Series colours (colour-blind friendly, after Okabe-Ito and Tableau 10), "other" is grey.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#17becf", "#bcbd22")  # fmt: skip
OTHER = "#bab0ac"
WIDTH, HEIGHT = 1180, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 34
EXAMPLE_CHARS = 2000
TICK_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)

CSS = (
    """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--soft:#f6f8fa;--accent:#0969da}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;padding:16px 24px 48px;max-width:1280px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;padding-top:8px;border-top:1px solid var(--line)}
h3{font-size:15px;margin:16px 0 6px}
.sub{color:var(--muted);margin:0 0 12px}
nav{font-size:13px;margin:8px 0 4px}nav a{color:var(--accent);text-decoration:none;margin-right:12px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr) max-content minmax(0,1fr);gap:3px 14px;
margin:6px 0 10px;font-size:13px}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
ul.warnings{margin:4px 0;padding-left:20px;font-size:13px}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
code.sql{display:block;max-width:560px;max-height:7.5em;overflow:auto;white-space:pre-wrap;word-break:break-word}
td.key code{max-width:380px}
pre{background:var(--soft);padding:8px 10px;overflow:auto;border-radius:4px;max-height:480px}
.cmd{color:var(--muted);font-size:12px;margin:4px 0}.cmd code{color:var(--fg);background:var(--soft);padding:1px 4px;
border-radius:3px;user-select:all}
.note{color:var(--muted)}.warn{color:#9a6700}
.flag{display:inline-block;padding:0 6px;border-radius:8px;font-size:11px;font-weight:600;background:#ffebe9;
color:#cf222e}
.flag.gone{background:#eef1f4;color:var(--muted)}
.switch{margin:4px 0}.switch input{position:absolute;opacity:0}
.switch label{display:inline-block;padding:3px 10px;border:1px solid var(--line);border-radius:14px;margin-right:6px;
cursor:pointer;font-size:13px}
.panel{display:none}
"""
    + "".join(
        f"#stack-{name}:checked~.panels #panel-{name}{{display:block}}"
        f"#stack-{name}:checked+label{{background:var(--accent);color:#fff;border-color:var(--accent)}}"
        for name in STACKS
    )
    + """
svg{display:block;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:var(--muted)}
svg .grid{stroke:#e6eaef;stroke-width:1}svg .axis{stroke:#8c959f;stroke-width:1}
svg .hover rect{fill:transparent}svg .hover rect:hover{fill:rgba(0,0,0,.06)}
ul.legend{list-style:none;padding:0;margin:4px 0 8px;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px}
ul.legend li{display:flex;align-items:center;gap:6px;max-width:460px}
ul.legend .sw{flex:none;width:11px;height:11px;border-radius:2px;display:inline-block}
ul.legend .lbl{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
ul.legend .val{color:var(--muted);white-space:nowrap}
.groups{display:flex;flex-wrap:wrap;gap:8px 32px}
details{margin:6px 0}summary{cursor:pointer;color:var(--accent)}
footer{margin-top:36px;color:var(--muted);font-size:12px}
@media print{.panel{display:block}.switch label,.switch input{display:none}h2{break-before:auto}}
"""
    + "".join(f".c{i}{{background:{colour}}}" for i, colour in enumerate(PALETTE))
    + f".cx{{background:{OTHER}}}"
)


def esc(value: object) -> str:
    """Text safe inside an element or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def render(report: Report, *, zone: Zone) -> str:
    """The whole page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'\">",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>plsnap report: {esc(report.instance)} {esc(show_time(report.start, zone=zone))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>plsnap report: instance {esc(report.instance)}</h1>",
        f'<p class="sub">{esc(show_time(report.start, zone=zone))} .. {esc(show_time(report.end, zone=zone))} '
        f"({esc(format_duration(round((report.end - report.start).total_seconds())))})"
        f"{' · statement texts redacted (literals)' if report.redacted else ''}</p>",
        "<nav>" + "".join(f'<a href="#{anchor}">{esc(title)}</a>' for anchor, title in report.sections) + "</nav>",
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
    for anchor, title in report.sections:
        parts.append(f'<section id="{anchor}"><h2>{esc(title)}</h2>')
        parts.append(builders[anchor](report, zone))
        parts.extend(f'<p class="cmd">reproduce: <code>{esc(c)}</code></p>' for c in report.commands.get(anchor, ()))
        parts.append("</section>")
    parts.append(
        f"<footer>Made by plsnap {esc(report.version)} at {esc(show_time(report.generated_at, zone=UTC))} from the "
        "archive alone. This page is one file: it loads nothing and runs no script. Numbers are estimated from "
        "samples (see the notes in the summary).</footer></body></html>"
    )
    return "\n".join(parts) + "\n"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = (), css: str = "") -> str:
    """A table from cells that are already HTML; columns in ``numeric`` are right-aligned."""
    right = set(numeric)
    head = "".join(f"<th{' class=n' if i in right else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in right else ''}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table{f' class={css}' if css else ''}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sql(text: str | None, limit: int = EXAMPLE_CHARS) -> str:
    return f'<code class="sql">{esc(clip(text, limit))}</code>' if text else '<span class="note">-</span>'


def _t(moment: datetime | None, zone: Zone) -> str:
    return esc(show_time(moment, zone=zone))


def _summary(report: Report, zone: Zone) -> str:
    servers = "; ".join(f"{s.flavour} {s.version} ({s.samples} samples)" for s in report.servers) or "unknown"
    sources = "; ".join(f"{name or 'unknown'} ({count})" for name, count in report.sources) or "unknown"
    load = report.load
    facts = [
        ("instance", esc(report.instance)),
        ("window", f"{_t(report.start, zone)} .. {_t(report.end, zone)}"),
        ("server", esc(servers)),
        ("capture source", esc(sources)),
        ("interval", esc(format_duration(report.interval) if report.interval else "unknown")),
        ("samples", f"{report.samples} good, {report.gap_samples} failed"),
        ("gaps", esc(gaps_text(report))),
        ("bursts", str(len(report.bursts))),
        ("average active sessions", load_text(report)),
        ("estimated active time", esc(f"{seconds_text(report.total_active_seconds)} s")),
        (
            "statement texts",
            "literals redacted by this report (--redact literals)" if report.redacted else "as the archive holds them",
        ),
    ]
    if report.own_only_samples:
        facts.append(("visibility", f'<span class="warn">{report.own_only_samples} sample(s) without PROCESS</span>'))
    for span in load.outside:
        if (span.last - span.first).total_seconds() < 1:
            continue  # the archive began or ended a few milliseconds inside the window
        where = "before the archive begins" if span.side == "before" else "after the archive ends"
        facts.append(("outside the archive", f"{_t(span.first, zone)} .. {_t(span.last, zone)} ({where})"))
    out = ['<dl class="facts">', *(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts), "</dl>"]
    if report.warnings:
        out.append(
            '<ul class="warnings">' + "".join(f'<li class="warn">{esc(w)}</li>' for w in report.warnings) + "</ul>"
        )
    if load.gaps:
        rows = [
            [_t(g.first, zone), _t(g.last, zone), esc(g.kind), str(g.count), esc(f"{g.seconds:g}"), esc(g.error)]
            for g in load.gaps[:50]
        ]
        more = f'<p class="note">... and {len(load.gaps) - 50} more gap ranges.</p>' if len(load.gaps) > 50 else ""
        table = _table(("from", "to", "kind", "count", "seconds", "error"), rows, (3, 4))
        out.append(f"<details><summary>{len(load.gaps)} gap range(s)</summary>{table}{more}</details>")
    return "\n".join(out)


# --- charts ------------------------------------------------------------------------------------------------


class _Frame:
    """The plot area of one chart: time on x over the window, values on y from 0 to ``top``."""

    def __init__(self, start: datetime, end: datetime, top: float, height: int = HEIGHT) -> None:
        self.start, self.end, self.top, self.height = start, end, top, height
        self.span = max(1e-9, (end - start).total_seconds())
        self.plot_w = WIDTH - LEFT - RIGHT
        self.plot_h = height - TOP - BOTTOM

    def x(self, moment: datetime) -> float:
        offset = min(max((moment - self.start).total_seconds(), 0.0), self.span)
        return LEFT + offset / self.span * self.plot_w

    def y(self, value: float) -> float:
        return TOP + self.plot_h - min(value, self.top) / self.top * self.plot_h


def _nice(value: float, steps: Sequence[float] = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)) -> float:
    """The smallest ``step x 10^n`` at least ``value`` (``value`` > 0)."""
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in steps if step * power >= value * (1 - 1e-9))


def _top(peak: float) -> float:
    """The top of a y axis for values up to ``peak``: a little headroom, at least 1."""
    return _nice(max(1.0, peak * 1.05))


def _axes(frame: _Frame, zone: Zone, unit: str) -> list[str]:
    out = []
    step = _nice(frame.top / 5, (1, 2, 5, 10))
    for n in range(int(frame.top / step + 1e-9) + 1):
        value = n * step
        y = frame.y(value)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{round(value, 6):g}</text>')
    bottom = TOP + frame.plot_h
    out.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}"/>')
    out.append(
        f'<text x="12" y="{TOP + frame.plot_h / 2:.0f}" transform="rotate(-90 12 {TOP + frame.plot_h / 2:.0f})" '
        f'text-anchor="middle">{esc(unit)}</text>'
    )
    previous_day = None
    ticks = _ticks(frame.start, frame.end, zone)
    clock = "%H:%M:%S" if len(ticks) > 1 and (ticks[1] - ticks[0]).total_seconds() < 60 else "%H:%M"
    for tick in ticks:
        x = frame.x(tick)
        local = tick.astimezone(zone)
        day = local.strftime("%Y-%m-%d")
        label = local.strftime(clock) if day == previous_day else local.strftime(f"%m-%d {clock}")
        previous_day = day
        out.append(f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{esc(label)}</text>')
    offset = frame.start.astimezone(zone).strftime("%z")
    zone_name = "UTC" if zone is UTC else f"UTC{offset[:3]}:{offset[3:]}"
    out.append(f'<text x="{WIDTH - RIGHT}" y="{bottom + 30}" text-anchor="end">{esc(zone_name)}</text>')
    return out


def _ticks(start: datetime, end: datetime, zone: Zone) -> list[datetime]:
    span = (end - start).total_seconds()
    step = next((s for s in TICK_STEPS if span / s <= 10), TICK_STEPS[-1])
    if span < 300:
        step = max(1, int(_nice(span / 6, (1, 2, 5, 10))))
    local = start.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    since = (local - midnight).total_seconds()
    first = midnight + timedelta(seconds=math.ceil(since / step) * step)
    ticks = []
    moment = first
    while moment <= end:
        ticks.append(moment)
        moment += timedelta(seconds=step)
    return ticks


def _overlays(frame: _Frame, view: LoadView, zone: Zone, hatch: str) -> list[str]:
    """Gaps as hatched bands (drawn as gaps, never as zero), the parts outside the archive as grey bands."""
    out = ['<g class="gaps">']
    bottom = TOP + frame.plot_h
    for gap in view.gaps:
        # a failed sample leaves its slot, up to the next one, without data
        last = gap.last + timedelta(seconds=view.interval or 0) if gap.kind == "failed" else gap.last
        x1, x2 = frame.x(gap.first), frame.x(last)
        width = max(1.5, x2 - x1)
        what = f"{gap.kind.replace('_', ' ')}: {gap.count} sample(s)" + (f", {gap.error}" if gap.error else "")
        out.append(
            f'<rect class="gap" x="{x1:.1f}" y="{TOP}" width="{width:.1f}" height="{frame.plot_h}" '
            f'fill="url(#{hatch})"><title>no data {_t(gap.first, zone)} .. {_t(gap.last, zone)} ({esc(what)})'
            "</title></rect>"
        )
    for span in view.outside:
        x1, x2 = frame.x(span.first), frame.x(span.last)
        out.append(
            f'<rect class="outside" x="{x1:.1f}" y="{TOP}" width="{max(0.0, x2 - x1):.1f}" height="{frame.plot_h}" '
            f'fill="#eef1f4"><title>outside the archive ({esc(span.side)})</title></rect>'
        )
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{bottom}"/></g>')
    return out


def _hatch(name: str) -> str:
    return (
        f'<defs><pattern id="{name}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#c4ccd4" stroke-width="2.5"/></pattern></defs>'
    )


def _bucket_x(frame: _Frame, view: LoadView, index: int) -> tuple[float, float]:
    first = view.starts[index]
    return frame.x(first), frame.x(first + timedelta(seconds=view.bucket_seconds))


def _area(frame: _Frame, view: LoadView, low: Sequence[float], values: Sequence[float | None]) -> str:
    """The path of one stacked band: one closed subpath per run of buckets with samples (steps, not slopes)."""
    runs: list[list[int]] = []
    for index, value in enumerate(values):
        if value is None:
            continue
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    path = []
    for run in runs:
        top = []
        for n, index in enumerate(run):
            x1, x2 = _bucket_x(frame, view, index)
            y = frame.y(low[index] + (values[index] or 0.0))
            top.append(f"M{x1:.1f},{y:.1f}H{x2:.1f}" if n == 0 else f"V{y:.1f}H{x2:.1f}")
        back = []
        for index in reversed(run):
            x1, _ = _bucket_x(frame, view, index)
            back.append(f"V{frame.y(low[index]):.1f}H{x1:.1f}")
        path.append("".join(top) + "".join(back) + "Z")
    return "".join(path)


def _chart_svg(report: Report, chart: Chart, zone: Zone) -> str:
    view = report.load
    frame = _Frame(report.start, report.end, _top(view.peak_aas))
    hatch = f"hatch-{chart.by}"
    out = [
        f'<svg class="chart" data-stack="{esc(chart.by)}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="DB load by {esc(chart.by)}">',
        _hatch(hatch),
        *_axes(frame, zone, "average active sessions"),
        '<g class="series">',
    ]
    low = [0.0] * len(view.starts)
    for n, series in enumerate(chart.series):
        colour = OTHER if series.other else PALETTE[n % len(PALETTE)]
        out.append(
            f'<path data-series="{esc(series.label)}" fill="{colour}" stroke="{colour}" stroke-width="0.5" '
            f'd="{_area(frame, view, low, series.values)}"><title>{esc(_short(series.label, 300))}: '
            f"{aas_text(series.aas)} average active sessions, {series.share:.1f}% of active time</title></path>"
        )
        low = [a + (b or 0.0) for a, b in zip(low, series.values, strict=True)]
    out.append("</g>")
    out += _overlays(frame, view, zone, hatch)
    out.append('<g class="hover">')
    for index, total in enumerate(view.total):
        x1, x2 = _bucket_x(frame, view, index)
        if total is None:
            continue
        parts = sorted(
            ((s.values[index] or 0.0, s.label) for s in chart.series if s.values[index]), key=lambda item: -item[0]
        )
        detail = "; ".join(f"{_short(label, 48)} {value:.2f}" for value, label in parts[:4])
        out.append(
            f'<rect x="{x1:.1f}" y="{TOP}" width="{max(0.5, x2 - x1):.1f}" height="{frame.plot_h}">'
            f"<title>{_t(view.starts[index], zone)}: {aas_text(total)} active sessions "
            f"({view.samples[index]} samples){'; ' if detail else ''}{esc(detail)}</title></rect>"
        )
    out.append("</g></svg>")
    return "".join(out)


def _short(label: str, limit: int) -> str:
    """A chart label cut to ``limit`` characters (the statements table has the whole fingerprint)."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _legend(chart: Chart) -> str:
    items = []
    for n, series in enumerate(chart.series):
        swatch = "cx" if series.other else f"c{n % len(PALETTE)}"
        items.append(
            f'<li><span class="sw {swatch}"></span><span class="lbl" title="{esc(_short(series.label, 1000))}">'
            f"{esc(_short(series.label, 200))}"
            f'</span><span class="val">{aas_text(series.aas)} · {series.share:.1f}%</span></li>'
        )
    return f'<ul class="legend" data-stack="{esc(chart.by)}">' + "".join(items) + "</ul>"


def _load(report: Report, zone: Zone) -> str:
    view = report.load
    out = [
        f'<p class="note">Average active sessions per {esc(format_duration(view.bucket_seconds))} '
        "(running sessions x the time each sample weighs, over the time sampled). Hatched: no data (failed or "
        "missing samples), drawn as a gap, not as zero; grey: outside the archive. Hover for values.</p>",
        '<div class="switch">stack by: ',
    ]
    for n, name in enumerate(STACKS):
        checked = " checked" if n == 0 else ""
        out.append(
            f'<input type="radio" name="stack" id="stack-{name}" value="{name}"{checked}>'
            f'<label for="stack-{name}">{esc(name)}</label>'
        )
    out.append('<div class="panels">')
    for name in STACKS:
        chart = view.charts[name]
        more = (
            f'<p class="note">{chart.distinct} distinct values; the {len(chart.series) - 1} largest are drawn, the '
            "rest as other.</p>"
            if chart.series and chart.series[-1].other
            else ""
        )
        out.append(
            f'<div class="panel" id="panel-{name}">{_chart_svg(report, chart, zone)}{_legend(chart)}{more}</div>'
        )
    out.append("</div></div>")
    return "\n".join(out)


def _line_svg(report: Report, counter: CounterSeries, zone: Zone) -> str:
    view = report.load
    height = 170
    peak = max((v for v in counter.values if v is not None), default=0.0)
    frame = _Frame(report.start, report.end, _top(peak), height)
    hatch = f"hatch-counter-{counter.name}"
    out = [
        f'<svg class="counter" data-counter="{esc(counter.name)}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" aria-label="{esc(counter.label)}">',
        _hatch(hatch),
        *_axes(frame, zone, "per second" if counter.unit else "value"),
    ]
    points: list[list[str]] = [[]]
    for index, value in enumerate(counter.values):
        if value is None:
            if points[-1]:
                points.append([])
            continue
        x1, x2 = _bucket_x(frame, view, index)
        points[-1].append(f"{(x1 + x2) / 2:.1f},{frame.y(value):.1f}")
    for run in points:
        if len(run) == 1:
            x, y = run[0].split(",")
            out.append(f'<circle cx="{x}" cy="{y}" r="2" fill="{PALETTE[0]}"/>')
        elif run:
            out.append(f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="1.5" points="{" ".join(run)}"/>')
    out += _overlays(frame, view, zone, hatch)
    out.append("</svg>")
    return "".join(out)


def _counters(report: Report, zone: Zone) -> str:
    if not report.counter_rows:
        return (
            '<p class="note">This archive has no server counters in this window (samples written before plsnap '
            "recorded them, or [capture] status is empty): the section is left out.</p>"
        )
    out = []
    for counter in report.counters:
        out.append(f"<h3>{esc(counter.label)}</h3>{_line_svg(report, counter, zone)}")
    rows = [
        [esc(r.name), esc(f"{r.low:.4g}{r.unit}"), esc(f"{r.mean:.4g}{r.unit}"), esc(f"{r.high:.4g}{r.unit}")]
        for r in report.counter_rows
    ]
    out.append("<h3>Every counter (min / mean / max; counters per second)</h3>")
    out.append(_table(("counter", "min", "mean", "max"), rows, (1, 2, 3)))
    if report.counter_resets:
        out.append(f'<p class="note">{report.counter_resets} interval(s) without rates: a counter went down.</p>')
    return "\n".join(out)


def _statements(report: Report, zone: Zone) -> str:
    if not report.statements:
        return '<p class="note">Nothing was running in any sample.</p>'
    rows = [
        [
            str(r.rank),
            f'<code class="sql">{esc(r.key)}</code>',
            f"{r.percent:.1f}%",
            aas_text(r.aas),
            seconds_text(r.active_seconds),
            str(r.samples),
            str(r.sessions),
            str(r.executions),
            f"{r.longest_seconds:.0f}",
            esc(shares_text(r.users)),
            esc(shares_text(r.hosts)),
            _sql(r.example),
        ]
        for r in report.statements
    ]
    headers = ("#", "fingerprint", "share", "AAS", "active s", "samples", "sessions", "executions", "longest s",
               "users", "hosts", "example")  # fmt: skip
    return (
        '<p class="note">By estimated active time (samples x the time each weighs). AAS: average active sessions. '
        "Executions: statements seen running in at least one sample; longest: seen running at least that long."
        "</p>" + _table(headers, rows, (0, 2, 3, 4, 5, 6, 7, 8), css="statements")
    )


def _compare(report: Report, zone: Zone) -> str:
    found = report.comparison
    assert found is not None
    out = [
        f'<p class="note">Baseline {_t(found.start, zone)} .. {_t(found.end, zone)}: {found.baseline_samples} '
        f"samples over {found.baseline_sampled_seconds:g}s; this window: {found.samples} samples over "
        f"{found.sampled_seconds:g}s. Each window's load is divided by its own sampled time, so a different "
        "interval, a burst or a gap does not show as a change.</p>",
    ]
    out += [f'<p class="warn">{esc(w)}</p>' for w in found.warnings]
    rows = []
    for row in (found.total, *found.rows):
        flag = (
            '<span class="flag">NEW</span>' if row.new else ('<span class="flag gone">gone</span>' if row.gone else "")
        )
        rows.append(
            [
                f'<code class="sql">{esc(row.key)}</code>' if row is not found.total else "<b>all statements</b>",
                aas_text(row.baseline_aas),
                aas_text(row.aas),
                esc(change_text(row)),
                flag,
            ]
        )
    out.append(_table(("fingerprint", "baseline AAS", "AAS", "change", ""), rows, (1, 2, 3), css="compare"))
    if found.others:
        out.append(f'<p class="note">{found.others} more fingerprint(s) with less load are not listed.</p>')
    return "\n".join(out)


def _groups(report: Report, zone: Zone) -> str:
    out = ['<div class="groups">']
    for name, title in GROUPS:
        rows = [
            [str(r.rank), esc(r.key), f"{r.percent:.1f}%", aas_text(r.aas), seconds_text(r.active_seconds)]
            for r in report.groups[name]
        ]
        table = _table(("#", name, "share", "AAS", "active s"), rows, (0, 2, 3, 4), css=title)
        out.append(f"<div><h3>Top {esc(title)}</h3>{table if rows else '<p class=note>none</p>'}</div>")
    out.append("</div>")
    return "\n".join(out)


def _locks(report: Report, zone: Zone) -> str:
    if not report.episodes:
        return '<p class="note">No lock waits in any sample of this window.</p>'
    rows = []
    for n, view in enumerate(report.episodes, 1):
        e = view.episode
        rows.append(
            [
                str(n),
                esc(f"{e.root.session} {e.root.user or '?'}@{e.root.host or '?'}"),
                "idle" if e.idle else "running",
                esc(f"{e.waiter_seconds:g}"),
                str(e.peak_waiters),
                str(len(e.waiters)),
                _t(e.first_seen, zone),
                esc(lasted_text(e.min_seconds, e.max_seconds)),
                esc(", ".join(sorted(e.kinds))),
                esc(", ".join(view.objects)),
                esc(", ".join(sorted(e.hows))) + (" <span class=warn>crosses a gap</span>" if e.crosses_gap else ""),
                _sql(view.info, 500),
            ]
        )
    headers = ("#", "root blocker", "state", "waiter s", "peak", "waiters", "first seen", "lasted s", "kinds",
               "objects", "how known", "root's statement")  # fmt: skip
    out = [
        '<p class="note">By impact (waiters x seconds). The top episodes of the window; plsnap locks lists them all. '
        "how known: lock_table = proven, derived, inferred = suspected, not proven.</p>",
        _table(headers, rows, (0, 3, 4, 5, 7), css="locks"),
    ]
    for n, view in enumerate(report.episodes, 1):
        if view.tree:
            out.append(
                f"<details open><summary>#{n}: blocking tree at {_t(view.tree_at, zone)}</summary>"
                f"<pre>{esc(chr(10).join(view.tree))}</pre></details>"
            )
    return "\n".join(out)


def _longest(report: Report, zone: Zone) -> str:
    if not report.longest:
        return '<p class="note">No statement was seen running.</p>'
    rows = [
        [
            str(e.session_id),
            esc(e.user),
            esc(e.host),
            esc(e.db),
            _t(e.started_at or e.first_seen, zone),
            f"{e.min_seconds:.0f}",
            f"{e.max_seconds:.0f}" if e.max_seconds is not None else "still running",
            _sql(e.info, 1000),
        ]
        for e in report.longest
    ]
    return '<p class="note">Seen running for at least min s; ended by max s.</p>' + _table(
        ("id", "user", "host", "db", "started", "min s", "max s", "statement"), rows, (0, 5, 6), css="longest"
    )


def _peak(report: Report, zone: Zone) -> str:
    peak = report.peak
    if peak is None:
        return '<p class="note">No sample of this window shows a running statement.</p>'
    rows = [
        [
            str(r.session_id),
            esc(r.user),
            esc(r.host),
            esc(r.db),
            esc(r.command),
            esc(r.seconds),
            esc(r.state),
            esc(r.confidence),
            esc(",".join(map(str, r.blocked_by))),
            _sql(r.info, 1000),
        ]
        for r in peak.rows
    ]
    out = [
        f'<p class="note">The busiest sample: {_t(peak.ts, zone)}, {peak.running} running statements.</p>',
        _table(
            ("id", "user", "host", "db", "command", "time s", "state", "confidence", "blocked by", "statement"),
            rows,
            (0, 5),
            css="peak",
        ),
    ]
    if peak.tree:
        out.append(f"<pre>{esc(chr(10).join(peak.tree))}</pre>")
    return "\n".join(out)


def _bursts(report: Report, zone: Zone) -> str:
    if not report.bursts:
        return '<p class="note">No triggered burst in this window.</p>'
    out = []
    for burst in report.bursts:
        values = ", ".join(f"{k} = {v}" for k, v in burst.values.items())
        out.append(f"<h3>{_t(burst.ts, zone)}: {esc(burst.condition)}</h3><p>{esc(values)}</p>")
        if burst.innodb_status:
            out.append(
                f"<details><summary>SHOW ENGINE INNODB STATUS</summary><pre>{esc(burst.innodb_status)}</pre></details>"
            )
    return "\n".join(out)
