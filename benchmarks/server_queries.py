"""Server and client CPU of each statement of a capture, one at a time: where the server CPU of a sample goes.

Not part of ``make bench``. On the scenario's processlist (``bench_capture`` scenarios: ``load-N`` with lock
waits, ``sysbench-N``), one connection of the capture user runs each statement ``--samples`` times, measured
like ``bench_capture``: the on-CPU time of its own mariadbd thread (``schedstat``) and this process's CPU.
``warm`` runs a statement back to back; ``cold`` runs the processlist query, pauses 0.25 s, then the
statement, as a daemon's sample does. Besides plsnap's statements it times ``SHOW GLOBAL STATUS`` variants,
which show what the counters cost on MariaDB: a ``LIKE`` on a variable kept per connection (``Questions``,
``Com_*``, ``Threads_running``) or any ``WHERE`` (which filters after every variable was computed) makes the
server add up every connection's status, so its cost grows with the sessions whatever the list of names.

    python -m benchmarks.server_queries [--scenario sysbench-300] [--samples 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.bench_capture import CAPTURE_GRANTS, SERVER_ARGS, Scenario, workload
from benchmarks.common import (
    CAPTURE_USER,
    Results,
    connection_tid,
    mariadbd_pid,
    process_count,
    raise_fd_limit,
    start_server,
    thread_cpu_ns,
)
from plsnap import source
from plsnap.config import DEFAULT_STATUS
from plsnap.connection import ConnectParams, PyMySQLConnection

PAUSE = 0.25


def statements() -> dict[str, str]:
    """The capture's statements (as ``plsnap.source`` sends them) and the SHOW STATUS variants."""
    return {
        "processlist (information_schema, MariaDB)": source.QUERIES["is_mariadb"],
        "SHOW FULL PROCESSLIST": source.QUERIES["show"],
        "transactions (INNODB_TRX)": source.TRANSACTIONS,
        "row-lock waits (INNODB_LOCK_WAITS)": source.ROW_WAITS_INNODB,
        "metadata locks (METADATA_LOCK_INFO)": source.MDL_MARIADB,
        "counters (default [capture] status)": source.status_query(["Uptime", *DEFAULT_STATUS]),
        "replication (SHOW ALL SLAVES STATUS)": source.REPLICATION["mariadb"],
        "SHOW GLOBAL STATUS WHERE name IN ('Uptime')": source.status_query(["Uptime"]),
        "SHOW GLOBAL STATUS LIKE 'Uptime'": "SHOW GLOBAL STATUS LIKE 'Uptime'",
        "SHOW GLOBAL STATUS LIKE 'Innodb_row_lock_waits'": "SHOW GLOBAL STATUS LIKE 'Innodb_row_lock_waits'",
        "SHOW GLOBAL STATUS LIKE 'Questions'": "SHOW GLOBAL STATUS LIKE 'Questions'",
        "SHOW GLOBAL STATUS LIKE 'Threads_running'": "SHOW GLOBAL STATUS LIKE 'Threads_running'",
        "SELECT 1": "SELECT 1",
    }


def main() -> None:
    """Print warm and cold figures of every statement."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="sysbench-300")
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    raise_fd_limit()
    scenario = Scenario.parse(args.scenario)
    with tempfile.TemporaryDirectory(prefix="plsnap-bench-queries-") as tmp:
        base = Path(tmp)
        server = start_server(base / "db", extra_args=SERVER_ARGS, capture_grants=CAPTURE_GRANTS)
        try:
            with workload(scenario, server, base, 600, Results()) as running:
                params = ConnectParams(
                    user=CAPTURE_USER[0], password=CAPTURE_USER[1], unix_socket=str(server.socket), ssl_disabled=True
                )
                conn = PyMySQLConnection(params)
                conn.open()
                try:
                    connection_id = int(conn.query("SELECT CONNECTION_ID()").rows[0][0])
                    pid, tid = mariadbd_pid(server), connection_tid(server, connection_id)
                    print(f"{running.label}: {process_count(server)} processlist rows; ms per statement")
                    print(
                        f"{'statement':<48} {'rows':>5} {'warm srv':>9} {'warm cli':>9} {'cold srv':>9} {'cold cli':>9}"
                    )
                    for name, sql in statements().items():
                        rows = len(conn.query(sql).rows)
                        srv0, cpu0 = thread_cpu_ns(pid, tid), time.process_time()
                        for _ in range(args.samples):
                            conn.query(sql)
                        warm_srv = (thread_cpu_ns(pid, tid) - srv0) / args.samples / 1e6
                        warm_cli = (time.process_time() - cpu0) / args.samples * 1e3
                        cold_srv = cold_cli = 0.0
                        for _ in range(args.samples):
                            time.sleep(PAUSE)
                            conn.query(source.QUERIES["is_mariadb"])
                            srv0, cpu0 = thread_cpu_ns(pid, tid), time.process_time()
                            conn.query(sql)
                            cold_srv += (thread_cpu_ns(pid, tid) - srv0) / 1e6
                            cold_cli += (time.process_time() - cpu0) * 1e3
                        cold_srv /= args.samples
                        cold_cli /= args.samples
                        print(
                            f"{name:<48} {rows:>5} {warm_srv:>9.3f} {warm_cli:>9.3f} {cold_srv:>9.3f} {cold_cli:>9.3f}"
                        )
                finally:
                    conn.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
