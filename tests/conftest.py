"""Shared fixtures: one throwaway MariaDB server for the whole test session.

The tests never touch the system server on port 3306 or /run/mysqld/mysqld.sock: they start their own
``mariadbd`` (see :mod:`tests.devserver`) with a private datadir and unix socket under pytest's temporary
directory, listening on 127.0.0.1 on a free port, and remove it at the end of the session. They fail (never
skip) when the MariaDB server binaries are not installed. Unit tests never request these fixtures.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.devserver import DevServer, DevServerError, find_install_db, find_mariadbd


class CaptureUser(NamedTuple):
    """The low-privilege account plsnap samples with: ``PROCESS ON *.*`` only."""

    name: str
    password: str
    password_file: Path  # mode 0600, holds the password without a trailing newline


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A started session-wide DevServer; stopped and its directory removed when the session ends."""
    try:
        find_mariadbd()
        find_install_db()
    except DevServerError as exc:
        pytest.fail(f"integration tests need MariaDB server binaries: {exc}")
    server = DevServer(tmp_path_factory.mktemp("mariadb"))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def capture_user(mariadb: DevServer, tmp_path_factory: pytest.TempPathFactory) -> CaptureUser:
    """User ``plsnap_cap`` with a random password and only ``PROCESS ON *.*``, plus a 0600 password file."""
    user = CaptureUser("plsnap_cap", secrets.token_urlsafe(18), tmp_path_factory.mktemp("secrets") / "cap.pw")
    mariadb.create_user(user.name, user.password, ("PROCESS ON *.*",))
    fd = os.open(user.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(user.password)
    user.password_file.chmod(0o600)  # in case the umask or an existing file widened it
    return user


@pytest.fixture
def mariadb_running(mariadb: DevServer) -> DevServer:
    """The session server, (re)started if an earlier test stopped or killed it."""
    mariadb.start()  # no-op when already running
    return mariadb
