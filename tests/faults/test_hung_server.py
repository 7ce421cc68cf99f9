"""A hung server (SYN dropped, no handshake, result stalled by a proxy): bounded attempts, nothing piles up."""

from __future__ import annotations

import itertools
import math
import re
import time
from pathlib import Path

import pytest

from plsnap.model import parse_ts
from tests.faults.tools import (
    MisbehavingServer,
    log_events,
    median,
    proc_sockets,
    proc_threads,
    run_daemon,
    stop_daemon,
)
from tests.integration.harness import records, wait_for, write_config

INTERVAL = 1.0
# Timeouts are not whole multiples of the interval: with an attempt of exactly 1 s or 2 s, whether the next slot
# still finds it running is a race of a few milliseconds, and the expected cadence would be ambiguous.
CONNECT_TIMEOUT = 1.2
READ_TIMEOUT = 1.5
OBSERVE_SECONDS = 18.0
TIMEOUT_ERROR = re.compile(r"timed out|Lost connection|\(2013\)", re.IGNORECASE)


@pytest.mark.parametrize(
    ("behaviour", "timeout"),
    [("connect-never-completes", CONNECT_TIMEOUT), ("no-handshake", READ_TIMEOUT), ("stall-mid-result", READ_TIMEOUT)],
)
def test_hung_server_attempts_end_at_their_timeout(
    tmp_path: Path, mariadb_running, capture_user, behaviour: str, timeout: float
) -> None:
    """Each attempt ends at its timeout with a gap line; slots are skipped, never piled up; threads/sockets flat."""
    upstream = ("127.0.0.1", mariadb_running.port) if behaviour == "stall-mid-result" else None
    with MisbehavingServer(upstream=upstream, unaccepted=behaviour == "connect-never-completes") as hung:
        cfg = write_config(
            tmp_path / "plsnap.toml",
            mariadb_running,
            capture_user,
            interval="1s",
            mysql={
                "socket": "",
                "host": "127.0.0.1",
                "port": hung.port,
                "ssl_mode": "disabled",  # the proxy must see the statement text
                "connect_timeout": f"{CONNECT_TIMEOUT}s",
                "read_timeout": f"{READ_TIMEOUT}s",
                "write_timeout": f"{READ_TIMEOUT}s",
            },
        )
        instance_dir = tmp_path / "archive" / "default"
        threads: list[int] = []
        sockets: list[int] = []
        held: list[int] = []
        with run_daemon(cfg) as proc:
            pid = proc.proc.pid
            wait_for(lambda: len(records(instance_dir)) >= 2, 15, "two attempts")
            began = time.time()
            while time.time() - began < OBSERVE_SECONDS:
                assert proc.proc.poll() is None, f"daemon exited:\n{proc.output[-3000:]}"
                threads.append(proc_threads(pid))
                sockets.append(proc_sockets(pid))
                held.append(hung.open_connections)
                time.sleep(0.25)
            ended = time.time()
            assert stop_daemon(proc) == 0, proc.output[-3000:]
        accepted, stalls = hung.accepted, hung.stalls
    found = records(instance_dir)
    window = [r for r in found if began <= parse_ts(r["ts"]).timestamp() < ended]
    durations = [r["duration_ms"] / 1000 for r in window]
    stamps = [parse_ts(r["ts"]).timestamp() for r in found]
    steps = [b - a for a, b in itertools.pairwise(stamps[1:])]  # the first attempt, at start-up, is off-slot
    period = math.ceil(timeout / INTERVAL) * INTERVAL
    expected = (ended - began) / period
    skipped = log_events(proc, "capture slot skipped")
    apscheduler_skips = [e for e in log_events(proc) if "skipped: maximum number of running" in str(e.get("event"))]
    listener_errors = log_events(proc, "Error notifying listener")
    half = len(threads) // 2
    errors = sorted({r["error"] or "" for r in window})
    figures = {
        "attempts": f"{len(window)} in {ended - began:.1f}s (expected ~{expected:.1f}, one per {period:.0f}s)",
        "attempt duration min/median/max": f"{min(durations):.3f}/{median(durations):.3f}/{max(durations):.3f}s",
        "step between attempts min/max": f"{min(steps):.3f}/{max(steps):.3f}s",
        "'capture slot skipped' warnings": len(skipped),
        "APScheduler skip warnings": len(apscheduler_skips),
        "listener errors": len(listener_errors),
        "connections accepted/stalled": f"{accepted}/{stalls}",
        "daemon threads min/max": f"{min(threads)}/{max(threads)}",
        "daemon sockets min/max": f"{min(sockets)}/{max(sockets)}",
        "connections held at the fake server max": max(held),
        "errors": errors,
    }
    print(f"\n[hung server: {behaviour}, timeout {timeout}s] " + "; ".join(f"{k}={v}" for k, v in figures.items()))
    assert all(r["sessions"] is None for r in found), "a hung server produced a non-gap line"
    assert all(TIMEOUT_ERROR.search(r["error"] or "") for r in found), errors
    assert all(timeout * 0.95 <= d <= timeout + 0.5 for d in durations), durations
    assert abs(len(window) - expected) <= 1.5, f"{len(window)} attempts in {ended - began:.1f}s"
    assert all(period - 0.1 <= s <= period + 0.1 for s in steps), f"attempts not on schedule: {steps}"
    assert not listener_errors, (
        "the daemon's skip listener raised: " + str(listener_errors[0].get("exception", listener_errors[0]))[-600:]
    )
    assert len(skipped) >= len(found) - 2, "slots overlapping a running attempt must be logged as skipped"
    assert max(threads[half:]) <= max(threads[:half]), f"daemon threads grew: {threads}"
    assert max(threads) - min(threads) <= 1, f"daemon thread count not flat: {threads}"
    assert max(sockets) <= 2, f"daemon holds {max(sockets)} sockets: {sockets}"
    assert max(held) <= 1, f"the daemon left connections open at the fake server: {held}"
    if behaviour == "stall-mid-result":
        assert stalls >= len(window), "the proxy never stalled a processlist result"
