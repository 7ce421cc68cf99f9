"""Scenario 2, storage: bytes per sample and per week at 10 s and 60 s intervals.

The load is the synthetic history of :mod:`benchmarks.synth_archive` (300 sessions, about 78% idle, 50 query
templates, ``Time`` drifting, connections coming and going, a few gap lines), stored

- by plsnap: hourly partitions of 5-minute zstd frames (written at level 3, each closed hour compacted at
  ``[archive] compact_level``), rows with the MariaDB
  ``information_schema`` columns plsnap records by default (``time_ms``, ``memory_used``, ...); also re-encoded
  with only the ``SHOW FULL PROCESSLIST`` columns (what ``source = "show"`` stores) for one hour;
- by the seed loop: one gzip file per sample of ``mysql -e`` text (fewer columns: no ``time_ms``), counted by
  apparent size (favours the seed: on disk every file takes at least one 4 KiB block, also shown);
- and the compression limit: ``zstd -19 --long`` over one hour of the concatenated raw samples, both plsnap's
  JSON lines and the seed's text.

At 10 s the 7-day data set of scenario 3 is measured whole; at 60 s a 2-day history is generated (both cached).
Run alone: ``.venv/bin/python -m benchmarks.bench_storage``.
"""

from __future__ import annotations

import gzip
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

import orjson

from benchmarks.common import Results, dir_bytes, fmt, need_tool, run_alone, verdict
from benchmarks.synth_archive import Dataset, Spec, generate, seed_name
from plsnap.archive.format import decode_lines, encode_line
from plsnap.archive.layout import partition_path
from plsnap.archive.writer import ArchiveWriter
from plsnap.model import SESSION_KEYS, parse_ts

WEEK = 7 * 86400
TARGET_RATIO = 0.15


def zstd_limit(data: bytes) -> int:
    """Size of ``data`` after ``zstd -19 --long``."""
    result = subprocess.run(
        ["zstd", "-19", "--long=27", "-T2", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True
    )
    return len(result.stdout)


def show_columns_size(lines: list[bytes], workdir: Path) -> int:
    """Bytes plsnap's writer produces for ``lines`` with only the SHOW FULL PROCESSLIST columns kept."""
    with ArchiveWriter(workdir, fsync=False) as writer:
        total = 0
        for line in lines:
            record = orjson.loads(line)
            if record.get("sessions"):
                record["sessions"] = [{k: s.get(k) for k in SESSION_KEYS} for s in record["sessions"]]
            record["source"] = "show_full_processlist"
            total += writer.append(encode_line(record), parse_ts(record["ts"]))
    return total


def hour_figures(dataset: Dataset, workdir: Path) -> dict[str, float]:
    """Per-sample bytes over one full hour in the middle of the data set, for every way of storing it."""
    hour = dataset.spec.start + timedelta(hours=dataset.spec.hours // 2)
    part = partition_path(dataset.instance_dir, hour)
    lines = decode_lines(part.read_bytes())[0]
    n = len(lines)
    raw_json = b"".join(line + b"\n" for line in lines)
    seed_files = [
        dataset.seed_dir / seed_name(parse_ts(orjson.loads(line)["ts"]).replace(microsecond=0)) for line in lines
    ]
    seed_gz = [path.read_bytes() for path in seed_files]
    raw_text = b"".join(gzip.decompress(blob) for blob in seed_gz)
    return {
        "samples": n,
        "plsnap": part.stat().st_size / n,
        "plsnap_show": show_columns_size(lines, workdir / "show") / n,
        "seed": sum(map(len, seed_gz)) / n,
        "zstd_json": zstd_limit(raw_json) / n,
        "zstd_text": zstd_limit(raw_text) / n,
        "raw_json": len(raw_json) / n,
        "raw_text": len(raw_text) / n,
    }


def run(results: Results, week10: Dataset | None = None) -> None:
    """Measure both intervals and add rows to ``results``."""
    need_tool("zstd")
    datasets = {
        10: week10 or generate(Spec(interval=10.0)),
        60: generate(Spec(interval=60.0, hours=48)),
    }
    with tempfile.TemporaryDirectory(prefix="plsnap-bench-storage-") as tmp:
        for interval, dataset in datasets.items():
            samples = dataset.stats["samples"]
            plsnap_bytes, _, _ = dir_bytes(dataset.instance_dir)
            seed_bytes, seed_alloc, seed_files = dir_bytes(dataset.seed_dir)
            hour = hour_figures(dataset, Path(tmp) / f"h{interval}")
            per_week = WEEK / interval
            ours, seed = plsnap_bytes / samples, seed_bytes / samples
            print(
                f"[storage] {interval}s: {samples} samples ({dataset.stats['gaps']} gaps); plsnap {fmt(ours, 'B')} "
                f"/sample, seed {fmt(seed, 'B')} /sample ({fmt(seed_alloc / seed_files, 'B')} on disk); one hour: "
                f"{ {k: round(v) for k, v in hour.items()} }",
                flush=True,
            )
            scen = f"2 storage {interval:g}s"
            ratio = ours / seed
            results.add(
                scen,
                "bytes/sample",
                ours,
                "seed gzip files",
                seed,
                "B",
                target=f"<= {TARGET_RATIO}x seed",
                verdict=verdict(ratio <= TARGET_RATIO),
            )
            results.add(scen, "bytes/sample", ours, "seed, on disk (4K blocks)", seed_alloc / seed_files, "B")
            results.add(scen, "bytes/week", ours * per_week, "seed gzip files", seed * per_week, "B")
            results.add(scen, "bytes/sample (1 h)", hour["plsnap"], "zstd -19 --long, raw JSON", hour["zstd_json"], "B")
            results.add(
                scen, "bytes/sample (1 h)", hour["plsnap"], "zstd -19 --long, seed text", hour["zstd_text"], "B"
            )
            results.add(
                scen, "bytes/sample (1 h)", hour["plsnap_show"], "seed gzip files", hour["seed"], "B", note="show cols"
            )
            results.extra[f"storage-{interval}"] = {
                "samples": samples,
                "plsnap_per_sample": ours,
                "seed_per_sample": seed,
                "seed_alloc_per_sample": seed_alloc / seed_files,
                "hour": hour,
            }


def main() -> None:
    """Run the scenario alone and print its rows."""
    run_alone(run)


if __name__ == "__main__":
    main()
