"""Compacting a closed partition: the same lines in the same frames, each frame compressed whole at a higher
zstd level, replacing the file only once the new bytes are proven to hold exactly what the old ones held.

The writer flushes a block per snapshot (so that a ``kill -9`` loses at most one) at a fast level; once the hour
is closed, none of that is needed any more, and one pass over each frame at a better level stores the same lines
in about a tenth less on a live server (docs/archive-format.md, "Compaction of a closed hour"). The rules:

- Only a partition in perfect health, in exactly the form the writer gives it, is compacted: nothing but data
  frames, each with a content checksum and followed at once by its index, byte for byte as the writer encodes
  that index, and at most a writer's closing mark; every line matching the CRC-32 the writer recorded for it,
  and the index's line count, byte count and ``ts`` range matching the lines. Anything else is left exactly as
  it is (damage is never rewritten: that stays ``verify``'s job to report).
- The new file keeps the frame boundaries, every index field but the frame's offset and length, and the
  closing mark, so that seeking by frame, the ``ts`` ranges and the per-line CRCs stay as they were.
- Before the new bytes replace the old, they are decoded again as a reader would decode them and compared line
  for line and index for index. The replacement is a temp file, fsynced and renamed over the partition, so a
  crash at any instant leaves either the old file or the new one (and at most a temp file, which the writer
  removes), never a mix.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, replace

import zstandard

from plsnap.archive.format import (
    INDEX_MAGIC,
    MAX_INDEX_PAYLOAD,
    ZSTD_MAGIC,
    FrameIndex,
    Limits,
    PartitionDecoder,
    ts_prefix,
    walk_frame,
)
from plsnap.archive.fs import SafeDir

#: Why a healthy partition was left as it is: the compacted bytes would not be fewer.
NO_GAIN = "no smaller at that level"
#: The largest frame compacted (decompressed bytes, from its index): compaction holds about three copies of a
#: frame at once, and the writer's 5-minute frames are far smaller.
MAX_FRAME_BYTES = 256 * 2**20


@dataclass(frozen=True, slots=True)
class Compaction:
    """What :func:`compact_partition` did: ``before`` and ``after`` bytes (equal when nothing was replaced),
    ``lines`` carried over, and ``skipped``, why the file was left as it is (None when it was replaced)."""

    before: int
    after: int
    lines: int
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class _Item:
    """One piece of a partition in the writer's form: a data frame (``start``, ``end`` of its bytes) with its
    ``index``, or (``mark``) the writer's closing mark after the frame it copies."""

    index: FrameIndex
    start: int = 0
    end: int = 0
    mark: bool = False


def compact_partition(folder: SafeDir, name: str, *, level: int) -> Compaction:
    """Rewrite the closed partition ``name`` of ``folder`` with each frame compressed whole at ``level``, when
    it is in perfect health and the result is smaller; see the module docstring. Holds the file, the new file
    and up to three copies of one frame's content (at most :data:`MAX_FRAME_BYTES`) in memory. OSError and
    ArchiveError propagate (the partition is then unchanged)."""
    fd = folder.open_file(name, os.O_RDONLY)
    try:
        before = os.fstat(fd)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    finally:
        os.close(fd)
    items = _layout(data)
    if isinstance(items, str):
        return Compaction(len(data), len(data), 0, items)
    rebuilt, problem = _rebuild(data, items, level)
    lines = sum(item.index.lines for item in items if not item.mark)
    if problem is None:
        again = _layout(rebuilt)
        if isinstance(again, str) or [_shape(i) for i in again] != [_shape(i) for i in items]:
            problem = "the compacted file would not read back the same"
    if problem is None and len(rebuilt) >= len(data):
        problem = NO_GAIN
    if problem is None:
        now = folder.open_file(name, os.O_RDONLY)
        try:
            current = os.fstat(now)
        finally:
            os.close(now)
        if _identity(current) != _identity(before):
            problem = "the file changed while it was being compacted"
    if problem is not None:
        return Compaction(len(data), len(data), lines, problem)
    folder.atomic_write(name, rebuilt, mode=before.st_mode & 0o777)
    return Compaction(len(data), len(rebuilt), lines)


def _identity(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_ino, info.st_size, info.st_mtime_ns


def _shape(item: _Item) -> tuple[FrameIndex, bool]:
    """What must survive compaction: the index but for where its frame lies, and whether it is a mark."""
    return replace(item.index, offset=0, length=0), item.mark


def _layout(data: bytes) -> list[_Item] | str:
    """The frames and marks of ``data`` when it is exactly in the writer's form (read from headers and indexes
    alone), else why it is not."""
    view = memoryview(data)
    items: list[_Item] = []
    pos = 0
    while pos < len(data):
        head = data[pos : pos + 4]
        if head == ZSTD_MAGIC:
            found = _frame_at(data, view, pos)
        elif head == INDEX_MAGIC:
            found = _mark_at(data, pos, items[-1] if items else None)
        else:
            found = f"bytes at byte {pos} are no frame of the writer's"
        if isinstance(found, str):
            return found
        item, pos = found
        items.append(item)
    if not items or not items[-1].index.closed:
        return "the partition is not closed"
    return items


def _frame_at(data: bytes, view: memoryview, pos: int) -> tuple[_Item, int] | str:
    """The data frame at ``pos`` with its index, and the offset after them; or why they are not the writer's."""
    shape = walk_frame(view, pos)
    if shape.error is not None or shape.end is None or not shape.checksum:
        return f"the frame at byte {pos} is damaged, unterminated or without a content checksum"
    found = _index_at(data, shape.end)
    if found is None:
        return f"the frame at byte {pos} is not followed by its index"
    index, after = found
    if index.offset != pos or index.length != shape.end - pos:
        return f"the index after the frame at byte {pos} names another frame"
    if index.lines < 1 or len(index.crcs) != index.lines:
        return f"the index of the frame at byte {pos} does not list a CRC per line"
    if index.raw_bytes > MAX_FRAME_BYTES:
        return f"the frame at byte {pos} is larger than compaction takes ({index.raw_bytes} bytes)"
    return _Item(index, pos, shape.end), after


def _mark_at(data: bytes, pos: int, last: _Item | None) -> tuple[_Item, int] | str:
    """The writer's closing mark at ``pos`` (a copy, marked closed, of the index of the frame before it, which
    was not), and the offset after it; or why it is not one."""
    found = _index_at(data, pos)
    if found is None or last is None or last.mark or last.index.closed or found[0] != last.index.with_closed():
        return f"the index at byte {pos} is no closing mark of the writer's"
    return _Item(found[0], mark=True), found[1]


def _index_at(data: bytes, pos: int) -> tuple[FrameIndex, int] | None:
    """The index frame at ``pos`` and the offset after it, when its bytes are exactly the writer's encoding."""
    if data[pos : pos + 4] != INDEX_MAGIC or pos + 8 > len(data):
        return None
    length = struct.unpack_from("<I", data, pos + 4)[0]
    after = pos + 8 + length
    if length > MAX_INDEX_PAYLOAD or after > len(data):
        return None
    index = FrameIndex.decode(data[pos + 8 : after])
    if index is None or index.encode() != data[pos:after]:
        return None
    return index, after


def _rebuild(data: bytes, items: list[_Item], level: int) -> tuple[bytes, str | None]:
    """The compacted bytes of ``data``, and why it may not be compacted (None when it may): each frame is
    decoded on its own, checked against its index, re-encoded, decoded again and compared line for line."""
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
    out = bytearray()
    last: FrameIndex | None = None
    for item in items:
        if item.mark:
            assert last is not None
            out += last.with_closed().encode()
            continue
        index = item.index
        lines, problem = _frame_lines(data[item.start : item.end], index)
        if problem is None:
            cobj = compressor.compressobj()
            body = cobj.compress(b"".join(line + b"\n" for line in lines)) + cobj.flush()
            last = replace(index, offset=len(out), length=len(body))
            again, problem = _frame_lines(body, last)
            if problem is None and again != lines:
                problem = "would not read back the same"
        if problem is not None:
            return b"", f"the frame at byte {item.start}: {problem}"
        assert last is not None
        out += body
        out += last.encode()
    return bytes(out), None


def _frame_lines(frame: bytes, index: FrameIndex) -> tuple[list[bytes], str | None]:
    """The lines of one data frame (its bytes alone), and why they are not exactly what ``index`` records
    (None when they are: count, CRC-32 of each, bytes and ``ts`` range). Every line is read, however long (a
    line the reader's cap would skip must still be carried over), but never more than the index's byte count."""
    decoder = PartitionDecoder(frame, Limits(max_line_bytes=2**62, max_partition_bytes=index.raw_bytes))
    lines = [line for chunk in decoder.chunks() for line in chunk.split(b"\n")[:-1]]
    report = decoder.frames[0] if len(decoder.frames) == 1 else None
    decoder.missing_indexes.clear()  # the frame's bytes alone: its index is checked against it below
    if report is None or report.status != "ok" or report.torn_bytes or decoder.problems:
        return lines, "does not decode cleanly"
    if len(lines) != index.lines or sum(len(line) + 1 for line in lines) != index.raw_bytes:
        return lines, "holds other lines than its index counts"
    for line, crc in zip(lines, index.crcs, strict=True):
        if zlib.crc32(b"\n", zlib.crc32(line)) != crc:
            return lines, "a line does not match its CRC"
    stamps = [ts_prefix(line[:40]) for line in lines]
    if None in stamps:
        return lines, "a line has no ts"
    known = [stamp.decode() for stamp in stamps if stamp is not None]
    if (min(known), max(known)) != (index.min_ts, index.max_ts):
        return lines, "its lines' ts range is not its index's"
    return lines, None
