"""A synthetic incident archive with known truth, for the report's tests (unit and browser).

Ten minutes of 10 s samples from 03:00Z (tests.synth.T0): three long report queries, a row-lock pile-up behind a
running UPDATE whose text carries a planted e-mail address and card number, a GET_LOCK wait on a lock named after
the e-mail, a statement built to break out of HTML, counters with every sample, one failed sample, a hole
without any line, and a triggered burst whose InnoDB status quotes the secrets again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from plsnap.archive import ArchiveWriter
from plsnap.archive.format import encode_line
from plsnap.model import Snapshot
from tests.synth import T0, at, gap, running, snap

EMAIL = "alice.planted@example.com"
CARD = "4111111111111111"
CARD_SPACED = "4111 1111 1111 1111"
XSS = "</script><script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
REPORT_SQL = "SELECT customer_id, SUM(total) FROM orders WHERE created_at > '2026-11-01' GROUP BY 1"
SECRET_SQL = f"UPDATE customers SET email = '{EMAIL}', note = /* {CARD_SPACED} */ 'x' WHERE card = '{CARD}'"
WAITER_SQL = "UPDATE customers SET visits = visits + 1 WHERE id = 17"
LOCK_SQL = f"SELECT GET_LOCK('{EMAIL}', 30)"
XSS_SQL = f"SELECT '{XSS}' AS a, \"{IMG}\" AS b FROM dual"
#: The states of the running sessions in the archive, as the load chart must stack them.
STATES = ("Sending data", "Updating", "User sleep", "User lock", "executing")
START, END = T0, at(600)
GAP_AT = 200.0
HOLE = (400.0, 440.0)
BURST_AT = 300.0


def write(root: Path, snapshots: Iterable[Snapshot], instance: str = "db1") -> Path:
    """Write ``snapshots`` (in ts order) as the archive ``root/instance``; returns ``root`` (the data dir)."""
    with ArchiveWriter(root / instance, fsync=False) as writer:
        for snapshot in snapshots:
            writer.append(encode_line(snapshot.to_record()), snapshot.ts)
    return root


def _with(snapshot: Snapshot, **extra: object) -> Snapshot:
    return dataclasses.replace(snapshot, extra={**snapshot.extra, **extra})


def snapshots() -> list[Snapshot]:
    """The incident, in ts order."""
    out: list[Snapshot] = []
    questions = 0
    for t in range(0, 600, 10):
        if t == GAP_AT:
            out.append(gap(t, "connect failed: (2003) Can't connect to MySQL server"))
            continue
        if HOLE[0] < t < HOLE[1]:
            continue
        sessions = [running(n, REPORT_SQL, started=-30, now=t, user="report", db="shop") for n in (1, 2, 3)]
        edges = []
        if 120 <= t < 300:
            sessions.append(running(9, SECRET_SQL, started=110, now=t, state="Updating", trx_age=t - 110))
            sessions.append(
                running(4, WAITER_SQL, started=120, now=t, state="Updating", blocked_by=[9], trx_age=t - 120)
            )
            edges.append({"waiter": 4, "blocker": 9, "kind": "row", "how": "lock_table", "object": "shop.customers",
                          "mode": "X", "blocker_mode": "X", "wait_s": float(t - 120)})  # fmt: skip
        if 320 <= t < 380:
            sessions.append(running(6, "SELECT SLEEP(60)", started=310, now=t, state="User sleep", user="batch"))
            sessions.append(running(5, LOCK_SQL, started=320, now=t, state="User lock", user="batch"))
            edges.append({"waiter": 5, "blocker": 6, "kind": "user", "how": "lock_table", "object": EMAIL})
        if 450 <= t < 520:
            sessions.append(running(7, XSS_SQL, started=450, now=t, state="executing", user="web"))
        questions += 1000 + 10 * t
        sample = _with(snap(t, *sessions), status={"Threads_running": len(sessions), "Questions": questions,
                                                   "Uptime": 1000 + t})  # fmt: skip
        if edges:
            sample = _with(sample, locks=edges)
        out.append(sample)
        if t == BURST_AT - 10:
            status = f"---TRANSACTION 4242, ACTIVE 190 sec\nMySQL thread id 9, query id 77 updating\n{SECRET_SQL}\n"
            marker = {"event": "burst_start", "condition": "running_sessions > 5", "values": {"running": 6},
                      "innodb_status": status}  # fmt: skip
            out.append(Snapshot(at(BURST_AT - 5), "db1", None, None, None, None, None, extra={"marker": marker}))
    return out


def archive(root: Path) -> Path:
    """Write the incident archive under ``root``; returns the data dir (instance ``db1``)."""
    return write(root, snapshots())
