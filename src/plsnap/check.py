"""``plsnap check``: config, connectivity, privileges, data directory and archive health, one line each."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from plsnap.archive.fs import SafeDir
from plsnap.archive.layout import validate_instance
from plsnap.archive.reader import ArchiveReader
from plsnap.config import Config, resolve_password
from plsnap.connection import Connector
from plsnap.errors import PlsnapError
from plsnap.recorder import _quoted_account
from plsnap.source import ServerInfo, Source
from plsnap.units import format_size
from plsnap.verify import verify

#: (status, message): ``ok``, ``warn`` (works, but something an expert would fix) or ``fail``.
Check = tuple[str, str]
OK, WARN, FAIL = "ok", "warn", "fail"
MDL_PLUGIN_HOWTO = (
    "load it with: INSTALL SONAME 'metadata_lock_info'; (or plugin_load_add = metadata_lock_info under [mariadb] "
    "in the server's my.cnf)"
)
MDL_INSTRUMENT_HOWTO = (
    "enable it with: UPDATE performance_schema.setup_instruments SET ENABLED = 'YES', TIMED = 'YES' "
    "WHERE NAME = 'wait/lock/metadata/sql/mdl'; (and GRANT SELECT ON performance_schema.* to the account)"
)
_P_S = re.compile(r"GRANT\s+.*?\s+ON\s+`?performance_schema`?\.\*", re.IGNORECASE)


def run_checks(config: Config, *, connector: Connector | None = None) -> Iterator[Check]:
    """Yield (ok, message) for every check, in order; never raises for an expected failure."""
    yield OK, f"config: {config.path or 'built-in defaults'} is valid"
    warnings: list[str] = []
    try:
        password = resolve_password(config, warn=warnings.append)
    except PlsnapError as exc:
        yield FAIL, f"password: {exc}"
        password = None
    for warning in warnings:
        yield FAIL, f"password: {warning}"
    yield from _check_server(config, password, connector)
    yield from _check_data_dir(config)
    yield from _check_archive(config)


def _check_server(config: Config, password: str | None, connector: Connector | None) -> Iterator[Check]:
    source = Source(config, password, connector=connector)
    try:
        info = source.connect()
    except PlsnapError as exc:
        yield FAIL, f"server: {exc}"
        source.close()
        return
    try:
        tls = "TLS" if info.tls else "no TLS"
        yield OK, f"server: {info.label} ({info.version}), {tls}, source would be {source.kind}"
        account = _quoted_account(info.account) if info.account else "the capture account"
        if source.timeout_error:
            yield FAIL, f"statement timeout: could not be set ({source.timeout_error}); slow queries are not cut"
        if info.visibility == "all":
            yield OK, f"privileges: {account} has PROCESS: all sessions are visible"
        elif info.visibility == "own":
            yield (
                FAIL,
                f"privileges: {account} lacks PROCESS, so only its own sessions are visible; "
                f"run: GRANT PROCESS ON *.* TO {account}",
            )
        else:
            yield FAIL, f"privileges: could not read the grants of {account}; samples may not show every session"
        needs_p_s = source.kind == "performance_schema" and not any(_P_S.search(g) for g in info.grants)
        if needs_p_s and "ALL PRIVILEGES ON *.*" not in " ".join(info.grants).upper():
            yield FAIL, f"privileges: run: GRANT SELECT ON performance_schema.* TO {account}"
        snapshot = source.sample()
        if snapshot.is_gap:
            yield FAIL, f"sample: {snapshot.error}"
        else:
            yield OK, f"sample: {len(snapshot.sessions or ())} sessions in {snapshot.duration_ms:.1f} ms"
            if source.fallback:
                yield FAIL, f"source: {source.fallback}"
            if source.locks_error and info.visibility != "own":
                yield FAIL, f"locks: lock waits cannot be read ({source.locks_error}); needs PROCESS"
            yield from _check_lock_sources(config, info)
    finally:
        source.close()


def _check_lock_sources(config: Config, info: ServerInfo) -> Iterator[Check]:
    """Where the blockers of metadata-lock waits come from (docs/replay.md, "Lock waits")."""
    if not config.capture.locks:
        yield WARN, "locks: [capture] locks = false: lock waits and their blockers are not recorded"
        return
    if info.mdl_source == "metadata_lock_info":
        yield OK, "locks: row locks from InnoDB; metadata locks from the metadata_lock_info plugin"
    elif info.mdl_source == "metadata_locks":
        yield OK, "locks: row locks from data_lock_waits; metadata locks from performance_schema.metadata_locks"
    elif info.flavour == "MariaDB":
        yield (
            WARN,
            (
                "locks: the metadata_lock_info plugin is not loaded, so the holders of metadata locks are inferred, "
                f"not proven; {MDL_PLUGIN_HOWTO}"
            ),
        )
    else:
        yield (
            WARN,
            (
                "locks: performance_schema.metadata_locks cannot be read (instrument off, performance_schema off, or "
                f"no SELECT on it), so the holders of metadata locks are inferred, not proven; {MDL_INSTRUMENT_HOWTO}"
            ),
        )


def _check_data_dir(config: Config) -> Iterator[Check]:
    data_dir = config.data_dir
    probe = data_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        yield FAIL, f"data dir: {probe} is not writable by uid {os.geteuid()} (needed for {data_dir})"
        return
    if probe != data_dir:
        yield OK, f"data dir: {data_dir} does not exist yet; the daemon will create it (0750)"
        return
    try:
        with SafeDir.open_root(data_dir, writable=True) as root:
            total, free = root.free_space()
            instance = validate_instance(config.instance)
            if root.exists(instance):
                root.subdir(instance).close()
    except PlsnapError as exc:
        yield FAIL, f"data dir: {exc}"
        return
    floor = config.retention.min_free.required(total) if config.retention.min_free else 0
    yield (
        OK if free > floor else FAIL,
        f"data dir: {data_dir} writable, {format_size(free)} free of {format_size(total)}",
    )


def _check_archive(config: Config) -> Iterator[Check]:
    try:
        reader = ArchiveReader.open(config.data_dir, config.instance)
    except PlsnapError:
        yield OK, f"archive: {config.instance_dir} holds nothing yet"
        return
    with reader:
        report = verify(reader)
    total = sum(p.partition.size for p in report.partitions)
    snapshots = sum(p.snapshots for p in report.partitions)
    damaged = report.damaged
    yield (
        FAIL if damaged else OK,
        f"archive: {len(report.partitions)} partitions, {format_size(total)}, {snapshots} snapshots"
        + (f"; {len(damaged)} damaged (details: plsnap verify)" if damaged else ", every frame verified"),
    )
    for item in damaged:
        yield FAIL, f"archive: {item.partition.path}: lost {item.lost_text}; {'; '.join(item.problems)[:500]}"
    for foreign in report.foreign:
        yield FAIL if foreign.unreadable else OK, f"archive: left alone: {foreign.path} ({foreign.reason})"
