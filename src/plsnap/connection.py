"""The seam between plsnap and a MySQL server: connection parameters, a minimal connection protocol, and its
PyMySQL implementation.

:class:`~plsnap.source.Source` talks to the server only through a :data:`Connector` (a callable taking
:class:`ConnectParams` and returning a :class:`Connection`), shaped like httpx's transports: tests pass a
connector that answers with canned result sets shaped as MySQL 8.0, 8.4, Percona Server or RDS document them;
production uses :func:`pymysql_connector`. A connector returns an unopened connection: the caller can abort it
while :meth:`Connection.open` connects. Errors cross the seam as two exceptions only::

    ConnectionLost     the connection is unusable (refused, timed out, reset, aborted at the deadline)
    ServerError        the server answered with an error code (e.g. 1227 access denied, 1142 table denied)

:meth:`Connection.abort` may be called from another thread at any time (the attempt deadline, a stop
signal): it unblocks whatever I/O is in progress, and the interrupted call raises ConnectionLost.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


class ConnectionLost(Exception):  # noqa: N818 - a state, named like httpx's TransportError family
    """The connection is gone or never came up; ``args[0]`` is a one-line reason."""


class ServerError(Exception):
    """The server answered with an error: ``code`` (e.g. 1227) and a one-line ``message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"({self.code}) {self.message}"


@dataclass(frozen=True, slots=True)
class ConnectParams:
    """Everything needed to open a connection. Times in seconds; ``password`` never appears in ``repr``."""

    user: str
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int = 3306
    unix_socket: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    write_timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = None
    ssl_disabled: bool = False
    program_name: str = "plsnap"

    @property
    def address(self) -> str:
        """Where the server is expected: ``socket /path`` or ``host:port``."""
        if self.unix_socket:
            return f"socket {self.unix_socket}"
        return f"{self.host}:{self.port}"


class Result(NamedTuple):
    """A result set: lower-case column names and rows of values (text columns as bytes)."""

    columns: tuple[str, ...]
    rows: Sequence[tuple[Any, ...]]


class Connection(Protocol):
    """What plsnap needs from a server connection."""

    @property
    def tls(self) -> bool:
        """True when the session is encrypted."""

    def open(self) -> None:
        """Connect and authenticate (the object exists before, so that :meth:`abort` can reach the attempt)."""

    def query(self, sql: str) -> Result:
        """Run one statement and return its result set; ServerError or ConnectionLost on failure."""

    def close(self) -> None:
        """Close the connection; never raises."""

    def abort(self) -> None:
        """Unblock any I/O in progress, from any thread; never raises."""


#: Makes a connection object for the parameters; :meth:`Connection.open` then connects.
Connector = Callable[[ConnectParams], Connection]


class PyMySQLConnection:
    """A PyMySQL connection on a socket that plsnap opens itself, so that :meth:`abort` can shut it down."""

    def __init__(self, params: ConnectParams) -> None:
        self.params = params
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._family = socket.AF_INET
        self._aborted = False
        self._conn: Any = None

    @property
    def tls(self) -> bool:
        """True when PyMySQL wrapped the socket in TLS."""
        return isinstance(getattr(self._conn, "_sock", None), ssl.SSLSocket)

    def open(self) -> None:
        """Connect and authenticate; ConnectionLost or ServerError on failure."""
        import pymysql

        params = self.params
        sock = self._socket()
        kwargs: dict[str, Any] = {
            "user": params.user or None,
            "password": params.password or "",
            "connect_timeout": params.connect_timeout,
            "read_timeout": params.read_timeout,
            "write_timeout": params.write_timeout,
            "use_unicode": False,
            "charset": "utf8mb4",
            "autocommit": True,
            "conv": _conversions(),
            "program_name": params.program_name,
            "defer_connect": True,
        }
        if params.unix_socket:
            kwargs["unix_socket"] = params.unix_socket
        else:
            kwargs["host"], kwargs["port"] = params.host, params.port
        if params.ssl_disabled:
            kwargs["ssl_disabled"] = True
        elif params.ssl_context is not None:
            kwargs["ssl"] = params.ssl_context
        try:
            conn = pymysql.connect(**kwargs)
            self._conn = conn
            conn.connect(sock)
        except pymysql.MySQLError as exc:
            self._forget()
            raise translate(exc) from None
        except (OSError, ssl.SSLError, ValueError, RuntimeError) as exc:
            self._forget()
            raise ConnectionLost(_one_line(exc)) from None

    def _socket(self) -> socket.socket:
        params = self.params
        sock: socket.socket | None = None
        try:
            if params.unix_socket:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._family = socket.AF_UNIX
                self._adopt(sock)
                sock.settimeout(params.connect_timeout)
                sock.connect(params.unix_socket)
            else:
                sock = socket.create_connection((params.host or "127.0.0.1", params.port), params.connect_timeout)
                self._family = sock.family
                self._adopt(sock)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        except TimeoutError:
            self._forget()
            _close(sock)
            raise ConnectionLost(f"timed out after {params.connect_timeout:g}s (connect_timeout)") from None
        except OSError as exc:
            self._forget()
            _close(sock)
            raise ConnectionLost(_one_line(exc.strerror or exc).lower()) from None
        if self._aborted:
            sock.close()
            self._forget()
            raise ConnectionLost("aborted")
        return sock

    def _adopt(self, sock: socket.socket) -> None:
        with self._lock:
            self._fd = sock.fileno()

    def _forget(self) -> None:
        with self._lock:
            self._fd = None
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn._force_close()

    def query(self, sql: str) -> Result:
        """Run ``sql`` on a tuple cursor."""
        import pymysql

        conn = self._conn
        if conn is None:
            raise ConnectionLost("not connected")
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                columns = tuple(d[0].lower() for d in cur.description or ())
                rows = cur.fetchall()
        except pymysql.MySQLError as exc:
            error = translate(exc)
            if isinstance(error, ConnectionLost):
                self._forget()
            raise error from None
        except (OSError, ssl.SSLError) as exc:
            self._forget()
            raise ConnectionLost(f"connection error: {_one_line(exc)}") from None
        return Result(columns, rows)

    def abort(self) -> None:
        """Shut the socket down (a duplicate descriptor of it), so that a blocked read returns at once."""
        with self._lock:
            self._aborted = True
            fd = self._fd
            if fd is None:
                return
            with contextlib.suppress(OSError):
                dup = socket.socket(self._family, socket.SOCK_STREAM, fileno=os.dup(fd))
                with contextlib.suppress(OSError):
                    dup.shutdown(socket.SHUT_RDWR)
                dup.close()

    def close(self) -> None:
        """Say goodbye to the server if possible, then close."""
        conn = self._conn
        with self._lock:
            self._fd = None
        self._conn = None
        if conn is None:
            return
        try:
            conn.close()
        except Exception:
            with contextlib.suppress(Exception):
                conn._force_close()


def pymysql_connector(params: ConnectParams) -> Connection:
    """The production connector: a not yet opened :class:`PyMySQLConnection`."""
    return PyMySQLConnection(params)


def _conversions() -> dict[int, Callable[[bytes], Any]]:
    """Decoders for numeric columns (everything else stays bytes): tuple rows cost least this way."""
    from pymysql.constants import FIELD_TYPE

    integers = (FIELD_TYPE.TINY, FIELD_TYPE.SHORT, FIELD_TYPE.LONG, FIELD_TYPE.LONGLONG, FIELD_TYPE.INT24)
    floats = (FIELD_TYPE.FLOAT, FIELD_TYPE.DOUBLE, FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL)
    return {**dict.fromkeys((*integers, FIELD_TYPE.YEAR), int), **dict.fromkeys(floats, float)}


def translate(exc: BaseException) -> ConnectionLost | ServerError:
    """A PyMySQL error as a seam error: client-side codes (2000-2999) and interface errors are ConnectionLost."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        code, message = args[0], _one_line(args[1])
        if 2000 <= code < 3000:
            return ConnectionLost(f"({code}) {message}")
        return ServerError(code, message)
    return ConnectionLost(_one_line(exc) or type(exc).__name__)


def _close(sock: socket.socket | None) -> None:
    """Close a socket whose connect failed (it would otherwise leak until garbage collection)."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _one_line(value: object) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text if len(text) <= 300 else text[:299] + "…"
