"""What would shrink the archive? Re-encode one hour of the 10 s synthetic archive in other ways and compress
each exactly as plsnap's writer does (one streaming frame, a flushed block per line), against the seed's gzip.

Not part of ``make bench``; evidence for format decisions. Every variant keeps one self-contained JSON line per
snapshot (``zstdcat | jq`` still works). Run: ``.venv/bin/python -m benchmarks.storage_whatif [--interval 10]``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import fmt
from benchmarks.synth_archive import Spec, generate, seed_name
from plsnap.archive.format import decode_lines, encode_line
from plsnap.archive.layout import partition_path
from plsnap.archive.writer import ArchiveWriter
from plsnap.fingerprint import redact_literals
from plsnap.model import SESSION_KEYS, parse_ts

VOLATILE_IDLE = ("time_ms", "memory_used", "max_memory_used", "stage", "max_stage", "progress", "examined_rows")
Variant = Callable[[dict[str, Any]], dict[str, Any]]


def _sessions(record: dict[str, Any], change: Callable[[dict[str, Any], float], dict[str, Any]]) -> dict[str, Any]:
    if record.get("sessions"):
        now = parse_ts(record["ts"]).timestamp()
        record["sessions"] = [change(s, now) for s in record["sessions"]]
    return record


def idle_no_time_ms(record: dict[str, Any]) -> dict[str, Any]:
    """Sleep rows without ``time_ms`` (``time`` is enough for idle)."""
    return _sessions(
        record, lambda s, _: {k: v for k, v in s.items() if not (s["command"] == "Sleep" and k == "time_ms")}
    )


def idle_show_columns(record: dict[str, Any]) -> dict[str, Any]:
    """Sleep rows with only the SHOW columns (no volatile I_S columns)."""
    return _sessions(
        record, lambda s, _: {k: v for k, v in s.items() if not (s["command"] == "Sleep" and k in VOLATILE_IDLE)}
    )


def since_instead_of_time(record: dict[str, Any]) -> dict[str, Any]:
    """Idle rows as above, and every row's ``time``/``time_ms`` replaced by ``since`` (start, epoch seconds)."""

    def change(s: dict[str, Any], now: float) -> dict[str, Any]:
        elapsed = (s.get("time_ms") or 0) / 1000 if s.get("time_ms") is not None else s.get("time") or 0
        out = {k: v for k, v in s.items() if k not in ("time", "time_ms")}
        if s["command"] == "Sleep":
            out = {k: v for k, v in out.items() if k not in VOLATILE_IDLE}
        out["since"] = round(now - elapsed)
        return out

    return _sessions(record, change)


def show_columns(record: dict[str, Any]) -> dict[str, Any]:
    """Only the SHOW FULL PROCESSLIST columns (``source = "show"``)."""
    return _sessions(record, lambda s, _: {k: s.get(k) for k in SESSION_KEYS})


def show_since(record: dict[str, Any]) -> dict[str, Any]:
    """SHOW columns only, with ``since`` (start, epoch seconds) instead of ``time``."""

    def change(s: dict[str, Any], now: float) -> dict[str, Any]:
        elapsed = s["time_ms"] / 1000 if s.get("time_ms") is not None else s.get("time") or 0
        out = {k: s.get(k) for k in SESSION_KEYS if k != "time"}
        out["since"] = round(now - elapsed)
        return out

    return _sessions(record, change)


def show_since_redacted(record: dict[str, Any]) -> dict[str, Any]:
    """As :func:`show_since`, with literals redacted."""
    return redacted(show_since(record))


def redacted(record: dict[str, Any]) -> dict[str, Any]:
    """Statement literals replaced by ``?`` (``[capture] redact = "literals"``); the seed keeps them."""
    return _sessions(record, lambda s, _: {**s, "info": redact_literals(s["info"]) if s.get("info") else s.get("info")})


def no_info(record: dict[str, Any]) -> dict[str, Any]:
    """No statement text at all: shows how much of the archive the texts are."""
    return _sessions(record, lambda s, _: {**s, "info": None})


VARIANTS: dict[str, tuple[Variant | None, int]] = {
    "plsnap as is (level 3)": (None, 3),
    "plsnap as is, level 9": (None, 9),
    "plsnap as is, level 19": (None, 19),
    "idle rows without time_ms": (idle_no_time_ms, 3),
    "idle rows with SHOW columns only": (idle_show_columns, 3),
    "since (start) instead of time/time_ms, idle SHOW cols": (since_instead_of_time, 3),
    "SHOW columns only (source=show)": (show_columns, 3),
    "SHOW columns + since": (show_since, 3),
    "SHOW columns + since, level 19": (show_since, 19),
    "literals redacted (redact = literals)": (redacted, 3),
    "SHOW columns + since + literals redacted": (show_since_redacted, 3),
    "no statement text at all (for scale)": (no_info, 3),
}


def main() -> None:
    """Print bytes per sample of every variant against the seed's gzip files for the same hour."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=10.0)
    args = parser.parse_args()
    spec = Spec() if args.interval == 10 else Spec(interval=args.interval, hours=48)
    dataset = generate(spec)
    hour = spec.start + timedelta(hours=spec.hours // 2)
    lines = decode_lines(partition_path(dataset.instance_dir, hour).read_bytes())[0]
    seed = sum((dataset.seed_dir / seed_name(parse_ts(orjson.loads(x)["ts"]))).stat().st_size for x in lines)
    seed /= len(lines)
    print(f"{len(lines)} samples at {args.interval:g}s; seed gzip {fmt(seed, 'B')}/sample")
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, (variant, level)) in enumerate(VARIANTS.items()):
            total = raw = 0
            with ArchiveWriter(Path(tmp) / str(index), level=level, fsync=False) as writer:
                for line in lines:
                    record = orjson.loads(line)
                    encoded = encode_line(variant(record) if variant else record)
                    raw += len(encoded)
                    total += writer.append(encoded, parse_ts(record["ts"]))
            per = total / len(lines)
            print(
                f"{name:55s} {fmt(per, 'B'):>10}/sample  raw {fmt(raw / len(lines), 'B'):>10}  {per / seed:.2f}x seed"
            )


if __name__ == "__main__":
    main()
