"""Scenario 4, window summary: the top statements over 1 hour, 1 day and 7 days of the 7-day, 10 s archive.

- **plsnap**: ``.venv/bin/plsnap window FROM TO --format json`` (real CLI, wall incl. start-up, median of runs),
  reading the hourly rollups where they match the raw rows (the default), and ``--no-rollups`` (raw rows only)
  for the 1-hour and 1-day windows. Both print the same JSON (checked here). It groups by pt-fingerprint and
  also computes the activity series, gaps, the longest executions and lock episodes.
- **DuckDB**: ``benchmarks/duckdb_window.py`` in a fresh interpreter (start-up and ``import duckdb``
  included, like the CLI): ``read_json`` over the window's partitions, unnest, filter running, group by a regexp
  normalisation of ``info`` (see that file).
- **seed**: ``ls | awk`` picks the window's gzip files, ``zcat`` them into ``awk``, which skips idle rows and
  groups by the same regexp normalisation, then ``sort | head``.

Before timing, ``plsnap reindex`` builds the rollups (its cost is reported), and the newest hour is made
*live*: its rollup is rebuilt as the daemon's keeper leaves it 35 minutes into the hour (slices up to 35:00, the
rest raw). The day and week windows are unaligned (they start at ``HH:MM:05``) and end 5 s after 35:00 of that
live hour, as a "last 24 hours" window at 03:35:05 would.

All three report sample counts per group; the script prints the top group of each as a cross-check. Last,
``plsnap report`` over the same day (HTML page, wall and size), through rollups and ``--no-rollups``.
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
from plsnap.archive.fs import SafeDir
from plsnap.archive.layout import hour_start, list_partitions, partition_path
from plsnap.model import format_ts
from plsnap.rollup import build_from_raw, write

RUNS = 3
TARGET_DAY_S = 0.5
TARGET_WEEK_S = 1.5
TARGET_VS_DUCKDB = 7.0
LIVE_AT = timedelta(minutes=35)
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


def prepare_rollups(dataset: Dataset, results: Results) -> datetime:
    """Build the rollups (``plsnap reindex``, timed), make the newest hour live; return the live "now"."""
    began = time.perf_counter()
    done = subprocess.run(
        [str(PLSNAP), "reindex", "--data-dir", str(dataset.data_dir), "--instance", INSTANCE, "--format", "json"],
        stdout=subprocess.PIPE,
        check=True,
    ).stdout
    took = time.perf_counter() - began
    built = [row for row in orjson.loads(done) if row["action"] == "built"]
    listing = list_partitions(dataset.instance_dir)
    live = listing.partitions[-1]
    now = live.start + LIVE_AT
    header, part, slices = build_from_raw(dataset.instance_dir, live, now=now, built_by="daemon")
    with SafeDir.open_root(dataset.instance_dir, writable=True) as root, root.subdir(live.date_name) as folder:
        write(folder, header, part, slices, level=3)
    listing = list_partitions(dataset.instance_dir)
    rollup_bytes = sum((p.path.parent / p.rollup).stat().st_size for p in listing.partitions if p.rollup)
    data_bytes = sum(p.path.stat().st_size for p in listing.partitions if p.has_main)
    share = 100.0 * rollup_bytes / data_bytes
    print(
        f"[window] reindex: {len(built)} rollup(s) built in {took:.1f} s; rollups {rollup_bytes / 2**20:.1f} MiB "
        f"= {share:.2f}% of the partitions' {data_bytes / 2**20:.0f} MiB",
        flush=True,
    )
    results.add("6 rollups (7 d, 10 s, 300 sessions)", "bytes / partition bytes", share, "-", None, "%",
                target="<= 3 %", verdict=verdict(share <= 3.0), note=f"{rollup_bytes} B of rollups")  # fmt: skip
    if built:
        results.add("6 rollups (7 d, 10 s, 300 sessions)", "reindex wall per hour", took / len(built), "-", None,
                    "s", note="plsnap reindex from raw rows; the daemon builds them as it captures")  # fmt: skip
    return now


def run(results: Results, dataset: Dataset | None = None, runs: int = RUNS) -> None:
    """Time the three ways over one hour, one day and seven days; add rows to ``results``."""
    need_tool("awk")
    need_tool("zcat")
    try:
        import duckdb  # noqa: F401
    except ImportError:
        raise SystemExit("the window benchmark needs DuckDB: .venv/bin/pip install duckdb (the bench extra)") from None
    dataset = dataset or generate(Spec())
    now = prepare_rollups(dataset, results)
    day = dataset.spec.start + timedelta(days=3)
    windows = {
        "1 hour": (day + timedelta(hours=14), day + timedelta(hours=15)),
        "1 day": (now + timedelta(seconds=5) - timedelta(days=1), now + timedelta(seconds=5)),
        "7 days": (dataset.spec.start + timedelta(hours=3, minutes=14, seconds=5), now + timedelta(seconds=5)),
    }
    with tempfile.TemporaryDirectory(prefix="plsnap-bench-window-") as tmp:
        awk_file = Path(tmp) / "top.awk"
        awk_file.write_text(AWK)
        for label, (start, end) in windows.items():
            _window(results, dataset, label, start, end, runs, awk_file)
        _report(results, dataset, *windows["1 day"], Path(tmp))


def _report(results: Results, dataset: Dataset, start: datetime, end: datetime, tmp: Path) -> None:
    """``plsnap report`` over the unaligned day with the live hour: through rollups (the median of three runs,
    the first one's page cache being cold), and from raw rows only (one run)."""
    base = [str(PLSNAP), "report", format_ts(start), format_ts(end), "--data-dir", str(dataset.data_dir)]
    base += ["--instance", INSTANCE]
    pages = {name: tmp / f"report-{name}.html" for name in ("rollups", "raw")}
    ours, _ = _timed([*base, "-o", str(pages["rollups"])], 3, budget=30.0)
    raw, _ = _timed([*base, "--no-rollups", "-o", str(pages["raw"])], 1, budget=120.0)
    size = pages["rollups"].stat().st_size
    if abs(size - pages["raw"].stat().st_size) > 64:
        raise SystemExit("[window] the report through rollups differs in size from the raw rows' report")
    print(f"[window] report 1 day: {ours:.2f} s through rollups, {raw:.2f} s raw rows only, {size / 1024:.0f} KiB")
    results.add("7 report 1 day (unaligned, live hour)", "HTML page wall", ours, "plsnap report --no-rollups", raw,
                "s", target="page <= 2 MiB", verdict=verdict(size <= 2 * 2**20),
                note=f"{size / 1024:.0f} KiB self-contained page")  # fmt: skip


def _window(  # noqa: PLR0917 - one scenario's parameters
    results: Results, dataset: Dataset, label: str, start: datetime, end: datetime, runs: int, awk_file: Path
) -> None:
    a, b = format_ts(start), format_ts(end)
    base = [str(PLSNAP), "window", a, b, "--data-dir", str(dataset.data_dir), "--instance", INSTANCE]
    base += ["--format", "json"]
    ours, out = _timed(base, runs)
    summary = orjson.loads(out)
    week = label == "7 days"
    raw = None
    if not week:
        raw, raw_out = _timed([*base, "--no-rollups"], runs, budget=30.0)
        if raw_out != out:
            raise SystemExit(f"[window] {label}: the answer through rollups differs from the raw rows'")
    duck, duck_out = _timed([str(PYTHON), str(DUCKDB_SCRIPT), a, b, *partitions(dataset, start, end)], runs, 40.0)
    duck_top = orjson.loads(duck_out)
    seed, seed_out = _timed(
        ["bash", "-c", SEED_WINDOW, "seed-window", str(dataset.seed_dir), seed_name(start), seed_name(end),
         str(awk_file)],
        1 if week else runs,
    )  # fmt: skip
    seed_top = seed_out.decode().splitlines()
    print(
        f"[window] {label}: plsnap {ours:.2f} s"
        + (f" (raw rows only {raw:.2f} s)" if raw is not None else "")
        + f" ({summary['samples']} samples; top {summary['top'][0]['samples']} x {summary['top'][0]['key'][:50]!r}), "
        f"duckdb {duck:.2f} s (top {duck_top[0]['samples']} x {duck_top[0]['key'][:50]!r}), seed {seed:.2f} s "
        f"(top {seed_top[0][:60]!r})",
        flush=True,
    )
    scen = f"4 window {label}" + (" (unaligned, live hour)" if label != "1 hour" else "")
    target, ok = "", None
    if label == "1 day":
        target = f"<= {TARGET_DAY_S} s, >= {TARGET_VS_DUCKDB:g}x DuckDB"
        ok = ours <= TARGET_DAY_S and duck / ours >= TARGET_VS_DUCKDB
    elif week:
        target = f"<= {TARGET_WEEK_S} s, >= {TARGET_VS_DUCKDB:g}x DuckDB"
        ok = ours <= TARGET_WEEK_S and duck / ours >= TARGET_VS_DUCKDB
    results.add(scen, "top-N wall", ours, "DuckDB read_json", duck, "s", target=target, verdict=verdict(ok),
                note="DuckDB: regexp normalisation")  # fmt: skip
    results.add(scen, "top-N wall", ours, "seed zcat+awk", seed, "s", note="awk: regexp normalisation")
    if raw is not None:
        results.add(scen, "top-N wall", ours, "plsnap --no-rollups", raw, "s", note="same JSON, raw rows only")
    results.extra[f"window-{label}"] = {
        "plsnap_s": ours,
        "plsnap_raw_s": raw,
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
