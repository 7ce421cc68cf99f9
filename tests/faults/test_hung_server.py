"""A hung or slow server (SYN dropped, no handshake, result stalled, greeting dripped a byte at a time): every
attempt ends by its hard deadline, every skipped slot is accounted for by a gap line, nothing piles up, and
SIGTERM is honoured promptly."""

from __future__ import annotations

import itertools
import math
import re
import time
from pathlib import Path

import pytest

from plsnap.model import parse_ts
from tests.faults.tools import MisbehavingServer, proc_sockets, proc_threads, run_daemon
from tests.integration.harness import records, wait_for, write_config

INTERVAL = 1.0
CONNECT_TIMEOUT = 1.2
READ_TIMEOUT = 1.5
DEADLINE = CONNECT_TIMEOUT + READ_TIMEOUT
OBSERVE_SECONDS = 14.0
#: Half of the unit's TimeoutStopSec (30 s): a stop must never come close to systemd's SIGKILL.
STOP_BOUND = 15.0
TIMEOUT_ERROR = re.compile(r"timed out|Lost connection|\(2013\)|deadline", re.IGNORECASE)


def slot(stamp: str) -> int:
    """The aligned slot number of a ts."""
    return math.floor(parse_ts(stamp).timestamp() / INTERVAL)


@pytest.mark.parametrize("behaviour", ["connect-never-completes", "no-handshake", "stall-mid-result", "drip"])
def test_hung_server_attempts_end_by_their_deadline(
    tmp_path: Path, mariadb_running, capture_user, behaviour: str
) -> None:
    """Each attempt ends by connect_timeout + read_timeout with a gap line; the slots it covered are written as
    one gap line carrying the span (slot arithmetic: every slot is either an attempt or counted as missed);
    threads and sockets stay flat; SIGTERM ends the daemon well within TimeoutStopSec."""
    upstream = ("127.0.0.1", mariadb_running.port) if behaviour in ("stall-mid-result", "drip") else None
    with MisbehavingServer(
        upstream=upstream,
        unaccepted=behaviour == "connect-never-completes",
        stall_marker=b"PROCESSLIST" if behaviour == "stall-mid-result" else b"\x00never\x00",
        drip=1.0 if behaviour == "drip" else None,
    ) as hung:
        cfg = write_config(
            tmp_path / "plsnap.toml",
            mariadb_running,
            capture_user,
            interval="1s",
            mysql={
                "socket": "",
                "host": "127.0.0.1",
                "port": hung.port,
                "ssl_mode": "disabled",
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
            wait_for(lambda: len(records(instance_dir)) >= 3, 20, "three lines")
            began = time.monotonic()
            while time.monotonic() - began < OBSERVE_SECONDS:
                assert proc.proc.poll() is None, f"daemon exited:\n{proc.output[-3000:]}"
                threads.append(proc_threads(pid))
                sockets.append(proc_sockets(pid))
                held.append(hung.open_connections)
                time.sleep(0.25)
            wait_for(lambda: hung.accepted > 0 or behaviour == "connect-never-completes", 5, "a connection")
            stop_began = time.monotonic()
            code = proc.stop(timeout=60)
            stop_took = time.monotonic() - stop_began
    found = records(instance_dir)
    attempts = [r for r in found if "gap_since" not in r]
    spans = [r for r in found if "gap_since" in r]
    durations = [r["duration_ms"] / 1000 for r in attempts]
    print(
        f"\n[{behaviour}] attempts={len(attempts)} span lines={len(spans)} "
        f"duration max={max(durations):.2f}s threads={min(threads)}..{max(threads)} "
        f"sockets max={max(sockets)} held max={max(held)} stop={stop_took:.2f}s"
    )
    assert code == 0
    assert stop_took < STOP_BOUND, f"SIGTERM took {stop_took:.1f}s"
    assert all(r["sessions"] is None for r in found), "a hung server produced a non-gap line"
    cut_by_stop = attempts[-1:] if "stopped (shutdown)" in (attempts[-1]["error"] or "") else []
    timed = [r for r in attempts if r not in cut_by_stop]
    assert all(TIMEOUT_ERROR.search(r["error"] or "") for r in timed), sorted({r["error"] for r in attempts})
    assert max(durations) <= DEADLINE + 1.0, durations
    for first, second in itertools.pairwise(attempts[1:]):
        between = [s for s in spans if first["ts"] < s["ts"] < second["ts"]]
        missed = sum(s["missed"] for s in between)
        assert slot(first["ts"]) + missed + 1 == slot(second["ts"]), (first, between, second)
        assert all(slot(s["gap_since"]) == slot(first["ts"]) + 1 for s in between)
    assert max(threads) - min(threads) <= 1, f"daemon thread count not flat: {threads}"
    assert max(sockets) <= 2, f"daemon holds {max(sockets)} sockets: {sockets}"
    assert max(held) <= 1, f"the daemon left connections open at the fake server: {held}"
    if behaviour == "stall-mid-result":
        assert hung.stalls >= 1, "the proxy never stalled a processlist result"
