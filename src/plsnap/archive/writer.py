"""Appending snapshots to hourly partitions, crash-safely.

One streaming zstd frame stays open per partition while the writer runs; after every snapshot a block is flushed,
written to the OS and (by default) fsynced, so a ``kill -9`` loses at most the snapshot being written. The frame
is closed on rotation and on :meth:`ArchiveWriter.close`. Before appending to a partition that is not cleanly
terminated (a crash, a full disk), the writer rewrites its decodable complete lines as one closed frame via a
temp file, fsync and rename, because a new frame after an unterminated one corrupts the file for every reader.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from datetime import datetime
from pathlib import Path

import zstandard

from plsnap.archive.format import decode_partition
from plsnap.archive.layout import LOCK_NAME, REPAIR_SUFFIX, list_partitions, partition_path
from plsnap.errors import ArchiveError, DiskFullError

DIR_MODE = 0o750
FILE_MODE = 0o640


class ArchiveWriter:
    """Append-only writer for one instance directory; holds an exclusive lock while open.

    ``level`` is the zstd level; ``fsync`` makes every append durable before it returns. Not thread-safe: the
    daemon calls it from one job at a time.
    """

    def __init__(self, instance_dir: Path, *, level: int = 3, fsync: bool = True) -> None:
        self.instance_dir = instance_dir
        self.level = level
        self.fsync = fsync
        self.repaired: list[str] = []
        self._compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._path: Path | None = None
        self._fd: int | None = None
        self._cobj: zstandard.ZstdCompressionObj | None = None
        self._lock_fd = self._acquire_lock()
        self.repair_leftovers()

    @property
    def current_partition(self) -> Path | None:
        """The partition with an open frame, if any."""
        return self._path

    def _acquire_lock(self) -> int:
        try:
            _makedirs(self.instance_dir)
            fd = os.open(self.instance_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise ArchiveError(f"cannot open archive directory {self.instance_dir}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ArchiveError(
                f"archive {self.instance_dir} is locked by another plsnap writer (pid {holder})"
            ) from None
        self._previous_lock = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        self._write_lock_note(fd, None)
        return fd

    def _write_lock_note(self, fd: int, path: Path | None) -> None:
        """Record our pid and the partition with an open frame, so a crash leaves a note for the next writer."""
        note = f"{os.getpid()}\n{path or ''}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)
        if path is not None and self.fsync:
            os.fsync(fd)

    def repair_leftovers(self) -> None:
        """Repair partitions a crashed writer may have left unterminated: the one its lock note names, and the
        newest partition (for archives written before notes existed). Cheap when they are clean."""
        candidates: list[Path] = []
        lines = self._previous_lock.splitlines()
        if len(lines) >= 2 and lines[1]:
            noted = Path(lines[1])
            if noted.parent.parent == self.instance_dir:
                candidates.append(noted)
        partitions, _ = list_partitions(self.instance_dir)
        if partitions:
            candidates.append(partitions[-1].path)
        for path in dict.fromkeys(candidates):
            if path.is_file():
                try:
                    self._repair_if_needed(path)
                except OSError as exc:
                    raise ArchiveError(f"cannot repair {path}: {_describe(exc)}") from None

    def append(self, line: bytes, ts: datetime) -> int:
        """Append one encoded snapshot line captured at ``ts``; return the compressed bytes written."""
        path = partition_path(self.instance_dir, ts)
        if path != self._path:
            self._close_frame()
            self._open(path)
        assert self._fd is not None
        assert self._cobj is not None
        offset = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            block = self._cobj.compress(line) + self._cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            _write_all(self._fd, block)
            if self.fsync:
                os.fsync(self._fd)
        except OSError as exc:
            self._abandon(offset)
            raise _error(f"cannot write {path}", exc) from None
        return len(block)

    def _open(self, path: Path) -> None:
        try:
            _makedirs(path.parent)
            if path.exists():
                self._repair_if_needed(path)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            created = os.fstat(fd).st_size == 0
        except OSError as exc:
            raise _error(f"cannot open {path}", exc) from None
        if created:
            _fsync_dir(path.parent)
        self._write_lock_note(self._lock_fd, path)
        self._path, self._fd = path, fd
        self._cobj = self._compressor.compressobj()

    def _repair_if_needed(self, path: Path) -> None:
        data = path.read_bytes()
        decoded = decode_partition(data)
        if decoded.clean:
            return
        temp = path.with_name(path.name + REPAIR_SUFFIX)
        body = b"".join(line + b"\n" for line in decoded.lines)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            _write_all(fd, self._compressor.compress(body))
            os.fsync(fd)
        except OSError:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(fd)
        temp.replace(path)
        _fsync_dir(path.parent)
        note = f"repaired {path}: kept {len(decoded.lines)} snapshots, dropped {decoded.torn_bytes} torn bytes"
        if decoded.problems:
            note += "; " + "; ".join(decoded.problems)
        self.repaired.append(note)

    def _close_frame(self) -> None:
        if self._fd is None:
            return
        fd, cobj, path = self._fd, self._cobj, self._path
        self._fd, self._cobj, self._path = None, None, None
        offset = os.lseek(fd, 0, os.SEEK_END)
        try:
            if cobj is not None:
                _write_all(fd, cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, offset)
            raise ArchiveError(f"cannot close frame of {path}: {_describe(exc)}") from None
        finally:
            os.close(fd)

    def _abandon(self, offset: int) -> None:
        """After a failed write: cut the partial block and drop the frame; the next append repairs the file."""
        fd = self._fd
        self._fd, self._cobj, self._path = None, None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, offset)
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Close the open frame (fsynced) and release the lock; safe to call twice."""
        try:
            self._close_frame()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None  # type: ignore[assignment]

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _makedirs(path: Path) -> None:
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=DIR_MODE)
        _fsync_dir(directory.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _error(what: str, exc: OSError) -> ArchiveError:
    cls = DiskFullError if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ArchiveError
    return cls(f"{what}: {_describe(exc)}")


def _describe(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    return exc.strerror or str(exc)
