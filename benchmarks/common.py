"""Shared helpers for the benchmark scripts: result rows, timing, a dev server with a load generator.

Nothing here asserts anything: the scripts print figures, and ``run_all.py`` prints one table of plsnap against
its peers. Ratios taken within one run are the figures to trust; absolute numbers move with the machine's load.
"""

from __future__ import annotations

import compileall
import contextlib
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from pymysql.constants import COMMAND
from tests.devserver import DevServer

REPO = Path(__file__).resolve().parent.parent
#: The checkout's own virtualenv, else the interpreter running this (a git worktree without a .venv).
VENV_BIN = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin" / "python").exists() else Path(sys.executable).parent
if str(REPO / "src") not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    # Child processes (the plsnap CLI, the daemon) must run this checkout's code, not an installed wheel.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
# Byte-compile it, as pip does when it installs the wheel: with PYTHONDONTWRITEBYTECODE set (as on this machine)
# every CLI run would otherwise compile every module again, about 0.15 s that users never pay.
compileall.compile_dir(REPO / "src", quiet=1)
PLSNAP = VENV_BIN / "plsnap"
PYTHON = VENV_BIN / "python"
#: ``$PLSNAP_BENCH_CACHE``, taken out of the environment: the plsnap CLI and daemon that the scenarios start
#: refuse any ``PLSNAP_<X>_<Y>`` variable that is not a config key.
BENCH_CACHE = os.environ.pop("PLSNAP_BENCH_CACHE", None)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# --- results ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One line of the summary table: plsnap's figure against one peer's, lower is better unless noted."""

    scenario: str
    metric: str
    plsnap: float | None
    peer: str
    peer_value: float | None
    unit: str
    target: str = ""
    verdict: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """plsnap / peer (below 1 means plsnap is cheaper or faster)."""
        if self.plsnap is None or not self.peer_value:
            return None
        return self.plsnap / self.peer_value


@dataclass(slots=True)
class Results:
    """Rows collected by every scenario, plus free-form notes printed under the table."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, *args: Any, **kwargs: Any) -> Row:
        """Append a :class:`Row` built from the arguments."""
        row = Row(*args, **kwargs)
        self.rows.append(row)
        return row

    def note(self, text: str) -> None:
        """A line printed under the table."""
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


def fmt(value: float | None, unit: str = "") -> str:
    """A compact human rendering of ``value`` in ``unit``."""
    if value is None:
        return "-"
    if unit == "B":
        for size, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.2f} {suffix}"
        return f"{value:.0f} B"
    if unit == "x":
        return f"{value:.2f}x"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".strip()


def render_table(rows: Sequence[Row]) -> str:
    """A GitHub-flavoured markdown table of ``rows`` (also readable in a terminal)."""
    header = ["scenario", "metric", "plsnap", "peer", "peer value", "plsnap/peer", "target", "verdict"]
    lines = [header]
    for row in rows:
        ratio = row.ratio
        lines.append(
            [
                row.scenario,
                row.metric + (f" ({row.note})" if row.note else ""),
                fmt(row.plsnap, row.unit),
                row.peer,
                fmt(row.peer_value, row.unit),
                "-" if ratio is None else f"{ratio:.3g}",
                row.target,
                row.verdict,
            ]
        )
    lines = [[cell.replace("|", "\\|") for cell in line] for line in lines]  # markdown-safe
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def verdict(ok: bool | None) -> str:
    """``met`` / ``MISSED`` / empty."""
    if ok is None:
        return ""
    return "met" if ok else "MISSED"


# --- measuring -------------------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_bytes(pid: int) -> int:
    """VmRSS of process ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children_cpu() -> float:
    """User + system CPU seconds of every waited-for child so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_wall(argv: Sequence[str], runs: int, *, env: dict[str, str] | None = None, shell: bool = False) -> float:
    """Median wall seconds of ``runs`` executions of ``argv`` (output discarded; a failure raises)."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(
            argv if not shell else argv[0],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=True,
            env=env,
            shell=shell,
        )
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, result) of one call."""
    began = time.perf_counter()
    result = func()
    return time.perf_counter() - began, result


def raise_fd_limit() -> None:
    """Raise this process's open-file soft limit to the hard limit (thousands of client sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cache_dir() -> Path:
    """Where generated data sets are kept between runs (``$PLSNAP_BENCH_CACHE``, else a temp dir)."""
    path = Path(BENCH_CACHE or Path(tempfile.gettempdir()) / "plsnap-bench-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def dir_bytes(path: Path) -> tuple[int, int, int]:
    """(apparent bytes, allocated bytes on disk, file count) of every file under ``path``."""
    apparent = allocated = count = 0
    for root, _, files in os.walk(path):
        for name in files:
            st = os.stat(f"{root}/{name}")  # noqa: PTH116
            apparent += st.st_size
            allocated += st.st_blocks * 512
            count += 1
    return apparent, allocated, count


def need_tool(name: str) -> str:
    """The path of command ``name``, or SystemExit with an install hint."""
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"benchmarks need `{name}` on PATH (apt-get install {name}); see benchmarks/README.md")
    return found


# --- a server with a realistic processlist ---------------------------------------------------------------

APP_USERS = (("app", "app-secret-1"), ("report", "report-secret-2"), ("batch", "batch-secret-3"))
CAPTURE_USER = ("plsnap_cap", "cap-secret-9")

SCHEMA = (
    "CREATE DATABASE IF NOT EXISTS shop",
    "CREATE TABLE IF NOT EXISTS shop.orders (id BIGINT PRIMARY KEY, customer_id BIGINT, status VARCHAR(16), "
    "total DECIMAL(10,2), created_at DATETIME, KEY (customer_id))",
    "CREATE TABLE IF NOT EXISTS shop.customers (id BIGINT PRIMARY KEY, email VARCHAR(200), country CHAR(2))",
    "CREATE TABLE IF NOT EXISTS shop.order_items (order_id BIGINT, sku VARCHAR(32), qty INT, price DECIMAL(10,2))",
    "REPLACE INTO shop.orders VALUES (1, 1, 'paid', 10.00, NOW())",
    "REPLACE INTO shop.customers VALUES (1, 'a@example.com', 'DE')",
    "DELETE FROM shop.order_items",
    "INSERT INTO shop.order_items VALUES (1, 'SKU-1', 1, 10.00)",
)


def realistic_sleeping_query(rng: random.Random, seconds: int, *, long: bool = False) -> str:
    """A statement that looks like application SQL and sleeps ``seconds`` on the server (state User sleep).

    The sleep sits in a derived table, which the server evaluates whatever the literals match."""
    cid = rng.randint(1, 2_000_000)
    pause = f"(SELECT SLEEP({seconds}) AS pause) AS w"
    if long:
        ids = ", ".join(str(rng.randint(1, 10**8)) for _ in range(rng.randint(300, 900)))
        return (
            f"/* report:ExportJob.run batch={rng.randint(1, 9999)} */ SELECT o.id, o.customer_id, o.status, "
            f"o.total, o.created_at, c.email, c.country FROM {pause}, shop.orders o JOIN shop.customers c ON "
            f"c.id = o.customer_id WHERE o.id IN ({ids}) ORDER BY o.created_at DESC"
        )
    templates = (
        f"/* app:OrderRepository.findRecent */ SELECT o.id, o.status, o.total, o.created_at FROM {pause}, "
        f"shop.orders o WHERE o.customer_id = {cid} AND o.created_at > "
        f"'2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}' ORDER BY o.created_at DESC "
        f"LIMIT {rng.choice((10, 20, 50))}",
        f"/* app:Checkout.totals */ SELECT SUM(i.qty * i.price) AS total FROM {pause}, shop.order_items i "
        f"WHERE i.order_id = {rng.randint(1, 10**7)}",
        f"SELECT c.id, c.email FROM {pause}, shop.customers c WHERE c.email = 'user{cid}@example.com'",
        f"/* report:Daily.revenue */ SELECT DATE(o.created_at) d, o.status, COUNT(*), SUM(o.total) FROM "
        f"{pause}, shop.orders o WHERE o.created_at >= NOW() - INTERVAL {rng.randint(1, 90)} DAY "
        "GROUP BY d, o.status",
        f"SELECT o.*, c.country FROM {pause}, shop.orders o JOIN shop.customers c ON c.id = o.customer_id "
        f"WHERE c.country = '{rng.choice(('DE', 'FR', 'US', 'GB', 'PL'))}' AND o.status IN ('paid', 'shipped') "
        f"LIMIT {rng.randint(1, 500)}",
    )
    return rng.choice(templates)


class Load:
    """Client sessions against a server over TCP (so Host shows ``127.0.0.1:port``): idle and sleeping ones.

    Sleeping sessions have sent a statement and never read its result, so one process can hold thousands of
    them. :meth:`resize` grows or shrinks to an exact session count with the same running share.
    """

    def __init__(self, server: DevServer, *, active_share: float = 0.15, long_share: float = 0.1, seed: int = 7):
        self.server = server
        self.active_share = active_share
        self.long_share = long_share
        self.rng = random.Random(seed)
        self.conns: list[tuple[pymysql.connections.Connection, bool]] = []

    def _connect(self) -> pymysql.connections.Connection:
        user, password = self.rng.choice(APP_USERS)
        return pymysql.connect(
            host="127.0.0.1",
            port=self.server.port,
            user=user,
            password=password,
            database="shop",
            autocommit=True,
            ssl_disabled=True,
            connect_timeout=10,
        )

    def resize(self, total: int) -> None:
        """Hold exactly ``total`` sessions, ``active_share`` of them running a long SLEEP statement."""
        dropped: list[int] = []
        while len(self.conns) > total:
            conn, _ = self.conns.pop()
            dropped.append(conn.thread_id())
            _hard_close(conn)
        if dropped:  # a running SLEEP does not notice its client went away: end those sessions for sure
            root = self.server.root_connect()
            try:
                with root.cursor() as cur:
                    for thread_id in dropped:
                        with contextlib.suppress(pymysql.MySQLError):
                            cur.execute(f"KILL {int(thread_id)}")
            finally:
                root.close()
        want_active = round(total * self.active_share)
        active = sum(1 for _, is_active in self.conns if is_active)
        while len(self.conns) < total:
            conn = self._connect()
            make_active = active < want_active
            if make_active:
                long = self.rng.random() < self.long_share
                sql = realistic_sleeping_query(self.rng, 7200, long=long)
                conn._execute_command(COMMAND.COM_QUERY, sql)  # sent, never read: runs until killed
                active += 1
            self.conns.append((conn, make_active))

    def close(self) -> None:
        """Drop every session."""
        self.resize(0)


def _hard_close(conn: pymysql.connections.Connection) -> None:
    """Close the socket of a connection without the COM_QUIT round trip (its statement may still run)."""
    sock = conn._sock
    conn._sock = None
    conn._rfile = None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def start_server(
    basedir: Path, *, extra_args: Sequence[str] = (), capture_grants: Sequence[str] = ("PROCESS ON *.*",)
) -> DevServer:
    """A started DevServer with the shop schema, the application users and a capture user (PROCESS only unless
    ``capture_grants`` says more); ``extra_args`` go to mariadbd (e.g. ``--plugin-load-add=metadata_lock_info``)."""
    server = DevServer(basedir, extra_args=extra_args)
    server.start()
    server.execute(*SCHEMA)
    for user, password in APP_USERS:
        server.create_user(user, password, ("SELECT ON shop.*",))
    server.create_user(*CAPTURE_USER, capture_grants)
    return server


def thread_cpu_ns(pid: int, tid: int) -> int:
    """Nanoseconds thread ``tid`` of process ``pid`` has run on a CPU (``/proc/<pid>/task/<tid>/schedstat``):
    exact, unlike the 10 ms ticks of ``stat``, and blind to every other thread of the server."""
    return int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])


def connection_tid(server: DevServer, connection_id: int) -> int:
    """The OS thread serving connection ``connection_id`` (MariaDB's PROCESSLIST.TID; one thread per
    connection, the server's default ``thread_handling``)."""
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT TID FROM information_schema.PROCESSLIST WHERE ID = %s", (connection_id,))
            row = cur.fetchone()
    finally:
        conn.close()
    if row is None or row[0] is None:
        raise RuntimeError(f"connection {connection_id} has no thread id in the processlist")
    return int(row[0])


LOCK_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS shop.stock (sku INT PRIMARY KEY, qty INT) ENGINE=InnoDB",
    "REPLACE INTO shop.stock VALUES (1, 10), (2, 20), (3, 30)",
    "CREATE TABLE IF NOT EXISTS shop.coupons (id INT PRIMARY KEY, code VARCHAR(16)) ENGINE=InnoDB",
    "REPLACE INTO shop.coupons VALUES (1, 'WELCOME')",
)


class LockPileup:
    """Lock waits that stay for the whole measurement, so every lock query of the capture returns rows.

    - row locks: one open transaction holds ``SELECT ... FOR UPDATE`` on a row of ``shop.stock``;
      ``row_waiters`` sessions run an ``UPDATE`` of that row (state ``Updating``, trx ``LOCK WAIT``);
    - metadata locks: the same transaction has read ``shop.coupons``; an ``ALTER TABLE`` on it waits for the
      metadata lock, and ``mdl_waiters`` ``SELECT`` statements queue behind the ALTER ("Waiting for table metadata
      lock").

    Waits are sent and never read (like :class:`Load`'s sleeping statements), with lock timeouts of an hour;
    :meth:`close` kills every session, which rolls the holder back.
    """

    def __init__(self, server: DevServer, *, row_waiters: int = 4, mdl_waiters: int = 4) -> None:
        self.server = server
        self.row_waiters = row_waiters
        self.mdl_waiters = mdl_waiters
        self.conns: list[pymysql.connections.Connection] = []

    @property
    def sessions(self) -> int:
        """How many sessions the pileup holds (holder, waiters, the ALTER)."""
        return 2 + self.row_waiters + self.mdl_waiters

    def _session(self) -> pymysql.connections.Connection:
        conn = self.server.root_connect(read_timeout=None)
        with conn.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 3600, lock_wait_timeout = 3600")
        self.conns.append(conn)
        return conn

    def _wait_for(self, expected: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            conn = self.server.root_connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE '%metadata lock%' "
                        "OR (STATE = 'Updating' AND INFO LIKE 'UPDATE shop.stock%')"
                    )
                    row = cur.fetchone()
            finally:
                conn.close()
            if row is not None and int(row[0]) >= expected:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"lock pileup: {row[0] if row else 0} of {expected} sessions waiting")
            time.sleep(0.05)

    def start(self) -> LockPileup:
        """Open the holder, then the waiters; return once every waiter waits."""
        self.server.execute(*LOCK_SCHEMA)
        holder = self._session()
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT qty FROM shop.stock WHERE sku = 1 FOR UPDATE")
            cur.fetchall()
            cur.execute("SELECT code FROM shop.coupons WHERE id = 1")
            cur.fetchall()
        for _ in range(self.row_waiters):
            self._session()._execute_command(COMMAND.COM_QUERY, "UPDATE shop.stock SET qty = qty - 1 WHERE sku = 1")
        self._session()._execute_command(COMMAND.COM_QUERY, "ALTER TABLE shop.coupons ADD COLUMN note VARCHAR(20)")
        self._wait_for(self.row_waiters + 1)
        for _ in range(self.mdl_waiters):
            self._session()._execute_command(COMMAND.COM_QUERY, "SELECT code FROM shop.coupons WHERE id = 1")
        self._wait_for(self.row_waiters + 1 + self.mdl_waiters)
        return self

    def close(self) -> None:
        """Kill every session of the pileup."""
        if not self.conns:
            return
        root = self.server.root_connect()
        try:
            with root.cursor() as cur:
                for conn in self.conns:
                    with contextlib.suppress(pymysql.MySQLError):
                        cur.execute(f"KILL {int(conn.thread_id())}")
        finally:
            root.close()
        for conn in self.conns:
            _hard_close(conn)
        self.conns.clear()


SYSBENCH_USER = ("sbtest", "sb-secret-4")


class Sysbench:
    """``sysbench oltp_read_write`` against the dev server over its unix socket: ``threads`` connections,
    at most ``rate`` transactions per second (0 = as fast as it can), stopping by itself after ``seconds``."""

    def __init__(
        self, server: DevServer, *, threads: int = 48, rate: int = 200, tables: int = 4, table_size: int = 10_000
    ) -> None:
        self.server = server
        self.threads = threads
        self.rate = rate
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = [
            need_tool("sysbench"),
            "oltp_read_write",
            "--db-driver=mysql",
            f"--mysql-socket={server.socket}",
            f"--mysql-user={SYSBENCH_USER[0]}",
            f"--mysql-password={SYSBENCH_USER[1]}",
            "--mysql-db=sbtest",
            f"--tables={tables}",
            f"--table-size={table_size}",
        ]

    @property
    def command(self) -> str:
        """The run command line, password left out (for the docs)."""
        shown = [a for a in self.base[1:] if not a.startswith(("--mysql-password", "--mysql-socket"))]
        return "sysbench " + " ".join([*shown, f"--threads={self.threads}", f"--rate={self.rate}", "run"])

    def prepare(self) -> None:
        """Create the sbtest database, its user and tables."""
        self.server.execute("CREATE DATABASE IF NOT EXISTS sbtest")
        self.server.create_user(*SYSBENCH_USER, ("ALL ON sbtest.*",))
        subprocess.run([*self.base, "prepare"], check=True, capture_output=True)

    def start(self, seconds: int, log: Path) -> None:
        """Run in the background for at most ``seconds`` (the run ends by itself even if this process dies)."""
        argv = [*self.base, f"--threads={self.threads}", f"--rate={self.rate}", f"--time={seconds}", "run"]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while process_count(self.server) < self.threads:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sysbench did not start; see {log}")
            time.sleep(0.1)

    def stop(self) -> None:
        """End the run (SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def mariadbd_pid(server: DevServer) -> int:
    """The mariadbd process id."""
    return int(server.pid_file.read_text().strip())


def process_count(server: DevServer) -> int:
    """Rows of the server's processlist right now (as root)."""
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST")
            row = cur.fetchone()
            return int(row[0])
    finally:
        conn.close()


def run_alone(run: Callable[[Results], None]) -> None:
    """Run one scenario on its own and print its rows (each bench_*.py module's ``main``)."""
    results = Results()
    run(results)
    print(render_table(results.rows))
