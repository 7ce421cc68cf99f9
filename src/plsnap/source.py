"""Sampling the processlist: one persistent connection, a probe of the server and of what the account may see,
the source choice, and rows turned into a :class:`~plsnap.model.Snapshot`.

``Source.sample()`` never raises: a failed attempt returns a gap snapshot (``sessions=None``) whose ``error``
is one line, closes the connection, and the next call reconnects. Every attempt has a hard deadline
(``connect_timeout + read_timeout`` when it must connect, ``read_timeout`` otherwise): when it passes, the
socket is shut down, whatever the server is doing (a server that drips one byte every second defeats
per-read timeouts). The server is asked to stop the query itself too (``max_statement_time`` on MariaDB,
``max_execution_time`` on MySQL).

The server is reached only through a :data:`~plsnap.connection.Connector` (the seam tests use).
"""

from __future__ import annotations

import base64
import functools
import re
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plsnap.config import Config, defaults_file
from plsnap.connection import (
    Connection,
    ConnectionLost,
    Connector,
    ConnectParams,
    Result,
    ServerError,
    pymysql_connector,
)
from plsnap.counters import INNODB_METRICS, parse_status
from plsnap.errors import ConfigError, SourceError
from plsnap.fingerprint import fingerprint
from plsnap.innodb_status import redact_status
from plsnap.locks import Edge, LockInputs, MdlLock, RowWait, derive_edges, user_lock_name, waiting_kind
from plsnap.masking import mask_secrets, redact_literals
from plsnap.model import Session, Snapshot
from plsnap.optionfile import ClientOptions, read_client_options

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
#: Every statement plsnap sends carries this comment; rows running one of them (plsnap's own statements, on this
#: or another instance's connection) are recognised by their whole text and left out of the samples.
TAG = "/* plsnap */"
#: On idle rows the per-statement columns are NULL already on the server: they say nothing there and would
#: only cost decoding and compression.
MARIADB_IS_COLUMNS = "ID, USER, HOST, DB, COMMAND, TIME, STATE, INFO_BINARY AS INFO, " + ", ".join(
    f"IF(INFO_BINARY IS NULL, NULL, {column}) AS {column}"
    for column in ("TIME_MS", "STAGE", "MAX_STAGE", "PROGRESS", "MEMORY_USED", "EXAMINED_ROWS")
)
BASE_COLUMNS = "ID, USER, HOST, DB, COMMAND, TIME, STATE, INFO"
P_S_THREADS_COLUMNS = (
    "PROCESSLIST_ID AS ID, PROCESSLIST_USER AS USER, PROCESSLIST_HOST AS HOST, PROCESSLIST_DB AS DB, "
    "PROCESSLIST_COMMAND AS COMMAND, PROCESSLIST_TIME AS TIME, PROCESSLIST_STATE AS STATE, "
    "PROCESSLIST_INFO AS INFO"
)
PROBE = f"SELECT {TAG} VERSION(), @@version_comment, @@performance_schema, CONNECTION_ID(), CURRENT_USER()"
SHOW_GRANTS = f"SHOW {TAG} GRANTS"
QUERIES = {
    "show": f"SHOW {TAG} FULL PROCESSLIST",
    "is_mariadb": f"SELECT {TAG} {MARIADB_IS_COLUMNS} FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()",
    "is": f"SELECT {TAG} {BASE_COLUMNS} FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()",
    "ps": f"SELECT {TAG} {BASE_COLUMNS} FROM performance_schema.processlist WHERE ID <> CONNECTION_ID()",
    "ps_threads": (
        f"SELECT {TAG} {P_S_THREADS_COLUMNS} FROM performance_schema.threads "
        "WHERE PROCESSLIST_ID IS NOT NULL AND PROCESSLIST_ID <> CONNECTION_ID()"
    ),
}
TRANSACTIONS = (
    f"SELECT {TAG} trx_mysql_thread_id, TIMESTAMPDIFF(SECOND, trx_started, NOW()), trx_state, trx_rows_locked "
    "FROM information_schema.INNODB_TRX"
)
ROW_WAITS_INNODB = (
    f"SELECT {TAG} r.trx_mysql_thread_id, b.trx_mysql_thread_id, rl.lock_table, rl.lock_mode, bl.lock_mode, "
    "TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()) FROM information_schema.INNODB_LOCK_WAITS w "
    "JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id "
    "JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id "
    "LEFT JOIN information_schema.INNODB_LOCKS rl ON rl.lock_id = w.requested_lock_id "
    "LEFT JOIN information_schema.INNODB_LOCKS bl ON bl.lock_id = w.blocking_lock_id"
)
ROW_WAITS_P_S = (
    f"SELECT {TAG} r.trx_mysql_thread_id, b.trx_mysql_thread_id, CONCAT(rl.OBJECT_SCHEMA, '.', rl.OBJECT_NAME), "
    "rl.LOCK_MODE, bl.LOCK_MODE, TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()) "
    "FROM performance_schema.data_lock_waits w "
    "JOIN information_schema.INNODB_TRX r ON r.trx_id = w.REQUESTING_ENGINE_TRANSACTION_ID "
    "JOIN information_schema.INNODB_TRX b ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID "
    "LEFT JOIN performance_schema.data_locks rl ON rl.ENGINE_LOCK_ID = w.REQUESTING_ENGINE_LOCK_ID "
    "LEFT JOIN performance_schema.data_locks bl ON bl.ENGINE_LOCK_ID = w.BLOCKING_ENGINE_LOCK_ID"
)
MDL_MARIADB = (
    f"SELECT {TAG} THREAD_ID, LOCK_MODE, LOCK_TYPE, TABLE_SCHEMA, TABLE_NAME FROM information_schema.METADATA_LOCK_INFO"
)
MDL_P_S = (
    f"SELECT {TAG} t.PROCESSLIST_ID, m.LOCK_TYPE, m.OBJECT_TYPE, m.OBJECT_SCHEMA, m.OBJECT_NAME, m.LOCK_STATUS "
    "FROM performance_schema.metadata_locks m JOIN performance_schema.threads t ON t.THREAD_ID = m.OWNER_THREAD_ID "
    "WHERE t.PROCESSLIST_ID IS NOT NULL"
)
PROBE_MDL_PLUGIN = (
    f"SELECT {TAG} PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO'"
)
PROBE_MDL_P_S = (
    f"SELECT {TAG} ENABLED FROM performance_schema.setup_instruments WHERE NAME = 'wait/lock/metadata/sql/mdl'"
)
INNODB_METRICS_QUERY = (
    f"SELECT {TAG} NAME, COUNT FROM information_schema.INNODB_METRICS "
    "WHERE NAME IN ('trx_rseg_history_len', 'lock_deadlocks') AND STATUS = 'enabled'"
)
REPLICATION = {
    "mariadb": f"SHOW {TAG} ALL SLAVES STATUS",
    "replica": f"SHOW {TAG} REPLICA STATUS",
    "slave": f"SHOW {TAG} SLAVE STATUS",
}
INNODB_STATUS = f"SHOW {TAG} ENGINE INNODB STATUS"
#: Seconds before a server that had no replication channel is asked for them again (a replica set up later
#: shows within it).
REPLICATION_RECHECK_S = 300.0
#: The counters query, built from ``[capture] status`` (names are letters, digits and _ only).
_STATUS_QUERY = re.compile(rf"^SHOW {re.escape(TAG)} GLOBAL STATUS WHERE Variable_name IN \('\w+'(?:, '\w+')*\)$")
#: ``IS_USED_LOCK`` for the user locks waited for in a sample (names passed as hex literals).
_USER_LOCK_QUERY = re.compile(
    rf"^SELECT {re.escape(TAG)} IS_USED_LOCK\(X'[0-9a-f]*'\)(?:, IS_USED_LOCK\(X'[0-9a-f]*'\))*$"
)
_MDL_TYPES = {"Table metadata lock": "TABLE", "Schema metadata lock": "SCHEMA", "User lock": "USER LEVEL LOCK"}
#: The whole texts of plsnap's own capture statements (as the processlist shows them).
OWN_STATEMENTS = frozenset(
    text.encode()
    for text in (
        *QUERIES.values(),
        TRANSACTIONS,
        ROW_WAITS_INNODB,
        ROW_WAITS_P_S,
        MDL_MARIADB,
        MDL_P_S,
        PROBE,
        PROBE_MDL_PLUGIN,
        PROBE_MDL_P_S,
        SHOW_GRANTS,
        INNODB_METRICS_QUERY,
        INNODB_STATUS,
        *REPLICATION.values(),
    )
)

#: MariaDB's information_schema.PROCESSLIST cuts statement text at this many bytes (INFO and INFO_BINARY alike);
#: INFO is also utf8mb3 there (4-byte characters become "?"), so plsnap reads INFO_BINARY instead.
IS_INFO_CAP = 65535
_BASE_KEYS = ("id", "user", "host", "db", "command", "time", "state", "info", "time_ms")
#: Server error codes that mean "this account may not read that": the capture degrades, it does not fail.
DENIED = frozenset({1142, 1143, 1227, 1044, 1045, 1370})
_GRANT_ON_ALL = re.compile(r"^GRANT\s+(.*?)\s+ON\s+\*\.\*\s+TO\s", re.IGNORECASE | re.DOTALL)
_ROLE_GRANT = re.compile(r"^GRANT\s+((?:`[^`]*`(?:@`[^`]*`)?\s*,?\s*)+)\s+TO\s", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the probe learned about the server and the account."""

    flavour: str
    version: str
    version_tuple: tuple[int, int, int]
    performance_schema: bool
    connection_id: int
    tls: bool
    account: str = ""
    visibility: str = "unknown"
    grants: tuple[str, ...] = ()
    mdl_source: str | None = None

    @property
    def modern(self) -> bool:
        """MySQL or Percona 8.0 and later (performance_schema lock tables instead of InnoDB's)."""
        return self.flavour != "MariaDB" and self.version_tuple >= (8, 0, 0)

    @property
    def label(self) -> str:
        """A short description such as ``MariaDB 10.11.19``."""
        return f"{self.flavour} {'.'.join(map(str, self.version_tuple))}"


def choose_source(requested: str, info: ServerInfo) -> str:
    """The source to query: ``requested`` unless it is ``auto`` (docs/architecture.md, "Capture")."""
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


def flavour_of(version: str, comment: str) -> str:
    """``MariaDB``, ``Percona`` or ``MySQL`` from ``VERSION()`` and ``@@version_comment``."""
    if "mariadb" in version.lower() or "mariadb" in comment.lower():
        return "MariaDB"
    if "percona" in comment.lower() or "percona" in version.lower():
        return "Percona"
    return "MySQL"


def visibility_from_grants(grants: Iterable[str]) -> str | None:
    """``all`` when the grants give PROCESS (or ALL PRIVILEGES) on ``*.*``, else None (look at roles next)."""
    for line in grants:
        match = _GRANT_ON_ALL.match(line.strip())
        if match:
            granted = {p.strip().upper() for p in match.group(1).split(",")}
            if "PROCESS" in granted or "ALL PRIVILEGES" in granted or "ALL" in granted:
                return "all"
    return None


def granted_roles(grants: Iterable[str]) -> list[str]:
    """The roles granted to the account (``GRANT `r` TO ...`` lines, without ``ON``)."""
    roles = []
    for line in grants:
        text = line.strip()
        if " ON " in text.upper():
            continue
        match = _ROLE_GRANT.match(text)
        if match:
            roles += [r.strip() for r in match.group(1).split(",") if r.strip()]
    return roles


def connect_params(config: Config, password: str | None) -> ConnectParams:
    """Connection parameters from the config, the MySQL option file and ``password`` (never from argv)."""
    mysql = config.mysql
    option_file = defaults_file(config)
    options = read_client_options(option_file) if option_file is not None else ClientOptions()
    unix_socket: str | None = None
    host: str | None = None
    port = mysql.port
    if mysql.socket:
        unix_socket = mysql.socket
    elif mysql.host:
        host = mysql.host
    elif options.socket:
        unix_socket = options.socket
    elif options.host and options.host != "localhost":
        host, port = options.host, options.port or mysql.port
    else:
        unix_socket = next((s for s in DEFAULT_SOCKETS if Path(s).exists()), None)
        if unix_socket is None:
            host = "127.0.0.1"
    if host is not None and options.port and not mysql.host:
        port = options.port
    over_socket = unix_socket is not None
    context, disabled = _ssl_setup(config, over_socket, options)
    return ConnectParams(
        user=mysql.user or options.user,
        password=password if password is not None else options.password,
        host=host,
        port=port,
        unix_socket=unix_socket,
        connect_timeout=mysql.connect_timeout,
        read_timeout=mysql.read_timeout,
        write_timeout=mysql.write_timeout,
        ssl_context=context,
        ssl_disabled=disabled,
    )


def _ssl_setup(config: Config, over_socket: bool, options: ClientOptions) -> tuple[ssl.SSLContext | None, bool]:
    mysql = config.mysql
    mode = mysql.ssl_mode
    ca = mysql.ssl_ca or options.ssl_ca
    cert, key = (mysql.ssl_cert, mysql.ssl_key) if mysql.ssl_cert else (options.ssl_cert, options.ssl_key)
    if mode == "disabled" or (mode == "preferred" and over_socket and not ca):
        return None, True
    if mode == "preferred" and not ca:
        return None, False
    try:
        context = ssl.create_default_context(cafile=ca or None)
        if cert:
            context.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[mysql] TLS setup failed: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    if mode in ("preferred", "required"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode == "verify_ca":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED
    return context, False


class _Deadline:
    """One watchdog thread per source: aborts the current connection when an attempt outlives its deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: float | None = None
        self._target: Connection | None = None
        self.fired = False
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, seconds: float, target: Connection | None) -> None:
        with self._cond:
            self._due = time.monotonic() + seconds
            self._target = target
            self.fired = False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="plsnap-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()

    def retarget(self, target: Connection | None) -> None:
        with self._cond:
            self._target = target

    def disarm(self) -> None:
        with self._cond:
            self._due = None
            self._target = None

    def abort_now(self) -> None:
        with self._cond:
            target = self._target
            self.fired = True
        if target is not None:
            target.abort()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._due = None
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._due is None:
                    self._cond.wait()
                    continue
                remaining = self._due - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                target, self._due = self._target, None
                self.fired = True
                if target is not None:
                    target.abort()


class Source:
    """A processlist source bound to one server; call :meth:`sample` once per tick, :meth:`close` at the end.

    ``connector`` makes connections (default: PyMySQL); tests pass one that answers with canned result sets.
    """

    def __init__(
        self,
        config: Config,
        password: str | None,
        *,
        instance: str | None = None,
        connector: Connector | None = None,
    ) -> None:
        self.config = config
        self.instance = instance or config.instance
        self._password = password
        self._connector: Connector = connector or pymysql_connector
        self._conn: Connection | None = None
        self._deadline = _Deadline()
        self._stopping = False
        #: The deadline (seconds) the attempt in progress was given.
        self._armed_s = 0.0
        self.info: ServerInfo | None = None
        self.kind: str | None = None
        self.locks_error: str | None = None
        self.timeout_error: str | None = None
        self.fallback: str | None = None
        self._edges: list[Edge] = []
        self._status: dict[str, int | float] = {}
        self._replication: list[dict[str, Any]] = []
        self.status_error: str | None = None
        self.replication_error: str | None = None
        self._no_channels_until = 0.0
        self.mdl_error: str | None = None
        self.row_error: str | None = None
        self._interval = config.capture.interval

    def __repr__(self) -> str:
        return f"Source(instance={self.instance!r}, kind={self.kind!r})"

    @property
    def attempt_deadline(self) -> float:
        """Seconds an attempt may take: connect + read timeout when it must connect, else the read timeout."""
        mysql = self.config.mysql
        return mysql.read_timeout + (mysql.connect_timeout if self._conn is None else 0.0)

    def connect(self) -> ServerInfo:
        """Open the connection, probe the server and the account, set the statement timeout; SourceError on
        failure (the message never holds a password)."""
        self.close_connection()
        self._no_channels_until = 0.0
        self.status_error = self.replication_error = None
        params = connect_params(self.config, self._password)
        conn = self._connector(params)
        self._conn = conn
        self._deadline.retarget(conn)
        try:
            conn.open()
            info = self._probe(conn)
            if self.config.capture.locks:
                info = replace(info, mdl_source=self._mdl_source(conn, info))
            mode = self.config.mysql.ssl_mode
            if mode in ("required", "verify_ca", "verify_identity") and not info.tls:
                raise SourceError(f"ssl_mode = {mode} but the server did not negotiate TLS; refusing to continue")
            self._set_statement_timeout(conn, info)
        except ServerError as exc:
            self.close_connection()
            raise SourceError(f"connect to {params.address} failed: {exc}") from None
        except ConnectionLost as exc:
            self.close_connection()
            raise SourceError(self._lost_message(f"connect to {params.address} failed", exc)) from None
        except SourceError:
            self.close_connection()
            raise
        self.info = info
        self.kind = choose_source(self.config.capture.source, info)
        self.fallback = None
        self.locks_error = None
        self.mdl_error = None
        self.row_error = None
        return info

    def _lost_message(self, what: str, exc: ConnectionLost) -> str:
        if self._deadline.fired and not self._stopping:
            return f"{what}: the attempt passed its deadline of {self._armed_s:g}s and was cut off"
        if self._stopping:
            return f"{what}: stopped (shutdown)"
        return f"{what}: {exc}"

    def _probe(self, conn: Connection) -> ServerInfo:
        result = conn.query(PROBE)
        if not result.rows:
            raise ConnectionLost("the probe returned no row")
        version_b, comment_b, pfs, conn_id, account_b = result.rows[0][:5]
        version = _decode(version_b) or ""
        comment = _decode(comment_b) or ""
        grants: tuple[str, ...] = ()
        visibility = "unknown"
        try:
            grants = tuple(_decode(row[0]) or "" for row in conn.query(SHOW_GRANTS).rows)
            visibility = visibility_from_grants(grants) or self._role_visibility(conn, grants)
        except ServerError:
            visibility = "unknown"
        return ServerInfo(
            flavour=flavour_of(version, comment),
            version=version,
            version_tuple=parse_version(version),
            performance_schema=_truthy(pfs),
            connection_id=int(conn_id),
            tls=conn.tls,
            account=_decode(account_b) or "",
            visibility=visibility,
            grants=grants,
        )

    @staticmethod
    def _mdl_source(conn: Connection, info: ServerInfo) -> str | None:
        """Where metadata locks can be read: MariaDB's metadata_lock_info plugin, MySQL's performance_schema
        metadata_locks (instrument on), or nowhere (then blockers of metadata-lock waits are inferred)."""
        try:
            if info.flavour == "MariaDB":
                rows = conn.query(PROBE_MDL_PLUGIN).rows
                return "metadata_lock_info" if rows and _decode(rows[0][0]) == "ACTIVE" else None
            if info.modern and info.performance_schema:
                rows = conn.query(PROBE_MDL_P_S).rows
                return "metadata_locks" if rows and _decode(rows[0][0]) == "YES" else None
        except ServerError:
            return None
        return None

    def _role_visibility(self, conn: Connection, grants: Sequence[str]) -> str:
        roles = granted_roles(grants)
        if not roles:
            return "own"
        for role in roles:
            try:
                rows = conn.query(f"SHOW {TAG} GRANTS FOR {role}").rows
            except ServerError:
                return "unknown"
            if visibility_from_grants(_decode(r[0]) or "" for r in rows) == "all":
                return "all"
        return "own"

    def _set_statement_timeout(self, conn: Connection, info: ServerInfo) -> None:
        seconds = self.config.mysql.statement_timeout
        self.timeout_error = None
        if seconds <= 0:
            return
        try:
            if info.flavour == "MariaDB":
                conn.query(f"SET {TAG} SESSION max_statement_time = {seconds:.3f}")
            elif info.version_tuple >= (5, 7, 8):
                conn.query(f"SET {TAG} SESSION max_execution_time = {int(seconds * 1000)}")
        except ServerError as exc:
            self.timeout_error = str(exc)

    def close_connection(self) -> None:
        """Close the connection if open; never raises."""
        conn, self._conn = self._conn, None
        self._deadline.retarget(None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close the connection and stop the deadline thread."""
        self.close_connection()
        self._deadline.close()

    def abort(self) -> None:
        """Cut the attempt in progress short (a stop signal); the sample returns a gap at once."""
        self._stopping = True
        self._deadline.abort_now()

    def sample(self, interval_s: float | None = None) -> Snapshot:
        """One snapshot now, or a gap snapshot whose ``error`` says why; never raises, never outlives its
        deadline by more than the time to tear the socket down. ``interval_s`` is the cadence the sample
        belongs to (a burst's), recorded in the line; default ``[capture] interval``."""
        self._interval = interval_s or self.config.capture.interval
        ts = datetime.now(UTC)
        started = time.perf_counter()
        self._armed_s = self.attempt_deadline
        self._deadline.arm(self._armed_s, self._conn)
        try:
            if self._conn is None:
                self.connect()
            sessions = self._fetch()
        except SourceError as exc:
            self.close_connection()
            return self._gap(ts, started, str(exc))
        except ConnectionLost as exc:
            self.close_connection()
            return self._gap(ts, started, self._lost_message("query failed", exc))
        except ServerError as exc:
            self.close_connection()
            return self._gap(ts, started, f"query failed: {exc}")
        except ConfigError as exc:
            self.close_connection()
            return self._gap(ts, started, f"configuration: {exc}")
        except Exception as exc:
            self.close_connection()
            return self._gap(ts, started, f"internal error while sampling: {type(exc).__name__}")
        finally:
            self._deadline.disarm()
        info = self.info
        assert info is not None
        extra = self._sample_extra(info)
        return Snapshot(
            ts=ts,
            instance=self.instance,
            source=SOURCE_NAMES[self.kind or "show"],
            server=info.version,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            error=None,
            sessions=sessions,
            interval_s=self._interval,
            extra=extra,
        )

    def _sample_extra(self, info: ServerInfo) -> dict[str, Any]:
        """The keys a good sample carries beside its sessions (docs/archive-format.md)."""
        extra: dict[str, Any] = {"visibility": info.visibility, "account": info.account}
        optional = {
            "source_fallback": self.fallback,
            "status": self._status,
            "replication": self._replication,
            "locks_error": self.locks_error,
            "mdl_error": self.mdl_error,
            "row_locks_error": self.row_error,
        }
        extra.update({key: value for key, value in optional.items() if value})
        if self.config.capture.locks:
            row = (
                None
                if self.locks_error or self.row_error
                else ("data_lock_waits" if info.modern else "innodb_lock_waits")
            )
            extra["lock_sources"] = {"row": row, "metadata": info.mdl_source}
            if self._edges:
                extra["locks"] = [edge.to_record() for edge in self._edges]
        return extra

    def _gap(self, ts: datetime, started: float, error: str) -> Snapshot:
        return Snapshot(
            ts=ts,
            instance=self.instance,
            source=SOURCE_NAMES[self.kind] if self.kind else None,
            server=self.info.version if self.info else None,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            error=error,
            sessions=None,
            interval_s=self._interval,
        )

    def query_name(self) -> str:
        """Which capture statement the chosen source runs (a key of :data:`QUERIES`)."""
        assert self.info is not None
        kind = self.kind
        if kind == "information_schema":
            return "is_mariadb" if self.info.flavour == "MariaDB" else "is"
        if kind == "performance_schema":
            if self.info.flavour != "MariaDB" and self.info.version_tuple >= (8, 0, 22):
                return "ps"
            return "ps_threads"
        return "show"

    def _fetch(self) -> tuple[Session, ...]:
        assert self.info is not None
        assert self._conn is not None
        self._edges = []
        try:
            result = self._conn.query(QUERIES[self.query_name()])
        except ServerError as exc:
            if self.config.capture.source != "auto" or self.kind == "show" or exc.code not in DENIED:
                raise
            self.fallback = f"{SOURCE_NAMES[self.kind or 'show']} denied ({exc}); using SHOW FULL PROCESSLIST"
            self.kind = "show"
            result = self._conn.query(QUERIES["show"])
        self._status = self._counters(self.config.capture.status) if self.config.capture.status else {}
        self._replication = self._replica_status() if self.config.capture.replication else []
        transactions = self._transactions() if self.config.capture.locks else {}
        sessions = self._sessions(result, transactions)
        if not self.config.capture.locks:
            return self._keep(sessions, transactions, set())
        self._edges = derive_edges(sessions, self._lock_inputs(sessions, transactions))
        blockers = {e.blocker for e in self._edges}
        proven: dict[int, set[int]] = {}
        for edge in self._edges:
            if edge.how != "inferred":
                proven.setdefault(edge.waiter, set()).add(edge.blocker)
        sessions = [
            s._replace(record={**s.record, "blocked_by": sorted(proven[s.id])}) if s.id in proven else s
            for s in sessions
        ]
        return self._keep(sessions, transactions, blockers)

    def _keep(
        self, sessions: Sequence[Session], transactions: dict[int, dict[str, Any]], blockers: set[int]
    ) -> tuple[Session, ...]:
        """All sessions with ``include_idle``; else running ones, open transactions and every blocker."""
        if self.config.capture.include_idle:
            return tuple(sessions)
        return tuple(s for s in sessions if s.active or s.id in transactions or s.id in blockers)

    def _sessions(self, result: Result, transactions: dict[int, dict[str, Any]]) -> list[Session]:
        assert self.info is not None
        names = list(result.columns)
        positions = {name: names.index(name) if name in names else -1 for name in _BASE_KEYS}
        extras = [(i, name) for i, name in enumerate(names) if name not in _BASE_KEYS]
        info_at = positions["info"]
        own = self.info.connection_id
        kept = []
        for row in result.rows:
            if info_at >= 0 and (row[info_at] in OWN_STATEMENTS or _is_own_dynamic_query(row[info_at])):
                continue
            session = self._to_session(positions, extras, row, transactions)
            if session.id != own:
                kept.append(session)
        return kept

    def _counters(self, names: Sequence[str]) -> dict[str, int | float]:
        """Server counters (SHOW GLOBAL STATUS, plus INNODB_METRICS on MySQL 8 for what it lacks), with
        ``Uptime`` so readers can tell a restart; {} when refused (recorded once in ``status_error``)."""
        assert self._conn is not None and self.info is not None
        if self.status_error is not None:
            return {}
        try:
            return self._read_status(["Uptime", *names])
        except ServerError as exc:
            self.status_error = str(exc)
            return {}

    def _read_status(self, names: Sequence[str]) -> dict[str, int | float]:
        """``names`` from SHOW GLOBAL STATUS, and on MySQL 8 from INNODB_METRICS what the status lacks."""
        assert self._conn is not None and self.info is not None
        values = parse_status(self._conn.query(status_query(names)).rows)
        missing = {name for name in names if name not in values}
        if self.info.modern and missing & set(INNODB_METRICS.values()):
            try:
                metrics = parse_status(self._conn.query(INNODB_METRICS_QUERY).rows)
            except ServerError:
                metrics = {}
            for source_name, value in metrics.items():
                target = INNODB_METRICS.get(source_name)
                if target in missing:
                    values[target] = value
        return values

    def read_counters(self, names: Sequence[str]) -> dict[str, int | float] | None:
        """The trigger's cheap check between samples: only ``names``, on the same connection, within the attempt
        deadline; None when not connected or when it fails (the next sample reconnects)."""
        if self._conn is None or self.info is None:
            return None
        self._deadline.arm(self.config.mysql.read_timeout, self._conn)
        try:
            return self._read_status(names)
        except (ServerError, ConnectionLost):
            self.close_connection()
            return None
        finally:
            self._deadline.disarm()

    def _replica_status(self) -> list[dict[str, Any]]:
        """Replication lag per channel when this server is a replica and the account may see it. A server that
        showed no channel is asked again only after :data:`REPLICATION_RECHECK_S` (and on every new connection):
        the statement costs the client more than the counters on a server that is no replica."""
        assert self._conn is not None and self.info is not None
        if self.replication_error is not None or time.monotonic() < self._no_channels_until:
            return []
        if self.info.flavour == "MariaDB":
            query = REPLICATION["mariadb"]
        elif self.info.version_tuple >= (8, 0, 22):
            query = REPLICATION["replica"]
        else:
            query = REPLICATION["slave"]
        try:
            result = self._conn.query(query)
        except ServerError as exc:
            self.replication_error = str(exc)
            return []
        channels = []
        for row in result.rows:
            values = dict(zip(result.columns, row, strict=False))
            lag = values.get("seconds_behind_source", values.get("seconds_behind_master"))
            channels.append(
                {
                    "channel": _decode(values.get("channel_name", values.get("connection_name"))) or "",
                    "lag_s": _number(lag),
                    "io_running": _decode(values.get("replica_io_running", values.get("slave_io_running"))),
                    "sql_running": _decode(values.get("replica_sql_running", values.get("slave_sql_running"))),
                }
            )
        self._no_channels_until = 0.0 if channels else time.monotonic() + REPLICATION_RECHECK_S
        return channels

    def innodb_status(self) -> str | None:
        """``SHOW ENGINE INNODB STATUS``, its statement texts masked and redacted like captured statements;
        None when refused or not connected."""
        if self._conn is None:
            return None
        self._deadline.arm(self.config.mysql.read_timeout, self._conn)
        try:
            rows = self._conn.query(INNODB_STATUS).rows
        except (ServerError, ConnectionLost):
            return None
        finally:
            self._deadline.disarm()
        if not rows:
            return None
        text = _decode(rows[0][-1]) or ""
        capture = self.config.capture
        return redact_innodb_status(text, capture.redact, capture.max_info_bytes)

    def _transactions(self) -> dict[int, dict[str, Any]]:
        """Open InnoDB transactions by thread id: age (s), state, rows locked.

        A refusal (missing privilege, old server) never fails the sample: it is recorded once in
        ``locks_error`` and lock capture stays off for this connection."""
        if self.locks_error is not None:
            return {}
        assert self._conn is not None
        try:
            rows = self._conn.query(TRANSACTIONS).rows
        except ServerError as exc:
            self.locks_error = str(exc)
            return {}
        found: dict[int, dict[str, Any]] = {}
        for thread_id, age, state, rows_locked in rows:
            if thread_id is not None:
                found[int(thread_id)] = {"trx_age": age, "trx_state": _decode(state), "trx_rows_locked": rows_locked}
        return found

    def _lock_inputs(self, sessions: Sequence[Session], transactions: dict[int, dict[str, Any]]) -> LockInputs:
        """Read what lock tables say, but only what this sample's waiters need (nothing when nobody waits)."""
        assert self.info is not None
        waiting = {waiting_kind(s) for s in sessions} - {None}
        row_waits: list[RowWait] = []
        if any(t.get("trx_state") == "LOCK WAIT" for t in transactions.values()):
            row_waits = self._row_waits()
        mdl: list[MdlLock] | None = None
        if waiting and self.info.mdl_source is not None:
            mdl = self._metadata_locks()
        holders: dict[str, int] = {}
        if "user" in waiting and mdl is None:
            holders = self._user_lock_holders(sessions)
        trx_age = {
            sid: float(t["trx_age"]) for sid, t in transactions.items() if isinstance(t.get("trx_age"), int | float)
        }
        return LockInputs(row_waits, mdl, self.info.mdl_source == "metadata_locks", holders, trx_age)

    def _row_waits(self) -> list[RowWait]:
        assert self._conn is not None and self.info is not None
        if self.row_error is not None:
            return []
        try:
            rows = self._conn.query(ROW_WAITS_P_S if self.info.modern else ROW_WAITS_INNODB).rows
        except ServerError as exc:
            self.row_error = str(exc)
            return []
        waits = []
        for waiter, blocker, table, mode, blocker_mode, waited in rows:
            if waiter is None or blocker is None:
                continue
            name = (_decode(table) or "").replace("`", "") or None
            waits.append(
                RowWait(int(waiter), int(blocker), name, _decode(mode), _decode(blocker_mode), _number(waited))
            )
        return waits

    def _metadata_locks(self) -> list[MdlLock] | None:
        assert self._conn is not None and self.info is not None
        try:
            if self.info.mdl_source == "metadata_locks":
                return [lock for lock in map(_mdl_p_s, self._conn.query(MDL_P_S).rows) if lock is not None]
            return [lock for lock in map(_mdl_mariadb, self._conn.query(MDL_MARIADB).rows) if lock is not None]
        except ServerError as exc:
            self.info = replace(self.info, mdl_source=None)
            self.mdl_error = str(exc)
            return None

    def _user_lock_holders(self, sessions: Sequence[Session]) -> dict[str, int]:
        """Who holds each user lock waited for (``IS_USED_LOCK``, names as hex literals)."""
        assert self._conn is not None
        names = sorted({n for s in sessions if waiting_kind(s) == "user" and (n := user_lock_name(s.info))})[:20]
        if not names:
            return {}
        calls = ", ".join(f"IS_USED_LOCK(X'{name.encode().hex()}')" for name in names)
        try:
            rows = self._conn.query(f"SELECT {TAG} {calls}").rows
        except ServerError:
            return {}
        values = rows[0] if rows else ()
        return {name: int(holder) for name, holder in zip(names, values, strict=False) if holder is not None}

    def _to_session(
        self,
        positions: dict[str, int],
        extras: list[tuple[int, str]],
        row: tuple[Any, ...],
        transactions: dict[int, dict[str, Any]],
    ) -> Session:
        """One row as a Session whose ``record`` is already its whole archive record (built once)."""

        def column(name: str) -> Any:
            at = positions[name]
            return row[at] if at >= 0 else None

        session_id = int(row[positions["id"]])
        raw_info = column("info")
        time_value = column("time")
        user, host, db = _decode(column("user")), _decode(column("host")), _decode(column("db"))
        command, state = _decode(column("command")), _decode(column("state"))
        record: dict[str, Any] = {
            "id": session_id,
            "user": user,
            "host": host,
            "db": db,
            "command": command,
            "time": int(time_value) if time_value is not None else None,
            "state": state,
            "info": None,
        }
        info = None
        time_ms = None
        if raw_info is not None:
            capture = self.config.capture
            info, info_flags = _convert_info_cached(raw_info, capture.max_info_bytes, capture.redact)
            record["info"] = info
            raw_ms = column("time_ms")
            if raw_ms is not None:
                time_ms = float(raw_ms)
                record["time_ms"] = time_ms
            record.update(info_flags)
            if self.kind == "information_schema" and isinstance(raw_info, bytes) and len(raw_info) >= IS_INFO_CAP:
                record["info_truncated"] = True
                record.setdefault("info_length", None)
            for at, name in extras:
                value = row[at]
                if value is not None:
                    record[name] = _decode(value) if isinstance(value, bytes) else value
        trx = transactions.get(session_id)
        if trx:
            record.update(trx)
        return Session(session_id, user, host, db, command, record["time"], state, info, time_ms, record)


@functools.lru_cache(maxsize=4096)
def _convert_info_cached(raw: Any, max_bytes: int, redact: str) -> tuple[str | None, tuple[tuple[str, Any], ...]]:
    """:func:`convert_info`, cached by exact statement bytes: a running statement recurs in every sample."""
    flags: dict[str, Any] = {}
    text = convert_info(raw, max_bytes, redact, flags)
    return text, tuple(flags.items())


def convert_info(raw: Any, max_bytes: int, redact: str, extra: dict[str, Any]) -> str | None:
    """Decode, mask, truncate (recording ``info_truncated``/``info_length``) and redact a statement text.

    Masking runs on the whole text before it is cut, so a secret is masked even when the keyword that marks
    the statement as secret-bearing lies beyond ``max_bytes``."""
    if raw is None:
        return None
    data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogatepass")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        extra["info_invalid_utf8"] = True
        if redact == "none":
            extra["info_base64"] = base64.b64encode(data[:max_bytes]).decode("ascii")
    if "\x00" in text:
        extra["info_has_nul"] = True
    masked = mask_secrets(text)
    if masked != text:
        extra.pop("info_base64", None)
    encoded = masked.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes or len(encoded) > max_bytes:
        extra["info_truncated"] = True
        extra["info_length"] = len(data)
        masked = encoded[:max_bytes].decode("utf-8", "ignore")
    if redact == "literals":
        return redact_literals(masked)
    if redact == "full":
        return fingerprint(masked)
    return masked


def redact_innodb_status(text: str, redact: str, max_bytes: int) -> str:
    """An InnoDB status report as stored: its statements converted like every statement text
    (:func:`convert_info`), its row dumps' values removed with ``redact``."""

    def convert(statement: str) -> str:
        return convert_info(statement.encode(), max_bytes, redact, {}) or ""

    return redact_status(text, convert, redact_rows=redact != "none")


def _is_own_dynamic_query(info: Any) -> bool:
    """True for the two statements plsnap builds per sample (counters, user-lock holders), by their shape."""
    if not isinstance(info, bytes):
        return False
    if info.startswith(b"SELECT /* plsnap */ IS_USED_LOCK("):
        return bool(_USER_LOCK_QUERY.match(info.decode("ascii", "replace")))
    if info.startswith(b"SHOW /* plsnap */ GLOBAL STATUS WHERE"):
        return bool(_STATUS_QUERY.match(info.decode("ascii", "replace")))
    return False


def status_query(names: Iterable[str]) -> str:
    """``SHOW GLOBAL STATUS`` for ``names`` (already validated: letters, digits and _)."""
    listed = ", ".join(f"'{name}'" for name in dict.fromkeys(names) if re.fullmatch(r"\w+", name))
    return f"SHOW {TAG} GLOBAL STATUS WHERE Variable_name IN ({listed})"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _mdl_mariadb(row: tuple[Any, ...]) -> MdlLock | None:
    """A METADATA_LOCK_INFO row (granted locks only) as an MdlLock."""
    thread_id, mode, lock_type, schema, table = row
    if thread_id is None:
        return None
    kind = _MDL_TYPES.get(_decode(lock_type) or "", (_decode(lock_type) or "").upper())
    schema_text, table_text = _decode(schema) or "", _decode(table) or ""
    name = f"{schema_text}.{table_text}" if kind == "TABLE" else schema_text
    return MdlLock(int(thread_id), _decode(mode) or "", name, kind, True)


def _mdl_p_s(row: tuple[Any, ...]) -> MdlLock | None:
    """A performance_schema.metadata_locks row (pending and granted) as an MdlLock."""
    thread_id, mode, object_type, schema, name, status = row
    state = _decode(status) or ""
    if thread_id is None or state not in ("GRANTED", "PENDING"):
        return None
    kind = _decode(object_type) or ""
    schema_text, name_text = _decode(schema) or "", _decode(name) or ""
    target = f"{schema_text}.{name_text}" if kind == "TABLE" else (name_text or schema_text)
    return MdlLock(int(thread_id), _decode(mode) or "", target, kind, state == "GRANTED")


def _truthy(value: Any) -> bool:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        return value.strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(value)


def _decode(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
