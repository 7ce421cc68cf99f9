"""docs/runbook.md works as written: every command in its shell blocks runs against a real archive that the
daemon records from the suite's mariadbd while a slow statement, a row-lock pile-up and a capture outage (a
gap) happen. The commands are read from the document itself, so the runbook and this test cannot drift."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.devserver import DevServer
from tests.integration.harness import daemon, records, wait_for, wait_for_records, write_config

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_SETTING = re.compile(r"^(?:export )?([A-Z_]+)=")


class User(NamedTuple):
    name: str
    password_file: Path


def runbook() -> tuple[list[str], list[str]]:
    """(the variable names the first block sets, every command line of the other blocks), from the document."""
    blocks = [block.splitlines() for block in _BLOCK.findall(RUNBOOK.read_text(encoding="utf-8"))]
    names = []
    for line in blocks[0]:
        match = _SETTING.match(line)
        assert match, f"the first block of runbook.md only sets variables: {line!r}"
        names.append(match.group(1))
    commands = [line for block in blocks[1:] for line in block if line.strip() and not line.startswith("#")]
    return names, commands


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_runbook_commands_read_as_they_are_written() -> None:
    """The runbook sets the variables the test fills in, and its steps use plsnap's read commands and report."""
    names, commands = runbook()
    assert names == ["PLSNAP_CONFIG", "T", "FROM", "TO", "BASELINE", "ARCHIVE", "INSTANCE", "DAY"]
    used = {line.split()[1] for line in commands if line.startswith("plsnap ")}
    assert {"health", "snapshots", "verify", "check", "at", "locks", "window", "report"} <= used


@pytest.fixture
def runbook_user(mariadb_running: DevServer, tmp_path: Path) -> User:
    """A capture account of its own (PROCESS only), so that locking it for the outage touches no other test."""
    password = secrets.token_urlsafe(16)
    mariadb_running.create_user("plsnap_runbook", password, ("PROCESS ON *.*",))
    path = tmp_path / "runbook.pw"
    path.write_text(password)
    path.chmod(0o600)
    return User("plsnap_runbook", path)


def account(server: DevServer, action: str) -> None:
    server.execute(
        *(f"ALTER USER 'plsnap_runbook'@'{host}' ACCOUNT {action}" for host in ("localhost", "127.0.0.1", "%"))
    )


def row_lock_pileup(server: DevServer, hold: float) -> None:
    """A transaction holds a row lock for ``hold`` seconds while two sessions wait for it."""
    holder = server.root_connect(autocommit=False)
    with holder.cursor() as cur:
        cur.execute("UPDATE rb.stock SET n = n - 1 WHERE sku = 'A-1'")

    def wait() -> None:
        conn = server.root_connect(read_timeout=60)
        try:
            with conn.cursor() as cur:
                cur.execute("UPDATE rb.stock SET n = n - 2 WHERE sku = 'A-1'")
        finally:
            conn.close()

    waiters = [threading.Thread(target=wait, daemon=True) for _ in range(2)]
    for thread in waiters:
        thread.start()
    time.sleep(hold)
    holder.commit()
    holder.close()
    for thread in waiters:
        thread.join(30)


def test_every_runbook_command_runs_against_a_real_archive(
    tmp_path: Path, mariadb_running: DevServer, runbook_user: User
) -> None:
    """Each command line of docs/runbook.md exits 0 with the incident's times filled in, while the daemon
    records; the answers show the pile-up, the gap and the files to attach."""
    server = mariadb_running
    server.execute(
        "DROP DATABASE IF EXISTS rb",
        "CREATE DATABASE rb",
        "CREATE TABLE rb.stock (sku VARCHAR(8) PRIMARY KEY, n INT) ENGINE=InnoDB",
        "INSERT INTO rb.stock VALUES ('A-1', 100)",
    )
    cfg = write_config(tmp_path / "plsnap.toml", server, runbook_user, interval="1s")
    instance_dir = tmp_path / "archive" / "default"
    with daemon(cfg) as proc:
        wait_for_records(instance_dir, 3, timeout=30)
        began = time.time()
        slow = server.root_connect()
        runner = threading.Thread(target=lambda: slow.cursor().execute("SELECT SLEEP(7) /* nightly-export */"))
        runner.start()
        row_lock_pileup(server, hold=5.0)
        slow_at = began + 3.5
        runner.join(30)
        slow.close()
        # the outage: the capture account is locked and its connection killed; samples fail until unlocked
        account(server, "LOCK")
        try:
            conn = server.root_connect()
            with conn.cursor() as cur:
                cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'plsnap_runbook'")
                for (thread_id,) in cur.fetchall():
                    cur.execute(f"KILL {int(thread_id)}")
            conn.close()
            wait_for(lambda: any("locked" in (r.get("error") or "") for r in records(instance_dir)), 20,
                     "a sample refused because the account is locked")  # fmt: skip
        finally:
            account(server, "UNLOCK")
        recovered = time.time()
        wait_for(lambda: any(r["sessions"] is not None and r["ts"] > iso(recovered + 1) for r in records(instance_dir)),
                 20, "a sample after the outage")  # fmt: skip
        ended = time.time()
        values = {
            "PLSNAP_CONFIG": str(cfg),
            "T": iso(slow_at),
            "FROM": iso(began - 2),
            "TO": iso(ended + 1),
            "BASELINE": iso(began - 2),
            "ARCHIVE": str(tmp_path / "archive"),
            "INSTANCE": "default",
            "DAY": datetime.fromtimestamp(began, UTC).strftime("%Y-%m-%d"),
        }
        names, commands = runbook()
        prelude = "set -euo pipefail\n" + "".join(f"{'export ' if n == 'PLSNAP_CONFIG' else ''}{n}={values[n]!r}\n"
                                                   for n in names)  # fmt: skip
        work = tmp_path / "oncall"
        work.mkdir()
        shim = tmp_path / "bin" / "plsnap"  # `plsnap` is this interpreter's plsnap, whatever PATH holds
        shim.parent.mkdir()
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m plsnap.cli "$@"\n')
        shim.chmod(0o755)
        env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        if os.environ.get("PYTHONPATH"):  # the commands run in another directory: a relative src/ must still win
            paths = os.environ["PYTHONPATH"].split(os.pathsep)
            env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in paths if p)
        outputs = {}
        for command in commands:
            result = subprocess.run(["bash", "-c", prelude + command], cwd=work, capture_output=True, text=True,
                                    timeout=120, env=env, check=False)  # fmt: skip
            assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            outputs[command] = result.stdout
        assert proc.proc.poll() is None, "the daemon kept running"
    text = "\n".join(outputs.values())
    assert "healthy: last attempt" in text
    assert "ROOT BLOCKER" in text and "row lock on rb.stock" in text
    assert "nightly-export" in outputs['plsnap at "$T"']
    assert "locked" in outputs['plsnap snapshots "$FROM" "$TO" --format csv'], "the failed samples and their error"
    assert '"kind":"failed"' in outputs['plsnap window "$FROM" "$TO" --format json | jq -c \'.gaps[]\'']
    for name in ("incident.html", "incident.md", "incident-redacted.html", "incident-redacted.md", "window.json",
                 "at.json", "locks.json", "snapshots.csv", f"plsnap-default-{values['DAY']}.tgz"):  # fmt: skip
        assert (work / name).stat().st_size > 0, name
    redacted = (work / "incident-redacted.md").read_text()
    assert "## Compared with the baseline" in redacted
    assert "'A-1'" not in redacted and "'A-1'" in (work / "incident.md").read_text()
