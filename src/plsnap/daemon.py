"""The composition root: source -> recorder -> archive under an APScheduler 3.x ``BlockingScheduler``.

Captures run on wall-clock-aligned slots (an ``IntervalTrigger`` anchored at the Unix epoch, so a 5 s interval
fires at :00, :05, ...), with ``max_instances=1`` and ``coalesce=True``: a slow capture skips slots and never
overlaps them. SIGTERM/SIGINT cut the attempt in progress short (its result is not written: a shutdown is not a
failed sample), close the frame and exit 0 within seconds. SIGHUP re-reads the
config: interval, retention and log level apply at once; a bad config is logged and the old one keeps running.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from plsnap import log as plog
from plsnap.bursts import Bursts
from plsnap.config import Config, resolve_password
from plsnap.connection import Connector
from plsnap.errors import PlsnapError
from plsnap.metrics import Metrics, serve
from plsnap.model import format_ts
from plsnap.notify import notify, watchdog_interval
from plsnap.recorder import Recorder
from plsnap.source import Source

log = structlog.get_logger("plsnap")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK_CHECK_SECONDS = 1.0
CLOCK_STEP_SECONDS = 2.0


def aligned_trigger(seconds: float) -> IntervalTrigger:
    """An interval trigger whose slots are multiples of ``seconds`` since the Unix epoch (UTC), no jitter."""
    return IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=UTC)


class Daemon:
    """Runs the capture loop in the foreground until a stop signal."""

    def __init__(
        self,
        config: Config,
        reload: Callable[[], Config] | None = None,
        *,
        connector: Connector | None = None,
    ) -> None:
        self.config = config
        self._reload = reload
        self._connector = connector
        self.metrics = Metrics()
        self.source = Source(config, resolve_password(config, warn=_warn), connector=connector)
        self.recorder = Recorder(config, self.source, metrics=self.metrics)
        self.scheduler = BlockingScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self._stopping = threading.Event()
        self._main_done = threading.Event()
        self._http: Any = None
        self.bursts = Bursts(config.trigger, self.recorder, self.scheduler, self.metrics)

    def healthy(self) -> tuple[bool, str]:
        """(ok, detail): ok while the last capture attempt is recent (stalled after ``stall_seconds``)."""
        last = self.recorder.last_attempt_monotonic
        if last is None:
            return False, "no capture attempt yet"
        age = time.monotonic() - last
        limit = self.config.stall_seconds(self.recorder.last_interval)
        if age > limit:
            return False, f"capture stalled: last attempt {age:.0f}s ago (limit {limit:g}s)"
        snapshot = self.recorder.last_snapshot
        detail = f"last attempt {age:.1f}s ago"
        if snapshot is not None and snapshot.error:
            detail += f"; failing: {snapshot.error}"
        if self.recorder.visibility == "own":
            detail += "; warning: the capture account lacks PROCESS: only its own sessions are visible"
        return True, detail

    def run(self) -> int:
        """Capture until SIGTERM/SIGINT; returns the exit code (0)."""
        cfg = self.config
        log.info(
            "plsnap daemon starting",
            instance=cfg.instance,
            archive=str(cfg.instance_dir),
            interval_s=cfg.capture.interval,
            source=cfg.capture.source,
            config=str(cfg.path) if cfg.path else None,
        )
        self._install_signals()
        if cfg.metrics.listen:
            self._http, _ = serve(cfg.metrics.listen, self.metrics, self.healthy)
            log.info("metrics listening", listen=cfg.metrics.listen)
        self.recorder.start()
        self.bursts.restore(datetime.now(UTC))
        if not self._stopping.is_set():
            self._capture_job()
            self._prune_job()
        notify("READY=1")
        self.scheduler.add_listener(self._on_skip, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self.scheduler.add_job(self._capture_job, aligned_trigger(cfg.capture.interval), id="capture")
        self.scheduler.add_job(self._prune_job, aligned_trigger(cfg.retention.schedule), id="prune")
        self.bursts.install()
        ping = watchdog_interval()
        if ping is not None:
            self.scheduler.add_job(self._watchdog_job, IntervalTrigger(seconds=ping, timezone=UTC), id="watchdog")
        clock_watch = threading.Thread(target=self._watch_clock, name="plsnap-clock", daemon=True)
        clock_watch.start()
        if not self._stopping.is_set():
            self.scheduler.start()
        self._main_done.set()
        self._shutdown()
        return 0

    def _watch_clock(self) -> None:
        """Reschedule when the wall clock steps: APScheduler would otherwise wait out a backward step."""
        offset = time.time() - time.monotonic()
        while not self._stopping.wait(CLOCK_CHECK_SECONDS):
            current = time.time() - time.monotonic()
            step = current - offset
            offset = current
            if abs(step) < CLOCK_STEP_SECONDS or not self.scheduler.running:
                continue
            log.warning("wall clock stepped; rescheduling", step_s=round(step, 3))
            with contextlib.suppress(JobLookupError, SchedulerNotRunningError):
                self.bursts.reschedule_base(aligned_trigger(self.config.capture.interval))
                self.scheduler.reschedule_job("prune", trigger=aligned_trigger(self.config.retention.schedule))

    def _capture_job(self) -> None:
        if self.bursts.running:
            return
        attempt = self.recorder.capture()
        if attempt is None:
            return
        snapshot = attempt.snapshot
        self.bursts.after_sample(snapshot)
        if snapshot.is_gap or not attempt.written:
            status = f"capture failing ({self.recorder.failures or self.recorder.write_failures}x): " + (
                snapshot.error or attempt.write_error or ""
            )
        else:
            status = (
                f"last sample {format_ts(snapshot.ts)}: {len(snapshot.sessions or ())} sessions, "
                f"{snapshot.running} running"
            )
        notify(f"STATUS={status[:200]}")

    def _prune_job(self) -> None:
        try:
            self.recorder.prune(reason="schedule")
        except (OSError, PlsnapError) as exc:
            log.error("retention failed", error=str(exc))

    def _watchdog_job(self) -> None:
        last = self.recorder.last_attempt_monotonic
        limit = self.config.capture.interval + self.config.mysql.connect_timeout + self.config.mysql.read_timeout
        if last is not None and time.monotonic() - last <= limit + 5:
            notify("WATCHDOG=1")

    def _on_skip(self, event: JobSubmissionEvent | JobExecutionEvent) -> None:
        if event.job_id != "capture":
            return
        times = [t for t in getattr(event, "scheduled_run_times", None) or [] if isinstance(t, datetime)]
        self.metrics.skipped.inc(len(times) or 1)
        self.recorder.note_skipped(times, "capture slots skipped: the previous attempt was still running")
        log.debug("capture slot skipped: previous capture still running", slots=len(times))

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: only set the flag; a thread does the rest (no locks are taken in the handler)."""
        del frame
        if self._stopping.is_set():
            return
        self._stopping.set()
        threading.Thread(target=self._stop, args=(signum,), name="plsnap-stop", daemon=True).start()

    def _stop(self, signum: int) -> None:
        notify("STOPPING=1")
        log.info("stopping", signal=signal.Signals(signum).name)
        self.recorder.stop_soon()
        deadline = time.monotonic() + 10
        while not self._main_done.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(SchedulerNotRunningError):
                self.scheduler.shutdown(wait=False)
                return
            self._main_done.wait(0.05)

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        del signum, frame
        threading.Thread(target=self.reload, name="plsnap-reload", daemon=True).start()

    def reload(self) -> None:
        """Re-read the config; apply interval, retention, log level (and connection settings on next tick)."""
        if self._reload is None:
            return
        notify("RELOADING=1\nMONOTONIC_USEC=" + str(time.monotonic_ns() // 1000))
        try:
            new = self._reload()
            if new.instance_dir != self.config.instance_dir:
                raise PlsnapError("changing [archive] data_dir or instance needs a restart")
            password = resolve_password(new, warn=_warn)
        except PlsnapError as exc:
            log.error("config reload rejected; keeping the running config", error=str(exc))
            notify("READY=1")
            return
        except Exception as exc:  # a reload must never die silently and leave systemd in "reloading"
            error = f"internal error: {type(exc).__name__}"
            log.error("config reload rejected; keeping the running config", error=error)
            notify("READY=1")
            return
        old = self.config
        needs_restart = [
            name
            for name, before, after in (
                ("[archive] level", old.archive.level, new.archive.level),
                ("[archive] fsync", old.archive.fsync, new.archive.fsync),
                ("[archive] frame_every", old.archive.frame_every, new.archive.frame_every),
                ("[archive] rollups", old.archive.rollups, new.archive.rollups),
                ("[metrics] listen", old.metrics.listen, new.metrics.listen),
                ("[metrics] heartbeat_file", old.metrics.heartbeat_file, new.metrics.heartbeat_file),
            )
            if before != after
        ]
        if needs_restart:
            log.warning("config change needs a restart to apply; keeping the running value", keys=needs_restart)
        with self.recorder.lock:
            self.config = new
            self.recorder.config = new
            if new.mysql != old.mysql or new.capture != old.capture:
                self.source.close()
                self.source = Source(new, password, connector=self._connector)
                self.recorder.source = self.source
        plog.set_level(new.log.level)
        if new.capture.interval != old.capture.interval:
            self.bursts.reschedule_base(aligned_trigger(new.capture.interval))
        if new.retention.schedule != old.retention.schedule:
            self.scheduler.reschedule_job("prune", trigger=aligned_trigger(new.retention.schedule))
        if new.trigger != old.trigger or new.capture.interval != old.capture.interval:
            self.bursts.reconfigure(new.trigger, new.capture.interval)
        log.info("config reloaded", interval_s=new.capture.interval, log_level=new.log.level)
        notify("READY=1")

    def _shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.bursts.end(interrupted=True)
        if self._http is not None:
            self._http.shutdown()
        self.recorder.mark_stopped()
        self.recorder.close()
        log.info("plsnap daemon stopped", samples=self.recorder.attempts)


def _warn(message: str) -> None:
    log.warning(message)


def run_daemon(config: Config, reload: Callable[[], Config] | None = None, *, sample_lines: bool = False) -> int:
    """Entry point for ``plsnap daemon``; ``sample_lines`` logs every sample at info (someone is watching)."""
    daemon = Daemon(config, reload)
    daemon.recorder.sample_level = "info" if sample_lines else "debug"
    return daemon.run()
