"""The throwaway MariaDB server used by the integration tests, the demo and the benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql

from tests.devserver import DevServer

if TYPE_CHECKING:
    from .conftest import CaptureUser

_SRC = str(Path(__file__).resolve().parents[2] / "src")


def _query_one(kwargs: dict[str, Any], sql: str) -> Any:
    conn = pymysql.connect(**kwargs)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
    finally:
        conn.close()
    assert row is not None
    return row[0]


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` runs; a zombie (killed, not yet reaped by init) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_version_over_socket_and_tcp(mariadb_running: DevServer, capture_user: CaptureUser) -> None:
    """SELECT VERSION() names MariaDB over the unix socket and over TCP on the server's own port."""
    server = mariadb_running
    assert server.port not in (0, 3306)
    assert server.socket != Path("/run/mysqld/mysqld.sock")
    for tcp in (False, True):
        kwargs = server.client_kwargs(capture_user.name, capture_user.password, tcp=tcp)
        assert "MariaDB" in _query_one(kwargs, "SELECT VERSION()")
        assert _query_one(kwargs, "SELECT @@port") == server.port
    assert _query_one(server.client_kwargs(capture_user.name, capture_user.password, tcp=True), "SELECT 1") == 1
    assert capture_user.password_file.read_text() == capture_user.password
    assert capture_user.password_file.stat().st_mode & 0o777 == 0o600


def test_capture_user_sees_other_sessions(mariadb_running: DevServer, capture_user: CaptureUser) -> None:
    """The PROCESS-only capture user sees another session's running SELECT SLEEP(3) in the processlist."""
    server = mariadb_running
    sleeper = server.root_connect()
    sleeper_id = sleeper.thread_id()
    errors: list[BaseException] = []

    def run_sleep() -> None:
        try:
            with sleeper.cursor() as cur:
                cur.execute("SELECT SLEEP(3)")
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != 1317:  # ER_QUERY_INTERRUPTED: our KILL QUERY below
                errors.append(exc)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run_sleep, name="sleeper")
    thread.start()
    capture = pymysql.connect(**server.client_kwargs(capture_user.name, capture_user.password))
    try:
        seen = None
        deadline = time.monotonic() + 3.0
        with capture.cursor() as cur:
            cur.execute("SHOW GRANTS")
            grants = [row[0] for row in cur.fetchall()]
            while seen is None and time.monotonic() < deadline:
                cur.execute("SHOW FULL PROCESSLIST")
                seen = next((row for row in cur.fetchall() if row[0] == sleeper_id), None)
                if seen is None or seen[7] != "SELECT SLEEP(3)":
                    seen = None
                    time.sleep(0.02)
    finally:
        capture.close()
        server.execute(f"KILL QUERY {int(sleeper_id)}")  # no need to wait out the full sleep
        thread.join(10)
        sleeper.close()
    assert not errors, errors
    assert seen is not None, "SELECT SLEEP(3) of another session not visible to the capture user"
    assert seen[1] == "root"
    assert seen[4] == "Query"
    assert len(grants) == 1
    assert grants[0].startswith(f"GRANT PROCESS ON *.* TO `{capture_user.name}`@")


def test_stop_then_start_keeps_port_and_data(mariadb_running: DevServer) -> None:
    """stop() then start() brings the server back on the same port with the same data."""
    server = mariadb_running
    port = server.port
    server.execute(
        "DROP DATABASE IF EXISTS plsnap_devtest",
        "CREATE DATABASE plsnap_devtest",
        "CREATE TABLE plsnap_devtest.t (id INT PRIMARY KEY) ENGINE=InnoDB",
        "INSERT INTO plsnap_devtest.t VALUES (42)",
    )
    server.stop()
    assert not server.running
    assert not server.socket.exists()
    server.stop()  # idempotent
    server.start()
    assert server.running
    assert server.port == port
    assert _query_one(server.client_kwargs("root", ""), "SELECT id FROM plsnap_devtest.t") == 42
    server.execute("DROP DATABASE plsnap_devtest")


def test_kill_then_start_recovers_committed_data(mariadb_running: DevServer) -> None:
    """kill() is a crash: the next start() recovers committed rows on the same port."""
    server = mariadb_running
    port = server.port
    server.execute(
        "DROP DATABASE IF EXISTS plsnap_crashtest",
        "CREATE DATABASE plsnap_crashtest",
        "CREATE TABLE plsnap_crashtest.t (id INT PRIMARY KEY) ENGINE=InnoDB",
        "INSERT INTO plsnap_crashtest.t VALUES (7)",
    )
    server.kill()
    assert not server.running
    server.kill()  # idempotent
    server.start()
    assert server.port == port
    assert _query_one(server.client_kwargs("root", ""), "SELECT id FROM plsnap_crashtest.t") == 7
    server.execute("DROP DATABASE plsnap_crashtest")


def _spawn_owner(basedir: Path) -> tuple[subprocess.Popen[str], int]:
    """Start a Python process that starts a DevServer, prints mariadbd's pid and waits for stdin."""
    code = (
        "import sys; from pathlib import Path; from tests.devserver import DevServer\n"
        f"s = DevServer(Path({str(basedir)!r})); s.start(); print(s._proc.pid, flush=True); sys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_SRC, os.environ.get("PYTHONPATH", "")])}
    owner = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert owner.stdout is not None
    line = owner.stdout.readline()
    owner.stdout.close()
    assert line.strip().isdigit(), f"owner did not report a pid: {line!r}"
    return owner, int(line)


def test_server_dies_with_its_owner_process(tmp_path: Path) -> None:
    """No mariadbd outlives the Python process that started it, on normal exit (atexit) or SIGKILL."""
    owner, pid = _spawn_owner(tmp_path / "a")
    assert _pid_alive(pid)
    assert owner.stdin is not None
    owner.stdin.close()  # the owner returns from stdin.read() and exits normally without stop()
    assert owner.wait(30) == 0
    assert _wait_dead(pid), "mariadbd survived its owner's normal exit"

    owner, pid = _spawn_owner(tmp_path / "b")
    assert _pid_alive(pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait(30)
    assert owner.stdin is not None
    owner.stdin.close()
    assert _wait_dead(pid), "mariadbd survived its owner being SIGKILLed"
