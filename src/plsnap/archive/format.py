"""Frames and lines: encoding snapshots, and decoding partitions without trusting their tail.

A partition is one or more concatenated zstd frames whose decompressed bytes are JSON Lines, one snapshot per
line. Decoding uses a fresh ``decompressobj`` per frame (python-zstandard's one-shot and streaming readers either
fail on frames without a content size or hide truncation; see NOTES.md). Each frame's output is split into lines
on its own, so a torn line at the end of an interrupted frame never merges with the next frame's first line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import zstandard

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
FEED_CHUNK = 128 * 1024
_DCTX = zstandard.ZstdDecompressor()


def encode_line(record: dict[str, Any]) -> bytes:
    """One JSON line (with its newline) for a snapshot record; keys keep their insertion order."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


@dataclass(slots=True)
class Decoded:
    """The complete lines of a partition, plus what could not be used.

    ``clean`` is True when every frame is terminated and every frame ends on a line boundary: a writer may then
    append a new frame. ``problems`` are one-line descriptions of damage (warnings); an unterminated last frame
    alone is not damage, because the live partition always has one.
    """

    chunks: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    clean: bool = True
    torn_bytes: int = 0

    @property
    def lines(self) -> list[bytes]:
        """Every complete non-empty line, without its newline."""
        return [line for chunk in self.chunks for line in chunk.split(b"\n") if line]

    def iter_lines(self, low: bytes | None = None, high: bytes | None = None) -> Iterator[tuple[bytes | None, bytes]]:
        """(ts prefix or None, line) for lines whose ``ts`` prefix is in ``[low, high)`` (lines without a prefix
        are always yielded); lines outside are skipped without being copied."""
        for chunk in self.chunks:
            find = chunk.find
            pos, size = 0, len(chunk)
            while pos < size:
                end = find(b"\n", pos)
                if end < 0:
                    end = size
                if end > pos:
                    prefix = ts_prefix(chunk[pos : pos + 64])
                    if prefix is None or not (
                        (low is not None and prefix < low) or (high is not None and prefix >= high)
                    ):
                        yield prefix, chunk[pos:end]
                pos = end + 1


def decode_partition(data: bytes) -> Decoded:
    """Decode every frame of ``data``; never raises on garbage."""
    result = Decoded()
    pos, size = 0, len(data)
    while pos < size:
        frame_out, consumed, terminated, error = _decode_frame(data, pos)
        _split_lines(frame_out, result)
        if error is not None:
            result.clean = False
            resync = data.find(ZSTD_MAGIC, pos + 1)
            skipped_to = size if resync < 0 else resync
            result.problems.append(
                f"undecodable data at byte {pos + consumed} ({error}); skipped {skipped_to - pos - consumed} bytes"
            )
            pos = skipped_to
            continue
        if not terminated:
            result.clean = False
            break
        pos += consumed
    return result


def _decode_frame(data: bytes, pos: int) -> tuple[bytes, int, bool, str | None]:
    """Decode the frame starting at ``pos``: (output, bytes consumed, terminated, error or None).

    The whole remainder is fed at once (fast path); only when that fails is the frame decoded again in chunks,
    to keep everything that decodes before the damage.
    """
    dobj = _DCTX.decompressobj()
    view = memoryview(data)[pos:]
    try:
        out = dobj.decompress(view)
    except zstandard.ZstdError:
        return _decode_frame_chunked(data, pos)
    if dobj.eof:
        return out, len(view) - len(dobj.unused_data), True, None
    return out, len(view), False, None


def _decode_frame_chunked(data: bytes, pos: int) -> tuple[bytes, int, bool, str | None]:
    dobj = _DCTX.decompressobj()
    chunks: list[bytes] = []
    end = len(data)
    offset = pos
    try:
        while offset < end:
            piece = data[offset : offset + FEED_CHUNK]
            chunks.append(dobj.decompress(piece))
            if dobj.eof:
                consumed = offset - pos + len(piece) - len(dobj.unused_data)
                return b"".join(chunks), consumed, True, None
            offset += len(piece)
    except zstandard.ZstdError as exc:
        return b"".join(chunks), offset - pos, False, str(exc) or type(exc).__name__
    return b"".join(chunks), end - pos, False, None


def _split_lines(frame_out: bytes, result: Decoded) -> None:
    if not frame_out:
        return
    last_newline = frame_out.rfind(b"\n")
    tail = len(frame_out) - last_newline - 1
    if tail:
        result.clean = False
        result.torn_bytes += tail
    if last_newline >= 0:
        result.chunks.append(frame_out if not tail else frame_out[: last_newline + 1])


def iter_frames_ok(data: bytes) -> Iterator[bool]:
    """Yield, for each frame, whether it decoded and terminated (used by health checks)."""
    pos = 0
    while pos < len(data):
        _, consumed, terminated, error = _decode_frame(data, pos)
        ok = terminated and error is None
        yield ok
        if not ok:
            return
        pos += consumed


def ts_prefix(line: bytes) -> bytes | None:
    """The raw ``ts`` value of a line written by plsnap (``{"ts":"...Z"``), or None for other lines."""
    if line.startswith(b'{"ts":"'):
        end = line.find(b'"', 7)
        if end > 7:
            return line[7:end]
    return None


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The JSON object on a line, or None when the line is not a JSON object."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
