"""Every benchmark scenario, then ONE table of plsnap against its peers with ratios (``make bench``).

Scenarios (one module each, see their docstrings): 1 capture cost and one triggered burst (``bench_capture``,
about 8 minutes: three processlists, two modes, 7 rounds, a 60 s burst), 2 storage (``bench_storage``), 2b
storage of a live server before and after compaction (``bench_storage_live``: sysbench plus an idle pool
sampled every 5 s for ``--live-minutes``, default 15), 3 replay latency (``bench_replay``), 4 window summary
over rollups and raw rows (``bench_window``), 6 the rollup keeper's CPU per sample and its bytes
(``bench_rollup``), 5 daemon footprint (``bench_daemon``). The synthetic 7-day archive of scenarios 2-4 is
generated once by ``synth_archive`` and cached (``$PLSNAP_BENCH_CACHE``, default /tmp/plsnap-bench-cache).

Usage::

    .venv/bin/python benchmarks/run_all.py [--only capture,storage,storage-live,replay,window,rollup,daemon]
                                           [--daemon-samples 2000] [--live-minutes 15]
                                           [--markdown FILE] [--json FILE]

The machine is shared and noisy: trust the ratios taken within one run more than the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from benchmarks import (  # noqa: E402
    bench_capture,
    bench_daemon,
    bench_replay,
    bench_rollup,
    bench_storage,
    bench_storage_live,
    bench_window,
)
from benchmarks.common import Results, render_table  # noqa: E402
from benchmarks.synth_archive import Spec, generate  # noqa: E402

SCENARIOS = ("capture", "storage", "storage-live", "replay", "window", "rollup", "daemon")


def _first_line(argv: list[str]) -> str:
    if not shutil.which(argv[0]):
        return f"{argv[0]}: not installed"
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def machine() -> list[str]:
    """Lines describing the machine and the tool versions."""
    from importlib.metadata import PackageNotFoundError, version

    def pkg(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} (not installed)"

    lines = [f"nproc: {_first_line(['nproc'])}"]
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines()[:10]
    lines += [f"lscpu: {line.strip()}" for line in lscpu]
    lines += [
        f"python: {platform.python_version()} ({sys.executable})",
        f"mariadbd: {_first_line(['mariadbd', '--version'])}",
        f"mysql client: {_first_line(['mysql', '--version'])}",
        f"sysbench: {_first_line(['sysbench', '--version'])}",
        f"zstd: {_first_line(['zstd', '--version'])}",
        f"gzip: {_first_line(['gzip', '--version'])}",
        f"awk: {Path(shutil.which('awk') or 'awk').resolve()} ({_first_line(['awk', '--version'])})",
        "python packages: " + ", ".join(pkg(n) for n in ("duckdb", "zstandard", "orjson", "PyMySQL", "APScheduler")),
    ]
    return lines


def main() -> int:
    """Run the selected scenarios and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios to run")
    parser.add_argument(
        "--daemon-samples",
        type=int,
        default=bench_daemon.DEFAULT_SAMPLES,
        help=f"samples for the daemon footprint (default {bench_daemon.DEFAULT_SAMPLES}; 10000 = 33 min)",
    )
    parser.add_argument(
        "--live-minutes", type=float, default=15.0, help="minutes of live sampling for storage-live (default 15)"
    )
    parser.add_argument("--markdown", metavar="FILE", help="also write the table and machine details here")
    parser.add_argument("--json", metavar="FILE", help="also write every raw figure here")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    began = time.perf_counter()
    started_at = datetime.now(UTC)
    results = Results()
    timings: dict[str, float] = {}
    week = None
    if {"storage", "replay", "window"} & set(chosen):
        t0 = time.perf_counter()
        week = generate(Spec())
        timings["synthetic archive (cached after the first run)"] = time.perf_counter() - t0
    steps = {
        "capture": lambda: bench_capture.run(results),
        "storage": lambda: bench_storage.run(results, week),
        "storage-live": lambda: bench_storage_live.run(results, minutes=args.live_minutes),
        "replay": lambda: bench_replay.run(results, week),
        "window": lambda: bench_window.run(results, week),
        "rollup": lambda: bench_rollup.run(results),
        "daemon": lambda: bench_daemon.run(results, args.daemon_samples),
    }
    failed: list[str] = []
    for name in SCENARIOS:
        if name in chosen:
            t0 = time.perf_counter()
            try:
                steps[name]()
            except (Exception, SystemExit) as exc:  # one broken scenario must not hide the others' figures
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
                print(f"[{name}] FAILED: {exc}", file=sys.stderr, flush=True)
            timings[name] = time.perf_counter() - t0
    total = time.perf_counter() - began

    table = render_table(results.rows)
    command = " ".join([".venv/bin/python benchmarks/run_all.py", *sys.argv[1:]])  # what `make bench` runs
    header = f"plsnap benchmarks, {started_at:%Y-%m-%d %H:%M} UTC, `{command}`, total {total / 60:.1f} min"
    print()
    print(header)
    print(table)
    print("runtime per step: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    for failure in failed:
        print(f"FAILED {failure}")
    if args.markdown:
        body = [f"### {header}", "", table, "", "Runtime per step: "]
        body[-1] += ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        body += [f"FAILED {failure}" for failure in failed]
        body += ["", "Machine:", "", "```", *machine(), "```", ""]
        Path(args.markdown).write_text("\n".join(body))
    if args.json:
        payload = {
            "started_at": started_at.isoformat(),
            "total_seconds": total,
            "timings": timings,
            "rows": [{**{k: getattr(r, k) for k in r.__slots__}, "ratio": r.ratio} for r in results.rows],
            "extra": results.extra,
            "failed": failed,
        }
        Path(args.json).write_text(json.dumps(payload, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
