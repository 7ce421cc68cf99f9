"""The daemon against a real mariadbd: aligned sampling, clean stop, kill -9, outages and retention."""

from __future__ import annotations

import json
import random
import secrets
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from plsnap.archive import ArchiveReader, ArchiveWriter, list_partitions
from plsnap.archive.format import encode_line
from plsnap.model import parse_ts
from tests.integration.harness import Sleeper, daemon, records, wait_for, wait_for_records, write_config
from tests.synth import snap


@pytest.fixture
def cfg(tmp_path: Path, mariadb_running, capture_user) -> Path:
    return write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="1s")


def instance_dir(cfg: Path) -> Path:
    return cfg.parent / "archive" / "default"


def hour_of(part: Path) -> tuple[datetime, datetime]:
    """The UTC hour a partition file holds."""
    start = datetime.strptime(f"{part.parent.name} {part.name[:2]}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    return start, start + timedelta(hours=1)


def test_aligned_samples_then_sigterm_closes_cleanly(cfg: Path, mariadb_running) -> None:
    """Samples land on wall-clock slots; SIGTERM exits 0 and leaves a partition that passes zstd -t and jq."""
    with daemon(cfg) as proc, Sleeper(mariadb_running, 3, "daemon-aligned") as sleeper:
        wait_for_records(instance_dir(cfg), 4, error=None)
        assert proc.stop() == 0
    found = records(instance_dir(cfg))
    assert len(found) >= 4
    for record in found[1:]:
        offset = parse_ts(record["ts"]).timestamp() % 1.0
        assert offset < 0.25, f"{record['ts']} is not on a 1s slot"
    assert any(s["info"] == sleeper.sql for r in found for s in r["sessions"] or ())
    for part in [p.path for p in list_partitions(instance_dir(cfg)).partitions]:
        subprocess.run(["zstd", "-q", "-t", str(part)], check=True)
        jq = subprocess.run(
            f"zstdcat {part} | jq -c 'select(.sessions) | .sessions[] | select(.command==\"Query\") | .info'",
            shell=True,
            capture_output=True,
            text=True,
            check=True,
        )
        expected = [
            json.dumps(s["info"], separators=(",", ":"), ensure_ascii=False)
            for r in ArchiveReader(instance_dir(cfg)).iter_records(*hour_of(part))
            for s in r["sessions"] or ()
            if s["command"] == "Query"
        ]
        assert jq.stdout.splitlines() == expected
        assert sleeper.sql in jq.stdout
    assert '"plsnap daemon stopped"' in proc.output


def test_kill9_cycles_lose_nothing_before_the_kill(cfg: Path) -> None:
    """20 kill -9 / restart cycles: every snapshot readable before a kill is still there; files stay valid."""
    rng = random.Random(20261128)
    seen_before_kills: set[str] = set()
    cycles = 20
    for _ in range(cycles):
        with daemon(cfg) as proc:
            wait_for_records(instance_dir(cfg), len(seen_before_kills) + 1, timeout=20)
            time.sleep(rng.uniform(0.0, 1.5))
            seen_before_kills |= {r["ts"] for r in records(instance_dir(cfg))}
            proc.proc.kill()
            proc.proc.wait(10)
    with daemon(cfg) as proc:
        wait_for_records(instance_dir(cfg), len(seen_before_kills) + 2, timeout=20)
        assert proc.stop() == 0
        assert "partition repaired" in proc.output or len(seen_before_kills) > 0
    final = {r["ts"] for r in records(instance_dir(cfg))}
    lost = seen_before_kills - final
    assert not lost, f"lost {len(lost)} snapshots that were readable before a kill"
    reader = ArchiveReader(instance_dir(cfg))
    list(reader.iter_records())
    assert not [p for p in reader.problems if "undecodable" in p]
    for part in list_partitions(instance_dir(cfg)).partitions:
        subprocess.run(["zstd", "-q", "-t", str(part.path)], check=True)
    print(f"\nkill -9 cycles: {cycles}, snapshots before kills: {len(seen_before_kills)}, lost: {len(lost)}, "
          f"final snapshots: {len(final)}")  # fmt: skip


def test_server_outage_records_gaps_and_resumes(cfg: Path, mariadb_running) -> None:
    """While the server is down each tick is a gap line; the daemon stays up and resumes within an interval."""
    with daemon(cfg) as proc:
        wait_for_records(instance_dir(cfg), 2, error=None)
        mariadb_running.stop()
        stopped_at = time.time()
        wait_for_records(instance_dir(cfg), 3, sessions=None)
        mariadb_running.start()
        back_at = time.time()

        def good_after_restart() -> bool:
            return any(
                r["error"] is None and parse_ts(r["ts"]).timestamp() > back_at for r in records(instance_dir(cfg))
            )

        wait_for(good_after_restart, 15, "a good sample after the restart")
        assert proc.proc.poll() is None, "the daemon must not exit during an outage"
        assert proc.stop() == 0
    found = records(instance_dir(cfg))
    gaps = [r for r in found if r["sessions"] is None]
    assert all(r["error"] for r in gaps)
    assert all(stopped_at - 1 <= parse_ts(r["ts"]).timestamp() <= back_at + 1 for r in gaps)
    first_good = min(parse_ts(r["ts"]).timestamp() for r in found if r["error"] is None and
                     parse_ts(r["ts"]).timestamp() > back_at)  # fmt: skip
    assert first_good - back_at <= 1.0 + 0.5
    logged = [orjson.loads(line) for line in proc.lines if line.startswith("{")]
    warnings = [e for e in logged if e.get("event") == "capture failed"]
    assert len(warnings) == 1, "one warning per failure streak"
    assert any(e.get("event") == "capture recovered" for e in logged)


def test_retention_runs_at_startup(cfg: Path) -> None:
    """Partitions older than max_age before the newest snapshot are pruned when the daemon starts."""
    root = instance_dir(cfg)
    old = datetime.now(UTC) - timedelta(days=9)
    with ArchiveWriter(root, fsync=False) as writer:
        for hours in (0, 1, 2):
            s = snap(0)
            moment = old + timedelta(hours=hours)
            writer.append(encode_line({**s.to_record(), "ts": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")}), moment)
    stranger = root / "README.txt"
    stranger.write_text("not ours")
    assert len(list_partitions(root).partitions) == 3
    with daemon(cfg) as proc:
        wait_for_records(root, 1, error=None, instance="default")
        assert proc.stop() == 0
    partitions = list_partitions(root).partitions
    assert all(p.start > old + timedelta(hours=3) for p in partitions)
    assert stranger.exists()
    assert "partition pruned" in proc.output
    assert "foreign file in archive left alone" in proc.output


def test_guard_prunes_after_write(tmp_path: Path, mariadb_running, capture_user) -> None:
    """When max_bytes is exceeded after a write, the oldest partitions are deleted at once, never the live one."""
    path = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="1s",
                        retention={"max_bytes": 2000})  # fmt: skip
    root = tmp_path / "archive" / "default"
    recent = datetime.now(UTC) - timedelta(hours=5)
    with ArchiveWriter(root, fsync=False) as writer:
        for hours in range(3):
            moment = recent + timedelta(hours=hours)
            line = encode_line(
                {"ts": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "junk": secrets.token_hex(3000), "sessions": []}
            )
            writer.append(line, moment)
    with daemon(path) as proc:
        wait_for_records(root, 2, error=None, instance="default")
        wait_for(lambda: len(list_partitions(root).partitions) == 1, 10, "guard pruning")
        assert proc.stop() == 0
    assert "over max_bytes" in proc.output


def test_sigint_also_stops_cleanly(cfg: Path) -> None:
    """SIGINT (Ctrl-C in a terminal) stops like SIGTERM, exit 0, frame closed."""
    with daemon(cfg) as proc:
        wait_for_records(instance_dir(cfg), 1)
        assert proc.stop(signal.SIGINT) == 0
    for part in list_partitions(instance_dir(cfg)).partitions:
        subprocess.run(["zstd", "-q", "-t", str(part.path)], check=True)


def test_locked_archive_is_refused(cfg: Path) -> None:
    """A second daemon on the same archive exits 1 with a one-line lock error instead of corrupting it."""
    with daemon(cfg) as first:
        wait_for_records(instance_dir(cfg), 1)
        with daemon(cfg) as second:
            assert second.proc.wait(20) == 1
        assert "locked by another plsnap writer" in second.output
        assert "Traceback" not in second.output
        assert first.stop() == 0


def test_zstd_cli_present() -> None:
    """The interop checks need the zstd and jq command-line tools."""
    assert shutil.which("zstd") and shutil.which("jq")
