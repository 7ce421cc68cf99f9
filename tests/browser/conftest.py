"""Browser tests: every test here drives Debian's headless Chromium (``/usr/bin/chromium``) with Playwright.

They fail (never skip) when Chromium or Playwright is missing: ``make test`` installs Chromium when run as root
(scripts/ensure-system-deps.sh) and Playwright with the ``test`` extra. Playwright's own browser download
(``playwright install``) is never used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("PLSNAP_CHROMIUM", "/usr/bin/chromium"))
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected from this directory as ``browser``."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session, with background networking off."""
    if not CHROMIUM.exists():
        pytest.fail(f"browser tests need Debian's chromium at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                  "--disable-default-apps", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"],
        )  # fmt: skip
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots are kept: ``$PLSNAP_ARTIFACTS`` when set, else the test's temporary directory."""
    where = Path(os.environ.get("PLSNAP_ARTIFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where
