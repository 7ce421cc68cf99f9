"""One-shot capture against a real mariadbd: what lands in the archive."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from pathlib import Path

import pymysql
import pytest

from plsnap.archive.format import encode_line, parse_line
from plsnap.config import load_config, resolve_password
from plsnap.model import Snapshot
from plsnap.source import Source
from tests.integration.harness import Sleeper, plsnap, records, write_config


@pytest.fixture
def config_path(tmp_path: Path, mariadb_running, capture_user) -> Path:
    return write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user)


def test_capture_records_running_sleep_with_time(config_path: Path, mariadb_running, tmp_path: Path) -> None:
    """A SELECT SLEEP run by another user appears verbatim with its Time, seen by a PROCESS-only user."""
    with Sleeper(mariadb_running, 4, "capture-test-1") as sleeper:
        time.sleep(2.3)
        result = plsnap("capture", "-c", str(config_path))
    assert result.returncode == 0, result.stderr
    assert sleeper.error is None
    (record,) = records(tmp_path / "archive" / "default")
    assert record["source"] == "information_schema"
    assert record["error"] is None
    (row,) = [s for s in record["sessions"] if s["info"] == sleeper.sql]
    assert row["user"] == "root"
    assert row["command"] == "Query"
    assert row["time"] == 2
    assert 2000 <= row["time_ms"] < 3500
    assert "capture-test-1" in result.stdout or "sessions" in result.stdout


def test_own_connection_is_excluded(config_path: Path, tmp_path: Path) -> None:
    """plsnap never records its own sampling connection."""
    for _ in range(2):
        assert plsnap("capture", "-c", str(config_path)).returncode == 0
    for record in records(tmp_path / "archive" / "default"):
        assert all(s["user"] != "plsnap_cap" for s in record["sessions"])


@pytest.mark.parametrize("source", ["show", "information_schema"])
def test_sources_agree_on_running_statement(source: str, mariadb_running, capture_user, tmp_path: Path) -> None:
    """SHOW FULL PROCESSLIST and information_schema both capture the statement and record their name."""
    config = load_config(
        write_config(tmp_path / "c.toml", mariadb_running, capture_user, capture={"source": source}), environ={}
    )
    src = Source(config, resolve_password(config))
    with Sleeper(mariadb_running, 3, f"src-{source}") as sleeper:
        time.sleep(1.2)
        snapshot = src.sample()
    src.close()
    assert snapshot.error is None
    assert snapshot.source == {"show": "show_full_processlist", "information_schema": "information_schema"}[source]
    assert any(s.info == sleeper.sql and s.time == 1 for s in snapshot.sessions or ())


def test_performance_schema_off_is_a_gap_not_a_crash(mariadb_running, capture_user, tmp_path: Path) -> None:
    """Forcing performance_schema on a server where it is off yields a gap with the server's error."""
    path = write_config(tmp_path / "c.toml", mariadb_running, capture_user, capture={"source": "performance_schema"})
    config = load_config(path, environ={})
    src = Source(config, resolve_password(config))
    snapshot = src.sample()
    src.close()
    assert snapshot.sessions is None
    assert snapshot.error is not None and "query failed" in snapshot.error


def test_long_statement_is_truncated_with_flag(mariadb_running, capture_user, tmp_path: Path) -> None:
    """Statements over max_info_bytes are cut, with info_truncated and the original info_length."""
    path = write_config(tmp_path / "c.toml", mariadb_running, capture_user, capture={"max_info_bytes": 100})
    config = load_config(path, environ={})
    sql = "SELECT SLEEP(3) /* " + "é" * 200 + " */"
    src = Source(config, resolve_password(config))
    with Sleeper(mariadb_running, 3, "", sql=sql):
        time.sleep(1)
        snapshot = src.sample()
    src.close()
    (row,) = [s for s in snapshot.sessions or () if (s.info or "").startswith("SELECT SLEEP(3) /* é")]
    assert row.extra["info_truncated"] is True
    assert row.extra["info_length"] == len(sql.encode())
    assert len(row.info.encode()) <= 100
    assert sql.startswith(row.info)


def test_invalid_utf8_is_kept_losslessly(mariadb_running, capture_user, tmp_path: Path) -> None:
    """Statement bytes that are not UTF-8 never break a sample: they are flagged and kept as base64."""
    config = load_config(write_config(tmp_path / "c.toml", mariadb_running, capture_user), environ={})
    raw = b"SELECT SLEEP(3) /* \xff\xfe bad */"
    sleeper_conn = mariadb_running.root_connect()
    thread = threading.Thread(target=lambda: sleeper_conn.query(raw), daemon=True)
    thread.start()
    time.sleep(1)
    src = Source(config, resolve_password(config))
    snapshot = src.sample()
    src.close()
    thread.join(10)
    sleeper_conn.close()
    assert snapshot.error is None
    (row,) = [s for s in snapshot.sessions or () if (s.info or "").startswith("SELECT SLEEP(3)")]
    if row.extra.get("info_invalid_utf8"):
        assert base64.b64decode(row.extra["info_base64"]) == raw
    else:
        assert "bad" in row.info


def test_wrong_password_is_a_gap_and_password_never_logged(mariadb_running, capture_user, tmp_path: Path) -> None:
    """Authentication failure: exit 1, a gap line recorded, and the password appears nowhere."""
    bad = tmp_path / "bad.pw"
    bad.write_text("Sup3r-Secret-Wrong-Pw")
    path = write_config(tmp_path / "c.toml", mariadb_running, capture_user, mysql={"password_file": str(bad)})
    result = plsnap("capture", "-c", str(path))
    assert result.returncode == 1
    assert "Access denied" in result.stderr
    assert "Traceback" not in result.stderr
    (record,) = records(tmp_path / "archive" / "default")
    assert record["sessions"] is None
    assert "Access denied" in record["error"]
    archive_bytes = b"".join(p.read_bytes() for p in (tmp_path / "archive").rglob("*") if p.is_file())
    for blob in (result.stdout, result.stderr, str(record)):
        assert "Sup3r-Secret-Wrong-Pw" not in blob
    assert b"Sup3r-Secret-Wrong-Pw" not in archive_bytes


def test_unreachable_server_is_one_line_error(tmp_path: Path, capture_user) -> None:
    """A server that is not there: exit 1 with one clean line, and a gap line in the archive."""
    path = tmp_path / "c.toml"
    path.write_text(
        f'[mysql]\nhost = "127.0.0.1"\nport = 1\nuser = "x"\npassword_file = "{capture_user.password_file}"\n'
        f'[archive]\ndata_dir = "{tmp_path / "archive"}"\n'
    )
    result = plsnap("capture", "-c", str(path))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "connect to 127.0.0.1:1 failed: connection refused" in result.stderr
    assert records(tmp_path / "archive" / "default")[0]["sessions"] is None


def test_lock_waits_record_the_blocker(config_path: Path, mariadb_running, tmp_path: Path) -> None:
    """A statement waiting for a row lock records blocked_by = the holder's thread id, and the idle holder its
    open transaction; `plsnap at` lists the idle holder next to the waiter."""
    mariadb_running.execute(
        "CREATE DATABASE IF NOT EXISTS locktest",
        "CREATE TABLE IF NOT EXISTS locktest.t (id INT PRIMARY KEY, n INT) ENGINE=InnoDB",
        "REPLACE INTO locktest.t VALUES (1, 0)",
    )
    holder = mariadb_running.root_connect()
    holder.autocommit(False)
    with holder.cursor() as cur:
        cur.execute("UPDATE locktest.t SET n = n + 1 WHERE id = 1")
        cur.execute("SELECT CONNECTION_ID()")
        (holder_id,) = cur.fetchone()
    waiter = Sleeper(mariadb_running, 0, "", sql="UPDATE locktest.t SET n = n + 2 WHERE id = 1")
    with waiter:
        time.sleep(1.5)
        result = plsnap("capture", "-c", str(config_path))
        holder.commit()
    holder.close()
    assert result.returncode == 0, result.stderr
    (record,) = records(tmp_path / "archive" / "default")
    rows = {s["id"]: s for s in record["sessions"]}
    (waiting,) = [s for s in rows.values() if s["info"] == waiter.sql]
    assert waiting["blocked_by"] == [holder_id]
    assert rows[holder_id]["command"] == "Sleep"
    assert rows[holder_id]["trx_state"] == "RUNNING"
    at = plsnap("at", record["ts"], "-c", str(config_path), "--format", "json")
    listed = {s["id"]: s for s in json.loads(at.stdout)["sessions"]}
    assert holder_id in listed
    assert listed[waiting["id"]]["blocked_by"] == [holder_id]


def test_ed25519_account_can_capture(mariadb_running) -> None:
    """A MariaDB account using the ed25519 auth plugin can sample (PyNaCl comes with plsnap)."""
    with contextlib.suppress(pymysql.MySQLError):
        mariadb_running.execute("INSTALL SONAME 'auth_ed25519'")
    mariadb_running.execute(
        "CREATE OR REPLACE USER 'plsnap_ed'@'localhost' IDENTIFIED VIA ed25519 USING PASSWORD('ed-Pw-1')",
        "GRANT PROCESS ON *.* TO 'plsnap_ed'@'localhost'",
    )
    config = load_config(
        None, environ={"PLSNAP_MYSQL_SOCKET": str(mariadb_running.socket), "PLSNAP_MYSQL_USER": "plsnap_ed"}
    )
    source = Source(config, "ed-Pw-1")
    try:
        snapshot = source.sample()
    finally:
        source.close()
        mariadb_running.execute("DROP USER IF EXISTS 'plsnap_ed'@'localhost'")
    assert snapshot.error is None


@pytest.mark.parametrize("source", ["information_schema", "show"])
def test_captured_records_hold_only_json_values(source: str, mariadb_running, capture_user, tmp_path: Path) -> None:
    """What capture builds (sessions, a lock wait with its holder's open transaction, counters) is plain JSON:
    parsing its line gives back the same record, so the rollup keeper, which reads the record instead of parsing
    the line again, sees what every reader of the archive sees."""
    mariadb_running.execute(
        "CREATE DATABASE IF NOT EXISTS locktest",
        "CREATE TABLE IF NOT EXISTS locktest.j (id INT PRIMARY KEY, n INT) ENGINE=InnoDB",
        "REPLACE INTO locktest.j VALUES (1, 0)",
    )
    config = load_config(
        write_config(tmp_path / "c.toml", mariadb_running, capture_user, capture={"source": source}), environ={}
    )
    holder = mariadb_running.root_connect()
    holder.autocommit(False)
    with holder.cursor() as cur:
        cur.execute("UPDATE locktest.j SET n = n + 1 WHERE id = 1")
    src = Source(config, resolve_password(config))
    try:
        with Sleeper(mariadb_running, 0, "", sql="UPDATE locktest.j SET n = n + 2 WHERE id = 1"):
            time.sleep(1.2)
            snapshot = src.sample()
            holder.commit()
    finally:
        src.close()
        holder.close()
    assert snapshot.error is None and snapshot.extra.get("locks"), snapshot.extra
    record = snapshot.to_record()
    parsed = parse_line(encode_line(record))
    assert parsed == record
    assert Snapshot.from_record(record, include_idle=False) == Snapshot.from_record(parsed, include_idle=False)
