"""Ten server outages under a running daemon: a gap line for every tick while down, prompt resumption."""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path

from plsnap.model import parse_ts
from tests.faults.tools import log_events, median, run_daemon, stop_daemon, wait_until
from tests.integration.harness import records, wait_for_records, write_config

OUTAGES = 10
DOWN_SECONDS = (1.2, 3.5)  # random pause after stop() returns; the stop and the boot add to the downtime
UP_SECONDS = 1.0  # after the first good sample, before the next outage
INTERVAL = 1.0


def test_daemon_rides_out_ten_server_outages(tmp_path: Path, mariadb_running, capture_user) -> None:
    """Stop/start mariadbd 10 times: the daemon keeps running, records a gap per tick, resumes within a tick."""
    server = mariadb_running
    cfg = write_config(tmp_path / "plsnap.toml", server, capture_user, interval="1s")
    instance_dir = tmp_path / "archive" / "default"
    windows: list[tuple[float, float]] = []  # (stop() called, start() returned), wall-clock seconds
    resume: list[float] = []
    rng = random.Random(5)
    with run_daemon(cfg) as proc:
        try:
            wait_for_records(instance_dir, 2, error=None)
            for _ in range(OUTAGES):
                stop_called = time.time()
                server.stop()
                time.sleep(rng.uniform(*DOWN_SECONDS))
                server.start()
                back = time.time()
                windows.append((stop_called, back))

                def first_good(stopped: float = stop_called) -> float | None:
                    good = [
                        parse_ts(r["ts"]).timestamp()
                        for r in records(instance_dir)
                        if r["error"] is None and parse_ts(r["ts"]).timestamp() > stopped
                    ]
                    return min(good) if good else None

                first = wait_until(first_good, 10.0, poll=0.05)
                assert first is not None, f"no good sample within 10s of the server coming back:\n{proc.output[-2000:]}"
                resume.append(first - back)
                assert proc.proc.poll() is None, f"daemon exited during the outages:\n{proc.output[-3000:]}"
                time.sleep(UP_SECONDS)
        finally:
            server.start()  # never leave the session server down, whatever failed
        assert proc.proc.poll() is None, f"daemon exited during the outages:\n{proc.output[-3000:]}"
        assert stop_daemon(proc) == 0, proc.output[-3000:]
    found = records(instance_dir)
    stamps = [parse_ts(r["ts"]).timestamp() for r in found]
    holes = [b - a for a, b in itertools.pairwise(stamps)]
    gaps = [(parse_ts(r["ts"]).timestamp(), r) for r in found if r["sessions"] is None]
    per_outage = []
    for began, back in windows:
        inside = [r for ts, r in gaps if began - 0.01 <= ts <= back + 0.01]
        per_outage.append((len(inside), (back - began) / INTERVAL))
    stray = [r["ts"] for ts, r in gaps if not any(b - 0.01 <= ts <= e + 0.01 for b, e in windows)]
    skipped = log_events(proc, "capture slot skipped")
    skipped += [e for e in log_events(proc) if "skipped: maximum number of running" in str(e.get("event"))]
    warned = [e for e in log_events(proc, "capture failed") if e["event"] == "capture failed"]
    recovered = log_events(proc, "capture recovered")
    print(
        f"\n[server outage] outages={OUTAGES} gaps recorded={len(gaps)} "
        f"(per outage recorded/expected: {[f'{n}/{e:.1f}' for n, e in per_outage]}); "
        f"time to resume after start() returned: max={max(resume):.3f}s median={median(resume):.3f}s; "
        f"largest hole between records={max(holes):.3f}s; "
        f"skipped-slot warnings (plsnap's or APScheduler's)={len(skipped)}; "
        f"'capture failed' warnings={len(warned)} 'capture recovered'={len(recovered)}"
    )
    assert all(r["error"] for _, r in gaps), "a gap line without an error message"
    assert not stray, f"gap lines while the server was up: {stray[:5]}"
    for recorded, expected in per_outage:
        assert recorded >= 1, "an outage left no gap line"
        assert abs(recorded - expected) <= 1.5, f"{recorded} gap lines for {expected:.1f} ticks of downtime"
    assert max(holes) <= 2 * INTERVAL + 0.1, f"a hole of {max(holes):.2f}s between records: a slot went missing"
    assert max(resume) <= INTERVAL + 0.3, f"resumed {max(resume):.2f}s after the server came back"
    assert len(warned) == OUTAGES, "expected one 'capture failed' warning per outage (one per failure streak)"
    assert len(recovered) == OUTAGES
