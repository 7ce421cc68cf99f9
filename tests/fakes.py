"""Canned servers behind plsnap's connection seam (:mod:`plsnap.connection`), for flavours that cannot run
here: MySQL 8.0 and 8.4, Percona Server 8.0, and an RDS-like managed account.

A :class:`FakeServer` answers plsnap's statements with result sets shaped as those servers document them:
``VERSION()`` and ``@@version_comment`` strings, ``@@performance_schema``, ``SHOW GRANTS`` lines, the column
lists of ``performance_schema.processlist`` / ``information_schema.PROCESSLIST`` / ``SHOW FULL PROCESSLIST``,
text columns as bytes and numbers as Python numbers (what PyMySQL returns with ``use_unicode=False``), and the
servers' error codes and messages (1227, 1142, 1045). Only the server is faked: plsnap's own code runs as is.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from plsnap.connection import Connection, ConnectionLost, ConnectParams, Result, ServerError

PROCESSLIST_COLUMNS = ("id", "user", "host", "db", "command", "time", "state", "info")
#: The first columns of MySQL 8.0.22+ SHOW REPLICA STATUS, in its documented order, and the ones plsnap reads.
REPLICA_COLUMNS = (
    "Replica_IO_State", "Source_Host", "Source_User", "Source_Port", "Connect_Retry", "Source_Log_File",
    "Read_Source_Log_Pos", "Relay_Log_File", "Relay_Log_Pos", "Relay_Source_Log_File", "Replica_IO_Running",
    "Replica_SQL_Running", "Last_Errno", "Last_Error", "Seconds_Behind_Source", "Channel_Name",
)  # fmt: skip


def denied_process() -> ServerError:
    """MySQL/MariaDB error 1227 for a statement that needs PROCESS."""
    return ServerError(1227, "Access denied; you need (at least one of) the PROCESS privilege(s) for this operation")


def denied_table(user: str, table: str) -> ServerError:
    """MySQL 8 error 1142 for a table the account may not read."""
    name, host = user.split("@", 1)
    return ServerError(1142, f"SELECT command denied to user '{name}'@'{host}' for table '{table}'")


def row(
    sid: int, user: str, host: str, db: str | None, command: str, time: int, state: str | None, info: str | None
) -> tuple[Any, ...]:
    """A processlist row as PyMySQL returns it (bytes for text)."""

    def text(value: str | None) -> bytes | None:
        return None if value is None else value.encode()

    return (sid, text(user), text(host), text(db), text(command), time, text(state), text(info))


@dataclass
class FakeServer:
    """One server: its identity, grants, sessions and refusals. ``handlers`` answer extra statements by a
    substring of their text (checked in order); ``refuse`` maps a substring to the error it raises."""

    version: str
    version_comment: str
    performance_schema: int = 1
    account: str = "plsnap@localhost"
    grants: list[str] = field(default_factory=lambda: ["GRANT PROCESS ON *.* TO `plsnap`@`localhost`"])
    sessions: list[tuple[Any, ...]] = field(default_factory=list)
    transactions: list[tuple[Any, ...]] = field(default_factory=list)
    row_waits: list[tuple[Any, ...]] = field(default_factory=list)
    metadata_locks: list[tuple[Any, ...]] = field(default_factory=list)
    mdl_instrument: str = "YES"
    user_locks: dict[str, int] = field(default_factory=dict)
    status: dict[str, int | str] = field(default_factory=lambda: {"Uptime": 1000, "Threads_running": 2})
    innodb_metrics: dict[str, int] = field(default_factory=dict)
    replicas: list[dict[str, Any]] = field(default_factory=list)
    innodb_status: str = ""
    refuse: dict[str, ServerError] = field(default_factory=dict)
    handlers: list[tuple[str, Callable[[str], Result]]] = field(default_factory=list)
    connection_id: int = 4242
    unreachable: str | None = None
    hang_on: str | None = None
    queries: list[str] = field(default_factory=list)
    connects: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def connector(self) -> Callable[[ConnectParams], Connection]:
        """The connector to give :class:`plsnap.source.Source`."""
        return lambda params: FakeConnection(self, params)

    def answer(self, sql: str) -> Result:  # noqa: PLR0911 - one answer per statement plsnap sends
        """The result set (or error) for one statement."""
        with self._lock:
            self.queries.append(sql)
        for needle, error in self.refuse.items():
            if needle in sql:
                raise error
        for needle, handler in self.handlers:
            if needle in sql:
                return handler(sql)
        if sql.startswith("SELECT /* plsnap */ VERSION()"):
            return Result(
                ("version()", "@@version_comment", "@@performance_schema", "connection_id()", "current_user()"),
                [
                    (
                        self.version.encode(),
                        self.version_comment.encode(),
                        self.performance_schema,
                        self.connection_id,
                        self.account.encode(),
                    )
                ],
            )
        if sql.startswith("SHOW /* plsnap */ GRANTS"):
            return Result((f"grants for {self.account}",), [(g.encode(),) for g in self.grants])
        if sql.startswith("SET /* plsnap */ SESSION"):
            return Result((), [])
        if "performance_schema.data_lock_waits" in sql:
            columns = ("waiter", "blocker", "object", "lock_mode", "blocking_lock_mode", "wait")
            return Result(columns, list(self.row_waits))
        if "GLOBAL STATUS WHERE Variable_name IN" in sql:
            names = re.findall(r"'(\w+)'", sql)
            rows = [(n.encode(), str(self.status[n]).encode()) for n in names if n in self.status]
            return Result(("variable_name", "value"), rows)
        if "information_schema.INNODB_METRICS" in sql:
            return Result(("name", "count"), [(k.encode(), v) for k, v in self.innodb_metrics.items()])
        if "REPLICA STATUS" in sql or "SLAVE STATUS" in sql or "SLAVES STATUS" in sql:
            columns = tuple(REPLICA_COLUMNS)
            rows = [tuple(_bytes(r.get(c)) for c in columns) for r in self.replicas]
            return Result(tuple(c.lower() for c in columns), rows)
        if "ENGINE INNODB STATUS" in sql:
            return Result(("type", "name", "status"), [(b"InnoDB", b"", self.innodb_status.encode())])
        if "INNODB_LOCK_WAITS" in sql:
            columns = ("waiter", "blocker", "lock_table", "lock_mode", "blocking_lock_mode", "wait")
            return Result(columns, list(self.row_waits))
        if "performance_schema.metadata_locks" in sql:
            columns = ("processlist_id", "lock_type", "object_type", "object_schema", "object_name", "lock_status")
            return Result(columns, [tuple(_bytes(v) for v in r) for r in self.metadata_locks])
        if "performance_schema.setup_instruments" in sql:
            return Result(("enabled",), [(self.mdl_instrument.encode(),)])
        if "information_schema.PLUGINS" in sql:
            return Result(("plugin_status",), [])
        if "IS_USED_LOCK(" in sql:
            names = [bytes.fromhex(h).decode() for h in re.findall(r"X'([0-9a-f]*)'", sql)]
            return Result(tuple(f"is_used_lock({n})" for n in names), [tuple(self.user_locks.get(n) for n in names)])
        if sql.startswith("SELECT /* plsnap */ trx_mysql_thread_id"):
            columns = ("trx_mysql_thread_id", "age", "trx_state", "trx_rows_locked")
            return Result(columns, [tuple(_bytes(v) for v in r) for r in self.transactions])
        if "PROCESSLIST" in sql.upper() or "performance_schema.threads" in sql:
            return Result(PROCESSLIST_COLUMNS, list(self.sessions))
        raise ServerError(1064, "You have an error in your SQL syntax (the fake server does not know this one)")


def _bytes(value: Any) -> Any:
    """Text as PyMySQL returns it with use_unicode=False."""
    return value.encode() if isinstance(value, str) else value


class FakeConnection:
    """A connection to a :class:`FakeServer`; :meth:`abort` unblocks a statement the server hangs on."""

    def __init__(self, server: FakeServer, params: ConnectParams) -> None:
        self.server = server
        self.params = params
        self._aborted = threading.Event()
        self._open = False

    @property
    def tls(self) -> bool:
        """The fake never negotiates TLS."""
        return False

    def open(self) -> None:
        """Connect: fails like an absent server when ``unreachable`` is set."""
        if self.server.unreachable:
            raise ConnectionLost(self.server.unreachable)
        self.server.connects += 1
        self._open = True

    def query(self, sql: str) -> Result:
        """Answer from the server, or hang (until aborted) on ``hang_on``."""
        if not self._open:
            raise ConnectionLost("not connected")
        hang = self.server.hang_on
        if hang is not None and hang in sql:
            self._aborted.wait(120)
            raise ConnectionLost("(2013) Lost connection to MySQL server during query")
        return self.server.answer(sql)

    def close(self) -> None:
        """Forget the connection."""
        self._open = False

    def abort(self) -> None:
        """Unblock a hanging statement."""
        self._aborted.set()


def mysql80(**changes: Any) -> FakeServer:
    """MySQL Community Server 8.0.36 with performance_schema on (its defaults)."""
    return FakeServer(version="8.0.36", version_comment="MySQL Community Server - GPL", **changes)


def mysql84(**changes: Any) -> FakeServer:
    """MySQL Community Server 8.4.3 LTS."""
    return FakeServer(version="8.4.3", version_comment="MySQL Community Server - GPL", **changes)


def percona80(**changes: Any) -> FakeServer:
    """Percona Server for MySQL 8.0.39-30."""
    return FakeServer(
        version="8.0.39-30",
        version_comment="Percona Server (GPL), Release 30, Revision 8ea5a9a7",
        **changes,
    )


def rds(**changes: Any) -> FakeServer:
    """An RDS-like MySQL 8.0 whose master account has no SUPER (and a plain capture account without PROCESS)."""
    defaults: dict[str, Any] = {
        "account": "plsnap@%",
        "grants": ["GRANT USAGE ON *.* TO `plsnap`@`%`"],
        "refuse": {"information_schema.INNODB_TRX": denied_process()},
    }
    defaults.update(changes)
    return FakeServer(version="8.0.35", version_comment="Source distribution", **defaults)


def sessions_of(*rows: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The rows as a list (for readability at call sites)."""
    return list(rows)


def queries_matching(server: FakeServer, needle: str) -> Sequence[str]:
    """The statements the server received that contain ``needle``."""
    return [q for q in server.queries if needle in q]
