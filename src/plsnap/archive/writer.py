"""Appending snapshots to hourly partitions, crash-safely, never rewriting recorded data except to compact an
hour it has just closed, and then only once the new file is proven to hold exactly the same (:mod:`.compact`).

One streaming zstd frame is open at a time. After every snapshot a block is flushed, written and (by default)
fsynced, so a ``kill -9`` loses at most the snapshot being written. The frame is closed every
``frame_seconds`` of wall-clock time (5 minutes by default; aligned slots), on rotation to the next hour and on
:meth:`ArchiveWriter.close`; each closed frame is followed by its frame index (see :mod:`.format`).

Exclusion is an ``flock`` on the instance directory itself, so removing the note file ``.plsnap.lock`` cannot
let a second writer in. The note names the partition with an open frame; the next writer uses it to finish a
crash-left partition.

Recovery rules (docs/archive-format.md, "Faults"):

- A partition whose only problem is an unterminated last frame (a crash) is closed *in place*: the torn partial
  block, which holds only part of the snapshot being written, is cut, and the frame is ended with an empty last
  block and its checksum, exactly as zstd would have ended it. Nothing else is rewritten; the result is verified
  before the writer goes on.
- A partition with any other damage is never rewritten. When it is the hour being written, it is set aside as
  ``HH.jsonl.zst.damaged`` (a rename) and a fresh file starts; readers read both.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import zstandard

from plsnap.archive.compact import NO_GAIN, compact_partition
from plsnap.archive.format import (
    EMPTY_LAST_BLOCK,
    MAX_FRAME_LINES,
    FrameIndex,
    OpenFrame,
    closing_mark,
    find_open_frame,
    frame_checksum,
    line_crc,
    ts_range,
)
from plsnap.archive.fs import SafeDir, archive_error, describe_os_error, write_all
from plsnap.archive.layout import (
    DATE_DIR_RE,
    LOCK_NAME,
    PARTITION_RE,
    TEMP_RE,
    damaged_name,
    open_instance,
    partition_names,
)
from plsnap.errors import ArchiveError
from plsnap.model import format_ts

DEFAULT_FRAME_SECONDS = 300.0
MAX_NOTE_BYTES = 4096


@dataclass(slots=True)
class _Frame:
    offset: int
    lines: int = 0
    raw_bytes: int = 0
    min_ts: str = ""
    max_ts: str = ""
    crcs: list[int] = field(default_factory=list)


class ArchiveWriter:
    """Append-only writer for ``<data_dir>/<instance>`` (the data directory may be a symlink, nothing below it
    may); holds an exclusive lock on the instance directory while open.

    ``level`` is the zstd level; ``fsync`` makes every append durable before it returns; ``frame_seconds`` is
    how often a frame is closed (0 keeps one frame per partition); ``compact_level`` (0 = never) is the level the
    partition just closed is recompressed at when the writer moves on to the next hour (:mod:`.compact`; not at
    :meth:`close`: an hour the daemon stops in is left as written). Not thread-safe: the daemon calls it from
    one job at a time. ``notes`` collects (event, detail) pairs about repairs, compaction and damaged files for
    the caller to log: ``partition repaired``, ``partition closed``, ``damaged partition set aside``, ``damaged
    partition left alone``, ``lock note not written``, ``partition compacted``, ``partition kept as written``
    (no gain), ``partition not compacted`` (why).
    """

    def __init__(
        self,
        instance_dir: Path,
        *,
        level: int = 3,
        fsync: bool = True,
        frame_seconds: float = DEFAULT_FRAME_SECONDS,
        compact_level: int = 0,
    ) -> None:
        self.level = level
        self.compact_level = compact_level
        self.fsync = fsync
        self.frame_seconds = frame_seconds
        self.notes: list[tuple[str, str]] = []
        self._compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._dir = open_instance(instance_dir.parent, instance_dir.name, writable=True)
        self.instance_dir = self._dir.path
        self._date: SafeDir | None = None
        self._name: str | None = None
        self._fd: int | None = None
        self._cobj: zstandard.ZstdCompressionObj | None = None
        self._frame: _Frame | None = None
        self._slot: int | None = None
        #: (date folder, file name, size) after each frame this writer closed, for the caller to take.
        self.closed_frames: list[tuple[str, str, int]] = []
        #: How many times a partition file was opened, and whether the last one opened was new (empty).
        self.opened = 0
        self.fresh = False
        try:
            self._lock()
        except BaseException:
            self._dir.close()
            raise
        self._noted = self._previous_open_partition()
        self._write_note(None)
        self._remove_temp_files(self._dir)

    @property
    def directory(self) -> SafeDir:
        """The instance directory, open (for retention and the heartbeat, which must not follow symlinks)."""
        return self._dir

    @property
    def current_partition(self) -> Path | None:
        """The partition being written (its frame may be open), if any."""
        if self._date is None or self._name is None:
            return None
        return self._date.path / self._name

    def _lock(self) -> None:
        try:
            fcntl.flock(self._dir.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_note().split("\n", 1)[0].strip() or "unknown"
            raise ArchiveError(
                f"archive {self.instance_dir} is locked by another plsnap writer (pid {holder[:64]})"
            ) from None
        try:
            self._note_fd: int | None = self._dir.open_file(LOCK_NAME, os.O_RDWR | os.O_CREAT)
        except FileNotFoundError:
            self._note_fd = None
        except ArchiveError:
            self.notes.append(("lock note not written", f"cannot use {self.instance_dir / LOCK_NAME}"))
            self._note_fd = None

    def _read_note(self) -> str:
        try:
            return self._dir.read_bytes(LOCK_NAME, MAX_NOTE_BYTES).decode("utf-8", "replace")
        except (OSError, ArchiveError):
            return ""

    def _previous_open_partition(self) -> tuple[str, str] | None:
        lines = self._read_note().splitlines()
        if len(lines) < 2 or "/" not in lines[1]:
            return None
        date_name, _, file_name = lines[1].strip().rpartition("/")
        if not DATE_DIR_RE.match(date_name) or not PARTITION_RE.match(file_name):
            return None
        return date_name, file_name

    def _write_note(self, partition: tuple[str, str] | None) -> None:
        """Record our pid and the partition with an open frame, so a crash leaves a note for the next writer."""
        if self._note_fd is None:
            return
        where = f"{partition[0]}/{partition[1]}" if partition else ""
        note = f"{os.getpid()}\n{where}\n".encode()
        try:
            os.ftruncate(self._note_fd, 0)
            os.pwrite(self._note_fd, note, 0)
            if partition is not None and self.fsync:
                os.fsync(self._note_fd)
        except OSError as exc:
            self.notes.append(("lock note not written", f"{self.instance_dir / LOCK_NAME}: {describe_os_error(exc)}"))

    def recover(self) -> None:
        """Deal with the partition a previous writer left open (see the module docstring); idempotent.

        Called by the daemon after retention has made room; raises ArchiveError (DiskFullError) when the repair
        cannot be written, in which case it is tried again before the next append.
        """
        if self._noted is None:
            return
        date_name, file_name = self._noted
        if (date_name, file_name) == (self._date_name(), self._name):
            self._noted = None
            return
        try:
            folder = self._dir.subdir(date_name)
        except FileNotFoundError:
            self._noted = None
            return
        with folder:
            self._repair(folder, file_name, set_aside=False)
        self._noted = None

    def _date_name(self) -> str | None:
        return None if self._date is None else self._date.path.name

    def append(self, line: bytes, ts: datetime) -> int:
        """Append one encoded snapshot line captured at ``ts``; return the compressed bytes written."""
        if self._noted is not None:
            self.recover()
        date_name, file_name = partition_names(ts)
        slot = int(ts.timestamp() // self.frame_seconds) if self.frame_seconds > 0 else 0
        if (date_name, file_name) != (self._date_name(), self._name):
            previous = (self._date_name(), self._name)
            self._close_partition()
            if previous[0] and previous[1] and self.compact_level:
                self._compact(previous[0], previous[1])
            self._open(date_name, file_name)
        elif self._cobj is not None and (slot != self._slot or self._frame_full()):
            self._finish_frame(closed=False)
        assert self._fd is not None
        if self._cobj is None:
            self._start_frame()
        assert self._cobj is not None
        assert self._frame is not None
        offset = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            block = self._cobj.compress(line) + self._cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            write_all(self._fd, block)
            if self.fsync:
                os.fsync(self._fd)
        except OSError as exc:
            path = self.current_partition
            self._abandon(offset)
            raise archive_error(f"cannot write {path}", exc) from None
        self._slot = slot
        frame = self._frame
        stamp = format_ts(ts)
        frame.lines += 1
        frame.raw_bytes += len(line)
        frame.crcs.append(line_crc(line))
        frame.min_ts = min(frame.min_ts or stamp, stamp)
        frame.max_ts = max(frame.max_ts, stamp)
        return len(block)

    def _open(self, date_name: str, file_name: str) -> None:
        try:
            folder = self._dir.subdir(date_name, create=True)
        except OSError as exc:
            raise archive_error(f"cannot create {self.instance_dir / date_name}", exc) from None
        try:
            self._remove_temp_files(folder)
            self._repair(folder, file_name, set_aside=True)
            fd = folder.open_file(file_name, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        except OSError as exc:
            folder.close()
            raise archive_error(f"cannot open {folder.child_path(file_name)}", exc) from None
        except BaseException:
            folder.close()
            raise
        fresh = os.fstat(fd).st_size == 0
        if fresh:
            folder.fsync()
        self._date, self._name, self._fd = folder, file_name, fd
        self.opened += 1
        self.fresh = fresh
        self._write_note((date_name, file_name))

    def _frame_full(self) -> bool:
        return self._frame is not None and self._frame.lines >= MAX_FRAME_LINES

    def _start_frame(self) -> None:
        assert self._fd is not None
        self._cobj = self._compressor.compressobj()
        self._frame = _Frame(offset=os.lseek(self._fd, 0, os.SEEK_END))

    def _repair(self, folder: SafeDir, file_name: str, *, set_aside: bool) -> None:
        """Close a crash-left partition in place, or set a damaged one aside (only when ``set_aside``)."""
        try:
            fd = folder.open_file(file_name, os.O_RDWR)
        except FileNotFoundError:
            return
        path = folder.child_path(file_name)
        try:
            data = _read_all(fd)
            verdict = find_open_frame(data)
            if verdict is None:
                mark = None if set_aside else closing_mark(data)
                if mark is not None:
                    os.pwrite(fd, mark, len(data))
                    os.fsync(fd)
                    self.notes.append(("partition closed", f"{path}: its writer had stopped between two frames"))
                return
            if isinstance(verdict, OpenFrame):
                self._close_in_place(fd, path, data, verdict)
                return
        finally:
            os.close(fd)
        if not set_aside:
            self.notes.append(("damaged partition left alone", f"{path} is damaged and was left as it is ({verdict})"))
            return
        taken = {entry.name for entry in folder.entries()}
        aside = damaged_name(file_name, taken)
        try:
            folder.rename(file_name, aside)
        except OSError as exc:
            raise archive_error(f"cannot set {path} aside", exc) from None
        self.notes.append(
            ("damaged partition set aside", f"{path} ({verdict}): renamed to {aside}, untouched; a new file started")
        )

    def _close_in_place(self, fd: int, path: Path, data: bytes, frame: OpenFrame) -> None:
        """End an unterminated last frame: cut the torn partial block, write an empty last block + checksum."""
        ending = b""
        if frame.content:
            ending = EMPTY_LAST_BLOCK + (frame_checksum(frame.content) if frame.checksum else b"")
            low, high = ts_range(frame.content)
            ending += FrameIndex(
                offset=frame.offset,
                length=frame.cut_at + len(ending) - frame.offset,
                lines=frame.lines,
                raw_bytes=len(frame.content),
                min_ts=low,
                max_ts=high,
                closed=True,
                crcs=tuple(line_crc(line + b"\n") for line in frame.content.split(b"\n")[:-1]),
            ).encode()
        torn = len(data) - frame.cut_at
        try:
            os.ftruncate(fd, frame.cut_at)
            os.pwrite(fd, ending, frame.cut_at)
            os.fsync(fd)
        except OSError as exc:
            raise archive_error(f"cannot repair {path}", exc) from None
        if find_open_frame(_read_all(fd)) is not None:
            raise ArchiveError(f"repair of {path} did not verify; it is left for `plsnap verify` to report")
        self.notes.append(
            (
                "partition repaired",
                f"{path}: closed the frame left open by a crash in place, keeping all {frame.lines} complete "
                f"snapshot(s) of it; cut {torn} torn byte(s) of the snapshot that was being written",
            )
        )

    def _finish_frame(self, *, closed: bool) -> None:
        """Close the open frame and write its index; on failure the frame is left open for the next repair."""
        fd, cobj, frame = self._fd, self._cobj, self._frame
        self._cobj, self._frame = None, None
        if fd is None or cobj is None or frame is None:
            return
        offset = os.lseek(fd, 0, os.SEEK_END)
        try:
            tail = cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
            index = FrameIndex(
                offset=frame.offset,
                length=offset + len(tail) - frame.offset,
                lines=frame.lines,
                raw_bytes=frame.raw_bytes,
                min_ts=frame.min_ts,
                max_ts=frame.max_ts,
                closed=closed,
                crcs=tuple(frame.crcs),
            )
            ending = tail + index.encode()
            write_all(fd, ending)
            if self.fsync or closed:
                os.fsync(fd)
        except OSError as exc:
            path = self.current_partition
            self._abandon(offset)
            raise archive_error(f"cannot close a frame of {path}", exc) from None
        date_name, file_name = self._date_name(), self._name
        if date_name and file_name:
            self.closed_frames.append((date_name, file_name, offset + len(ending)))

    def _close_partition(self) -> None:
        try:
            if self._cobj is not None:
                self._finish_frame(closed=True)
        finally:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
            if self._date is not None:
                self._date.close()
            self._fd, self._date, self._name, self._slot = None, None, None, None

    def _compact(self, date_name: str, file_name: str) -> None:
        """Compact the partition just closed (:mod:`.compact`); the frames this writer closed in it are then
        reported at the new size. Never raises: a partition that cannot be compacted stays as written."""
        path = self.instance_dir / date_name / file_name
        try:
            with self._dir.subdir(date_name) as folder:
                done = compact_partition(folder, file_name, level=self.compact_level)
        except OSError as exc:
            self.notes.append(("partition not compacted", f"{path}: {describe_os_error(exc)}"))
            return
        except ArchiveError as exc:
            self.notes.append(("partition not compacted", str(exc)))
            return
        except Exception as exc:  # e.g. MemoryError: compaction is an optimisation and must never stop a capture
            self.notes.append(("partition not compacted", f"{path}: {type(exc).__name__}"))
            return
        if done.skipped is not None:
            event = "partition kept as written" if done.skipped == NO_GAIN else "partition not compacted"
            self.notes.append((event, f"{path}: {done.skipped}"))
            return
        self.notes.append(("partition compacted", f"{path}: {done.before} -> {done.after} bytes, {done.lines} lines"))
        self.closed_frames = [
            (d, f, done.after if (d, f) == (date_name, file_name) else size) for d, f, size in self.closed_frames
        ]

    def _abandon(self, offset: int) -> None:
        """After a failed write: cut the partial block and drop the frame; the next append repairs the file."""
        fd = self._fd
        name = (self._date_name(), self._name)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, offset)
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._date is not None:
            self._date.close()
        self._fd, self._cobj, self._frame, self._date, self._name, self._slot = None, None, None, None, None, None
        if name[0] and name[1]:
            self._noted = (name[0], name[1])

    @staticmethod
    def _remove_temp_files(folder: SafeDir) -> None:
        for entry in folder.entries():
            if entry.kind == "file" and TEMP_RE.match(entry.name):
                folder.unlink(entry.name)

    def close_partition(self) -> None:
        """Close the open frame (fsynced) and the partition file, keeping the lock (shutdown, before
        :meth:`close`: what the caller writes after the last frame still goes into a locked archive)."""
        self._close_partition()

    def close(self) -> None:
        """Close the open frame (fsynced), clear the note and release the lock; safe to call twice."""
        try:
            self._close_partition()
            if self._noted is None:
                self._write_note(None)
        finally:
            if self._note_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._note_fd)
                self._note_fd = None
            self._dir.close()

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_all(fd: int) -> bytes:
    """The whole file behind ``fd``, read with pread (the descriptor's offset is left alone)."""
    size = os.fstat(fd).st_size
    parts = []
    offset = 0
    while offset < size:
        part = os.pread(fd, min(size - offset, 2**24), offset)
        if not part:
            break
        parts.append(part)
        offset += len(part)
    return b"".join(parts)
