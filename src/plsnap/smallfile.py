"""Reading a small text file named by the operator (the config, a password file, a MySQL option file).

Such a path may name anything: a FIFO or a terminal would block the reader forever, ``/dev/zero`` never ends.
:func:`read_capped` opens without blocking, refuses FIFOs, sockets and directories, and reads at most a cap.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def read_capped(path: Path, limit: int) -> tuple[bytes, int]:
    """(at most ``limit + 1`` bytes of ``path``, its mode); OSError (with a ``strerror``) when it cannot be read.

    A FIFO, socket or directory is refused (``strerror`` says what it is) instead of blocking; any other
    non-regular file (a device) is read without blocking, so one with nothing to give fails at once.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else None
        if stat.S_ISDIR(mode):
            raise OSError(errno.EISDIR, "Is a directory")
        if kind is not None:
            raise OSError(errno.EINVAL, f"not a regular file ({kind})")
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
        parts: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            part = os.read(fd, min(remaining, 1 << 20))
            if not part:
                break
            parts.append(part)
            remaining -= len(part)
        return b"".join(parts), mode
    finally:
        os.close(fd)
