"""Scenario 5, daemon footprint: RSS and CPU of the real ``plsnap daemon`` over many samples.

A private mariadbd holds 500 sessions (15% running a long statement); ``.venv/bin/plsnap daemon`` samples it
with ``PLSNAP_CAPTURE_INTERVAL=0.2s`` (default config otherwise: ``source = auto``, fsync on, log level info,
no metrics endpoint). After a warm-up of ``WARMUP`` samples the script reads VmRSS and utime+stime from /proc,
then again every 10 s and at the end; samples are counted from the archive (decoded lines, gap lines included).

Reported: RSS at the start and end, peak, drift (end - start), CPU seconds per sample, and the samples the
scheduler actually took versus the slots (a capture slower than the interval skips slots, by design).
Run alone: ``.venv/bin/python -m benchmarks.bench_daemon --samples 10000``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.devserver import DevServer

from benchmarks.common import (
    CAPTURE_USER,
    PLSNAP,
    Load,
    Results,
    fmt,
    proc_cpu_seconds,
    proc_rss_bytes,
    raise_fd_limit,
    start_server,
    verdict,
)
from plsnap.archive.layout import list_partitions

INTERVAL = 0.2
SESSIONS = 500
DEFAULT_SAMPLES = 2000
WARMUP = 50
TARGET_RSS = 60 * 2**20
TARGET_DRIFT = 2**20


def count_samples(instance_dir: Path) -> int:
    """Complete snapshot lines in the archive, the live partition's open frame included (``zstdcat | wc -l``)."""
    if not instance_dir.exists():
        return 0
    partitions = list_partitions(instance_dir).partitions
    total = 0
    for part in partitions:
        argv = ["zstdcat", "-q", str(part.path)]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as cat:
            out = cat.stdout
            assert out is not None
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: out.read(1 << 20), b""))  # noqa: B023
    return total


def write_config(path: Path, server: DevServer, data_dir: Path) -> Path:
    """A daemon config for the PROCESS-only capture user over the unix socket."""
    password_file = path.with_name("cap.pw")
    password_file.write_text(CAPTURE_USER[1])
    password_file.chmod(0o600)
    path.write_text(
        "[mysql]\n"
        f'socket = "{server.socket}"\nuser = "{CAPTURE_USER[0]}"\npassword_file = "{password_file}"\n'
        "[archive]\n"
        f'data_dir = "{data_dir}"\ninstance = "bench"\n'
        "[log]\n"
        'format = "json"\nlevel = "info"\n'
    )
    return path


def measure(
    server: DevServer, workdir: Path, samples: int, interval: float = INTERVAL
) -> dict[str, float | int | list[int]]:
    """Run the daemon for about ``samples`` samples and return its footprint figures."""
    data_dir = workdir / "daemon-archive"
    config = write_config(workdir / "daemon.toml", server, data_dir)
    env = {**os.environ, "PLSNAP_CAPTURE_INTERVAL": f"{interval}s"}
    instance_dir = data_dir / "bench"
    with (workdir / "daemon.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(PLSNAP), "daemon", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + 120
        while count_samples(instance_dir) < WARMUP:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not reach {WARMUP} samples; see {workdir / 'daemon.log'}")
            time.sleep(1.0)
        n0, t0 = count_samples(instance_dir), time.monotonic()
        rss0, cpu0 = proc_rss_bytes(proc.pid), proc_cpu_seconds(proc.pid)
        rss_series = [rss0]
        end_at = t0 + samples * interval
        while time.monotonic() < end_at:
            time.sleep(min(10.0, max(0.0, end_at - time.monotonic())))
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited early; see {workdir / 'daemon.log'}")
            rss_series.append(proc_rss_bytes(proc.pid))
        rss1, cpu1, t1 = proc_rss_bytes(proc.pid), proc_cpu_seconds(proc.pid), time.monotonic()
        n1 = count_samples(instance_dir)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    taken = n1 - n0
    return {
        "samples": taken,
        "slots": round((t1 - t0) / interval),
        "rss_start": rss0,
        "rss_end": rss1,
        "rss_peak": max(rss_series),
        "drift": rss1 - rss0,
        "cpu_per_sample_ms": (cpu1 - cpu0) / max(taken, 1) * 1e3,
        "seconds": t1 - t0,
        "rss_series": rss_series,
        "exit_code": proc.returncode,
    }


def run(results: Results, samples: int = DEFAULT_SAMPLES, server: DevServer | None = None) -> None:
    """Measure and add rows to ``results`` (starts its own server and load unless given a server)."""
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="plsnap-bench-daemon-") as tmp:
        workdir = Path(tmp)
        own = server is None
        srv = start_server(workdir / "db") if server is None else server
        load = Load(srv, seed=11)
        try:
            load.resize(SESSIONS)
            time.sleep(1.0)
            print(
                f"[daemon] {SESSIONS} sessions, {samples} samples at {INTERVAL}s (~{samples * INTERVAL / 60:.0f} min)"
            )
            figures = measure(srv, workdir, samples)
        finally:
            load.close()
            if own:
                srv.stop()
    print(
        f"[daemon] {figures['samples']} samples in {figures['slots']} slots: RSS {fmt(figures['rss_start'], 'B')} -> "
        f"{fmt(figures['rss_end'], 'B')} (peak {fmt(figures['rss_peak'], 'B')}, drift {fmt(figures['drift'], 'B')}), "
        f"CPU {figures['cpu_per_sample_ms']:.2f} ms/sample, exit {figures['exit_code']}",
        flush=True,
    )
    series = figures["rss_series"]
    assert isinstance(series, list)
    marks = [series[round(i * (len(series) - 1) / 4)] for i in range(5)]
    print("[daemon] RSS at 0/25/50/75/100% of the run: " + ", ".join(fmt(m, "B") for m in marks), flush=True)
    scen = f"5 daemon {SESSIONS} sess, {figures['samples']} samples"
    results.add(
        scen,
        "RSS at end",
        figures["rss_end"],
        "",
        None,
        "B",
        target="<= 60 MB",
        verdict=verdict(figures["rss_end"] <= TARGET_RSS and figures["rss_peak"] <= TARGET_RSS),
    )
    results.add(
        scen,
        "RSS drift",
        figures["drift"],
        "",
        None,
        "B",
        target="<= 1 MB",
        verdict=verdict(abs(figures["drift"]) <= TARGET_DRIFT),
        note=f"start {fmt(figures['rss_start'], 'B')}",
    )
    results.add(scen, "CPU/sample", figures["cpu_per_sample_ms"], "", None, "ms")
    results.extra[f"daemon-{samples}"] = figures


def main() -> None:
    """Run the scenario alone and print its rows."""
    from benchmarks.common import render_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    args = parser.parse_args()
    results = Results()
    run(results, args.samples)
    print(render_table(results.rows))


if __name__ == "__main__":
    main()
