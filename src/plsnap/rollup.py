"""Rollups: the summary of each hour, kept beside its partition (``HH.rollup.json.zst``), so that a window over
days reads minutes of raw rows, not days (docs/archive-format.md, "Rollups").

A rollup holds :class:`~plsnap.partial.Partial` parts: one per 5-minute slice and, for a finished hour, one
for the whole hour. It says what it was built from (the partition's size and a digest of every byte before that
size, the damaged files beside it, the format and fingerprint versions) and how far it covers; a rollup that no
longer matches its partition is stale and ignored. Rollups are derived data: the raw partition stays the truth,
and any answer read through rollups equals the full scan of the raw rows.

This module reads and writes rollup files, builds them from raw rows (``plsnap reindex``), keeps the live
hour's rollup as the daemon writes (:class:`Keeper`), and finds the valid rollups of an archive for readers
(:class:`Rollups`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import zstandard

from plsnap.archive.format import ZSTD_MAGIC, FrameIndex, PartitionDecoder, parse_line, ts_prefix, walk_frame
from plsnap.archive.fs import KIND_TEXT, SafeDir
from plsnap.archive.layout import PARTITION_SPAN, Partition, hour_start, rollup_name
from plsnap.archive.reader import ArchiveReader
from plsnap.errors import ArchiveError, UsageError
from plsnap.model import Snapshot, format_ts, parse_ts
from plsnap.partial import DIMENSIONS, FINGERPRINT_VERSION, LOAD_BUCKET, Line, Partial, PartialBuilder, join
from plsnap.partial_codec import CodecError, decode, decode_timeline, encode


class _Log:
    """structlog's logger, imported when a line is logged (readers never log)."""

    def __getattr__(self, name: str) -> Any:
        import structlog

        return getattr(structlog.get_logger("plsnap"), name)


log = _Log()

KIND = "plsnap-rollup"
#: 2: ``digest`` covers every byte of the partition before ``size`` (1 had ``tail``, the last 4096 only, which
#: missed damage further in). 3: each part keeps the DB load per minute (the report's charts) and the
#: executions' tally per fingerprint.
VERSION = 3
SLICE = timedelta(minutes=5)
#: The name of the row of a part's DB load (kept per :data:`~plsnap.partial.LOAD_BUCKET`).
LOAD_ROW = "load"
#: The longest executions a slice and an hour's part keep: a ``window --top`` above them reads the raw rows of
#: the parts that had more.
SLICE_CAP = 10
HOUR_CAP = 25
#: Bytes of the partition hashed per read while its digest is computed.
_DIGEST_CHUNK = 1 << 20
MAX_FILE_BYTES = 64 * 2**20
MAX_DECODED_BYTES = 512 * 2**20
MAX_LINE_BYTES = 64 * 2**20
#: Compressed bytes fed to the decompressor at once (at most 16 MiB come out), and lines returned per call.
_FEED_BYTES = 512
_LINES_PER_CALL = 4096
LIVE_LEVEL = 3
FINAL_LEVEL = 12


class RollupError(ValueError):
    """A rollup file that is not one plsnap wrote (foreign, corrupt, or of another version)."""


class OutdatedRollupError(RollupError):
    """A rollup another version of plsnap wrote (another format, fingerprint version or slice settings): not
    damage, only not usable by this one (``plsnap reindex`` rebuilds it)."""


@dataclass(frozen=True, slots=True)
class Header:
    """What a rollup was built from, and what it covers.

    ``size``: bytes of the partition file it summarizes (lines after it are not in the rollup); ``digest``: the
    SHA-256 of those bytes (every byte before ``size``, so that damage anywhere in them makes the rollup
    stale); ``mtime_ns``: the file's modification time when it was exactly ``size`` bytes at build time (else 0):
    a reader that finds the same size and time trusts the digest without hashing the file again (any write
    changes the time; damage that does not is what ``plsnap verify`` finds, and it marks the rollup stale);
    ``covered_until``: the slices cover ``[hour, covered_until)``;
    ``first_ts``/``last_ts``: the first and last ``ts`` of any line in those bytes; ``damaged``: the damaged
    files beside the partition, with their sizes and digests; ``problems``: the damage a reader of those bytes reports.
    """

    hour: datetime
    partition: str
    size: int
    digest: str
    mtime_ns: int
    covered_until: datetime
    first_ts: datetime | None
    last_ts: datetime | None
    damaged: tuple[tuple[str, int, str], ...] = ()
    problems: tuple[str, ...] = ()
    built_by: str = "daemon"
    crcs: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        """True when the rollup covers the whole hour."""
        return self.covered_until >= self.hour + PARTITION_SPAN

    def to_json(self) -> dict[str, Any]:
        """The header line's object."""
        return {
            "kind": KIND,
            "v": VERSION,
            "fingerprint_v": FINGERPRINT_VERSION,
            "hour": format_ts(self.hour),
            "partition": self.partition,
            "size": self.size,
            "digest": self.digest,
            "mtime_ns": self.mtime_ns,
            "covered_until": format_ts(self.covered_until),
            "first_ts": format_ts(self.first_ts) if self.first_ts else None,
            "last_ts": format_ts(self.last_ts) if self.last_ts else None,
            "damaged": [list(item) for item in self.damaged],
            "problems": list(self.problems),
            "built_by": self.built_by,
            "crc": struct.pack(f">{len(self.crcs)}I", *self.crcs).hex(),
            "slice_seconds": int(SLICE.total_seconds()),
            "slice_cap": SLICE_CAP,
            "hour_cap": HOUR_CAP,
        }

    @classmethod
    def from_json(cls, value: Any) -> Header:
        """Parse a header line; RollupError when it is not one plsnap writes in this version."""
        if not isinstance(value, dict) or value.get("kind") != KIND:
            raise RollupError("not a plsnap rollup")
        version = value.get("v")
        if type(version) is not int:
            raise RollupError(f"rollup format version {version!r} (this plsnap reads {VERSION})")
        if version != VERSION:
            raise OutdatedRollupError(f"rollup format version {version} (this plsnap reads {VERSION})")
        if value.get("fingerprint_v") != FINGERPRINT_VERSION:
            raise OutdatedRollupError("built with another fingerprint version")
        caps = (value.get("slice_cap"), value.get("hour_cap"))
        if value.get("slice_seconds") != int(SLICE.total_seconds()) or caps != (SLICE_CAP, HOUR_CAP):
            raise OutdatedRollupError("built with other slice settings")
        try:
            damaged = tuple(_damaged_entry(item) for item in value["damaged"])
            return cls(
                hour=parse_ts(_text(value["hour"])),
                partition=_text(value["partition"]),
                size=_count(value["size"]),
                digest=_text(value["digest"]),
                mtime_ns=_count(value["mtime_ns"]),
                covered_until=parse_ts(_text(value["covered_until"])),
                first_ts=_opt_ts(value["first_ts"]),
                last_ts=_opt_ts(value["last_ts"]),
                damaged=damaged,
                problems=tuple(_text(p) for p in value["problems"]),
                built_by=_text(value.get("built_by", "")),
                crcs=_crc_list(value["crc"]),
            )._checked()
        except (KeyError, TypeError, ValueError) as exc:
            raise RollupError(f"malformed rollup header ({type(exc).__name__})") from None

    def _checked(self) -> Header:
        """The header, if its instants are consistent with its hour (ValueError otherwise)."""
        end = self.hour + PARTITION_SPAN
        if self.hour != hour_start(self.hour) or not self.hour <= self.covered_until <= end:
            raise ValueError("covered span outside the hour")
        stamps = [t for t in (self.first_ts, self.last_ts) if t is not None]
        if len(stamps) == 1 or stamps != sorted(stamps):
            raise ValueError("first and last ts out of order")
        if any(not self.hour <= t < end for t in stamps):
            raise ValueError("first or last ts outside the hour")
        return self


def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 4096:
        raise ValueError("not a short string")
    return value


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("not a count")
    return value


def _crc_list(value: Any) -> tuple[int, ...]:
    if not isinstance(value, str) or len(value) % 8 or len(value) > 8 * 100_000:
        raise ValueError("not a CRC list")
    raw = bytes.fromhex(value)
    return struct.unpack(f">{len(raw) // 4}I", raw)


def _opt_ts(value: Any) -> datetime | None:
    return None if value is None else parse_ts(_text(value))


@dataclass(slots=True)
class Rollup:
    """A rollup file read back: its header, and its parts' lines, decompressed as far as they are needed and
    parsed (each checked against its CRC in the header) only when asked for."""

    header: Header
    stream: _Stream
    rows: dict[tuple[str, datetime, str], tuple[int, bytes]] = field(default_factory=dict)

    def hour_part(self, dims: Iterable[str], *, load: bool = False) -> Partial | None:
        """The whole hour's part (only for complete rollups), with the groups of ``dims`` (and its DB load, per
        minute, with ``load``)."""
        return self._part("hour", self.header.hour, tuple(dims), load)

    def slice_part(self, start: datetime, dims: Iterable[str], *, load: bool = False) -> Partial | None:
        """The part of the slice starting at ``start``; an empty part for a covered slice without lines, None for
        a slice the rollup does not cover."""
        wanted = tuple(dims)
        part = self._part("slice", start, wanted, load)
        if part is None and self.header.hour <= start and start + SLICE <= self.header.covered_until:
            return Partial(wanted, groups={d: {} for d in wanted})
        return part

    def _part(self, kind: str, start: datetime, dims: tuple[str, ...], load: bool) -> Partial | None:
        if kind == "slice":
            self._read_all()
        common = self.rows.get((kind, start, ""))
        if common is None:
            return None
        value = self._data(common)
        stored_load = self.rows.get((kind, start, LOAD_ROW))
        value["load"] = self._data(stored_load) if load and stored_load is not None else None
        rows = [self.rows.get((kind, start, dim)) for dim in dims]
        value["groups"] = {dim: self._data(row) for dim, row in zip(dims, rows, strict=True) if row is not None}
        if len(value["groups"]) != len(dims):
            raise RollupError(f"the {kind} part lacks a dimension")
        try:
            part = decode(value, dims)
        except CodecError as exc:
            raise RollupError(str(exc)) from None
        end = start + (SLICE if kind == "slice" else PARTITION_SPAN)
        if part.lines and not (start <= part.lines[0].ts and part.lines[-1].ts < end):
            raise RollupError(f"the {kind} part holds lines outside its span")
        self._check_span(part.lines)
        return part

    def _check_span(self, lines: list[Line]) -> None:
        """RollupError unless the header's first and last ``ts`` hold ``lines`` (a part's timeline)."""
        first, last = self.header.first_ts, self.header.last_ts
        if lines and (first is None or last is None or lines[0].ts < first or lines[-1].ts > last):
            raise RollupError("its header's first and last ts do not hold its parts' lines")

    def checked_span(self) -> tuple[datetime | None, datetime | None]:
        """The header's first and last ``ts``, once the timelines of the rollup's first and last parts agree
        with them (RollupError otherwise): the archive's bounds are read from them."""
        self._read_all()
        starts = sorted(start for kind, start, dim in self.rows if kind == "slice" and not dim)
        keys = [("hour", self.header.hour, "")] if ("hour", self.header.hour, "") in self.rows else []
        keys += [("slice", starts[0], ""), ("slice", starts[-1], "")] if starts else []
        for key in keys:
            try:
                lines = decode_timeline(self._data(self.rows[key]))
            except CodecError as exc:
                raise RollupError(str(exc)) from None
            self._check_span(lines)
        if self.header.first_ts is not None and not keys:
            raise RollupError("its header names lines that no part holds")
        return self.header.first_ts, self.header.last_ts

    def _data(self, row: tuple[int, bytes]) -> dict[str, Any]:
        position, line = row
        crcs = self.header.crcs
        if position >= len(crcs) or zlib.crc32(line) != crcs[position]:
            raise RollupError("a line does not match its CRC (damaged)")
        value = parse_line(line)
        data = value.get("data") if value is not None else None
        if not isinstance(data, dict):
            raise RollupError("malformed rollup line")
        return data

    def _read_all(self) -> None:
        while not self.stream.done:
            _add_rows(self, self.stream.lines())
        if len(self.rows) != len(self.header.crcs):
            raise RollupError("the rollup has other lines than its header lists")


class _Stream:
    """A rollup's one zstd frame, decompressed as far as needed (the hour's part comes first).

    The frame is fed to the decompressor in small pieces, so that what one piece expands to stays small (a zstd
    block holds at most 128 KiB, and takes at least 4 bytes): a file that decompresses to gigabytes (a zip bomb)
    is refused once ``MAX_DECODED_BYTES`` came out, or once a line outgrows ``MAX_LINE_BYTES``, never held whole.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.dobj = zstandard.ZstdDecompressor(max_window_size=2**27).decompressobj()  # a context of its own
        self.pending = bytearray()
        self.out = b""
        self.at = 0
        self.produced = 0
        self.done = False
        self.count = -1

    def lines(self) -> list[tuple[int, bytes]]:
        """The next complete lines (at least one unless the frame is done), numbered so that the header is -1
        and the first line after it 0 (its position in the header's CRC list)."""
        found: list[tuple[int, bytes]] = []
        while not self.done and len(found) < _LINES_PER_CALL:
            if self.at >= len(self.out):
                if found:
                    break
                self._feed()
                continue
            cut = self.out.find(b"\n", self.at)
            if cut < 0:
                self.pending += self.out[self.at :]
                self.at = len(self.out)
                if len(self.pending) > MAX_LINE_BYTES:
                    raise RollupError("a rollup line is too long")
                continue
            line = self.out[self.at : cut]
            if self.pending:
                line, self.pending = bytes(self.pending) + line, bytearray()
            self.at = cut + 1
            if not line:
                raise RollupError("malformed rollup (an empty line)")
            found.append((self.count, line))
            self.count += 1
        return found

    def _feed(self) -> None:
        if self.pos >= len(self.data):
            if not self.dobj.eof or self.pending or self.dobj.unused_data:
                raise RollupError("the rollup is cut short or has trailing bytes")
            self.done = True
            return
        chunk = self.data[self.pos : self.pos + _FEED_BYTES]
        self.pos += len(chunk)
        try:
            out = self.dobj.decompress(chunk)
        except zstandard.ZstdError as exc:
            raise RollupError(f"undecodable ({exc})") from None
        self.produced += len(out)
        if self.produced > MAX_DECODED_BYTES:
            raise RollupError("rollup too large once decompressed")
        self.out, self.at = out, 0


def encode_file(
    header: Header,
    hour: Partial | None,
    slices: Iterable[tuple[datetime, Partial]],
    level: int,
    *,
    cache: dict[datetime, list[bytes]] | None = None,
) -> bytes:
    """The compressed rollup file, one zstd frame: the header line (which lists every other line's CRC), then
    the hour's part (when given), then the slices; each part is one line of what every dimension shares, one
    line per dimension and one of its DB load, so that a reader decompresses and parses only what it uses. The
    slices of a finished hour (``hour`` given) leave their DB load out: the hour's part holds it, and a report
    that starts or ends inside a finished hour reads that edge's raw rows. ``cache`` keeps each
    slice's lines once encoded (the daemon rewrites the live hour's rollup as slices close)."""
    lines = _part_lines("hour", header.hour, hour, None) if hour is not None else []
    for start, part in slices:
        encoded = cache.get(start) if cache is not None else None
        if encoded is None:
            encoded = _part_lines("slice", start, part, SLICE_CAP)
            if cache is not None:
                cache[start] = encoded
        lines += encoded if hour is None else [line for line in encoded if not _is_load_row(line)]
    header = dataclasses.replace(header, crcs=tuple(zlib.crc32(line) for line in lines))
    content = b"\n".join([orjson.dumps(header.to_json()), *lines]) + b"\n"
    return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(content)


def _part_lines(kind: str, start: datetime, part: Partial, cap: int | None) -> list[bytes]:
    data = encode(part, cap=cap)
    by_dim = data.pop("groups")
    load = data.pop("load")
    if load is not None:
        by_dim[LOAD_ROW] = load
    stamp = format_ts(start)
    lines = [orjson.dumps({"part": kind, "start": stamp, "dim": "", "data": data})]
    return lines + [orjson.dumps({"part": kind, "start": stamp, "dim": d, "data": v}) for d, v in by_dim.items()]


_ROW_PREFIX = re.compile(rb'^\{"part":"(hour|slice)","start":"([0-9T:.Z-]{24})","dim":"([a-z]*)","data":')


def _is_load_row(line: bytes) -> bool:
    """True for a part's DB-load row (a finished hour keeps it in its hour's part only)."""
    match = _ROW_PREFIX.match(line)
    return match is not None and match.group(3) == LOAD_ROW.encode()


def decode_file(data: bytes) -> Rollup:
    """Read a rollup file as far as its header and the hour's part (the rest is decompressed when a slice is
    asked for); RollupError for anything plsnap did not write."""
    if len(data) > MAX_FILE_BYTES:
        raise RollupError("rollup file too large")
    if data[:4] != ZSTD_MAGIC:
        raise RollupError("not a zstd file")
    if walk_frame(data, 0, anchored_check=False).end != len(data):
        raise RollupError("truncated or damaged (not one whole zstd frame)")
    stream = _Stream(data)
    rows: list[tuple[int, bytes]] = []
    while not rows and not stream.done:
        rows = stream.lines()
    if not rows:
        raise RollupError("no header line")
    (_, first), rest = rows[0], rows[1:]
    rollup = Rollup(Header.from_json(parse_line(first)), stream)
    _add_rows(rollup, rest)
    while not stream.done and not any(kind == "slice" for kind, _, _ in rollup.rows):
        _add_rows(rollup, stream.lines())
    if rollup.header.complete and ("hour", rollup.header.hour, "") not in rollup.rows:
        raise RollupError("a rollup of the whole hour without the hour's part")
    return rollup


def _add_rows(rollup: Rollup, rows: Iterable[tuple[int, bytes]]) -> None:
    header = rollup.header
    for position, row in rows:
        if not row:
            continue
        match = _ROW_PREFIX.match(row)
        if match is None:
            raise RollupError("malformed rollup line")
        kind, stamp, dim = match.group(1).decode(), match.group(2).decode(), match.group(3).decode()
        try:
            start = parse_ts(stamp)
        except ValueError:
            raise RollupError("malformed part start") from None
        if dim and dim not in DIMENSIONS and dim != LOAD_ROW:
            raise RollupError(f"unknown dimension {dim!r}")
        if (kind == "hour" and start != header.hour) or (kind == "slice" and not _on_slice_grid(start, header)):
            raise RollupError("part outside its hour")
        rollup.rows[(kind, start, dim)] = (position, row)


def _on_slice_grid(start: datetime, header: Header) -> bool:
    offset = (start - header.hour) / SLICE
    return offset == int(offset) and header.hour <= start and start + SLICE <= header.covered_until


def prefix_digest(folder: SafeDir, name: str, size: int, *, unless_mtime_ns: int = 0) -> tuple[int, int, str | None]:
    """(the file's size, its mtime in ns, the ``digest`` of its first ``size`` bytes), read in chunks;
    FileNotFoundError when it is missing. A file shorter than ``size`` gets the digest of what it holds (which
    never matches). The digest is None, not computed, when the file is exactly ``size`` bytes and its mtime is
    ``unless_mtime_ns`` (not 0): the file was not written since that time was taken."""
    fd = folder.open_file(name, os.O_RDONLY)
    try:
        stat = os.fstat(fd)
        actual, mtime_ns = stat.st_size, stat.st_mtime_ns
        if unless_mtime_ns and actual == size and mtime_ns == unless_mtime_ns:
            return actual, mtime_ns, None
        hasher = hashlib.sha256()
        offset = 0
        while offset < min(size, actual):
            chunk = os.pread(fd, min(_DIGEST_CHUNK, size - offset), offset)
            if not chunk:
                break
            hasher.update(chunk)
            offset += len(chunk)
        return actual, mtime_ns, hasher.hexdigest()
    finally:
        os.close(fd)


def damaged_files(folder: SafeDir, partition: Partition) -> tuple[tuple[str, int, str], ...]:
    """(name, size, digest) of each damaged file beside ``partition``: readers read what they can of them, so a
    change in any of them, even one that keeps the size, changes the answer."""
    found = []
    for name in partition.damaged:
        size, _, digest = prefix_digest(folder, name, 2**62)
        found.append((name, size, digest or ""))
    return tuple(found)


def _damaged_entry(item: Any) -> tuple[str, int, str]:
    """A header's damaged entry; one written before digests were kept (name, size) never matches a file."""
    name, size, *rest = item
    return _text(name), _count(size), _text(rest[0]) if rest else ""


def slice_start(moment: datetime) -> datetime:
    """The start of the 5-minute slice holding ``moment``."""
    base = hour_start(moment)
    return base + SLICE * ((moment - base) // SLICE)


# --- building from raw rows -------------------------------------------------------------------------------


def build_from_raw(
    instance_dir: Path, partition: Partition, *, now: datetime, built_by: str = "reindex"
) -> tuple[Header, Partial | None, list[tuple[datetime, Partial]]]:
    """Build a partition's rollup from its raw rows, as readers see them: every slice up to the last whole one
    before ``now`` (all of them once the hour is over), and the hour's part when the hour is over."""
    with ArchiveReader(instance_dir) as reader:
        return _build_from_raw(reader, partition, now=now, built_by=built_by)


def _build_from_raw(
    reader: ArchiveReader, partition: Partition, *, now: datetime, built_by: str
) -> tuple[Header, Partial | None, list[tuple[datetime, Partial]]]:
    folder = reader.directory().subdir(partition.date_name)
    with folder:
        size, _ = folder.read_range(partition.path.name, 0, 0) if partition.has_main else (0, b"")
        damaged = damaged_files(folder, partition)
        actual, mtime_ns, whole = (
            prefix_digest(folder, partition.path.name, size) if size else (0, 0, hashlib.sha256().hexdigest())
        )
    hour_over = now >= partition.end
    covered_until = partition.end if hour_over else max(partition.start, slice_start(now))
    slices = []
    start = partition.start
    while start < covered_until:
        snapshots = reader.iter_snapshots(start, start + SLICE, include_idle=False)
        part = _build(snapshots)
        if part.lines:
            slices.append((start, part))
        start += SLICE
    files = tuple(str(path) for path in partition.paths)
    problems = tuple(p for p in reader.problems if p.startswith(files) or p.startswith(f"{reader.instance_dir}: "))
    header = Header(
        hour=partition.start,
        partition=partition.path.name,
        size=size,
        digest=whole or "",
        mtime_ns=mtime_ns if actual == size and mtime_ns > 0 else 0,
        covered_until=covered_until,
        first_ts=reader.partition_first(partition),
        last_ts=reader.partition_last(partition),
        damaged=damaged,
        problems=problems,
        built_by=built_by,
    )
    hour = _join(p for _, p in slices) if hour_over else None
    return header, hour, slices


def _join(parts: Iterable[Partial]) -> Partial:
    from plsnap.summary import LoadTracker

    return join(parts, DIMENSIONS, cap=HOUR_CAP, load=LoadTracker(LOAD_BUCKET))


def _builder() -> PartialBuilder:
    from plsnap.summary import LoadTracker

    return PartialBuilder(DIMENSIONS, cap=HOUR_CAP, load=LoadTracker(LOAD_BUCKET))


def _build(snapshots: Iterable[Snapshot]) -> Partial:
    builder = _builder()
    for snapshot in snapshots:
        builder.feed(snapshot)
    return builder.finish()


def write(folder: SafeDir, header: Header, hour: Partial | None, slices: Iterable[tuple[datetime, Partial]],
          *, level: int = FINAL_LEVEL, cache: dict[datetime, list[bytes]] | None = None) -> int:  # fmt: skip
    """Write a rollup beside its partition (temp file, fsync, rename); returns its size in bytes."""
    data = encode_file(header, hour, slices, level, cache=cache)
    folder.atomic_write(rollup_name(header.partition), data)
    return len(data)


# --- readers ----------------------------------------------------------------------------------------------


class Rollups:
    """The valid rollups of one archive, found beside the partitions or in a cache directory (for archives
    that are read-only), checked against their partitions once per reader. Stale and unreadable ones are
    ignored; each unreadable one is reported once as a reader problem. A ``cache`` without the instance's directory
    is said once, unless ``building`` (reindex is about to make it)."""

    def __init__(self, reader: ArchiveReader, *, cache: Path | None = None, building: bool = False) -> None:
        self.reader = reader
        self.cache = cache
        self._found: dict[Path, Rollup | None] = {}
        self.stale: list[tuple[Partition, str]] = []
        self._told_outdated = False
        if cache is not None and not building and not (cache / reader.instance).is_dir():
            reader.report(
                f"--cache {cache}: no rollups for instance {reader.instance!r} there ({cache / reader.instance} is "
                "not a directory; `plsnap reindex --cache DIR` makes it); using only the rollups beside the archive"
            )

    def get(self, partition: Partition) -> Rollup | None:
        """The partition's valid rollup, or None."""
        if partition.path not in self._found:
            self._found[partition.path] = self._load(partition)
        return self._found[partition.path]

    def _load(self, partition: Partition) -> Rollup | None:
        reason = "no rollup"
        for cached, folder in self._folders(partition):
            with folder:
                if not cached and partition.rollup is None:
                    continue  # none, or not a regular file (the listing reported it)
                try:
                    data = folder.read_bytes(partition.rollup_name, limit=MAX_FILE_BYTES + 1)
                except FileNotFoundError:
                    continue
                except (OSError, ArchiveError) as exc:
                    self.reader.report(f"{folder.child_path(partition.rollup_name)}: unreadable rollup ignored ({exc})")
                    reason = f"unreadable rollup ({exc})"
                    continue
                try:
                    rollup = decode_file(data)
                except OutdatedRollupError as exc:
                    if not self._told_outdated:
                        self._told_outdated = True
                        self.reader.report(
                            f"{self.reader.instance_dir}: rollups written by another plsnap version are ignored "
                            f"({exc}; first: {folder.child_path(partition.rollup_name)}); their hours are read "
                            "from the raw rows until `plsnap reindex` rebuilds them"
                        )
                    reason = f"outdated rollup: {exc}"
                    continue
                except RollupError as exc:
                    self.reader.report(f"{folder.child_path(partition.rollup_name)}: rollup ignored: {exc}")
                    reason = f"unreadable rollup: {exc}"
                    continue
            problem = self._check(rollup, partition, trust_mtime=not cached)
            if problem is None:
                for recorded in rollup.header.problems:
                    text = recorded.split(": ", 1)[-1]
                    self.reader.report(f"{partition.path}: {text} (as recorded by its rollup)")
                return rollup
            reason = problem
        self.stale.append((partition, reason))
        return None

    def last_ts(self, partition: Partition, rollup: Rollup) -> datetime | None:
        """The partition's last ``ts``: the rollup's, or a later one among lines added after it was built."""
        header = rollup.header
        last = header.last_ts
        if not partition.has_main:
            return last
        with self.reader.directory().subdir(partition.date_name) as folder:
            size, _ = folder.read_range(partition.path.name, 0, 0)
            if size <= header.size:
                return last
            _, rest = folder.read_range(partition.path.name, header.size, size - header.size)
        low, high = format_ts(partition.start).encode(), format_ts(partition.end).encode()
        for chunk in PartitionDecoder(rest, base=header.size).chunks():
            for line in chunk.split(b"\n"):
                prefix = ts_prefix(line[:48])
                if prefix is not None and low <= prefix < high:
                    try:
                        moment = parse_ts(prefix.decode())
                    except ValueError:  # a line readers skip (and report)
                        continue
                    last = moment if last is None else max(last, moment)
        return last

    def _folders(self, partition: Partition) -> Iterator[tuple[bool, SafeDir]]:
        """(from the cache, folder) where the partition's rollup may be: beside it, then in the cache."""
        with contextlib.suppress(FileNotFoundError, ArchiveError):
            yield False, self.reader.directory().subdir(partition.date_name)
        if self.cache is not None:
            with contextlib.suppress(FileNotFoundError, ArchiveError, OSError):
                root = SafeDir.open_root(self.cache, writable=False)
                with root, root.subdir(self.reader.instance) as instance:
                    folder = instance.subdir(partition.date_name)
                yield True, folder

    def _check(self, rollup: Rollup, partition: Partition, *, trust_mtime: bool) -> str | None:  # noqa: PLR0911
        """Why the rollup does not describe the partition as it is now (None when it does). ``trust_mtime``: a
        partition of the recorded size and mtime needs no hash (not for a cache's rollups: ``verify`` cannot
        remove those when it finds bit rot that kept both)."""
        header = rollup.header
        if header.hour != partition.start or header.partition != partition.path.name:
            return "it names another partition"
        try:
            folder = self.reader.directory().subdir(partition.date_name)
        except (FileNotFoundError, ArchiveError):
            return "the partition is unreadable"
        with folder:
            try:
                damaged = damaged_files(folder, partition)
                if damaged != header.damaged:
                    return "the damaged files beside the partition changed"
                if not partition.has_main:
                    return None if header.size == 0 and partition.damaged else "the partition file is gone"
                size, _, whole = prefix_digest(
                    folder, partition.path.name, header.size, unless_mtime_ns=header.mtime_ns if trust_mtime else 0
                )
                if size < header.size or whole not in (None, header.digest):
                    return "the partition changed since the rollup was built"
                if size > header.size:
                    _, rest = folder.read_range(partition.path.name, header.size, size - header.size)
                    live = partition is self.reader.partitions()[-1]
                    if not _all_after(rest, header.size, header.covered_until, partition.end, live=live):
                        return "lines were added to a span the rollup covers, or damaged data after it"
            except (OSError, ArchiveError) as exc:
                return f"the partition is unreadable ({exc})"
        return None


def _all_after(data: bytes, base: int, covered_until: datetime, hour_end: datetime, *, live: bool) -> bool:
    """True when ``data`` (frames appended after a rollup was built, from file offset ``base``) is intact and
    every line in it has ``covered_until <= ts < hour_end``; an unfinished last frame is intact only in the
    ``live`` (newest) partition. Anything else sends readers to the raw rows, which report it."""
    bound = format_ts(covered_until).encode()
    end = format_ts(hour_end).encode()
    early = False

    def want(index: FrameIndex) -> bool:
        nonlocal early
        if not index.checked or index.min_ts.encode() < bound or index.max_ts.encode() >= end:
            early = True
        return False

    decoder = PartitionDecoder(data, want=want, base=base)
    for chunk in decoder.chunks():
        for line in chunk.split(b"\n"):
            prefix = ts_prefix(line[:48])
            if line and (prefix is None or prefix < bound or prefix >= end):
                return False
    frames = decoder.frames
    intact = all(f.status in ("ok", "skipped") or (live and f.status == "open" and f is frames[-1]) for f in frames)
    return intact and not early and not decoder.junk and not decoder.bad_indexes and not decoder.misplaced_indexes


# --- the daemon's live rollup -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Hour:
    start: datetime
    date_name: str
    file_name: str
    usable: bool
    opened: int
    slices: list[tuple[datetime, Partial]] = field(default_factory=list)
    encoded: dict[datetime, list[bytes]] = field(default_factory=dict)
    builder: PartialBuilder | None = None
    slot: datetime | None = None
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    why_not: str = ""


class Keeper:
    """Keeps the rollup of the hour the daemon is writing: fed every line the writer appended, it closes a
    slice when a line of the next slice comes, and writes the rollup each time the writer closes a frame (so the
    recorded size always falls between frames). At rotation and shutdown it writes the hour's final rollup.

    An hour the keeper did not see from its start (the daemon started in mid-hour, or the hour's file was set
    aside as damaged) is rebuilt from raw rows once the hour is over, in a background thread (``rebuild``).
    Failures are logged and never stop the capture.
    """

    def __init__(self, directory: SafeDir, *, rebuild: Callable[[datetime], None] | None = None) -> None:
        self.directory = directory
        self.rebuild = rebuild
        self.hour: _Hour | None = None
        self.written = 0
        self.failures = 0

    def feed(self, record: dict[str, Any], *, opened: int, fresh: bool, frames: list[tuple[str, str, int]]) -> None:
        """After the writer appended the line that encodes ``record`` (:func:`~plsnap.archive.format.encode_line`):
        ``opened`` counts the writer's file openings and ``fresh`` says whether the last file it opened was new,
        ``frames`` the (date, file, size) of the frames it closed meanwhile. The record is read as readers read
        the line (:meth:`Snapshot.from_record`: its ``ts`` string in milliseconds, every value validated), so that
        the rollup says exactly what a scan of the raw rows says; it holds only JSON values, so that parsing the
        line back would give the same object (tested), at a third of the cost."""
        try:
            snapshot = Snapshot.from_record(record, include_idle=False)
            if snapshot is None:
                raise ValueError("the line just written does not read back")
            self._feed(snapshot, opened=opened, fresh=fresh, frames=frames)
        except Exception as exc:  # a rollup is derived data: it must never stop the capture
            self._failed(exc)

    def _feed(self, snapshot: Snapshot, *, opened: int, fresh: bool, frames: list[tuple[str, str, int]]) -> None:
        ts = snapshot.ts
        start = hour_start(ts)
        hour = self.hour
        if hour is not None and hour.start != start:
            self._finish_hour(hour, frames)
            hour = None
        if hour is None:
            date_name, file_name = start.strftime("%Y-%m-%d"), f"{start:%H}.jsonl.zst"
            why = "" if fresh else "the daemon started in mid-hour"
            hour = self.hour = _Hour(start, date_name, file_name, fresh, opened, why_not=why)
        elif opened != hour.opened:
            hour.opened = opened
            if fresh:
                hour.usable, hour.why_not = False, "the hour's file was set aside as damaged"
        if hour.last_ts is not None and ts < hour.last_ts:
            hour.usable, hour.why_not = False, "lines out of order (the clock went back)"
        slot = slice_start(ts)
        if hour.builder is not None and hour.slot != slot:
            self._close_slice(hour)
        for date_name, file_name, size in frames:
            if (date_name, file_name) == (hour.date_name, hour.file_name) and hour.usable:
                self._write(hour, size, covered_until=slot)
        if hour.builder is None:
            hour.builder, hour.slot = _builder(), slot
        hour.builder.feed(snapshot)
        hour.first_ts = min(hour.first_ts or ts, ts)
        hour.last_ts = max(hour.last_ts or ts, ts)

    def close(self, frames: list[tuple[str, str, int]]) -> None:
        """At shutdown, after the writer closed its partition: write what the hour's rollup covers."""
        try:
            hour = self.hour
            if hour is None:
                return
            for date_name, file_name, size in frames:
                if (date_name, file_name) == (hour.date_name, hour.file_name) and hour.usable and hour.slot:
                    covered = hour.slot
                    self._write(hour, size, covered_until=covered)
        except Exception as exc:
            self._failed(exc)

    def _close_slice(self, hour: _Hour) -> None:
        assert hour.builder is not None and hour.slot is not None
        part = hour.builder.finish()
        if part.lines:
            hour.slices.append((hour.slot, part))
        hour.builder, hour.slot = None, None

    def _finish_hour(self, hour: _Hour, frames: list[tuple[str, str, int]]) -> None:
        if hour.builder is not None:
            self._close_slice(hour)
        final = next((size for d, f, size in frames if (d, f) == (hour.date_name, hour.file_name)), None)
        if hour.usable and final is not None:
            self._write(hour, final, covered_until=hour.start + PARTITION_SPAN, final=True)
            return
        log.info("rollup left to rebuild from raw rows", hour=format_ts(hour.start), reason=hour.why_not or "no size")
        if self.rebuild is not None:
            self.rebuild(hour.start)

    def _write(self, hour: _Hour, size: int, *, covered_until: datetime, final: bool = False) -> None:
        slices = [(s, p) for s, p in hour.slices if s + SLICE <= covered_until]
        with self.directory.subdir(hour.date_name) as folder:
            actual, mtime_ns, whole = prefix_digest(folder, hour.file_name, size)
            if actual < size:
                raise ArchiveError(f"{folder.child_path(hour.file_name)} is shorter than the writer said")
            header = Header(
                hour=hour.start,
                partition=hour.file_name,
                size=size,
                digest=whole or "",
                mtime_ns=mtime_ns if actual == size and mtime_ns > 0 else 0,
                covered_until=covered_until,
                first_ts=hour.first_ts,
                last_ts=hour.last_ts,
                built_by="daemon",
            )
            part = _join(p for _, p in slices) if final else None
            level = FINAL_LEVEL if final else LIVE_LEVEL
            self.written += write(folder, header, part, slices, level=level, cache=hour.encoded)
        if self.failures:
            log.info("rollups written again", after_failures=self.failures)
            self.failures = 0

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if self.failures == 1:
            log.warning("rollup not written (readers use the raw rows)", error=f"{type(exc).__name__}: {exc}")


def rebuild_in_background(instance_dir: Path, *, now: Callable[[], datetime]) -> Callable[[datetime], None]:
    """A ``Keeper.rebuild`` that rebuilds one hour's rollup from raw rows in a thread of its own."""

    def start(hour: datetime) -> None:
        thread = threading.Thread(target=_rebuild, args=(instance_dir, hour, now), name="plsnap-rollup", daemon=True)
        thread.start()

    return start


def _rebuild(instance_dir: Path, hour: datetime, now: Callable[[], datetime]) -> None:
    try:
        with ArchiveReader(instance_dir) as reader:
            partition = next((p for p in reader.partitions() if p.start == hour), None)
        if partition is None:
            return
        header, part, slices = build_from_raw(instance_dir, partition, now=now(), built_by="daemon")
        with SafeDir.open_root(instance_dir, writable=True) as root, root.subdir(partition.date_name) as folder:
            write(folder, header, part, slices)
        log.info("rollup rebuilt from raw rows", hour=format_ts(hour))
    except Exception as exc:  # a background rebuild must never take the daemon down
        log.warning("rollup rebuild failed (run plsnap reindex)", hour=format_ts(hour), error=str(exc))


def utc_now() -> datetime:
    """Now, UTC."""
    return datetime.now(UTC)


# --- plsnap reindex ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reindexed:
    """What ``reindex`` did for one partition: ``built``, ``current`` (a valid rollup exists) or ``skipped``."""

    partition: Partition
    action: str
    reason: str
    bytes: int = 0


def _check_cache_outside(cache: Path, instance_dir: Path) -> None:
    """UsageError when the cache and the archive overlap (``--cache`` must leave the archive untouched: inside
    it, the cache's folders would be taken for an instance or for the archive's own rollups)."""
    archive = Path(os.path.realpath(instance_dir))
    where = Path(os.path.realpath(cache.expanduser()))
    if where == archive or archive in where.parents or where / archive.name == archive:
        raise UsageError(f"--cache {cache} overlaps the archive {instance_dir}: give a directory outside it")


def reindex(
    instance_dir: Path,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    cache: Path | None = None,
    force: bool = False,
    now: datetime | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[Reindexed]:
    """Build the rollups that are missing or stale, for every finished hour in ``[start, end)``: beside the
    partitions, or under ``cache`` (``<cache>/<instance>/<date>/``) for an archive that is read-only. ``warn``
    receives each problem found on the way (damage in the raw rows, unreadable rollups, foreign entries), once.
    An entry that is not a regular file where the rollup goes is left alone (``skipped``)."""
    if cache is not None:
        _check_cache_outside(cache, instance_dir)
    moment = now or utc_now()
    done: list[Reindexed] = []
    found_problems: list[str] = []
    with ArchiveReader(instance_dir) as reader:
        rollups = Rollups(reader, cache=cache, building=True)
        for partition in reader.partitions():
            if (start is not None and partition.end <= start) or (end is not None and partition.start >= end):
                continue
            if moment < partition.end:
                done.append(Reindexed(partition, "skipped", "the hour is not over (a running daemon keeps it)"))
                continue
            found = rollups.get(partition)
            if not force and found is not None and found.header.complete:
                done.append(Reindexed(partition, "current", "a valid rollup exists"))
                continue
            stale = next((why for p, why in rollups.stale if p.path == partition.path), "forced")
            if found is not None and not force:
                stale = "the rollup covers only part of the hour (the daemon stopped in it)"
            with _target(instance_dir, partition, cache) as folder:
                kind = folder.kind(partition.rollup_name)
                if kind not in (None, "file"):
                    where = folder.child_path(partition.rollup_name)
                    done.append(Reindexed(partition, "skipped", f"{KIND_TEXT[kind]} stands at {where}; left alone"))
                    continue
                header, part, slices = build_from_raw(instance_dir, partition, now=moment)
                found_problems.extend(header.problems)
                try:
                    size = write(folder, header, part, slices)
                except (OSError, ArchiveError) as exc:
                    hint = "" if cache else "; for a read-only archive use --cache DIR"
                    raise ArchiveError(f"cannot write the rollup of {partition.path}: {exc}{hint}") from None
            done.append(Reindexed(partition, "built", stale, size))
    if warn is not None:
        for problem in dict.fromkeys([*reader.problems, *found_problems]):
            warn(problem)
    return done


def _target(instance_dir: Path, partition: Partition, cache: Path | None) -> SafeDir:
    """The folder a rebuilt rollup goes to (created in the cache)."""
    try:
        if cache is None:
            with SafeDir.open_root(instance_dir, writable=True) as root:
                return root.subdir(partition.date_name)
        with (
            SafeDir.open_root(cache, writable=True, create=True) as root,
            root.subdir(instance_dir.name, create=True) as instance,
        ):
            return instance.subdir(partition.date_name, create=True)
    except PermissionError as exc:
        raise ArchiveError(
            f"cannot write rollups under {cache or instance_dir} ({exc.strerror}); for a read-only archive use "
            "--cache DIR"
        ) from None


def forget(instance_dir: Path, partitions: Iterable[Partition]) -> list[Path]:
    """Remove the rollups of ``partitions`` (found damaged by ``verify``): one built before the damage answers
    for lines the raw rows lost, and one built after it may hide damage that came later without changing the
    file's size or mtime (bit rot). ``reindex`` builds them again from what is readable, recording the damage.
    Returns the rollups removed; raises ArchiveError or OSError when the archive cannot be written."""
    removed = []
    with SafeDir.open_root(instance_dir, writable=True) as root:
        for partition in partitions:
            if partition.rollup is None:
                continue
            with contextlib.suppress(FileNotFoundError), root.subdir(partition.date_name) as folder:
                if folder.unlink(partition.rollup):
                    removed.append(folder.child_path(partition.rollup))
    return removed
