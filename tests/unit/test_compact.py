"""Compaction of a closed hour: the same lines, frames and indexes in fewer bytes, done only to a partition in
perfect health, crash-safely, and never outside the archive."""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plsnap.archive import ArchiveWriter
from plsnap.archive import compact as compact_module
from plsnap.archive import writer as writer_module
from plsnap.archive.compact import NO_GAIN, compact_partition
from plsnap.archive.format import INDEX_MAGIC, FrameIndex, PartitionDecoder, decode_lines, encode_line, walk_frame
from plsnap.archive.fs import SafeDir
from plsnap.archive.layout import TEMP_RE, list_partitions
from plsnap.archive.reader import ArchiveReader
from plsnap.config import RetentionConfig
from plsnap.retention import run
from plsnap.rollup import Keeper, Rollups, decode_file
from tests.synth import at
from tests.unit.test_damage import line_of, write_hour
from tests.unit.test_rollup import answers, lines_for


def indexes(data: bytes) -> list[FrameIndex]:
    """Every frame's index, in order (the file must be clean)."""
    decoder = PartitionDecoder(data)
    for _ in decoder.chunks():
        pass
    assert decoder.clean and not decoder.problems
    found = [f.index for f in decoder.frames]
    assert all(index is not None for index in found)
    return [index for index in found if index is not None]


def without_place(found: list[FrameIndex]) -> list[FrameIndex]:
    return [replace(index, offset=0, length=0) for index in found]


def one_hour(tmp_path: Path, seconds: range = range(0, 3600, 5)) -> tuple[Path, list[bytes]]:
    """A closed partition of one sample every 5 s (12 frames of 5 minutes); its path and its lines."""
    lines = write_hour(tmp_path / "inst", seconds)
    (part,) = list_partitions(tmp_path / "inst").partitions
    return part.path, lines


def compact(path: Path, level: int = 9):
    with SafeDir.open_root(path.parent, writable=True) as folder:
        return compact_partition(folder, path.name, level=level)


def test_a_compacted_hour_holds_the_same_lines_frames_and_indexes_in_fewer_bytes(tmp_path: Path) -> None:
    path, lines = one_hour(tmp_path)
    before = path.read_bytes()
    done = compact(path)
    after = path.read_bytes()
    assert done.skipped is None
    assert (done.before, done.after, done.lines) == (len(before), len(after), len(lines))
    assert len(after) < 0.8 * len(before)
    assert decode_lines(after)[0] == lines
    assert without_place(indexes(after)) == without_place(indexes(before))
    assert len(indexes(after)) == 12
    assert not [p for p in path.parent.iterdir() if p.name != path.name]
    with ArchiveReader(tmp_path / "inst") as reader:
        assert len(list(reader.iter_records())) == len(lines)
        assert not reader.problems


def test_compacting_twice_changes_nothing_more(tmp_path: Path) -> None:
    path, _ = one_hour(tmp_path)
    compact(path)
    once = path.read_bytes()
    assert compact(path).skipped == NO_GAIN
    assert path.read_bytes() == once


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seconds=st.lists(st.integers(0, 3599), min_size=1, max_size=80, unique=True).map(sorted),
    frame_seconds=st.sampled_from([0.0, 60.0, 300.0, 900.0]),
    level=st.integers(1, 19),
)
def test_compaction_reads_back_exactly_what_was_written(
    tmp_path_factory: pytest.TempPathFactory, seconds: list[int], frame_seconds: float, level: int
) -> None:
    root = tmp_path_factory.mktemp("prop")
    lines = write_hour(root / "inst", seconds, frame_seconds=frame_seconds)
    (part,) = list_partitions(root / "inst").partitions
    before = part.path.read_bytes()
    done = compact(part.path, level)
    after = part.path.read_bytes()
    assert decode_lines(after)[0] == lines
    assert without_place(indexes(after)) == without_place(indexes(before))
    assert (done.skipped is None) == (after != before)
    assert done.skipped in (None, NO_GAIN)


def _flip(data: bytes, at_byte: int) -> bytes:
    out = bytearray(data)
    out[at_byte] ^= 0x10
    return bytes(out)


DAMAGE = {
    "flipped byte in a frame": lambda data: _flip(data, len(data) // 3),
    "flipped byte in an index": lambda data: _flip(data, data.index(b"plsnap-frame-index") + 3),
    "truncated": lambda data: data[: len(data) * 2 // 3],
    "last index cut": lambda data: data[: data.rindex(b"\x5e\x2a\x4d\x18")],
    "junk between frames": lambda data: (
        data[: data.index(b"\x28\xb5\x2f\xfd", 10)] + b"garbage!" + data[data.index(b"\x28\xb5\x2f\xfd", 10) :]
    ),
    "junk at the end": lambda data: data + b"\x00" * 100,
    "older format without indexes": lambda data: b"".join(part for part in _frames_only(data)),
}


def _frames_only(data: bytes) -> list[bytes]:
    """The data frames of ``data`` without their indexes (a partition as an older writer left it)."""
    decoder = PartitionDecoder(data)
    for _ in decoder.chunks():
        pass
    return [data[f.offset : f.offset + f.index.length] for f in decoder.frames if f.index is not None]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_partition_in_less_than_perfect_health_is_never_rewritten(tmp_path: Path, damage: str) -> None:
    path, _ = one_hour(tmp_path)
    damaged = DAMAGE[damage](path.read_bytes())
    path.write_bytes(damaged)
    done = compact(path)
    assert done.skipped not in (None, NO_GAIN)
    assert path.read_bytes() == damaged
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_line_that_does_not_match_its_crc_stops_compaction(tmp_path: Path) -> None:
    """A frame whose checksum is right but whose index records another line (a writer bug, or a forged file)."""
    path, _ = one_hour(tmp_path, range(0, 60, 5))
    data = path.read_bytes()
    (index,) = indexes(data)
    forged = replace(index, crcs=(index.crcs[0] ^ 1, *index.crcs[1:]))
    start = data.rindex(b"\x5e\x2a\x4d\x18")
    path.write_bytes(data[:start] + forged.encode())
    assert "CRC" in (compact(path).skipped or "")


def test_an_open_partition_is_never_compacted(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path / "inst", fsync=False)
    for second in range(0, 100, 5):
        writer.append(line_of(second), at(second))
    path = writer.current_partition
    assert path is not None
    before = path.read_bytes()
    assert "unterminated" in (compact(path).skipped or "")
    assert path.read_bytes() == before
    writer.close()


def test_a_symlinked_or_hard_linked_partition_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    path, _ = one_hour(tmp_path)
    outside = tmp_path / "outside.zst"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(Exception, match="symlink"):
        compact(path)
    assert path.is_symlink() and outside.read_bytes() == decode_source(outside)
    path.unlink()
    os.link(outside, path)
    with pytest.raises(Exception, match="hard-linked"):
        compact(path)
    assert path.samefile(outside)


def decode_source(path: Path) -> bytes:
    """The file's bytes, after checking that it still decodes cleanly."""
    data = path.read_bytes()
    indexes(data)
    return data


def test_the_writer_compacts_the_hour_it_closes_and_its_rollup_describes_the_compacted_file(tmp_path: Path) -> None:
    root = tmp_path / "inst"
    lines = lines_for(2.3, seed=5)
    writer = ArchiveWriter(root, fsync=False, compact_level=9)
    keeper = Keeper(writer.directory)
    notes = []
    raw_sizes = []
    for line in lines:
        record = line.to_record()
        encoded = encode_line(record)
        writer.append(encoded, line.ts)
        frames, writer.closed_frames = writer.closed_frames, []
        keeper.feed(record, opened=writer.opened, fresh=writer.fresh, frames=frames)
        notes += writer.notes
        writer.notes.clear()
        raw_sizes.append(len(encoded))
    writer.close_partition()
    keeper.close(writer.closed_frames)
    writer.close()
    events = [event for event, _ in notes]
    assert events == ["partition compacted", "partition compacted"], notes
    partitions = list_partitions(root).partitions
    assert len(partitions) == 3
    with ArchiveReader(root) as reader:
        assert list(reader.iter_records()) == [s.to_record() for s in lines]
    for part in partitions[:2]:
        data = part.path.read_bytes()
        assert blocks_per_frame(data) == [1] * len(indexes(data))
        header = decode_file((part.path.parent / part.rollup).read_bytes()).header
        assert header.complete and header.size == len(data)
    with ArchiveReader(root) as reader:
        rollups = Rollups(reader)
        for part in partitions[:2]:
            assert rollups.get(part) is not None
        assert not rollups.stale
    _, stale = answers(root, lines[0].ts + timedelta(minutes=7), lines[-1].ts)
    assert not stale


def blocks_per_frame(data: bytes) -> list[int]:
    """How many zstd blocks each data frame has (the writer flushes one per line; compaction writes few)."""
    return [len(walk_frame(data, index.offset).block_ends) for index in indexes(data)]


def test_a_writer_without_a_compaction_level_leaves_the_hour_as_written(tmp_path: Path) -> None:
    root = tmp_path / "inst"
    with ArchiveWriter(root, fsync=False) as writer:
        for second in range(0, 4000, 30):
            writer.append(line_of(second), at(second))
        assert not writer.notes
    first = list_partitions(root).partitions[0].path.read_bytes()
    assert blocks_per_frame(first) == [index.lines + 1 for index in indexes(first)]


CHILD = """
import resource, signal, sys
from pathlib import Path
from plsnap.archive.fs import SafeDir
from plsnap.archive.compact import compact_partition
limit = int(sys.argv[2])
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
path = Path(sys.argv[1])
print("ready", flush=True)
with SafeDir.open_root(path.parent, writable=True) as folder:
    try:
        print(compact_partition(folder, path.name, level=int(sys.argv[3])), flush=True)
    except OSError as exc:
        print("OSError", exc.errno, flush=True)
"""


def _child(path: Path, *, limit: int = 0, level: int = 19) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(limit), str(level)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_full_disk_leaves_the_partition_as_it_was_and_no_temp_file(tmp_path: Path) -> None:
    """The file-size limit makes the kernel refuse the temp file's writes (EFBIG), as a full disk would."""
    path, _ = one_hour(tmp_path)
    before = path.read_bytes()
    proc = _child(path, limit=len(before) // 4, level=9)
    out, _ = proc.communicate(timeout=120)
    assert out.strip() == "OSError 27", out
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, 0.6, 1.0])
def test_kill_9_at_any_instant_leaves_the_old_file_or_the_new_one(tmp_path: Path, delay: float) -> None:
    path, lines = one_hour(tmp_path, range(0, 3600, 2))
    before = path.read_bytes()
    proc = _child(path)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    after = path.read_bytes()
    assert decode_lines(after)[0] == lines
    assert without_place(indexes(after)) == without_place(indexes(before))
    leftovers = [p.name for p in path.parent.iterdir() if p.name != path.name]
    assert all(TEMP_RE.match(name) for name in leftovers), leftovers
    with ArchiveWriter(tmp_path / "inst", fsync=False) as writer:
        writer.append(line_of(3601), at(3601))
    assert decode_lines(path.read_bytes())[0] == lines
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, "04.jsonl.zst"]


def test_retention_removes_the_temp_files_a_crash_left_for_an_hour_with_the_hour(tmp_path: Path) -> None:
    root = tmp_path / "inst"
    with ArchiveWriter(root, fsync=False) as writer:
        for second in range(0, 3 * 3600, 600):
            writer.append(line_of(second), at(second))
    folder = list_partitions(root).partitions[0].path.parent
    own = [".03.jsonl.zst.0123abcd.tmp", ".03.rollup.json.zst.89abcdef.tmp"]
    others = [".05.jsonl.zst.0123abcd.tmp", ".03.jsonl.zst.tmp", "03.notes"]
    for name in own + others:
        (folder / name).write_bytes(b"x")
    config = RetentionConfig(max_age=3600.0)
    with SafeDir.open_root(root, writable=True) as instance:
        outcome = run(instance, config, newest_snapshot=at(2 * 3600 + 1800))
    assert [d.partition.start for d in outcome.deleted] == [at(0)]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["04.jsonl.zst", "05.jsonl.zst", *others])


def _index_bytes(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every index frame in ``data``."""
    spans = []
    at_byte = data.find(INDEX_MAGIC)
    while at_byte >= 0:
        length = int.from_bytes(data[at_byte + 4 : at_byte + 8], "little")
        spans.append((at_byte, at_byte + 8 + length))
        at_byte = data.find(INDEX_MAGIC, at_byte + 8 + length)
    return spans


def _in_first_index(change):
    """A damage that rewrites the payload of the first index (its length field kept right)."""

    def apply(data: bytes) -> bytes:
        start, end = _index_bytes(data)[0]
        payload = change(data[start + 8 : end])
        return data[: start + 4] + struct.pack("<I", len(payload)) + payload + data[end:]

    return apply


def _other_frame(lines: list[bytes], *, checksum: bool = True, tail: bytes = b"") -> bytes:
    """A data frame as the writer would compress it (a flushed block per line), without its index."""
    cobj = zstandard.ZstdCompressor(level=3, write_checksum=checksum).compressobj()
    body = b"".join(cobj.compress(line + b"\n") + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK) for line in lines)
    return body + cobj.compress(tail) + cobj.flush()


def _rebuilt(data: bytes, frame_of) -> bytes:
    """``data`` with every frame replaced by ``frame_of(lines)`` and its index re-encoded to match."""
    out = b""
    decoder = PartitionDecoder(data)
    lines = [line for chunk in decoder.chunks() for line in chunk.split(b"\n")[:-1]]
    position = 0
    for report in decoder.frames:
        assert report.index is not None
        mine = lines[position : position + report.index.lines]
        position += report.index.lines
        frame = frame_of(mine)
        out += frame + replace(report.index, offset=len(out), length=len(frame)).encode()
    return out


SUBTLE = {
    # each leaves every line readable, so only a check of the file's exact form can tell
    "index of another version": _in_first_index(lambda p: p.replace(b'"v":2', b'"v":3')),
    "index with an unknown key": _in_first_index(lambda p: p[:-1] + b',"new":1}'),
    "index offset flipped": _in_first_index(lambda p: p.replace(b'"offset":0,', b'"offset":8,')),
    "index raw_bytes wrong": _in_first_index(lambda p: re.sub(rb'"raw_bytes":(\d)', rb'"raw_bytes":9\1', p)),
    "index ts range wrong": _in_first_index(lambda p: p.replace(b'"min_ts":"2', b'"min_ts":"3')),
    "index crc in upper case": _in_first_index(
        lambda p: re.sub(rb'("crc":"[0-9]*)([a-f])', lambda m: m[1] + m[2].upper(), p, count=1)
    ),
    "a foreign skippable frame": lambda data: data + b"\x50\x2a\x4d\x18" + struct.pack("<I", 5) + b"HELLO",
    "a stray index": lambda data: data + FrameIndex(999, 1, 1, 1, "", "", True, (1,)).encode(),
    "frames without checksums": lambda data: _rebuilt(data, lambda lines: _other_frame(lines, checksum=False)),
    "bytes after the last line of a frame": lambda data: _rebuilt(
        data, lambda lines: _other_frame(lines, tail=b'{"ts":"p')
    ),
}


@pytest.mark.parametrize("damage", list(SUBTLE))
def test_a_partition_not_exactly_in_the_writers_form_is_never_rewritten(tmp_path: Path, damage: str) -> None:
    path, _ = one_hour(tmp_path, range(0, 900, 5))
    changed = SUBTLE[damage](path.read_bytes())
    assert changed != path.read_bytes()
    path.write_bytes(changed)
    done = compact(path)
    assert done.skipped not in (None, NO_GAIN)
    assert path.read_bytes() == changed


def test_a_frame_larger_than_compaction_takes_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = one_hour(tmp_path, range(0, 900, 5))
    biggest = max(index.raw_bytes for index in indexes(path.read_bytes()))
    monkeypatch.setattr(compact_module, "MAX_FRAME_BYTES", biggest - 1)
    before = path.read_bytes()
    assert "larger than compaction takes" in (compact(path).skipped or "")
    assert path.read_bytes() == before


def test_the_closing_mark_a_crash_left_survives_compaction(tmp_path: Path) -> None:
    """A writer dies between two frames; the next appends the closing mark, goes on in the same hour and rotates:
    the compacted hour keeps that mark (and every line)."""
    root = tmp_path / "inst"
    writer = ArchiveWriter(root, fsync=False, frame_seconds=60)
    for second in range(0, 125, 5):
        writer.append(line_of(second), at(second))
    path = writer.current_partition
    assert path is not None
    data = path.read_bytes()
    os.close(writer._fd)
    writer._dir.close()
    path.write_bytes(data[: data.rindex(b"\x28\xb5\x2f\xfd")])  # it died just after closing a frame
    lines = decode_lines(path.read_bytes())[0]
    writer = ArchiveWriter(root, fsync=False, frame_seconds=60, compact_level=9)
    writer.recover()
    assert [event for event, _ in writer.notes] == ["partition closed"]
    for second in range(130, 3605, 5):
        line = line_of(second)
        writer.append(line, at(second))
        if second < 3600:
            lines.append(line.rstrip(b"\n"))
    assert "partition compacted" in [event for event, _ in writer.notes], writer.notes
    writer.close()
    after = path.read_bytes()
    assert decode_lines(after)[0] == lines
    marks = [data for data in (after[s:e] for s, e in _index_bytes(after)) if b'"closed":true' in data]
    assert len(marks) == 2  # the mark and the last frame's own index
    assert len(_index_bytes(after)) == len(indexes(after)) + 1


def test_a_compaction_that_fails_in_any_way_never_stops_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the compaction runs out of memory; the hour stays as written and appends go on."""

    def out_of_memory(*_: object, **__: object) -> None:
        raise MemoryError

    monkeypatch.setattr(writer_module, "compact_partition", out_of_memory)
    root = tmp_path / "inst"
    with ArchiveWriter(root, fsync=False, compact_level=9) as writer:
        for second in range(0, 3700, 30):
            writer.append(line_of(second), at(second))
        assert ("partition not compacted", f"{root / '2026-11-28' / '03.jsonl.zst'}: MemoryError") in writer.notes
    first = list_partitions(root).partitions[0].path.read_bytes()
    assert blocks_per_frame(first) == [index.lines + 1 for index in indexes(first)]
    assert len(decode_lines(first)[0]) == len(range(0, 3600, 30))
