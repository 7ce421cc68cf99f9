"""Directories opened by file descriptor, so that nothing below the data directory is reached through a symlink.

The data directory itself may be a symlink (systemd's ``DynamicUser`` makes ``/var/lib/plsnap`` one): it is
resolved once, when it is opened. Every directory and file below it is then opened relative to its parent's
descriptor with ``O_NOFOLLOW``, and every directory that a writer creates or enters must be a real directory
owned by the effective user and not writable by everyone. A writer refuses anything else with an
:class:`~plsnap.errors.ArchiveError` that names the path; readers (``writable=False``) skip symlinks and report
them, but accept directories owned by others (an investigator reading a copied archive).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from plsnap.errors import ArchiveError, DiskFullError

DIR_MODE = 0o750
FILE_MODE = 0o640
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def describe_os_error(exc: OSError) -> str:
    """A short reason for an OSError, without any file content."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.ELOOP:
        return "is a symlink (plsnap never follows symlinks below its data directory)"
    return exc.strerror or type(exc).__name__


def archive_error(what: str, exc: OSError) -> ArchiveError:
    """An ArchiveError (DiskFullError for ENOSPC/EDQUOT) saying ``what`` failed and why."""
    cls = DiskFullError if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ArchiveError
    return cls(f"{what}: {describe_os_error(exc)}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry, as ``lstat`` sees it (symlinks are never followed)."""

    name: str
    kind: str  # "dir", "file", "symlink" or "other"
    size: int


#: How an error names an entry of each :class:`Entry` kind.
KIND_TEXT = {
    "symlink": "a symlink",
    "dir": "a directory",
    "file": "a file",
    "other": "a special file (FIFO, socket or device)",
}


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


class SafeDir:
    """An open directory; its children are reached by name relative to its descriptor, never via symlinks.

    ``writable`` directories enforce ownership and mode on every directory they create or enter. Close with
    :meth:`close` (or use as a context manager).
    """

    def __init__(self, fd: int, path: Path, *, writable: bool) -> None:
        self.fd = fd
        self.path = path
        self.writable = writable

    def __repr__(self) -> str:
        return f"SafeDir({str(self.path)!r})"

    @classmethod
    def open_root(cls, path: Path, *, writable: bool, create: bool = False) -> SafeDir:
        """Open the data directory (symlinks in ``path`` itself are resolved, once).

        With ``create``, missing directories are created ``0750``. A world-writable data directory without the
        sticky bit is refused for writing. Raises ArchiveError, or FileNotFoundError when it does not exist.
        """
        resolved = Path(os.path.realpath(path.expanduser()))
        if create and not resolved.exists():
            try:
                resolved.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            except OSError as exc:
                raise archive_error(f"cannot create data directory {resolved}", exc) from None
        try:
            fd = os.open(resolved, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise archive_error(f"cannot open data directory {resolved}", exc) from None
        root = cls(fd, resolved, writable=writable)
        if writable:
            info = os.fstat(fd)
            if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
                root.close()
                raise ArchiveError(
                    f"{resolved} is world-writable: anyone could tamper with the archive; run chmod o-w {resolved}"
                )
        return root

    def close(self) -> None:
        """Close the descriptor; safe to call twice."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SafeDir:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def child_path(self, name: str) -> Path:
        """The path of a child, for messages."""
        return self.path / name

    def subdir(self, name: str, *, create: bool = False) -> SafeDir:
        """Open the child directory ``name`` (creating it ``0750`` with ``create``).

        Raises FileNotFoundError when it is missing (and not created), ArchiveError when it is a symlink, not a
        directory, or (for writers) owned by another user or writable by everyone.
        """
        _check_name(name)
        if create and self.writable:
            try:
                os.mkdir(name, DIR_MODE, dir_fd=self.fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise archive_error(f"cannot create {self.child_path(name)}", exc) from None
            else:
                self.fsync()
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                kind = "a symlink" if _is_symlink(self.fd, name) else "not a directory"
                raise ArchiveError(
                    f"{self.child_path(name)} is {kind}: plsnap never follows symlinks below its data directory"
                ) from None
            raise archive_error(f"cannot open {self.child_path(name)}", exc) from None
        child = SafeDir(fd, self.child_path(name), writable=self.writable)
        if self.writable:
            try:
                _check_owned_dir(os.fstat(fd), child.path)
            except ArchiveError:
                child.close()
                raise
        return child

    def entries(self) -> list[Entry]:
        """Every entry, sorted by name, classified by ``lstat``."""
        found: list[Entry] = []
        with os.scandir(self.fd) as scan:
            for item in scan:
                try:
                    info = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                found.append(Entry(item.name, _kind_of(info.st_mode), info.st_size))
        found.sort(key=lambda e: e.name)
        return found

    def open_file(self, name: str, flags: int, mode: int = FILE_MODE) -> int:
        """Open a regular file by name with ``O_NOFOLLOW``; ArchiveError unless it is a regular file (of ours)."""
        _check_name(name)
        try:
            # O_NONBLOCK: opening a FIFO (or a device) planted where a file should be must not hang; it is
            # refused below, and cleared again for the regular file that is kept.
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode, dir_fd=self.fd)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise archive_error(f"cannot open {self.child_path(name)}", exc) from None
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            os.set_blocking(fd, True)
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = "not a regular file"
        elif self.writable and info.st_uid != os.geteuid():
            problem = f"owned by uid {info.st_uid}, not by this user (uid {os.geteuid()})"
        elif self.writable and info.st_nlink > 1:
            problem = "hard-linked elsewhere"
        if problem is not None:
            os.close(fd)
            raise ArchiveError(f"{self.child_path(name)} is {problem}: refusing to use it")
        return fd

    def read_bytes(self, name: str, limit: int | None = None) -> bytes:
        """The content of a regular file (at most ``limit`` bytes); FileNotFoundError when missing."""
        fd = self.open_file(name, os.O_RDONLY)
        try:
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return handle.read() if limit is None else handle.read(limit)
        finally:
            os.close(fd)

    def read_range(self, name: str, offset: int, length: int) -> tuple[int, bytes]:
        """(size of the file, up to ``length`` bytes of it from ``offset``); FileNotFoundError when missing."""
        fd = self.open_file(name, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            parts = []
            while length > 0 and offset < size:
                part = os.pread(fd, min(length, 1 << 24), offset)
                if not part:
                    break
                parts.append(part)
                offset += len(part)
                length -= len(part)
            return size, b"".join(parts)
        finally:
            os.close(fd)

    def atomic_write(
        self, name: str, data: bytes, *, fsync: bool = True, mode: int = FILE_MODE, replace_any: bool = False
    ) -> None:
        """Replace ``name`` with ``data``: temp file (created ``mode`` less the umask), fsync, rename, fsync of
        the directory. plsnap's one atomic write: rollups, the heartbeat and ``plsnap report``'s page use it.

        A crash leaves either the old or the new content, never a mix; a leftover temp file is named
        ``.<name>.<random>.tmp``. Anything but a regular file at ``name`` (a symlink, a FIFO, a directory) is
        never replaced (ArchiveError) unless ``replace_any`` (a symlink is replaced itself, never followed).
        """
        kind = None if replace_any else self.kind(name)
        if kind not in (None, "file"):
            raise ArchiveError(f"{self.child_path(name)}: {KIND_TEXT[kind]} stands where the file goes; left alone")
        temp = f".{name}.{os.urandom(4).hex()}.tmp"
        fd = self.open_file(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            write_all(fd, data)
            if fsync:
                os.fsync(fd)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=self.fd)
            raise
        os.close(fd)
        try:
            os.rename(temp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=self.fd)
            raise
        if fsync:
            self.fsync()

    def rename(self, old: str, new: str) -> None:
        """Rename a child within this directory (no overwrite check: callers pick a free name)."""
        _check_name(old)
        _check_name(new)
        os.rename(old, new, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        self.fsync()

    def unlink(self, name: str) -> bool:
        """Remove a regular file (never a directory; a symlink is removed itself, not its target)."""
        _check_name(name)
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True

    def rmdir(self, name: str) -> bool:
        """Remove an empty child directory; False when it is not empty or missing."""
        _check_name(name)
        try:
            os.rmdir(name, dir_fd=self.fd)
        except OSError:
            return False
        return True

    def kind(self, name: str) -> str | None:
        """What the child is, as :class:`Entry` names it (``lstat``), or None when there is none."""
        _check_name(name)
        try:
            mode = os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return None
        return _kind_of(mode)

    def exists(self, name: str) -> bool:
        """True when the child exists (a symlink counts, unfollowed)."""
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def fsync(self) -> None:
        """fsync the directory itself (makes created, renamed and removed names durable)."""
        with contextlib.suppress(OSError):
            os.fsync(self.fd)

    def free_space(self) -> tuple[int, int]:
        """(total, free) bytes of the filesystem, as an unprivileged user sees them."""
        info = os.fstatvfs(self.fd)
        return info.f_blocks * info.f_frsize, info.f_bavail * info.f_frsize


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _check_name(name: str) -> None:
    if not name or "/" in name or name in {".", ".."} or "\x00" in name:
        raise ArchiveError(f"invalid file name {name!r}")


def _is_symlink(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _check_owned_dir(info: os.stat_result, path: Path) -> None:
    if info.st_uid != os.geteuid():
        raise ArchiveError(
            f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}): refusing to write there"
        )
    if info.st_mode & stat.S_IWOTH:
        raise ArchiveError(f"{path} is world-writable: anyone could tamper with the archive; run chmod o-w {path}")
