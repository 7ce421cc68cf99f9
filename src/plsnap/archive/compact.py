"""Compacting a closed partition: the same lines in the same frames, each frame compressed whole at a higher
zstd level, replacing the file only once the new bytes are proven to hold exactly what the old ones held.

The writer flushes a block per snapshot (so that a ``kill -9`` loses at most one) at a fast level; once the hour
is closed, none of that is needed any more, and one pass over each frame at a better level stores the same lines
in about a third less (docs/archive-format.md, "Compaction"). The rules:

- Only a partition in perfect health is compacted: every frame decoded, closed and checksummed, each with its
  index, and every line matching the CRC-32 the writer recorded for it when it wrote the line. Anything else
  is left exactly as it is (damage is never rewritten: that stays ``verify``'s job to report).
- The new file keeps the frame boundaries and every index field but the frame's offset and length, so that
  seeking by frame, the ``ts`` ranges and the per-line CRCs stay as they were.
- Before the new bytes replace the old, they are decoded again as a reader would decode them and compared line
  for line and index for index. The replacement is a temp file, fsynced and renamed over the partition, so a
  crash at any instant leaves either the old file or the new one (and at most a temp file, which the writer
  removes), never a mix.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, replace

import zstandard

from plsnap.archive.format import FrameIndex, Limits, PartitionDecoder
from plsnap.archive.fs import SafeDir

#: Compaction reads every line, however long: a line the reader's cap would skip must still be carried over.
_NO_CAPS = Limits(max_line_bytes=2**62, max_partition_bytes=2**62)
#: Why a healthy partition was left as it is: the compacted bytes would not be fewer.
NO_GAIN = "no smaller at that level"


@dataclass(frozen=True, slots=True)
class Compaction:
    """What :func:`compact_partition` did: ``before`` and ``after`` bytes (equal when nothing was replaced),
    ``lines`` carried over, and ``skipped``, why the file was left as it is (None when it was replaced)."""

    before: int
    after: int
    lines: int
    skipped: str | None = None


def compact_partition(folder: SafeDir, name: str, *, level: int) -> Compaction:
    """Rewrite the closed partition ``name`` of ``folder`` with each frame compressed whole at ``level``, when
    it is in perfect health and the result is smaller; see the module docstring. Holds the file and one frame's
    lines in memory at a time. OSError and ArchiveError propagate (the partition is then unchanged)."""
    fd = folder.open_file(name, os.O_RDONLY)
    try:
        before = os.fstat(fd)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    finally:
        os.close(fd)
    rebuilt, lines, problem = _rebuild(data, level)
    if problem is None:
        problem = _compare_structure(rebuilt, data)
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


def _rebuild(data: bytes, level: int) -> tuple[bytes, int, str | None]:
    """The compacted bytes of ``data``, the lines carried over, and why ``data`` may not be compacted (None
    when it may). Each frame is re-encoded, then decoded again on its own and compared line for line."""
    decoder = PartitionDecoder(data, _NO_CAPS)
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
    out = bytearray()
    lines = 0
    current: FrameIndex | None = None
    held: list[bytes] = []
    seen = 0

    def flush() -> str | None:
        nonlocal lines
        if current is None:
            return None
        problem = _check_crcs(current, held)
        if problem is None:
            frame = _encode_frame(compressor, current, held, len(out))
            problem = _check_frame(frame, current, held)
            out.extend(frame)
        lines += len(held)
        held.clear()
        return problem

    for chunk in decoder.chunks():
        if len(decoder.frames) != seen:
            problem = flush()
            if problem is not None:
                return b"", lines, problem
            seen = len(decoder.frames)
            report = decoder.frames[-1]
            if report.index is None:
                return b"", lines, f"the frame at byte {report.offset} has no index"
            current = report.index
        held.extend(chunk.split(b"\n")[:-1])
    problem = flush()
    if problem is None and decoder.problems:
        problem = decoder.problems[0]
    if problem is None and (not decoder.clean or decoder.closed is not True):
        problem = "the partition is not closed"
    if problem is None and seen != len(decoder.frames):
        problem = "a frame holds no lines"
    return bytes(out), lines, problem


def _check_crcs(index: FrameIndex, lines: list[bytes]) -> str | None:
    """Why ``lines`` are not exactly what the writer recorded in ``index`` (None when they are)."""
    if len(index.crcs) != len(lines) or index.lines != len(lines):
        return f"the index of the frame at byte {index.offset} does not count its lines"
    for line, crc in zip(lines, index.crcs, strict=True):
        if zlib.crc32(b"\n", zlib.crc32(line)) != crc:
            return f"a line of the frame at byte {index.offset} does not match its CRC"
    return None


def _encode_frame(compressor: zstandard.ZstdCompressor, index: FrameIndex, lines: list[bytes], offset: int) -> bytes:
    """One frame compressed whole (streamed: no content size in its header, so its window stays the level's),
    followed by its index at ``offset`` with the new length."""
    cobj = compressor.compressobj()
    body = cobj.compress(b"".join(line + b"\n" for line in lines)) + cobj.flush()
    return body + replace(index, offset=offset, length=len(body)).encode()


def _check_frame(frame: bytes, index: FrameIndex, lines: list[bytes]) -> str | None:
    """Why the re-encoded ``frame`` does not read back as ``lines`` under ``index`` (None when it does)."""
    decoder = PartitionDecoder(frame, _NO_CAPS)
    again = [line for chunk in decoder.chunks() for line in chunk.split(b"\n")[:-1]]
    if again != lines or decoder.problems or len(decoder.frames) != 1 or decoder.frames[0].status != "ok":
        return f"the frame at byte {index.offset} would not read back the same"
    got = decoder.frames[0].index
    if got is None or replace(got, offset=index.offset, length=index.length) != index:
        return f"the index of the frame at byte {index.offset} would not read back the same"
    return None


def _compare_structure(rebuilt: bytes, original: bytes) -> str | None:
    """Why the whole compacted file does not have the frames and indexes of the original (None when it has);
    read from headers and indexes alone, each frame's content having been checked already."""
    old, new = _indexes(original), _indexes(rebuilt)
    if new is None or old is None or len(new) != len(old):
        return "the compacted file's frames do not match the original's"
    for a, b in zip(old, new, strict=True):
        if replace(a, offset=0, length=0) != replace(b, offset=0, length=0):
            return f"the index of the frame at byte {a.offset} would not read back the same"
    return None


def _indexes(data: bytes) -> list[FrameIndex] | None:
    """The index of every frame, read without decompressing; None when the file is not clean and closed."""
    decoder = PartitionDecoder(data, _NO_CAPS, want=lambda _: False)
    for _ in decoder.chunks():
        pass
    found = [f.index for f in decoder.frames if f.index is not None and f.status == "skipped"]
    if not decoder.clean or decoder.closed is not True or len(found) != len(decoder.frames):
        return None
    return found
