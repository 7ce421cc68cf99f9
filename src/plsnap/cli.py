"""The ``plsnap`` command line: parse, call the library, render; map errors to exit codes in one place.

Read-only commands (``at``, ``window``, ``snapshots``, ``verify``, ``prune``, ``health``) never import PyMySQL
or APScheduler, so they start fast on an investigator's laptop with only a copied archive. Every command finds
its instance with the same rule (:func:`plsnap.archive.layout.resolve_instance`).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, NoReturn

from plsnap import __version__
from plsnap.errors import NoDataError, PlsnapError, UsageError

EXAMPLES = """\
examples:
  plsnap daemon -c /etc/plsnap/plsnap.toml       capture every interval until stopped
  plsnap at '2026-11-28 03:14'                    what was running at 03:14 local time
  plsnap at -15m --all --format json              15 minutes ago, idle sessions too, as JSON
  plsnap window 03:00 03:30 --by user --top 5     who dominated that half hour
  plsnap snapshots -2h                            samples and gaps of the last two hours
  plsnap report 03:00 04:00 -o incident.html      one self-contained page for the incident (or --format md)
  plsnap verify                                   check every frame of the archive; report damage and losses
  plsnap prune --dry-run                          what retention would delete, and why
  plsnap at 1795835640 --data-dir ./copied-archive    read an archive copied to a laptop

exit codes: 0 success, 1 runtime failure (or damage found by verify), 2 usage or config error,
            3 no archive data for the requested time or instance
"""
TIME_HELP = (
    "ISO-8601 (2026-11-28T03:14:00Z, '2026-11-28 03:14' in local time or --tz), a time of day (03:14), now, "
    "a relative time (-15m, -2h, -1d) or epoch seconds"
)
COMMAND_EXAMPLES = {
    "daemon": "plsnap daemon -c /etc/plsnap/plsnap.toml\n  plsnap daemon --interval 5s --source show",
    "capture": "plsnap capture -c /etc/plsnap/plsnap.toml    # one sample now, e.g. from a cron job or a test",
    "at": "plsnap at '2026-11-28 03:14'\n  plsnap at -15m --all --format json\n  plsnap at 03:14 --tz Asia/Tokyo --utc",
    "window": (
        "plsnap window 03:00 03:30\n  plsnap window -1h now --by user --top 5\n"
        "  plsnap window 2026-11-28T00:00Z 2026-11-29T00:00Z --format json"
    ),
    "snapshots": "plsnap snapshots -2h\n  plsnap snapshots '2026-11-28 03:00' '2026-11-28 04:00' --format csv",
    "verify": "plsnap verify\n  plsnap verify -1d now --format json",
    "locks": "plsnap locks 03:00 03:30\n  plsnap locks -1h now --format json",
    "reindex": (
        "plsnap reindex                                  # every finished hour without a valid rollup\n"
        "  plsnap reindex -7d now --data-dir /mnt/copy --cache ~/.cache/plsnap    # a read-only copy"
    ),
    "report": (
        "plsnap report 03:00 04:00 -o incident.html\n  plsnap report -1h now --format md > incident.md\n"
        "  plsnap report 03:00 04:00 --compare -1d --redact literals -o for-the-vendor.html"
    ),
    "prune": "plsnap prune --dry-run\n  plsnap prune --format json",
    "check": "plsnap check -c /etc/plsnap/plsnap.toml",
    "health": "plsnap health    # in a container HEALTHCHECK: exit 0 while captures are recent",
}
FORMATS = ("table", "json", "csv")
REPORT_FORMATS = ("html", "md")
DIMENSIONS = ("fingerprint", "user", "host", "db", "state", "command")
SOURCES = ("auto", "show", "information_schema", "performance_schema")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def _get_formatter(self) -> argparse.HelpFormatter:
        formatter: Any = self.formatter_class  # typeshed's protocol omits the width every formatter takes
        return formatter(prog=self.prog, width=_help_width())  # type: ignore[no-any-return]


def _help_width() -> int:
    """The width argparse wraps help at, as it finds it (``$COLUMNS``, else the terminal's, else 80, less 2),
    without the import of :mod:`shutil` (and with it bz2 and lzma) that costs every command a millisecond."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser for every command (also used to generate docs/cli-reference.md); with ``only``, a
    command's name, the parser holds that command alone (what ``main`` parses with: building the other
    eleven costs a few milliseconds of every ``plsnap at``)."""
    common = _Parser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="TOML config file (default: $PLSNAP_CONFIG, then /etc/plsnap/plsnap.toml if present)",
    )
    common.add_argument("--data-dir", metavar="DIR", help="archive root (overrides [archive] data_dir)")
    common.add_argument(
        "--instance", metavar="NAME", help="instance name (default: [archive] instance, or the only one present)"
    )
    common.add_argument("--utc", action="store_true", help="show times in UTC")
    common.add_argument(
        "--tz", metavar="ZONE", help="IANA zone for times given without an offset, and for times shown (default: local)"
    )
    output = _Parser(add_help=False)
    output.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    rollups = _Parser(add_help=False)
    rollups.add_argument(
        "--cache",
        metavar="DIR",
        help="also look for rollups under DIR/<instance>/ (where `plsnap reindex --cache DIR` puts them for a "
        "read-only archive)",
    )
    rollups.add_argument(
        "--no-rollups", action="store_true", help="read only the raw rows (the answer is the same, only slower)"
    )

    parser = _Parser(
        prog="plsnap",
        description="A flight recorder for MySQL and MariaDB sessions.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"plsnap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    def add(name: str, help_text: str, *parents: _Parser) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return _Parser(add_help=False)
        chain: list[_Parser] = [common, *parents]
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=chain,
            epilog=f"examples:\n  {COMMAND_EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    daemon = add("daemon", "capture loop in the foreground (systemd, containers)")
    capture = add("capture", "take one snapshot now, then exit")
    for p in (daemon, capture):
        p.add_argument("--interval", metavar="DURATION", help="sampling interval, e.g. 5s (overrides config)")
        p.add_argument(
            "--source",
            choices=SOURCES,
            help="where the processlist is read from (overrides [capture] source; auto picks the best one)",
        )
    at = add("at", "what was running at TIME", output)
    at.add_argument("time", metavar="TIME", help=TIME_HELP)
    at.add_argument("--all", action="store_true", help="also list idle sessions")
    window = add("window", "summarize the window FROM..TO (ASH-style top-N)", output, rollups)
    window.add_argument("start", metavar="FROM", help="start of the window (inclusive); " + TIME_HELP)
    window.add_argument("end", metavar="TO", help="end of the window (exclusive); same forms as FROM")
    window.add_argument("--by", choices=DIMENSIONS, default="fingerprint", help="grouping (default: fingerprint)")
    window.add_argument("--top", type=_positive_int, default=10, metavar="N", help="groups to show (default 10)")
    locks = add(
        "locks", "lock-wait episodes in FROM..TO: who blocked whom, for how long, at what cost", output, rollups
    )
    locks.add_argument("start", metavar="FROM", help="start of the window (inclusive); " + TIME_HELP)
    locks.add_argument("end", metavar="TO", help="end of the window (exclusive); same forms as FROM")
    report = add("report", "one self-contained incident report of FROM..TO: HTML page or Markdown", rollups)
    _report_arguments(report)
    snapshots = add("snapshots", "list samples and gaps with their metadata", output)
    snapshots.add_argument("start", metavar="FROM", nargs="?", help="default: an hour before the newest sample")
    snapshots.add_argument("end", metavar="TO", nargs="?", help="default: the end of the archive")
    verify = add("verify", "decode every frame; report damaged or truncated partitions and lost snapshots", output)
    verify.add_argument("start", metavar="FROM", nargs="?", help="default: the start of the archive")
    verify.add_argument("end", metavar="TO", nargs="?", help="default: the end of the archive")
    reindex = add("reindex", "build the missing or stale rollups of the finished hours in FROM..TO", output)
    reindex.add_argument("start", metavar="FROM", nargs="?", help="default: the start of the archive")
    reindex.add_argument("end", metavar="TO", nargs="?", help="default: the end of the archive")
    reindex.add_argument(
        "--cache", metavar="DIR", help="write the rollups under DIR/<instance>/ instead of beside the partitions"
    )
    reindex.add_argument("--force", action="store_true", help="rebuild valid rollups too")
    prune = add("prune", "apply retention now, printing each decision and its reason", output)
    prune.add_argument("--dry-run", action="store_true", help="only show the plan")
    add("check", "check config, connectivity, privileges, data directory and archive health")
    add("health", "exit 0 if the daemon's last capture attempt is recent (for container health checks)")
    return parser


def _report_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("start", metavar="FROM", help="start of the window (inclusive); " + TIME_HELP)
    report.add_argument("end", metavar="TO", help="end of the window (exclusive); same forms as FROM")
    report.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the report to FILE ('-': stdout). Default: stdout for md; for html a file "
        "plsnap-report-<instance>-<FROM>.html in the current directory",
    )
    report.add_argument(
        "--format", choices=REPORT_FORMATS, help="html or md (default: md when FILE ends in .md, else html)"
    )
    report.add_argument(
        "--compare",
        metavar="BASELINE",
        help="compare with a baseline window: -1d or -7d shift FROM and TO back (not relative to now), any "
        "other time is the baseline's FROM (same length)",
    )
    report.add_argument(
        "--redact",
        choices=("literals",),
        help="replace every literal in every statement text with ? (default: texts as the archive holds them)",
    )
    report.add_argument("--top", type=_positive_int, default=10, metavar="N", help="statements and groups (default 10)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if not 1 <= value <= 100000:
        raise argparse.ArgumentTypeError(f"expected a positive integer up to 100000, got {text!r}")
    return value


#: Set by a command after which the process may end without tearing its modules down (see :func:`run`).
_QUICK_EXIT = False


def run() -> NoReturn:
    """The ``plsnap`` console command: :func:`main`, then the end of the process. After ``at``, which opens
    nothing for writing, starts no thread and registers nothing to run at exit, the process ends with
    ``os._exit`` once its output is flushed: tearing down the modules it imported would add a tenth to the
    command's wall time, and the kernel closes what is left."""
    code = main()
    if _QUICK_EXIT:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:  # None when the descriptor was closed (2>&-)
                    stream.flush()
            except (OSError, ValueError):
                code = code or 1
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``plsnap``; returns the exit code (0 ok, 1 runtime failure, 2 usage/config, 3 no data)."""
    try:
        words = _protect_relative_times(sys.argv[1:] if argv is None else argv)
        parser = build_parser(words[0] if words and words[0] in COMMAND_EXAMPLES else None)
        args = parser.parse_args(words)
        return int(COMMANDS[args.command](args))
    except PlsnapError as exc:
        _say(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:
        _say(f"error: {exc.strerror or type(exc).__name__}{f': {exc.filename}' if exc.filename else ''}")
        return 1
    except Exception as exc:
        if os.environ.get("PLSNAP_DEBUG"):
            raise
        _say(f"internal error: {type(exc).__name__} at {_where(exc)} (set PLSNAP_DEBUG=1 for a traceback)")
        return 1


def _where(exc: BaseException) -> str:
    """The innermost plsnap frame of a traceback, as ``module.py:line``: never the exception's message, which
    could quote a file's content or a statement."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "plsnap" in f.filename] or frames
    if not own:
        return "unknown location"
    return f"{Path(own[-1].filename).name}:{own[-1].lineno}"


#: A relative time such as -15m: argparse would take it for an option, so it becomes now-15m. Anything else
#: that starts with a dash and a digit is protected too, so that a bad value (-15min) reaches the time parser
#: and gets its error message.
_RELATIVE_ARG = re.compile(r"^-\d")
_VALUE_OPTIONS = frozenset({"-c", "--config", "--data-dir", "--instance", "--tz", "--format", "--by", "--top",
                            "--interval", "--source", "--cache", "-o", "--output", "--redact"})  # fmt: skip
#: Options whose value may be a shift such as -1d (not a time relative to now): given as ``--compare=-1d``.
_SHIFT_OPTIONS = frozenset({"--compare"})


_REWRITTEN: dict[str, str] = {}


def _protect_relative_times(argv: Sequence[str]) -> list[str]:
    """Rewrite ``-15m`` as ``now-15m`` where a positional argument is expected (errors quote the original)."""
    out: list[str] = []
    for arg in argv:
        takes_value = bool(out) and out[-1] in _VALUE_OPTIONS
        if out and out[-1] in _SHIFT_OPTIONS and _RELATIVE_ARG.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        elif _RELATIVE_ARG.match(arg) and not takes_value:
            _REWRITTEN[f"now{arg}"] = arg
            out.append(f"now{arg}")
        else:
            out.append(arg)
    return out


#: Control characters other than tab and newline, as visible escapes: statement texts, user names and file
#: names come from whoever uses the database or the disk, and an escape sequence on a DBA's terminal could hide
#: or rewrite rows. The JSON form ``\\u00NN`` keeps JSON output valid and equal (only DEL and C1 characters
#: are left raw by the JSON encoder; tab, newline and the other C0 characters are escaped by it already).
_CONTROLS = {code: f"\\u{code:04x}" for code in (*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}


def _printable(text: str) -> str:
    """``text`` with control characters other than tab and newline shown as ``\\u00NN``."""
    return text.translate(_CONTROLS)


def _say(message: str) -> None:
    text = _printable(message.replace("\n", " "))
    print(f"plsnap: {text}", file=sys.stderr)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    capture: dict[str, Any] = {}
    if getattr(args, "interval", None):
        capture["interval"] = args.interval
    if getattr(args, "source", None):
        capture["source"] = args.source
    return {"archive": {"data_dir": args.data_dir, "instance": args.instance}, "capture": capture}


def _load(args: argparse.Namespace) -> Any:
    from plsnap.config import find_config_path, load_config

    path = find_config_path(args.config, os.environ)
    return load_config(path, overrides=_overrides(args))


def _zone(args: argparse.Namespace) -> tzinfo | None:
    from plsnap.timeparse import parse_zone

    return parse_zone(args.tz)


def _display_zone(args: argparse.Namespace) -> tzinfo | None:
    """The zone tables show: UTC with ``--utc``, else ``--tz``, else the local zone (None)."""
    return UTC if args.utc else _zone(args)


def _time(args: argparse.Namespace, text: str, now: datetime) -> datetime:
    from plsnap.timeparse import parse_time_noted

    moment, note = parse_time_noted(text, now=now, zone=_zone(args), shown=_REWRITTEN.get(text))
    if note:
        _say(f"note: {note}")
    return moment


def _instance(args: argparse.Namespace, config: Any) -> tuple[Path, str]:
    """(data dir, instance) for every command but the writers: ``--instance``, the config's, or the only one."""
    from plsnap.archive.layout import resolve_instance

    return resolve_instance(config.data_dir, args.instance or config.archive.instance or None)


def _reader(args: argparse.Namespace) -> Any:
    """The archive a read command means. Given ``--data-dir`` and ``--instance`` (and no ``--config``), no
    config file or environment variable can change it, so none is read: an investigator's copy of an archive
    opens even where a broken /etc/plsnap/plsnap.toml lies."""
    from plsnap.archive.layout import validate_instance
    from plsnap.archive.reader import ArchiveReader

    if args.data_dir and args.instance and not args.config:
        return ArchiveReader.open(Path(args.data_dir).expanduser(), validate_instance(args.instance))
    data_dir, instance = _instance(args, _load(args))
    return ArchiveReader.open(data_dir, instance)


def _rollups(args: argparse.Namespace, reader: Any) -> Any:
    from plsnap.rollup import Rollups

    if args.no_rollups:
        return None
    return Rollups(reader, cache=Path(args.cache).expanduser() if args.cache else None)


def _warn(reader: Any) -> None:
    for problem in reader.problems:
        _say(f"warning: {problem}")


def _emit(text: str) -> None:
    sys.stdout.write(_printable(text) + "\n")
    sys.stdout.flush()


def cmd_daemon(args: argparse.Namespace) -> int:
    """``plsnap daemon``."""
    from plsnap.daemon import run_daemon
    from plsnap.log import configure_logging

    config = _load(args)
    console = configure_logging(config.log.level, config.log.format)
    return run_daemon(config, reload=lambda: _load(args), sample_lines=console)


def cmd_capture(args: argparse.Namespace) -> int:
    """``plsnap capture``: one sample, then exit (1 when the sample failed; the gap line is still stored)."""
    from plsnap.config import resolve_password
    from plsnap.log import configure_logging
    from plsnap.model import format_ts
    from plsnap.recorder import Recorder
    from plsnap.source import Source

    config = _load(args)
    quiet = "debug" if config.log.level == "debug" else "error"
    configure_logging(quiet, config.log.format, stream=sys.stderr)
    recorder = Recorder(config, Source(config, resolve_password(config, warn=lambda m: _say(f"warning: {m}"))))
    try:
        recorder.start()
        attempt = recorder.capture()
    finally:
        recorder.close()
    assert attempt is not None
    snapshot = attempt.snapshot
    if not attempt.written:
        raise PlsnapError(attempt.write_error or "archive write failed")
    if snapshot.is_gap:
        raise PlsnapError(f"capture failed (gap recorded): {snapshot.error}")
    if snapshot.visibility == "own":
        _say("warning: the capture account lacks PROCESS: the sample shows only its own sessions")
    _emit(
        f"{format_ts(snapshot.ts)} {snapshot.source}: {len(snapshot.sessions or ())} sessions, "
        f"{snapshot.running} running, {snapshot.duration_ms:.1f} ms -> {recorder.instance_dir}"
    )
    return 0


def cmd_at(args: argparse.Namespace) -> int:
    """``plsnap at TIME``: a few minutes of rows, read with the cycle collector paused (it would walk every
    object of the imported modules several times while the rows are parsed: a tenth of the command's time)."""
    global _QUICK_EXIT  # noqa: PLW0603 - read by run() once main() has returned
    _QUICK_EXIT = True
    with _collector_paused():
        from plsnap import query, render

        moment = _time(args, args.time, datetime.now(UTC))
        with _reader(args) as reader:
            try:
                result = query.at(reader, moment, include_idle=args.all)
            finally:
                _warn(reader)
        if args.format == "json":
            _emit(render.to_json(render.at_json(result)))
        elif args.format == "csv":
            _emit(render.to_csv(render.AT_COLUMNS, render.at_rows(result, zone=UTC, full=True)))
        else:
            _emit(render.at_table(result, zone=_display_zone(args)))
    return 0


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bounded piece of work (reference counting still frees
    everything that is not in a cycle); it is switched back on after, as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def cmd_window(args: argparse.Namespace) -> int:
    """``plsnap window FROM TO``."""
    from plsnap import query, render

    now = datetime.now(UTC)
    start, end = _time(args, args.start, now), _time(args, args.end, now)
    if end <= start:
        raise UsageError(f"TO must be after FROM (got {args.start!r} .. {args.end!r})")
    with _reader(args) as reader:
        try:
            summary = query.window(reader, start, end, by=args.by, top=args.top, rollups=_rollups(args, reader))
        finally:
            _warn(reader)
    if args.format == "json":
        _emit(render.to_json(render.window_json(summary)))
    elif args.format == "csv":
        _emit(render.to_csv(render.TOP_COLUMNS, render.window_top_rows(summary, full=True)))
    else:
        _emit(render.window_table(summary, zone=_display_zone(args)))
    return 0


def cmd_locks(args: argparse.Namespace) -> int:
    """``plsnap locks FROM TO``: lock-wait episodes, highest impact first."""
    from plsnap import query, render

    now = datetime.now(UTC)
    start, end = _time(args, args.start, now), _time(args, args.end, now)
    if end <= start:
        raise UsageError(f"TO must be after FROM (got {args.start!r} .. {args.end!r})")
    with _reader(args) as reader:
        try:
            found = query.lock_episodes(reader, start, end, rollups=_rollups(args, reader))
        finally:
            _warn(reader)
    if args.format == "json":
        _emit(render.to_json(render.locks_json(found, start, end)))
    elif args.format == "csv":
        _emit(render.to_csv(render.LOCK_COLUMNS, render.episode_rows(found, zone=UTC, raw=True)))
    else:
        _emit(render.locks_table(found, start, end, zone=_display_zone(args)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``plsnap report FROM TO``: one HTML page (or Markdown) from the archive alone."""
    from plsnap import report, report_html, report_md

    now = datetime.now(UTC)
    start, end = _time(args, args.start, now), _time(args, args.end, now)
    if end <= start:
        raise UsageError(f"TO must be after FROM (got {args.start!r} .. {args.end!r})")
    output = args.output
    form = args.format or ("md" if output and output.lower().endswith(".md") else "html")
    baseline = None
    if args.compare is not None:
        baseline = report.baseline_window(args.compare, start, end, lambda text: _time(args, text, now))
    with _reader(args) as reader:
        try:
            made = report.build(
                reader,
                start,
                end,
                top=args.top,
                baseline=baseline,
                redact=args.redact == "literals",
                command=report.CommandLine(reader.instance, config=args.config, data_dir=args.data_dir),
                now=now,
                rollups=_rollups(args, reader),
            )
        finally:
            _warn(reader)
        data_dir = reader.instance_dir.parent
    zone = _display_zone(args)
    body = report_html.render(made, zone=zone) if form == "html" else report_md.render(made, zone=zone)
    if output is None and form == "html":
        output = f"plsnap-report-{made.instance}-{start.astimezone(UTC):%Y%m%dT%H%M%SZ}.html"
    if output is None or output == "-":
        sys.stdout.write(_printable(body) if form == "md" else body)
        sys.stdout.flush()
        return 0
    path = Path(output)
    _refuse_inside(path, data_dir)
    _write_atomically(path, body.encode("utf-8"))
    _emit(f"wrote {path} ({len(body.encode('utf-8')) / 1024:.0f} KiB, {form})")
    return 0


def _refuse_inside(path: Path, data_dir: Path) -> None:
    """A report never goes into the data directory, where it could replace a partition or its rollup. The
    directories are compared by device and inode, from the target's folder up to ``/``, so that another path to
    the same directory (a bind mount, a case-insensitive file system, symlinks) is refused too."""
    where = Path(os.path.realpath(path.expanduser().parent)) / path.name
    try:
        archive = Path(data_dir).stat()
    except OSError:
        archive = None
    folder = where.parent
    while archive is not None:
        try:
            here = folder.stat()
        except OSError:
            here = None
        if here is not None and (here.st_dev, here.st_ino) == (archive.st_dev, archive.st_ino):
            raise UsageError(
                f"-o {path}: the report would be written inside the archive ({data_dir}); choose a path outside it"
            )
        if folder.parent == folder:
            break
        folder = folder.parent
    if where.is_relative_to(Path(os.path.realpath(data_dir))):
        raise UsageError(
            f"-o {path}: the report would be written inside the archive ({data_dir}); choose a path outside it"
        )
    if where.is_dir():
        raise UsageError(f"-o {path}: is a directory; give a file name")
    try:
        kind = where.lstat().st_mode
        if stat.S_ISLNK(kind):
            kind = where.stat().st_mode
    except OSError:
        return
    if not stat.S_ISREG(kind):
        # The page is renamed into place: that would replace a device node, FIFO or socket (/dev/stdout, a pipe)
        # with a regular file instead of writing to it.
        raise UsageError(f"-o {path}: is not a regular file (a device, FIFO or socket); use '-o -' for stdout")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with the archive's atomic write (temp file, fsync, rename, fsync of the
    directory), mode 0644 less the umask: a reader never sees half a report. The page goes wherever the user
    asks, so the directory is opened without the archive's ownership checks."""
    from plsnap.archive.fs import SafeDir

    with SafeDir.open_root(path.parent, writable=False) as folder:
        folder.atomic_write(path.name, data, mode=0o644)


def _optional_range(args: argparse.Namespace, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``[FROM [TO]]`` of snapshots, verify and reindex; a TO not after FROM is a usage error, as for window."""
    start = _time(args, args.start, now) if args.start else None
    end = _time(args, args.end, now) if args.end else None
    if start is not None and end is not None and end <= start:
        raise UsageError(f"TO must be after FROM (got {args.start!r} .. {args.end!r})")
    return start, end


def cmd_snapshots(args: argparse.Namespace) -> int:
    """``plsnap snapshots [FROM [TO]]``."""
    from plsnap import query, render

    now = datetime.now(UTC)
    start, end = _optional_range(args, now)
    with _reader(args) as reader:
        try:
            found = query.snapshots(reader, start, end)
        finally:
            _warn(reader)
    keys = render.SNAPSHOT_COLUMNS
    if args.format == "json":
        rows = [render.snapshot_row(s, zone=UTC, raw=True) for s in found]
        _emit(render.to_json([dict(zip(keys, row, strict=True)) for row in rows]))
    elif args.format == "csv":
        _emit(render.to_csv(keys, [render.snapshot_row(s, zone=UTC, raw=True) for s in found]))
    else:
        zone = _display_zone(args)
        _emit(render.table(keys, [render.snapshot_row(s, zone=zone) for s in found]))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """``plsnap verify [FROM [TO]]``: exit 1 when any partition is damaged."""
    from plsnap import render
    from plsnap.verify import verify

    now = datetime.now(UTC)
    start, end = _optional_range(args, now)
    with _reader(args) as reader:
        report = verify(reader, start, end)
        instance_dir = reader.instance_dir
    if not report.partitions:
        raise NoDataError(f"no partition to verify under {instance_dir}")
    if args.format == "json":
        _emit(render.to_json(render.verify_json(report, instance_dir)))
    elif args.format == "csv":
        _emit(render.to_csv(render.VERIFY_COLUMNS, render.verify_rows(report, instance_dir)))
    else:
        _emit(render.table(render.VERIFY_COLUMNS, render.verify_rows(report, instance_dir)))
        for item in report.foreign:
            _emit(f"left alone: {item.path} ({item.reason})")
    damaged = report.damaged
    if damaged:
        _forget_rollups(instance_dir, [c.partition for c in damaged])
    unreadable = report.unreadable
    problems = [f"{len(damaged)} of {len(report.partitions)} partition(s) damaged"] if damaged else []
    if unreadable:
        problems.append(
            f"{len(unreadable)} entr{'y' if len(unreadable) == 1 else 'ies'} where history should be "
            "cannot be read (see left alone)"
        )
    if problems:
        raise PlsnapError("; ".join(problems))
    return 0


def _forget_rollups(instance_dir: Path, partitions: list[Any]) -> None:
    """A damaged partition's rollup built before the damage is stale: remove it (reindex rebuilds it)."""
    from plsnap.rollup import forget

    if not any(p.rollup for p in partitions):
        return
    try:
        removed = forget(instance_dir, partitions)
    except (OSError, PlsnapError) as exc:
        _say(f"warning: could not remove the rollups of the damaged partitions ({exc}); use window --no-rollups")
        return
    for path in removed:
        _say(f"note: removed {path}: its partition is damaged (plsnap reindex rebuilds it from what is readable)")


def cmd_reindex(args: argparse.Namespace) -> int:
    """``plsnap reindex [FROM [TO]]``: build missing or stale rollups; one row per partition."""
    from plsnap import render
    from plsnap.rollup import reindex

    now = datetime.now(UTC)
    start, end = _optional_range(args, now)
    with _reader(args) as reader:
        instance_dir = reader.instance_dir
    done = reindex(instance_dir, start, end, cache=Path(args.cache).expanduser() if args.cache else None,
                   force=args.force, now=now, warn=lambda problem: _say(f"warning: {problem}"))  # fmt: skip
    if not done:
        raise NoDataError(f"no partition to reindex under {instance_dir}")
    rows = render.reindex_rows(done, instance_dir)
    if args.format == "json":
        _emit(render.to_json([dict(zip(render.REINDEX_COLUMNS, row, strict=True)) for row in rows]))
    elif args.format == "csv":
        _emit(render.to_csv(render.REINDEX_COLUMNS, rows))
    else:
        _emit(render.table(render.REINDEX_COLUMNS, rows))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """``plsnap prune [--dry-run]``: plan with reasons, then delete unless ``--dry-run``."""
    from plsnap import render, retention
    from plsnap.archive.layout import open_instance
    from plsnap.archive.reader import ArchiveReader

    config = _load(args)
    data_dir, instance = _instance(args, config)
    with ArchiveReader.open(data_dir, instance) as reader:
        newest = reader.newest_ts()
        instance_dir = reader.instance_dir
        protected = _open_partition(reader)
    with open_instance(data_dir, instance, writable=not args.dry_run, create=False) as directory:
        outcome = retention.run(
            directory, config.retention, newest_snapshot=newest, protected=protected, dry_run=args.dry_run
        )
    for item in outcome.listing.foreign:
        _say(f"warning: left alone: {item.path} ({item.reason})")
    for refusal in outcome.refused:
        _say(f"warning: {refusal}")
    if not outcome.decisions:
        raise NoDataError(f"no partitions under {instance_dir}")
    if args.format == "json":
        _emit(render.to_json(render.prune_json(outcome.decisions, instance_dir, args.dry_run)))
    elif args.format == "csv":
        _emit(render.to_csv(render.PRUNE_COLUMNS, render.prune_rows(outcome.decisions, instance_dir)))
    else:
        rows = render.prune_rows(outcome.decisions, instance_dir)
        if args.dry_run:
            rows = [["would " + r[0], *r[1:]] for r in rows]
        _emit(render.table(render.PRUNE_COLUMNS, rows))
    return 0


def _open_partition(reader: Any) -> list[Path]:
    """The partition a running daemon notes as open (never deleted by a concurrent prune)."""
    from plsnap.archive.layout import LOCK_NAME

    try:
        note = reader.directory().read_bytes(LOCK_NAME, 4096).decode("utf-8", "replace").splitlines()
    except (OSError, PlsnapError):
        return []
    return [reader.instance_dir / note[1]] if len(note) >= 2 and note[1] else []


def cmd_check(args: argparse.Namespace) -> int:
    """``plsnap check``: one line per check; exit 1 if any failed."""
    from plsnap.check import run_checks

    problems = 0
    for status, line in run_checks(_load(args)):
        _emit(f"{status.upper() if status != 'ok' else 'ok':<4}  {line}")
        problems += status == "fail"
    if problems:
        raise PlsnapError(f"{problems} check(s) failed")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """``plsnap health``: read the heartbeat file; exit 0 while the last attempt is recent."""
    import orjson

    from plsnap.archive.fs import SafeDir
    from plsnap.archive.layout import HEARTBEAT_NAME
    from plsnap.model import finite

    config = _load(args)
    if config.metrics.heartbeat_file:
        path = config.heartbeat_path
    else:
        try:
            data_dir, instance = _instance(args, config)
        except NoDataError:
            data_dir, instance = config.data_dir, config.instance
        path = data_dir / instance / HEARTBEAT_NAME
    try:
        with SafeDir.open_root(path.parent, writable=False) as folder:
            raw = folder.read_bytes(path.name, 64 * 1024)
            age = time.time() - os.stat(path.name, dir_fd=folder.fd, follow_symlinks=False).st_mtime
    except FileNotFoundError:
        raise PlsnapError(f"unhealthy: no heartbeat at {path} (is the daemon running?)") from None
    except PlsnapError as exc:
        raise PlsnapError(f"unhealthy: no usable heartbeat: {exc}") from None
    except OSError as exc:
        raise PlsnapError(f"unhealthy: cannot read the heartbeat {path}: {exc.strerror or exc}") from None
    try:
        beat = orjson.loads(raw)
    except ValueError:
        beat = None
    if not isinstance(beat, dict):
        raise PlsnapError(f"unhealthy: the heartbeat {path} is not plsnap's (not a JSON object); not trusted")
    if not (isinstance(beat.get("ok"), bool) and isinstance(beat.get("running"), bool)):
        raise PlsnapError(f"unhealthy: the heartbeat {path} is not plsnap's (no 'ok' and 'running'); not trusted")
    if beat.get("running") is False:
        raise PlsnapError(f"unhealthy: the daemon stopped (last sample {beat.get('ts')})")
    interval = finite(beat.get("interval_s"), 0.001, 86400.0)
    limit = config.stall_seconds(interval)
    if age > limit:
        raise PlsnapError(f"unhealthy: last capture attempt {age:.0f}s ago (limit {limit:g}s)")
    state = "ok" if beat.get("ok") else f"capturing but failing: {beat.get('error')}"
    _emit(f"healthy: last attempt {age:.1f}s ago ({state})")
    if beat.get("visibility") == "own":
        _say("warning: the capture account lacks PROCESS: samples show only its own sessions")
    return 0


COMMANDS = {
    "daemon": cmd_daemon,
    "capture": cmd_capture,
    "at": cmd_at,
    "window": cmd_window,
    "snapshots": cmd_snapshots,
    "locks": cmd_locks,
    "report": cmd_report,
    "verify": cmd_verify,
    "reindex": cmd_reindex,
    "prune": cmd_prune,
    "check": cmd_check,
    "health": cmd_health,
}


if __name__ == "__main__":
    sys.exit(main())
