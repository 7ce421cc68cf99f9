"""Scenario 4, window summary: the top statements over 1 hour and over 1 day of the 7-day, 10 s archive.

- **plsnap**: ``.venv/bin/plsnap window FROM TO --format json`` (real CLI, wall incl. start-up, median of runs);
  groups by pt-fingerprint, and also computes the activity series and the longest executions.
- **DuckDB**: ``benchmarks/duckdb_window.py`` in a fresh interpreter (start-up and ``import duckdb``
  included, like the CLI): ``read_json`` over the window's partitions, unnest, filter running, group by a regexp
  normalisation of ``info`` (see that file).
- **seed**: ``ls | awk`` picks the window's gzip files, ``zcat`` them into ``awk``, which skips idle rows and
  groups by the same regexp normalisation, then ``sort | head``.

All three report sample counts per group; the script prints the top group of each as a cross-check.
Run alone: ``.venv/bin/python -m benchmarks.bench_window``.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from benchmarks.common import PLSNAP, PYTHON, Results, need_tool, run_alone, verdict
from benchmarks.synth_archive import INSTANCE, Dataset, Spec, generate, seed_name
from plsnap.archive.layout import hour_start, partition_path
from plsnap.model import format_ts

RUNS = 3
TARGET_DAY_S = 2.0
DUCKDB_SCRIPT = Path(__file__).with_name("duckdb_window.py")
AWK = r"""
BEGIN { FS = "\t" }
$1 == "Id" || $5 == "Sleep" || $5 == "Daemon" || $5 == "Connect" || $8 == "NULL" { next }
$8 == "SHOW FULL PROCESSLIST" { next }
{
    q = tolower($8)
    gsub(/'([^'\\]|\\.|'')*'/, "?", q)
    gsub(/[0-9]+(\.[0-9]+)?/, "?", q)
    gsub(/\(\?(, ?\?)*\)/, "(?+)", q)
    c[q]++
}
END { for (q in c) print c[q] "\t" q }
"""
SEED_WINDOW = """cd "$1" && ls -1 | awk -v a="$2" -v b="$3" '$0 >= a && $0 < b' | xargs zcat -- \
| awk -f "$4" | sort -t "$(printf '\\t')" -k1,1nr -k2 | head -n 10"""


def partitions(dataset: Dataset, start: datetime, end: datetime) -> list[str]:
    """The partition files a window touches (what a DBA would pass to DuckDB)."""
    paths = []
    hour = hour_start(start)
    while hour < end:
        path = partition_path(dataset.instance_dir, hour)
        if path.exists():
            paths.append(str(path))
        hour += timedelta(hours=1)
    return paths


def _timed(argv: list[str], runs: int, budget: float = 15.0) -> tuple[float, bytes]:
    """Median wall of up to ``runs`` runs; stops early once ``budget`` seconds are spent (slow commands)."""
    walls: list[float] = []
    out = b""
    while len(walls) < runs and sum(walls) < budget:
        began = time.perf_counter()
        out = subprocess.run(argv, stdout=subprocess.PIPE, check=True).stdout
        walls.append(time.perf_counter() - began)
    return statistics.median(walls), out


def run(results: Results, dataset: Dataset | None = None, runs: int = RUNS) -> None:
    """Time the three ways over one hour and one day; add rows to ``results``."""
    need_tool("awk")
    need_tool("zcat")
    try:
        import duckdb  # noqa: F401
    except ImportError:
        raise SystemExit("the window benchmark needs DuckDB: .venv/bin/pip install duckdb (the bench extra)") from None
    dataset = dataset or generate(Spec())
    day = dataset.spec.start + timedelta(days=3)
    windows = {"1 hour": (day + timedelta(hours=14), day + timedelta(hours=15)), "1 day": (day, day + timedelta(1))}
    with tempfile.TemporaryDirectory(prefix="plsnap-bench-window-") as tmp:
        awk_file = Path(tmp) / "top.awk"
        awk_file.write_text(AWK)
        for label, (start, end) in windows.items():
            a, b = format_ts(start), format_ts(end)
            ours, out = _timed(
                [str(PLSNAP), "window", a, b, "--data-dir", str(dataset.data_dir), "--instance", INSTANCE,
                 "--format", "json"],
                runs,
            )  # fmt: skip
            summary = orjson.loads(out)
            duck, duck_out = _timed([str(PYTHON), str(DUCKDB_SCRIPT), a, b, *partitions(dataset, start, end)], runs)
            duck_top = orjson.loads(duck_out)
            seed, seed_out = _timed(
                ["bash", "-c", SEED_WINDOW, "seed-window", str(dataset.seed_dir), seed_name(start), seed_name(end),
                 str(awk_file)],
                runs,
            )  # fmt: skip
            seed_top = seed_out.decode().splitlines()
            print(
                f"[window] {label}: plsnap {ours:.2f} s ({summary['samples']} samples; top "
                f"{summary['top'][0]['samples']} x {summary['top'][0]['key'][:60]!r}), duckdb {duck:.2f} s (top "
                f"{duck_top[0]['samples']} x {duck_top[0]['key'][:60]!r}), seed {seed:.2f} s (top "
                f"{seed_top[0][:70]!r})",
                flush=True,
            )
            scen = f"4 window {label}"
            is_day = label == "1 day"
            results.add(
                scen,
                "top-N wall",
                ours,
                "DuckDB read_json",
                duck,
                "s",
                target="<= 2 s and <= DuckDB" if is_day else "",
                verdict=verdict(ours <= TARGET_DAY_S and ours <= duck) if is_day else "",
                note="DuckDB: regexp normalisation",
            )
            results.add(scen, "top-N wall", ours, "seed zcat+awk", seed, "s", note="awk: regexp normalisation")
            results.extra[f"window-{label}"] = {
                "plsnap_s": ours,
                "duckdb_s": duck,
                "seed_s": seed,
                "plsnap_top": [(g["samples"], g["key"]) for g in summary["top"][:3]],
                "duckdb_top": [(g["samples"], g["key"]) for g in duck_top[:3]],
                "seed_top": seed_top[:3],
            }


def main() -> None:
    """Run the scenario alone and print its rows."""
    run_alone(run)


if __name__ == "__main__":
    main()
