"""Counters and triggered bursts in the running daemon, against the real server: a 20 s spike inside a 60 s
cadence is caught by the check between samples, sampled every second with InnoDB status at both ends, its DB
time estimated within 10 % of the truth; a second spike within the cooldown starts no burst; a server restart
gives no negative rate."""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from pathlib import Path

from plsnap.model import parse_ts
from tests.devserver import DevServer
from tests.faults.tools import log_events
from tests.integration.harness import daemon, plsnap, records, wait_for, write_config

SLEEPERS = 30
SPIKE_SECONDS = 20


def spike(server: DevServer, seconds: float, marker: str) -> tuple[float, float]:
    """``SLEEPERS`` concurrent ``SELECT SLEEP(seconds)``; returns when they started and ended (Unix time)."""
    conns = [server.root_connect() for _ in range(SLEEPERS)]
    barrier = threading.Barrier(SLEEPERS + 1)

    def run(conn) -> None:
        barrier.wait()
        with conn.cursor() as cur:
            cur.execute(f"SELECT SLEEP({seconds}) /* {marker} */")
            cur.fetchall()
        conn.close()

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in conns]
    for thread in threads:
        thread.start()
    started = time.time()
    barrier.wait()
    for thread in threads:
        thread.join(seconds + 30)
    return started, time.time()


def test_spike_in_a_60s_cadence_is_caught_by_a_burst(tmp_path: Path, mariadb_running: DevServer, capture_user) -> None:
    """threads_running > 20 for 2 checks: the burst starts within a few checks of the spike, samples 1 s apart
    on aligned slots for its duration, records InnoDB status at both ends, and its DB time is within 10 % of the
    truth; a second spike inside the cooldown is refused once, with a log line, and the base cadence resumes."""
    cfg = write_config(
        tmp_path / "plsnap.toml",
        mariadb_running,
        capture_user,
        interval="60s",
        trigger={
            "threads_running": 20,
            "cycles": 2,
            "check_interval": "1s",
            "burst_interval": "1s",
            "burst_duration": "25s",
            "cooldown": "60s",
            "min_free": "0",
        },
    )
    root = tmp_path / "archive" / "default"
    with daemon(cfg) as proc:
        wait_for(lambda: len(records(root)) >= 1, 20, "the first sample")
        first_start, first_end = spike(mariadb_running, SPIKE_SECONDS, "spike-one")
        wait_for(lambda: any(r.get("marker", {}).get("event") == "burst_end" for r in records(root)), 30, "burst end")
        spike(mariadb_running, 4, "spike-two")
        refused = wait_for(lambda: log_events(proc, "burst not started"), 10, "the cooldown refusal")
        assert proc.stop() == 0
    found = records(root)
    markers = [r for r in found if "marker" in r]
    starts = [m for m in markers if m["marker"]["event"] == "burst_start"]
    ends = [m for m in markers if m["marker"]["event"] == "burst_end"]
    assert len(starts) == 1 and len(ends) == 1, [m["marker"]["event"] for m in markers]
    start = starts[0]["marker"]
    assert start["condition"] == "Threads_running > 20 for 2 consecutive checks"
    assert start["values"]["Threads_running"] > 20
    assert "TRANSACTIONS" in start["innodb_status"] and "TRANSACTIONS" in ends[0]["marker"]["innodb_status"]
    burst = [r for r in found if r.get("interval_s") == 1.0 and r.get("sessions") is not None]
    slots = [math.floor(parse_ts(r["ts"]).timestamp()) for r in burst]
    assert slots[0] - math.floor(first_start) <= 5, "the burst starts within a few checks of the spike"
    assert all(b - a == 1 for a, b in itertools.pairwise(slots)), "one sample per 1 s slot"
    assert 20 <= len(burst) <= 26
    assert [e["guard"] for e in refused] == ["cooldown"]
    after_burst = found[found.index(burst[-1]) + 1 :]
    closing = next(r for r in after_burst if r.get("sessions") is not None)
    assert closing["interval_s"] == 60.0, "the burst's last sample carries the base interval again"
    assert after_burst[after_burst.index(closing) + 1]["marker"]["event"] == "burst_end"
    # The window ends at the burst_end marker: a base sample taken during the second spike (same fingerprint)
    # would otherwise add its sessions, weighted up to the window's end.
    window = json.loads(
        plsnap(
            "window", starts[0]["ts"], ends[0]["ts"], "-c", str(cfg), "--format", "json", "--by", "fingerprint"
        ).stdout
    )
    sleep_group = next(g for g in window["top"] if "sleep" in g["key"] and "spike-one" in (g["example"] or ""))
    truth = SLEEPERS * (first_end - parse_ts(starts[0]["ts"]).timestamp())
    assert abs(sleep_group["active_seconds"] - truth) <= 0.1 * truth, (sleep_group["active_seconds"], truth)
    assert any("triggered burst" in w for w in window["warnings"])
    listing = plsnap("snapshots", found[0]["ts"], "-c", str(cfg)).stdout
    assert "burst_start: Threads_running > 20" in listing


def test_counters_and_a_restart(tmp_path: Path, mariadb_running: DevServer, capture_user) -> None:
    """Counters are stored raw with every sample; across a server restart the window has no rate for that
    interval (a reset), and no rate is ever negative; at shows the counters around the instant."""
    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user)
    for _ in range(2):
        assert plsnap("capture", "-c", str(cfg)).returncode == 0
        time.sleep(1.1)
    mariadb_running.stop()
    mariadb_running.start()
    for _ in range(2):
        assert plsnap("capture", "-c", str(cfg)).returncode == 0
        time.sleep(1.1)
    found = records(tmp_path / "archive" / "default")
    assert all(isinstance(r["status"]["Questions"], int) and "Uptime" in r["status"] for r in found)
    window = json.loads(plsnap("window", found[0]["ts"], "now", "-c", str(cfg), "--format", "json").stdout)
    counters = window["counters"]
    assert counters["resets"] == 1
    assert all(r["min"] is None or r["min"] >= 0 for r in counters["rates"].values())
    assert counters["gauges"]["Threads_connected"]["max"] >= 1
    assert counters["series"], "a counters-over-time series"
    at = plsnap("at", found[1]["ts"], "-c", str(cfg))
    assert "server counters" in at.stdout and "Threads_connected" in at.stdout
