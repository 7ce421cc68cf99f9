"""Scenario 6, rollup cost in the daemon: CPU per sample that keeping the hour's rollup adds to writing it.

One hour of the synthetic history (300 sessions, 10 s; :mod:`benchmarks.synth_archive`) is generated in
memory, then written twice, as the recorder writes it: ``encode_line`` + ``ArchiveWriter.append`` (fsync off),
once alone and once followed by ``rollup.Keeper.feed`` (which reads the record as a reader reads the line,
folds it into the live slice, and rewrites the live rollup at every frame close; the final rollup at
rotation). The difference in
process CPU, per sample, is the rollup's cost; median of 3 rounds, alternating. The rollup's bytes are
compared with the partition's.
Run alone: ``.venv/bin/python -m benchmarks.bench_rollup``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchmarks.common import Results, run_alone, verdict
from benchmarks.synth_archive import Simulation, Spec
from plsnap.archive.format import encode_line
from plsnap.archive.layout import list_partitions
from plsnap.archive.writer import ArchiveWriter
from plsnap.rollup import Keeper

ROUNDS = 3
TARGET_MS = 1.0


def _write(lines: list[tuple[bytes, object, dict[str, object]]], root: Path, *, keep: bool) -> float:
    """Process CPU seconds to write ``lines`` (with a keeper when ``keep``)."""
    writer = ArchiveWriter(root, fsync=False)
    keeper = Keeper(writer.directory) if keep else None
    began = time.process_time()
    for line, ts, record in lines:
        writer.append(line, ts)  # type: ignore[arg-type]
        frames, writer.closed_frames = writer.closed_frames, []
        if keeper is not None:
            keeper.feed(record, opened=writer.opened, fresh=writer.fresh, frames=frames)
    writer.close_partition()
    if keeper is not None:
        keeper.close(writer.closed_frames)
    took = time.process_time() - began
    writer.close()
    return took


def run(results: Results) -> None:
    """Measure and add the rows."""
    spec = Spec(hours=1.0 + 30 / 3600)
    snapshots = list(Simulation(spec))
    records = [s.to_record() for s in snapshots]
    lines = [(encode_line(r), s.ts, r) for s, r in zip(snapshots, records, strict=True)]
    start = spec.start
    hour = [ts for _, ts, _ in lines if start <= ts < start + timedelta(hours=1)]
    alone: list[float] = []
    kept: list[float] = []
    with tempfile.TemporaryDirectory(prefix="plsnap-bench-rollup-") as tmp:
        kept_root = Path(tmp)
        for round_ in range(ROUNDS):
            for keep in (round_ % 2 == 0, round_ % 2 == 1):
                root = Path(tmp) / f"r{round_}{int(keep)}" / "db1"
                (kept if keep else alone).append(_write(lines, root, keep=keep))
                kept_root = root if keep else kept_root
        first = list_partitions(kept_root).partitions[0]
        rollup = (first.path.parent / first.rollup).stat().st_size if first.rollup else 0
        data = first.path.stat().st_size
    per_sample = (statistics.median(kept) - statistics.median(alone)) / len(lines) * 1000
    writing = statistics.median(alone) / len(lines) * 1000
    share = 100.0 * rollup / data if data else 0.0
    print(
        f"[rollup] {len(hour)} samples in the hour, {spec.sessions} sessions: writing {writing:.2f} ms/sample, "
        f"the rollup adds {per_sample:.2f} ms/sample (CPU); rollup {rollup} B = {share:.2f}% of the hour's "
        f"{data} B partition",
        flush=True,
    )
    results.add("6 rollup in the daemon (300 sessions, 10 s)", "CPU per sample", per_sample, "writing the line",
                writing, "ms", target=f"<= {TARGET_MS:g} ms", verdict=verdict(per_sample <= TARGET_MS),
                note="Keeper.feed, median of 3 rounds")  # fmt: skip
    results.add("6 rollup in the daemon (300 sessions, 10 s)", "bytes / partition bytes", share, "-", None, "%",
                target="<= 3 %", verdict=verdict(share <= 3.0), note="the final rollup the keeper writes")  # fmt: skip


def main() -> None:
    """Run the scenario alone and print its rows."""
    run_alone(run)


if __name__ == "__main__":
    main()
