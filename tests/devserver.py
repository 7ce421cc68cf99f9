"""A throwaway MariaDB server for tests, the demo and benchmarks.

:class:`DevServer` initialises a private datadir with ``mariadb-install-db`` and runs ``mariadbd`` as a child
process in its own process group. Everything (datadir, unix socket, pid file, error log, a client ``my.cnf``)
lives under one ``basedir``; the server listens on 127.0.0.1 only, on a port of its own, and never reads the
system option files (``--no-defaults``), so it cannot collide with a system server on 3306.

The server is tuned to be small and quick to boot (32 MiB buffer pool, 8 MiB redo log, small caches,
performance_schema off, no binlog, relaxed durability) while allowing 4000 connections. Child servers are
killed when the Python process exits (``atexit``) and, on Linux, for servers started from the main thread,
even when the process is killed (``PR_SET_PDEATHSIG``).

Example::

    with DevServer(Path("/tmp/db")) as server:
        server.create_user("app", "secret")
        conn = pymysql.connect(**server.client_kwargs("app", "secret"))
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pymysql
import pymysql.connections

__all__ = ["DevServer", "DevServerError", "find_install_db", "find_mariadbd", "free_port"]

#: ``max_connections`` of every dev server; benchmarks open ~3500 sessions.
MAX_CONNECTIONS = 4000
#: Longest unix socket path the kernel accepts (``sun_path`` is 108 bytes including the NUL).
_MAX_SOCKET_PATH = 107
_INSTALL_HINT = "install MariaDB server binaries, e.g. `apt-get install mariadb-server`"
_POLL_INTERVAL = 0.05  # seconds between readiness probes
_LOG_TAIL_LINES = 40
_PORT_IN_USE_MARKERS = ("Address already in use", "Do you already have another server running on port")

# Options shared by mariadb-install-db and mariadbd. The redo log size is given at init time as well so the
# bootstrap does not write (and the first boot resize) a 96 MiB default log file.
_COMMON_OPTIONS = (
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--innodb-log-buffer-size=2M",
)
# Server-only options: small memory, fast and non-durable I/O, many connections.
_SERVER_OPTIONS = (
    "--skip-log-bin",
    "--performance-schema=OFF",
    "--skip-name-resolve",
    f"--max-connections={MAX_CONNECTIONS}",
    "--table-open-cache=400",
    "--table-open-cache-instances=1",
    "--thread-cache-size=64",
    "--key-buffer-size=8M",
    "--aria-pagecache-buffer-size=8M",
    "--innodb-flush-log-at-trx-commit=2",
    "--innodb-doublewrite=0",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
)


class DevServerError(Exception):
    """The dev server could not be found, initialised, started or stopped."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _find_binary(name: str, fallbacks: Sequence[str]) -> str:
    found = shutil.which(name)
    if found:
        return found
    for directory in fallbacks:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise DevServerError(f"{name} not found on PATH or in {', '.join(fallbacks)}; {_INSTALL_HINT}")


def find_mariadbd() -> str:
    """Return the path of ``mariadbd``; raise DevServerError with an install hint if it is missing."""
    return _find_binary("mariadbd", ("/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"))


def find_install_db() -> str:
    """Return the path of ``mariadb-install-db``; raise DevServerError with an install hint if missing."""
    return _find_binary("mariadb-install-db", ("/usr/bin", "/usr/local/bin", "/usr/local/mysql/scripts"))


# --- safety net: no mariadbd outlives this interpreter ---------------------------------------------------

_LIVE: dict[int, subprocess.Popen[bytes]] = {}
_LIVE_LOCK = threading.Lock()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group led by ``proc`` (started with ``start_new_session``) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@atexit.register
def _kill_all_live() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
        _LIVE.clear()
    for proc in procs:
        _kill_group(proc)


def _parent_death_preexec() -> Any:
    """Return a preexec_fn making the child get SIGKILL when the starting thread dies (Linux only)."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        # PR_SET_PDEATHSIG fires when the *thread* that forked exits; only the main thread lives as long
        # as the process, so servers started from other threads rely on atexit alone.
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)

    return preexec


def _tail(path: Path, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path`` written after byte ``offset``."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(nothing in {path})"


@dataclass(eq=False)
class DevServer:
    """A private ``mariadbd`` under ``basedir``, on 127.0.0.1:``port`` and a unix socket.

    ``port=0`` picks a free port at the first :meth:`start`; later starts reuse it, and the datadir, so
    stop/start simulates an outage. ``extra_args`` are appended to the ``mariadbd`` command line and so
    override the built-in options. Root has an empty password (localhost socket, 127.0.0.1 and ::1).
    """

    basedir: Path
    port: int = 0
    extra_args: Sequence[str] = ()
    #: Seconds the last datadir initialisation took (None until the first start).
    init_seconds: float | None = field(default=None, init=False)
    #: Seconds from launching ``mariadbd`` until root could connect, for the last start.
    boot_seconds: float | None = field(default=None, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log_offset: int = field(default=0, init=False, repr=False)  # error-log size when this boot began
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.basedir = Path(self.basedir).absolute()
        self.extra_args = tuple(self.extra_args)

    # --- paths ---------------------------------------------------------------------------------------

    @property
    def socket(self) -> Path:
        """The server's unix socket."""
        return self.basedir / "mysqld.sock"

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        return self.basedir / "data"

    @property
    def pid_file(self) -> Path:
        """The pid file mariadbd writes."""
        return self.basedir / "mysqld.pid"

    @property
    def error_log(self) -> Path:
        """The server error log (``--log-error``); install-db output goes to ``install.log`` beside it."""
        return self.basedir / "error.log"

    @property
    def cnf_file(self) -> Path:
        """A client option file: ``mariadb --defaults-file=<cnf_file>`` connects as root."""
        return self.basedir / "my.cnf"

    # --- lifecycle -----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the mariadbd child process is alive (it may not accept connections yet)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        """Initialise the datadir if needed, launch mariadbd and wait up to ``timeout`` seconds for root.

        No-op if already running. Raises DevServerError with the error-log tail on failure or timeout.
        """
        with self._lock:
            if self.running:
                return
            self._reap()
            if len(str(self.socket)) > _MAX_SOCKET_PATH:
                raise DevServerError(f"socket path too long for a unix socket ({self.socket}); use a shorter basedir")
            self.basedir.mkdir(parents=True, exist_ok=True)
            (self.basedir / "tmp").mkdir(exist_ok=True)
            deadline = time.monotonic() + timeout
            if not (self.datadir / "mysql").is_dir():
                self._initialise(timeout)
            auto_port = self.port == 0
            attempts = 3 if auto_port else 1
            for attempt in range(attempts):
                if auto_port:
                    self.port = free_port()
                try:
                    self._launch(deadline)
                except DevServerError as exc:
                    port_taken = any(marker in str(exc) for marker in _PORT_IN_USE_MARKERS)
                    if not (auto_port and port_taken and attempt + 1 < attempts):
                        if auto_port:
                            self.port = 0
                        raise
                else:
                    return

    def _user_args(self) -> list[str]:
        # mariadbd refuses to run as root unless told to; install-db then also chowns to root, not mysql.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _initialise(self, timeout: float) -> None:
        if self.datadir.exists():
            shutil.rmtree(self.datadir)  # a half-initialised datadir from an interrupted run
        argv = [
            find_install_db(),
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--cross-bootstrap",  # no root@<hostname> (useless with --skip-name-resolve), no DNS lookup
            *self._user_args(),
            *_COMMON_OPTIONS,
        ]
        log = self.basedir / "install.log"
        began = time.monotonic()
        try:
            with log.open("wb") as out:
                result = subprocess.run(
                    argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False, cwd=self.basedir
                )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(self.datadir, ignore_errors=True)
            raise DevServerError(f"mariadb-install-db timed out after {timeout}s:\n{_tail(log)}") from exc
        except OSError as exc:
            raise DevServerError(f"cannot run mariadb-install-db: {exc}") from exc
        if result.returncode != 0:
            shutil.rmtree(self.datadir, ignore_errors=True)  # so the next start() initialises afresh
            raise DevServerError(f"mariadb-install-db failed (exit {result.returncode}):\n{_tail(log)}")
        self.init_seconds = time.monotonic() - began

    def _server_argv(self) -> list[str]:
        return [
            find_mariadbd(),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.error_log}",
            f"--tmpdir={self.basedir / 'tmp'}",
            *self._user_args(),
            *_COMMON_OPTIONS,
            *_SERVER_OPTIONS,
            *self.extra_args,
        ]

    def _write_cnf(self) -> None:
        self.cnf_file.write_text(
            "# Written by tests.devserver for interactive use: mariadb --defaults-file=<this file>\n"
            "[client]\n"
            "user=root\n"
            f"socket={self.socket}\n"
            f"port={self.port}\n"
        )

    def _launch(self, deadline: float) -> None:
        self._write_cnf()
        try:  # error messages quote only what this boot logged
            self._log_offset = self.error_log.stat().st_size
        except FileNotFoundError:
            self._log_offset = 0
        began = time.monotonic()
        with (self.basedir / "mariadbd.out").open("ab") as out:
            try:
                proc = subprocess.Popen(
                    self._server_argv(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.basedir,
                    start_new_session=True,  # own process group: killpg reaches everything it spawns
                    preexec_fn=_parent_death_preexec(),  # noqa: PLW1509 - only calls prctl, no locks
                )
            except OSError as exc:
                raise DevServerError(f"cannot run mariadbd: {exc}") from exc
        with _LIVE_LOCK:
            _LIVE[proc.pid] = proc
        self._proc = proc
        last_error: Exception | None = None
        while True:
            if proc.poll() is not None:
                self._reap()
                log = _tail(self.error_log, self._log_offset)
                raise DevServerError(f"mariadbd exited with status {proc.returncode} during startup:\n{log}")
            try:
                self._probe_root()
            except (OSError, pymysql.err.MySQLError) as exc:
                last_error = exc
            else:
                self.boot_seconds = time.monotonic() - began
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise DevServerError(
                    f"mariadbd did not accept root connections in time (last error: {last_error}):\n"
                    f"{_tail(self.error_log, self._log_offset)}"
                )
            time.sleep(_POLL_INTERVAL)

    def _probe_root(self) -> None:
        """Connect as root and disconnect; raise OSError or MySQLError if the server is not ready."""
        # The raw socket is connected here and handed to pymysql, because pymysql leaks (ResourceWarning)
        # the socket it created itself when the connect fails, as it does until mariadbd listens.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(2.0)
            sock.connect(str(self.socket))
        except OSError:
            sock.close()
            raise
        conn = self.root_connect(defer_connect=True, connect_timeout=2)
        conn.connect(sock)  # closes sock itself on failure
        conn.close()

    def _reap(self) -> None:
        """Forget a child that has exited and kill any leftovers in its process group."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with _LIVE_LOCK:
            _LIVE.pop(proc.pid, None)
        self._proc = None

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down gracefully (SIGTERM, wait ``timeout`` seconds, then SIGKILL). Idempotent."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
            self._reap()

    def kill(self) -> None:
        """SIGKILL the server's process group, like a crash; InnoDB recovers at the next start. Idempotent."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            _kill_group(proc)
            self._reap()

    def cleanup(self) -> None:
        """Stop the server and delete ``basedir`` with everything in it."""
        self.stop()
        shutil.rmtree(self.basedir, ignore_errors=True)

    def __enter__(self) -> DevServer:
        """Start the server and return it."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server (the datadir is kept; see :meth:`cleanup`)."""
        self.stop()

    # --- clients -------------------------------------------------------------------------------------

    def root_connect(self, **kw: Any) -> pymysql.connections.Connection:
        """Connect as root over the unix socket, autocommit on, no TLS; ``kw`` overrides pymysql arguments."""
        args: dict[str, Any] = {
            "unix_socket": str(self.socket),
            "user": "root",
            "password": "",
            "autocommit": True,
            "connect_timeout": 5,
            # pymysql >= 1.2 otherwise builds a default TLS context (~20 ms) per connection; the socket is
            # local and counts as secure even with --require-secure-transport.
            "ssl_disabled": True,
        }
        args.update(kw)
        return pymysql.connect(**args)

    def execute(self, *statements: str) -> None:
        """Run each SQL statement as root, in order, on one connection (no parameter substitution)."""
        conn = self.root_connect()
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def create_user(self, name: str, password: str, grants: Sequence[str] = ("PROCESS ON *.*",)) -> None:
        """(Re)create ``name`` at localhost, 127.0.0.1 and % with ``password`` and GRANT each of ``grants``.

        Each grant is the SQL between GRANT and TO, e.g. ``"SELECT ON app.*"``.
        """
        conn = self.root_connect()
        try:
            with conn.cursor() as cur:
                for host in ("localhost", "127.0.0.1", "%"):
                    cur.execute("DROP USER IF EXISTS %s@%s", (name, host))
                    cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (name, host, password))
                    for grant in grants:
                        cur.execute(f"GRANT {grant.replace('%', '%%')} TO %s@%s", (name, host))
        finally:
            conn.close()

    def client_kwargs(self, user: str, password: str, tcp: bool = False) -> dict[str, Any]:
        """pymysql.connect keyword arguments for ``user``: the unix socket, or 127.0.0.1:port if ``tcp``."""
        kwargs: dict[str, Any] = {"user": user, "password": password}
        if tcp:
            kwargs.update(host="127.0.0.1", port=self.port)
        else:
            kwargs["unix_socket"] = str(self.socket)
        return kwargs
