"""Scenario 1, capture cost: plsnap's sample pipeline against the seed shell loop and a bare pymysql floor.

For processlists of about 200, 1,000 and 3,000 sessions (idle connections plus ``active_share`` of them running
a long ``SELECT ... SLEEP`` with application-like text, some of it several KB), made by :class:`common.Load`
against a private mariadbd (:class:`tests.devserver.DevServer`), this measures per sample:

- **plsnap**: ``Source.sample()`` + ``encode_line(snapshot.to_record())`` + ``ArchiveWriter.append`` exactly as
  ``Recorder.capture`` does (default config: ``source = auto``, which is ``information_schema`` on MariaDB, zstd
  level 3, fsync on), client CPU (``time.process_time``) and wall (``perf_counter``); also with
  ``source = show`` to separate the source's cost from the pipeline's.
- **seed**: a bash loop running ``mysql --socket ... -e 'SHOW FULL PROCESSLIST' | gzip > file`` per sample, its
  CPU from ``getrusage(RUSAGE_CHILDREN)`` (fork, exec, connect, gzip and the loop shell included).
- **floor**: one persistent pymysql connection running ``SHOW FULL PROCESSLIST`` and storing nothing.
- **server CPU** for each: mariadbd's utime+stime delta (``/proc/<pid>/stat``, 10 ms ticks) minus the idle
  rate measured just before, divided by the number of samples.

Run alone: ``.venv/bin/python -m benchmarks.bench_capture [--sizes 200,1000,3000]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
from tests.devserver import DevServer

from benchmarks.common import (
    CAPTURE_USER,
    Load,
    Results,
    children_cpu,
    mariadbd_pid,
    need_tool,
    proc_cpu_seconds,
    process_count,
    raise_fd_limit,
    start_server,
    verdict,
)
from plsnap.archive.format import encode_line
from plsnap.archive.writer import ArchiveWriter
from plsnap.config import load_config
from plsnap.source import Source

SIZES = (200, 1000, 3000)
TARGET_CPU_MS = {200: 3.0, 1000: 10.0}
MIN_SECONDS = 3.0  # each measurement runs at least this long (server CPU ticks are 10 ms)
MAX_SAMPLES = 300


class Measure:
    """Per-sample client CPU, wall and server CPU of a repeated action."""

    def __init__(self, cpu_ms: float, wall_ms: float, server_ms: float, samples: int, wall_p50_ms: float) -> None:
        self.cpu_ms = cpu_ms
        self.wall_ms = wall_ms
        self.server_ms = server_ms
        self.samples = samples
        self.wall_p50_ms = wall_p50_ms

    def __repr__(self) -> str:
        return (
            f"cpu {self.cpu_ms:.2f} ms, wall {self.wall_ms:.2f} ms (p50 {self.wall_p50_ms:.2f}), "
            f"server {self.server_ms:.2f} ms over {self.samples} samples"
        )


def idle_server_rate(pid: int, seconds: float = 1.5) -> float:
    """mariadbd CPU seconds per wall second while nobody queries it."""
    cpu0, t0 = proc_cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return (proc_cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)


def repeat(action: Callable[[], Any], pid: int, idle_rate: float) -> Measure:
    """Run ``action`` after 3 warm-up calls until MIN_SECONDS passed (at most MAX_SAMPLES times)."""
    for _ in range(3):
        action()
    walls: list[float] = []
    srv0, cpu0, wall0 = proc_cpu_seconds(pid), time.process_time(), time.perf_counter()
    while len(walls) < MAX_SAMPLES and (time.perf_counter() - wall0 < MIN_SECONDS or len(walls) < 10):
        began = time.perf_counter()
        action()
        walls.append(time.perf_counter() - began)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    server = proc_cpu_seconds(pid) - srv0 - idle_rate * wall
    n = len(walls)
    return Measure(cpu / n * 1e3, wall / n * 1e3, max(0.0, server) / n * 1e3, n, statistics.median(walls) * 1e3)


def plsnap_pipeline(server: DevServer, data_dir: Path, source: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    """The Recorder.capture hot path (sample, encode, append) and a closer."""
    config = load_config(
        None,
        environ={},
        overrides={
            "mysql": {"socket": str(server.socket), "user": CAPTURE_USER[0]},
            "capture": {"source": source, "interval": "10s"},
            "archive": {"data_dir": str(data_dir), "instance": f"bench-{source}"},
        },
    )
    src = Source(config, CAPTURE_USER[1])
    writer = ArchiveWriter(config.instance_dir, level=config.archive.level, fsync=config.archive.fsync)

    def action() -> None:
        snapshot = src.sample()
        if snapshot.error:
            raise RuntimeError(f"plsnap sample failed: {snapshot.error}")
        writer.append(encode_line(snapshot.to_record()), snapshot.ts)

    def close() -> None:
        writer.close()
        src.close()

    return action, close


def floor_pipeline(server: DevServer) -> tuple[Callable[[], Any], Callable[[], None]]:
    """A bare persistent pymysql SHOW FULL PROCESSLIST, nothing stored."""
    conn = pymysql.connect(
        unix_socket=str(server.socket),
        user=CAPTURE_USER[0],
        password=CAPTURE_USER[1],
        ssl_disabled=True,
        autocommit=True,
    )

    def action() -> None:
        with conn.cursor() as cur:
            cur.execute("SHOW FULL PROCESSLIST")
            cur.fetchall()

    return action, conn.close


def write_client_cnf(path: Path, server: DevServer) -> Path:
    """A [client] option file for the seed's mysql CLI (the PROCESS-only user, unix socket)."""
    path.write_text(f"[client]\nuser={CAPTURE_USER[0]}\npassword={CAPTURE_USER[1]}\nsocket={server.socket}\n")
    path.chmod(0o600)
    return path


def seed_loop(cnf: Path, out_dir: Path, samples: int, pid: int, idle_rate: float) -> tuple[Measure, int]:
    """The seed shell loop, ``samples`` iterations back to back; returns per-sample figures and bytes written."""
    script = (
        'i=0; while [ "$i" -lt "$1" ]; do '
        f"mysql --defaults-file={cnf} -e 'SHOW FULL PROCESSLIST' | gzip > \"$2/pl-$(date +%Y%m%d-%H%M%S)-$i.gz\"; "
        "i=$((i+1)); done"
    )
    subprocess.run(["bash", "-c", script, "seed", "2", str(out_dir)], check=True)  # warm-up
    child0, srv0, wall0 = children_cpu(), proc_cpu_seconds(pid), time.perf_counter()
    subprocess.run(["bash", "-c", script, "seed", str(samples), str(out_dir)], check=True)
    wall = time.perf_counter() - wall0
    cpu = children_cpu() - child0
    server = max(0.0, proc_cpu_seconds(pid) - srv0 - idle_rate * wall)
    sizes = [p.stat().st_size for p in out_dir.iterdir()]
    return (
        Measure(cpu / samples * 1e3, wall / samples * 1e3, server / samples * 1e3, samples, wall / samples * 1e3),
        int(statistics.mean(sizes)),
    )


def run(results: Results, sizes: tuple[int, ...] = SIZES, workdir: Path | None = None) -> None:
    """Measure every size and add rows to ``results``."""
    need_tool("mysql")
    need_tool("gzip")
    raise_fd_limit()
    own_tmp = None
    if workdir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="plsnap-bench-capture-")
        workdir = Path(own_tmp.name)
    server = start_server(workdir / "db")
    load = Load(server)
    try:
        pid = mariadbd_pid(server)
        cnf = write_client_cnf(workdir / "seed.cnf", server)
        for size in sizes:
            load.resize(size)
            time.sleep(1.0)  # let every statement reach the server
            rows = process_count(server)
            idle = idle_server_rate(pid)
            print(f"[capture] {size} sessions ({rows} processlist rows, idle server {idle * 1e3:.1f} ms/s)", flush=True)
            figures: dict[str, Measure] = {}
            for source in ("auto", "show"):
                action, close = plsnap_pipeline(server, workdir / f"archive-{size}", source)
                try:
                    figures[f"plsnap-{source}"] = repeat(action, pid, idle)
                finally:
                    close()
                print(f"  plsnap source={source}: {figures[f'plsnap-{source}']}", flush=True)
            action, close = floor_pipeline(server)
            try:
                figures["floor"] = repeat(action, pid, idle)
            finally:
                close()
            print(f"  floor (pymysql SHOW FULL PROCESSLIST): {figures['floor']}", flush=True)
            seed_dir = workdir / f"seed-{size}"
            seed_dir.mkdir()
            seed_n = max(10, min(60, int(MIN_SECONDS / max(figures["floor"].wall_ms / 1e3 * 4, 0.02))))
            figures["seed"], seed_bytes = seed_loop(cnf, seed_dir, seed_n, pid, idle)
            print(f"  seed (mysql -e | gzip): {figures['seed']}, {seed_bytes} B per file", flush=True)
            results.extra[f"capture-{size}"] = {k: vars(v) for k, v in figures.items()}
            ours, ours_show = figures["plsnap-auto"], figures["plsnap-show"]
            seed, floor = figures["seed"], figures["floor"]
            target = TARGET_CPU_MS.get(size)
            scen = f"1 capture {size}"
            results.add(
                scen,
                "client CPU/sample",
                ours.cpu_ms,
                "seed mysql|gzip",
                seed.cpu_ms,
                "ms",
                target=f"<= {target:g} ms" if target else "",
                verdict=verdict(ours.cpu_ms <= target) if target else "",
            )
            results.add(scen, "client CPU/sample", ours.cpu_ms, "floor pymysql SHOW", floor.cpu_ms, "ms")
            results.add(
                scen, "client CPU/sample", ours_show.cpu_ms, "floor pymysql SHOW", floor.cpu_ms, "ms", note="show"
            )
            results.add(scen, "wall/sample", ours.wall_ms, "seed mysql|gzip", seed.wall_ms, "ms")
            results.add(scen, "wall/sample", ours.wall_ms, "floor pymysql SHOW", floor.wall_ms, "ms")
            results.add(scen, "server CPU/sample", ours.server_ms, "seed mysql|gzip", seed.server_ms, "ms")
            results.add(
                scen,
                "server CPU/sample",
                ours_show.server_ms,
                "floor pymysql SHOW",
                floor.server_ms,
                "ms",
                note="show",
            )
    finally:
        load.close()
        server.stop()
        if own_tmp is not None:
            own_tmp.cleanup()


def main() -> None:
    """Run the scenario alone and print its rows."""
    from benchmarks.common import render_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="session counts, comma-separated")
    args = parser.parse_args()
    results = Results()
    run(results, tuple(int(s) for s in args.sizes.split(",")))
    print(render_table(results.rows))


if __name__ == "__main__":
    main()
