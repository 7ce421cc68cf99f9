"""Fault-injection scenarios against the real throwaway mariadbd (the shared fixtures of tests/conftest.py).

Every test here is marked ``integration``; each prints its measured figures (run ``pytest -s`` to see them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.tools import FakeClock

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected from this directory as ``integration``."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def clock(tmp_path: Path) -> FakeClock:
    """A libfaketime offset file (starting at +0) for daemons started with ``env=clock.env()``."""
    return FakeClock(tmp_path / "faketime.offset")
