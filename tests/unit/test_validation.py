"""One bad value never kills the answer: every value is checked where a record becomes an object; only the bad
field or the bad session is dropped, with a warning that counts them, and a line only when its ts or its shape
is bad. Caps bound what a hostile file or config can make a reader do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from plsnap.archive import ArchiveReader, ArchiveWriter
from plsnap.cli import main
from plsnap.model import Issues, Session, Snapshot
from tests.synth import at, session, snap


def raw_line(seconds: float, sessions: list[dict[str, Any]], **top: Any) -> bytes:
    """A record as plsnap writes it, with the sessions given as raw dicts (so they can be wrong)."""
    record = snap(seconds).to_record()
    record.update(top)
    record["sessions"] = sessions
    return orjson.dumps(record) + b"\n"


def good(sid: int, **changes: Any) -> dict[str, Any]:
    """A running session record, with ``changes`` applied."""
    record = session(sid, f"SELECT {sid}", time=3).to_record()
    record.update(changes)
    return record


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """An archive whose middle lines carry absurd values next to good ones."""
    instance = tmp_path / "data" / "db1"
    lines = [
        raw_line(0, [good(1), good(2)]),
        raw_line(10, [good(1, time=1e308), good(3, id=1e300), good(4, time=-5), good(5, user=["x"])]),
        raw_line(20, [good(1)], ts="9999-12-31T23:59:59.000Z"),
        raw_line(30, [good(1), "not a session", good(6, time_ms=1e300)]),
        raw_line(40, [good(1), good(2)], interval_s=-3, duration_ms="fast"),
    ]
    with ArchiveWriter(instance, fsync=False) as writer:
        for seconds, line in zip((0, 10, 20, 30, 40), lines, strict=True):
            writer.append(line, at(seconds))
    return tmp_path / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_absurd_values_are_dropped_and_counted(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """at and window answer; the bad time fields become unknown, the sessions with a bad id or shape are
    dropped, the line with an impossible ts is skipped, and stderr counts each kind once."""
    code, out, err = run(capsys, "window", at(0).isoformat(), at(60).isoformat(), "--data-dir", str(hostile),
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["samples"] == 4
    assert "dropped 6 invalid field value(s) and 2 invalid session(s)" in err
    assert "skipped 1 line(s) whose ts is outside the partition's hour" in err
    code, out, err = run(capsys, "at", at(10).isoformat(), "--data-dir", str(hostile), "--format", "json")
    assert code == 0, err
    ids = {s["id"] for s in json.loads(out)["sessions"]}
    assert ids >= {1, 4, 5}
    assert 3 not in ids
    assert "Traceback" not in err and "internal error" not in err


def test_negative_time_keeps_the_session(hostile: Path) -> None:
    """A negative Time (seen on replication threads) drops the value, never the session."""
    reader = ArchiveReader(hostile / "db1")
    (sample,) = [s for s in reader.iter_snapshots() if s.ts == at(10)]
    assert {s.id: s.time for s in sample.sessions or ()} == {1: None, 4: None, 5: 3}


def test_validation_is_counted_per_kind() -> None:
    """Session.from_record counts each dropped field; Snapshot.from_record rejects an impossible ts."""
    issues = Issues()
    got = Session.from_record({"id": 7, "time": float("nan"), "time_ms": "x", "host": 5}, issues)
    assert (got.time, got.time_ms, got.host, issues.fields) == (None, None, None, 3)
    with pytest.raises(ValueError, match="out of range"):
        Snapshot.from_record({"ts": "0001-01-01T00:00:00Z", "sessions": []})
    with pytest.raises(ValueError, match="valid id"):
        Session.from_record({"id": True})


def test_decompression_bomb_is_bounded(tmp_path: Path) -> None:
    """A tiny partition that decompresses to gigabytes without a newline is skipped with a warning, and the
    reader's memory stays far below its size."""
    instance = tmp_path / "data" / "db1"
    (instance / "2026-11-28").mkdir(parents=True)
    compressor = zstandard.ZstdCompressor(level=19).compressobj()
    chunk = b"x" * 2**20
    bomb = b"".join(compressor.compress(chunk) for _ in range(2048)) + compressor.flush()
    (instance / "2026-11-28" / "03.jsonl.zst").write_bytes(bomb)
    assert len(bomb) < 200_000
    probe = (
        "import resource, sys\n"
        "from plsnap.cli import main\n"
        "code = main(['at', '2026-11-28T03:30:00Z', '--data-dir', sys.argv[1]])\n"
        "print(code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "data")], capture_output=True, text=True,
                            timeout=300, check=False)  # fmt: skip
    code, rss_kib = result.stdout.split()
    assert code == "3"
    assert int(rss_kib) < 700 * 1024, f"RSS {int(rss_kib) // 1024} MiB"
    assert "longer than" in result.stderr


def test_config_that_never_ends_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PLSNAP_CONFIG=/dev/zero (or any huge file) is refused after 1 MiB with a clear error, exit 2."""
    code, _, err = run(capsys, "at", "now", "-c", "/dev/zero", "--data-dir", str(tmp_path))
    assert code == 2
    assert "larger than 1048576 bytes" in err


def test_dst_reading_is_said(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A local time that happens twice is read as the first, and the command says so on stderr."""
    _, _, err = run(capsys, "at", "2026-10-25 02:30", "--tz", "Europe/Berlin", "--data-dir", str(hostile))
    assert "happens twice in Europe/Berlin" in err
    assert "+01:00" in err


def test_invalid_lock_edges_and_counters_are_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Lock-wait edges and counter values that readers drop (a self-wait, ids that are not ids, an unknown kind,
    a counter beyond 64 bits, NaN as text) are counted in the one warning, never dropped in silence; the valid
    edge still answers."""
    instance = tmp_path / "data" / "db1"
    edge = {"waiter": 2, "blocker": 1, "kind": "row", "how": "lock_table", "object": "db.t", "wait_s": 3.0}
    bad_edges = [{**edge, "blocker": 2}, {**edge, "waiter": "2"}, {**edge, "kind": "mutex"}, "edge", 7]
    status = {"Questions": 10, "Threads_running": 2.0**70, "Com_select": "NaN", "Uptime": 100}
    lines = [
        raw_line(0, [good(1), good(2)], locks=[edge, *bad_edges], status=status),
        raw_line(10, [good(1), good(2)], locks="not a list", status=[1, 2]),
    ]
    with ArchiveWriter(instance, fsync=False) as writer:
        for seconds, line in zip((0, 10), lines, strict=True):
            writer.append(line, at(seconds))
    code, out, err = run(capsys, "locks", at(0).isoformat(), at(60).isoformat(), "--data-dir", str(tmp_path / "data"),
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    assert "dropped 6 invalid lock-wait edge(s) and 3 invalid counter value(s)" in err, err
    assert [e["root"]["id"] for e in json.loads(out)["episodes"]] == [1]
