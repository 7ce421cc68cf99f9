"""plsnap report on synthetic archives with known truth: sections, the same numbers as window, gaps drawn as
gaps, compare mode on identical load, redaction of planted secrets, statement text that cannot break out."""

from __future__ import annotations

import html
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from plsnap.archive import ArchiveReader
from plsnap.cli import main
from plsnap.model import Snapshot
from plsnap.report import SECTIONS, STACKS, build, compare
from plsnap.summary import summarize
from tests import incident
from tests.synth import T0, at, gap, running, snap

WINDOW = ("2026-11-28T03:00:00Z", "2026-11-28T03:10:00Z")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_FENCE = re.compile(r"^(`{3,})[^\n]*\n.*?^\1$", re.MULTILINE | re.DOTALL)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The incident archive of tests/incident.py."""
    return incident.archive(tmp_path / "data")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def report(capsys: pytest.CaptureFixture[str], data: Path, *extra: str, form: str = "md") -> str:
    code, out, err = run(capsys, "report", *WINDOW, "--data-dir", str(data), "--format", form, "-o", "-", *extra)
    assert code == 0, err
    return out


def window_json(capsys: pytest.CaptureFixture[str], data: Path, *extra: str) -> dict:
    code, out, err = run(capsys, "window", *WINDOW, "--data-dir", str(data), "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def md_rows(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first table under ``heading`` (cells stripped, pipes inside code unescaped)."""
    part = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in part.splitlines() if line.startswith("| ")]
    rows = [re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in lines[1:]]
    return [[cell.strip().replace("\\|", "|") for cell in row] for row in rows if not set("".join(row)) <= set("-: ")]


def unquote(cell: str) -> str:
    return re.sub(r"^(`+) ?(.*?) ?\1$", r"\2", cell)


def test_markdown_has_every_section_and_the_same_top_n_as_window(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every section heading is there, in order, and the top statements, users, hosts and databases are the
    keys and active seconds of `plsnap window --format json` (and `--by user/host/db`) for the same window."""
    text = report(capsys, data)
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings == [title for key, title in SECTIONS if key != "compare"]
    top = window_json(capsys, data)["top"]
    rows = md_rows(text, "Top statements by active time")
    assert [unquote(r[1]) for r in rows] == [g["key"] for g in top]
    assert [r[4] for r in rows] == [f"{g['active_seconds']:,.0f}" for g in top]
    assert [r[2] for r in rows] == [f"{g['percent']:.1f}%" for g in top]
    groups = text.split("## Top users, hosts and databases\n")[1].split("\n## ")[0]
    for name in ("user", "host", "db"):
        expected = [(g["key"], f"{g['active_seconds']:,.0f}") for g in window_json(capsys, data, "--by", name)["top"]]
        table = groups.split(f"| # | {name} |")[1].split("\n\n")[0]
        found = [(r[2].strip(), r[5].strip()) for r in (line.split("|") for line in table.splitlines()[2:])]
        assert found == expected, name


def test_every_command_the_report_shows_reproduces_from_the_same_archive(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each `plsnap ...` line of every Reproduce block runs against the archive and exits 0."""
    text = report(capsys, data)
    commands = [line for line in text.splitlines() if line.startswith("plsnap ")]
    assert len(commands) >= 10
    assert any(" at 2026-11-28T03:02:00Z " in c for c in commands), "the peak's `at`"
    for command in commands:
        code, out, err = run(capsys, *shlex.split(command)[1:])
        assert code == 0, (command, err)
        assert out


def test_gaps_are_drawn_as_gaps_never_as_zero(data: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The failed sample and the hole leave their buckets without a value: the load model holds None there, the
    HTML series paths break into three runs and hatch both spans, the sparkline shows `·` at those buckets."""
    with ArchiveReader.open(data, "db1") as reader:
        made = build(reader, incident.START, incident.END)
    view = made.load
    assert view.bucket_seconds == 10
    empty = [i for i, value in enumerate(view.total) if value is None]
    assert empty == [20, 41, 42, 43]
    assert all(value > 0 for value in view.total if value is not None)
    page = report(capsys, data, form="html")
    path = re.search(r'<path data-series="Sending data"[^>]* d="([^"]+)"', page)
    assert path is not None
    assert path.group(1).count("M") == 3
    assert page.count('<rect class="gap"') == 2 * (len(STACKS) + len(made.counters))
    line = report(capsys, data).split("By state:")[0].split("```text\n")[1].split("  peak")[0]
    assert [i for i, c in enumerate(line) if c == "·"] == empty


def test_load_chart_has_one_series_per_state_present(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Stacked by state, the chart has exactly one series per state of a running session in the archive, and
    each stack-by choice is pre-rendered (no script needed to switch)."""
    page = report(capsys, data, form="html")
    chart = page.split('data-stack="state"', 1)[1].split("</svg>", 1)[0]
    assert sorted(re.findall(r'data-series="([^"]+)"', chart)) == sorted(incident.STATES)
    for name in STACKS:
        assert f'<svg class="chart" data-stack="{name}"' in page
    assert "<script" not in page.lower()


def test_statement_text_cannot_break_out_of_the_html_or_the_markdown(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A statement holding `</script><script>` and `<img onerror>` is shown as text: the page has no script or
    img element at all, and in Markdown it only ever appears inside code spans or code blocks."""
    page = report(capsys, data, form="html")
    assert not re.search(r"<\s*(script|img)\b", page, re.IGNORECASE)
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "default-src 'none'" in page
    text = report(capsys, data)
    assert incident.XSS in text
    prose = _CODE_SPAN.sub("", _FENCE.sub("", text))
    assert "<" not in prose.replace("&lt;", "")


@pytest.mark.parametrize("form", ["html", "md"])
def test_redact_literals_removes_planted_secrets_everywhere(
    data: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    """With --redact literals, the planted e-mail and card number appear nowhere in the report's bytes (top
    statements, longest, the peak, lock trees, episodes, user-lock names, InnoDB status, chart labels);
    without it they do (the archive holds raw text), so the check can fail."""
    secrets = (incident.EMAIL, incident.CARD, incident.CARD_SPACED, "alice", "4111")
    plain = report(capsys, data, form=form)
    assert all(s in plain for s in secrets)
    redacted = report(capsys, data, "--redact", "literals", form=form)
    for secret in secrets:
        assert secret not in redacted, secret
    assert "UPDATE customers SET email = ?" in redacted
    assert "literals redacted" in redacted


def test_report_header_names_server_source_samples_gaps_and_bursts(data: Path) -> None:
    """The summary holds the instance, flavour and version, source, interval, samples, gaps and the burst."""
    with ArchiveReader.open(data, "db1") as reader:
        made = build(reader, incident.START, incident.END, top=3)
    assert made.instance == "db1"
    assert [(s.flavour, s.version) for s in made.servers] == [("MariaDB", "10.11.19-MariaDB")]
    assert made.sources == (("information_schema", 56),)
    assert (made.samples, made.gap_samples, made.gap_seconds, made.interval) == (56, 1, 40.0, 10.0)
    assert len(made.bursts) == 1 and "TRANSACTION 4242" in (made.bursts[0].innodb_status or "")
    assert len(made.statements) == 3
    assert made.peak is not None and made.peak.running == 5
    assert [e.episode.root.session for e in made.episodes] == [9, 6]
    assert made.episodes[0].tree[1].strip().startswith("9 app@10.0.0.5  ROOT BLOCKER")
    assert [c.name for c in made.counters] == ["Threads_running", "Questions"]


# --- compare ---------------------------------------------------------------------------------------------

A = "SELECT * FROM orders WHERE customer_id = 42"
B = "UPDATE stock SET n = n - 1 WHERE sku = 'A-1'"
C = "SELECT COUNT(*) FROM audit_log"
NEW = "DELETE FROM carts WHERE updated_at < '2026-01-01'"


def steady_load(offset: float, step: float, *, extra: bool = False, gap_at: float | None = None) -> list:
    """An hour from ``offset`` s of the same load, sampled every ``step`` s: A in 3 sessions and B in one, all the
    time; C in 2 sessions during the first half of every minute; with ``extra``, NEW in one session all the time;
    ``gap_at``: 5 minutes of failed samples from there."""
    out = []
    t = 0.0
    while t < 3600:
        now = offset + t
        if gap_at is not None and gap_at <= t < gap_at + 300:
            out.append(gap(now, interval=step))
            t += step
            continue
        sessions = [running(n, A, started=offset - 10, now=now) for n in (1, 2, 3)]
        sessions.append(running(4, B, started=offset - 10, now=now, state="Updating"))
        if t % 60 < 30:
            sessions += [running(n, C, started=now - t % 60, now=now, user="etl") for n in (5, 6)]
        if extra:
            sessions.append(running(7, NEW, started=offset - 10, now=now, user="cleanup"))
        out.append(snap(now, *sessions, interval=step))
        t += step
    return out


def test_identical_load_shows_no_change_however_each_window_was_sampled() -> None:
    """The same load sampled every 10 s in the baseline and every 2 s (with a 5-minute outage) in the window
    changes by 0 +- 5% for every fingerprint and in total: each window is normalised by its own sampled time."""
    day = 86400.0
    baseline = summarize(steady_load(0, 10), at(0), at(3600), load_buckets=360)
    current = summarize(steady_load(day, 2, gap_at=1200), at(day), at(day + 3600), load_buckets=360)
    found = compare(current, baseline)
    assert {r.key for r in found.rows} == {
        "select * from orders where customer_id = ?",
        "update stock set n = n - ? where sku = ?",
        "select count(*) from audit_log",
    }
    for row in (found.total, *found.rows):
        assert row.change is not None and abs(row.change) <= 5.0, row
        assert not row.new and not row.gone
    assert found.total.aas == pytest.approx(5.0, rel=0.05)
    assert found.sampled_seconds == pytest.approx(3300, abs=4)


def test_a_statement_only_in_the_window_is_flagged_new() -> None:
    """NEW runs only in the second window: it is flagged new (no change figure), the others still show 0%."""
    baseline = summarize(steady_load(0, 10), at(0), at(3600), load_buckets=360)
    current = summarize(steady_load(3600, 10, extra=True), at(3600), at(7200), load_buckets=360)
    rows = {r.key: r for r in compare(current, baseline).rows}
    new = rows["delete from carts where updated_at < ?"]
    assert new.new and new.change is None and new.aas == pytest.approx(1.0)
    assert [r.change for k, r in rows.items() if k != new.key] == [0.0, 0.0, 0.0]


def test_compare_option_shifts_the_window_or_takes_an_explicit_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--compare -1d shifts FROM and TO back a day (not relative to now); --compare FROM takes a window of the
    same length there. Both show the compare section, 0.0% for unchanged load and NEW for the added statement."""
    data = incident.write(tmp_path / "data", [*steady_load(0, 10), *steady_load(86400, 10, extra=True)])
    window = ("2026-11-29T03:00:00Z", "2026-11-29T04:00:00Z")
    for baseline in (["--compare", "-1d"], ["--compare=-1d"], ["--compare", "2026-11-28T03:00:00Z"]):
        code, out, err = run(capsys, "report", *window, "--data-dir", str(data), "--format", "md", *baseline)
        assert code == 0, err
        assert "## Compared with the baseline" in out
        rows = md_rows(out, "Compared with the baseline")
        assert rows[0][0] == "**all statements**"
        changes = {unquote(r[0]): (r[3], r[4]) for r in rows[1:]}
        assert changes.pop("delete from carts where updated_at < ?") == ("new", "**NEW**")
        assert set(changes.values()) == {("0.0%", "")}
        assert "plsnap window 2026-11-28T03:00:00Z 2026-11-28T04:00:00Z" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--compare", "-0d"], 2, "longer than zero"),
        (["--compare", "-1q"], 2, "not a duration"),
        (["--compare", "-7d"], 3, "baseline window: no sample"),
        (["--format", "pdf"], 2, "invalid choice"),
        (["--redact", "everything"], 2, "invalid choice"),
    ],
)
def test_report_usage_errors_and_missing_baseline(
    data: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    """Bad options are usage errors (exit 2); a baseline without data is exit 3, saying it is the baseline."""
    got, out, err = run(capsys, "report", *WINDOW, "--data-dir", str(data), *args)
    assert (got, out) == (code, "")
    assert message in err


def test_report_window_errors(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TO not after FROM is exit 2; a window without any line is exit 3."""
    assert run(capsys, "report", WINDOW[1], WINDOW[0], "--data-dir", str(data))[0] == 2
    code, _, err = run(capsys, "report", "2026-11-20T00:00Z", "2026-11-20T01:00Z", "--data-dir", str(data))
    assert code == 3 and "no sample in" in err


def test_report_outputs(data: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch) -> None:
    """Markdown goes to stdout by default; HTML without -o to plsnap-report-<instance>-<FROM>.html in the
    current directory; -o FILE.md picks Markdown; the file is replaced whole and the path is printed."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "report", *WINDOW, "--data-dir", str(data), "--format", "md")
    assert code == 0 and out.startswith("# plsnap report: instance db1")
    code, out, _ = run(capsys, "report", *WINDOW, "--data-dir", str(data))
    page = tmp_path / "plsnap-report-db1-20261128T030000Z.html"
    assert code == 0 and out.startswith(f"wrote {page.name} (") and out.endswith(" KiB, html)\n")
    assert page.read_text().startswith("<!DOCTYPE html>")
    target = tmp_path / "out" / "incident.md"
    target.parent.mkdir()
    target.write_text("old")
    code, out, _ = run(capsys, "report", *WINDOW, "--data-dir", str(data), "-o", str(target), "--top", "2")
    assert code == 0 and target.read_text().startswith("# plsnap report")
    assert sorted(p.name for p in target.parent.iterdir()) == ["incident.md"], "no temporary file is left"
    assert len(md_rows(target.read_text(), "Top statements by active time")) == 2


def test_a_day_of_samples_makes_a_page_under_2_mib(tmp_path: Path) -> None:
    """A day of 10 s samples with 60 fingerprints, 15 states, long statement texts and counters stays well under
    the 2 MiB limit: the charts are bounded by their bucket count, not by the samples. (The report runs in a
    subprocess: its fingerprint cache of 50,000 long texts would stay in the test process.)"""
    import subprocess
    import sys

    long_tail = ", ".join(f"col{n}" for n in range(400))

    def table(n: int) -> str:  # digits in names would fingerprint alike
        return "orders_" + chr(97 + n % 26) + chr(97 + n // 26)

    def day() -> Iterator[Snapshot]:
        for t in range(0, 86400, 10):
            sessions = [
                running(n, f"SELECT {long_tail} FROM {table((t // 10 + n) % 60)} WHERE id = {t}", started=t - 1, now=t,
                        state=f"state {(t // 10 + n) % 15}", user=f"user{n}")
                for n in range(1, 7)
            ]  # fmt: skip
            status = {"Threads_running": 6, "Questions": 100 * t, "Uptime": t + 9}
            yield replace(snap(t, *sessions), extra={"status": status})

    data = incident.write(tmp_path / "data", day())
    target = tmp_path / "day.html"
    result = subprocess.run(
        [sys.executable, "-m", "plsnap.cli", "report", "2026-11-28T03:00Z", "2026-11-29T03:00Z", "--data-dir",
         str(data), "-o", str(target)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    page = target.read_text()
    print(f"\nsize of a day: {len(page.encode())} bytes")
    assert 100_000 < len(page.encode()) < 2 * 1024 * 1024, len(page.encode())
    assert "more characters)" in page, "long examples are cut"
    for stack, series in (("state", 11), ("fingerprint", 11), ("user", 6), ("command", 1)):
        chart = page.split(f'<svg class="chart" data-stack="{stack}"', 1)[1].split("</svg>", 1)[0]
        assert chart.count("<path data-series=") == series, stack


def test_baseline_window_forms() -> None:
    """-1d and -7d shift both ends back; a time is the baseline's FROM for a window of the same length."""
    from plsnap.report import baseline_window

    start, end = T0, T0 + timedelta(hours=1)
    assert baseline_window("-1d", start, end, lambda _: T0) == (start - timedelta(days=1), end - timedelta(days=1))
    assert baseline_window("-1h30m", start, end, lambda _: T0)[0] == start - timedelta(minutes=90)
    other = T0 - timedelta(days=3)
    assert baseline_window("2026-11-25T03:00Z", start, end, lambda _: other) == (other, other + timedelta(hours=1))


def test_report_does_not_import_the_capture_stack(data: Path, tmp_path: Path) -> None:
    """plsnap report, like every read command, never imports pymysql or apscheduler (a laptop with a copy)."""
    import subprocess
    import sys

    code = (
        "import sys; from plsnap.cli import main\n"
        f"args = ['report', *{list(WINDOW)!r}, '--data-dir', {str(data)!r}, '-o', {str(tmp_path / 'r.html')!r}]\n"
        "assert main(args) == 0\n"
        "bad = [m for m in ('pymysql', 'apscheduler') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_a_window_of_failed_samples_is_reported_as_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A window holding only failed samples is answered (exit 0), never as zero load: average active sessions
    are unknown, every bucket is a gap, no section claims that nothing ran."""
    data = incident.write(tmp_path / "data", [gap(t) for t in range(0, 120, 10)])
    for form in ("md", "html"):
        code, out, err = run(capsys, "report", "2026-11-28T03:00Z", "2026-11-28T03:02Z", "--data-dir", str(data),
                             "--format", form, "-o", "-")  # fmt: skip
        assert code == 0, err
        assert "unknown: no successful sample" in out
        assert "12 failed sample" in out
    md = run(capsys, "report", "2026-11-28T03:00Z", "2026-11-28T03:02Z", "--data-dir", str(data), "--format", "md")[1]
    line = md.split("```text\n", 1)[1].split("  peak", 1)[0]
    assert set(line) == {"·"}
    assert "(no successful sample)" in md


def test_compare_in_html_flags_new_statements(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The HTML compare table flags the added statement NEW and shows 0.0% for the others."""
    data = incident.write(tmp_path / "data", [*steady_load(0, 10), *steady_load(86400, 10, extra=True)])
    code, page, err = run(capsys, "report", "2026-11-29T03:00Z", "2026-11-29T04:00Z", "--data-dir", str(data),
                          "--compare", "-1d", "-o", "-")  # fmt: skip
    assert code == 0, err
    table = page.split("<table class=compare>", 1)[1].split("</table>", 1)[0]
    assert table.count('<span class="flag">NEW</span>') == 1
    assert table.count("<td class=n>0.0%</td>") == 3, "three unchanged statements"
    assert "<td class=n>+20.0%</td>" in table, "the total: 5 average active sessions, then 6"


#: Statements that carry a password, stored raw (an archive written by another tool, or by a plsnap before its
#: masking covered them).
RAW_SECRETS = (
    ("CREATE USER 'bob'@'%' IDENTIFIED BY 'Hunter2PWone'", "Hunter2PWone"),
    ("CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'u', PASSWORD 'Hunter2PWtwo')", "Hunter2PWtwo"),
    ("SET PASSWORD FOR 'x'@'%' = PASSWORD('Hunter2PWthree')", "Hunter2PWthree"),
    ("PREPARE s FROM 'CREATE USER z IDENTIFIED BY ''Hunter2PWfour'''", "Hunter2PWfour"),
    # read with backslash escapes, the second password is a bare word the fingerprint (the key) would keep,
    # lower-cased (hence no capitals or digits in it)
    ("ALTER USER u IDENTIFIED BY 'a\\' , v@h IDENTIFIED BY 'hunterpwfive'", "hunterpwfive"),
)


@pytest.mark.parametrize("form", ["html", "md"])
def test_a_report_never_shows_a_password_the_archive_holds_in_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    """Every statement text of the report (top statements, examples, longest, the peak) goes through the
    secret masking, even without --redact: the page is made to be shared."""
    lines = [
        snap(t, *(running(10 + k, text, started=0, now=t) for k, (text, _) in enumerate(RAW_SECRETS)))
        for t in range(0, 600, 10)
    ]
    data = incident.write(tmp_path / "data", lines)
    page = report(capsys, data, form=form)
    assert "OPTIONS (USER '<secret>', PASSWORD '<secret>')" in html.unescape(page)
    for _, secret in RAW_SECRETS:
        assert secret not in page, secret


def test_report_output_is_never_written_inside_the_archive(
    data: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    """-o naming a partition (or any path in the data dir, also through `..` or the default name in a current
    directory inside it) is refused with exit 2 and the file left as it was; -o naming a directory too."""
    partition = next((data / "db1").rglob("*.jsonl.zst"))
    before = partition.read_bytes()
    for target in (str(partition), str(data / "db1" / ".." / "report.html"), str(data / "db1" / "x.md")):
        code, _, err = run(capsys, "report", *WINDOW, "--data-dir", str(data), "-o", target)
        assert code == 2 and "inside the archive" in err, err
    monkeypatch.chdir(partition.parent)
    code, _, err = run(capsys, "report", *WINDOW, "--data-dir", str(data))
    assert code == 2 and "inside the archive" in err, err
    assert partition.read_bytes() == before
    assert sorted(p.name for p in partition.parent.iterdir()) == [partition.name]
    code, _, err = run(capsys, "report", *WINDOW, "--data-dir", str(data), "-o", str(tmp_path))
    assert code == 2 and "is a directory" in err and "Traceback" not in err


@pytest.mark.parametrize("form", ["table", "json", "csv"])
def test_read_commands_never_show_a_password_the_archive_holds_in_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    """`at`, `window` (every --by) and `locks` mask the secrets of texts an older or foreign writer stored in
    clear, in every format, as the report does."""
    lines = [
        snap(t, *(running(10 + k, text, started=0, now=t) for k, (text, _) in enumerate(RAW_SECRETS)))
        for t in range(0, 600, 10)
    ]
    data = tmp_path / "data"
    incident.write(data, lines)
    moment = (T0 + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    commands = [["at", moment], ["at", moment, "--all"], ["window", *WINDOW], ["locks", *WINDOW]]
    commands += [["window", *WINDOW, "--by", by] for by in ("state", "user", "command")]
    for command in commands:
        code, out, err = run(capsys, *command, "--data-dir", str(data), "--format", form)
        assert code == 0, (command, err)
        for _, secret in RAW_SECRETS:
            assert secret not in out + err, (command, secret)
    code, out, _ = run(capsys, "at", moment, "--data-dir", str(data), "--format", "json")
    assert "PASSWORD '<secret>'" in out, "the statement is still shown, with its secret masked"


def test_control_characters_never_reach_a_terminal_raw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A statement text or a file name with terminal escape sequences (any database user can send one) is shown
    with its control characters escaped, in tables, CSV, Markdown and warnings; JSON stays valid and keeps the
    text exactly."""
    text = "SELECT 1 /* \x1b[2J\x1b[1;1H\x9b31m hidden \x07\r\x00 */"
    lines = [snap(t, running(11, text, started=0, now=t)) for t in range(0, 600, 10)]
    data = tmp_path / "data"
    incident.write(data, lines)
    (next((data / "db1").glob("20*")) / "03.jsonl.zst.\x1b[31mred").write_bytes(b"junk")
    moment = (T0 + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = {chr(c) for c in (*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}
    for command in (["at", moment], ["window", *WINDOW], ["report", *WINDOW, "--format", "md", "-o", "-"]):
        for form in (["--format", "table"], ["--format", "csv"], []) if command[0] != "report" else ([],):
            code, out, err = run(capsys, *command, *form, "--data-dir", str(data))
            assert code == 0, (command, err)
            assert not raw & set(out + err), (command, form)
    code, out, _ = run(capsys, "at", moment, "--data-dir", str(data), "--format", "json")
    assert [s["info"] for s in json.loads(out)["sessions"]] == [text]
