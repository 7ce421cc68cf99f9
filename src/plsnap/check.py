"""``plsnap check``: config, connectivity, privileges, data directory and archive health, one line each."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from plsnap.archive.format import decode_partition
from plsnap.archive.layout import list_partitions
from plsnap.config import Config, resolve_password
from plsnap.errors import PlsnapError
from plsnap.recorder import check_data_dir
from plsnap.retention import disk_usage
from plsnap.source import Source
from plsnap.units import format_size

Check = tuple[bool, str]
_PROCESS = re.compile(r"GRANT\s+(.*?)\s+ON\s+\*\.\*", re.IGNORECASE)
_P_S = re.compile(r"GRANT\s+.*?\s+ON\s+`?performance_schema`?\.\*", re.IGNORECASE)


def has_global_privilege(grants: list[str], privilege: str) -> bool:
    """True when ``SHOW GRANTS`` lines give ``privilege`` (or ALL PRIVILEGES) on ``*.*``."""
    for line in grants:
        match = _PROCESS.search(line)
        if match:
            granted = {p.strip().upper() for p in match.group(1).split(",")}
            if privilege.upper() in granted or "ALL PRIVILEGES" in granted:
                return True
    return False


def run_checks(config: Config) -> Iterator[Check]:
    """Yield (ok, message) for every check, in order; never raises for an expected failure."""
    yield True, f"config: {config.path or 'built-in defaults'} is valid"
    yield from _check_server(config)
    yield from _check_data_dir(config)
    yield from _check_archive(config)


def _check_server(config: Config) -> Iterator[Check]:
    try:
        source = Source(config, resolve_password(config))
        info = source.connect()
    except PlsnapError as exc:
        yield False, f"server: {exc}"
        return
    try:
        tls = "TLS" if info.tls else "no TLS"
        yield True, f"server: {info.label} ({info.version}), {tls}, source would be {source.kind}"
        grants = source.grants()
        if has_global_privilege(grants, "PROCESS"):
            yield True, "privileges: PROCESS granted: all sessions are visible"
        else:
            yield (
                False,
                (
                    "privileges: PROCESS is missing, so only the capture user's own sessions are visible; "
                    "run: GRANT PROCESS ON *.* TO <capture user>"
                ),
            )
        needs_p_s = source.kind == "performance_schema" and not any(_P_S.search(g) for g in grants)
        if needs_p_s and not has_global_privilege(grants, "SELECT"):
            yield False, "privileges: run: GRANT SELECT ON performance_schema.* TO <capture user>"
        snapshot = source.sample()
        if snapshot.is_gap:
            yield False, f"sample: {snapshot.error}"
        else:
            yield True, f"sample: {len(snapshot.sessions or ())} sessions in {snapshot.duration_ms:.1f} ms"
    finally:
        source.close()


def _check_data_dir(config: Config) -> Iterator[Check]:
    path = config.instance_dir
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        yield False, f"data dir: {probe} is not writable by uid {os.geteuid()} (needed for {path})"
        return
    try:
        check_data_dir(path)
    except PlsnapError as exc:
        yield False, f"data dir: {exc}"
        return
    usage = disk_usage(probe)
    floor = config.retention.min_free.required(usage.total) if config.retention.min_free else 0
    ok = usage.free > floor
    yield ok, f"data dir: {path} writable, {format_size(usage.free)} free of {format_size(usage.total)}"


def _check_archive(config: Config) -> Iterator[Check]:
    partitions, foreign = list_partitions(config.instance_dir)
    bad = []
    for part in partitions:
        try:
            decoded = decode_partition(part.path.read_bytes())
        except OSError as exc:
            bad.append(f"{part.path} ({exc.strerror})")
            continue
        if decoded.problems:
            bad.append(f"{part.path} ({decoded.problems[0]})")
    total = sum(p.size for p in partitions)
    yield (
        not bad,
        f"archive: {len(partitions)} partitions, {format_size(total)}"
        + (f"; damaged: {', '.join(bad)}" if bad else ""),
    )
    for path in foreign:
        yield True, f"archive: foreign file left alone: {path}"
