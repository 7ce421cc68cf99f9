"""Source to archive: one capture attempt, written atomically as one line, then the retention guards.

Used by ``plsnap capture`` (once) and by the daemon (every tick). Logs one line per sample at debug, and one
warning per failure streak (plus an info line when it ends), so an outage never floods the journal.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
import structlog

from plsnap import retention
from plsnap.archive.format import encode_line
from plsnap.archive.layout import Partition, list_partitions
from plsnap.archive.reader import ArchiveReader
from plsnap.archive.writer import ArchiveWriter
from plsnap.config import Config, RetentionConfig
from plsnap.errors import ArchiveError, DiskFullError
from plsnap.metrics import Metrics
from plsnap.model import Snapshot, format_ts
from plsnap.source import Source

log = structlog.get_logger("plsnap")


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one capture attempt: the snapshot (maybe a gap) and whether it reached the disk."""

    snapshot: Snapshot
    written: bool
    bytes_written: int
    write_error: str | None


def check_data_dir(path: Path) -> None:
    """Refuse a world-writable archive directory without the sticky bit (anyone could plant or delete files)."""
    for candidate in (path, path.parent):
        try:
            mode = candidate.stat().st_mode
        except FileNotFoundError:
            continue
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            raise ArchiveError(
                f"{candidate} is world-writable: anyone could tamper with the archive; "
                f"run chmod o-w {candidate} (plsnap creates its directories 0750)"
            )
        return


class Recorder:
    """Owns the source, the writer and the retention guards for one instance."""

    def __init__(self, config: Config, source: Source, *, metrics: Metrics | None = None) -> None:
        self.config = config
        self.source = source
        self.metrics = metrics or Metrics()
        check_data_dir(config.instance_dir)
        self.writer = ArchiveWriter(config.instance_dir, level=config.archive.level, fsync=config.archive.fsync)
        self.lock = threading.Lock()
        self.newest_ts: datetime | None = None
        self.last_attempt_monotonic: float | None = None
        self.last_snapshot: Snapshot | None = None
        self.failures = 0
        self.write_failures = 0
        self.attempts = 0
        self.closed = False

    def capture(self) -> Attempt | None:
        """Sample once, append the line, update heartbeat and metrics, and prune if a guard tripped.

        Returns None when the recorder was closed meanwhile (shutdown)."""
        with self.lock:
            if self.closed:
                return None
            snapshot = self.source.sample()
            attempt = self._write(snapshot)
            self._after(attempt)
            if attempt.written and self._guards_set() and retention.guard_tripped(*self._guard_inputs()):
                self._prune(reason="guard")
            return attempt

    def _write(self, snapshot: Snapshot) -> Attempt:
        line = encode_line(snapshot.to_record())
        try:
            try:
                written = self.writer.append(line, snapshot.ts)
            except DiskFullError:
                if not self._guards_set():
                    raise
                self._prune(reason="disk full")
                written = self.writer.append(line, snapshot.ts)
        except ArchiveError as exc:
            return Attempt(snapshot, False, 0, str(exc))
        for note in self.writer.repaired:
            log.warning("partition repaired", detail=note)
        self.writer.repaired.clear()
        return Attempt(snapshot, True, written, None)

    def _after(self, attempt: Attempt) -> None:
        snapshot = attempt.snapshot
        self.attempts += 1
        self.last_attempt_monotonic = time.monotonic()
        self.last_snapshot = snapshot
        m = self.metrics
        m.last_attempt.set(snapshot.ts.timestamp())
        if snapshot.duration_ms is not None:
            m.duration.observe(snapshot.duration_ms / 1000.0)
        if attempt.written:
            m.bytes_written.inc(attempt.bytes_written)
            m.archive_bytes.inc(attempt.bytes_written)
            self.newest_ts = max(self.newest_ts or snapshot.ts, snapshot.ts)
            if self.write_failures:
                log.info("archive writes recovered", failed_writes=self.write_failures)
            self.write_failures = 0
        else:
            m.write_errors.inc()
            self.write_failures += 1
            if self.write_failures == 1:
                log.error("archive write failed", error=attempt.write_error)
        if snapshot.is_gap:
            m.failed.inc()
            self.failures += 1
            if self.failures == 1:
                log.warning("capture failed", error=snapshot.error, instance=snapshot.instance)
            else:
                log.debug("capture failed again", error=snapshot.error, streak=self.failures)
        else:
            sessions = snapshot.sessions or ()
            m.samples.labels(snapshot.source or "").inc()
            m.last_success.set(snapshot.ts.timestamp())
            m.rows.set(len(sessions))
            m.running.set(snapshot.running)
            m.source_info.clear()
            m.source_info.labels(snapshot.source or "", snapshot.server or "").set(1)
            if self.failures:
                log.info("capture recovered", failed_attempts=self.failures, source=snapshot.source)
            self.failures = 0
            log.debug(
                "sample",
                ts=format_ts(snapshot.ts),
                sessions=len(sessions),
                running=snapshot.running,
                duration_ms=snapshot.duration_ms,
                bytes=attempt.bytes_written,
            )
        self._heartbeat(snapshot, attempt)

    def _heartbeat(self, snapshot: Snapshot, attempt: Attempt) -> None:
        path = self.config.heartbeat_path
        body = orjson.dumps(
            {
                "ts": format_ts(snapshot.ts),
                "ok": not snapshot.is_gap and attempt.written,
                "error": snapshot.error or attempt.write_error,
                "pid": os.getpid(),
                "interval_s": self.config.capture.interval,
            }
        )
        temp = path.with_name(path.name + ".tmp")
        with contextlib.suppress(OSError):
            temp.write_bytes(body)
            temp.replace(path)

    def _guards_set(self) -> bool:
        policy = self.config.retention
        return bool(policy.max_bytes or policy.min_free)

    def _guard_inputs(self) -> tuple[list[Partition], RetentionConfig, retention.DiskUsage | None]:
        partitions, _ = list_partitions(self.config.instance_dir)
        self.metrics.archive_bytes.set(sum(p.size for p in partitions))
        try:
            disk = retention.disk_usage(self.config.instance_dir)
        except OSError:
            disk = None
        return partitions, self.config.retention, disk

    def prune(self, *, dry_run: bool = False, reason: str = "schedule") -> list[retention.Decision]:
        """Plan retention now and (unless ``dry_run``) delete; returns every decision."""
        with self.lock:
            return self._prune(dry_run=dry_run, reason=reason)

    def _prune(self, *, dry_run: bool = False, reason: str = "schedule") -> list[retention.Decision]:
        partitions, foreign = list_partitions(self.config.instance_dir)
        for path in foreign:
            log.warning("foreign file in archive left alone", path=str(path))
        if self.newest_ts is None:
            self.newest_ts = ArchiveReader(self.config.instance_dir).newest_ts()
        try:
            disk = retention.disk_usage(self.config.instance_dir)
        except OSError:
            disk = None
        protected = [self.writer.current_partition] if self.writer.current_partition else []
        decisions = retention.plan(
            partitions, self.config.retention, newest_snapshot=self.newest_ts, disk=disk, protected=protected
        )
        if dry_run:
            return decisions
        deleted = retention.delete(decisions, self.config.instance_dir)
        for decision in deleted:
            log.info("partition pruned", path=str(decision.partition.path), reason=decision.reason, trigger=reason)
        self.metrics.pruned.inc(len(deleted))
        remaining, _ = list_partitions(self.config.instance_dir)
        self.metrics.archive_bytes.set(sum(p.size for p in remaining))
        return decisions

    def close(self) -> None:
        """Close the frame, the writer lock and the connection."""
        with self.lock:
            self.closed = True
            try:
                self.writer.close()
            finally:
                self.source.close()
