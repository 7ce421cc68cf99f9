"""Prometheus metrics and the ``/healthz`` endpoint, served from one small WSGI server thread.

Metrics live in a private registry, so tests and several daemons in one process never collide.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from plsnap.errors import PlsnapError

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The daemon's counters and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.samples = Counter("plsnap_samples", "Capture attempts that stored a snapshot", ["source"], registry=r)
        self.failed = Counter("plsnap_samples_failed", "Capture attempts that stored a gap line", registry=r)
        self.skipped = Counter("plsnap_samples_skipped", "Scheduled captures skipped (overrun)", registry=r)
        self.write_errors = Counter("plsnap_write_errors", "Archive writes that failed", registry=r)
        self.last_success = Gauge(
            "plsnap_last_success_timestamp_seconds", "Unix time of the last stored snapshot", registry=r
        )
        self.last_attempt = Gauge(
            "plsnap_last_attempt_timestamp_seconds", "Unix time of the last capture attempt", registry=r
        )
        self.duration = Histogram(
            "plsnap_capture_duration_seconds",
            "Time to sample the processlist",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.rows = Gauge("plsnap_sessions", "Sessions in the last snapshot", registry=r)
        self.running = Gauge("plsnap_sessions_running", "Sessions running a statement in the last snapshot", registry=r)
        self.bytes_written = Counter("plsnap_archive_written_bytes", "Compressed bytes appended", registry=r)
        self.archive_bytes = Gauge("plsnap_archive_size_bytes", "Total size of all partitions", registry=r)
        self.pruned = Counter("plsnap_partitions_pruned", "Partitions deleted by retention", registry=r)
        self.source_info = Gauge(
            "plsnap_source_info", "The processlist source in use", ["source", "server"], registry=r
        )
        self.bursts = Counter("plsnap_bursts", "Triggered bursts started", registry=r)
        self.burst_samples = Counter("plsnap_burst_samples", "Samples taken during bursts", registry=r)
        self.bursts_suppressed = Counter(
            "plsnap_bursts_suppressed", "Bursts a guard did not let start", ["reason"], registry=r
        )
        self.trigger_checks = Counter("plsnap_trigger_checks", "Counter checks between samples", registry=r)
        self.visibility = Gauge(
            "plsnap_capture_visibility",
            "What the capture account sees: all sessions, only its own (no PROCESS privilege), or unknown",
            ["visibility"],
            registry=r,
        )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Access logs are not wanted."""


def serve(
    listen: str, metrics: Metrics, healthy: Callable[[], tuple[bool, str]]
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` and ``/healthz`` on ``listen`` (``host:port``) from a daemon thread."""
    host, _, port = listen.rpartition(":")
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok, detail = healthy()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [detail.encode() + b"\n"]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    try:
        server = make_server(host.strip("[]") or "0.0.0.0", int(port), app, handler_class=_QuietHandler)  # noqa: S104
    except OSError as exc:
        raise PlsnapError(f"[metrics] listen = {listen}: cannot listen there: {exc.strerror or exc}") from None
    thread = threading.Thread(target=server.serve_forever, name="plsnap-metrics", daemon=True)
    thread.start()
    return server, thread
