"""`make demo` works end to end: throwaway server, lock pileup, daemon, then window and at."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


def test_demo_finds_the_lock_pileup() -> None:
    """A short demo run prints the window summary and an `at` table naming the idle lock holder."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "12"], capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "top fingerprint by estimated active time" in out
    assert "update stock set n = n - ? where sku = ?" in out
    assert "idle in transaction" in out
    assert "blocked_by" in out
