"""Sampling the processlist: one persistent PyMySQL connection, a flavour probe, and the source choice.

``Source.sample()`` never raises: a failed attempt returns a gap :class:`Snapshot` (``sessions=None``) whose
``error`` is a one-line message, closes the connection, and the next call reconnects. Every socket operation is
bounded (connect, read and write timeouts) and the server is asked to stop the query itself
(``max_statement_time`` on MariaDB, ``max_execution_time`` on MySQL).
"""

from __future__ import annotations

import base64
import configparser
import functools
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymysql
from pymysql.constants import FIELD_TYPE

from plsnap.config import Config, defaults_file
from plsnap.errors import SourceError
from plsnap.fingerprint import fingerprint, mask_password_statements, redact_literals
from plsnap.model import Session, Snapshot

SOURCE_NAMES = {
    "show": "show_full_processlist",
    "information_schema": "information_schema",
    "performance_schema": "performance_schema",
}
DEFAULT_SOCKETS = (
    "/run/mysqld/mysqld.sock",
    "/var/run/mysqld/mysqld.sock",
    "/var/lib/mysql/mysql.sock",
    "/tmp/mysql.sock",  # noqa: S108
)
MARIADB_IS_COLUMNS = (
    "ID, USER, HOST, DB, COMMAND, TIME, STATE, INFO_BINARY AS INFO, TIME_MS, STAGE, MAX_STAGE, PROGRESS, "
    "MEMORY_USED, MAX_MEMORY_USED, EXAMINED_ROWS, QUERY_ID, TID"
)
BASE_COLUMNS = "ID, USER, HOST, DB, COMMAND, TIME, STATE, INFO"
P_S_THREADS_COLUMNS = (
    "PROCESSLIST_ID AS ID, PROCESSLIST_USER AS USER, PROCESSLIST_HOST AS HOST, PROCESSLIST_DB AS DB, "
    "PROCESSLIST_COMMAND AS COMMAND, PROCESSLIST_TIME AS TIME, PROCESSLIST_STATE AS STATE, "
    "PROCESSLIST_INFO AS INFO"
)
_NUMBER_CONV = {
    FIELD_TYPE.TINY: int,
    FIELD_TYPE.SHORT: int,
    FIELD_TYPE.LONG: int,
    FIELD_TYPE.LONGLONG: int,
    FIELD_TYPE.INT24: int,
    FIELD_TYPE.YEAR: int,
    FIELD_TYPE.FLOAT: float,
    FIELD_TYPE.DOUBLE: float,
    FIELD_TYPE.DECIMAL: float,
    FIELD_TYPE.NEWDECIMAL: float,
}
_LOCKS_SELECT = (
    "SELECT t.trx_mysql_thread_id, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), t.trx_state, t.trx_rows_locked, "
    "GROUP_CONCAT(DISTINCT b.trx_mysql_thread_id) FROM information_schema.INNODB_TRX t "
)
_LOCKS_GROUP = " GROUP BY t.trx_id, t.trx_mysql_thread_id, t.trx_started, t.trx_state, t.trx_rows_locked"
LOCKS_INNODB = (
    _LOCKS_SELECT + "LEFT JOIN information_schema.INNODB_LOCK_WAITS w ON w.requesting_trx_id = t.trx_id "
    "LEFT JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id" + _LOCKS_GROUP
)
LOCKS_P_S = (
    _LOCKS_SELECT + "LEFT JOIN performance_schema.data_lock_waits w ON w.REQUESTING_ENGINE_TRANSACTION_ID = t.trx_id "
    "LEFT JOIN information_schema.INNODB_TRX b ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID" + _LOCKS_GROUP
)

#: MariaDB's information_schema.PROCESSLIST cuts statement text at this many bytes (INFO and INFO_BINARY alike);
#: INFO is also utf8mb3 there (4-byte characters become "?"), so plsnap reads INFO_BINARY instead.
IS_INFO_CAP = 65535
#: Columns that say nothing about a session without a statement but change at every sample (they would cost
#: compression): omitted on idle rows. ``memory_used`` and the ids stay.
_IDLE_NOISE = frozenset({"time_ms", "stage", "max_stage", "progress", "examined_rows"})
_BASE_KEYS = ("id", "user", "host", "db", "command", "time", "state", "info", "time_ms")


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the probe learned about the server."""

    flavour: str
    version: str
    version_tuple: tuple[int, int, int]
    performance_schema: bool
    connection_id: int
    tls: bool

    @property
    def label(self) -> str:
        """A short description such as ``MariaDB 10.11.19``."""
        return f"{self.flavour} {'.'.join(map(str, self.version_tuple))}"


def choose_source(requested: str, info: ServerInfo) -> str:
    """The source to query: ``requested`` unless it is ``auto`` (DESIGN §4)."""
    if requested != "auto":
        return requested
    if info.flavour == "MariaDB":
        return "information_schema"
    if info.version_tuple >= (8, 0, 22) and info.performance_schema:
        return "performance_schema"
    return "show"


def parse_version(version: str) -> tuple[int, int, int]:
    """``(major, minor, patch)`` from a server version string such as ``10.11.19-MariaDB-0+deb12u1``."""
    head = version.split("-", maxsplit=1)[0]
    parts = [int(p) for p in head.split(".")[:3] if p.isdigit()]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


def build_connect_kwargs(config: Config, password: str | None) -> dict[str, Any]:
    """PyMySQL keyword arguments for ``config`` (the password is passed in, never read from argv)."""
    mysql = config.mysql
    kwargs: dict[str, Any] = {
        "connect_timeout": mysql.connect_timeout,
        "read_timeout": mysql.read_timeout,
        "write_timeout": mysql.write_timeout,
        "use_unicode": False,
        "charset": "utf8mb4",
        "autocommit": True,
        "conv": dict(_NUMBER_CONV),
        "program_name": "plsnap",
    }
    option_file = defaults_file(config)
    option_values: dict[str, str] = {}
    if option_file is not None:
        kwargs["read_default_file"] = str(option_file)
        option_values = _client_options(option_file)
    if mysql.user:
        kwargs["user"] = mysql.user
    if password is not None:
        kwargs["password"] = password
    if mysql.socket:
        kwargs["unix_socket"] = mysql.socket
    elif mysql.host:
        kwargs["host"] = mysql.host
        kwargs["port"] = mysql.port
    elif "socket" not in option_values and "host" not in option_values:
        default_socket = next((s for s in DEFAULT_SOCKETS if Path(s).exists()), None)
        if default_socket is not None:
            kwargs["unix_socket"] = default_socket
        else:
            kwargs["host"], kwargs["port"] = "127.0.0.1", mysql.port
    over_socket = "unix_socket" in kwargs or ("socket" in option_values and "host" not in kwargs)
    kwargs.update(_ssl_kwargs(config, over_socket))
    return kwargs


def _client_options(path: Path) -> dict[str, str]:
    parser = configparser.RawConfigParser(allow_no_value=True, strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return {}
    if not parser.has_section("client"):
        return {}
    return {k: v or "" for k, v in parser.items("client")}


def _ssl_kwargs(config: Config, over_socket: bool) -> dict[str, Any]:
    mysql = config.mysql
    mode = mysql.ssl_mode
    if mode == "disabled" or (mode == "preferred" and over_socket and not mysql.ssl_ca):
        return {"ssl_disabled": True}
    if mode == "preferred" and not mysql.ssl_ca:
        return {}
    context = ssl.create_default_context(cafile=mysql.ssl_ca or None)
    if mysql.ssl_cert:
        context.load_cert_chain(mysql.ssl_cert, mysql.ssl_key or None)
    if mode in ("preferred", "required"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode == "verify_ca":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED
    return {"ssl": context}


class Source:
    """A processlist source bound to one server; call :meth:`sample` once per tick, :meth:`close` at the end."""

    def __init__(self, config: Config, password: str | None, *, instance: str | None = None) -> None:
        self.config = config
        self.instance = instance or config.instance
        self._password = password
        self._conn: Any = None
        self.info: ServerInfo | None = None
        self.kind: str | None = None
        self.locks_error: str | None = None

    def __repr__(self) -> str:
        return f"Source(instance={self.instance!r}, kind={self.kind!r})"

    def connect(self) -> ServerInfo:
        """Open the connection, probe the server and set the statement timeout; SourceError on failure."""
        self.close()
        try:
            kwargs = build_connect_kwargs(self.config, self._password)
        except (OSError, ssl.SSLError) as exc:
            raise SourceError(f"TLS setup failed: {exc}") from None
        try:
            conn = pymysql.connect(**kwargs)
        except pymysql.MySQLError as exc:
            raise SourceError(f"connect failed: {describe_error(exc)}") from None
        except (OSError, ssl.SSLError, ValueError, RuntimeError) as exc:
            raise SourceError(f"connect failed: {exc}") from None
        self._conn = conn
        try:
            info = self._probe(conn)
            mode = self.config.mysql.ssl_mode
            if mode in ("required", "verify_ca", "verify_identity") and not info.tls:
                raise SourceError(f"ssl_mode = {mode} but the server did not negotiate TLS; refusing to continue")
            self._set_statement_timeout(conn, info)
        except pymysql.MySQLError as exc:
            self.close()
            raise SourceError(f"probe failed: {describe_error(exc)}") from None
        except SourceError:
            self.close()
            raise
        self.info = info
        self.kind = choose_source(self.config.capture.source, info)
        return info

    def _probe(self, conn: Any) -> ServerInfo:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), @@version_comment, @@performance_schema, CONNECTION_ID()")
            version_b, comment_b, pfs, conn_id = cur.fetchone()
        version = _decode(version_b) or ""
        comment = _decode(comment_b) or ""
        if "mariadb" in version.lower() or "mariadb" in comment.lower():
            flavour = "MariaDB"
        elif "percona" in comment.lower():
            flavour = "Percona"
        else:
            flavour = "MySQL"
        return ServerInfo(
            flavour=flavour,
            version=version,
            version_tuple=parse_version(version),
            performance_schema=bool(int(pfs or 0)),
            connection_id=int(conn_id),
            tls=isinstance(getattr(conn, "_sock", None), ssl.SSLSocket),
        )

    def _set_statement_timeout(self, conn: Any, info: ServerInfo) -> None:
        seconds = self.config.mysql.statement_timeout
        if seconds <= 0:
            return
        with conn.cursor() as cur:
            if info.flavour == "MariaDB":
                cur.execute(f"SET SESSION max_statement_time = {seconds:.3f}")
            elif info.version_tuple >= (5, 7, 8):
                cur.execute(f"SET SESSION max_execution_time = {int(seconds * 1000)}")

    def close(self) -> None:
        """Close the connection if open; never raises."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                conn._force_close()

    def sample(self) -> Snapshot:
        """One snapshot now, or a gap snapshot whose ``error`` says why; never raises."""
        ts = datetime.now(UTC)
        started = time.perf_counter()
        try:
            if self._conn is None:
                self.connect()
            sessions = self._fetch()
        except SourceError as exc:
            self.close()
            return self._gap(ts, started, str(exc))
        except pymysql.MySQLError as exc:
            self.close()
            return self._gap(ts, started, f"query failed: {describe_error(exc)}")
        except (OSError, ssl.SSLError) as exc:
            self.close()
            return self._gap(ts, started, f"connection error: {exc}")
        return Snapshot(
            ts=ts,
            instance=self.instance,
            source=SOURCE_NAMES[self.kind or "show"],
            server=self.info.version if self.info else None,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            error=None,
            sessions=sessions,
            interval_s=self.config.capture.interval,
        )

    def _gap(self, ts: datetime, started: float, error: str) -> Snapshot:
        return Snapshot(
            ts=ts,
            instance=self.instance,
            source=SOURCE_NAMES[self.kind] if self.kind else None,
            server=self.info.version if self.info else None,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            error=error,
            sessions=None,
            interval_s=self.config.capture.interval,
        )

    def _query(self) -> str:
        assert self.info is not None
        kind = self.kind
        if kind == "information_schema":
            columns = MARIADB_IS_COLUMNS if self.info.flavour == "MariaDB" else BASE_COLUMNS
            return f"SELECT {columns} FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"  # noqa: S608
        if kind == "performance_schema":
            if self.info.flavour != "MariaDB" and self.info.version_tuple >= (8, 0, 22):
                return f"SELECT {BASE_COLUMNS} FROM performance_schema.processlist WHERE ID <> CONNECTION_ID()"  # noqa: S608
            return (
                f"SELECT {P_S_THREADS_COLUMNS} FROM performance_schema.threads "  # noqa: S608
                "WHERE PROCESSLIST_ID IS NOT NULL AND PROCESSLIST_ID <> CONNECTION_ID()"
            )
        return "SHOW FULL PROCESSLIST"

    def _fetch(self) -> tuple[Session, ...]:
        assert self.info is not None
        with self._conn.cursor() as cur:
            cur.execute(self._query())
            names = [d[0].lower() for d in cur.description]
            rows = cur.fetchall()
        transactions = self._transactions() if self.config.capture.locks else {}
        own = self.info.connection_id
        keep_idle = self.config.capture.include_idle
        sessions = (self._to_session(names, row, transactions) for row in rows)
        return tuple(s for s in sessions if s.id != own and (keep_idle or s.active or s.id in transactions))

    def _transactions(self) -> dict[int, dict[str, Any]]:
        """Open InnoDB transactions by thread id: age (s), state, rows locked, and the threads blocking them.

        A failure here (missing privilege, old server) never fails the sample: it is recorded once in
        ``locks_error`` and lock capture stays off for this connection."""
        if self.locks_error is not None:
            return {}
        assert self.info is not None
        modern = self.info.flavour != "MariaDB" and self.info.version_tuple >= (8, 0, 0)
        try:
            with self._conn.cursor() as cur:
                cur.execute(LOCKS_P_S if modern else LOCKS_INNODB)
                rows = cur.fetchall()
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in (2006, 2013, 2055):
                raise
            self.locks_error = describe_error(exc)
            return {}
        except pymysql.err.ProgrammingError as exc:
            self.locks_error = describe_error(exc)
            return {}
        found: dict[int, dict[str, Any]] = {}
        for thread_id, age, state, rows_locked, blockers in rows:
            if thread_id is None:
                continue
            entry: dict[str, Any] = {"trx_age": age, "trx_state": _decode(state), "trx_rows_locked": rows_locked}
            if blockers:
                entry["blocked_by"] = sorted(int(b) for b in (_decode(blockers) or "").split(",") if b.isdigit())
            found[int(thread_id)] = entry
        return found

    def _to_session(self, names: list[str], row: tuple[Any, ...], transactions: dict[int, dict[str, Any]]) -> Session:
        values = dict(zip(names, row, strict=True))
        extra: dict[str, Any] = dict(transactions.get(int(values["id"]), ()))
        raw_info = values.get("info")
        capture = self.config.capture
        info, info_flags = _convert_info_cached(raw_info, capture.max_info_bytes, capture.redact)
        extra.update(info_flags)
        if self.kind == "information_schema" and isinstance(raw_info, bytes) and len(raw_info) >= IS_INFO_CAP:
            extra["info_truncated"] = True
            extra.setdefault("info_length", None)
        idle = raw_info is None
        for key, value in values.items():
            if key in _BASE_KEYS or value is None or (idle and key in _IDLE_NOISE):
                continue
            extra[key] = _decode(value) if isinstance(value, bytes) else value
        time_value = values.get("time")
        time_ms = None if idle else values.get("time_ms")
        return Session(
            id=int(values["id"]),
            user=_decode(values.get("user")),
            host=_decode(values.get("host")),
            db=_decode(values.get("db")),
            command=_decode(values.get("command")),
            time=int(time_value) if time_value is not None else None,
            state=_decode(values.get("state")),
            info=info,
            time_ms=float(time_ms) if time_ms is not None else None,
            record=extra,
        )

    def grants(self) -> list[str]:
        """``SHOW GRANTS`` for the current user (for ``plsnap check``)."""
        if self._conn is None:
            self.connect()
        with self._conn.cursor() as cur:
            cur.execute("SHOW GRANTS")
            return [_decode(row[0]) or "" for row in cur.fetchall()]


@functools.lru_cache(maxsize=4096)
def _convert_info_cached(raw: Any, max_bytes: int, redact: str) -> tuple[str | None, tuple[tuple[str, Any], ...]]:
    """:func:`_convert_info`, cached by exact statement bytes: a running statement recurs in every sample."""
    flags: dict[str, Any] = {}
    text = _convert_info(raw, max_bytes, redact, flags)
    return text, tuple(flags.items())


def _convert_info(raw: Any, max_bytes: int, redact: str, extra: dict[str, Any]) -> str | None:
    """Decode, truncate (recording ``info_truncated``/``info_length``), mask and redact a statement text."""
    if raw is None:
        return None
    data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        extra["info_truncated"] = True
        extra["info_length"] = len(data)
        data = data[:max_bytes]
        text = _decode_prefix(data)
    else:
        text = None
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace")
            extra["info_invalid_utf8"] = True
            if redact == "none":
                extra["info_base64"] = base64.b64encode(data).decode("ascii")
    if "\x00" in text:
        extra["info_has_nul"] = True
    masked = mask_password_statements(text)
    if masked != text:
        extra.pop("info_base64", None)
    text = masked
    if redact == "literals":
        text = redact_literals(text)
    elif redact == "full":
        text = fingerprint(text)
    return text


def _decode_prefix(data: bytes) -> str | None:
    """Decode a cut statement, dropping an incomplete UTF-8 sequence at the cut; None if invalid elsewhere."""
    for trim in range(4):
        try:
            return data[: len(data) - trim].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(data) - 4:
                return None
    return None


def _decode(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def describe_error(exc: BaseException) -> str:
    """A one-line description of a PyMySQL error: ``(code) message``."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        message = str(args[1]).replace("\n", " ")
        return f"({args[0]}) {message}"
    return str(exc).replace("\n", " ") or type(exc).__name__
