"""Against the real server: secrets in statements, in a broken option file, and an account that cannot see
every session. Nothing leaks, nothing is hidden."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.devserver import DevServer, free_port
from tests.faults.tools import log_events
from tests.integration.harness import Sleeper, daemon, plsnap, records, wait_for, wait_for_records, write_config
from tests.integration.test_security import archive_text

SECRET = "Planted-Secret-7x"

BLOCKED = [
    pytest.param("", "mysql.global_priv", f"CREATE USER 'v1'@'%' IDENTIFIED BY '{SECRET}'", id="create-user"),
    pytest.param(
        "NO_BACKSLASH_ESCAPES",
        "mysql.global_priv",
        f"CREATE USER 'v2'@'%' IDENTIFIED BY 'x\\', 'v3'@'%' IDENTIFIED BY '{SECRET}'",
        id="multi-user-no-backslash-escapes",
    ),
    pytest.param(
        "ANSI_QUOTES",
        "mysql.global_priv",
        f"ALTER USER 'v4'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{SECRET}')",
        id="ed25519-ansi-quotes",
    ),
    pytest.param(
        "",
        "mysql.servers",
        f"CREATE SERVER s1 FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'h', USER 'u', PASSWORD '{SECRET}')",
        id="create-server",
    ),
    pytest.param(
        "",
        "mysql.global_priv",
        f"EXECUTE IMMEDIATE 'CREATE USER ''v5''@''%'' IDENTIFIED BY ''{SECRET}'''",
        id="execute-immediate",
    ),
]


@pytest.mark.parametrize(("sql_mode", "table", "statement"), BLOCKED)
def test_blocked_secret_statements_are_masked(
    tmp_path: Path, mariadb_running: DevServer, capture_user, sql_mode: str, table: str, statement: str
) -> None:
    """A statement carrying a password, caught while it waits on a table lock (so the processlist shows it),
    is stored masked whatever the session's sql_mode."""
    cfg = write_config(tmp_path / "c.toml", mariadb_running, capture_user)
    locker = mariadb_running.root_connect()
    runner = mariadb_running.root_connect()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with runner.cursor() as cur:
                cur.execute(f"SET SESSION sql_mode = '{sql_mode}'")
                cur.execute(statement.replace("%", "%%"))
        except Exception as exc:
            errors.append(exc)

    try:
        with locker.cursor() as cur:
            cur.execute(f"LOCK TABLES {table} WRITE")
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        time.sleep(1.0)
        result = plsnap("capture", "-c", str(cfg))
    finally:
        with locker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        locker.close()
        thread.join(10)
        runner.close()
        mariadb_running.execute(
            "DROP USER IF EXISTS 'v1'@'%', 'v2'@'%', 'v3'@'%', 'v4'@'%', 'v5'@'%'", "DROP SERVER IF EXISTS s1"
        )
    assert result.returncode == 0, result.stderr
    (record,) = records(tmp_path / "archive" / "default")
    infos = [s["info"] or "" for s in record["sessions"]]
    assert any("<secret>" in info for info in infos), infos
    assert SECRET not in archive_text(tmp_path / "archive")


def test_broken_option_file_never_shows_the_password(tmp_path: Path, mariadb_running: DevServer, capture_user) -> None:
    """An option file with password= above [client]: plsnap capture and check fail with one line naming the
    file and the line number, not its content; a daemon whose option file breaks while it runs records gap
    lines for every tick and never prints the password."""
    option_file = tmp_path / "my.cnf"
    option_file.write_text(f"[client]\nuser={capture_user.name}\npassword={capture_user.password}\n")
    option_file.chmod(0o600)
    cfg = write_config(tmp_path / "c.toml", mariadb_running, capture_user,
                       mysql={"password_file": "", "user": "", "defaults_file": str(option_file)})  # fmt: skip
    root = tmp_path / "archive" / "default"
    with daemon(cfg) as proc:
        wait_for_records(root, 2, error=None)
        option_file.write_text(f"password={SECRET}\n[client]\nuser={capture_user.name}\n")
        kill_sessions_of(mariadb_running, capture_user.name)
        wait_for(lambda: sum(1 for r in records(root) if "outside any" in (r["error"] or "")) >= 3, 15, "gap lines")
        assert proc.stop() == 0
    gaps = [r for r in records(root) if r["sessions"] is None]
    assert all("line 1 is outside any [group]" in g["error"] for g in gaps[1:]), gaps
    assert SECRET not in proc.output
    assert "Traceback" not in proc.output
    assert [e["event"] for e in log_events(proc, "capture failed")].count("capture failed") == 1
    for command in ("capture", "check"):
        result = plsnap(command, "-c", str(cfg))
        assert result.returncode == 1
        assert SECRET not in result.stdout + result.stderr
        assert f"{option_file}: line 1" in result.stdout + result.stderr
    assert SECRET not in archive_text(tmp_path / "archive")


def kill_sessions_of(server: DevServer, user: str) -> None:
    """KILL every connection of ``user`` (the capture connection then has to reconnect)."""
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (user,))
            for (thread_id,) in cur.fetchall():
                cur.execute(f"KILL {int(thread_id)}")
    finally:
        conn.close()


def test_account_without_process_is_said_everywhere(tmp_path: Path, mariadb_running: DevServer) -> None:
    """A capture account without PROCESS: the daemon warns once, every line records it, metrics and health
    show it, and at and window say the samples saw only the account's own sessions."""
    password = "Weak-Acct-Pw-1"
    mariadb_running.create_user("plsnap_blind", password, ("USAGE ON *.*",))
    secret_file = tmp_path / "blind.pw"
    secret_file.write_text(password)
    secret_file.chmod(0o600)

    class Blind:
        name = "plsnap_blind"
        password_file = secret_file

    port = free_port()
    cfg = write_config(tmp_path / "c.toml", mariadb_running, Blind, metrics={"listen": f"127.0.0.1:{port}"})
    root = tmp_path / "archive" / "default"
    with Sleeper(mariadb_running, 6, "hidden-from-blind"), daemon(cfg) as proc:
        found = wait_for_records(root, 3, error=None)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        health = plsnap("health", "-c", str(cfg))
        assert proc.stop() == 0
    assert all(r["visibility"] == "own" and r["account"] == "plsnap_blind@localhost" for r in found)
    assert not any("hidden-from-blind" in (s["info"] or "") for r in found for s in r["sessions"])
    warnings = log_events(proc, "capture account lacks the PROCESS privilege")
    assert len(warnings) == 1
    assert warnings[0]["fix"] == "GRANT PROCESS ON *.* TO 'plsnap_blind'@'localhost'"
    assert 'plsnap_capture_visibility{visibility="own"} 1.0' in metrics
    assert health.returncode == 0 and "lacks PROCESS" in health.stderr
    moment = found[1]["ts"]
    at = plsnap("at", moment, "-c", str(cfg))
    assert "without the PROCESS privilege" in at.stdout
    at_json = json.loads(plsnap("at", moment, "-c", str(cfg), "--format", "json").stdout)
    assert at_json["visibility"] == "own"
    window = json.loads(plsnap("window", found[0]["ts"], "now", "-c", str(cfg), "--format", "json").stdout)
    assert window["own_sessions_only_samples"] == window["samples"] > 0
    assert any("without the PROCESS privilege" in w for w in window["warnings"])


def test_innodb_status_of_a_burst_never_holds_a_secret(
    tmp_path: Path, mariadb_running: DevServer, capture_user
) -> None:
    """Sessions wait on a row lock running statements whose secrets sit on later lines (after an empty one, after
    a line of dashes or a forged "MariaDB thread id" line inside a comment, inside a string that holds a forged
    "---TRANSACTION" line): the burst's InnoDB status, as MariaDB prints it ("MariaDB
    thread id", "trx's" apostrophes), is stored with them masked, and `plsnap report` shows them masked."""
    statements = [
        f"SELECT v, AES_ENCRYPT('data',\n\n'{SECRET}') FROM burst_secret.t WHERE id = 1 FOR UPDATE",
        f"SELECT v /*\n----\n*/, AES_ENCRYPT('x', '{SECRET}') FROM burst_secret.t WHERE id = 1 FOR UPDATE",
        f"SELECT v /*\nMariaDB thread id 1, */, AES_ENCRYPT('x', '{SECRET}') FROM burst_secret.t WHERE id = 1 "
        "FOR UPDATE",
        f"SELECT v, AES_ENCRYPT('x', 'a\n---TRANSACTION 1, ACTIVE 1 sec\n{SECRET}') FROM burst_secret.t WHERE id = 1 "
        "FOR UPDATE",
    ]
    mariadb_running.execute(
        "CREATE DATABASE IF NOT EXISTS burst_secret",
        "CREATE TABLE IF NOT EXISTS burst_secret.t (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB",
        "REPLACE INTO burst_secret.t VALUES (1, 'row')",
    )
    cfg = write_config(tmp_path / "c.toml", mariadb_running, capture_user, interval="2s",
                       trigger={"running_sessions": 1, "burst_interval": "1s", "burst_duration": "3s",
                                "min_free": "0"})  # fmt: skip
    holder = mariadb_running.root_connect()
    waiters = [mariadb_running.root_connect() for _ in statements]

    def wait(conn, statement: str) -> None:
        with contextlib.suppress(Exception), conn.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 20")
            cur.execute("BEGIN")
            cur.execute(statement)

    threads = [threading.Thread(target=wait, args=pair, daemon=True) for pair in zip(waiters, statements, strict=True)]
    root = tmp_path / "archive" / "default"
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM burst_secret.t WHERE id = 1 FOR UPDATE")
        for thread in threads:
            thread.start()
        with daemon(cfg) as proc:
            wait_for(lambda: any(r.get("marker", {}).get("event") == "burst_end" for r in records(root)), 30,
                     "a burst with both ends")  # fmt: skip
            assert proc.stop() == 0
    finally:
        holder.rollback()
        holder.close()
        for thread in threads:
            thread.join(30)
        for conn in waiters:
            conn.close()
    markers = [r["marker"] for r in records(root) if "marker" in r]
    status = "\n".join(m.get("innodb_status", "") for m in markers)
    assert "MariaDB thread id" in status and "AES_ENCRYPT('<secret>'" in status, status
    assert SECRET not in archive_text(tmp_path / "archive")
    report = plsnap("report", "-1h", "now", "-c", str(cfg), "--format", "md", "-o", str(tmp_path / "r.md"))
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.md").read_text()
    assert "SHOW ENGINE INNODB STATUS" in page and SECRET not in page
