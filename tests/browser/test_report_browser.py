"""The HTML report in a real browser (headless Chromium): opened from a file:// URL it logs no console error,
makes no request, draws one series per state, switches stacks without any script, shows the same top
statements as `plsnap window --format json`, and a hostile statement text stays text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from plsnap.archive import ArchiveReader
from plsnap.cli import main
from tests import incident

WINDOW = ("2026-11-28T03:00:00Z", "2026-11-28T03:10:00Z")


@pytest.fixture
def report_file(tmp_path: Path) -> tuple[Path, Path]:
    """(data dir, report.html) of the incident archive."""
    data = incident.archive(tmp_path / "data")
    target = tmp_path / "report.html"
    assert main(["report", *WINDOW, "--data-dir", str(data), "-o", str(target)]) == 0
    return data, target


def states_in(data: Path) -> set[str]:
    """The states of running sessions in the archive, read with the archive reader."""
    with ArchiveReader.open(data, "db1") as reader:
        return {s.state or "" for snap in reader.iter_snapshots() for s in snap.sessions or () if s.active}


class Watch:
    """Everything a page does that the test must see: console messages, page errors, requests, dialogs."""

    def __init__(self, page: Any) -> None:
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def test_report_in_a_browser(
    browser: Any, report_file: tuple[Path, Path], artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """From file://: no console error, no request but the file itself, no dialog; the state chart has one series
    per state in the archive; the top-statements table is window's top list; the XSS statement is inert text."""
    data, target = report_file
    capsys.readouterr()
    assert main(["window", *WINDOW, "--data-dir", str(data), "--format", "json"]) == 0
    window = json.loads(capsys.readouterr().out)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        watch = Watch(page)
        page.goto(target.as_uri(), wait_until="load")
        page.hover("#panel-state svg .hover rect")
        page.click('label[for="stack-fingerprint"]')
        page.click('label[for="stack-state"]')
        shot = artifacts / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"\nreport screenshot: {shot}")

        assert [text for kind, text in watch.console if kind in ("error", "warning")] == []
        assert watch.errors == []
        assert watch.requests == [target.as_uri()]
        assert watch.dialogs == []

        series = page.eval_on_selector_all(
            'svg.chart[data-stack="state"] path[data-series]', "els => els.map(e => e.dataset.series)"
        )
        assert sorted(series) == sorted(states_in(data)) == sorted(incident.STATES)
        assert page.eval_on_selector_all(
            'svg.chart[data-stack="state"] path[data-series]', "els => els.every(e => e.getBBox().width > 0)"
        )

        rows = page.eval_on_selector_all(
            "table.statements tbody tr", "rows => rows.map(r => Array.from(r.cells, c => c.innerText.trim()))"
        )
        top = window["top"]
        assert [r[1] for r in rows] == [g["key"] for g in top]
        assert [r[2] for r in rows] == [f"{g['percent']:.1f}%" for g in top]
        assert [int(r[4].replace(",", "")) for r in rows] == [round(g["active_seconds"]) for g in top]
        assert [int(r[5]) for r in rows] == [g["samples"] for g in top]
        assert [int(r[6]) for r in rows] == [g["sessions"] for g in top]

        assert page.evaluate("document.querySelectorAll('script, img, iframe, object, embed').length") == 0
        assert incident.XSS in page.inner_text("table.statements")
        assert incident.IMG in page.inner_text("table.statements")
    finally:
        context.close()


def test_stack_switch_needs_no_script(browser: Any, report_file: tuple[Path, Path]) -> None:
    """With JavaScript off, the stack-by choice still shows exactly one chart at a time (radio buttons and CSS),
    and the fingerprint chart has one series per fingerprint."""
    _, target = report_file
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(target.as_uri(), wait_until="load")
        visible = "els => els.filter(e => e.checkVisibility()).map(e => e.dataset.stack)"
        assert page.eval_on_selector_all("svg.chart", visible) == ["state"]
        for name in ("fingerprint", "user", "command", "state"):
            page.click(f'label[for="stack-{name}"]')
            assert page.eval_on_selector_all("svg.chart", visible) == [name]
        fingerprints = page.eval_on_selector_all(
            'svg.chart[data-stack="fingerprint"] path[data-series]', "e => e.length"
        )
        assert fingerprints == 6
    finally:
        context.close()
