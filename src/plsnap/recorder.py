"""Source to archive: one capture attempt, written atomically as one line, then the retention guards.

Used by ``plsnap capture`` (once) and by the daemon (every tick). Logs one line per sample at debug, and one
warning per failure streak (plus an info line when it ends), so an outage never floods the journal.

Nothing goes unrecorded silently: when slots are skipped (an attempt outlived its slot) or writes fail (a full
disk), the recorder remembers the span, and as soon as it can write again it writes one gap line, in the
current partition, carrying that span (``gap_since``, ``missed``); a closed hour is never reopened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import structlog

from plsnap import retention
from plsnap.archive.format import encode_line
from plsnap.archive.fs import SafeDir
from plsnap.archive.layout import HEARTBEAT_NAME, Partition, hour_start, list_partitions
from plsnap.archive.reader import ArchiveReader
from plsnap.archive.writer import ArchiveWriter
from plsnap.config import Config, RetentionConfig
from plsnap.errors import ArchiveError, DiskFullError
from plsnap.metrics import Metrics
from plsnap.model import Snapshot, format_ts
from plsnap.rollup import Keeper, rebuild_in_background, utc_now
from plsnap.source import Source

log = structlog.get_logger("plsnap")
#: A pending gap line written just before a sample gets a ts this much earlier, so no two lines share a ts.
JUST_BEFORE = timedelta(milliseconds=1)
#: Writer notes that report routine work, logged at info (every other note is a warning or, for damage, an error).
QUIET_NOTES = frozenset({"partition compacted", "partition kept as written"})


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one capture attempt: the snapshot (maybe a gap) and whether it reached the disk."""

    snapshot: Snapshot
    written: bool
    bytes_written: int
    write_error: str | None


@dataclass(slots=True)
class _Missed:
    since: datetime
    count: int
    reason: str


class Recorder:
    """Owns the source, the writer and the retention guards for one instance."""

    def __init__(self, config: Config, source: Source, *, metrics: Metrics | None = None) -> None:
        self.config = config
        self.source = source
        self.metrics = metrics or Metrics()
        self.writer = ArchiveWriter(
            config.instance_dir,
            level=config.archive.level,
            fsync=config.archive.fsync,
            frame_seconds=config.archive.frame_every,
            compact_level=config.archive.compact_level,
        )
        self.keeper: Keeper | None = None
        if config.archive.rollups:
            rebuild = rebuild_in_background(self.writer.instance_dir, now=utc_now)
            self.keeper = Keeper(self.writer.directory, rebuild=rebuild)
        self.lock = threading.Lock()
        self.newest_ts: datetime | None = None
        self.last_attempt_monotonic: float | None = None
        self.last_snapshot: Snapshot | None = None
        self.last_interval: float = config.capture.interval
        self.failures = 0
        self.write_failures = 0
        self.attempts = 0
        self.closed = False
        self.stopping = False
        self.sample_level = "debug"
        self.visibility: str | None = None
        self._missed: _Missed | None = None
        self._missed_lock = threading.Lock()
        self._log_notes()

    @property
    def instance_dir(self) -> Path:
        """Where this recorder writes."""
        return self.writer.instance_dir

    def start(self) -> None:
        """Before the first capture: apply retention (which may free the space a repair needs), then finish
        the partition a crashed writer left open. Failures are logged; the first append retries the repair."""
        with self.lock:
            try:
                self._prune(reason="start-up")
            except (OSError, ArchiveError) as exc:
                log.error("retention failed", error=str(exc))
            try:
                self.writer.recover()
            except ArchiveError as exc:
                log.error("repair deferred", error=str(exc))
            self._log_notes()

    def capture(self, *, interval: float | None = None) -> Attempt | None:
        """Sample once, append the line, update heartbeat and metrics, and prune if a guard tripped.
        ``interval`` is the cadence of the sample (a burst's; default the configured one).

        Returns None when the recorder was closed meanwhile (shutdown)."""
        with self.lock:
            if self.closed or self.stopping:
                return None
            snapshot = self.source.sample(interval)
            if self.stopping:
                return None
            attempt = self._write(snapshot)
            self._after(attempt)
            if attempt.written and self._missed is not None:
                self._flush_missed(datetime.now(UTC))
            if attempt.written and self._guards_set() and retention.guard_tripped(*self._guard_inputs()):
                self._prune(reason="guard")
            return attempt

    def write_marker(self, marker: dict[str, Any]) -> bool:
        """Append an event line (a burst starting or ending); False when it could not be written."""
        with self.lock:
            if self.closed:
                return False
            line = Snapshot(
                ts=datetime.now(UTC),
                instance=self.source.instance,
                source=None,
                server=None,
                duration_ms=None,
                error=None,
                sessions=None,
                interval_s=None,
                extra={"marker": marker},
            )
            try:
                self._append(line.to_record(), line)
            except ArchiveError as exc:
                log.error("marker not written", event=marker.get("event"), error=str(exc))
                return False
            return True

    def innodb_status(self) -> str | None:
        """SHOW ENGINE INNODB STATUS through the source, redacted (None when refused or not connected)."""
        with self.lock:
            return None if self.closed else self.source.innodb_status()

    def note_skipped(self, slots: list[datetime], reason: str) -> None:
        """Record scheduled samples that did not happen (the daemon's skip listener; never waits for a capture
        in progress). The gap line is written as soon as the recorder can write."""
        if slots:
            self._remember(min(slots), len(slots), reason)

    def _remember(self, since: datetime, count: int, reason: str) -> None:
        with self._missed_lock:
            if self._missed is None:
                self._missed = _Missed(since, count, reason)
            else:
                self._missed.since = min(self._missed.since, since)
                self._missed.count += count
                if reason not in self._missed.reason:
                    self._missed.reason += f"; {reason}"

    def _flush_missed(self, ts: datetime) -> bool:
        """Write the pending gap line (ts ``ts``, in the current partition); False when it could not be
        written (it stays pending)."""
        with self._missed_lock:
            missed, self._missed = self._missed, None
        if missed is None:
            return True
        gap = Snapshot(
            ts=max(ts, missed.since),
            instance=self.source.instance,
            source=None,
            server=None,
            duration_ms=None,
            error=f"no samples recorded: {missed.reason}",
            sessions=None,
            interval_s=self.config.capture.interval,
            extra={"gap_since": format_ts(missed.since), "missed": missed.count},
        )
        try:
            self._append(gap.to_record(), gap)
        except ArchiveError:
            self._remember(missed.since, missed.count, missed.reason)
            return False
        return True

    def _write(self, snapshot: Snapshot) -> Attempt:
        record = snapshot.to_record()
        try:
            try:
                if self._missed is not None and not self._flush_missed(_just_before(snapshot.ts)):
                    raise DiskFullError("the pending gap line could not be written")
                written = self._append(record, snapshot)
            except DiskFullError:
                if not self._guards_set():
                    raise
                self._prune(reason="disk full")
                if self._missed is not None:
                    self._flush_missed(_just_before(snapshot.ts))
                written = self._append(record, snapshot)
        except ArchiveError as exc:
            self._remember(snapshot.ts, 1, f"archive writes failed: {exc}")
            self._log_notes()
            return Attempt(snapshot, False, 0, str(exc))
        self._log_notes()
        return Attempt(snapshot, True, written, None)

    def _append(self, record: dict[str, Any], snapshot: Snapshot) -> int:
        """Append the line of ``record``, then hand the record (and the frames the writer closed) to the rollup
        keeper."""
        written = self.writer.append(encode_line(record), snapshot.ts)
        frames, self.writer.closed_frames = self.writer.closed_frames, []
        if self.keeper is not None:
            self.keeper.feed(record, opened=self.writer.opened, fresh=self.writer.fresh, frames=frames)
        return written

    def _log_notes(self) -> None:
        for event, detail in self.writer.notes:
            emit = log.error if event.startswith("damaged") else log.info if event in QUIET_NOTES else log.warning
            emit(event, detail=detail)
        self.writer.notes.clear()

    def _after(self, attempt: Attempt) -> None:
        snapshot = attempt.snapshot
        self.attempts += 1
        self.last_attempt_monotonic = time.monotonic()
        self.last_snapshot = snapshot
        self.last_interval = self.config.capture.interval
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
            self._on_sample(snapshot, attempt)
        self._heartbeat(snapshot, attempt)

    def _on_sample(self, snapshot: Snapshot, attempt: Attempt) -> None:
        m = self.metrics
        sessions = snapshot.sessions or ()
        m.samples.labels(snapshot.source or "").inc()
        m.last_success.set(snapshot.ts.timestamp())
        m.rows.set(len(sessions))
        m.running.set(snapshot.running)
        m.source_info.clear()
        m.source_info.labels(snapshot.source or "", snapshot.server or "").set(1)
        visibility = snapshot.visibility or "unknown"
        m.visibility.clear()
        m.visibility.labels(visibility).set(1)
        if visibility != self.visibility:
            if visibility == "own":
                account = snapshot.extra.get("account") or "the capture account"
                log.warning(
                    "capture account lacks the PROCESS privilege: samples show only its own sessions",
                    account=account,
                    fix=f"GRANT PROCESS ON *.* TO {_quoted_account(str(account))}",
                )
            elif visibility == "unknown":
                log.warning("could not tell whether the capture account may see every session (SHOW GRANTS failed)")
            elif self.visibility is not None:
                log.info("capture account now sees every session")
            self.visibility = visibility
        if self.failures:
            log.info("capture recovered", failed_attempts=self.failures, source=snapshot.source)
        self.failures = 0
        log.log(
            logging.INFO if self.sample_level == "info" else logging.DEBUG,
            "sample",
            ts=format_ts(snapshot.ts),
            sessions=len(sessions),
            running=snapshot.running,
            duration_ms=snapshot.duration_ms,
            bytes=attempt.bytes_written,
        )

    def _heartbeat(self, snapshot: Snapshot, attempt: Attempt) -> None:
        body = orjson.dumps(
            {
                "ts": format_ts(snapshot.ts),
                "ok": not snapshot.is_gap and attempt.written,
                "error": snapshot.error or attempt.write_error,
                "pid": os.getpid(),
                "interval_s": self.config.capture.interval,
                "visibility": self.visibility,
                "account": snapshot.extra.get("account") if not snapshot.is_gap else None,
                "running": True,
            }
        )
        with contextlib.suppress(OSError, ArchiveError):
            self._write_heartbeat(body)

    def _write_heartbeat(self, body: bytes, *, durable: bool = False) -> None:
        """Replace the heartbeat atomically. Only the last one (``durable``) is fsynced: a beat is rewritten every
        sample and a lost one costs nothing, while two fsyncs per sample would triple the capture's I/O waits on
        a slow disk (at 1 s, slots were skipped)."""
        configured = self.config.metrics.heartbeat_file
        if not configured:
            self.writer.directory.atomic_write(HEARTBEAT_NAME, body, fsync=durable, replace_any=True)
            return
        path = Path(configured).expanduser()
        with SafeDir.open_root(path.parent, writable=True, create=True) as folder:
            folder.atomic_write(path.name, body, fsync=durable, replace_any=True)

    def mark_stopped(self) -> None:
        """Say in the heartbeat that the daemon stopped cleanly (``plsnap health`` then reports it stopped)."""
        snapshot = self.last_snapshot
        body = orjson.dumps(
            {
                "ts": format_ts(snapshot.ts) if snapshot else None,
                "ok": False,
                "error": "the daemon stopped",
                "pid": os.getpid(),
                "interval_s": self.last_interval,
                "visibility": self.visibility,
                "running": False,
            }
        )
        with contextlib.suppress(OSError, ArchiveError):
            self._write_heartbeat(body, durable=True)

    def _guards_set(self) -> bool:
        policy = self.config.retention
        return bool(policy.max_bytes or policy.min_free)

    def _guard_inputs(self) -> tuple[list[Partition], RetentionConfig, retention.DiskUsage | None]:
        partitions = list_partitions(self.writer.directory).partitions
        self.metrics.archive_bytes.set(sum(p.size for p in partitions))
        try:
            disk = retention.disk_usage(self.writer.directory)
        except OSError:
            disk = None
        return partitions, self.config.retention, disk

    def prune(self, *, dry_run: bool = False, reason: str = "schedule") -> list[retention.Decision]:
        """Plan retention now and (unless ``dry_run``) delete; returns every decision."""
        with self.lock:
            return self._prune(dry_run=dry_run, reason=reason)

    def _prune(self, *, dry_run: bool = False, reason: str = "schedule") -> list[retention.Decision]:
        if self.newest_ts is None:
            with ArchiveReader(self.instance_dir) as reader:
                self.newest_ts = reader.newest_ts()
        current = self.writer.current_partition
        outcome = retention.run(
            self.writer.directory,
            self.config.retention,
            newest_snapshot=self.newest_ts,
            protected=[current] if current else [],
            dry_run=dry_run,
        )
        for item in outcome.listing.foreign:
            log.warning("foreign file in archive left alone", path=str(item.path), reason=item.reason)
        for refusal in outcome.refused:
            log.error("retention refused", detail=refusal)
        for decision in outcome.deleted:
            log.info(
                "partition pruned",
                path=str(decision.partition.path),
                files=len(decision.partition.names),
                reason=decision.reason,
                trigger=reason,
            )
        self.metrics.pruned.inc(len(outcome.deleted))
        kept = {d.partition.path for d in outcome.decisions if d.keep}
        self.metrics.archive_bytes.set(sum(p.size for p in outcome.listing.partitions if p.path in kept))
        return outcome.decisions

    def stop_soon(self) -> None:
        """From any thread: cut the attempt in progress short and take no new one (its result is not written:
        a shutdown is not a failed sample)."""
        self.stopping = True
        self.source.abort()

    def close(self) -> None:
        """Close the frame, the writer lock and the connection."""
        with self.lock:
            self.closed = True
            try:
                try:
                    self.writer.close_partition()
                    if self.keeper is not None:
                        frames, self.writer.closed_frames = self.writer.closed_frames, []
                        self.keeper.close(frames)
                finally:
                    self.writer.close()
            finally:
                self.source.close()


def _just_before(ts: datetime) -> datetime:
    """1 ms before ``ts``, but never in the previous hour (a closed partition is never reopened)."""
    return max(ts - JUST_BEFORE, hour_start(ts))


def _quoted_account(account: str) -> str:
    """``'user'@'host'`` from ``user@host`` (as CURRENT_USER() returns it)."""
    user, _, host = account.rpartition("@")
    if not user:
        return f"'{account}'"
    return f"'{user}'@'{host}'"
