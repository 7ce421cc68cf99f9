"""Who blocked whom, against the real server: metadata-lock pileups (with the metadata_lock_info plugin loaded
and without it), an ALTER behind a long SELECT, a row-lock chain, a GET_LOCK wait, and two episodes at once.
Every waiter must trace to its true root blocker through the edges of `plsnap at --format json`, the root must
be listed, and `plsnap locks` must name it."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pymysql
import pytest

from tests.devserver import DevServer
from tests.integration.harness import daemon, plsnap, records, wait_for, wait_for_records, write_config

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@pytest.fixture(params=["plugin", "no-plugin"])
def mdl_source(request: pytest.FixtureRequest, mariadb_running: DevServer) -> Iterator[str]:
    """The session server with the metadata_lock_info plugin loaded, or without it."""
    conn = mariadb_running.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO'")
            loaded = cur.fetchone()[0] > 0
            if request.param == "plugin" and not loaded:
                cur.execute("INSTALL SONAME 'metadata_lock_info'")
            elif request.param == "no-plugin" and loaded:
                cur.execute("UNINSTALL SONAME 'metadata_lock_info'")
        yield request.param
    finally:
        conn.close()


@pytest.fixture
def cfg(tmp_path: Path, mariadb_running: DevServer, capture_user) -> Path:
    """A config for the capture user, idle sessions not stored (so only blockers among them are kept)."""
    return write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, capture={"include_idle": False})


class Session:
    """A root connection whose statements run in a background thread (so that they can wait)."""

    def __init__(self, server: DevServer, *setup: str) -> None:
        self.conn = server.root_connect(autocommit=True, read_timeout=60)
        self.id = self.conn.thread_id()
        self.errors: list[BaseException] = []
        self.thread: threading.Thread | None = None
        with self.conn.cursor() as cur:
            for statement in setup:
                cur.execute(statement)

    def start(self, *statements: str) -> Session:
        def run() -> None:
            try:
                with self.conn.cursor() as cur:
                    for statement in statements:
                        cur.execute(statement)
                        cur.fetchall()
            except pymysql.MySQLError as exc:
                self.errors.append(exc)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self


@contextmanager
def sessions(server: DevServer) -> Iterator[list[Session]]:
    """Sessions opened in the block are killed at its end (which rolls back and releases every lock)."""
    opened: list[Session] = []
    try:
        yield opened
    finally:
        killer = server.root_connect()
        with killer.cursor() as cur:
            for s in opened:
                with contextlib.suppress(pymysql.MySQLError):
                    cur.execute(f"KILL {s.id}")
        killer.close()
        for s in opened:
            if s.thread is not None:
                s.thread.join(10)
            s.conn.close()


def waiting(server: DevServer, ids: set[int], state_part: str) -> None:
    """Block until every session in ``ids`` shows ``state_part`` in its processlist state."""

    def ready() -> bool:
        conn = server.root_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT ID, STATE FROM information_schema.PROCESSLIST")
                states = {row[0]: row[1] or "" for row in cur.fetchall()}
        finally:
            conn.close()
        return all(state_part in states.get(i, "") for i in ids)

    wait_for(ready, 15, f"sessions {sorted(ids)} waiting ({state_part})")


def capture(cfg: Path) -> dict[str, Any]:
    """One sample now; returns its archive line."""
    result = plsnap("capture", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    return records(cfg.parent / "archive" / "default")[-1]


def at_json(cfg: Path, ts: str) -> dict[str, Any]:
    result = plsnap("at", ts, "-c", str(cfg), "--format", "json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    jsonschema.validate(body, json.loads((SCHEMAS / "at.schema.json").read_text()))
    return body


def root_of(body: dict[str, Any], waiter: int) -> set[int]:
    """The root blockers a waiter traces to through the at JSON's edges."""
    ahead: dict[int, set[int]] = {}
    for edge in body["locks"]:
        ahead.setdefault(edge["waiter"], set()).add(edge["blocker"])
    roots, stack, seen = set(), [waiter], {waiter}
    while stack:
        node = stack.pop()
        if node not in ahead:
            roots.add(node)
            continue
        for blocker in ahead[node] - seen:
            seen.add(blocker)
            stack.append(blocker)
    return roots


def prepare(server: DevServer, *tables: str) -> None:
    server.execute("CREATE DATABASE IF NOT EXISTS lk")
    for table in tables:
        server.execute(
            f"DROP TABLE IF EXISTS lk.{table}",
            f"CREATE TABLE lk.{table} (id INT PRIMARY KEY, n INT) ENGINE=InnoDB",
            f"INSERT INTO lk.{table} VALUES (1, 0), (2, 0), (3, 0)",
        )


def mdl_pileup(server: DevServer, opened: list[Session], table: str) -> tuple[Session, Session, list[Session]]:
    """An idle transaction that read ``table``, an ALTER waiting on it, two SELECTs queued behind the ALTER."""
    holder = Session(server, "SET autocommit = 0", f"SELECT * FROM lk.{table}")
    opened.append(holder)
    alter = Session(server).start(f"ALTER TABLE lk.{table} ADD COLUMN c INT")
    opened.append(alter)
    waiting(server, {alter.id}, "metadata lock")
    readers = [Session(server).start(f"SELECT * FROM lk.{table} WHERE id = {i}") for i in (1, 2)]
    opened += readers
    waiting(server, {r.id for r in readers}, "metadata lock")
    return holder, alter, readers


def test_mdl_pileup_behind_an_idle_transaction(cfg: Path, mariadb_running: DevServer, mdl_source: str) -> None:
    """ALTER waiting on an idle transaction, two SELECTs queued behind the ALTER: three levels, the idle
    holder at the root and listed; with the plugin the ALTER's edge is derived, without it inferred."""
    prepare(mariadb_running, "t1")
    with sessions(mariadb_running) as opened:
        holder, alter, readers = mdl_pileup(mariadb_running, opened, "t1")
        line = capture(cfg)
        body = at_json(cfg, line["ts"])
        text = plsnap("at", line["ts"], "-c", str(cfg)).stdout
    edges = {(e["waiter"], e["blocker"]): e for e in body["locks"]}
    assert edges[(alter.id, holder.id)]["how"] == ("derived" if mdl_source == "plugin" else "inferred")
    assert edges[(alter.id, holder.id)]["object"] == "lk.t1" or mdl_source == "no-plugin"
    for reader in readers:
        assert edges[(reader.id, alter.id)]["how"] == "derived"
        assert root_of(body, reader.id) == {holder.id}
    assert body["root_blockers"] == [holder.id]
    assert holder.id in {s["id"] for s in body["sessions"]}, "the idle root blocker is listed"
    assert line["lock_sources"]["metadata"] == ("metadata_lock_info" if mdl_source == "plugin" else None)
    assert "ROOT BLOCKER" in text and "idle" in text
    check = plsnap("check", "-c", str(cfg))
    assert ("metadata locks from the metadata_lock_info plugin" in check.stdout) == (mdl_source == "plugin")
    assert ("INSTALL SONAME 'metadata_lock_info'" in check.stdout) == (mdl_source == "no-plugin")


def test_alter_blocked_by_a_long_select(cfg: Path, mariadb_running: DevServer, mdl_source: str) -> None:
    """An ALTER waits for a SELECT that is still running: the SELECT is the (running) root."""
    prepare(mariadb_running, "t2")
    with sessions(mariadb_running) as opened:
        reader = Session(mariadb_running).start("SELECT n, SLEEP(8) FROM lk.t2 WHERE id = 1")
        opened.append(reader)
        time.sleep(0.5)
        alter = Session(mariadb_running).start("ALTER TABLE lk.t2 ADD COLUMN c INT")
        opened.append(alter)
        waiting(mariadb_running, {alter.id}, "metadata lock")
        line = capture(cfg)
        body = at_json(cfg, line["ts"])
    assert root_of(body, alter.id) == {reader.id}
    (edge,) = [e for e in body["locks"] if e["waiter"] == alter.id]
    assert edge["how"] == ("derived" if mdl_source == "plugin" else "inferred")
    root = next(s for s in body["sessions"] if s["id"] == reader.id)
    assert root["command"] == "Query"


def test_row_lock_chain_three_deep(cfg: Path, mariadb_running: DevServer) -> None:
    """A holds row 1; B holds row 2 and waits for row 1; C waits for row 2: C -> B -> A, proven by InnoDB."""
    prepare(mariadb_running, "r1")
    with sessions(mariadb_running) as opened:
        a = Session(mariadb_running, "BEGIN", "UPDATE lk.r1 SET n = 1 WHERE id = 1")
        b = Session(mariadb_running, "BEGIN", "UPDATE lk.r1 SET n = 1 WHERE id = 2")
        opened += [a, b]
        b.start("UPDATE lk.r1 SET n = 2 WHERE id = 1")
        c = Session(mariadb_running).start("UPDATE lk.r1 SET n = 3 WHERE id = 2")
        opened.append(c)
        waiting(mariadb_running, {b.id, c.id}, "")
        wait_for(lambda: {e["waiter"] for e in capture(cfg).get("locks", [])} >= {b.id, c.id}, 15, "both waits")
        line = records(cfg.parent / "archive" / "default")[-1]
        body = at_json(cfg, line["ts"])
    edges = {(e["waiter"], e["blocker"]): e for e in body["locks"]}
    assert edges[(b.id, a.id)]["kind"] == "row" and edges[(b.id, a.id)]["how"] == "lock_table"
    assert edges[(c.id, b.id)]["object"] == "lk.r1"
    assert root_of(body, c.id) == {a.id}
    assert a.id in {s["id"] for s in body["sessions"]}


def test_get_lock_wait(cfg: Path, mariadb_running: DevServer, mdl_source: str) -> None:
    """A GET_LOCK waiter traces to the session holding the lock, as the server reports it."""
    with sessions(mariadb_running) as opened:
        holder = Session(mariadb_running, "SELECT GET_LOCK('plsnap-test-lock', 0)")
        opened.append(holder)
        waiter = Session(mariadb_running).start("SELECT GET_LOCK('plsnap-test-lock', 30)")
        opened.append(waiter)
        waiting(mariadb_running, {waiter.id}, "ock")
        line = capture(cfg)
        body = at_json(cfg, line["ts"])
    (edge,) = [e for e in body["locks"] if e["waiter"] == waiter.id]
    assert (edge["blocker"], edge["kind"], edge["object"], edge["how"]) == (
        holder.id,
        "user",
        "plsnap-test-lock",
        "lock_table",
    )
    assert holder.id in {s["id"] for s in body["sessions"]}


def test_two_independent_episodes_in_one_window(cfg: Path, mariadb_running: DevServer, mdl_source: str) -> None:
    """An MDL pileup and a row-lock wait at the same time are two episodes, each with its own root, ranked by
    waiter-seconds; window names them as top blockers."""
    prepare(mariadb_running, "t3", "r2")
    with sessions(mariadb_running) as opened:
        holder, alter, readers = mdl_pileup(mariadb_running, opened, "t3")
        row_holder = Session(mariadb_running, "BEGIN", "UPDATE lk.r2 SET n = 1 WHERE id = 1")
        row_waiter = Session(mariadb_running).start("UPDATE lk.r2 SET n = 2 WHERE id = 1")
        opened += [row_holder, row_waiter]
        wait_for(lambda: any(e["waiter"] == row_waiter.id for e in capture(cfg).get("locks", [])), 15, "row wait")
        first = records(cfg.parent / "archive" / "default")[0]["ts"]
        capture(cfg)
    result = plsnap("locks", first, "now", "-c", str(cfg), "--format", "json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    jsonschema.validate(body, json.loads((SCHEMAS / "locks.schema.json").read_text()))
    by_root = {e["root"]["id"]: e for e in body["episodes"]}
    mdl, row = by_root[holder.id], by_root[row_holder.id]
    pileup = {alter.id, *(r.id for r in readers)}
    assert mdl["root"]["idle"] and row["root"]["idle"]
    assert row_waiter.id in row["waiters"] and "row" in row["kinds"]
    window = json.loads(plsnap("window", first, "now", "-c", str(cfg), "--format", "json").stdout)
    if mdl_source == "plugin":
        assert [e["root"]["id"] for e in body["episodes"]] == [holder.id, row_holder.id], "ranked by impact"
        assert set(mdl["waiters"]) == pileup and row["waiters"] == [row_waiter.id]
        assert mdl["waiter_seconds"] > row["waiter_seconds"]
        assert "lk.t3" in plsnap("locks", first, "now", "-c", str(cfg)).stdout
        assert [e["root"]["id"] for e in window["top_blockers"]] == [holder.id, row_holder.id]
    else:
        assert pileup <= set(mdl["waiters"]), "the true holder is always among the suspects"
        assert "inferred" in mdl["how"]
        assert {e["root"]["id"] for e in window["top_blockers"]} >= {holder.id, row_holder.id}


def test_done_when_daemon_at_5s_traces_every_waiter(tmp_path: Path, mariadb_running: DevServer, capture_user) -> None:
    """The daemon at a 5 s cadence, plugin loaded, an MDL pileup behind an idle transaction plus a row-lock
    wait: every waiter in `at --format json` traces to its root holder, and every holder is listed."""
    conn = mariadb_running.root_connect()
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO'")
        if not cur.fetchone()[0]:
            cur.execute("INSTALL SONAME 'metadata_lock_info'")
    conn.close()
    prepare(mariadb_running, "t4", "r3")
    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="5s")
    root = tmp_path / "archive" / "default"
    with ExitStack() as stack:
        opened = stack.enter_context(sessions(mariadb_running))
        proc = stack.enter_context(daemon(cfg))
        holder, alter, readers = mdl_pileup(mariadb_running, opened, "t4")
        row_holder = Session(mariadb_running, "BEGIN", "UPDATE lk.r3 SET n = 1 WHERE id = 1")
        row_waiter = Session(mariadb_running).start("UPDATE lk.r3 SET n = 2 WHERE id = 1")
        opened += [row_holder, row_waiter]
        waiting(mariadb_running, {row_waiter.id}, "")
        expected = {alter.id: holder.id, row_waiter.id: row_holder.id, **{r.id: holder.id for r in readers}}
        found = wait_for(
            lambda: [r for r in records(root) if {e["waiter"] for e in r.get("locks", [])} >= set(expected)],
            20,
            "a 5 s sample seeing every wait",
        )
        assert proc.stop() == 0
    body = at_json(cfg, found[-1]["ts"])
    listed = {s["id"] for s in body["sessions"]}
    for waiter, holder_id in expected.items():
        assert root_of(body, waiter) == {holder_id}, (waiter, body["locks"])
        assert holder_id in listed
    assert wait_for_records(root, 1)
