"""A full disk under a running daemon: the free-space guard prunes first, ENOSPC is survived without damage.

The archive lives on a private 2 MiB tmpfs (a loop-mounted ext4 image if tmpfs cannot be mounted; CI runs as
root). Old partitions of incompressible junk give the guard something to prune; ballast files steal the space.
While the disk is being filled, a few root sessions run statements with random text so each snapshot is a few
KiB: otherwise a snapshot (about 200 bytes) would fit in the slack of the partition's last page for many ticks.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from plsnap.archive import ArchiveWriter, list_partitions
from plsnap.archive.format import encode_line
from plsnap.model import format_ts
from tests.devserver import DevServer
from tests.faults.tools import check_archive, log_events, run_daemon, stop_daemon, wait_until
from tests.integration.harness import Daemon, records, write_config

FS_SIZE = 2 * 1024 * 1024
MIN_FREE = "25%"  # 512 KiB of the 2 MiB filesystem
OLD_PARTITIONS = 4
OLD_PARTITION_BYTES = 240 * 1024
STREAKS = 2
FAILED_TICKS_PER_STREAK = 3


def _mount(target: Path, image: Path) -> str:
    """Mount a small filesystem on ``target``; return how, or fail the test saying why it is impossible."""
    attempts = []
    tmpfs = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE},mode=0755", "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if tmpfs.returncode == 0:
        return "tmpfs"
    attempts.append(f"tmpfs: {tmpfs.stderr.strip()}")
    with image.open("wb") as out:
        out.truncate(FS_SIZE)
    mkfs = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], capture_output=True, text=True, check=False)
    if mkfs.returncode == 0:
        loop = subprocess.run(
            ["mount", "-o", "loop", str(image), str(target)], capture_output=True, text=True, check=False
        )
        if loop.returncode == 0:
            return "ext4 loop image"
        attempts.append(f"loop ext4: {loop.stderr.strip()}")
    else:
        attempts.append(f"mkfs.ext4: {mkfs.stderr.strip()}")
    pytest.fail(
        "the disk-full scenario needs a small filesystem of its own and could not mount one "
        f"(run as root, or where mount is allowed): {'; '.join(attempts)}"
    )


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A private 2 MiB filesystem mounted under tmp_path (unmounted afterwards), and what kind it is."""
    target = tmp_path / "disk"
    target.mkdir()
    kind = _mount(target, tmp_path / "disk.img")
    try:
        yield target, kind
    finally:
        if subprocess.run(["umount", str(target)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def free_bytes(path: Path) -> int:
    """Free bytes of the filesystem holding ``path``, as an unprivileged writer sees them."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill(path: Path, leave: int = 0) -> int:
    """Append random bytes to ``path`` until the filesystem has about ``leave`` bytes free (ENOSPC if 0)."""
    written = 0
    with path.open("ab", buffering=0) as out:
        for chunk in (64 * 1024, 4096, 512, 1):
            block = os.urandom(chunk)
            while free_bytes(path) - chunk >= leave or leave == 0:
                try:
                    count = out.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
                written += count or 0
                if not count or count < chunk:
                    break
    return written


def prefill(instance_dir: Path) -> list[Path]:
    """Write OLD_PARTITIONS partitions of incompressible junk, a few hours old, oldest first."""
    newest_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    writer = ArchiveWriter(instance_dir, fsync=False)
    try:
        for age in range(OLD_PARTITIONS, 0, -1):
            hour = newest_hour - timedelta(hours=age - 1)
            for minute in range(4):
                junk = base64.b64encode(secrets.token_bytes(OLD_PARTITION_BYTES * 3 // 16)).decode()
                record = {
                    "ts": format_ts(hour + timedelta(minutes=minute)),
                    "instance": "default",
                    "source": "information_schema",
                    "server": "junk",
                    "duration_ms": 1.0,
                    "error": None,
                    "interval_s": 60.0,
                    "sessions": [{"id": 1, "user": "junk", "host": "h", "db": None, "command": "Query",
                                  "time": 0, "state": "", "info": junk}],
                }  # fmt: skip
                writer.append(encode_line(record), hour + timedelta(minutes=minute))
    finally:
        writer.close()
    return [p.path for p in list_partitions(instance_dir).partitions]


class Churn:
    """Root sessions running ``SELECT SLEEP`` with fresh random text, so every snapshot is a few KiB."""

    def __init__(self, server: DevServer, sessions: int = 3, text_bytes: int = 3000) -> None:
        self._server = server
        self._text_bytes = text_bytes
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(sessions)]

    def _run(self) -> None:
        conn = self._server.root_connect()
        try:
            with conn.cursor() as cur:
                while not self._stop.is_set():
                    text = base64.b64encode(secrets.token_bytes(self._text_bytes)).decode()
                    cur.execute(f"SELECT SLEEP(0.4) /* {text} */")
                    cur.fetchall()
        finally:
            conn.close()

    def __enter__(self) -> Churn:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def _events(proc: Daemon, name: str) -> list[dict[str, object]]:
    return [e for e in log_events(proc, name) if e["event"] == name]


def test_disk_full_is_survived(small_fs, tmp_path: Path, mariadb_running, capture_user) -> None:
    """Guard prunes oldest-first before ENOSPC; a full disk logs once per streak, corrupts nothing, recovers."""
    if shutil.which("zstd") is None:
        pytest.fail("zstd is needed: apt-get install -y zstd")
    mount, kind = small_fs
    data_dir = mount / "archive"
    instance_dir = data_dir / "default"
    old = prefill(instance_dir)
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in old}
    floor = FS_SIZE * 25 // 100
    cfg = write_config(
        tmp_path / "plsnap.toml",
        mariadb_running,
        capture_user,
        interval="1s",
        archive={"data_dir": str(data_dir)},
        retention={"min_free": MIN_FREE},
    )
    streaks: list[dict[str, float]] = []
    prunable_while_full: list[int] = []  # old partitions still on disk at the end of each failing streak
    with run_daemon(cfg) as proc, Churn(mariadb_running):
        assert wait_until(lambda: len(_events(proc, "sample")) >= 2, 15), proc.output[-3000:]
        assert not _events(proc, "partition pruned"), "pruned before space ran short"
        free_at_start = free_bytes(mount)

        # Phase 1: free space drops below the floor but the disk is not full: the guard prunes, oldest first.
        fill(mount / "ballast-1", leave=floor // 3)
        free_below_floor = free_bytes(mount)
        assert wait_until(lambda: len(_events(proc, "partition pruned")) >= 2, 10), proc.output[-3000:]
        pruned_first = [e["path"] for e in _events(proc, "partition pruned")]
        assert not _events(proc, "archive write failed"), "the guard should have pruned before the disk filled"

        # Phase 2: a ballast takes every free byte, twice; each streak of failed writes, then space returns.
        for streak in range(STREAKS):
            ballast = mount / f"ballast-full-{streak}"
            began = time.monotonic()
            while len(_events(proc, "archive write failed")) <= streak and time.monotonic() - began < 20:
                fill(ballast)  # again if a prune or a cut-back partial write gave some space back
                wait_until(lambda s=streak: len(_events(proc, "archive write failed")) > s, 2)
            assert len(_events(proc, "archive write failed")) == streak + 1, proc.output[-3000:]
            full_at = time.monotonic()
            attempts_at_full = len(_events(proc, "sample"))
            wait_until(lambda n=attempts_at_full: len(_events(proc, "sample")) >= n + FAILED_TICKS_PER_STREAK, 10)
            prunable_while_full.append(sum(p.exists() for p in old))
            ballast.unlink()
            freed_at = time.monotonic()
            recovered_in_time = wait_until(lambda s=streak: len(_events(proc, "archive writes recovered")) > s, 10)
            assert recovered_in_time, proc.output[-3000:]
            streaks.append({"full_s": freed_at - full_at, "recovered_after_s": time.monotonic() - freed_at})
        stored_after = len(records(instance_dir))
        wait_until(lambda: len(records(instance_dir)) >= stored_after + 2, 10)
        assert proc.proc.poll() is None, proc.output[-3000:]
        assert stop_daemon(proc) == 0, proc.output[-3000:]

    failed = _events(proc, "archive write failed")
    recovered = _events(proc, "archive writes recovered")
    pruned = _events(proc, "partition pruned")
    repaired = _events(proc, "partition repaired")
    found, undecodable, failing = check_archive(instance_dir)
    survivors = [p for p in old if p.exists()]
    pruned_paths = [Path(str(e["path"])) for e in pruned]
    figures = {
        "filesystem": f"{kind} {FS_SIZE // 1024} KiB, min_free {MIN_FREE} ({floor // 1024} KiB)",
        "free at start / after ballast-1": f"{free_at_start // 1024}/{free_below_floor // 1024} KiB",
        "pruned, in order": [f"{p.parent.name}/{p.name}" for p in pruned_paths],
        "prune reasons": sorted({str(e["reason"]) for e in pruned}),
        "pruned before the disk filled": len(pruned_first),
        "'archive write failed' events": f"{len(failed)} for {STREAKS} streaks",
        "failed writes per streak": [e.get("failed_writes") for e in recovered],
        "streak timings": [{k: round(v, 2) for k, v in t.items()} for t in streaks],
        "'archive writes recovered' events": len(recovered),
        "repairs logged": len(repaired),
        "prunable old partitions on disk at the end of each full streak": prunable_while_full,
        "old partitions left, byte-identical": len(survivors),
        "final records / undecodable / zstd -t failures": f"{len(found)}/{len(undecodable)}/{len(failing)}",
    }
    print("\n[disk full] " + "; ".join(f"{k}={v}" for k, v in figures.items()))
    assert len(failed) == STREAKS, f"'archive write failed' should be logged once per streak, got {len(failed)}"
    assert len(recovered) == STREAKS
    assert all(int(str(e["failed_writes"])) >= FAILED_TICKS_PER_STREAK for e in recovered), recovered
    assert all("no space left on device" in str(e["error"]) for e in failed), failed
    assert pruned_paths == old[: len(pruned_paths)], f"not pruned oldest first: {pruned_paths} of {old}"
    assert all(str(e["reason"]).startswith(f"free space below {MIN_FREE}") for e in pruned), pruned
    assert not undecodable, undecodable
    assert not failing, failing
    for path in survivors:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digests[path], f"{path} changed"
    assert any(r["error"] is None and r["server"] != "junk" for r in found)


@pytest.mark.parametrize("guard", ["min_free", "none"])
def test_restart_after_a_crash_on_a_full_disk(
    small_fs, tmp_path: Path, mariadb_running, capture_user, guard: str
) -> None:
    """kill -9, the disk fills up, restart: the daemon starts (no restart loop under systemd) and keeps
    trying. With min_free it applies the guard before the repair that needs space (prunes the oldest
    partitions at start-up, then closes the crash-left partition in place) and captures on; without a guard
    it records nothing until space returns, then writes one gap line carrying the span it missed."""
    mount, _ = small_fs
    data_dir = mount / "archive"
    instance_dir = data_dir / "default"
    old = prefill(instance_dir)
    retention = {"min_free": MIN_FREE} if guard == "min_free" else {}
    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="1s",
                       archive={"data_dir": str(data_dir)}, retention=retention)  # fmt: skip
    with run_daemon(cfg) as proc, Churn(mariadb_running):
        assert wait_until(lambda: len(_events(proc, "sample")) >= 3, 15), proc.output[-3000:]
        proc.proc.kill()
        proc.proc.wait(10)
    fill(mount / "ballast-full")
    with run_daemon(cfg) as proc, Churn(mariadb_running):
        time.sleep(4)
        assert proc.proc.poll() is None, f"the daemon exited on a full disk:\n{proc.output[-3000:]}"
        if guard == "min_free":
            assert wait_until(lambda: len(_events(proc, "sample")) >= 3, 15), proc.output[-3000:]
            pruned = _events(proc, "partition pruned")
            assert pruned and pruned[0]["trigger"] == "start-up", proc.output[-3000:]
            assert _events(proc, "partition repaired"), proc.output[-3000:]
            assert not _events(proc, "archive write failed"), proc.output[-3000:]
        else:
            assert _events(proc, "archive write failed"), proc.output[-3000:]
            (mount / "ballast-full").unlink()
            assert wait_until(lambda: len(_events(proc, "archive writes recovered")) >= 1, 15), proc.output[-3000:]
            assert wait_until(lambda: any("gap_since" in r for r in records(instance_dir)), 10)
        assert stop_daemon(proc) == 0, proc.output[-3000:]
    assert "cannot repair" not in proc.output
    found, undecodable, failing = check_archive(instance_dir)
    assert not undecodable, undecodable
    assert not failing, failing
    assert len({r["ts"] for r in found}) == len(found)
    spans = [r for r in found if "gap_since" in r]
    if guard == "none":
        assert spans and all(r["missed"] >= 1 and "no space left" in r["error"] for r in spans), spans
    assert any(not p.exists() for p in old) == (guard == "min_free")


def test_burst_refused_on_a_nearly_full_disk(small_fs, tmp_path: Path, mariadb_running, capture_user) -> None:
    """A trigger that fires while the archive's filesystem is short of [trigger] min_free starts no burst: one
    clear log line, the refusal counted, and the base capture goes on."""
    mount, _ = small_fs
    data_dir = mount / "archive"
    cfg = write_config(
        tmp_path / "plsnap.toml",
        mariadb_running,
        capture_user,
        interval="1s",
        archive={"data_dir": str(data_dir)},
        trigger={"threads_running": 1, "cycles": 1, "min_free": "60%", "cooldown": "0s"},
    )
    fill(mount / "ballast", leave=FS_SIZE // 2)
    with run_daemon(cfg) as proc, Churn(mariadb_running, sessions=2, text_bytes=50):
        assert wait_until(lambda: len(_events(proc, "burst not started")) >= 1, 20), proc.output[-3000:]
        samples = len(_events(proc, "sample"))
        assert wait_until(lambda: len(_events(proc, "sample")) >= samples + 3, 10), "base capture stopped"
        assert stop_daemon(proc) == 0, proc.output[-3000:]
    refusals = _events(proc, "burst not started")
    assert [e["guard"] for e in refusals] == ["min_free"], "said once per streak"
    assert not _events(proc, "burst started")
    assert not [r for r in records(data_dir / "default") if "marker" in r]
