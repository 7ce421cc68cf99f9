"""Damaged history is never destroyed or hidden: what readers recover, what the writer may touch, and what
verify, retention and prune --dry-run say about damaged partitions."""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from plsnap import query, render
from plsnap.archive import ArchiveReader, ArchiveWriter
from plsnap.archive.format import FrameIndex, PartitionDecoder, decode_lines, encode_line, walk_frame
from plsnap.archive.fs import SafeDir
from plsnap.archive.layout import list_partitions
from plsnap.config import RetentionConfig
from plsnap.errors import NoDataError
from plsnap.model import format_ts, parse_ts
from plsnap.retention import run
from plsnap.verify import verify
from tests.synth import T0, at, session, snap


def line_of(seconds: float) -> bytes:
    """The encoded line of a sample at ``T0 + seconds`` with some varying text (so blocks differ)."""
    text = f"SELECT {seconds} FROM t WHERE note = '{'x' * (int(seconds) % 97)}'"
    return encode_line(snap(seconds, session(int(seconds) % 50 + 1, text)).to_record())


def write_hour(instance_dir: Path, seconds: range, *, frame_seconds: float = 300.0) -> list[bytes]:
    """Write one sample per value of ``seconds`` and close; return the lines (without newline) as written."""
    lines = []
    with ArchiveWriter(instance_dir, fsync=False, frame_seconds=frame_seconds) as writer:
        for second in seconds:
            line = line_of(second)
            writer.append(line, at(second))
            lines.append(line.rstrip(b"\n"))
    return lines


def frames_of(data: bytes) -> list[tuple[int, int, list[bytes], list[int]]]:
    """(offset, end, lines, block ends) of every data frame of an intact file: with one block flushed per
    snapshot, line i of a frame is complete once block i is."""
    decoder = PartitionDecoder(data)
    spans = []
    lines: list[bytes] = []
    for chunk in decoder.chunks():
        lines += [line for line in chunk.split(b"\n") if line]
    position = 0
    for frame in decoder.frames:
        ends = walk_frame(data, frame.offset).block_ends
        spans.append((frame.offset, frame.end, lines[position : position + frame.lines], ends))
        position += frame.lines
    return spans


def abandon(writer: ArchiveWriter) -> None:
    """Simulate a kill -9: drop every descriptor without closing the frame."""
    for fd in (writer._fd, writer._note_fd):
        if fd is not None:
            os.close(fd)
    if writer._date is not None:
        writer._date.close()
    writer.directory.close()


def test_reader_recovers_every_line_before_a_flip_in_a_frame(tmp_path: Path) -> None:
    """Eight flipped bytes in the middle of a frame lose only the lines from there to the frame's end: every
    complete line before them and every other frame are read, and the loss is counted from the frame index."""
    lines = write_hour(tmp_path, range(0, 3600, 5))
    path = list_partitions(tmp_path).partitions[0].path
    data = bytearray(path.read_bytes())
    offset, end, frame_lines, _ = frames_of(bytes(data))[5]
    middle = offset + (end - offset) * 2 // 3
    for i in range(8):
        data[middle + i] ^= 0xA5
    got, decoder = decode_lines(bytes(data))
    damaged = [f for f in decoder.frames if f.status == "damaged"]
    assert len(damaged) == 1
    kept = damaged[0].lines
    assert 0 < kept < len(frame_lines)
    assert got == [line for line in lines if line not in frame_lines[kept:]]
    assert damaged[0].lost == len(frame_lines) - kept


def test_a_frame_whose_block_header_is_damaged_hides_nothing_after_it(tmp_path: Path) -> None:
    """A bad block header in the first frame (its end cannot be walked) costs that frame only: a read of a later
    span, which skips the damaged frame by its index, still finds every line of the later frames."""
    instance = tmp_path / "db1"
    lines = write_hour(instance, range(0, 900, 10))
    (partition,) = list_partitions(instance).partitions
    data = bytearray(partition.path.read_bytes())
    block = zstandard.frame_header_size(bytes(data[:18]))
    data[block + 2] ^= 0x10
    partition.path.write_bytes(bytes(data))
    with ArchiveReader(instance) as reader:
        later = [r["ts"] for r in reader.iter_records(at(300), at(600))]
        whole = [r["ts"] for r in reader.iter_records()]
    expected = [orjson.loads(line)["ts"] for line in lines[30:60]]
    assert later == expected
    assert [ts for ts in whole if at(300) <= parse_ts(ts) < at(600)] == expected


def test_garbled_lines_of_a_damaged_frame_are_dropped_by_their_crc(tmp_path: Path) -> None:
    """A flip that zstd decodes into different bytes (a literal inside a block) never reaches the reader: the
    frame index's per-line CRC rejects the garbled line, the loss is counted and the drop is reported."""
    write_hour(tmp_path, range(0, 600, 5), frame_seconds=300)
    path = list_partitions(tmp_path).partitions[0].path
    data = path.read_bytes()
    written = {line for frame in frames_of(data) for line in frame[2]}
    offset, end, _, _ = frames_of(data)[0]
    for where in range(offset + 12, end - 8):
        damaged = bytearray(data)
        damaged[where] ^= 0x01
        got, decoder = decode_lines(bytes(damaged))
        frame = decoder.frames[0]
        if frame.rejected:
            break
    else:
        pytest.fail("no single-bit flip garbled a line")
    assert set(got) <= written
    assert frame.lost == frame.index.lines - frame.lines >= frame.rejected
    assert any("failed their CRC check" in problem for problem in decoder.problems)


def test_truncated_closed_partition_is_reported_with_its_losses(tmp_path: Path) -> None:
    """A closed partition cut to half its size is read up to the cut, and verify, the reader and check all say
    it is damaged, with the snapshots it lost (estimated from the interval)."""
    write_hour(tmp_path, range(0, 3600, 10))
    write_hour(tmp_path, range(3600, 3700, 10))
    first = list_partitions(tmp_path).partitions[0].path
    data = first.read_bytes()
    first.write_bytes(data[: len(data) // 2])
    reader = ArchiveReader(tmp_path)
    got = list(reader.iter_records(at(0), at(3600)))
    assert 100 < len(got) < 360
    assert any("crash or truncation" in p or "not closed by its writer" in p for p in reader.problems)
    report = verify(ArchiveReader(tmp_path))
    (bad,) = report.damaged
    assert bad.partition.path == first
    assert bad.lost_unknown
    assert bad.lost_estimate == 360 - len(got)


def test_startup_never_rewrites_a_closed_damaged_partition(tmp_path: Path) -> None:
    """A bit-flipped older partition stays byte for byte as it was when the next writer starts, appends and
    stops, even when the crash note names it; the damage is reported, never repaired away."""
    write_hour(tmp_path, range(0, 3600, 10))
    older = list_partitions(tmp_path).partitions[0].path
    data = bytearray(older.read_bytes())
    for i in range(8):
        data[len(data) // 3 + i] ^= 0xFF
    older.write_bytes(bytes(data))
    (tmp_path / ".plsnap.lock").write_text(f"99999\n{older.parent.name}/{older.name}\n")
    with ArchiveWriter(tmp_path, fsync=False) as writer:
        writer.recover()
        writer.append(line_of(7200), at(7200))
        notes = list(writer.notes)
    assert older.read_bytes() == bytes(data)
    assert any(event == "damaged partition left alone" for event, _ in notes), notes


def test_damaged_current_hour_is_set_aside_untouched(tmp_path: Path) -> None:
    """When the hour being written is damaged (not a crash tail), the writer renames it to .damaged, leaves
    its bytes alone and starts a new file; readers read both, and nothing is read twice."""
    lines = write_hour(tmp_path, range(0, 1800, 10))
    path = list_partitions(tmp_path).partitions[0].path
    data = bytearray(path.read_bytes())
    for i in range(8):
        data[len(data) // 2 + i] ^= 0x5A
    path.write_bytes(bytes(data))
    recovered, _ = decode_lines(bytes(data))
    more = write_hour(tmp_path, range(1800, 1900, 10))
    aside = path.with_name(path.name + ".damaged")
    assert aside.read_bytes() == bytes(data)
    subprocess.run(["zstd", "-q", "-t", str(path)], check=True)
    reader = ArchiveReader(tmp_path)
    got = [orjson.dumps(r) for r in reader.iter_records()]
    assert got == recovered + more
    assert set(got) <= set(lines + more)
    assert any(".damaged" in p for p in reader.problems)
    (part,) = list_partitions(tmp_path).partitions
    assert part.damaged == (aside.name,)
    assert part.size == path.stat().st_size + aside.stat().st_size


def test_damaged_files_count_for_retention_and_go_with_their_partition(tmp_path: Path) -> None:
    """A set-aside damaged file counts toward max_bytes, is listed by a dry run, and is deleted with its
    partition (and only then)."""
    write_hour(tmp_path, range(0, 600, 10))
    (part,) = list_partitions(tmp_path).partitions
    aside = part.path.with_name(part.path.name + ".damaged")
    aside.write_bytes(os.urandom(50_000))
    write_hour(tmp_path, range(3600, 3700, 10))
    policy = RetentionConfig(max_bytes=40_000)
    with SafeDir.open_root(tmp_path, writable=True) as directory:
        dry = run(directory, policy, newest_snapshot=at(3690), dry_run=True)
        assert [(d.partition.start, d.keep, d.partition.damaged) for d in dry.decisions] == [
            (T0, False, (aside.name,)),
            (T0 + timedelta(hours=1), True, ()),
        ]
        assert aside.exists()
        outcome = run(directory, policy, newest_snapshot=at(3690))
    assert len(outcome.deleted) == 1
    assert not aside.exists() and not part.path.exists()


def test_crash_tail_is_closed_in_place_keeping_every_line(tmp_path: Path) -> None:
    """A writer killed with a half-written block leaves a file whose complete lines all survive the next
    start, in place (same inode, nothing set aside), and which then passes zstd -t."""
    writer = ArchiveWriter(tmp_path, fsync=False)
    lines = []
    for second in range(0, 200, 5):
        line = line_of(second)
        writer.append(line, at(second))
        lines.append(line.rstrip(b"\n"))
    path = writer.current_partition
    assert path is not None
    inode = path.stat().st_ino
    with path.open("ab") as handle:
        handle.write(b"\x44\x02\x00partial")
    abandon(writer)
    with ArchiveWriter(tmp_path, fsync=False) as second:
        second.recover()
        assert any(event == "partition repaired" for event, _ in second.notes)
    assert path.stat().st_ino == inode
    assert not list(tmp_path.rglob("*.damaged*"))
    subprocess.run(["zstd", "-q", "-t", str(path)], check=True)
    assert decode_lines(path.read_bytes())[0] == lines
    assert not verify(ArchiveReader(tmp_path)).damaged


def test_directory_where_a_partition_should_be_is_reported(tmp_path: Path) -> None:
    """A directory named like a partition is listed as foreign with a reason, and the reader reports it."""
    write_hour(tmp_path, range(0, 60, 10))
    (tmp_path / "2026-11-28" / "05.jsonl.zst").mkdir()
    listing = list_partitions(tmp_path)
    assert [f.reason for f in listing.foreign] == ["is a directory where a partition file should be"]
    reader = ArchiveReader(tmp_path)
    list(reader.iter_records())
    assert any("05.jsonl.zst: is a directory" in p for p in reader.problems)


def test_writer_refuses_a_directory_where_its_partition_should_be(tmp_path: Path) -> None:
    """The writer says clearly that the partition it must write is not a file."""
    (tmp_path / "2026-11-28" / "03.jsonl.zst").mkdir(parents=True)
    with ArchiveWriter(tmp_path, fsync=False) as writer, pytest.raises(Exception, match=r"03\.jsonl\.zst"):
        writer.append(line_of(0), at(0))


@functools.cache
def reference() -> tuple[bytes, list[bytes], list[tuple[int, int, list[bytes], list[int]]]]:
    """One closed partition of 2-minute frames (built once): its bytes, lines and frames."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "inst"
        lines = write_hour(root, range(0, 1200, 10), frame_seconds=120)
        data = list_partitions(root).partitions[0].path.read_bytes()
    return data, lines, frames_of(data)


def damaged_copy(data: bytes, change: tuple[str, int, int]) -> bytes:
    """``data`` after one change: ``size`` bytes flipped, ``size`` bytes inserted, or cut, at ``where`` (taken
    modulo the length)."""
    kind, where, size = change
    where %= len(data)
    damaged = bytearray(data)
    if kind == "flip":
        for i in range(min(size, len(data) - where)):
            damaged[where + i] ^= 0xFF
    elif kind == "insert":
        damaged[where:where] = bytes(range(size))
    else:
        del damaged[where:]
    return bytes(damaged)


damage = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 16)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(1, 64)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
)


@settings(max_examples=int(os.environ.get("PLSNAP_DAMAGE_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(damage)
@example(("flip", 2562, 2))
def test_damage_property(change: tuple[str, int, int]) -> None:
    """Whatever one flip, insertion or truncation does: every line whose block lies wholly before the damage is
    recovered (intact frames, and the complete lines before the damage in the damaged frame), every frame after
    a flip or an insertion is recovered, no recovered line differs from what was written unless its frame is
    reported unverified, and the lost lines of a damaged frame are counted when its frame index survived."""
    data, lines, frames = reference()
    kind, where, size = change
    where %= len(data)
    got, decoder = decode_lines(damaged_copy(data, change))
    for offset, _, frame_lines, block_ends in frames:
        for line, block_end in zip(frame_lines, block_ends, strict=False):
            if block_end <= where:
                assert line in got
        if kind != "truncate" and offset > where + size + 256:
            assert all(line in got for line in frame_lines)
    unverified = any(f.unverified for f in decoder.frames)
    if not unverified:
        assert set(got) <= set(lines)
        assert len(got) == len(set(got))
    for frame in decoder.frames:
        if frame.status == "damaged" and frame.index is not None:
            assert frame.lost == frame.index.lines - frame.lines


def _ranged(data: bytes, low: str, high: str, *, seek: bool) -> tuple[list[bytes], dict[int, str]]:
    """The lines of ``[low, high)`` that a reader of that span decodes, and the status of each frame by offset."""
    decoder = PartitionDecoder(
        data, want=lambda index: not (index.min_ts >= high or index.max_ts < low), seek_by_index=seek
    )
    lines = [line for chunk in decoder.chunks() for line in chunk.split(b"\n") if line]
    inside = [line for line in lines if low.encode() <= line[7:31] < high.encode()]
    return inside, {f.offset: f.status for f in decoder.frames}


@settings(max_examples=int(os.environ.get("PLSNAP_DAMAGE_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(st.one_of(st.none(), damage), st.integers(0, 1200), st.integers(1, 600))
@example(None, 300, 200)
@example(("flip", 24873, 16), 0, 1)
@example(("flip", 6, 1), 111, 1)
def test_seeking_by_index_reads_what_walking_every_frame_reads(
    change: tuple[str, int, int] | None, start: int, length: int
) -> None:
    """A reader of a time span that judges unwanted frames by the index right after them, without walking
    their blocks, finds the same lines of the span as one that walks every frame, on an intact file and
    whatever one flip, insertion or truncation did to it. Every frame it decodes, the walking reader decodes
    with the same status; the only frames it skips that the walker decodes are damaged ones outside the span
    whose index survived."""
    data, lines, _ = reference()
    damaged = data if change is None else damaged_copy(data, change)
    low, high = format_ts(at(start)), format_ts(at(start + length))
    walked, walked_frames = _ranged(damaged, low, high, seek=False)
    seeking, seeking_frames = _ranged(damaged, low, high, seek=True)
    assert seeking == walked
    for offset, status in seeking_frames.items():
        if status != "skipped":
            assert walked_frames.get(offset) == status
        elif walked_frames.get(offset, "skipped") != "skipped":
            assert walked_frames[offset] in ("damaged", "checksum")
    if change is None:
        assert seeking == [line for line in lines if low.encode() <= line[7:31] < high.encode()]
        assert walked_frames == seeking_frames


def test_frames_without_an_index_turn_seeking_off_once() -> None:
    """In a file of frames without indexes (as version 1 wrote them), the first frame's search for its index
    finds none and seeking stays off for the rest of the file, which is walked frame by frame (searching to
    the end of the file once per frame would take quadratic time); the lines read are the walker's. In a file
    whose frames all have their index, seeking stays on."""
    _, lines, _ = reference()
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    plain = b"".join(compressor.compress(b"\n".join(lines[i : i + 5]) + b"\n") for i in range(0, len(lines), 5))
    low, high = format_ts(at(300)), format_ts(at(400))
    decoder = PartitionDecoder(plain, want=lambda index: False, seek_by_index=True)
    got = [line for chunk in decoder.chunks() for line in chunk.split(b"\n") if line]
    assert got == lines
    assert decoder.seek_by_index is False
    assert _ranged(plain, low, high, seek=True) == _ranged(plain, low, high, seek=False)
    indexed = PartitionDecoder(reference()[0], want=lambda index: False, seek_by_index=True)
    assert list(indexed.chunks()) == []
    assert indexed.seek_by_index is True
    assert {f.status for f in indexed.frames} == {"skipped"}


def lie_about_frame(path: Path, position: int, min_ts: str, max_ts: str, lines: int | None = None) -> None:
    """Rewrite the index of the ``position``-th data frame of ``path`` with another ``ts`` range (and line count),
    keeping its length (so every offset stays right): an index that lies but decodes."""
    data = path.read_bytes()
    decoder = PartitionDecoder(data)
    for _ in decoder.chunks():
        pass
    frame = decoder.frames[position]
    assert frame.index is not None
    start = frame.offset + frame.index.length
    changed = dataclasses.replace(frame.index, min_ts=min_ts, max_ts=max_ts, lines=lines or frame.index.lines)
    encoded = changed.encode()
    end = start + 8 + int.from_bytes(data[start + 4 : start + 8], "little")
    assert len(encoded) == end - start
    path.write_bytes(data[:start] + encoded + data[end:])


def write_long_statement(instance: Path) -> None:
    """A closed partition of 5-minute frames (03:00 to 03:15, a sample every 10 s) in which session 7 runs one
    statement throughout, and each sample shows another short one: ``at`` lists its first sighting in range."""
    with ArchiveWriter(instance, fsync=False, frame_seconds=300) as writer:
        for second in range(0, 900, 10):
            sample = snap(second, session(7, "SELECT long", time=second), session(100 + second, f"SELECT {second}"))
            writer.append(encode_line(sample.to_record()), at(second))


def answer_of(instance: Path, moment: datetime) -> tuple[dict[str, object], list[str]]:
    """What ``plsnap at --format json`` says at ``moment``, and the reader's warnings."""
    with ArchiveReader(instance) as reader:
        try:
            return render.at_json(query.at(reader, moment)), reader.problems
        except NoDataError as exc:
            return {"no data": str(exc)}, reader.problems


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("2026-11-28T03:00:00.000Z", "2026-11-28T03:04:50.000Z"),  # the frame before's range
        ("2026-11-28T03:10:00.000Z", "2026-11-28T03:14:50.000Z"),  # the frame after's range
        ("2026-11-28T03:09:50.000Z", "2026-11-28T03:05:00.000Z"),  # first after last
        ("2026-11-28T05:05:00.000Z", "2026-11-28T05:09:50.000Z"),  # another hour
        ("2026-11-28T03:05:00.000Z", "2026-11-28T03:05:30.000Z"),  # narrower than the frame
    ],
)
def test_a_frame_index_whose_ts_range_lies_is_reported_by_verify(tmp_path: Path, first: str, last: str) -> None:
    """An index that decodes but whose ts range is not its frame's lines' is damage: verify, which reads every
    frame, reports the partition as damaged and names the frame, although every line of it is intact."""
    instance = tmp_path / "db1"
    write_hour(instance, range(0, 900, 10))
    (partition,) = list_partitions(instance).partitions
    lie_about_frame(partition.path, 1, first, last)
    with ArchiveReader(instance) as reader:
        report = verify(reader)
    (check,) = report.partitions
    assert check.status == "damaged"
    assert any("its index does not match its lines" in problem for problem in check.problems)


@pytest.mark.parametrize(
    ("first", "last", "moment"),
    [
        ("2026-11-28T03:00:00.000Z", "2026-11-28T03:04:50.000Z", 420),
        ("2026-11-28T03:10:00.000Z", "2026-11-28T03:14:50.000Z", 420),
        ("2026-11-28T03:09:50.000Z", "2026-11-28T03:05:00.000Z", 420),
        ("2026-11-28T05:05:00.000Z", "2026-11-28T05:09:50.000Z", 420),
        ("9999-99-99T99:99:99.999Z", "0000-00-00T00:00:00.000Z", 420),
    ],
)
def test_at_never_answers_differently_by_a_lying_index_without_a_warning(
    tmp_path: Path, first: str, last: str, moment: int
) -> None:
    """``at`` chooses frames by their indexes: one whose ts range lies (shifted onto a neighbour, reversed, in
    another hour, absurd) gives the answer of an intact archive, or a warning naming the lying index."""
    instance = tmp_path / "db1"
    write_long_statement(instance)
    truth, clean_problems = answer_of(instance, at(moment))
    assert clean_problems == []
    (partition,) = list_partitions(instance).partitions
    lie_about_frame(partition.path, 1, first, last)
    got, problems = answer_of(instance, at(moment))
    assert got == truth or any("its index does not match its lines" in p for p in problems)


def index_payload_span(data: bytes, position: int) -> tuple[int, int]:
    """Where the payload of the ``position``-th data frame's index lies in ``data``."""
    _, index_at, end = units_of(data)[position]
    return index_at + 8, end


@pytest.mark.parametrize(
    ("key", "digit", "flip"), [(b'"min_ts":"2026-11-28T03:0', b"5", 0x02), (b'"max_ts":"2026-11-28T03:0', b"9", 0x01)]
)
def test_one_flipped_digit_of_an_index_ts_is_damage_not_a_hidden_frame(
    tmp_path: Path, key: bytes, digit: bytes, flip: int
) -> None:
    """A flipped bit in a frame index's ``ts`` range turns 03:05 into 03:07, or 03:09 into 03:08 (a plausible,
    narrower range): its
    ``sum`` no longer holds, so ``at`` decodes the frame and gives the intact answer, and the index is reported."""
    instance = tmp_path / "db1"
    write_long_statement(instance)
    truth, _ = answer_of(instance, at(605))
    (partition,) = list_partitions(instance).partitions
    data = bytearray(partition.path.read_bytes())
    start, end = index_payload_span(bytes(data), 1)
    where = data.index(key, start, end) + len(key)
    assert data[where : where + 1] == digit
    data[where] ^= flip
    partition.path.write_bytes(bytes(data))
    got, problems = answer_of(instance, at(605))
    assert got == truth
    assert any("unreadable frame index" in problem for problem in problems)


def test_every_single_bit_flip_in_an_index_payload_is_caught() -> None:
    """No one-bit change of an index payload decodes as an index, not even a flip in the name of ``sum`` (which
    would otherwise read as an older writer's index without one)."""
    index = FrameIndex(123, 4567, 2, 890, "2026-11-28T03:05:00.000Z", "2026-11-28T03:09:50.000Z", False, (7, 9))
    payload = index.encode()[8:]
    assert FrameIndex.decode(payload) == index
    for bit in range(len(payload) * 8):
        flipped = bytearray(payload)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert FrameIndex.decode(bytes(flipped)) is None, bit


def test_an_index_without_a_sum_is_used_for_counts_but_never_to_skip(tmp_path: Path) -> None:
    """An older writer's index (no ``sum``) still counts a frame's snapshots, but a read of a span decodes its
    frame rather than trust its ``ts`` range: narrowed by hand, it cannot hide the frame from ``at``."""
    instance = tmp_path / "db1"
    write_long_statement(instance)
    truth, _ = answer_of(instance, at(605))
    (partition,) = list_partitions(instance).partitions
    data = partition.path.read_bytes()
    start, end = index_payload_span(data, 1)
    old = orjson.loads(data[start:end])
    assert old.pop("sum")
    old["min_ts"], old["max_ts"] = "2026-11-28T03:05:00.000Z", "2026-11-28T03:05:30.000Z"
    payload = orjson.dumps(old)
    unchecked = FrameIndex.decode(payload)
    assert unchecked is not None and not unchecked.checked
    partition.path.write_bytes(data[: start - 4] + len(payload).to_bytes(4, "little") + payload + data[end:])
    got, _ = answer_of(instance, at(605))
    assert got == truth


def units_of(data: bytes) -> list[tuple[int, int, int]]:
    """(frame start, index start, index end) of each data frame of an intact file."""
    decoder = PartitionDecoder(data)
    for _ in decoder.chunks():
        pass
    units = []
    for frame in decoder.frames:
        assert frame.index is not None
        index_at = frame.offset + frame.index.length
        units.append(
            (frame.offset, index_at, index_at + 8 + int.from_bytes(data[index_at + 4 : index_at + 8], "little"))
        )
    return units


def flip_byte(data: bytes, where: int) -> bytes:
    return data[:where] + bytes([data[where] ^ 0x01]) + data[where + 1 :]


#: Changes of which frames and indexes a partition holds (``u`` its (frame, index, end) offsets, ``o`` those
#: of a partition of another hour, ``d`` and ``x`` their bytes); every piece stays intact on its own.
SPLICES: dict[str, Callable[[bytes, bytes, list[tuple[int, int, int]], list[tuple[int, int, int]]], bytes]] = {
    "index magic flipped": lambda d, x, u, o: flip_byte(d, u[1][1]),
    "a bit of the sum key's name flipped": lambda d, x, u, o: flip_byte(d, d.index(b'"sum"', u[1][1]) + 1),
    "cut between the first frame and its index": lambda d, x, u, o: d[: u[0][1]],
    "the second frame and its index removed": lambda d, x, u, o: d[: u[1][0]] + d[u[1][2] :],
    "the second frame and its index duplicated": lambda d, x, u, o: d[: u[1][2]] + d[u[1][0] : u[1][2]] + d[u[1][2] :],
    "a frame and its index of another hour inserted": lambda d, x, u, o: (
        d[: u[1][0]] + x[o[0][0] : o[0][2]] + d[u[1][0] :]
    ),
    "the first index moved after the second frame": lambda d, x, u, o: (
        d[: u[0][1]] + d[u[0][2] : u[1][1]] + d[u[0][1] : u[0][2]] + d[u[1][1] :]
    ),
}


@pytest.mark.parametrize("case", sorted(SPLICES))
def test_frames_and_indexes_cut_moved_or_spliced_are_reported_by_readers_and_verify(tmp_path: Path, case: str) -> None:
    """Every change of which frames and indexes a partition holds, where each piece is intact on its own, is
    damage: verify reports it, and a read of the hour and ``at`` report it whenever their answer differs."""
    instance, elsewhere = tmp_path / "db1", tmp_path / "other"
    write_long_statement(instance)
    write_hour(elsewhere, range(3600, 3900, 10))
    (partition,) = list_partitions(instance).partitions
    (foreign,) = list_partitions(elsewhere).partitions
    truth = {moment: answer_of(instance, at(moment))[0] for moment in (0, 305, 605, 895)}
    data, other = partition.path.read_bytes(), foreign.path.read_bytes()
    partition.path.write_bytes(SPLICES[case](data, other, units_of(data), units_of(other)))
    with ArchiveReader(instance) as reader:
        report = verify(reader)
    assert report.partitions[0].status == "damaged"
    with ArchiveReader(instance) as reader:
        records = list(reader.iter_records(partition.start, partition.end))
        assert reader.problems
    assert records
    for moment, expected in truth.items():
        got, problems = answer_of(instance, at(moment))
        assert got == expected or problems, moment


def test_at_reports_a_partition_cut_after_an_index_once_with_its_last_ts(tmp_path: Path) -> None:
    """A closed hour cut after its first frame's index: ``at`` in it reads the partition twice (a seek, then
    the context), and says "not closed by its writer" once, naming the last snapshot the file still holds."""
    instance = tmp_path / "db1"
    write_hour(instance, range(0, 2 * 3600, 10))
    first = list_partitions(instance).partitions[0]
    data = first.path.read_bytes()
    (f0, _, e0), *_ = units_of(data)
    first.path.write_bytes(data[:e0])
    assert f0 == 0
    _, problems = answer_of(instance, at(1800))
    unclosed = [problem for problem in problems if "not closed by its writer" in problem]
    cut = "the writer crashed, or the file was cut after 2026-11-28T03:04:50.000Z"
    assert unclosed == [f"{first.path}: not closed by its writer: {cut}"]


def test_many_stray_indexes_are_read_in_linear_time() -> None:
    """A hostile file of 60,000 frames, each followed by its index and a copy that names it (a closing mark's
    shape), is decoded at once: finding the frame an index names is a search, not a scan (it was quadratic:
    about 45 s here). The bound only catches a hang."""
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    line = encode_line({"ts": "2026-11-28T03:00:00.000Z", "v": 2, "sessions": []})
    frame = compressor.compress(line)
    data = bytearray()
    for _ in range(60_000):
        index = FrameIndex(len(data), len(frame), 1, len(line), line[7:31].decode(), line[7:31].decode())
        data += frame + index.encode() + index.with_closed().encode()
    started = time.monotonic()
    decoder = PartitionDecoder(bytes(data))
    assert sum(chunk.count(b"\n") for chunk in decoder.chunks()) == 60_000
    assert time.monotonic() - started < 20
    assert decoder.closed is True and decoder.problems == []
