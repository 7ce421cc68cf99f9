"""The incident report (``plsnap report``): one plain data model of a window, built from the read commands'
own library calls, for :mod:`plsnap.report_html` and :mod:`plsnap.report_md` to render.

Everything comes from :func:`plsnap.query.window` (one pass, with :class:`~plsnap.summary.Load` for the charts),
:func:`plsnap.query.at` (the busiest sample, and the blocking tree of each top lock-wait episode) and, with a
baseline, a second :func:`~plsnap.query.window`: no number here is computed a second way. Each section carries
the ``plsnap`` command that prints it from the same archive.

With ``redact=True`` every statement text that reaches the model (examples, fingerprints, the peak, lock trees
and episodes, user-lock names, InnoDB status) goes through :func:`plsnap.masking.redact_literals`, whatever the
archive holds; the renderers only ever see the model.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from plsnap import __version__, query
from plsnap.archive.reader import ArchiveReader
from plsnap.counters import is_gauge
from plsnap.errors import NoDataError, UsageError
from plsnap.innodb_status import redact_status
from plsnap.locks import Edge, Episode, waiters_of
from plsnap.masking import mask_secrets, redact_literals
from plsnap.model import Session, Snapshot, parse_ts
from plsnap.render import COUNTER_ORDER, counters_json, lock_tree_lines
from plsnap.replay import AtResult
from plsnap.summary import BUCKET_STEPS, GapRange, Load, OutsideSpan, WindowSummary
from plsnap.units import parse_duration

if TYPE_CHECKING:
    from plsnap.rollup import Rollups

#: The report's sections, in order: (anchor, heading). ``compare`` is there only with a baseline.
SECTIONS = (
    ("summary", "Summary"),
    ("load", "DB load over time"),
    ("counters", "Server counters over time"),
    ("statements", "Top statements by active time"),
    ("compare", "Compared with the baseline"),
    ("groups", "Top users, hosts and databases"),
    ("locks", "Lock-wait episodes"),
    ("longest", "Longest executions"),
    ("peak", "At the peak"),
    ("bursts", "Bursts and InnoDB status"),
)
#: What the load chart can be stacked by (the first is shown first).
STACKS = ("state", "fingerprint", "user", "command")
#: The top tables of the ``groups`` section.
GROUPS = (("user", "users"), ("host", "hosts"), ("db", "databases"))
#: At most this many buckets in the load chart (and in the Markdown sparkline), and series per stack (the rest
#: is summed as "other").
CHART_BUCKETS = 360
SPARKLINE_BUCKETS = 96
MAX_SERIES = 10
#: Counters drawn over time, when the archive has them: (name, label).
COUNTER_CHARTS = (
    ("Threads_running", "Threads_running"),
    ("Questions", "queries per second (Questions)"),
    ("Innodb_row_lock_waits", "row-lock waits per second"),
    ("Innodb_row_lock_current_waits", "row-lock waits in progress"),
)
#: The label of an empty value (a null state, user, host or database).
NONE_LABEL = "(none)"
_SHIFT = re.compile(r"^-\s*(\d\S*)$")


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked series: its value, average active sessions per bucket (None: no sample in the bucket),
    over the whole window, and its share of all active time (percent)."""

    label: str
    values: tuple[float | None, ...]
    aas: float
    share: float
    other: bool = False


@dataclass(frozen=True, slots=True)
class Chart:
    """The load stacked by one dimension: the top series (and "other"), out of ``distinct`` values."""

    by: str
    series: tuple[Series, ...]
    distinct: int


@dataclass(frozen=True, slots=True)
class LoadView:
    """DB load over time: bucket starts, total average active sessions per bucket (None: no sample), samples
    per bucket, one chart per stack, the gaps and outside spans to draw as such."""

    bucket_seconds: int
    starts: tuple[datetime, ...]
    total: tuple[float | None, ...]
    samples: tuple[int, ...]
    charts: Mapping[str, Chart]
    aas: float
    gaps: tuple[GapRange, ...]
    outside: tuple[OutsideSpan, ...]
    interval: float | None = None

    @property
    def peak_aas(self) -> float:
        """The highest bucket's average active sessions."""
        return max((v for v in self.total if v is not None), default=0.0)


@dataclass(frozen=True, slots=True)
class CounterSeries:
    """One counter over time (bucket means; None where no sample had it), and its unit."""

    name: str
    label: str
    values: tuple[float | None, ...]
    unit: str


@dataclass(frozen=True, slots=True)
class CounterRow:
    """Minimum, mean and maximum of one counter over the window (``unit`` ``/s`` for a rate)."""

    name: str
    low: float
    mean: float
    high: float
    unit: str


@dataclass(frozen=True, slots=True)
class StatementRow:
    """One top statement (fingerprint): its share, average active sessions, executions seen, the longest, an
    example, and its users and hosts with their share of its time (percent), most first."""

    rank: int
    key: str
    samples: int
    active_seconds: float
    percent: float
    aas: float
    sessions: int
    executions: int
    longest_seconds: float
    example: str | None
    users: tuple[tuple[str, float], ...]
    hosts: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One top user, host or database: active seconds, share (percent) and average active sessions."""

    rank: int
    key: str
    active_seconds: float
    percent: float
    aas: float


@dataclass(frozen=True, slots=True)
class EpisodeView:
    """A lock-wait episode, and its blocking tree as of its last sample (text lines, as ``plsnap at`` prints)."""

    episode: Episode
    info: str | None
    objects: tuple[str, ...]
    tree_at: datetime
    tree: tuple[str, ...]
    command: str


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    """One of the longest executions."""

    session_id: int
    user: str | None
    host: str | None
    db: str | None
    started_at: datetime | None
    first_seen: datetime
    min_seconds: float
    max_seconds: float | None
    info: str | None


@dataclass(frozen=True, slots=True)
class PeakRow:
    """A session at the peak."""

    session_id: int
    user: str | None
    host: str | None
    db: str | None
    command: str | None
    seconds: int | None
    state: str | None
    confidence: str
    blocked_by: tuple[int, ...]
    info: str | None


@dataclass(frozen=True, slots=True)
class Peak:
    """The busiest sample: its instant, running sessions, the sessions ``plsnap at`` lists there, and the
    blocking trees of that sample."""

    ts: datetime
    running: int
    rows: tuple[PeakRow, ...]
    tree: tuple[str, ...]
    command: str


@dataclass(frozen=True, slots=True)
class Burst:
    """A triggered burst: when, why, the values that fired it, and InnoDB status when it was recorded."""

    ts: datetime
    condition: str
    values: Mapping[str, Any]
    innodb_status: str | None


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One fingerprint (or the total) in both windows: average active sessions, each normalised by its own
    window's sampled seconds; the change in percent (None when new); ``new``: absent from the baseline,
    ``gone``: absent from the window."""

    key: str
    baseline_aas: float
    aas: float
    change: float | None
    new: bool
    gone: bool


@dataclass(frozen=True, slots=True)
class Comparison:
    """The window against a baseline window of the same length."""

    start: datetime
    end: datetime
    samples: int
    sampled_seconds: float
    baseline_samples: int
    baseline_sampled_seconds: float
    total: CompareRow
    rows: tuple[CompareRow, ...]
    others: int
    warnings: tuple[str, ...]
    command: str


@dataclass(frozen=True, slots=True)
class Server:
    """A server version seen in the window, its flavour, and in how many samples."""

    version: str
    flavour: str
    samples: int


@dataclass(frozen=True, slots=True)
class Report:
    """Everything ``plsnap report`` shows, in section order; ``commands`` maps a section to the commands that
    reproduce it."""

    instance: str
    start: datetime
    end: datetime
    generated_at: datetime
    version: str
    redacted: bool
    servers: tuple[Server, ...]
    sources: tuple[tuple[str, int], ...]
    interval: float | None
    samples: int
    gap_samples: int
    gap_seconds: float
    own_only_samples: int
    sampled_seconds: float
    total_active_seconds: float
    warnings: tuple[str, ...]
    load: LoadView
    sparkline: LoadView
    counters: tuple[CounterSeries, ...]
    counter_rows: tuple[CounterRow, ...]
    counter_resets: int
    statements: tuple[StatementRow, ...]
    groups: Mapping[str, tuple[GroupRow, ...]]
    episodes: tuple[EpisodeView, ...]
    longest: tuple[ExecutionRow, ...]
    peak: Peak | None
    bursts: tuple[Burst, ...]
    comparison: Comparison | None
    commands: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def aas(self) -> float:
        """Average active sessions over the sampled part of the window."""
        return self.total_active_seconds / self.sampled_seconds if self.sampled_seconds else 0.0

    @property
    def sections(self) -> tuple[tuple[str, str], ...]:
        """The sections this report has, in order: (anchor, heading)."""
        return tuple(s for s in SECTIONS if s[0] != "compare" or self.comparison is not None)


@dataclass(frozen=True, slots=True)
class CommandLine:
    """How the ``plsnap`` commands shown in the report name the archive: the options the report was given."""

    instance: str
    config: str | None = None
    data_dir: str | None = None

    def __call__(self, *words: str) -> str:
        """``plsnap WORDS... [-c FILE] [--data-dir DIR] --instance NAME``, quoted for a POSIX shell."""
        options = [
            *(("-c", self.config) if self.config else ()),
            *(("--data-dir", self.data_dir) if self.data_dir else ()),
        ]
        return shlex.join(["plsnap", *words, *options, "--instance", self.instance])


def stamp(moment: datetime) -> str:
    """A time for a command line: ``2026-11-28T03:14:00Z`` (milliseconds only when there are some)."""
    utc = moment.astimezone(UTC)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def baseline_window(
    text: str, start: datetime, end: datetime, parse: Callable[[str], datetime]
) -> tuple[datetime, datetime]:
    """The baseline of ``--compare``: ``-1d``, ``-7d`` (any duration) shifts FROM and TO back by it (not relative
    to now); anything else is the baseline's FROM (``parse``), and it lasts as long as the window."""
    shift = _SHIFT.match(text.strip())
    if shift:
        try:
            seconds = parse_duration(shift.group(1))
        except ValueError:
            raise UsageError(f"--compare {text!r}: not a duration (use e.g. -1d, -7d, -1h)") from None
        if seconds <= 0:
            raise UsageError(f"--compare {text!r}: the shift must be longer than zero")
        delta = timedelta(seconds=seconds)
        return start - delta, end - delta
    begin = parse(text)
    return begin, begin + (end - start)


def build(
    reader: ArchiveReader,
    start: datetime,
    end: datetime,
    *,
    top: int = 10,
    baseline: tuple[datetime, datetime] | None = None,
    redact: bool = False,
    command: CommandLine | None = None,
    now: datetime | None = None,
    rollups: Rollups | None = None,
) -> Report:
    """The report of ``[start, end)``; NoDataError when the window (or the baseline) holds no line. With
    ``rollups``, whole hours and slices come from them, as for ``window`` (the report is the same)."""
    text = _Text(redact)
    cmd = command or CommandLine(reader.instance)
    summary = query.window(reader, start, end, top=top, rollups=rollups, load_buckets=CHART_BUCKETS)
    load = summary.load
    assert load is not None
    window = (stamp(start), stamp(end))
    view = _load_view(summary, load, text)
    coarse = next(
        (
            step
            for step in BUCKET_STEPS
            if step % load.bucket_seconds == 0 and len(_indexes(Load(step), start, end)) <= SPARKLINE_BUCKETS
        ),
        load.bucket_seconds,
    )
    counters, counter_rows = _counters(summary, view)
    comparison = None
    if baseline is not None:
        try:
            base = query.window(reader, *baseline, top=top, rollups=rollups, load_buckets=CHART_BUCKETS)
        except NoDataError as exc:
            raise NoDataError(f"baseline window: {exc}") from None
        comparison = compare(summary, base, top=top, redact=redact)
        comparison = dataclasses.replace(comparison, command=cmd("window", *map(stamp, baseline), "--top", str(top)))
    peak = _peak(reader, load, text, cmd)
    episodes = tuple(_episode(reader, e, text, cmd) for e in summary.blockers)
    servers = sorted(load.servers.items(), key=lambda item: (-item[1], item[0]))
    return Report(
        instance=reader.instance,
        start=start,
        end=end,
        generated_at=now or datetime.now(UTC),
        version=__version__,
        redacted=redact,
        servers=tuple(Server(v or "unknown", flavour(v), n) for v, n in servers),
        sources=tuple(sorted(load.sources.items(), key=lambda item: (-item[1], item[0]))),
        interval=summary.interval,
        samples=summary.samples,
        gap_samples=summary.gap_samples,
        gap_seconds=sum(g.seconds for g in summary.gaps if g.kind != "failed"),
        own_only_samples=summary.own_only_samples,
        sampled_seconds=load.sampled_seconds,
        total_active_seconds=summary.total_active_seconds,
        warnings=summary.warnings,
        load=view,
        sparkline=_load_view(summary, load.rebucket(coarse), text),
        counters=counters,
        counter_rows=counter_rows,
        counter_resets=summary.counters.resets,
        statements=_statements(summary, load, text),
        groups={name: _groups(load, name, top, summary.total_active_seconds) for name, _ in GROUPS},
        episodes=episodes,
        longest=tuple(_execution(e, text) for e in summary.longest),
        peak=peak,
        bursts=tuple(_burst(b, text) for b in summary.bursts),
        comparison=comparison,
        commands={
            "summary": (cmd("snapshots", *window), cmd("verify", *window)),
            "load": (cmd("window", *window, "--by", "state"),),
            "counters": (cmd("window", *window, "--format", "json"),),
            "statements": (cmd("window", *window, "--top", str(top)),),
            "compare": (comparison.command,) if comparison else (),
            "groups": tuple(cmd("window", *window, "--by", name, "--top", str(top)) for name, _ in GROUPS),
            "locks": (cmd("locks", *window), *(e.command for e in episodes)),
            "longest": (cmd("window", *window, "--top", str(top)),),
            "peak": (peak.command,) if peak else (),
            "bursts": (cmd("snapshots", *window),),
        },
    )


def flavour(version: str | None) -> str:
    """``MariaDB`` or ``MySQL`` from ``VERSION()`` (Percona Server's looks like MySQL's), or ``unknown``."""
    if not version:
        return "unknown"
    return "MariaDB" if "mariadb" in version.lower() else "MySQL"


def compare(current: WindowSummary, baseline: WindowSummary, *, top: int = 10, redact: bool = False) -> Comparison:
    """Every fingerprint's average active sessions in both windows, each normalised by its own window's sampled
    seconds (so a different interval, a burst or a gap in one window changes nothing), and the change.

    The rows are the top ``top`` of each window and the top ``top`` new statements, by their average active
    sessions in the window, then in the baseline."""
    show = _Text(redact)
    mine, theirs = current.load, baseline.load
    assert mine is not None and theirs is not None
    now, before = mine.totals("fingerprint"), theirs.totals("fingerprint")
    seconds, base_seconds = mine.sampled_seconds, theirs.sampled_seconds

    def row(key: str, active: float, base_active: float, *, new: bool, gone: bool) -> CompareRow:
        aas = active / seconds if seconds else 0.0
        base_aas = base_active / base_seconds if base_seconds else 0.0
        change = 100.0 * (aas - base_aas) / base_aas if base_aas else None
        return CompareRow(show(key) or "", base_aas, aas, change, new, gone)

    rows = {
        key: row(key, now.get(key, 0.0), before.get(key, 0.0), new=key not in before, gone=key not in now)
        for key in {*now, *before}
    }

    def ranked(keys: Iterable[str], by: Callable[[CompareRow], float]) -> list[str]:
        return sorted(keys, key=lambda k: (-by(rows[k]), k))[:top]

    chosen = {
        *ranked(now, lambda r: r.aas),
        *ranked(before, lambda r: r.baseline_aas),
        *ranked([k for k, r in rows.items() if r.new], lambda r: r.aas),
    }
    order = sorted(chosen, key=lambda k: (-rows[k].aas, -rows[k].baseline_aas, k))
    notes = []
    if not seconds or not base_seconds:
        notes.append("one of the windows has no successful sample: its load is unknown, not zero")
    if baseline.gaps:
        notes.append(f"the baseline has {len(baseline.gaps)} gap range(s): its load is averaged over its samples")
    return Comparison(
        start=baseline.start,
        end=baseline.end,
        samples=current.samples,
        sampled_seconds=seconds,
        baseline_samples=baseline.samples,
        baseline_sampled_seconds=base_seconds,
        total=row("all statements", current.total_active_seconds, baseline.total_active_seconds, new=False, gone=False),
        rows=tuple(rows[k] for k in order),
        others=len(rows) - len(order),
        warnings=tuple(notes),
        command="",
    )


@dataclass(frozen=True, slots=True)
class _Text:
    """What the report does to every statement text: secrets masked always (an archive written by another tool,
    or copied from elsewhere, may hold them in clear), and literals redacted when asked."""

    redact: bool

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        return redact_literals(value) if self.redact else mask_secrets(value)


def _label(value: str) -> str:
    return value if value else NONE_LABEL


def _indexes(load: Load, start: datetime, end: datetime) -> range:
    size = load.bucket_seconds
    first = int(start.timestamp() // size)
    last = int(-(-end.timestamp() // size))
    return range(first, last)


def _load_view(summary: WindowSummary, load: Load, text: _Text) -> LoadView:
    indexes = _indexes(load, summary.start, summary.end)
    sampled = load.sampled

    def per_bucket(buckets: Mapping[int, float]) -> tuple[float | None, ...]:
        return tuple(buckets.get(i, 0.0) / sampled[i] if sampled.get(i) else None for i in indexes)

    total = summary.total_active_seconds
    seconds = load.sampled_seconds
    charts = {}
    for name in STACKS:
        values = load.active.get(name, {})
        totals = sorted(load.totals(name).items(), key=lambda item: (-item[1], item[0]))
        shown = totals if len(totals) <= MAX_SERIES + 1 else totals[:MAX_SERIES]
        series = [
            Series(
                _label(text(value) or "") if name == "fingerprint" else _label(value),
                per_bucket(values[value]),
                active / seconds if seconds else 0.0,
                100.0 * active / total if total else 0.0,
            )
            for value, active in shown
        ]
        rest = totals[len(shown) :]
        if rest:
            summed: dict[int, float] = {}
            for value, _ in rest:
                for index, active in values[value].items():
                    summed[index] = summed.get(index, 0.0) + active
            active = sum(a for _, a in rest)
            series.append(
                Series(
                    f"other ({len(rest)})",
                    per_bucket(summed),
                    active / seconds if seconds else 0.0,
                    100.0 * active / total if total else 0.0,
                    other=True,
                )
            )
        charts[name] = Chart(name, tuple(series), len(totals))
    everything: dict[int, float] = {}
    for buckets in load.active.get("state", {}).values():
        for index, active in buckets.items():
            everything[index] = everything.get(index, 0.0) + active
    return LoadView(
        bucket_seconds=load.bucket_seconds,
        starts=tuple(load.bucket_start(i) for i in indexes),
        total=per_bucket(everything),
        samples=tuple(load.samples.get(i, 0) for i in indexes),
        charts=charts,
        aas=total / seconds if seconds else 0.0,
        gaps=summary.gaps,
        outside=summary.outside,
        interval=summary.interval,
    )


def _counters(summary: WindowSummary, view: LoadView) -> tuple[tuple[CounterSeries, ...], tuple[CounterRow, ...]]:
    found = summary.counters
    if found.empty:
        return (), ()
    size = view.bucket_seconds
    series = counters_json(found, size)["series"]
    position = {int(start.timestamp() // size): n for n, start in enumerate(view.starts)}
    charts = []
    for name, label in COUNTER_CHARTS:
        kind = "gauges" if is_gauge(name) else "rates"
        values: list[float | None] = [None] * len(view.starts)
        seen = False
        for point in series:
            if name in point[kind]:
                index = position.get(int(parse_ts(point["start"]).timestamp() // size))
                if index is not None:
                    values[index] = point[kind][name]
                    seen = True
        if seen:
            charts.append(CounterSeries(name, label, tuple(values), "" if kind == "gauges" else "/s"))
    rows = []
    present = {*found.gauges, *found.rates} - {"Uptime"}
    for name in [n for n in COUNTER_ORDER if n in present] + sorted(present - set(COUNTER_ORDER)):
        got = found.gauges.get(name) if is_gauge(name) else found.rates.get(name)
        if got is not None and got.count:
            rows.append(CounterRow(name, got.low, got.mean or 0.0, got.high, "" if is_gauge(name) else "/s"))
    return tuple(charts), tuple(rows)


def _shares(counts: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple((_label(key), 100.0 * value / total if total else 0.0) for key, value in ranked)


def _statements(summary: WindowSummary, load: Load, text: _Text) -> tuple[StatementRow, ...]:
    seconds = load.sampled_seconds
    return tuple(
        StatementRow(
            rank=rank,
            key=text(g.key) or "",
            samples=g.samples,
            active_seconds=g.active_seconds,
            percent=g.percent,
            aas=g.active_seconds / seconds if seconds else 0.0,
            sessions=len(g.sessions),
            executions=load.executions.get(g.key, 0),
            longest_seconds=load.longest.get(g.key, 0.0),
            example=text(g.example),
            users=_shares(load.users.get(g.key, {})),
            hosts=_shares(load.hosts.get(g.key, {})),
        )
        for rank, g in enumerate(summary.groups, 1)
    )


def _groups(load: Load, dimension: str, top: int, total: float) -> tuple[GroupRow, ...]:
    seconds = load.sampled_seconds
    ranked = sorted(load.totals(dimension).items(), key=lambda item: (-item[1], item[0]))[:top]
    return tuple(
        GroupRow(
            rank, _label(key), active, 100.0 * active / total if total else 0.0, active / seconds if seconds else 0.0
        )
        for rank, (key, active) in enumerate(ranked, 1)
    )


def _execution(execution: Any, text: _Text) -> ExecutionRow:
    last = execution.last
    return ExecutionRow(
        session_id=execution.session_id,
        user=last.user,
        host=last.host,
        db=last.db,
        started_at=execution.started_at,
        first_seen=execution.first_seen,
        min_seconds=execution.min_duration,
        max_seconds=execution.max_duration,
        info=text(execution.info),
    )


def _redacted_sample(sample: Snapshot | None, text: _Text) -> Snapshot | None:
    if sample is None:
        return None
    sessions = tuple(s._replace(info=text(s.info)) for s in sample.sessions or ())
    return dataclasses.replace(sample, sessions=sessions)


def _redacted_edges(edges: Sequence[Edge], redact: bool) -> list[Edge]:
    """User-lock names come from statement literals: redacted with them."""
    if not redact:
        return list(edges)
    return [dataclasses.replace(e, object="?") if e.kind == "user" and e.object else e for e in edges]


def _tree(result: AtResult, text: _Text, root: int | None) -> tuple[str, ...]:
    edges: Sequence[Edge] = result.locks
    if not edges:
        return ()
    if root is not None:
        involved = waiters_of(edges, root) | {root}
        edges = [e for e in edges if e.waiter in involved and e.blocker in involved]
    return tuple(lock_tree_lines(_redacted_edges(edges, text.redact), _redacted_sample(result.lock_sample, text)))


def _episode(reader: ArchiveReader, episode: Episode, text: _Text, cmd: CommandLine) -> EpisodeView:
    objects = tuple(sorted(episode.objects))
    try:
        result = query.at(reader, episode.last_seen)
    except NoDataError:  # pragma: no cover - the sample is in the archive: only a concurrent prune removes it
        result = None
    if text.redact and "user" in episode.kinds:
        # a user lock's name is a literal of the statement that took it; table names are kept when the edges
        # of the episode's last sample show them for another kind of lock
        tables = {e.object for e in (result.locks if result else ()) if e.kind != "user"}
        objects = (*(o for o in objects if o in tables), "? (user-lock names redacted)")
    return EpisodeView(
        episode=episode,
        info=text(episode.info),
        objects=objects,
        tree_at=episode.last_seen,
        tree=_tree(result, text, episode.root.session) if result else (),
        command=cmd("at", stamp(episode.last_seen)),
    )


def _peak(reader: ArchiveReader, load: Load, text: _Text, cmd: CommandLine) -> Peak | None:
    if load.peak is None or not load.peak[1]:
        return None
    moment, running = load.peak
    try:
        result = query.at(reader, moment)
    except NoDataError:  # pragma: no cover - the sample is in the archive: only a concurrent prune removes it
        return None
    rows = []
    for item in result.sessions:
        s: Session = item.session
        elapsed = int(item.elapsed) if item.elapsed is not None else s.time
        rows.append(
            PeakRow(
                s.id,
                s.user,
                s.host,
                s.db,
                s.command,
                elapsed,
                s.state,
                item.confidence,
                tuple(s.blocked_by),
                text(s.info),
            )
        )
    return Peak(moment, running, tuple(rows), _tree(result, text, None), cmd("at", stamp(moment)))


def _burst(marker: Snapshot, text: _Text) -> Burst:
    event = marker.marker
    values = event.get("values")
    status = event.get("innodb_status")
    condition = event.get("condition")
    return Burst(
        ts=marker.ts,
        condition=condition if isinstance(condition, str) else "",
        values=values if isinstance(values, dict) else {},
        innodb_status=(
            redact_status(status, lambda statement: text(statement) or "", redact_rows=text.redact)
            if isinstance(status, str)
            else None
        ),
    )


# --- text shared by both renderers ------------------------------------------------------------------------


def aas_text(value: float) -> str:
    """Average active sessions, as shown: ``1.23``."""
    return f"{value:.2f}"


def seconds_text(value: float) -> str:
    """Active seconds, as shown: ``12,345``."""
    return f"{value:,.0f}"


def change_text(row: CompareRow) -> str:
    """A change in percent (``+12.3%``, ``-4.0%``, ``0.0%``), ``new`` or ``gone``."""
    if row.change is None:
        return "new" if row.aas else "0.0%"
    if row.gone:
        return "gone (-100%)"
    return f"{row.change:+.1f}%" if round(row.change, 1) else "0.0%"


def lasted_text(low: float, high: float | None) -> str:
    """How long something lasted: ``12..14`` seconds, or ``>=12`` when still going."""
    return f"{low:.0f}..{high:.0f}" if high is not None else f">={low:.0f}"


def shares_text(shares: Sequence[tuple[str, float]], limit: int = 3) -> str:
    """``app 80%, report 20%`` (the first ``limit``, then ``+N more``)."""
    shown = ", ".join(f"{name} {share:.0f}%" for name, share in shares[:limit])
    return shown + (f", +{len(shares) - limit} more" if len(shares) > limit else "")


def clip(text: str | None, limit: int) -> str:
    """At most ``limit`` characters, saying how many were left out."""
    if text is None:
        return ""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def gaps_text(report: Report) -> str:
    """``none``, or ``3 range(s): 8 failed sample(s), 120s without any sample``."""
    gaps = report.load.gaps
    if not gaps:
        return "none"
    return f"{len(gaps)} range(s): {report.gap_samples} failed sample(s), {report.gap_seconds:g}s without any sample"


def load_text(report: Report) -> str:
    """``4.79 (highest bucket 9.00)``, or why it is unknown."""
    if not report.sampled_seconds:
        return "unknown: no successful sample"
    return f"{aas_text(report.aas)} (highest bucket {aas_text(report.load.peak_aas)})"
