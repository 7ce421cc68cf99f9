"""Reading snapshots back, in ``ts`` order, from any archive, however damaged.

The reader never trusts a byte: it keeps every complete line that decodes, resumes at the next frame after
damage, validates every value (:mod:`plsnap.model`), and reports what it could not use once per partition in
:attr:`ArchiveReader.problems` (and, structured, in :attr:`ArchiveReader.damage`). Lines are filtered by their
``ts`` prefix before they are parsed, and frames whose index puts them outside the requested range are not
decompressed at all, so reading a few minutes out of an hour is cheap. Symlinks are never followed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plsnap.archive.format import (
    FrameIndex,
    FrameReport,
    Limits,
    PartitionDecoder,
    describe_frame,
    parse_line,
    ts_prefix,
)
from plsnap.archive.fs import SafeDir
from plsnap.archive.layout import Foreign, Listing, Partition, list_partitions, open_instance
from plsnap.errors import ArchiveError
from plsnap.model import Issues, Snapshot, format_ts, parse_ts

DECODED_CACHE = 4


@dataclass(slots=True)
class FileDamage:
    """What was wrong with one partition file: frames that are not ok, junk, caps, unreadable bytes."""

    path: Path
    frames: list[FrameReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lines: int = 0
    open_tail: bool = False

    @property
    def lost(self) -> int | None:
        """Snapshots known to be lost (None when some loss cannot be counted)."""
        total = 0
        for frame in self.frames:
            if frame.status in ("ok", "skipped"):
                continue
            if frame.lost is None:
                return None
            total += frame.lost
        return total

    @property
    def unverified(self) -> int:
        """Snapshots read from damaged frames that could not be checked (no per-line CRCs in their index)."""
        return sum(f.unverified for f in self.frames)


@dataclass(slots=True)
class _Decoded:
    """The complete lines of one partition in a ts range, as (ts prefix, line) pairs, plus what went wrong."""

    lines: list[tuple[bytes, bytes]]
    sorted: bool


class ArchiveReader:
    """Read-only access to one instance directory. ``problems`` collects one-line warnings about damage."""

    def __init__(self, instance_dir: Path, *, limits: Limits | None = None) -> None:
        self.instance_dir = instance_dir
        self.limits = limits or Limits()
        self._problems: list[str] = []
        self._bad_lines = 0
        self.damage: dict[Path, FileDamage] = {}
        self.issues = Issues()
        self._listing: Listing | None = None
        self._decoded: dict[tuple[Path, bytes | None, bytes | None], _Decoded] = {}
        self._dir: SafeDir | None = None

    @classmethod
    def open(cls, data_dir: Path, instance: str, *, limits: Limits | None = None) -> ArchiveReader:
        """A reader for ``<data_dir>/<instance>`` (NoDataError when it does not exist)."""
        directory = open_instance(data_dir, instance, writable=False)
        reader = cls(directory.path, limits=limits)
        reader._dir = directory
        return reader

    def close(self) -> None:
        """Release the directory descriptor."""
        if self._dir is not None:
            self._dir.close()
            self._dir = None

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def instance(self) -> str:
        """The instance name (the directory's name)."""
        return self.instance_dir.name

    def directory(self) -> SafeDir:
        """The instance directory, opened once (read-only: symlinks below it are never followed)."""
        if self._dir is None:
            self._dir = SafeDir.open_root(self.instance_dir, writable=False)
        return self._dir

    def listing(self) -> Listing:
        """Partitions (oldest first), foreign entries and leftover temp files (listed once per reader)."""
        if self._listing is None:
            try:
                self._listing = list_partitions(self.directory())
            except FileNotFoundError:
                self._listing = Listing([], [])
            for item in self._listing.foreign:
                if "partition" in item.reason:
                    self._report(f"{item.path}: {item.reason}; not read")
        return self._listing

    def partitions(self) -> list[Partition]:
        """Every partition, oldest first."""
        return self.listing().partitions

    def foreign(self) -> list[Foreign]:
        """Entries that are not plsnap's, left alone."""
        return self.listing().foreign

    def bounds(self) -> tuple[datetime, datetime] | None:
        """The first and last snapshot instants in the archive, or None when it holds no snapshot."""
        first = last = None
        for part in self.partitions():
            first = self.partition_first(part)
            if first is not None:
                break
        for part in reversed(self.partitions()):
            last = self.partition_last(part)
            if last is not None:
                break
        if first is None or last is None:
            return None
        return first, last

    def partition_first(self, part: Partition) -> datetime | None:
        """The first valid ``ts`` of any line of a partition (None when it has none)."""
        return _valid_ts(sorted(prefix for prefix, _ in self._lines(part, None, None).lines))

    def partition_last(self, part: Partition) -> datetime | None:
        """The last valid ``ts`` of any line of a partition (None when it has none)."""
        return _valid_ts(sorted((prefix for prefix, _ in self._lines(part, None, None).lines), reverse=True))

    def iter_records(self, start: datetime | None = None, end: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Raw snapshot records with ``start <= ts < end`` (either bound may be None), in ``ts`` order."""
        for part in self.partitions():
            if (end is not None and part.start >= end) or (start is not None and part.end <= start):
                continue
            yield from self._records(part, start, end)

    def iter_lines(self, start: datetime | None = None, end: datetime | None = None) -> Iterator[bytes]:
        """The raw lines with ``start <= ts < end``, in ``ts`` order, not parsed (for a caller that looks for a
        few lines by their bytes first)."""
        for part in self.partitions():
            if (end is not None and part.start >= end) or (start is not None and part.end <= start):
                continue
            for prefix, line in self._lines(part, start, end).lines:
                if prefix:
                    yield line

    def iter_records_backwards(self, before: datetime) -> Iterator[dict[str, Any]]:
        """Raw records with ``ts < before``, newest first, reading one partition at a time."""
        for part in reversed(self.partitions()):
            if part.start >= before:
                continue
            yield from reversed(list(self._records(part, None, before)))

    def newest_ts(self) -> datetime | None:
        """The ``ts`` of the newest stored snapshot, reading only the newest non-empty partition."""
        for record in self.iter_records_backwards(datetime.max.replace(tzinfo=UTC)):
            with contextlib.suppress(ValueError, TypeError):
                return parse_ts(record["ts"])
        return None

    def iter_snapshots(
        self, start: datetime | None = None, end: datetime | None = None, *, include_idle: bool = True
    ) -> Iterator[Snapshot]:
        """Snapshots with ``start <= ts < end`` in ``ts`` order; malformed records are reported and skipped."""
        for record in self.iter_records(start, end):
            snapshot = self.to_snapshot(record, include_idle=include_idle)
            if snapshot is not None:
                yield snapshot

    def to_snapshot(self, record: dict[str, Any], *, include_idle: bool = True) -> Snapshot | None:
        """Convert a record, counting (not raising) what is malformed."""
        try:
            return Snapshot.from_record(record, include_idle=include_idle, issues=self.issues)
        except (ValueError, TypeError, OverflowError):
            self._bad_lines += 1
            return None

    @property
    def problems(self) -> list[str]:
        """One-line warnings: damage per partition, then what validation dropped."""
        found = list(self._problems)
        if self.issues:
            found.append(f"{self.instance_dir}: {self.issues.describe()} while reading")
        if self._bad_lines:
            found.append(f"{self.instance_dir}: skipped {self._bad_lines} line(s) with a bad ts or structure")
        return found

    def report(self, problem: str) -> None:
        """Add a one-line warning (once)."""
        if problem not in self._problems:
            self._problems.append(problem)

    _report = report

    def _records(self, part: Partition, start: datetime | None, end: datetime | None) -> Iterator[dict[str, Any]]:
        decoded = self._lines(part, start, end)
        bad = 0
        for prefix, line in decoded.lines:
            record = parse_line(line) if prefix else None
            if record is None:
                bad += 1
                continue
            yield record
        if bad:
            self._report(f"{part.path}: skipped {bad} line(s) that are not snapshot objects")

    def _lines(self, part: Partition, start: datetime | None, end: datetime | None) -> _Decoded:
        low = format_ts(start).encode() if start is not None else None
        high = format_ts(end).encode() if end is not None else None
        key = (part.path, low, high)
        cached = self._decoded.get(key)
        if cached is not None:
            return cached
        wide = next(
            (
                d
                for (path, lo, hi), d in self._decoded.items()
                if path == part.path
                and (lo is None or (low is not None and lo <= low))
                and (hi is None or (high is not None and hi >= high))
            ),
            None,
        )
        if wide is not None:
            lines = [(p, line) for p, line in wide.lines if _inside(p, low, high)]
            decoded = _Decoded(lines, True)
        else:
            decoded = self._decode(part, low, high)
        self._decoded[key] = decoded
        while len(self._decoded) > DECODED_CACHE:
            self._decoded.pop(next(iter(self._decoded)))
        return decoded

    def _decode(self, part: Partition, low: bytes | None, high: bytes | None) -> _Decoded:
        lines: list[tuple[bytes, bytes]] = []
        misplaced = 0
        newest = bool(self.partitions()) and part is self.partitions()[-1]
        hour = (format_ts(part.start).encode(), format_ts(part.end).encode())

        def want(index: FrameIndex) -> bool:
            first, last = index.min_ts.encode(), index.max_ts.encode()
            plausible = hour[0] <= first <= last < hour[1] and len(first) == len(last) == len(hour[0])
            if not (index.checked and plausible):
                return True  # an unchecked index, or a range no writer records, is no reason to skip
            return not ((high is not None and first >= high) or (low is not None and last < low))

        try:
            folder = self.directory().subdir(part.date_name)
        except (FileNotFoundError, ArchiveError) as exc:
            self._report(f"{part.path.parent}: unreadable ({exc})")
            return _Decoded(lines, True)
        with folder:
            for position, name in enumerate(part.names):
                path = folder.child_path(name)
                try:
                    data = folder.read_bytes(name)
                except (OSError, ArchiveError) as exc:
                    self._report(f"{path}: unreadable ({getattr(exc, 'strerror', None) or exc})")
                    continue
                ranged = low is not None or high is not None
                decoder = PartitionDecoder(data, self.limits, want if ranged else None, seek_by_index=ranged)
                for chunk in decoder.chunks():
                    misplaced += _collect(chunk, low, high, lines, hour)
                live = newest and position == 0 and part.has_main
                self._note_damage(path, decoder, live=live)
        if misplaced:
            self._report(f"{part.path}: skipped {misplaced} line(s) whose ts is outside the partition's hour")
        in_order = all(lines[i][0] <= lines[i + 1][0] for i in range(len(lines) - 1))
        if not in_order:
            lines.sort(key=lambda item: item[0])
        return _Decoded(lines, True)

    def _note_damage(self, path: Path, decoder: PartitionDecoder, *, live: bool) -> None:
        problems = list(decoder.problems)
        frames = decoder.frames
        open_tail = bool(frames) and frames[-1].status == "open"
        if open_tail and not live:
            problems.append(describe_frame(frames[-1]))
        elif open_tail and frames[-1].torn_bytes:
            self._report(f"{path}: dropped a torn last snapshot ({frames[-1].torn_bytes} bytes; being written?)")
        if decoder.unclosed and not open_tail and not live:
            last = next((_last_ts(f) for f in reversed(frames) if _last_ts(f)), None)
            after = f" after {last.decode('ascii', 'replace')}" if last else ""
            problems.append(f"not closed by its writer: the writer crashed, or the file was cut{after}")
        if not problems:
            return
        damage = self.damage.setdefault(path, FileDamage(path))
        damage.frames = [f for f in frames if f.status not in ("ok", "skipped")]
        damage.problems = problems
        damage.open_tail = open_tail
        for problem in problems:
            self._report(f"{path}: {problem}")


def _last_ts(frame: FrameReport) -> bytes | None:
    """The newest ``ts`` of a frame: as read, or as its index says when it was skipped (not decoded)."""
    if frame.last_ts is None and frame.status == "skipped" and frame.index is not None and frame.index.max_ts:
        return frame.index.max_ts.encode()
    return frame.last_ts


def _collect(
    chunk: bytes, low: bytes | None, high: bytes | None, out: list[tuple[bytes, bytes]], hour: tuple[bytes, bytes]
) -> int:
    """Append the (ts prefix, line) pairs of ``chunk`` that fall in ``[low, high)``; lines without a plsnap
    ``ts`` prefix are kept (and judged when parsed). Returns how many lines have a ts outside ``hour`` (the
    partition's own hour: the writer never puts a line anywhere else); those are skipped."""
    find = chunk.find
    pos, size = 0, len(chunk)
    first, after = hour
    misplaced = 0
    while pos < size:
        end = find(b"\n", pos)
        if end < 0:
            end = size
        if end > pos:
            prefix = ts_prefix(chunk[pos : pos + 48])
            if prefix is None:
                line = chunk[pos:end]
                prefix = _slow_prefix(line)
                if prefix is not None and not first <= prefix < after:
                    misplaced += 1
                elif prefix is None or _inside(prefix, low, high):
                    out.append((prefix or b"", line))
            elif not first <= prefix < after:
                misplaced += 1
            elif _inside(prefix, low, high):
                out.append((prefix, chunk[pos:end]))
        pos = end + 1
    return misplaced


def _slow_prefix(line: bytes) -> bytes | None:
    """The normalised ts of a line not written by plsnap's encoder (or None when it has no valid ts)."""
    record = parse_line(line)
    ts = record.get("ts") if record is not None else None
    if not isinstance(ts, str):
        return None
    try:
        return format_ts(parse_ts(ts)).encode()
    except ValueError:
        return None


def _valid_ts(prefixes: list[bytes]) -> datetime | None:
    """The first prefix that is a valid instant."""
    for prefix in prefixes:
        if prefix:
            with contextlib.suppress(ValueError):
                return parse_ts(prefix.decode("ascii", "replace"))
    return None


def _inside(prefix: bytes, low: bytes | None, high: bytes | None) -> bool:
    return not ((low is not None and prefix < low) or (high is not None and prefix >= high))
