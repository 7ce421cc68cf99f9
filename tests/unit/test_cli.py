"""The CLI contract on a synthetic archive: exit codes, formats and JSON shapes (no database needed)."""

from __future__ import annotations

import ast
import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from plsnap.archive import ArchiveWriter
from plsnap.archive.format import encode_line
from plsnap.archive.layout import HEARTBEAT_NAME
from plsnap.cli import build_parser, main
from plsnap.model import format_ts
from tests.synth import at, gap, idle, running, snap

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
Q1 = "SELECT * FROM orders WHERE customer_id = 42"
Q2 = "UPDATE stock SET n = n - 1 WHERE sku = 'A-1'"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """One instance with 10 s samples over two minutes, a gap at 60 s, a long query and a short update."""
    root = tmp_path / "data"
    with ArchiveWriter(root / "db1", fsync=False) as writer:
        for t in range(0, 120, 10):
            if t == 60:
                s = gap(60, "connect failed: (2003) refused")
            else:
                sessions = [running(1, Q1, started=-5, now=t, user="report"), idle(9, time=t + 100)]
                if t in (20, 30):
                    sessions.append(running(2, Q2, started=19, now=t))
                s = snap(t, *sessions)
            writer.append(encode_line(s.to_record()), s.ts)
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def iso(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_at_json_matches_schema_and_semantics(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`at --format json` follows the schema; the long query is certain, the ended update only possible."""
    code, out, _ = run(capsys, "at", iso(35), "--data-dir", str(archive), "--format", "json")
    assert code == 0
    body = json.loads(out)
    jsonschema.validate(body, json.loads((SCHEMAS / "at.schema.json").read_text()))
    assert body["before"]["ts"] == "2026-11-28T03:00:30.000Z"
    assert body["after"]["ts"] == "2026-11-28T03:00:40.000Z"
    rows = {r["id"]: r for r in body["sessions"]}
    assert rows[1]["confidence"] == "certain"
    assert rows[1]["time"] == 40
    assert rows[1]["started_at"] == "2026-11-28T02:59:55.000Z"
    assert rows[2]["confidence"] == "possible"
    assert 9 not in rows


def test_at_all_lists_idle_sessions(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--all adds idle sessions after the running ones."""
    code, out, _ = run(capsys, "at", iso(35), "--data-dir", str(archive), "--format", "json", "--all")
    assert code == 0
    assert [r["id"] for r in json.loads(out)["sessions"]][-1] == 9


def test_at_in_gap_says_so(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An instant inside a failed sample's slot reports the gap and its error, in JSON and in the table."""
    code, out, _ = run(capsys, "at", iso(60), "--data-dir", str(archive), "--format", "json")
    assert code == 0
    assert json.loads(out)["gaps"] == [{"ts": iso(60)[:-4] + "Z", "error": "connect failed: (2003) refused"}]
    code, out, _ = run(capsys, "at", iso(60), "--data-dir", str(archive), "--utc")
    assert "gap: 1 failed sample(s)" in out
    assert "connect failed" in out


def test_at_table_and_csv(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The table shows samples used and the sessions; CSV has a header and one row per session."""
    code, out, _ = run(capsys, "at", iso(35), "--data-dir", str(archive), "--utc")
    assert code == 0
    assert "sample before: 2026-11-28 03:00:30Z" in out
    assert "certain" in out and Q1 in out
    code, out, _ = run(capsys, "at", iso(35), "--data-dir", str(archive), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == ["1", "2"]
    assert rows[0]["info"] == Q1


def test_window_json_matches_schema(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`window --format json` follows the schema and counts samples and gaps in [FROM, TO)."""
    code, out, _ = run(capsys, "window", iso(0), iso(120), "--data-dir", str(archive), "--format", "json")
    assert code == 0
    body = json.loads(out)
    jsonschema.validate(body, json.loads((SCHEMAS / "window.schema.json").read_text()))
    assert body["samples"] == 11
    assert body["gap_samples"] == 1
    assert body["top"][0]["key"] == "select * from orders where customer_id = ?"
    assert body["top"][0]["active_seconds"] == 110.0


@pytest.mark.parametrize("by", ["fingerprint", "user", "host", "db", "state", "command"])
def test_window_every_grouping_and_format(archive: Path, capsys: pytest.CaptureFixture[str], by: str) -> None:
    """Every --by works in table and CSV form."""
    assert run(capsys, "window", iso(0), iso(120), "--data-dir", str(archive), "--by", by)[0] == 0
    code, out, _ = run(capsys, "window", iso(0), iso(120), "--data-dir", str(archive), "--by", by, "--format", "csv")
    assert code == 0
    assert out.splitlines()[0].startswith("rank,key,samples")


def test_snapshots_lists_samples_and_gaps(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`snapshots` prints one row per sample or gap with its metadata."""
    code, out, _ = run(capsys, "snapshots", iso(0), "--data-dir", str(archive), "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 12
    assert rows[6]["error"] == "connect failed: (2003) refused"
    assert rows[6]["running"] is None
    assert rows[0]["sessions"] == 2 and rows[0]["running"] == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["at", "yesterday-ish"], 2, "invalid time 'yesterday-ish'"),
        (["at"], 2, "the following arguments are required: TIME"),
        (["window", "-1h", "-2h"], 2, "TO must be after FROM"),
        (["snapshots", "-1h", "-2h"], 2, "TO must be after FROM"),
        (["verify", "2026-11-28T04:00:00Z", "2026-11-28T03:00:00Z"], 2, "TO must be after FROM"),
        (["reindex", "-1h", "-1h"], 2, "TO must be after FROM"),
        (["window", "-1h", "now", "--top", "0"], 2, "expected a positive integer"),
        (["at", "now", "--format", "xml"], 2, "invalid choice: 'xml'"),
        (["at", "now", "--tz", "Mars/Base"], 2, "unknown time zone"),
        (["at", "2020-01-01T00:00:00Z"], 3, "is before the archive begins"),
        (["at", "2030-01-01T00:00:00Z"], 3, "is after the archive ends (last sample 2026-11-28T03:01:50.000Z)"),
        (["at", "2026-11-28T03:05:00Z"], 3, "the last one before it is 3m10s earlier"),
        (["at", "-15min"], 2, "invalid time '-15min'"),
        (["at", "-15x"], 2, "invalid time '-15x'"),
        (["window", "2020-01-01T00:00:00Z", "2020-01-01T01:00:00Z"], 3, "no sample in 2020-01-01T00:00:00.000Z"),
        (["at", "now", "--instance", "nope"], 3, "no archive for instance 'nope'"),
        (["at", "now", "--instance", "../etc"], 2, "instance name '../etc' is invalid: use 1-128 characters"),
    ],
)
def test_exit_codes_and_one_line_errors(
    archive: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    """Bad input gives one clean stderr line and the contract exit code (2 usage, 3 no data)."""
    got, _, err = run(capsys, *args, "--data-dir", str(archive))
    assert got == code
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_no_archive_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A data dir without any archive is 'no data' (exit 3), not a crash."""
    code, _, err = run(capsys, "at", "now", "--data-dir", str(tmp_path / "empty"))
    assert code == 3
    assert "no archive" in err


def test_bad_config_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A broken config file gives exit 2 and names the file."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[capture]\ninterval = \n")
    code, _, err = run(capsys, "at", "now", "-c", str(bad))
    assert code == 2
    assert str(bad) in err


def test_explicit_archive_reads_no_config(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --data-dir and --instance a read command ignores a broken default config; -c is still read, and
    without --instance the config is read (its [archive] instance could matter)."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[capture]\ninterval = \n")
    monkeypatch.setenv("PLSNAP_CONFIG", str(bad))
    where = ("--data-dir", str(archive))
    code, out, _ = run(capsys, "at", iso(35), *where, "--instance", "db1", "--format", "json")
    assert code == 0 and json.loads(out)["sessions"]
    code, _, err = run(capsys, "at", iso(35), *where)
    assert code == 2 and str(bad) in err
    code, _, err = run(capsys, "at", iso(35), *where, "--instance", "db1", "-c", str(bad))
    assert code == 2 and str(bad) in err
    code, _, err = run(capsys, "at", iso(35), *where, "--instance", "../x")
    assert code == 2 and "instance name" in err


def test_prune_dry_run_deletes_nothing(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`prune --dry-run` prints a decision and reason per partition and deletes nothing."""
    before = sorted(archive.rglob("*.zst"))
    code, out, _ = run(capsys, "prune", "--dry-run", "--data-dir", str(archive), "--instance", "db1")
    assert code == 0
    assert "would keep" in out and "newest partition" in out
    assert sorted(archive.rglob("*.zst")) == before


def test_read_commands_do_not_import_capture_stack(archive: Path) -> None:
    """at, window and snapshots never import pymysql or apscheduler (fast start on a laptop)."""
    code = (
        "import sys; from plsnap.cli import main\n"
        f"for args in (['at', '{iso(35)}'], ['window', '{iso(0)}', '{iso(120)}'], ['snapshots', '{iso(0)}']):\n"
        f"    assert main([*args, '--data-dir', {str(archive)!r}, '--format', 'json']) == 0\n"
        "bad = [m for m in ('pymysql', 'apscheduler') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_at_loads_only_what_replay_needs(archive: Path) -> None:
    """``at`` (start-up is most of its wall time) loads no config, no window or rollup code, no logging,
    neither hashlib (OpenSSL) nor traceback, and, when its samples recorded no lock waits and no --tz is given,
    neither the lock code nor zoneinfo (nor shutil, which argparse would load for the terminal's width)."""
    code = (  # what loads before plsnap does not count (coverage's subprocess hook loads hashlib and tomllib)
        "import sys; before = set(sys.modules); from plsnap.cli import main\n"
        f"argv = ['at', '{iso(35)}', '--data-dir', {str(archive)!r}, '--instance', 'db1', '--format', 'json']\n"
        "assert main(argv) == 0\n"
        "heavy = ('pymysql', 'apscheduler', 'structlog', 'logging', 'hashlib', 'traceback', 'tomllib',\n"
        "         'plsnap.config', 'plsnap.summary', 'plsnap.partial', 'plsnap.rollup', 'plsnap.fingerprint',\n"
        "         'plsnap.locks', 'shutil', 'zoneinfo', 'csv')\n"
        "bad = [m for m in heavy if m in sys.modules and m not in before]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _with_status(snapshot: Any, questions: int) -> Any:
    return dataclasses.replace(snapshot, extra={"status": {"Questions": questions, "Threads_running": 1}})


def _marker(seconds: float, marker: Any) -> dict[str, Any]:
    return {"ts": format_ts(at(seconds)), "v": 2, "instance": "test", "source": None, "server": None,
            "duration_ms": None, "error": None, "interval_s": None, "sessions": None, "marker": marker}  # fmt: skip


def test_at_after_a_burst_reads_the_samples_not_the_marker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The burst_end marker written just after the closing sample is no "sample before": `at` a moment later
    shows that sample's sessions and the rate between the samples around it."""
    root = tmp_path / "data"
    with ArchiveWriter(root / "db1", fsync=False) as writer:
        lines = [
            encode_line(_with_status(snap(0, running(1, Q1, started=-5, now=0)), 1000).to_record()),
            encode_line(_with_status(snap(10, running(1, Q1, started=-5, now=10)), 1600).to_record()),
            encode_line(_marker(10.5, {"event": "burst_end", "condition": "threads_running > 5"})),
            encode_line(_with_status(snap(20, running(1, Q1, started=-5, now=20)), 2400).to_record()),
        ]
        for line, seconds in zip(lines, (0, 10, 10.5, 20), strict=True):
            writer.append(line, at(seconds))
    code, out, _ = run(capsys, "at", iso(12), "--data-dir", str(root), "--instance", "db1", "--format", "json")
    assert code == 0
    answer = json.loads(out)
    assert answer["before"]["ts"] == format_ts(at(10)) and answer["after"]["ts"] == format_ts(at(20))
    assert [s["id"] for s in answer["sessions"]] == [1]
    assert answer["counters"]["rates"]["Questions"] == pytest.approx(80.0)


@pytest.mark.parametrize(
    "marker",
    [
        {"event": "burst_start", "condition": 12345, "values": [1, 2]},
        {"event": "burst_start", "condition": {"x": 1}, "values": "text"},
        {"event": "burst_start", "condition": "c", "values": {"Questions": "many"}},
        {"x": "\x1b[31mRED"},
        "burst_start",
    ],
)
def test_a_malformed_marker_is_reported_and_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], marker: Any
) -> None:
    """A marker line whose fields are not what plsnap writes is skipped with a warning: window JSON still
    follows its schema, and the line is not taken for a gap or a sample."""
    root = tmp_path / "data"
    with ArchiveWriter(root / "db1", fsync=False) as writer:
        for seconds in (0, 10, 20):
            writer.append(encode_line(snap(seconds, running(1, Q1, started=-5, now=seconds)).to_record()), at(seconds))
            if seconds == 10:
                writer.append(encode_line(_marker(11, marker)), at(11))
    where = ["--data-dir", str(root), "--instance", "db1"]
    code, out, err = run(capsys, "window", iso(0), iso(30), *where, "--format", "json")
    assert code == 0
    summary = json.loads(out)
    jsonschema.validate(summary, json.loads((SCHEMAS / "window.schema.json").read_text()))
    assert summary["bursts"] == [] and summary["samples"] == 3
    assert "bad ts or structure" in err
    code, out, err = run(capsys, "snapshots", iso(0), iso(30), *where, "--format", "json")
    assert code == 0 and len(json.loads(out)) == 3 and "bad ts or structure" in err


def test_every_command_is_documented_in_readme() -> None:
    """Each subcommand and each of its long options appears in the README."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():
        assert f"plsnap {name}" in readme, name
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in readme, f"{name} {option}"


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    """Instance x: good samples for a minute, then a minute of failed ones (the server went away)."""
    root = tmp_path / "failing"
    with ArchiveWriter(root / "x", fsync=False) as writer:
        for t in range(0, 120, 10):
            s = gap(t, "connect failed: (2003) refused") if t >= 60 else snap(t, running(1, Q1, started=-5, now=t))
            writer.append(encode_line(s.to_record()), s.ts)
    return root


@pytest.fixture
def gaps_only(tmp_path: Path) -> Path:
    """Instance x holding only failed samples."""
    root = tmp_path / "gaps-only"
    with ArchiveWriter(root / "x", fsync=False) as writer:
        for t in range(0, 60, 10):
            s = gap(t, "connect to db.example:3306 failed: (1045) Access denied")
            writer.append(encode_line(s.to_record()), s.ts)
    return root


def test_at_on_an_archive_of_only_gaps_gives_their_errors(gaps_only: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`at` where every sample failed: exit 3 with the errors that explain it, not 'no sample within 1h'."""
    code, out, err = run(capsys, "at", iso(25), "--data-dir", str(gaps_only))
    assert code == 3 and out == ""
    assert "failed samples around it: connect to db.example:3306 failed: (1045) Access denied (6x)" in err


def test_at_after_the_last_good_sample_names_the_failures_since(
    failing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An instant inside a run of failed samples that goes on to the end of the archive: exit 3, and the error
    says why there is no sample (the failures since the last good one), not only that none follows."""
    code, _, err = run(capsys, "at", iso(95), "--data-dir", str(failing))
    assert code == 3
    assert "none follows; failed samples since: connect failed: (2003) refused (6x)" in err


def test_window_where_every_sample_failed_says_activity_unknown_only(
    gaps_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A window of failed samples only is 'activity unknown', never also '(nothing was running)'."""
    code, out, _ = run(capsys, "window", iso(0), iso(60), "--data-dir", str(gaps_only))
    assert code == 0
    assert "(no successful sample: activity unknown)" in out
    assert "nothing was running" not in out
    code, out, _ = run(capsys, "window", iso(0), iso(60), "--data-dir", str(gaps_only), "--format", "json")
    body = json.loads(out)
    assert (body["samples"], body["gap_samples"], body["top"]) == (0, 6, [])
    assert "no successful samples in this window: activity is unknown" in body["warnings"]


def test_tz_sets_the_zone_shown_as_well_as_the_zone_read(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--tz Asia/Tokyo` reads '12:00:35' as Tokyo time and shows Tokyo times; `--utc` shows UTC."""
    code, out, _ = run(capsys, "at", "2026-11-28 12:00:35", "--tz", "Asia/Tokyo", "--data-dir", str(archive))
    assert code == 0
    assert out.startswith("at 2026-11-28 12:00:35+09:00")
    assert "sample before: 2026-11-28 12:00:30+09:00" in out
    code, out, _ = run(capsys, "snapshots", iso(0), "--utc", "--data-dir", str(archive))
    assert out.splitlines()[1].startswith("2026-11-28 03:00:00Z")


def beat(instance_dir: Path, *, interval: float, age: float, running: bool = True) -> None:
    """A daemon's heartbeat written ``age`` seconds ago by a daemon that ran every ``interval`` seconds."""
    path = instance_dir / ".plsnap.heartbeat"
    body = {"ts": iso(0), "ok": True, "error": None, "interval_s": interval, "running": running}
    path.write_text(json.dumps(body))
    moment = path.stat().st_mtime - age
    os.utime(path, (moment, moment))


def test_health_judges_by_the_interval_the_daemon_ran_with(
    failing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The heartbeat's interval decides the stall limit, not the config's: a 60 s daemon whose last attempt is
    100 s old is healthy even when the config now says 5 s, and a 5 s daemon's is not even if it says 60 s.
    The only instance (x, not 'default') is found as the read commands find it."""
    fast = tmp_path / "fast.toml"
    fast.write_text('[capture]\ninterval = "5s"\n')
    slow = tmp_path / "slow.toml"
    slow.write_text('[capture]\ninterval = "60s"\n')
    beat(failing / "x", interval=60.0, age=100)
    code, out, err = run(capsys, "health", "-c", str(fast), "--data-dir", str(failing))
    assert (code, err) == (0, "")
    assert out.startswith("healthy: last attempt 10")
    beat(failing / "x", interval=5.0, age=100)
    code, _, err = run(capsys, "health", "-c", str(slow), "--data-dir", str(failing))
    assert code == 1
    assert "unhealthy: last capture attempt 100s ago (limit 30s)" in err
    beat(failing / "x", interval=5.0, age=0, running=False)
    code, _, err = run(capsys, "health", "-c", str(fast), "--data-dir", str(failing))
    assert code == 1 and "unhealthy: the daemon stopped" in err


def test_health_tells_a_missing_heartbeat_from_a_garbage_one(failing: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No heartbeat file says the daemon may not run; a file of garbage, JSON that is no object, or an object
    without the daemon's boolean ``ok`` and ``running`` (once reported healthy) says the heartbeat is not
    trusted, naming the file; all are unhealthy (exit 1), in one line."""
    path = failing / "x" / HEARTBEAT_NAME
    path.unlink(missing_ok=True)
    code, _, err = run(capsys, "health", "--data-dir", str(failing), "--instance", "x")
    assert code == 1 and f"no heartbeat at {path} (is the daemon running?)" in err
    for garbage in (b"\x00\xff garbage", b"[1, 2]", b""):
        path.write_bytes(garbage)
        code, _, err = run(capsys, "health", "--data-dir", str(failing), "--instance", "x")
        assert code == 1 and err.count("\n") == 1
        assert f"the heartbeat {path} is not plsnap's (not a JSON object)" in err
    for foreign in (b"{}", b'{"interval_s": "abc"}', b'{"ok": "yes", "running": true}', b'{"ok": true}'):
        path.write_bytes(foreign)
        code, _, err = run(capsys, "health", "--data-dir", str(failing), "--instance", "x")
        assert code == 1 and f"the heartbeat {path} is not plsnap's (no 'ok' and 'running')" in err


def test_prune_finds_the_only_instance_like_the_read_commands(
    failing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a single instance x and no --instance, `prune --dry-run` plans for x (as `at` reads x), instead of
    saying there are no partitions under .../default."""
    code, out, err = run(capsys, "prune", "--dry-run", "--data-dir", str(failing))
    assert code == 0, err
    assert "would keep" in out and "2026-11-28/03.jsonl.zst" in out


def test_report_is_written_through_the_one_atomic_write(archive: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """`report -o FILE` replaces FILE in one step (mode 0644 less the umask, no temp file left), and no module but
    archive/fs.py renames files: there is one atomic-write helper (temp file, fsync, rename, fsync of the
    directory)."""
    target = tmp_path / "out" / "incident.html"
    target.parent.mkdir()
    target.write_text("old")
    old = os.umask(0o022)
    try:
        code, _, err = run(capsys, "report", iso(0), iso(120), "--data-dir", str(archive), "-o", str(target))
    finally:
        os.umask(old)
    assert code == 0, err
    assert target.read_text().startswith("<!DOCTYPE html>") and target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["incident.html"]
    src = Path(__file__).resolve().parents[2] / "src" / "plsnap"
    renames = []
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name, owner = node.func.attr, node.func.value
            via_os = isinstance(owner, ast.Name) and owner.id == "os" and name in ("rename", "replace")
            via_path = name in ("rename", "replace") and len(node.args) == 1 and not node.keywords
            if via_os or via_path:
                renames.append(f"{path.relative_to(src)}:{node.lineno}")
    assert renames and all(r.startswith("archive/fs.py:") for r in renames), renames


def test_at_through_the_command_ends_with_its_output_whole(archive: Path) -> None:
    """The console command ends ``at`` without tearing its modules down: the output is still complete when
    piped, the exit codes are main()'s, and an unwritable stdout is a failure, not a silent success."""
    base = [sys.executable, "-m", "plsnap", "at", "--data-dir", str(archive), "--instance", "db1"]
    done = subprocess.run([*base, iso(35), "--format", "json"], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sessions"][0]["id"] == 1
    missing = subprocess.run([*base, iso(-3600)], capture_output=True, text=True, check=False)
    assert missing.returncode == 3 and "before the archive begins" in missing.stderr
    quiet = subprocess.run([*base, iso(35)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    assert quiet.returncode == 0
    with Path("/dev/full").open("wb") as no_space:
        failed = subprocess.run([*base, iso(35)], stdout=no_space, stderr=subprocess.PIPE, text=True, check=False)
    assert failed.returncode == 1 and "No space left" in failed.stderr
    closed_stderr = subprocess.run(["sh", "-c", 'exec "$@" 2>&-', "sh", *base, iso(35)], capture_output=True,
                                   check=False)  # fmt: skip
    assert closed_stderr.returncode == 0 and closed_stderr.stdout == quiet_output(base, iso(35))
    closed_stdout = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *base, iso(35)], capture_output=True,
                                   text=True, check=False)  # fmt: skip
    assert closed_stdout.returncode == 1 and "Traceback" not in closed_stdout.stderr
    assert closed_stdout.stderr.count("\n") == 1


def quiet_output(base: list[str], moment: str) -> bytes:
    """What ``at`` prints with both streams open."""
    return subprocess.run([*base, moment], capture_output=True, check=True).stdout


def test_python_dash_m_runs_the_cli() -> None:
    """``python -m plsnap`` is the ``plsnap`` command: same version line, same exit codes."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "plsnap", "--version"], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and run.stdout.startswith("plsnap ")
    bad = subprocess.run([sys.executable, "-m", "plsnap", "at"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
