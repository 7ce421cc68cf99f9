"""A newcomer demo: a throwaway MariaDB, a small workload with a row-lock and a metadata-lock pileup, the
daemon, then the answers read from the archive alone.

Run it with ``make demo`` (about a minute). The server has its own datadir, port and socket under a temporary
directory and is removed at the end; the system server on 3306 is never contacted. The archive is kept in
``./demo-archive`` (``--archive DIR``), so you can go on exploring it, and the incident report of the pile-ups
is written next to it, ``./demo-report.html``.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pymysql

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make the repository's `tests` package importable
    sys.path.insert(0, str(REPO))

from tests.devserver import DevServer  # noqa: E402

ORDERS = 2000
REPORT_NAME = "demo-report.html"
#: Marks a directory the demo made, so that a rerun replaces only its own archive, never a directory it was handed.
DEMO_MARK = ".plsnap-demo"


def main() -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the daemon samples (default 60)")
    parser.add_argument(
        "--archive", type=Path, default=Path("demo-archive"), help="where the archive is kept (default ./demo-archive)"
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="also take a screenshot of the report's top in headless chromium (docs/images/report.png is made so)",
    )
    args = parser.parse_args()
    archive = args.archive.absolute()
    if archive.exists() or archive.is_symlink():
        if archive.is_symlink() or not (archive / DEMO_MARK).is_file():
            print(f"demo: {archive} exists and is not an archive this demo made: pass another --archive DIR",
                  file=sys.stderr)  # fmt: skip
            return 2
        shutil.rmtree(archive)
    archive.mkdir(parents=True)
    (archive / DEMO_MARK).write_text("made by scripts/demo.py; the next demo run replaces this directory\n")
    base = Path(tempfile.mkdtemp(prefix="plsnap-demo-"))
    server = DevServer(base / "mariadb", extra_args=("--plugin-load-add=metadata_lock_info",))
    stop = threading.Event()
    try:
        say(f"starting a throwaway MariaDB (metadata_lock_info plugin loaded) under {base} ...")
        server.start()
        prepare(server)
        password = secrets.token_urlsafe(16)
        server.create_user("plsnap", password, ("PROCESS ON *.*",))
        config = write_config(base, server, password, archive)
        say(f"starting `plsnap daemon` (2 s interval) for {args.seconds:.0f} s, archive in {archive} ...")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "plsnap.cli", "daemon", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        workers = [threading.Thread(target=steady_load, args=(server, stop, n), daemon=True) for n in range(4)]
        for worker in workers:
            worker.start()
        began = time.time()
        hold = max(6.0, args.seconds * 0.2)
        time.sleep(args.seconds * 0.2)
        row_at = lock_pileup(server, hold=hold)
        time.sleep(max(1.0, args.seconds * 0.1))
        mdl_at = metadata_pileup(server, hold=hold)
        time.sleep(max(1.0, began + args.seconds - time.time()))
        stop.set()
        for worker in workers:
            worker.join(10)
        time.sleep(2.5)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        finished = time.time()
        start = datetime.fromtimestamp(row_at - args.seconds * 0.1, UTC)
        end = datetime.fromtimestamp(mdl_at + hold + 4, UTC)
        data = ["--data-dir", str(archive)]
        commands = [
            ["window", iso(start), iso(end), "--top", "5"],
            ["at", iso(datetime.fromtimestamp(row_at + hold / 2, UTC))],
            ["at", iso(datetime.fromtimestamp(mdl_at + hold / 2, UTC))],
            ["locks", iso(start), iso(end)],
        ]
        for command in commands:
            say("$ plsnap " + " ".join(command) + " --data-dir " + shlex.quote(str(args.archive)))
            subprocess.run([sys.executable, "-m", "plsnap.cli", *command, *data, "--utc"], check=True)
        # the report covers the whole run: the steady load before, between and after the pile-ups too
        report = archive.with_name(REPORT_NAME)
        shown = shlex.quote(str(args.archive.with_name(REPORT_NAME)))
        window = (iso(datetime.fromtimestamp(began - 2, UTC)), iso(datetime.fromtimestamp(finished + 1, UTC)))
        say(f"$ plsnap report {' '.join(window)} --data-dir {shlex.quote(str(args.archive))} -o {shown}")
        subprocess.run(
            [sys.executable, "-m", "plsnap.cli", "report", *window, "--data-dir", str(args.archive), "--utc", "-o",
             str(report)],
            check=True,
        )  # fmt: skip
        say(f"the report is one self-contained page: open {report.as_uri()} in a browser (it works offline)")
        if args.screenshot:
            screenshot(report, args.screenshot.absolute())
            say(f"screenshot of the report: {args.screenshot}")
        say(
            f"the archive stays in {archive}: explore it with `plsnap snapshots --data-dir {args.archive}`, "
            f"`plsnap window -1h now --data-dir {args.archive}` or "
            f"`zstdcat {args.archive}/default/*/*.jsonl.zst | jq .ts`"
        )
        return 0
    finally:
        stop.set()
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def screenshot(page: Path, target: Path) -> None:
    """The report from its title to the end of the DB load chart, as Debian's headless chromium draws it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            tab.goto(page.as_uri(), wait_until="load")
            box = tab.locator("section#load").bounding_box()
            assert box is not None
            tab.screenshot(path=str(target), clip={"x": 0, "y": 0, "width": 1280, "height": box["y"] + box["height"]},
                           full_page=True)  # fmt: skip
        finally:
            browser.close()


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def prepare(server: DevServer) -> None:
    server.execute(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.orders (id INT PRIMARY KEY, customer_id INT, status VARCHAR(16), amount DECIMAL(10,2),"
        " KEY (customer_id)) ENGINE=InnoDB",
        "CREATE TABLE shop.stock (sku VARCHAR(16) PRIMARY KEY, n INT) ENGINE=InnoDB",
        "INSERT INTO shop.stock VALUES ('A-1', 1000), ('B-2', 1000)",
    )
    rows = ", ".join(f"({i}, {i % 97}, 'paid', {i % 500}.25)" for i in range(ORDERS))
    server.execute(f"INSERT INTO shop.orders VALUES {rows}")  # noqa: S608


def connect(server: DevServer) -> pymysql.connections.Connection:
    return server.root_connect(database="shop")


def steady_load(server: DevServer, stop: threading.Event, seed: int) -> None:
    """Short queries, some slow reports (SLEEP stands in for a heavy scan), like an application would."""
    rng = random.Random(seed)
    conn = connect(server)
    try:
        with conn.cursor() as cur:
            while not stop.is_set():
                kind = rng.random()
                if kind < 0.15:
                    cur.execute(
                        "SELECT customer_id, SUM(amount), SLEEP(%s) FROM orders WHERE customer_id = %s "
                        "GROUP BY customer_id",
                        (rng.choice([2, 3, 5]), rng.randint(1, 96)),
                    )
                elif kind < 0.6:
                    cur.execute("SELECT * FROM orders WHERE id = %s", (rng.randint(0, ORDERS - 1),))
                else:
                    cur.execute("UPDATE orders SET status = %s WHERE id = %s", ("shipped", rng.randint(0, ORDERS - 1)))
                cur.fetchall()
                time.sleep(rng.uniform(0.05, 0.3))
    finally:
        conn.close()


def lock_pileup(server: DevServer, hold: float) -> float:
    """One transaction holds a row lock for ``hold`` seconds while five sessions queue behind it."""
    say(f"lock pileup: one session holds a row lock on stock 'A-1' for {hold:.0f} s, five wait behind it")
    holder = connect(server)
    holder.autocommit(False)
    with holder.cursor() as cur:
        cur.execute("UPDATE stock SET n = n - 1 WHERE sku = 'A-1'")
    started = time.time()
    waiters = []
    for n in range(5):
        thread = threading.Thread(target=wait_for_lock, args=(server, n), daemon=True)
        thread.start()
        waiters.append(thread)
    time.sleep(hold)
    holder.commit()
    holder.close()
    for thread in waiters:
        thread.join(30)
    return started


def metadata_pileup(server: DevServer, hold: float) -> float:
    """An idle transaction that read ``orders``; an ALTER waiting for it; reports queued behind the ALTER."""
    say(f"metadata-lock pileup: an idle transaction keeps `orders` open for {hold:.0f} s; an ALTER waits; "
        "reports queue behind it")  # fmt: skip
    holder = connect(server)
    holder.autocommit(False)
    with holder.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM orders WHERE status = 'paid'")
        cur.fetchall()
    started = time.time()
    alter = threading.Thread(target=run_alone, args=(server, "ALTER TABLE orders ADD COLUMN note VARCHAR(32)"))
    alter.start()
    time.sleep(1.0)
    readers = [
        threading.Thread(target=run_alone, args=(server, f"SELECT COUNT(*) FROM orders WHERE customer_id = {n}"))  # noqa: S608 - integers from a constant tuple
        for n in (7, 11, 13)
    ]
    for reader in readers:
        reader.start()
    time.sleep(hold)
    holder.rollback()
    holder.close()
    for thread in (alter, *readers):
        thread.join(60)
    return started


def run_alone(server: DevServer, statement: str) -> None:
    conn = connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            cur.fetchall()
    finally:
        conn.close()


def wait_for_lock(server: DevServer, n: int) -> None:
    conn = connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE stock SET n = n - %s WHERE sku = 'A-1'", (n + 1,))
    finally:
        conn.close()


def write_config(base: Path, server: DevServer, password: str, archive: Path) -> Path:
    secret = base / "plsnap.pw"
    secret.write_text(password)
    os.chmod(secret, 0o600)  # noqa: PTH101
    config = base / "plsnap.toml"
    config.write_text(
        f'[mysql]\nsocket = "{server.socket}"\nuser = "plsnap"\npassword_file = "{secret}"\n'
        f'[capture]\ninterval = "2s"\n[archive]\ndata_dir = "{archive}"\nfsync = false\n'
    )
    return config


if __name__ == "__main__":
    sys.exit(main())
