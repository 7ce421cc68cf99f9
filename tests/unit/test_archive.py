"""The archive format contract: lines, frames, torn tails, repair and partition layout."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import zstandard

from plsnap.archive import ArchiveReader, ArchiveWriter
from plsnap.archive.format import decode_lines, encode_line
from plsnap.archive.layout import list_partitions, parse_partition_path, partition_path, resolve_instance
from plsnap.errors import ArchiveError, NoDataError
from tests.synth import T0, at, gap, idle, session, snap


def write(instance_dir: Path, *snapshots, fsync: bool = False) -> None:
    with ArchiveWriter(instance_dir, fsync=fsync) as writer:
        for s in snapshots:
            writer.append(encode_line(s.to_record()), s.ts)


def only_partition(instance_dir: Path) -> Path:
    parts = list_partitions(instance_dir).partitions
    assert len(parts) == 1
    return parts[0].path


def test_partition_path_is_utc_hour(tmp_path: Path) -> None:
    """A snapshot lands in <YYYY-MM-DD>/<HH>.jsonl.zst of its UTC hour, whatever the input offset."""
    moment = datetime.fromisoformat("2026-11-28T09:59:59.999+09:00")
    path = partition_path(tmp_path, moment)
    assert path == tmp_path / "2026-11-28" / "00.jsonl.zst"
    assert parse_partition_path(path) == datetime(2026, 11, 28, 0, tzinfo=UTC)


def test_line_starts_with_ts_and_round_trips(tmp_path: Path) -> None:
    """Each line is one snapshot whose first key is ts (ISO UTC, ms, Z), and reading returns what was written."""
    original = snap(1.234, session(7, "SELECT SLEEP(5)", time=3), idle(8, time=40))
    write(tmp_path, original)
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(only_partition(tmp_path).read_bytes())
    line = raw.splitlines()[0]
    assert line.startswith(b'{"ts":"2026-11-28T03:00:01.234Z"')
    (back,) = ArchiveReader(tmp_path).iter_snapshots()
    assert back.to_record() == original.to_record()


def test_gap_line_has_null_sessions(tmp_path: Path) -> None:
    """A failed sample is stored with sessions null and its error, distinct from an empty processlist."""
    write(tmp_path, gap(0, "connect failed: boom"), snap(10))
    first, second = ArchiveReader(tmp_path).iter_records()
    assert first["sessions"] is None
    assert first["error"] == "connect failed: boom"
    assert second["sessions"] == []


def test_range_is_half_open_across_partitions(tmp_path: Path) -> None:
    """iter_snapshots(start, end) returns ts in [start, end) across hourly partitions, in order."""
    write(tmp_path, *[snap(s) for s in range(0, 3 * 3600, 600)])
    assert len(list_partitions(tmp_path).partitions) == 3
    got = [s.ts for s in ArchiveReader(tmp_path).iter_snapshots(at(1800), at(7200))]
    assert got == [at(s) for s in range(1800, 7200, 600)]


def test_closed_partition_passes_zstd_and_jq(tmp_path: Path) -> None:
    """A closed partition passes `zstd -t`, and `zstdcat | jq` reads every line."""
    if not (shutil.which("zstd") and shutil.which("jq")):
        pytest.fail("zstd and jq must be installed for the interop contract test")
    write(tmp_path, *[snap(s, session(1, "SELECT 1")) for s in range(0, 60, 10)])
    path = only_partition(tmp_path)
    subprocess.run(["zstd", "-q", "-t", str(path)], check=True)
    out = subprocess.run(
        f"zstdcat {path} | jq -c '.sessions[] | select(.command==\"Query\") | .info'",
        shell=True,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out == ['"SELECT', '1"'] * 6


def test_writer_appends_new_frame_after_restart(tmp_path: Path) -> None:
    """A second writer session appends a new frame to a closed partition and both are readable."""
    write(tmp_path, snap(0), snap(10))
    write(tmp_path, snap(20))
    assert [s.ts for s in ArchiveReader(tmp_path).iter_snapshots()] == [at(0), at(10), at(20)]


def test_torn_tail_at_every_offset(tmp_path: Path) -> None:
    """Cut a partition at every byte of its last block: the reader returns exactly the snapshots before the cut."""
    snapshots = [snap(i, session(i, f"SELECT {i} /* {'x' * 40} */")) for i in range(5)]
    writer = ArchiveWriter(tmp_path, fsync=False)
    sizes = []
    for s in snapshots:
        writer.append(encode_line(s.to_record()), s.ts)
        sizes.append(only_partition(tmp_path).stat().st_size)
    data = only_partition(tmp_path).read_bytes()
    writer.close()
    for cut in range(sizes[-2], len(data) + 1):
        lines, _ = decode_lines(data[:cut])
        expected = 5 if cut >= sizes[-1] else 4
        assert len(lines) == expected, cut
        assert [orjson.loads(x)["ts"] for x in lines] == [s.to_record()["ts"] for s in snapshots[:expected]]


def test_torn_tail_every_offset_of_whole_frame(tmp_path: Path) -> None:
    """Every prefix of a partition decodes to the complete snapshots whose blocks are fully present."""
    snapshots = [snap(i, session(i, "SELECT " + "y" * i)) for i in range(6)]
    writer = ArchiveWriter(tmp_path, fsync=False)
    ends = []
    for s in snapshots:
        writer.append(encode_line(s.to_record()), s.ts)
        ends.append(only_partition(tmp_path).stat().st_size)
    data = only_partition(tmp_path).read_bytes()
    writer.close()
    for cut in range(len(data) + 1):
        got = len(decode_lines(data[:cut])[0])
        assert got == sum(1 for end in ends if end <= cut), cut


def abandon(writer: ArchiveWriter) -> None:
    """Simulate the process dying without close(): drop every descriptor, the lock with it."""
    for fd in (writer._fd, writer._note_fd, writer.directory.fd):
        if fd is not None and fd >= 0:
            os.close(fd)
    if writer._date is not None:
        writer._date.close()


def test_unterminated_file_is_repaired_before_append(tmp_path: Path) -> None:
    """After a crash mid-frame, the next writer closes the frame in place: zstd -t passes, only the torn
    snapshot is lost, and the repair is reported."""
    writer = ArchiveWriter(tmp_path, fsync=False)
    for i in range(3):
        s = snap(i, session(1))
        writer.append(encode_line(s.to_record()), s.ts)
    path = only_partition(tmp_path)
    os.truncate(path, path.stat().st_size - 3)
    abandon(writer)
    writer2 = ArchiveWriter(tmp_path, fsync=False)
    writer2.append(encode_line(snap(10).to_record()), at(10))
    notes = list(writer2.notes)
    writer2.close()
    assert any(event == "partition repaired" for event, _ in notes), notes
    subprocess.run(["zstd", "-q", "-t", str(path)], check=True)
    assert [s.ts for s in ArchiveReader(tmp_path).iter_snapshots()] == [at(0), at(1), at(10)]


def test_second_writer_is_refused(tmp_path: Path) -> None:
    """Two writers on one instance directory: the second gets an ArchiveError naming the lock holder."""
    with ArchiveWriter(tmp_path), pytest.raises(ArchiveError, match="locked by another plsnap writer"):
        ArchiveWriter(tmp_path)


def test_garbage_is_reported_not_raised(tmp_path: Path) -> None:
    """A valid frame followed by junk yields the valid snapshots and one problem report."""
    write(tmp_path, snap(0), snap(1))
    path = only_partition(tmp_path)
    with path.open("ab") as f:
        f.write(b"\x00junk" * 50)
    reader = ArchiveReader(tmp_path)
    assert len(list(reader.iter_snapshots())) == 2
    assert len(reader.problems) == 1
    assert "junk" in reader.problems[0]


def test_junk_between_frames_resyncs(tmp_path: Path) -> None:
    """Junk between two frames loses nothing after it: the reader resyncs on the next frame."""
    write(tmp_path, snap(0))
    path = only_partition(tmp_path)
    with path.open("ab") as f:
        f.write(b"garbage!" * 10)
    data = path.read_bytes()
    write(tmp_path / "other", snap(1))
    path.write_bytes(data + only_partition(tmp_path / "other").read_bytes())
    assert [s.ts for s in ArchiveReader(tmp_path).iter_snapshots()] == [at(0), at(1)]


def test_out_of_order_lines_are_sorted(tmp_path: Path) -> None:
    """After a clock step back within an hour, the reader still yields snapshots in ts order."""
    write(tmp_path, snap(30), snap(40), snap(5))
    assert [s.ts for s in ArchiveReader(tmp_path).iter_snapshots()] == [at(5), at(30), at(40)]


def test_foreign_files_are_listed_apart(tmp_path: Path) -> None:
    """Files that are not partitions are reported as foreign and never as partitions."""
    write(tmp_path, snap(0))
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "2026-11-28" / "99.jsonl.zst").write_text("x")
    listing = list_partitions(tmp_path)
    assert [p.path.name for p in listing.partitions] == ["03.jsonl.zst"]
    assert sorted(p.path.name for p in listing.foreign) == ["99.jsonl.zst", "notes.txt"]


def test_resolve_instance(tmp_path: Path) -> None:
    """The only instance holding partitions is chosen; none or several give NoDataError with a hint; unrelated
    folders are not instances; an instance directory given as the data directory is used as such."""
    with pytest.raises(NoDataError, match="does not exist"):
        resolve_instance(tmp_path / "missing", None)
    (tmp_path / "unrelated").mkdir()
    with pytest.raises(NoDataError, match="no plsnap archive"):
        resolve_instance(tmp_path, None)
    write(tmp_path / "db1", snap(0))
    assert resolve_instance(tmp_path, None) == (tmp_path, "db1")
    write(tmp_path / "db2", snap(0))
    with pytest.raises(NoDataError, match="--instance"):
        resolve_instance(tmp_path, None)
    assert resolve_instance(tmp_path, "db2") == (tmp_path, "db2")
    assert resolve_instance(tmp_path / "db1", None) == (tmp_path, "db1")


def test_file_and_dir_modes(tmp_path: Path) -> None:
    """Partitions are created 0640 and directories 0750 (before umask)."""
    old = os.umask(0)
    try:
        write(tmp_path / "inst", snap(0))
    finally:
        os.umask(old)
    path = only_partition(tmp_path / "inst")
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.parent.stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "inst").stat().st_mode & 0o777 == 0o750


def test_newest_ts_reads_backwards(tmp_path: Path) -> None:
    """newest_ts is the ts of the last snapshot of the newest non-empty partition."""
    write(tmp_path, snap(0), snap(3600 + 5), snap(3600 + 7))
    assert ArchiveReader(tmp_path).newest_ts() == T0 + timedelta(seconds=3607)


def test_duckdb_recipe_reads_the_archive(tmp_path: Path) -> None:
    """The README's DuckDB read_json recipe counts samples per statement across frames and partitions."""
    import duckdb

    root = tmp_path / "db1"
    write(root, *[snap(t, session(1, "SELECT 1"), idle(2)) for t in range(0, 7200, 600)])
    write(root, snap(7300, session(1, "SELECT 2")), gap(7400))
    query = (
        "SELECT s.info, count(*) AS samples "
        f"FROM read_json('{root}/*/*.jsonl.zst', format = 'newline_delimited', compression = 'zstd') AS snap, "
        "unnest(snap.sessions) AS u(s) WHERE s.command <> 'Sleep' GROUP BY 1 ORDER BY 2 DESC"
    )
    assert duckdb.connect().sql(query).fetchall() == [("SELECT 1", 12), ("SELECT 2", 1)]
