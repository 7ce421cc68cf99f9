"""The capture paths of every server flavour, through the connection seam with canned result sets shaped as
MySQL 8.0, MySQL 8.4, Percona Server and an RDS-like account document them (tests/fakes.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from plsnap.config import Config, load_config
from plsnap.connection import Result, ServerError
from plsnap.source import QUERIES, ROW_WAITS_INNODB, ROW_WAITS_P_S, TRANSACTIONS, Source
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
    server.transactions = [(11, 3, "LOCK WAIT", 2), (12, 60, "RUNNING", 5)]
    server.row_waits = [(11, 12, b"shop.orders", b"X,REC_NOT_GAP", b"X,REC_NOT_GAP", 3)]
    snapshot, source = sample(tmp_path, server, mysql={"statement_timeout": "2s"})
    assert source.info is not None and source.info.flavour == flavour
    assert snapshot.source == "performance_schema"
    assert queries_matching(server, "FROM performance_schema.processlist") == [QUERIES["ps"]]
    assert queries_matching(server, "max_execution_time") == ["SET /* plsnap */ SESSION max_execution_time = 2000"]
    assert queries_matching(server, "data_lock_waits") == [ROW_WAITS_P_S]
    by_id = {s.id: s for s in snapshot.sessions or ()}
    assert by_id[11].blocked_by == [12] and by_id[11].record["trx_state"] == "LOCK WAIT"
    (edge,) = snapshot.extra["locks"]
    assert edge == {"waiter": 11, "blocker": 12, "kind": "row", "how": "lock_table", "object": "shop.orders",
                    "mode": "X,REC_NOT_GAP", "blocker_mode": "X,REC_NOT_GAP", "wait_s": 3.0}  # fmt: skip
    assert snapshot.extra["lock_sources"] == {"row": "data_lock_waits", "metadata": "metadata_locks"}
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
    server.transactions = [(11, 3, "LOCK WAIT", 2)]
    snapshot, _ = sample(tmp_path, server)
    assert snapshot.source == "show_full_processlist"
    assert queries_matching(server, "INNODB_LOCK_WAITS") == [ROW_WAITS_INNODB]


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
    other_locks = row(31, "plsnap", "10.0.0.9:4000", None, "Query", 0, "executing", TRANSACTIONS)
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
        server.hang_on = "FROM performance_schema.processlist"
        again = source.sample()
        assert "passed its deadline of 1s" in (again.error or ""), "connected: the read timeout alone"
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


def test_mysql8_metadata_lock_pileup_from_metadata_locks(tmp_path: Path) -> None:
    """MySQL 8.4 performance_schema.metadata_locks (GRANTED and PENDING, mapped to processlist ids through
    threads): the ALTER waits on the idle holder, the SELECTs queued behind the ALTER wait on it, a GET_LOCK
    waiter on the lock's holder; every edge is proven by the lock table."""
    server = mysql84(
        sessions=[
            row(20, "app", "10.0.0.5:5200", "shop", "Sleep", 95, "", None),
            row(
                21,
                "dba",
                "10.0.0.9:5201",
                "shop",
                "Query",
                40,
                "Waiting for table metadata lock",
                "ALTER TABLE orders ADD COLUMN note TEXT",
            ),
            row(
                22,
                "app",
                "10.0.0.5:5202",
                "shop",
                "Query",
                30,
                "Waiting for table metadata lock",
                "SELECT * FROM orders WHERE id = 7",
            ),
            row(
                23,
                "app",
                "10.0.0.5:5203",
                "shop",
                "Query",
                12,
                "Waiting for table metadata lock",
                "SELECT COUNT(*) FROM orders",
            ),
            row(24, "job", "10.0.0.7:5204", None, "Sleep", 300, "", None),
            row(25, "job", "10.0.0.7:5205", None, "Query", 8, "User lock", "SELECT GET_LOCK('nightly', 60)"),
        ],
        transactions=[(20, 100, "RUNNING", 0)],
        metadata_locks=[
            (20, "SHARED_READ", "TABLE", "shop", "orders", "GRANTED"),
            (21, "SHARED_UPGRADABLE", "TABLE", "shop", "orders", "GRANTED"),
            (21, "EXCLUSIVE", "TABLE", "shop", "orders", "PENDING"),
            (22, "SHARED_READ", "TABLE", "shop", "orders", "PENDING"),
            (23, "SHARED_READ", "TABLE", "shop", "orders", "PENDING"),
            (24, "EXCLUSIVE", "USER LEVEL LOCK", None, "nightly", "GRANTED"),
            (25, "EXCLUSIVE", "USER LEVEL LOCK", None, "nightly", "PENDING"),
        ],
    )
    snapshot, _ = sample(tmp_path, server, capture={"include_idle": False})
    edges = {(e["waiter"], e["blocker"]): e for e in snapshot.extra["locks"]}
    assert set(edges) == {(21, 20), (22, 21), (23, 21), (25, 24)}
    assert all(e["how"] == "lock_table" for e in edges.values())
    assert edges[(21, 20)]["kind"] == "metadata" and edges[(21, 20)]["object"] == "shop.orders"
    assert edges[(21, 20)]["mode"] == "EXCLUSIVE" and edges[(21, 20)]["blocker_mode"] == "SHARED_READ"
    assert edges[(22, 21)]["blocker_mode"] == "EXCLUSIVE (pending)"
    assert edges[(25, 24)]["kind"] == "user" and edges[(25, 24)]["object"] == "nightly"
    assert {s.id for s in snapshot.sessions or ()} >= {20, 24}, "idle root blockers are kept"
    assert not queries_matching(server, "IS_USED_LOCK")


def test_mdl_waits_without_a_lock_source_are_inferred(tmp_path: Path) -> None:
    """With the metadata-lock instrument off, the ALTER's suspects are the sessions whose transaction began
    before its wait (inferred, never proven); the SELECT queued behind the ALTER is derived from the queue."""
    server = mysql80(
        mdl_instrument="NO",
        sessions=[
            row(30, "app", "h:1", "shop", "Sleep", 95, "", None),
            row(31, "app", "h:2", "shop", "Sleep", 5, "", None),
            row(32, "dba", "h:3", "shop", "Query", 40, "Waiting for table metadata lock", "ALTER TABLE t ADD c INT"),
            row(33, "app", "h:4", "shop", "Query", 10, "Waiting for table metadata lock", "SELECT * FROM t"),
        ],
        transactions=[(30, 100, "RUNNING", 0), (31, 6, "RUNNING", 0)],
    )
    snapshot, _ = sample(tmp_path, server)
    edges = {(e["waiter"], e["blocker"]): e["how"] for e in snapshot.extra["locks"]}
    assert edges == {(32, 30): "inferred", (33, 32): "derived"}
    assert snapshot.extra["lock_sources"]["metadata"] is None
    assert {s.id: s.blocked_by for s in snapshot.sessions or ()}[32] == []


def test_user_lock_holder_from_is_used_lock(tmp_path: Path) -> None:
    """Without a metadata-lock source, the holder of a GET_LOCK is asked of the server (IS_USED_LOCK)."""
    server = FakeServer(
        version="10.6.21-MariaDB",
        version_comment="mariadb.org binary distribution",
        sessions=[
            row(40, "job", "h:1", None, "Sleep", 50, "", None),
            row(41, "job", "h:2", None, "Query", 3, "User lock", "SELECT GET_LOCK('it''s', 10)"),
        ],
        user_locks={"it's": 40},
    )
    snapshot, _ = sample(tmp_path, server, capture={"include_idle": False})
    assert snapshot.extra["locks"] == [
        {"waiter": 41, "blocker": 40, "kind": "user", "how": "lock_table", "object": "it's", "wait_s": 3.0}
    ]
    assert {s.id for s in snapshot.sessions or ()} == {40, 41}


def test_counters_with_mysql8_names(tmp_path: Path) -> None:
    """Counters come from SHOW GLOBAL STATUS (with Uptime); on MySQL 8 the history list length and deadlocks
    come from INNODB_METRICS under MariaDB's names; replication lag from SHOW REPLICA STATUS."""
    server = mysql84(
        status={"Uptime": 5000, "Threads_running": 7, "Questions": 123456, "Com_select": "99", "Slow_queries": 3},
        innodb_metrics={"trx_rseg_history_len": 812, "lock_deadlocks": 4},
        replicas=[
            {
                "Channel_Name": "",
                "Seconds_Behind_Source": 12,
                "Replica_IO_Running": "Yes",
                "Replica_SQL_Running": "Yes",
                "Source_Host": "primary",
            }
        ],
    )
    snapshot, _ = sample(tmp_path, server)
    status = snapshot.extra["status"]
    assert status["Uptime"] == 5000 and status["Threads_running"] == 7 and status["Com_select"] == 99
    assert status["Innodb_history_list_length"] == 812 and status["Innodb_deadlocks"] == 4
    assert snapshot.extra["replication"] == [{"channel": "", "lag_s": 12.0, "io_running": "Yes", "sql_running": "Yes"}]
    assert queries_matching(server, "SHOW /* plsnap */ REPLICA STATUS")


def test_the_check_between_samples_reads_mysql8_s_innodb_metrics_too(tmp_path: Path) -> None:
    """The trigger's cheap check finds Innodb_deadlocks where the samples find it on MySQL 8 (INNODB_METRICS),
    so that a rate condition on it can fire between samples."""
    server = mysql84(status={"Uptime": 5000, "Threads_running": 7}, innodb_metrics={"lock_deadlocks": 4})
    source = Source(config(tmp_path), "pw", connector=server.connector())
    try:
        source.sample()
        assert source.read_counters(["Threads_running", "Innodb_deadlocks"]) == {
            "Threads_running": 7,
            "Innodb_deadlocks": 4,
        }
    finally:
        source.close()


def test_counters_can_be_chosen_and_refused_politely(tmp_path: Path) -> None:
    """[capture] status picks the variables; a refused replication status is not retried on the connection."""
    server = mysql80(
        status={"Uptime": 9, "Questions": 5, "Threads_running": 1},
        refuse={
            "REPLICA STATUS": ServerError(
                1227, "Access denied; you need (at least one of) the REPLICATION CLIENT privilege(s)"
            )
        },
    )
    source = Source(config(tmp_path, capture={"status": ["Questions"]}), "pw", connector=server.connector())
    try:
        first, second = source.sample(), source.sample()
    finally:
        source.close()
    assert first.extra["status"] == {"Uptime": 9, "Questions": 5}
    assert "replication" not in second.extra
    assert len(queries_matching(server, "REPLICA STATUS")) == 1
    assert source.replication_error is not None and "1227" in source.replication_error
    source = Source(config(tmp_path, capture={"status": ["Questions"]}), "pw", connector=server.connector())
    try:
        source.sample()
        source.close_connection()
        source.sample()
    finally:
        source.close()
    assert len(queries_matching(server, "REPLICA STATUS")) == 3, "a new connection (maybe another server) asks again"


def test_missing_socket_is_a_gap_naming_the_socket(tmp_path: Path) -> None:
    """A socket path where no server listens (the production PyMySQL connector, no server needed): the gap
    line names the socket, which is the fact that fixes it."""
    missing = tmp_path / "no-such-dir" / "mysqld.sock"
    source = Source(config(tmp_path, mysql={"host": "", "socket": str(missing)}), None)
    try:
        snapshot = source.sample()
    finally:
        source.close()
    assert snapshot.is_gap
    assert snapshot.error == f"connect to socket {missing} failed: no such file or directory"


def test_a_server_without_replication_channels_is_asked_again_only_after_a_while(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No channel: SHOW REPLICA STATUS once per connection until REPLICATION_RECHECK_S has passed (a new
    connection asks again, it may be another server); a replica is asked on every sample."""
    import plsnap.source

    plain = mysql80(status={"Uptime": 9, "Questions": 5})
    source = Source(config(tmp_path), "pw", connector=plain.connector())
    try:
        for _ in range(3):
            assert "replication" not in source.sample().extra
        assert len(queries_matching(plain, "REPLICA STATUS")) == 1
        monkeypatch.setattr(plsnap.source, "REPLICATION_RECHECK_S", 0.0)
        source.sample()
        assert len(queries_matching(plain, "REPLICA STATUS")) == 1, "still inside the 300 s set before"
        source.close_connection()
        source.sample()
        assert len(queries_matching(plain, "REPLICA STATUS")) == 2, "a new connection asks again"
        source.sample()
        assert len(queries_matching(plain, "REPLICA STATUS")) == 3, "the recheck time has passed"
    finally:
        source.close()
    channel = {
        "Channel_Name": "",
        "Seconds_Behind_Source": 3,
        "Replica_IO_Running": "Yes",
        "Replica_SQL_Running": "Yes",
    }
    replica = mysql80(status={"Uptime": 9}, replicas=[channel])
    monkeypatch.setattr(plsnap.source, "REPLICATION_RECHECK_S", 300.0)
    source = Source(config(tmp_path), "pw", connector=replica.connector())
    try:
        lags = [source.sample().extra["replication"][0]["lag_s"] for _ in range(3)]
    finally:
        source.close()
    assert lags == [3.0, 3.0, 3.0]
    assert len(queries_matching(replica, "REPLICA STATUS")) == 3
