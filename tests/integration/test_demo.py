"""`make demo` works end to end: throwaway server, lock pileup, daemon, then window and at."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


def test_demo_finds_both_pileups_and_keeps_the_archive(tmp_path: Path) -> None:
    """A short demo run prints the window summary, an `at` tree for the row-lock pileup and one for the
    metadata-lock pileup (each rooted at its idle holder), the lock-wait episodes, keeps the archive, and writes
    the HTML report next to it, printing the command that made it."""
    archive = tmp_path / "demo-archive"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "16", "--archive", str(archive)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "top fingerprint by estimated active time" in out
    assert "update stock set n = n - ? where sku = ?" in out
    assert "top blockers" in out
    assert out.count("ROOT BLOCKER") >= 2
    assert "metadata lock on shop.orders" in out and "row lock on shop.stock" in out
    assert "lock-wait episodes" in out
    assert (archive / "default").is_dir(), "the archive is kept"
    assert str(archive) in out
    report = tmp_path / "demo-report.html"
    assert "$ plsnap report 20" in out and f"-o {report}" in out, "the command that made the report is shown"
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and 'data-series="Updating"' in page
    assert "ROOT BLOCKER" in page


def test_demo_never_replaces_a_directory_it_did_not_make(tmp_path: Path) -> None:
    """Pointed at an existing directory that is not its own archive (say, the real data directory), the demo
    refuses with exit 2 and leaves every file there as it was."""
    precious = tmp_path / "plsnap"
    (precious / "default").mkdir(parents=True)
    (precious / "default" / "keep.txt").write_text("recorded history")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--archive", str(precious)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "is not an archive this demo made" in result.stderr
    assert (precious / "default" / "keep.txt").read_text() == "recorded history"
