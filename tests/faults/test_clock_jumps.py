"""Wall-clock steps under a running daemon (libfaketime): partitions stay consistent and sampling goes on.

The system clock cannot be changed in a test, so the daemon runs under libfaketime with
``FAKETIME_TIMESTAMP_FILE`` and ``FAKETIME_NO_CACHE=1``: rewriting the file changes the offset of the running
process at once. ``FAKETIME_DONT_FAKE_MONOTONIC=1`` keeps CLOCK_MONOTONIC real, as a real clock step (NTP,
a VM resume, a wrong RTC corrected) leaves it. Offsets are chosen so every fake instant lands near the middle
of an hour, far from a partition boundary, whatever the real time is.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from plsnap.archive import list_partitions, partition_path
from plsnap.model import parse_ts
from tests.faults.tools import (
    FakeClock,
    check_archive,
    log_events,
    mid_hour_offset,
    run_daemon,
    stop_daemon,
    zstd_test,
)
from tests.integration.harness import Daemon, plsnap, records, write_config

WAIT_FOR_SAMPLES = 15.0  # seconds a 1 s daemon gets for 3 samples after a step before it counts as stalled
# (generous: a rotation on a slow disk fsyncs a dozen times; without the reschedule a step back stalls an hour)
SKIPPED = "capture slots skipped: the previous attempt was still running"


def wait_for_fake_samples(instance_dir: Path, clock: FakeClock, count: int, proc: Daemon) -> list[str]:
    """The ts of at least ``count`` samples taken since the last step (fake ts up to 60 s after it), or []."""
    since = clock.now() - timedelta(seconds=0.5)
    until = since + timedelta(seconds=60)
    deadline = time.monotonic() + WAIT_FOR_SAMPLES
    while time.monotonic() < deadline:
        assert proc.proc.poll() is None, f"daemon exited ({proc.proc.returncode}):\n{proc.output[-3000:]}"
        found = [r["ts"] for r in records(instance_dir) if since <= parse_ts(r["ts"]) < until]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    return []


def test_clock_steps_keep_partitions_consistent(tmp_path: Path, mariadb_running, capture_user, clock) -> None:
    """Steps back 1h, back 10min, forward 1d and back 1d: right partitions, valid zstd, ts order, nothing lost."""
    if shutil.which("zstd") is None:
        pytest.fail("zstd is needed: apt-get install -y zstd")
    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="1s")
    instance_dir = tmp_path / "archive" / "default"
    base = mid_hour_offset()
    # (label, offset from real time): starts an hour back, then steps forward 1h, back 1h, back 10 min within
    # the same partition, forward a day, and back a day.
    phases = [
        ("start at H-1", base - 3600),
        ("forward 1h to H", base),
        ("back 1h to H-1", base - 3600),
        ("back 10min within H-1", base - 3600 - 600),
        ("forward 1d to H+24h", base + 86400),
        ("back 1d to H", base),
    ]
    seen: set[str] = set()
    expected_partitions: dict[str, Path] = {}
    stalls: list[str] = []
    restarts = 0
    clock.set(phases[0][1])
    outputs: list[str] = []
    with contextlib.ExitStack() as stack:
        proc = stack.enter_context(run_daemon(cfg, env=clock.env()))
        for label, offset in phases:
            clock.set(offset)
            expected_partitions[label] = partition_path(instance_dir, clock.now())
            found = wait_for_fake_samples(instance_dir, clock, 3, proc)
            if not found:
                # The scheduler did not fire within 5 intervals: note the stall, restart the daemon under the same
                # clock (a fresh scheduler computes its slots from the new time) and carry on checking the archive.
                stalls.append(label)
                assert stop_daemon(proc) == 0
                outputs.append(proc.output)
                stack.close()
                restarts += 1
                proc = stack.enter_context(run_daemon(cfg, env=clock.env()))
                found = wait_for_fake_samples(instance_dir, clock, 3, proc)
                assert found, f"no samples after {label} even from a freshly started daemon:\n{proc.output[-3000:]}"
            seen |= {r["ts"] for r in records(instance_dir)}
        assert stop_daemon(proc) == 0, proc.output[-3000:]
        outputs.append(proc.output)

    found, undecodable, failing = check_archive(instance_dir)
    final = [r["ts"] for r in found]
    lost = seen - set(final)
    partitions = [p.path for p in list_partitions(instance_dir).partitions]
    repairs = sum(len(log_events(o, "partition repaired")) for o in outputs)
    steps_logged = sum(len(log_events(o, "wall clock stepped")) for o in outputs)
    print(
        f"\n[clock jumps] phases={len(phases)} samples={len(final)} partitions={len(partitions)} lost={len(lost)} "
        f"undecodable={len(undecodable)} zstd_t_failures={len(failing)} repairs={repairs} "
        f"'wall clock stepped' warnings={steps_logged}; "
        f"scheduler stalls after: {stalls or 'none'} (daemon restarts needed: {restarts})"
    )
    assert not undecodable, undecodable
    assert not failing, failing
    assert final == sorted(final), "the reader did not yield snapshots in ts order"
    assert len(final) == len(set(final)), "a snapshot was stored twice"
    assert not lost, f"lost {len(lost)} snapshots across clock steps: {sorted(lost)[:5]}"
    for label, path in expected_partitions.items():
        assert path in partitions, f"{label}: expected samples in {path}, partitions are {partitions}"
    # Samples of each phase are in the partition of their own (fake) hour, including the reopened earlier one.
    for record in found:
        assert partition_path(instance_dir, parse_ts(record["ts"])) in partitions
    assert len(partitions) == 3, partitions  # H-1, H and H+24h
    # A rotation that outlives a 1 s slot (a slow disk) records the slots it skipped: honest, not damage.
    errors = [r["error"] for r in found if r["error"] and SKIPPED not in r["error"]]
    assert not errors, errors[:3]
    assert not stalls, f"the daemon stopped sampling after these clock steps (restarted to go on): {stalls}"
    # The hour the clock went back into got lines after its rollup was written: readers must not trust it.
    assert_rollups_answer_like_raw_rows(cfg, final[0], final[-1])


def assert_rollups_answer_like_raw_rows(cfg: Path, first: str, last: str) -> None:
    """``window`` and ``locks`` over the whole archive say the same with and without rollups."""
    start = parse_ts(first).replace(minute=0, second=0, microsecond=0)
    end = parse_ts(last).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    span = [start.isoformat(), end.isoformat()]
    for command in ("window", "locks"):
        fast = plsnap(command, *span, "-c", str(cfg), "--format", "json")
        slow = plsnap(command, *span, "-c", str(cfg), "--format", "json", "--no-rollups")
        assert fast.returncode == slow.returncode == 0, fast.stderr + slow.stderr
        assert fast.stdout == slow.stdout, f"{command}: rollups changed the answer"


def test_rotation_writes_the_hours_rollup(tmp_path: Path, mariadb_running, capture_user, clock) -> None:
    """A daemon running across an hour boundary writes that hour's final rollup at rotation (built from what it
    captured, the whole hour), and the live hour's at shutdown; both answer like the raw rows."""
    from plsnap.rollup import decode_file

    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="1s")
    instance_dir = tmp_path / "archive" / "default"
    now = datetime.now(UTC)
    clock.set(3600 - (now.minute * 60 + now.second) - 8)  # HH:59:52 of the fake clock
    with run_daemon(cfg, env=clock.env()) as proc:
        deadline = time.monotonic() + 40
        while len(list_partitions(instance_dir).partitions) < 2 or len(records(instance_dir)) < 14:
            assert time.monotonic() < deadline, proc.output[-3000:]
            time.sleep(0.2)
        assert stop_daemon(proc) == 0, proc.output[-3000:]
    first, second = list_partitions(instance_dir).partitions[:2]
    assert first.rollup and second.rollup, list(instance_dir.rglob("*"))
    header = decode_file((first.path.parent / first.rollup).read_bytes()).header
    assert header.complete and header.built_by == "daemon"
    assert header.size == first.path.stat().st_size
    (compacted,) = log_events(proc, "partition compacted")
    assert compacted["level"] == "info" and str(first.path) in compacted["detail"], compacted
    assert zstd_test(first.path).returncode == 0
    assert not log_events(proc, "partition not compacted")
    found = records(instance_dir)
    assert_rollups_answer_like_raw_rows(cfg, found[0]["ts"], found[-1]["ts"])


def test_sampling_goes_on_after_the_clock_steps_back(tmp_path: Path, mariadb_running, capture_user, clock) -> None:
    """After the wall clock steps back an hour the daemon keeps sampling every interval (no stall)."""
    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="1s")
    instance_dir = tmp_path / "archive" / "default"
    base = mid_hour_offset()
    clock.set(base)
    with run_daemon(cfg, env=clock.env()) as proc:
        assert wait_for_fake_samples(instance_dir, clock, 2, proc), proc.output[-3000:]
        stepped_at = time.monotonic()
        clock.set(base - 3600)
        after_back = wait_for_fake_samples(instance_dir, clock, 3, proc)
        back_delay = time.monotonic() - stepped_at
        clock.set(base + 86400)
        stepped_at = time.monotonic()
        after_forward = wait_for_fake_samples(instance_dir, clock, 3, proc)
        forward_delay = time.monotonic() - stepped_at
        assert stop_daemon(proc) == 0
    print(
        f"\n[clock jumps] after a 1h step back: {len(after_back)} samples in {back_delay:.1f}s; "
        f"after a later 1d step forward: {len(after_forward)} samples in {forward_delay:.1f}s; "
        f"'wall clock stepped' warnings={len(log_events(proc, 'wall clock stepped'))}"
    )
    assert after_back, (
        "the daemon stopped sampling after the wall clock stepped back 1h: APScheduler keeps the next run time "
        "computed before the step (now an hour in the future) and sleeps until then (src/plsnap/daemon.py)"
    )
    assert after_forward, "the daemon stopped sampling after the wall clock stepped forward 1d"
