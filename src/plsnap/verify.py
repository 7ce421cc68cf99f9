"""Verifying an archive: every frame of every partition decoded and checked, damage and losses counted.

Used by ``plsnap verify [FROM [TO]]`` and ``plsnap check``. A partition is *damaged* when a frame does not
decode, its checksum fails, junk sits between frames, a damaged file was set aside beside it, or it ends inside
a frame although it is not the partition being written (a crash or a truncation). Lost snapshots are counted
exactly when the frame index says how many a frame held, and estimated from the sampling interval otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from plsnap.archive.format import FrameReport, Limits, PartitionDecoder, describe_frame, parse_line
from plsnap.archive.layout import Foreign, Partition
from plsnap.archive.reader import ArchiveReader
from plsnap.errors import ArchiveError
from plsnap.model import finite, format_ts, parse_ts


@dataclass(slots=True)
class PartitionCheck:
    """The verdict on one partition (all its files)."""

    partition: Partition
    snapshots: int = 0
    problems: list[str] = field(default_factory=list)
    lost: int = 0
    lost_unknown: bool = False
    lost_estimate: int = 0
    unverified: int = 0
    open_tail: bool = False

    @property
    def status(self) -> str:
        """``ok``, ``open`` (being written) or ``damaged``."""
        if self.problems:
            return "damaged"
        return "open" if self.open_tail else "ok"

    @property
    def lost_text(self) -> str:
        """Lost snapshots as a phrase: exact, estimated, or unknown."""
        if self.lost_unknown:
            if self.lost_estimate:
                return f"{self.lost} counted + about {self.lost_estimate} estimated"
            return f"{self.lost} counted, more unknown" if self.lost else "unknown"
        return str(self.lost)


@dataclass(slots=True)
class VerifyReport:
    """Every partition checked, plus foreign entries."""

    partitions: list[PartitionCheck]
    foreign: list[Foreign]

    @property
    def damaged(self) -> list[PartitionCheck]:
        """The partitions that are not ok (open ones are fine)."""
        return [p for p in self.partitions if p.status == "damaged"]

    @property
    def unreadable(self) -> list[Foreign]:
        """Entries where history should be that cannot be read (a symlink, directory or FIFO in a partition's
        or date folder's place): the hours behind them are missing from every answer."""
        return [f for f in self.foreign if f.unreadable]


def verify(reader: ArchiveReader, start: datetime | None = None, end: datetime | None = None) -> VerifyReport:
    """Decode and check every partition overlapping ``[start, end)`` (all of them by default)."""
    partitions = reader.partitions()
    checks = []
    for position, part in enumerate(partitions):
        if (end is not None and part.start >= end) or (start is not None and part.end <= start):
            continue
        following = partitions[position + 1] if position + 1 < len(partitions) else None
        checks.append(_check(reader, part, newest=following is None, following=following))
    return VerifyReport(checks, reader.foreign())


def _check(reader: ArchiveReader, part: Partition, *, newest: bool, following: Partition | None) -> PartitionCheck:
    result = PartitionCheck(part)
    limits = Limits(reader.limits.max_line_bytes, reader.limits.max_partition_bytes)
    try:
        folder = reader.directory().subdir(part.date_name)
    except (FileNotFoundError, ArchiveError) as exc:
        result.problems.append(f"{part.path.parent}: unreadable ({exc})")
        return result
    with folder:
        for position, name in enumerate(part.names):
            path = folder.child_path(name)
            if position > 0 or not part.has_main:
                result.problems.append(f"{path}: a damaged file set aside by the writer")
            try:
                data = folder.read_bytes(name)
            except (OSError, ArchiveError) as exc:
                result.problems.append(f"{path}: unreadable ({getattr(exc, 'strerror', None) or exc})")
                result.lost_unknown = True
                continue
            decoder = PartitionDecoder(data, limits)
            interval = None
            for chunk in decoder.chunks():
                if interval is None:
                    interval = _interval(chunk)
            live = newest and position == 0 and part.has_main
            _misplaced(result, path, decoder, part)
            _judge(result, path, decoder, interval, live=live, partition_end=part.end, following=following)
    return result


def _misplaced(result: PartitionCheck, path: object, decoder: PartitionDecoder, part: Partition) -> None:
    """Note each frame holding snapshots whose ``ts`` is outside the partition's hour (readers skip them)."""
    low, high = format_ts(part.start).encode(), format_ts(part.end).encode()
    for frame in decoder.frames:
        if frame.min_ts is not None and frame.max_ts is not None and (frame.min_ts < low or frame.max_ts >= high):
            result.problems.append(
                f"{path}: frame at byte {frame.offset} holds snapshots whose ts is outside the partition's hour "
                f"({frame.min_ts.decode('ascii', 'replace')} .. {frame.max_ts.decode('ascii', 'replace')}); "
                "readers skip them"
            )


def _judge(
    result: PartitionCheck,
    path: object,
    decoder: PartitionDecoder,
    interval: float | None,
    *,
    live: bool,
    partition_end: datetime,
    following: Partition | None,
) -> None:
    frames = decoder.frames
    if decoder.unclosed and not live and not (frames and frames[-1].status == "open"):
        last = next((f.last_ts for f in reversed(frames) if f.last_ts), None)
        result.problems.append(
            f"{path}: not closed by its writer: the writer crashed, or the file was cut"
            + (f" after {last.decode('ascii', 'replace')}" if last else "")
        )
        result.lost_unknown = True
        if last is not None:
            following_ts = following.start if following else partition_end
            result.lost_estimate += _estimate(frames[-1], following_ts, interval)
    result.snapshots += sum(f.lines for f in frames if f.status != "skipped")
    result.unverified += sum(f.unverified for f in frames)
    for problem in decoder.problems:
        result.problems.append(f"{path}: {problem}")
    for position, frame in enumerate(frames):
        if frame.status in ("ok", "skipped") or (frame.status == "checksum" and frame.lost == 0):
            continue
        is_last = position == len(frames) - 1
        if frame.status == "open" and is_last and live:
            result.open_tail = True
            continue
        if frame.status == "open" and is_last:
            result.problems.append(f"{path}: {describe_frame(frame)}")
        if frame.lost is not None:
            result.lost += frame.lost
            continue
        result.lost_unknown = True
        following_ts = _next_ts(frames, position) or (following.start if following else partition_end)
        result.lost_estimate += _estimate(frame, following_ts, interval)


def _next_ts(frames: list[FrameReport], position: int) -> datetime | None:
    for frame in frames[position + 1 :]:
        if frame.first_ts:
            try:
                return parse_ts(frame.first_ts.decode())
            except ValueError:
                return None
    return None


def _estimate(frame: FrameReport, following: datetime, interval: float | None) -> int:
    """Snapshots that fit between the frame's last readable one and the next one seen, at ``interval``."""
    if not frame.last_ts or not interval:
        return 0
    try:
        last = parse_ts(frame.last_ts.decode())
    except ValueError:
        return 0
    return max(0, math.ceil((following - last).total_seconds() / interval) - 1)


def _interval(chunk: bytes) -> float | None:
    record = parse_line(chunk.split(b"\n", 1)[0])
    return finite(record.get("interval_s"), 0.001, 86400.0) if record else None
