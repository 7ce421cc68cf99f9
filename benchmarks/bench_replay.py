"""Scenario 3, replay latency: "what was running at T" on a 7-day archive sampled every 10 s (300 sessions).

- **plsnap**: the real CLI, ``.venv/bin/plsnap at T --data-dir D --instance db1 --format json``, wall time
  including interpreter start-up, median over several instants times several runs. ``plsnap --version`` is
  timed too, to show how much of it is start-up.
- **seed**: on the same snapshots stored as one gzip file per sample (see :mod:`benchmarks.synth_archive`):
  ``ls | awk '$0 <= "pl-<T>.gz"' | tail -n 1`` picks the newest file at or before T, then ``zcat`` prints it.

plsnap answers more than the seed does (each session's start, confidence, the samples on both sides of T), the
seed prints the raw processlist of one file. Run alone: ``.venv/bin/python -m benchmarks.bench_replay``.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from datetime import datetime, timedelta

import orjson

from benchmarks.common import PLSNAP, Results, need_tool, run_alone, verdict
from benchmarks.synth_archive import INSTANCE, Dataset, Spec, generate, seed_name
from plsnap.model import format_ts

RUNS = 3
TARGET_MS = 100.0
SEED_AT = """cd "$1" && f=$(ls -1 | awk -v t="$2" '$0 <= t' | tail -n 1) && zcat -- "$f" """


def instants(dataset: Dataset) -> list[datetime]:
    """Five instants spread over the archive, away from its edges, some near partition boundaries."""
    start = dataset.spec.start
    offsets = (
        timedelta(days=1, hours=14, minutes=23, seconds=17),
        timedelta(days=3, hours=3, minutes=14, seconds=5),
        timedelta(days=4, hours=9, minutes=0, seconds=3),
        timedelta(days=5, hours=22, minutes=59, seconds=58),
        timedelta(days=6, hours=12, minutes=30, seconds=41),
    )
    return [start + offset for offset in offsets]


def _wall(argv: list[str]) -> tuple[float, bytes]:
    began = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, check=True).stdout
    return time.perf_counter() - began, out


def run(results: Results, dataset: Dataset | None = None, runs: int = RUNS) -> None:
    """Time plsnap at and the seed's at-T over several instants; add rows to ``results``."""
    need_tool("zcat")
    dataset = dataset or generate(Spec())
    plsnap_times: list[float] = []
    seed_times: list[float] = []
    startup = statistics.median(_wall([str(PLSNAP), "--version"])[0] for _ in range(runs))
    sessions_seen: list[int] = []
    for moment in instants(dataset):
        at = format_ts(moment)
        argv = [str(PLSNAP), "at", at, "--data-dir", str(dataset.data_dir), "--instance", INSTANCE]
        argv += ["--format", "json"]
        seed_argv = ["bash", "-c", SEED_AT, "seed-at", str(dataset.seed_dir), seed_name(moment)]
        for _ in range(runs):
            wall, out = _wall(argv)
            plsnap_times.append(wall)
            seed_wall, seed_out = _wall(seed_argv)
            seed_times.append(seed_wall)
        answer = orjson.loads(out)
        sessions_seen.append(len(answer["sessions"]))
        seed_rows = sum(1 for line in seed_out.splitlines()[1:] if b"\tSleep\t" not in line)
        print(
            f"[replay] at {at}: plsnap {wall * 1e3:.0f} ms ({len(answer['sessions'])} running sessions, "
            f"before {answer['before']['ts'] if answer['before'] else None}), seed {seed_wall * 1e3:.0f} ms "
            f"({seed_rows} non-idle rows)",
            flush=True,
        )
    ours, seed = statistics.median(plsnap_times) * 1e3, statistics.median(seed_times) * 1e3
    results.add(
        "3 replay at T (7 d, 10 s)",
        "wall, incl. start-up",
        ours,
        "seed ls|awk + zcat",
        seed,
        "ms",
        target=f"<= {TARGET_MS:g} ms",
        verdict=verdict(ours <= TARGET_MS),
    )
    results.add("3 replay at T (7 d, 10 s)", "of which start-up", startup * 1e3, "plsnap at", ours, "ms")
    results.extra["replay"] = {
        "plsnap_ms": plsnap_times,
        "seed_ms": seed_times,
        "startup_ms": startup * 1e3,
        "running_sessions": sessions_seen,
    }


def main() -> None:
    """Run the scenario alone and print its rows."""
    run_alone(run)


if __name__ == "__main__":
    main()
