"""The ``plsnap`` command line: parse, call the library, render; map errors to exit codes in one place.

Read-only commands (``at``, ``window``, ``snapshots``, ``prune``, ``health``) never import PyMySQL or
APScheduler, so they start fast on an investigator's laptop with only a copied archive.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
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
  plsnap prune --dry-run                          what retention would delete, and why
  plsnap at 1795835640 --data-dir ./copied-archive    read an archive copied to a laptop
"""
FORMATS = ("table", "json", "csv")
DIMENSIONS = ("fingerprint", "user", "host", "db", "state", "command")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command (also used to generate the CLI reference)."""
    common = _Parser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="TOML config file (default: $PLSNAP_CONFIG, then /etc/plsnap/plsnap.toml if present)",
    )
    common.add_argument("--data-dir", metavar="DIR", help="archive root (overrides [archive] data_dir)")
    common.add_argument("--instance", metavar="NAME", help="instance name (default: config, or the only one)")
    common.add_argument("--utc", action="store_true", help="show times in UTC instead of local time")
    common.add_argument("--tz", metavar="ZONE", help="zone for times given without an offset (default: local)")
    output = _Parser(add_help=False)
    output.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")

    parser = _Parser(
        prog="plsnap",
        description="A flight recorder for MySQL and MariaDB sessions.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"plsnap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    def add(name: str, help_text: str, *parents: _Parser) -> argparse.ArgumentParser:
        chain: list[_Parser] = [common, *parents]
        return sub.add_parser(name, help=help_text, description=help_text, parents=chain)

    daemon = add("daemon", "capture loop in the foreground (systemd, containers)")
    capture = add("capture", "take one snapshot now, then exit")
    for p in (daemon, capture):
        p.add_argument("--interval", metavar="DURATION", help="sampling interval, e.g. 5s (overrides config)")
        p.add_argument("--source", choices=("auto", "show", "information_schema", "performance_schema"))
    at = add("at", "what was running at TIME", output)
    at.add_argument("time", metavar="TIME", help="ISO-8601, HH:MM, now, -15m, or epoch seconds")
    at.add_argument("--all", action="store_true", help="also list idle sessions")
    window = add("window", "summarize the window FROM..TO (ASH-style top-N)", output)
    window.add_argument("start", metavar="FROM")
    window.add_argument("end", metavar="TO")
    window.add_argument("--by", choices=DIMENSIONS, default="fingerprint", help="grouping (default: fingerprint)")
    window.add_argument("--top", type=_positive_int, default=10, metavar="N", help="groups to show (default 10)")
    snapshots = add("snapshots", "list samples and gaps with their metadata", output)
    snapshots.add_argument("start", metavar="FROM", nargs="?", help="default: an hour before the newest sample")
    snapshots.add_argument("end", metavar="TO", nargs="?", help="default: the end of the archive")
    prune = add("prune", "apply retention now, printing each decision and its reason", output)
    prune.add_argument("--dry-run", action="store_true", help="only show the plan")
    add("check", "check config, connectivity, privileges and archive health")
    add("health", "exit 0 if the daemon's last capture attempt is recent (for container health checks)")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``plsnap``; returns the exit code (0 ok, 1 runtime failure, 2 usage/config, 3 no data)."""
    try:
        args = build_parser().parse_args(_protect_relative_times(sys.argv[1:] if argv is None else argv))
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
        _say(f"error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
        return 1
    except Exception as exc:
        if os.environ.get("PLSNAP_DEBUG"):
            raise
        _say(f"internal error: {type(exc).__name__}: {exc} (set PLSNAP_DEBUG=1 for a traceback)")
        return 1


_RELATIVE_ARG = re.compile(r"^-\d+(\.\d+)?(ms|s|m|h|d|w)(\d+(\.\d+)?(ms|s|m|h|d|w))*$")


def _protect_relative_times(argv: Sequence[str]) -> list[str]:
    """Rewrite ``-15m`` as ``now-15m`` so argparse does not take it for an option."""
    return [f"now{arg}" if _RELATIVE_ARG.match(arg) else arg for arg in argv]


def _say(message: str) -> None:
    text = message.replace("\n", " ")
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


def _reader(args: argparse.Namespace) -> Any:
    from plsnap.archive import ArchiveReader, resolve_instance_dir

    config = _load(args)
    instance = args.instance or config.archive.instance or None
    return ArchiveReader(resolve_instance_dir(config.data_dir, instance))


def _warn(reader: Any) -> None:
    for problem in reader.problems:
        _say(f"warning: {problem}")


def _emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def cmd_daemon(args: argparse.Namespace) -> int:
    """``plsnap daemon``."""
    from plsnap.daemon import run_daemon
    from plsnap.log import configure_logging

    config = _load(args)
    configure_logging(config.log.level, config.log.format)
    return run_daemon(config, reload=lambda: _load(args))


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
    recorder = Recorder(config, Source(config, resolve_password(config)))
    try:
        attempt = recorder.capture()
    finally:
        recorder.close()
    assert attempt is not None
    snapshot = attempt.snapshot
    if not attempt.written:
        raise PlsnapError(attempt.write_error or "archive write failed")
    if snapshot.is_gap:
        raise PlsnapError(f"capture failed (gap recorded): {snapshot.error}")
    _emit(
        f"{format_ts(snapshot.ts)} {snapshot.source}: {len(snapshot.sessions or ())} sessions, "
        f"{snapshot.running} running, {snapshot.duration_ms:.1f} ms -> {recorder.writer.instance_dir}"
    )
    return 0


def cmd_at(args: argparse.Namespace) -> int:
    """``plsnap at TIME``."""
    from plsnap import render
    from plsnap.replay import sessions_at
    from plsnap.timeparse import parse_time

    moment = parse_time(args.time, zone=_zone(args))
    reader = _reader(args)
    snapshots = _snapshots_around(reader, moment, include_idle=args.all)
    result = sessions_at(snapshots, moment, instance=reader.instance, include_idle=args.all)
    _warn(reader)
    if result.before is None and result.after is None:
        raise NoDataError(_no_data_message(reader, moment))
    if args.format == "json":
        _emit(render.to_json(render.at_json(result)))
    elif args.format == "csv":
        _emit(render.to_csv(render.AT_COLUMNS, render.at_rows(result, utc=True, full=True)))
    else:
        _emit(render.at_table(result, utc=args.utc))
    return 0


CONTEXT = timedelta(minutes=2)
NEAR = timedelta(hours=1)


def _snapshots_around(reader: Any, moment: datetime, *, include_idle: bool) -> list[Any]:
    """Snapshots from a few minutes before ``moment`` to the first good sample after it (within an hour)."""
    snapshots = list(reader.iter_snapshots(moment - CONTEXT, moment + CONTEXT, include_idle=include_idle))
    if not any(not s.is_gap and s.ts <= moment for s in snapshots):
        for record in reader.iter_records_backwards(moment - CONTEXT):
            snapshot = reader.to_snapshot(record, include_idle=include_idle)
            if snapshot is None or moment - snapshot.ts > NEAR:
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


def _no_data_message(reader: Any, moment: datetime) -> str:
    from plsnap.model import format_ts

    bounds = reader.bounds()
    if bounds is None:
        return f"the archive {reader.instance_dir} holds no snapshots"
    return (
        f"no sample within {NEAR.seconds // 3600}h of {format_ts(moment)}; the archive covers "
        f"{format_ts(bounds[0])} .. {format_ts(bounds[1])}"
    )


def cmd_window(args: argparse.Namespace) -> int:
    """``plsnap window FROM TO``."""
    from plsnap import render
    from plsnap.summary import summarize
    from plsnap.timeparse import parse_time

    zone = _zone(args)
    now = datetime.now(UTC)
    start, end = parse_time(args.start, now=now, zone=zone), parse_time(args.end, now=now, zone=zone)
    if end <= start:
        raise UsageError(f"TO must be after FROM (got {args.start!r} .. {args.end!r})")
    reader = _reader(args)
    summary = summarize(
        reader.iter_snapshots(start, end, include_idle=False),
        start,
        end,
        by=args.by,
        top=args.top,
        instance=reader.instance,
    )
    _warn(reader)
    if summary.samples == 0 and summary.gap_samples == 0:
        raise NoDataError(
            _no_data_message(reader, start).replace("no sample within", "no sample in the window, or within")
        )
    if args.format == "json":
        _emit(render.to_json(render.window_json(summary)))
    elif args.format == "csv":
        _emit(render.to_csv(render.TOP_COLUMNS, render.window_top_rows(summary, full=True)))
    else:
        _emit(render.window_table(summary, utc=args.utc))
    return 0


def cmd_snapshots(args: argparse.Namespace) -> int:
    """``plsnap snapshots [FROM [TO]]``."""
    from plsnap import render
    from plsnap.timeparse import parse_time

    zone = _zone(args)
    reader = _reader(args)
    now = datetime.now(UTC)
    if args.start:
        start = parse_time(args.start, now=now, zone=zone)
    else:
        newest = reader.newest_ts()
        if newest is None:
            raise NoDataError(f"the archive {reader.instance_dir} holds no snapshots")
        start = newest - timedelta(hours=1)
    end = parse_time(args.end, now=now, zone=zone) if args.end else None
    snapshots = list(reader.iter_snapshots(start, end))
    _warn(reader)
    if not snapshots:
        raise NoDataError(_no_data_message(reader, start).replace("no sample within", "no sample in range, or within"))
    if args.format == "json":
        keys = render.SNAPSHOT_COLUMNS
        _emit(render.to_json([dict(zip(keys, render.snapshot_row(s, utc=None), strict=True)) for s in snapshots]))
    elif args.format == "csv":
        _emit(render.to_csv(render.SNAPSHOT_COLUMNS, [render.snapshot_row(s, utc=None) for s in snapshots]))
    else:
        _emit(render.table(render.SNAPSHOT_COLUMNS, [render.snapshot_row(s, utc=args.utc) for s in snapshots]))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """``plsnap prune [--dry-run]``: plan with reasons, then delete unless ``--dry-run``."""
    from plsnap import render, retention
    from plsnap.archive import ArchiveReader, list_partitions

    config = _load(args)
    instance_dir = config.instance_dir
    partitions, foreign = list_partitions(instance_dir)
    for path in foreign:
        _say(f"warning: not a plsnap file, left alone: {path}")
    if not partitions:
        raise NoDataError(f"no partitions under {instance_dir}")
    decisions = retention.plan(
        partitions,
        config.retention,
        newest_snapshot=ArchiveReader(instance_dir).newest_ts(),
        disk=retention.disk_usage(instance_dir),
    )
    if not args.dry_run:
        retention.delete(decisions, instance_dir)
    if args.format == "json":
        _emit(render.to_json(render.prune_json(decisions, instance_dir, args.dry_run)))
    elif args.format == "csv":
        _emit(render.to_csv(render.PRUNE_COLUMNS, render.prune_rows(decisions, instance_dir)))
    else:
        rows = render.prune_rows(decisions, instance_dir)
        if args.dry_run:
            rows = [["would " + r[0], *r[1:]] for r in rows]
        _emit(render.table(render.PRUNE_COLUMNS, rows))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``plsnap check``: one line per check; exit 1 if any failed."""
    from plsnap.check import run_checks

    problems = 0
    for ok, line in run_checks(_load(args)):
        _emit(f"{'ok  ' if ok else 'FAIL'}  {line}")
        problems += 0 if ok else 1
    if problems:
        raise PlsnapError(f"{problems} check(s) failed")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """``plsnap health``: read the heartbeat file; exit 0 while the last attempt is recent."""
    import orjson

    config = _load(args)
    path: Path = config.heartbeat_path
    try:
        beat = orjson.loads(path.read_bytes())
        age = time.time() - path.stat().st_mtime
    except (OSError, orjson.JSONDecodeError):
        raise PlsnapError(f"unhealthy: no heartbeat at {path} (is the daemon running?)") from None
    if age > config.stall_seconds:
        raise PlsnapError(f"unhealthy: last capture attempt {age:.0f}s ago (limit {config.stall_seconds:g}s)")
    state = "ok" if beat.get("ok") else f"capturing but failing: {beat.get('error')}"
    _emit(f"healthy: last attempt {age:.1f}s ago ({state})")
    return 0


COMMANDS = {
    "daemon": cmd_daemon,
    "capture": cmd_capture,
    "at": cmd_at,
    "window": cmd_window,
    "snapshots": cmd_snapshots,
    "prune": cmd_prune,
    "check": cmd_check,
    "health": cmd_health,
}


if __name__ == "__main__":
    sys.exit(main())
