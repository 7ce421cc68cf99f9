"""Frames and lines: encoding snapshots, and decoding partitions without trusting any byte of them.

A partition file is a sequence of zstd frames (docs/archive-format.md). Data frames hold JSON Lines, one
snapshot per line; after each closed data frame the writer adds a small *skippable* frame, the frame index,
with the line count and the ``ts`` range of the frame before it (zstd, ``zstdcat`` and DuckDB ignore skippable
frames). A frame is decoded block by block, with a fresh ``decompressobj`` per frame (python-zstandard's
one-shot and streaming readers either fail on frames without a content size or hide truncation; docs/archive-format.md):

- every complete line before damage is kept, and decoding resumes at the next frame after it;
- a frame whose checksum fails keeps its lines, reported as unverified;
- a frame cut short (the live partition, a crash, a truncated copy) keeps every complete line;
- junk between frames is skipped and reported;
- no call ever produces more than one zstd block (128 KiB), so line and partition caps bound memory.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import zstandard

FORMAT_VERSION = 2
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
INDEX_MAGIC = b"\x5e\x2a\x4d\x18"
INDEX_KIND = "plsnap-frame-index"
MAX_BLOCK = 128 * 1024
MAX_INDEX_PAYLOAD = 64 * 1024
#: The most lines a writer puts in one frame (its index then stays well under MAX_INDEX_PAYLOAD).
MAX_FRAME_LINES = 4096
#: The most decompressed bytes of one frame a reader holds back to check its lines against the index's CRCs.
MAX_HELD_BYTES = 512 * 2**20
#: An empty last block (raw, size 0): what zstd itself writes to end a frame after a block flush.
EMPTY_LAST_BLOCK = b"\x01\x00\x00"
DEFAULT_MAX_LINE_BYTES = 128 * 2**20
DEFAULT_MAX_PARTITION_BYTES = 16 * 2**30
#: The largest zstd window a reader accepts (frames asking for more are reported as damaged): a frame's window
#: is memory the decoder must hold, and a single-segment frame's window is its whole content.
MAX_WINDOW = 2**27


def _decompressor() -> zstandard.ZstdDecompressionObj:
    """A streaming decompressor of its own: python-zstandard's decompressobj() of one ZstdDecompressor share its
    context, so two frames read in turn (two partitions, two rollups) would break each other (about 4 us)."""
    return zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).decompressobj()


def encode_line(record: dict[str, Any]) -> bytes:
    """One JSON line (with its newline) for a snapshot record; keys keep their insertion order."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def ts_prefix(line: bytes) -> bytes | None:
    """The ``ts`` of a line written by plsnap (``{"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ"``, which sorts as text), or
    None for any other line."""
    if line.startswith(b'{"ts":"') and line[31:32] == b'"' and line[30:31] == b"Z" and line[11:12] == b"-":
        return line[7:31]
    return None


def line_crc(line: bytes) -> int:
    """The CRC-32 of a line, its newline included (what the frame index records per line)."""
    return zlib.crc32(line)


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The JSON object on a line, or None when the line is not a JSON object."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps that bound a reader's memory and work: bytes per line and decompressed bytes per partition."""

    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_partition_bytes: int = DEFAULT_MAX_PARTITION_BYTES


@dataclass(frozen=True, slots=True)
class FrameIndex:
    """What the writer recorded about a closed data frame: where it is, how many lines, which ``ts`` range, and
    the CRC-32 of each line in order (``crcs``; empty when the index does not carry them). ``checked`` is True
    when the payload carried its own checksum (``sum``) and it held: only then may a reader skip the frame by
    its ``ts`` range (an older writer's index has none, and one flipped digit of it could hide a frame)."""

    offset: int
    length: int
    lines: int
    raw_bytes: int
    min_ts: str
    max_ts: str
    closed: bool = False
    crcs: tuple[int, ...] = ()
    checked: bool = field(default=True, compare=False)

    def encode(self) -> bytes:
        """The skippable frame holding this index: a JSON object whose last key, ``sum``, is the CRC-32 of the
        payload's bytes before it (from the opening brace up to the comma)."""
        body = orjson.dumps(
            {
                "kind": INDEX_KIND,
                "v": FORMAT_VERSION,
                "offset": self.offset,
                "length": self.length,
                "lines": self.lines,
                "raw_bytes": self.raw_bytes,
                "min_ts": self.min_ts,
                "max_ts": self.max_ts,
                "closed": self.closed,
                "crc": struct.pack(f">{len(self.crcs)}I", *self.crcs).hex(),
            }
        )[:-1]
        payload = body + b',"sum":"%08x"}' % zlib.crc32(body)
        return INDEX_MAGIC + struct.pack("<I", len(payload)) + payload

    @classmethod
    def decode(cls, payload: bytes) -> FrameIndex | None:
        """Parse an index payload; None when it is not a valid plsnap index or its ``sum`` does not hold. An
        index without ``sum`` (an older writer's) decodes with ``checked`` False."""
        value = parse_line(payload)
        if value is None or value.get("kind") != INDEX_KIND:
            return None
        body, suffix = payload[:-_SUM_SUFFIX_BYTES], payload[-_SUM_SUFFIX_BYTES:]
        summed = suffix == b',"sum":"%08x"}' % zlib.crc32(body)
        checked = "sum" in value
        if checked != summed or (not checked and suffix[-10:-2] == b"%08x" % zlib.crc32(body)):
            return None  # a failing sum, or a sum that holds under a damaged key name
        try:
            index = cls(
                offset=_nonneg_int(value["offset"]),
                length=_nonneg_int(value["length"]),
                lines=_nonneg_int(value["lines"]),
                raw_bytes=_nonneg_int(value["raw_bytes"]),
                min_ts=_short_text(value["min_ts"]),
                max_ts=_short_text(value["max_ts"]),
                closed=value.get("closed") is True,
                checked=checked,
            )
        except (KeyError, TypeError, ValueError):
            return None
        crcs = _crcs(value.get("crc"), index.lines)
        return index if not crcs else replace(index, crcs=crcs)

    def with_closed(self) -> FrameIndex:
        """A copy that says the writer closed the partition."""
        return replace(self, closed=True)


_SUM_SUFFIX_BYTES = len(b',"sum":"00000000"}')


def _crcs(value: Any, lines: int) -> tuple[int, ...]:
    """The per-line CRCs of an index's ``crc`` text (8 hex digits per line); empty when absent or malformed."""
    if not isinstance(value, str) or len(value) != 8 * lines or not lines:
        return ()
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return ()
    return struct.unpack(f">{lines}I", raw)


def _nonneg_int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("not a non-negative integer")
    return value


def _short_text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("not a short string")
    return value


@dataclass(slots=True)
class FrameShape:
    """A data frame's layout, read from its headers alone (no decompression).

    ``block_ends`` are the offsets just after each complete block; ``end`` the offset after the frame (with
    its checksum), or None when the file ends inside it; ``error`` says what made the headers invalid.
    """

    offset: int
    header_end: int
    checksum: bool
    block_ends: list[int] = field(default_factory=list)
    end: int | None = None
    error: str | None = None


def walk_frame(data: bytes | memoryview, pos: int, *, anchored_check: bool = True) -> FrameShape:  # noqa: PLR0911 - one exit per way a header can end the walk
    """Follow the frame and block headers of the data frame starting at ``pos`` (which holds ZSTD_MAGIC).

    With ``anchored_check``, a block that would contain the start of another closed frame is taken for a
    damaged header (a corrupt raw-block size would otherwise swallow the frames after it)."""
    size = len(data)
    if pos + 6 > size:
        return FrameShape(pos, size, False, end=None)
    descriptor = data[pos + 4]
    fcs_flag = descriptor >> 6
    single = bool(descriptor & 0x20)
    checksum = bool(descriptor & 0x04)
    dict_size = (0, 1, 2, 4)[descriptor & 0x03]
    fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    header_end = pos + 5 + (0 if single else 1) + dict_size + fcs_size
    shape = FrameShape(pos, header_end, checksum)
    if descriptor & 0x08:
        shape.error = "invalid frame header (reserved bit set)"
        return shape
    if header_end > size:
        return shape
    cursor = header_end
    while True:
        if cursor + 3 > size:
            return shape
        header = data[cursor] | (data[cursor + 1] << 8) | (data[cursor + 2] << 16)
        last = header & 1
        kind = (header >> 1) & 3
        block_size = header >> 3
        if kind == 3:
            shape.error = f"invalid block type at byte {cursor}"
            return shape
        if block_size > MAX_BLOCK:
            shape.error = f"invalid block size {block_size} at byte {cursor}"
            return shape
        content = 1 if kind == 1 else block_size
        block_end = cursor + 3 + content
        anchored = _anchored_frame_within(data, cursor + 3, min(block_end, size)) if anchored_check else None
        if anchored is not None:
            shape.error = f"the block at byte {cursor} runs over the frame at byte {anchored} (damaged block header)"
            return shape
        if block_end > size:
            return shape
        shape.block_ends.append(block_end)
        cursor = block_end
        if last:
            end = block_end + (4 if checksum else 0)
            if end <= size:
                shape.end = end
            return shape


@dataclass(slots=True)
class FrameReport:
    """The outcome of decoding one data frame.

    ``status``: ``ok``; ``open`` (the file ends inside the frame: the live partition, a crash or a truncation);
    ``damaged`` (undecodable from some block on; later lines of the frame are lost); ``checksum`` (every block
    decoded but the checksum failed); ``skipped`` (not decoded: its index put it outside the requested range).

    When a frame is not ok and its index carries per-line CRCs, only lines that match their CRC are kept
    (``rejected`` counts the others, which are lost); without CRCs the kept lines of a damaged or checksum
    frame are ``unverified`` (they may differ from what was written).
    """

    offset: int
    end: int
    status: str = "ok"
    lines: int = 0
    index: FrameIndex | None = None
    detail: str | None = None
    torn_bytes: int = 0
    oversized_lines: int = 0
    first_ts: bytes | None = None
    last_ts: bytes | None = None
    rejected: int = 0
    unverified: int = 0
    #: The smallest and largest ``ts`` prefix among the frame's lines, and how many lines had one.
    min_ts: bytes | None = None
    max_ts: bytes | None = None
    stamped: int = 0
    #: The frame's first line is of version 2 or later (``"v"`` its second key): its writer wrote an index.
    versioned: bool = False

    @property
    def lost(self) -> int | None:
        """Snapshots the frame held but that could not be read; None when no index says how many."""
        if self.status in ("ok", "skipped"):
            return 0
        if self.status == "checksum" and not self.rejected and (self.index is None or not self.index.crcs):
            return 0
        if self.index is None:
            return None
        return max(0, self.index.lines - self.lines)


@dataclass(slots=True)
class Junk:
    """Bytes between frames that are no frame at all (skipped), or a frame index cut short by the file's end."""

    offset: int
    length: int
    truncated: bool = False


Want = Callable[[FrameIndex], bool]


class PartitionDecoder:
    """Decodes one partition file, yielding chunks of complete lines, and keeps a report per frame.

    Iterate :meth:`chunks`; afterwards :attr:`frames`, :attr:`junk` and :attr:`problems` describe what was found.
    ``want`` (optional) is asked about every data frame that has an index: frames it rejects are not
    decompressed. With ``seek_by_index``, a frame followed by an index that gives its exact length is judged by
    that index before its block headers are walked (a reader looking for a few minutes skips the rest of the
    hour at the cost of one search per frame; a frame it wants, or one whose index does not fit, is walked as
    always). ``base`` is the file offset of ``data[0]`` (a read of a file's tail): indexes name file offsets.
    Never raises on garbage.
    """

    def __init__(
        self,
        data: bytes,
        limits: Limits | None = None,
        want: Want | None = None,
        *,
        seek_by_index: bool = False,
        base: int = 0,
    ) -> None:
        self.data = data
        self.base = base
        self.limits = limits or Limits()
        self.want = want
        self.seek_by_index = seek_by_index and want is not None
        self.frames: list[FrameReport] = []
        self.junk: list[Junk] = []
        self.capped = False
        self.produced = 0
        self.closed: bool | None = None
        self.bad_indexes: list[int] = []
        #: Frames whose index does not describe their lines (count or ts range): an index that lies would make a
        #: reader of a span skip the frame, so it is damage even though every line of the frame is intact.
        self.lying_indexes: list[str] = []
        #: Version 2 frames that ended with no index after them (cut off, its magic damaged, removed).
        self.missing_indexes: list[int] = []
        #: (frame offset, the offset its index names) for indexes right after a frame that name another frame:
        #: frames were removed, duplicated or moved. Such an index is not used for that frame.
        self.misplaced_indexes: list[tuple[int, int]] = []
        self._misplaced_frames: set[int] = set()

    @property
    def unclosed(self) -> bool:
        """True for a file in the indexed format whose last index does not say the writer closed it: the writer
        crashed, or the file was cut after that point."""
        return self.closed is False

    @property
    def clean(self) -> bool:
        """True when every frame decoded and terminated and nothing else was found: safe to append to."""
        frames_ok = all(f.status in ("ok", "skipped") for f in self.frames)
        indexes_ok = not self.bad_indexes and not self.lying_indexes and not self.misplaced_indexes
        return not self.junk and frames_ok and not self.capped and indexes_ok

    @property
    def problems(self) -> list[str]:
        """One-line descriptions of damage (an open last frame is not damage by itself)."""
        found = [
            f"the file ends inside a frame header or index at byte {j.offset} (crash or truncation)"
            if j.truncated
            else f"junk: skipped {j.length} bytes at byte {j.offset} that are no zstd frame"
            for j in self.junk
        ]
        for frame in self.frames:
            if frame.status in ("damaged", "checksum") or (frame.status == "open" and frame is not self.frames[-1]):
                found.append(describe_frame(frame))
            if frame.oversized_lines:
                found.append(
                    f"frame at byte {frame.offset}: skipped {frame.oversized_lines} line(s) longer than "
                    f"{self.limits.max_line_bytes} bytes"
                )
        found += [
            f"unreadable frame index at byte {offset} (damaged; the data frames are not affected)"
            for offset in self.bad_indexes
        ]
        found += self.lying_indexes
        before_bad = self._frames_before_bad_indexes()
        found += [
            f"frame at byte {offset} ends without its index (cut off or damaged): its snapshots cannot be counted "
            "or checked, and any frame removed after it cannot be seen"
            for offset in self.missing_indexes
            if offset not in before_bad
        ]
        if self.misplaced_indexes:
            where, named = self.misplaced_indexes[0]
            found.append(
                f"{len(self.misplaced_indexes)} frame index(es) name another frame than the one they follow (first "
                f"at the frame at byte {where}, naming byte {named}): frames were removed, duplicated or moved"
            )
        if self.capped:
            found.append(f"stopped after {self.limits.max_partition_bytes} decompressed bytes (the partition cap)")
        return found

    def chunks(self) -> Iterator[bytes]:
        """Chunks of complete lines (each ending with a newline), in file order."""
        data = self.data
        size = len(data)
        view = memoryview(data)
        pos = 0
        while pos < size:
            head = data[pos : pos + 4]
            if head == ZSTD_MAGIC:
                if self.seek_by_index and self._skip_by_index(pos):
                    pos = self.frames[-1].end
                    continue
                shape = walk_frame(view, pos)
                index, after = self._index_after(view, shape)
                if index is None and shape.end is None:
                    index = self._index_ahead(pos)
                    if index is not None:
                        after = min(size, pos + max(index.length, 1))
                if index is not None and self.want is not None and not self.want(index):
                    self.frames.append(FrameReport(pos, after, "skipped", index.lines, index))
                    pos = after
                    continue
                report = FrameReport(pos, pos, index=index)
                self.frames.append(report)
                yield from self._decode(view, shape, report)
                if self.capped:
                    return
                pos = report.end
                if report.status in ("ok", "checksum") and (index is not None or after > report.end):
                    pos = after
                continue
            if len(head) == 4 and head[1:] == b"\x2a\x4d\x18" and 0x50 <= head[0] <= 0x5F:
                if pos + 8 > size:
                    self.junk.append(Junk(pos, size - pos))
                    return
                length = struct.unpack_from("<I", data, pos + 4)[0]
                after = pos + 8 + length
                if after > size or (after < size and not _is_magic(data, after)):
                    resync = _next_magic(data, pos + 1)
                    self.junk.append(Junk(pos, resync - pos, truncated=resync >= size and after > size))
                    pos = resync
                    continue
                if head == INDEX_MAGIC and length <= MAX_INDEX_PAYLOAD:
                    self._adopt_index(pos, bytes(view[pos + 8 : after]))
                pos = after
                continue
            resync = _next_magic(data, pos + 1)
            tail = data[pos:]
            cut = resync >= size and len(tail) < 4 and (ZSTD_MAGIC.startswith(tail) or INDEX_MAGIC.startswith(tail))
            self.junk.append(Junk(pos, resync - pos, truncated=cut))
            pos = resync

    def _skip_by_index(self, offset: int) -> bool:
        """Whether the frame at ``offset`` is one that ``want`` rejects, by the index that follows it right at
        the length it records (then a skipped report is added, ending after that index). A frame without such an
        index turns seeking off for the rest of the file (a file of frames without indexes, version 1 or with
        its indexes lost, would otherwise be searched to its end once per frame)."""
        found, end, index = next(self._indexes_after(offset), (0, 0, None))
        if index is None or index.offset != self.base + offset or found != offset + index.length:
            self.seek_by_index = False
            return False
        assert self.want is not None
        if self.want(index):
            return False
        self.closed = index.closed
        self.frames.append(FrameReport(offset, end, "skipped", index.lines, index))
        return True

    def _indexes_after(self, offset: int) -> Iterator[tuple[int, int, FrameIndex]]:
        """(where it starts, where it ends, the index) of each frame index that decodes after ``offset``."""
        data = self.data
        found = data.find(INDEX_MAGIC, offset + 4)
        while found >= 0 and found + 8 <= len(data):
            length = struct.unpack_from("<I", data, found + 4)[0]
            if length <= MAX_INDEX_PAYLOAD and found + 8 + length <= len(data):
                index = FrameIndex.decode(data[found + 8 : found + 8 + length])
                if index is not None:
                    yield found, found + 8 + length, index
            found = data.find(INDEX_MAGIC, found + 4)

    def _adopt_index(self, offset: int, payload: bytes) -> None:
        """An index met on its own: after a damaged frame (it still says how many snapshots that frame held), or
        the writer's closing mark."""
        index = FrameIndex.decode(payload)
        if index is None:
            self.bad_indexes.append(offset)
            return
        self.closed = index.closed
        local = index.offset - self.base
        at = bisect.bisect_left(self.frames, local, key=lambda f: f.offset)
        if at < len(self.frames) and self.frames[at].offset == local:
            if self.frames[at].index is None:
                self.frames[at].index = index
            return
        at = bisect.bisect_left(self.junk, local, key=lambda j: j.offset)
        if at < len(self.junk) and self.junk[at].offset == local:
            junk = self.junk.pop(at)
            detail = "frame header unreadable"
            report = FrameReport(junk.offset, junk.offset + junk.length, "damaged", index=index, detail=detail)
            bisect.insort(self.frames, report, key=lambda f: f.offset)

    def _index_ahead(self, offset: int) -> FrameIndex | None:
        """The index of the frame at ``offset`` when the frame's headers are damaged (so its end is unknown):
        the first index further on that names this offset, before any index of a later frame."""
        for _, _, index in self._indexes_after(offset):
            if index.offset >= self.base + offset:
                return index if index.offset == self.base + offset else None
        return None

    def _index_after(self, view: memoryview, shape: FrameShape) -> tuple[FrameIndex | None, int]:
        end = shape.end
        if end is None or bytes(view[end : end + 4]) != INDEX_MAGIC or end + 8 > len(view):
            return None, end if end is not None else len(view)
        length = struct.unpack_from("<I", view, end + 4)[0]
        if length > MAX_INDEX_PAYLOAD or end + 8 + length > len(view):
            return None, end
        index = FrameIndex.decode(bytes(view[end + 8 : end + 8 + length]))
        if index is None or index.length != end - shape.offset:
            return None, end
        self.closed = index.closed
        if index.offset != self.base + shape.offset:
            self.misplaced_indexes.append((self.base + shape.offset, index.offset))
            self._misplaced_frames.add(shape.offset)
            return None, end + 8 + length
        return index, end + 8 + length

    def _decode(self, view: memoryview, shape: FrameShape, report: FrameReport) -> Iterator[bytes]:
        dobj = _decompressor()
        lines = _LineAssembler(self.limits.max_line_bytes, report)
        start = shape.offset
        ends = shape.block_ends
        feeds = [(start if i == 0 else ends[i - 1], end) for i, end in enumerate(ends)]
        if shape.end is not None and shape.checksum:
            feeds.append((shape.end - 4, shape.end))
        consumed = start
        error: str | None = None
        crcs = report.index.crcs if report.index is not None else ()
        held: list[bytes] | None = [] if crcs else None
        held_size = 0
        for begin, end in feeds:
            try:
                out = dobj.decompress(view[begin:end])
            except zstandard.ZstdError as exc:
                error = str(exc) or type(exc).__name__
                break
            consumed = end
            if not out:
                continue
            self.produced += len(out)
            if self.produced > self.limits.max_partition_bytes:
                self.capped = True
                error = "partition cap reached"
                break
            chunk = lines.feed(out)
            if not chunk:
                continue
            if held is None:
                yield chunk
                continue
            held.append(chunk)
            held_size += len(chunk)
            if held_size > MAX_HELD_BYTES:
                yield from held
                held, crcs = None, ()
        report.torn_bytes = lines.pending_size
        self._conclude(view, shape, report, consumed, error, eof=dobj.eof)
        self._check_index(report)
        yield from _release(held, crcs, report)

    def _frames_before_bad_indexes(self) -> set[int]:
        """Offsets of the frames followed at once by an unreadable index (reported as such, not as missing)."""
        bad = set(self.bad_indexes)
        return {frame.offset for frame in self.frames if frame.end in bad}

    def _check_index(self, report: FrameReport) -> None:
        """Note an intact frame whose index does not hold its line count and ``ts`` range (lines without a
        plsnap ``ts`` prefix or over the line cap leave the range unchecked)."""
        index = report.index
        misplaced = report.offset in self._misplaced_frames
        if index is None and report.status == "ok" and report.versioned and not misplaced:
            self.missing_indexes.append(report.offset)
        if index is None or report.status != "ok":
            return
        span = (_text(report.min_ts), _text(report.max_ts))
        counted = report.lines + report.oversized_lines
        stamped = report.stamped == report.lines and not report.oversized_lines
        if counted != index.lines or (stamped and report.lines and span != (index.min_ts, index.max_ts)):
            self.lying_indexes.append(
                f"frame at byte {report.offset}: its index does not match its lines (index: {index.lines} line(s), "
                f"{index.min_ts or '?'} .. {index.max_ts or '?'}; frame: {counted} line(s), {span[0]} .. {span[1]}); "
                "a read of another span may have skipped snapshots by it"
            )

    def _conclude(
        self, view: memoryview, shape: FrameShape, report: FrameReport, consumed: int, error: str | None, *, eof: bool
    ) -> None:
        """Set the frame's status and where the next frame is looked for."""
        error = error or shape.error
        if error is not None:
            report.detail = error
            if "checksum" in error.lower() and shape.end is not None:
                report.status, report.end = "checksum", shape.end
            elif self.capped:
                report.status, report.end = "damaged", len(view)
            else:
                report.status, report.end = "damaged", _next_magic(self.data, consumed + 1)
        elif shape.end is None or not eof:
            following = _next_plausible_frame(self.data, consumed + 1)
            if following < len(view):
                report.status, report.end = "damaged", following
                report.detail = "a block header points past the next frame (damaged)"
            else:
                report.status = "open"
                report.torn_bytes += len(view) - consumed
                report.end = len(view)
        else:
            report.end = shape.end


def _release(held: list[bytes] | None, crcs: tuple[int, ...], report: FrameReport) -> Iterator[bytes]:
    """The lines held back from a frame once its status is known: all of them when it is ok, else only those
    that pass their CRC (without CRCs, the lines already streamed of a damaged frame are marked unverified)."""
    if held is not None and report.status == "ok":
        yield from held
    elif held is not None and crcs:
        checked = _check_lines(held, crcs, report)
        if checked:
            yield checked
    elif report.status in ("damaged", "checksum"):
        report.unverified = report.lines


def _check_lines(held: list[bytes], crcs: tuple[int, ...], report: FrameReport) -> bytes:
    """The lines of ``held`` that match a CRC of the index, in order (each CRC matched at most once); the
    report's counts and ``ts`` range are set from the kept lines."""
    kept: list[bytes] = []
    rejected = 0
    at = 0
    for chunk in held:
        for line in chunk.split(b"\n")[:-1]:
            try:
                at = crcs.index(zlib.crc32(b"\n", zlib.crc32(line)), at) + 1
            except ValueError:
                rejected += 1
                continue
            kept.append(line)
    report.lines, report.rejected = len(kept), rejected
    report.first_ts = ts_prefix(kept[0][:64]) if kept else None
    report.last_ts = ts_prefix(kept[-1][:64]) if kept else None
    return b"\n".join(kept) + b"\n" if kept else b""


class _LineAssembler:
    """Turns block outputs into chunks of complete lines; a line longer than ``max_line`` is skipped (counted
    in the report) without being held in memory."""

    def __init__(self, max_line: int, report: FrameReport) -> None:
        self.max_line = max_line
        self.report = report
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.skipping = False

    def feed(self, out: bytes) -> bytes:
        """The complete lines that ``out`` finishes (maybe none)."""
        newline = out.rfind(b"\n")
        if self.skipping:
            if newline < 0:
                return b""
            first = out.find(b"\n")
            out, newline, self.skipping = out[first + 1 :], newline - first - 1, False
        if newline < 0:
            self._hold(out)
            return b""
        complete, tail = out[: newline + 1], out[newline + 1 :]
        if self.pending:
            self.pending.append(complete)
            complete = b"".join(self.pending)
        self.pending, self.pending_size = [], 0
        self._hold(tail)
        return self._count(complete)

    def _hold(self, part: bytes) -> None:
        if not part:
            return
        self.pending.append(part)
        self.pending_size += len(part)
        if self.pending_size > self.max_line:
            self.report.oversized_lines += 1
            self.pending, self.pending_size, self.skipping = [], 0, True

    def _count(self, chunk: bytes) -> bytes:
        """Count the lines of ``chunk`` and remember the first and last ts (a line is at most a block over the
        cap: the pending part was checked before the block that completed it)."""
        report = self.report
        report.lines += chunk.count(b"\n")
        start = 0
        while start < len(chunk):
            stamp = ts_prefix(chunk[start : start + 64])
            if stamp is not None:
                report.stamped += 1
                report.min_ts = stamp if report.min_ts is None else min(report.min_ts, stamp)
                report.max_ts = stamp if report.max_ts is None else max(report.max_ts, stamp)
            start = chunk.find(b"\n", start) + 1 or len(chunk)
        if report.first_ts is None:
            report.first_ts = ts_prefix(chunk[:64])
            report.versioned = report.first_ts is not None and chunk[31:37] == b'","v":'
        last_start = chunk.rfind(b"\n", 0, len(chunk) - 1) + 1
        report.last_ts = ts_prefix(chunk[last_start : last_start + 64]) or report.last_ts
        return chunk


def describe_frame(frame: FrameReport) -> str:
    """A one-line description of a frame that is not ok."""
    where = f"frame at byte {frame.offset}"
    span = ""
    if frame.first_ts or frame.last_ts:
        span = f" ({_text(frame.first_ts)} .. {_text(frame.last_ts)})"
    lost = frame.lost
    lost_text = f"{lost} snapshot(s) lost" if lost is not None else "later snapshots of the frame lost"
    check = ""
    if frame.rejected:
        check = f"; dropped {frame.rejected} line(s) that failed their CRC check"
    elif frame.unverified:
        check = f"; the {frame.unverified} kept snapshot(s) are unverified (may differ from the original)"
    if frame.status == "damaged":
        return f"{where}: undecodable ({frame.detail}); kept {frame.lines} snapshot(s){span}, {lost_text}{check}"
    if frame.status == "checksum":
        if frame.unverified:
            return f"{where}: checksum mismatch: {frame.lines} snapshot(s){span}{check}"
        return f"{where}: checksum mismatch: kept {frame.lines} snapshot(s){span}, {lost_text}{check}"
    if frame.status == "open":
        return (
            f"{where}: ends inside the frame (crash or truncation); kept {frame.lines} snapshot(s){span}, "
            + lost_text
            + check
        )
    return f"{where}: {frame.status}"


def _text(value: bytes | None) -> str:
    return value.decode("ascii", "replace") if value else "?"


def _anchored_frame_within(data: bytes | memoryview, start: int, end: int) -> int | None:
    """The offset of a closed plsnap data frame (one followed by its own frame index, whose length matches; the
    offset may not, after an insertion) starting inside ``[start, end)``, if any: a block can never contain one,
    so a block that seems to is a damaged header."""
    raw = data.obj if isinstance(data, memoryview) else data
    assert isinstance(raw, bytes)
    pos = raw.find(ZSTD_MAGIC, start, end)
    while pos >= 0:
        shape = walk_frame(raw, pos, anchored_check=False)
        if shape.error is None and shape.end is not None and raw[shape.end : shape.end + 4] == INDEX_MAGIC:
            length = struct.unpack_from("<I", raw, shape.end + 4)[0] if shape.end + 8 <= len(raw) else 0
            index = (
                FrameIndex.decode(raw[shape.end + 8 : shape.end + 8 + length]) if length <= MAX_INDEX_PAYLOAD else None
            )
            if index is not None and index.length == shape.end - pos:
                return pos
        pos = raw.find(ZSTD_MAGIC, pos + 1, end)
    return None


def _next_plausible_frame(data: bytes, start: int) -> int:
    """The offset of the next place at or after ``start`` where a real frame starts: a data frame whose headers
    walk without error, or a plsnap frame index that decodes (random bytes that merely look like a magic number
    are skipped). The end of the data when there is none."""
    pos = _next_magic(data, start)
    while pos < len(data):
        head = data[pos : pos + 4]
        if head == ZSTD_MAGIC:
            shape = walk_frame(data, pos)
            if shape.error is None and (shape.block_ends or shape.header_end <= len(data)):
                return pos
        elif head == INDEX_MAGIC and pos + 8 <= len(data):
            length = struct.unpack_from("<I", data, pos + 4)[0]
            if length <= MAX_INDEX_PAYLOAD and FrameIndex.decode(data[pos + 8 : pos + 8 + length]) is not None:
                return pos
        pos = _next_magic(data, pos + 1)
    return len(data)


def _is_magic(data: bytes, pos: int) -> bool:
    head = data[pos : pos + 4]
    return head == ZSTD_MAGIC or (len(head) == 4 and head[1:] == b"\x2a\x4d\x18" and 0x50 <= head[0] <= 0x5F)


def _next_magic(data: bytes, start: int) -> int:
    """The offset of the next data or skippable frame magic at or after ``start`` (or the end)."""
    best = data.find(ZSTD_MAGIC, start)
    skippable = data.find(b"\x2a\x4d\x18", start + 1)
    while skippable >= 0 and not 0x50 <= data[skippable - 1] <= 0x5F:
        skippable = data.find(b"\x2a\x4d\x18", skippable + 1)
    candidates = [c for c in (best, skippable - 1 if skippable >= 0 else -1) if c >= start]
    return min(candidates) if candidates else len(data)


def ts_range(content: bytes) -> tuple[str, str]:
    """The smallest and largest ``ts`` prefix among the lines of ``content`` (empty strings when none)."""
    stamps = [p for p in (ts_prefix(line[:64]) for line in content.split(b"\n")) if p is not None]
    if not stamps:
        return "", ""
    return min(stamps).decode("ascii", "replace"), max(stamps).decode("ascii", "replace")


def frame_checksum(content: bytes) -> bytes:
    """The 4-byte zstd content checksum of ``content`` (the low 32 bits of its XXH64), computed by zstd itself."""
    return zstandard.ZstdCompressor(level=1, write_checksum=True).compress(content)[-4:]


@dataclass(frozen=True, slots=True)
class OpenFrame:
    """Where a crash left an unterminated last frame: the offset to cut at and the content before it."""

    offset: int
    cut_at: int
    content: bytes
    checksum: bool
    lines: int


def closing_mark(data: bytes) -> bytes | None:
    """For a clean, indexed partition whose writer stopped between frames without closing it (a crash): the
    index to append that says it is closed (a copy of the last frame's index). None when nothing is needed."""
    decoder = PartitionDecoder(data, Limits(max_line_bytes=2**62, max_partition_bytes=2**62), want=lambda _: False)
    for _ in decoder.chunks():
        pass
    if not decoder.clean or not decoder.unclosed or not decoder.frames or decoder.frames[-1].index is None:
        return None
    return decoder.frames[-1].index.with_closed().encode()


def find_open_frame(data: bytes) -> OpenFrame | str | None:
    """How to close a crash-left partition in place, keeping every complete line.

    Returns None when the partition is clean (nothing to do), an :class:`OpenFrame` when the only problem is an
    unterminated last frame (crash-shaped), or a string describing other damage (never repair that in place).
    """
    decoder = PartitionDecoder(data, Limits(max_line_bytes=2**62, max_partition_bytes=2**62))
    for _ in decoder.chunks():
        pass
    if decoder.clean:
        return None
    if decoder.junk or any(f.status != "ok" for f in decoder.frames[:-1]) or decoder.frames[-1].status != "open":
        return "; ".join(decoder.problems) or "damaged"
    last = decoder.frames[-1]
    view = memoryview(data)
    shape = walk_frame(view, last.offset)
    dobj = _decompressor()
    content: list[bytes] = []
    size = 0
    cut_at = shape.header_end if shape.block_ends else last.offset
    good_size = 0
    previous = last.offset
    for end in shape.block_ends:
        out = dobj.decompress(view[previous:end])
        previous = end
        content.append(out)
        size += len(out)
        if out.endswith(b"\n"):
            cut_at, good_size = end, size
    body = b"".join(content)[:good_size]
    if not shape.block_ends or good_size == 0:
        return OpenFrame(last.offset, last.offset, b"", shape.checksum, 0)
    return OpenFrame(last.offset, cut_at, body, shape.checksum, body.count(b"\n"))


def decode_lines(data: bytes, limits: Limits | None = None) -> tuple[list[bytes], PartitionDecoder]:
    """Every complete line of a partition file (without newlines), and the decoder with its reports."""
    decoder = PartitionDecoder(data, limits)
    lines = [line for chunk in decoder.chunks() for line in chunk.split(b"\n") if line]
    return lines, decoder
