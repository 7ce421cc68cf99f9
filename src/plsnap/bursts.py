"""Triggered bursts in the running daemon: a cheap check between samples, and when a ``[trigger]`` condition
holds, samples every ``burst_interval`` for ``burst_duration`` plus ``SHOW ENGINE INNODB STATUS`` at both ends,
bracketed by marker lines in the archive.

The decisions are :mod:`plsnap.trigger`'s; this module only schedules. Everything goes through the recorder's
lock and the source's one connection: a burst never opens a second connection. While a burst runs, the base
capture job is paused; when it ends, one last sample carries the base interval (so that its weight reaches the
next base slot) and the base cadence resumes on its own aligned slots.
"""

from __future__ import annotations

import contextlib
import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from plsnap.archive.format import parse_line
from plsnap.archive.reader import ArchiveReader
from plsnap.config import TriggerConfig
from plsnap.counters import lookup
from plsnap.errors import ArchiveError
from plsnap.metrics import Metrics
from plsnap.model import Snapshot, parse_ts
from plsnap.recorder import Recorder
from plsnap.trigger import Fired, Guards, Trigger

log = structlog.get_logger("plsnap")
#: The most history (seconds) a starting daemon reads for earlier bursts: a cooldown longer than this is taken
#: up from this span's markers only.
RESTORE_SPAN_S = 86400.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Bursts:
    """Owns the trigger state, the guards and the burst jobs of one daemon."""

    def __init__(self, config: TriggerConfig, recorder: Recorder, scheduler: BaseScheduler, metrics: Metrics) -> None:
        self.config = config
        self.recorder = recorder
        self.scheduler = scheduler
        self.metrics = metrics
        self.trigger = Trigger(config)
        self.guards = Guards(config)
        self._refused: set[str] = set()
        self._told_missing = False
        self._base_interval = recorder.config.capture.interval
        #: Held while the base job is paused, resumed or rescheduled: a reload during a burst keeps it paused.
        self._base = threading.Lock()

    @property
    def enabled(self) -> bool:
        """True when a condition is configured."""
        return self.config.enabled

    @property
    def running(self) -> bool:
        """True while a burst samples."""
        return self.guards.running

    def restore(self, now: datetime) -> None:
        """Take up the guards' state from the markers an earlier run wrote (the last hour, or the cooldown if
        longer, at most :data:`RESTORE_SPAN_S`: start-up must not decompress a week): a restart does not reset the
        cooldown or the count per hour. Unreadable history is logged and taken as none."""
        if not self.enabled:
            return
        since = now - timedelta(seconds=min(RESTORE_SPAN_S, max(3600.0, self.config.cooldown)))
        events: list[tuple[datetime, str]] = []
        try:
            with ArchiveReader(self.recorder.instance_dir) as reader:
                for line in reader.iter_lines(since):
                    if b'"burst_' not in line:
                        continue
                    record = parse_line(line)
                    marker = record.get("marker") if record else None
                    if isinstance(marker, dict) and marker.get("event") in ("burst_start", "burst_end"):
                        events.append((parse_ts(str(record["ts"])), str(marker["event"])))  # type: ignore[index]
        except (OSError, ArchiveError, ValueError, TypeError, KeyError) as exc:
            log.warning("earlier bursts not read; the guards start afresh", error=str(exc))
            return
        if events:
            self.guards.restore(events, now)
            log.info("burst guards taken up from the archive", bursts=len(self.guards.started),
                     last_end=self.guards.last_end.isoformat() if self.guards.last_end else None)  # fmt: skip

    def install(self) -> None:
        """Schedule the between-sample check (only when a condition reads counters)."""
        if self.enabled and self.config.counters:
            self.scheduler.add_job(
                self.check, _aligned(self.config.check_interval), id="trigger-check", replace_existing=True
            )

    def reconfigure(self, config: TriggerConfig, base_interval: float) -> None:
        """Apply a reloaded ``[trigger]`` section (the running burst, if any, runs to its end)."""
        self.config = config
        self._base_interval = base_interval
        self.trigger = Trigger(config)
        self._told_missing = False
        self.guards.config = config
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job("trigger-check")
        self.install()

    def after_sample(self, snapshot: Snapshot) -> None:
        """Evaluate the processlist conditions on a sample the daemon just took."""
        if self.enabled and not self.running:
            fired = self.trigger.check_sample(snapshot)
            if fired is not None:
                self.fire(fired)

    def check(self) -> None:
        """The cheap check between samples: the conditions' counters, on the same connection. Skipped while a
        capture or a burst is running (their samples are checked themselves)."""
        if self.running or not self.recorder.lock.acquire(blocking=False):
            return
        try:
            if self.recorder.closed or self.recorder.stopping:
                return
            status = self.recorder.source.read_counters(self.config.counters)
        finally:
            self.recorder.lock.release()
        if status is None:
            return
        self.metrics.trigger_checks.inc()
        missing = [name for name, _ in self.config.rates if lookup(status, name) is None]
        if missing and not self._told_missing:
            self._told_missing = True
            log.warning("rate condition on a counter the server does not report: it cannot fire", counters=missing)
        numbers = {k: float(v) for k, v in status.items()}
        fired = self.trigger.check_counters(datetime.now(UTC), numbers)
        if fired is not None:
            self.fire(fired)

    def fire(self, fired: Fired) -> None:
        """Start a burst for ``fired`` unless a guard says no (said once per guard, until a burst starts)."""
        now = datetime.now(UTC)
        try:
            disk = self.recorder.writer.directory.free_space()
        except OSError:
            disk = None
        refusal = self.guards.refusal(now, disk)
        if refusal is not None:
            if refusal != "burst running":
                self.metrics.bursts_suppressed.labels(refusal).inc()
                if refusal not in self._refused:
                    self._refused.add(refusal)
                    log.warning("burst not started", guard=refusal, condition=fired.condition)
            return
        self._refused.clear()
        self.guards.start(now)
        self.metrics.bursts.inc()
        end = burst_end(now, self.config.burst_duration, self.config.burst_interval)
        log.warning(
            "burst started",
            condition=fired.condition,
            values=dict(fired.values),
            interval_s=self.config.burst_interval,
            until=end.isoformat(),
        )
        detail: dict[str, Any] = {
            **fired.to_record(),
            "interval_s": self.config.burst_interval,
            "duration_s": self.config.burst_duration,
        }
        self._marker("burst_start", detail)
        with self._base, contextlib.suppress(JobLookupError):
            self.scheduler.pause_job("capture")
        self.scheduler.add_job(
            self._burst_sample,
            IntervalTrigger(
                seconds=self.config.burst_interval, start_date=EPOCH, end_date=end - _JUST_BEFORE, timezone=UTC
            ),
            id="burst",
            replace_existing=True,
        )
        self.scheduler.add_job(self.end, DateTrigger(run_date=end, timezone=UTC), id="burst-end", replace_existing=True)

    def _burst_sample(self) -> None:
        attempt = self.recorder.capture(interval=self.config.burst_interval)
        if attempt is not None:
            self.metrics.burst_samples.inc()

    def end(self, *, interrupted: bool = False) -> None:
        """End the running burst: a last sample at the base interval, the closing marker, the base job back."""
        if not self.running:
            return
        for job in ("burst", "burst-end"):
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(job)
        if not interrupted:
            self.recorder.capture(interval=self._base_interval)
        self._marker("burst_end", {"interrupted": interrupted})
        self.guards.end(datetime.now(UTC))
        log.info("burst ended", interrupted=interrupted)
        if not interrupted:
            with self._base, contextlib.suppress(JobLookupError):
                self.scheduler.resume_job("capture")

    def reschedule_base(self, trigger: Any) -> None:
        """Give the base capture job a new trigger (a reload, a clock step); it stays paused while a burst runs
        (APScheduler's reschedule would resume it). The job itself also takes no sample while a burst runs: a
        pause from inside the job can lose the race with the scheduler setting its next run."""
        with self._base:
            self.scheduler.reschedule_job("capture", trigger=trigger)
            if self.running:
                self.scheduler.pause_job("capture")

    def _marker(self, event: str, detail: dict[str, Any]) -> None:
        innodb = None
        if self.config.innodb_status:
            innodb = self.recorder.innodb_status()
        self.recorder.write_marker({"event": event, **detail, **({"innodb_status": innodb} if innodb else {})})


#: APScheduler's ``end_date`` is inclusive: the burst's last slot is the one before its end.
_JUST_BEFORE = timedelta(microseconds=1)


def burst_end(now: datetime, duration: float, interval: float) -> datetime:
    """When a burst that starts at ``now`` ends: the first slot of its ``interval`` grid (aligned to the
    epoch, seconds) at or after ``now + duration``, where the closing sample is taken in place of a burst
    sample (never two samples milliseconds apart)."""
    target = (now - EPOCH).total_seconds() + duration
    return EPOCH + timedelta(seconds=math.ceil(target / interval - 1e-9) * interval)


def _aligned(seconds: float) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=UTC)
