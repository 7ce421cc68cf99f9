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
from dataclasses import dataclass
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
from plsnap.errors import ConfigError, SourceError
from plsnap.fingerprint import fingerprint
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
MARIADB_IS_COLUMNS = (
    "ID, USER, HOST, DB, COMMAND, TIME, STATE, INFO_BINARY AS INFO, TIME_MS, STAGE, MAX_STAGE, PROGRESS, "
    "MEMORY_USED, EXAMINED_ROWS"
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
    "is_mariadb": f"SELECT {TAG} {MARIADB_IS_COLUMNS} FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()",  # noqa: S608
    "is": f"SELECT {TAG} {BASE_COLUMNS} FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()",  # noqa: S608
    "ps": f"SELECT {TAG} {BASE_COLUMNS} FROM performance_schema.processlist WHERE ID <> CONNECTION_ID()",  # noqa: S608
    "ps_threads": (
        f"SELECT {TAG} {P_S_THREADS_COLUMNS} FROM performance_schema.threads "  # noqa: S608
        "WHERE PROCESSLIST_ID IS NOT NULL AND PROCESSLIST_ID <> CONNECTION_ID()"
    ),
}
_LOCKS_SELECT = (
    f"SELECT {TAG} t.trx_mysql_thread_id, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), t.trx_state, "  # noqa: S608
    "t.trx_rows_locked, GROUP_CONCAT(DISTINCT b.trx_mysql_thread_id) FROM information_schema.INNODB_TRX t "
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
#: The whole texts of plsnap's own capture statements (as the processlist shows them).
OWN_STATEMENTS = frozenset(text.encode() for text in (*QUERIES.values(), LOCKS_INNODB, LOCKS_P_S, PROBE, SHOW_GRANTS))

#: MariaDB's information_schema.PROCESSLIST cuts statement text at this many bytes (INFO and INFO_BINARY alike);
#: INFO is also utf8mb3 there (4-byte characters become "?"), so plsnap reads INFO_BINARY instead.
IS_INFO_CAP = 65535
#: Columns that say nothing about a session without a statement but change at every sample (they would cost
#: compression): omitted on idle rows.
_IDLE_NOISE = frozenset({"time_ms", "stage", "max_stage", "progress", "examined_rows", "memory_used"})
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
        self.info: ServerInfo | None = None
        self.kind: str | None = None
        self.locks_error: str | None = None
        self.timeout_error: str | None = None
        self.fallback: str | None = None

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
        params = connect_params(self.config, self._password)
        conn = self._connector(params)
        self._conn = conn
        self._deadline.retarget(conn)
        try:
            conn.open()
            info = self._probe(conn)
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
        return info

    def _lost_message(self, what: str, exc: ConnectionLost) -> str:
        if self._deadline.fired and not self._stopping:
            return f"{what}: the attempt passed its deadline of {self.attempt_deadline:g}s and was cut off"
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

    def sample(self) -> Snapshot:
        """One snapshot now, or a gap snapshot whose ``error`` says why; never raises, never outlives its
        deadline by more than the time to tear the socket down."""
        ts = datetime.now(UTC)
        started = time.perf_counter()
        self._deadline.arm(self.attempt_deadline, self._conn)
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
        extra: dict[str, Any] = {"visibility": info.visibility, "account": info.account}
        if self.fallback:
            extra["source_fallback"] = self.fallback
        if self.locks_error:
            extra["locks_error"] = self.locks_error
        return Snapshot(
            ts=ts,
            instance=self.instance,
            source=SOURCE_NAMES[self.kind or "show"],
            server=info.version,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            error=None,
            sessions=sessions,
            interval_s=self.config.capture.interval,
            extra=extra,
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
        try:
            result = self._conn.query(QUERIES[self.query_name()])
        except ServerError as exc:
            if self.config.capture.source != "auto" or self.kind == "show" or exc.code not in DENIED:
                raise
            self.fallback = f"{SOURCE_NAMES[self.kind or 'show']} denied ({exc}); using SHOW FULL PROCESSLIST"
            self.kind = "show"
            result = self._conn.query(QUERIES["show"])
        transactions = self._transactions() if self.config.capture.locks else {}
        return self._sessions(result, transactions)

    def _sessions(self, result: Result, transactions: dict[int, dict[str, Any]]) -> tuple[Session, ...]:
        assert self.info is not None
        names = list(result.columns)
        try:
            info_at = names.index("info")
        except ValueError:
            info_at = -1
        own = self.info.connection_id
        keep_idle = self.config.capture.include_idle
        kept = []
        for row in result.rows:
            if info_at >= 0 and row[info_at] in OWN_STATEMENTS:
                continue
            session = self._to_session(names, row, transactions)
            if session.id == own:
                continue
            if keep_idle or session.active or session.id in transactions:
                kept.append(session)
        return tuple(kept)

    def _transactions(self) -> dict[int, dict[str, Any]]:
        """Open InnoDB transactions by thread id: age (s), state, rows locked, and the threads blocking them.

        A refusal (missing privilege, old server) never fails the sample: it is recorded once in
        ``locks_error`` and lock capture stays off for this connection."""
        if self.locks_error is not None:
            return {}
        assert self.info is not None
        assert self._conn is not None
        modern = self.info.flavour != "MariaDB" and self.info.version_tuple >= (8, 0, 0)
        try:
            rows = self._conn.query(LOCKS_P_S if modern else LOCKS_INNODB).rows
        except ServerError as exc:
            self.locks_error = str(exc)
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
        session_id = int(values["id"])
        extra: dict[str, Any] = dict(transactions.get(session_id, ()))
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
            id=session_id,
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
