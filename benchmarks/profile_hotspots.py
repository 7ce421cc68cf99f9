"""Where plsnap spends its time: cProfile of the capture pipeline, ``plsnap window`` and ``plsnap at``.

Not part of ``make bench``. Prints, per target, the functions with the largest cumulative and own CPU time
(cProfile's default wall clock: ``recv_into``/``fsync`` lines are waits, not CPU), as a percentage of the
profiled total, so a slow figure in the table can be traced to code. cProfile inflates functions called
millions of times; ``py-spy record -f raw`` (``.venv/bin/pip install py-spy``) gives a sampling view.

    .venv/bin/python -m benchmarks.profile_hotspots [--only capture,window,at] [--sessions 1000] [--top 18]

``window`` and ``at`` run the CLI's own code path in-process (``plsnap.cli.main``) on the cached 7-day archive.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import io
import os
import pstats
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from benchmarks.bench_capture import plsnap_pipeline
from benchmarks.common import PLSNAP, VENV_BIN, Load, raise_fd_limit, start_server
from benchmarks.synth_archive import INSTANCE, Spec, generate
from plsnap import cli
from plsnap.model import format_ts


def report(profile: cProfile.Profile, title: str, top: int) -> None:
    """Print the top functions by cumulative and by own time, with percentages of the total."""
    stats = pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n=== {title}: {total:.3f} s profiled ===")
    entries = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (path, line, name), (_cc, calls, own, cum, _callers) in entries.items():
        where = f"{Path(path).name}:{line}({name})" if path != "~" else name
        rows.append((cum, own, calls, where))
    print(f"{'cum %':>6} {'own %':>6} {'calls':>9}  function   (sorted by cumulative)")
    for cum, own, calls, where in sorted(rows, reverse=True)[:top]:
        print(f"{100 * cum / total:6.1f} {100 * own / total:6.1f} {calls:9d}  {where}")
    print(f"{'own %':>6} {'cum %':>6} {'calls':>9}  function   (sorted by own time)")
    for cum, own, calls, where in sorted(rows, key=lambda r: -r[1])[:top]:
        print(f"{100 * own / total:6.1f} {100 * cum / total:6.1f} {calls:9d}  {where}")


def report_raw(path: Path, title: str, top: int) -> None:
    """Aggregate a ``py-spy record -f raw`` file by function: own and cumulative share of the samples."""
    total = 0
    own: collections.Counter[str] = collections.Counter()
    cum: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        for frame in set(frames):
            cum[frame] += n
        own[frames[-1]] += n
    print(f"\n=== {title}: {total} py-spy samples ===")
    print(f"{'own %':>6} {'cum %':>6}  function   (sorted by own time)")
    for frame, n in own.most_common(top):
        print(f"{100 * n / total:6.1f} {100 * cum[frame] / total:6.1f}  {frame}")
    print(f"{'cum %':>6}  function   (sorted by cumulative time)")
    for frame, n in cum.most_common(top):
        print(f"{100 * n / total:6.1f}  {frame}")


def py_spy() -> str | None:
    """The py-spy executable, if installed."""
    return shutil.which("py-spy", path=f"{VENV_BIN}:{os.environ.get('PATH', '')}")


@contextlib.contextmanager
def sampling(title: str, top: int) -> Iterator[None]:
    """py-spy samples this process for the duration of the block (cProfile if py-spy is missing)."""
    spy = py_spy()
    if spy is None:
        profile = cProfile.Profile()
        profile.enable()
        yield
        profile.disable()
        report(profile, title + " (cProfile; install py-spy for a sampling profile)", top)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "raw.txt"
        argv = [spy, "record", "--pid", str(os.getpid()), "-r", "250", "-f", "raw", "-o", str(out)]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # let it attach
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
        report_raw(out, title, top)


def profile_capture(sessions: int, samples: int, top: int) -> None:
    """The Recorder.capture hot path against ``sessions`` sessions."""
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="plsnap-prof-") as tmp:
        server = start_server(Path(tmp) / "db")
        load = Load(server)
        try:
            load.resize(sessions)
            time.sleep(1.0)
            for source in ("auto", "show"):
                action, close, _ = plsnap_pipeline(server, Path(tmp) / "archive", source)
                try:
                    for _ in range(3):
                        action()
                    with sampling(f"capture, {sessions} sessions, source={source}, {samples} samples", top):
                        for _ in range(samples):
                            action()
                finally:
                    close()
        finally:
            load.close()
            server.stop()


def profile_cli(argv: list[str], title: str, top: int) -> None:
    """One run of the CLI: under py-spy as a subprocess if installed, else in-process under cProfile."""
    spy = py_spy()
    if spy is not None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "raw.txt"
            subprocess.run(
                [spy, "record", "-r", "250", "-f", "raw", "-o", str(out), "--", str(PLSNAP), *argv],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            report_raw(out, title, top)
        return
    profile = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()):
        profile.enable()
        code = cli.main(argv)
        profile.disable()
    report(profile, f"{title} (exit {code})", top)


def main() -> None:
    """Profile the chosen targets."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="capture,window,at")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    if "capture" in chosen:
        profile_capture(args.sessions, args.samples, args.top)
    if chosen & {"window", "at"}:
        dataset = generate(Spec())
        common = ["--data-dir", str(dataset.data_dir), "--instance", INSTANCE, "--format", "json"]
        day = dataset.spec.start + timedelta(days=3)
        if "window" in chosen:
            window = [format_ts(day), format_ts(day + timedelta(days=1))]
            profile_cli(["window", *window, *common], "plsnap window, 1 day", args.top)
        if "at" in chosen:
            moment = format_ts(day + timedelta(hours=3, minutes=14, seconds=5))
            profile_cli(["at", moment, *common], "plsnap at", args.top)


if __name__ == "__main__":
    main()
