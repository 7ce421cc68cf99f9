"""Reading snapshots back, in ``ts`` order, from any archive, however damaged.

The reader never trusts a partition's tail: it keeps every complete line that decodes and reports the rest
once per partition in :attr:`ArchiveReader.problems`. Lines are filtered by their ``ts`` prefix before they are
parsed, so reading a few minutes out of an hour costs one decompression and little JSON work.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from plsnap.archive.format import Decoded, decode_partition, parse_line
from plsnap.archive.layout import Partition, list_partitions
from plsnap.model import Snapshot, format_ts, parse_ts

DECODED_CACHE = 3


class ArchiveReader:
    """Read-only access to one instance directory. ``problems`` collects one-line warnings about damage."""

    def __init__(self, instance_dir: Path) -> None:
        self.instance_dir = instance_dir
        self.problems: list[str] = []
        self._partitions: list[Partition] | None = None
        self._foreign: list[Path] = []
        self._decoded: dict[Path, Decoded] = {}

    @property
    def instance(self) -> str:
        """The instance name (the directory's name)."""
        return self.instance_dir.name

    def partitions(self) -> list[Partition]:
        """Every partition, oldest first (listed once per reader)."""
        if self._partitions is None:
            self._partitions, self._foreign = list_partitions(self.instance_dir)
        return self._partitions

    def foreign_files(self) -> list[Path]:
        """Paths in the instance directory that plsnap did not write."""
        self.partitions()
        return self._foreign

    def bounds(self) -> tuple[datetime, datetime] | None:
        """The first and last snapshot instants in the archive, or None when it holds no snapshot."""
        parts = self.partitions()
        first = next((r for p in parts for r in self._records(p, None, None)), None)
        last = None
        for part in reversed(parts):
            records = list(self._records(part, None, None))
            if records:
                last = records[-1]
                break
        if first is None or last is None:
            return None
        return parse_ts(first["ts"]), parse_ts(last["ts"])

    def iter_records(self, start: datetime | None = None, end: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Raw snapshot records with ``start <= ts < end`` (either bound may be None), in ``ts`` order."""
        for part in self.partitions():
            if (end is not None and part.start >= end) or (start is not None and part.end <= start):
                continue
            yield from self._records(part, start, end)

    def iter_records_backwards(self, before: datetime) -> Iterator[dict[str, Any]]:
        """Raw records with ``ts < before``, newest first, reading one partition at a time."""
        for part in reversed(self.partitions()):
            if part.start >= before:
                continue
            yield from reversed(list(self._records(part, None, before)))

    def newest_ts(self) -> datetime | None:
        """The ``ts`` of the newest stored snapshot, reading only the newest non-empty partition."""
        for record in self.iter_records_backwards(datetime.max.replace(tzinfo=UTC)):
            try:
                return parse_ts(record["ts"])
            except (ValueError, TypeError):
                continue
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
        """Convert a record, reporting (not raising) when it is malformed."""
        try:
            return Snapshot.from_record(record, include_idle=include_idle)
        except (ValueError, TypeError) as exc:
            self._report(f"{self.instance_dir}: skipped a malformed snapshot ({exc})")
            return None

    def _decode(self, path: Path, data: bytes) -> Decoded:
        """Decode a partition, remembering the last few (replay reads neighbours of one instant repeatedly)."""
        cached = self._decoded.get(path)
        if cached is not None:
            return cached
        decoded = decode_partition(data)
        self._decoded[path] = decoded
        while len(self._decoded) > DECODED_CACHE:
            self._decoded.pop(next(iter(self._decoded)))
        return decoded

    def _report(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def _records(self, part: Partition, start: datetime | None, end: datetime | None) -> Iterator[dict[str, Any]]:
        try:
            data = b"" if part.path in self._decoded else part.path.read_bytes()
        except OSError as exc:
            self._report(f"{part.path}: unreadable ({exc.strerror})")
            return
        decoded = self._decode(part.path, data)
        for problem in decoded.problems:
            self._report(f"{part.path}: {problem}")
        if decoded.torn_bytes:
            self._report(f"{part.path}: dropped a torn last snapshot ({decoded.torn_bytes} bytes)")
        low = format_ts(start).encode() if start is not None else None
        high = format_ts(end).encode() if end is not None else None
        keyed: list[tuple[str, dict[str, Any]]] = []
        bad = 0
        for prefix, line in decoded.iter_lines(low, high):
            record = parse_line(line)
            ts = record.get("ts") if record is not None else None
            if record is None or not isinstance(ts, str):
                bad += 1
                continue
            if prefix is None:
                try:
                    ts = format_ts(parse_ts(ts))
                except ValueError:
                    bad += 1
                    continue
                if _outside(ts.encode(), low, high):
                    continue
            keyed.append((ts, record))
        if bad:
            self._report(f"{part.path}: skipped {bad} undecodable line(s)")
        if any(keyed[i][0] > keyed[i + 1][0] for i in range(len(keyed) - 1)):
            keyed.sort(key=lambda item: item[0])
        for _, record in keyed:
            yield record


def _outside(key: bytes, low: bytes | None, high: bytes | None) -> bool:
    return (low is not None and key < low) or (high is not None and key >= high)


def window_around(moment: datetime, span: timedelta) -> tuple[datetime, datetime]:
    """The half-open interval ``[moment - span, moment + span)``."""
    return moment - span, moment + span
