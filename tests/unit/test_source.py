"""The capture paths of every server flavour, through the connection seam with canned result sets shaped as
MySQL 8.0, MySQL 8.4, Percona Server and an RDS-like account document them (tests/fakes.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from plsnap.config import Config, load_config
from plsnap.connection import Result, ServerError
from plsnap.source import LOCKS_INNODB, LOCKS_P_S, QUERIES, Source
from tests.fakes import FakeServer, denied_table, mysql80, mysql84, percona80, queries_matching, rds, row


def config(tmp_path: Path, **sections: dict[str, Any]) -> Config:
    """A config that reaches db.example over TCP and reads an empty option file (never ~/.my.cnf)."""
    option_file = tmp_path / "empty.cnf"
    option_file.write_text("[client]\n")
    values: dict[str, dict[str, Any]] = {
        "mysql": {"host": "db.example", "user": "plsnap", "defaults_file": str(option_file), "ssl_mode": "disabled",
                  "connect_timeout": "1s", "read_timeout": "1s"},
        "capture": {"interval": "5s"},
    }  # fmt: skip
    for section, extra in sections.items():
        values.setdefault(section, {}).update(extra)
    return load_config(None, environ={}, overrides=values)


def sample(tmp_path: Path, server: FakeServer, **sections: dict[str, Any]) -> tuple[Any, Source]:
    source = Source(config(tmp_path, **sections), "pw", connector=server.connector())
    try:
        return source.sample(), source
    finally:
        source.close()


ACTIVE = row(11, "app", "10.0.0.5:5100", "shop", "Query", 7, "executing", "SELECT * FROM orders")
IDLE = row(12, "app", "10.0.0.5:5101", "shop", "Sleep", 40, "", None)


@pytest.mark.parametrize(
    ("server", "flavour"),
    [(mysql80(), "MySQL"), (mysql84(), "MySQL"), (percona80(), "Percona")],
    ids=["mysql-8.0", "mysql-8.4", "percona-8.0"],
)
def test_mysql8_auto_source_is_performance_schema(tmp_path: Path, server: FakeServer, flavour: str) -> None:
    """MySQL 8.0.22+ and Percona with performance_schema on read performance_schema.processlist, set
    max_execution_time in milliseconds, read lock waits from data_lock_waits, and record all of it."""
    server.sessions = [ACTIVE, IDLE]
    server.transactions = [(11, 3, b"LOCK WAIT", 2, b"12"), (12, 60, b"RUNNING", 5, None)]
    snapshot, source = sample(tmp_path, server, mysql={"statement_timeout": "2s"})
    assert source.info is not None and source.info.flavour == flavour
    assert snapshot.source == "performance_schema"
    assert queries_matching(server, "FROM performance_schema.processlist") == [QUERIES["ps"]]
    assert queries_matching(server, "max_execution_time") == ["SET /* plsnap */ SESSION max_execution_time = 2000"]
    assert queries_matching(server, "data_lock_waits") == [LOCKS_P_S]
    by_id = {s.id: s for s in snapshot.sessions or ()}
    assert by_id[11].blocked_by == [12] and by_id[11].record["trx_state"] == "LOCK WAIT"
    assert by_id[12].record["trx_age"] == 60
    assert snapshot.visibility == "all" and snapshot.extra["account"] == "plsnap@localhost"


def test_mysql8_with_performance_schema_off_uses_show(tmp_path: Path) -> None:
    """With @@performance_schema = 0, auto falls back to SHOW FULL PROCESSLIST."""
    server = mysql80(performance_schema=0, sessions=[ACTIVE])
    snapshot, _ = sample(tmp_path, server)
    assert snapshot.source == "show_full_processlist"
    assert queries_matching(server, "FULL PROCESSLIST") == [QUERIES["show"]]


def test_old_mysql_uses_show(tmp_path: Path) -> None:
    """MySQL 5.7 (no performance_schema.processlist) is read with SHOW FULL PROCESSLIST and InnoDB lock tables."""
    server = FakeServer(version="5.7.44-log", version_comment="MySQL Community Server (GPL)", sessions=[ACTIVE])
    snapshot, _ = sample(tmp_path, server)
    assert snapshot.source == "show_full_processlist"
    assert queries_matching(server, "INNODB_LOCK_WAITS") == [LOCKS_INNODB]


def test_rds_account_without_process_degrades_and_says_so(tmp_path: Path) -> None:
    """An account without PROCESS (RDS-like, no SUPER either): the sample still works, every line records
    that only the account's own sessions were visible, and the refused lock query (1227) is recorded."""
    server = rds(sessions=[row(20, "plsnap", "10.1.1.1:3000", None, "Sleep", 1, "", None)])
    snapshot, source = sample(tmp_path, server)
    assert not snapshot.is_gap
    assert snapshot.visibility == "own"
    assert snapshot.extra["locks_error"].startswith("(1227) Access denied")
    assert source.timeout_error is None


def test_denied_performance_schema_falls_back_to_show(tmp_path: Path) -> None:
    """When the account may not read performance_schema.processlist (1142), auto falls back to SHOW FULL
    PROCESSLIST for this connection and every line says why."""
    server = mysql84(
        sessions=[ACTIVE],
        refuse={"FROM performance_schema.processlist": denied_table("plsnap@localhost", "processlist")},
    )
    snapshot, _ = sample(tmp_path, server)
    assert snapshot.source == "show_full_processlist"
    assert "(1142) SELECT command denied" in snapshot.extra["source_fallback"]


def test_explicit_source_is_not_second_guessed(tmp_path: Path) -> None:
    """source = performance_schema that the server refuses is a failed sample (a gap), not a silent switch."""
    server = mysql80(refuse={"FROM performance_schema.processlist": denied_table("plsnap@localhost", "processlist")})
    snapshot, _ = sample(tmp_path, server, capture={"source": "performance_schema"})
    assert snapshot.is_gap
    assert "(1142)" in (snapshot.error or "")


def test_capture_statements_of_other_plsnap_instances_are_left_out(tmp_path: Path) -> None:
    """A row running one of plsnap's own capture statements (another instance watching the same server) is not
    recorded; a client that merely copies the tag in another statement is."""
    other = row(30, "plsnap", "10.0.0.9:4000", None, "Query", 0, "executing", QUERIES["ps"])
    other_locks = row(31, "plsnap", "10.0.0.9:4000", None, "Query", 0, "executing", LOCKS_P_S)
    sneaky = row(32, "app", "10.0.0.5:5102", None, "Query", 9, "executing", "/* plsnap */ SELECT SLEEP(9)")
    server = mysql80(sessions=[ACTIVE, other, other_locks, sneaky])
    snapshot, _ = sample(tmp_path, server)
    assert sorted(s.id for s in snapshot.sessions or ()) == [11, 32]


def test_hung_statement_ends_at_the_attempt_deadline(tmp_path: Path) -> None:
    """A server that never answers the processlist query: the attempt is cut at its hard deadline (connect +
    read timeout), returns a gap saying so, and the next attempt reconnects."""
    server = mysql80(sessions=[ACTIVE], hang_on="FROM performance_schema.processlist")
    source = Source(config(tmp_path), "pw", connector=server.connector())
    try:
        began = time.monotonic()
        snapshot = source.sample()
        took = time.monotonic() - began
        assert snapshot.is_gap
        assert "passed its deadline of 2s" in (snapshot.error or "")
        assert took < 10, took
        server.hang_on = None
        assert not source.sample().is_gap
        assert server.connects == 2
    finally:
        source.close()


def test_unreachable_server_is_a_gap_naming_the_address(tmp_path: Path) -> None:
    """A refused connection is a gap line whose error names where plsnap tried to connect."""
    server = mysql80(unreachable="connection refused")
    snapshot, _ = sample(tmp_path, server)
    assert snapshot.is_gap
    assert snapshot.error == "connect to db.example:3306 failed: connection refused"


def test_access_denied_is_a_gap_without_the_password(tmp_path: Path) -> None:
    """An authentication failure is a one-line gap; the password is not in it."""
    denied = ServerError(1045, "Access denied for user 'plsnap'@'10.0.0.1' (using password: YES)")
    server = mysql80(refuse={"VERSION()": denied})
    snapshot, _ = sample(tmp_path, server)
    assert snapshot.is_gap
    assert "(1045) Access denied" in (snapshot.error or "")
    assert "'pw'" not in (snapshot.error or "")


def test_grants_through_a_role_count(tmp_path: Path) -> None:
    """PROCESS granted through a role (MariaDB and MySQL 8 roles) counts as seeing every session."""
    server = mysql80(
        grants=["GRANT USAGE ON *.* TO `plsnap`@`localhost`", "GRANT `monitor`@`%` TO `plsnap`@`localhost`"]
    )
    role_grants = Result(("grants",), [(b"GRANT PROCESS ON *.* TO `monitor`@`%`",)])
    server.handlers.append(("GRANTS FOR", lambda sql: role_grants))
    snapshot, _ = sample(tmp_path, server)
    assert snapshot.visibility == "all"
