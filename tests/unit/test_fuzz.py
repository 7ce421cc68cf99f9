"""Bad input never crashes plsnap: archive bytes, time strings and CLI arguments, config files.

Archive properties run 2,500 examples each (10,000 generated archives in all).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from datetime import timedelta
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plsnap.archive import ArchiveReader, ArchiveWriter
from plsnap.archive.format import decode_lines, encode_line
from plsnap.cli import main
from plsnap.config import SCHEMA, load_config
from plsnap.errors import ConfigError
from tests.synth import T0, idle, running, snap

ARCHIVE_EXAMPLES = 2500


def _valid_partition(offset: int = 0) -> tuple[bytes, list[bytes]]:
    """A two-frame partition of 8 snapshots (``offset`` seconds after T0), and its lines."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines = []
        for session_start in (0, 40):
            with ArchiveWriter(root, fsync=False) as writer:
                for t in range(offset + session_start, offset + session_start + 40, 10):
                    s = snap(t, running(t + 1, f"SELECT {t}", started=t - 2, now=t), idle(99, time=t))
                    line = encode_line(s.to_record())
                    lines.append(line.rstrip(b"\n"))
                    writer.append(line, s.ts)
        (path,) = root.rglob("*.zst")
        return path.read_bytes(), lines


VALID, VALID_LINES = _valid_partition()
LATER, LATER_LINES = _valid_partition(3600)


def read_all(data: bytes) -> tuple[list[dict], list[str]]:
    """Write ``data`` as a partition (next to a valid one) and read everything back through the public reader."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / T0.strftime("%Y-%m-%d") / f"{T0:%H}.jsonl.zst"
        path.parent.mkdir()
        path.write_bytes(data)
        later = T0 + timedelta(hours=1)
        neighbour = root / later.strftime("%Y-%m-%d") / f"{later:%H}.jsonl.zst"
        neighbour.parent.mkdir(exist_ok=True)
        neighbour.write_bytes(LATER)
        (root / "stray.bin").write_bytes(data[:100])
        reader = ArchiveReader(root)
        snapshots = list(reader.iter_snapshots())
        records = list(reader.iter_records())
        assert len(snapshots) <= len(records)
        return records, reader.problems


def check_contract(data: bytes) -> None:
    records, problems = read_all(data)
    assert len(problems) == len(set(problems)), "each problem is reported once"
    good = {orjson.loads(line)["ts"] for line in LATER_LINES}
    assert sum(1 for r in records if r.get("ts") in good) >= len(LATER_LINES), "the intact partition is all there"


@settings(max_examples=ARCHIVE_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(VALID)))
def test_truncated_partition(cut: int) -> None:
    """Any truncation keeps exactly the complete snapshots before the cut and never raises."""
    lines, _ = decode_lines(VALID[:cut])
    assert lines == VALID_LINES[: len(lines)]
    check_contract(VALID[:cut])


@settings(max_examples=ARCHIVE_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 7)), min_size=1, max_size=4))
def test_bit_flipped_partition(flips: list[tuple[int, int]]) -> None:
    """Bit flips anywhere never raise; whatever is returned is made of well-formed lines."""
    data = bytearray(VALID)
    for offset, bit in flips:
        data[offset] ^= 1 << bit
    lines, _ = decode_lines(bytes(data))
    for line in lines:
        assert b"\n" not in line
    check_contract(bytes(data))


@settings(max_examples=ARCHIVE_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    """Random bytes (including zero-length files) never raise."""
    check_contract(data)


@settings(max_examples=ARCHIVE_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=512), st.booleans())
def test_valid_frame_then_junk(junk: bytes, junk_first: bool) -> None:
    """A valid partition with junk before or after it keeps every snapshot of the valid frames that follow."""
    data = junk + VALID if junk_first else VALID + junk
    lines, _ = decode_lines(data)
    if not junk_first:
        assert lines[: len(VALID_LINES)] == VALID_LINES
    check_contract(data)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_time_arguments_exit_cleanly(text: str) -> None:
    """Any TIME string gives exit 0, 2 or 3 with at most one stderr line and never a traceback."""
    with tempfile.TemporaryDirectory() as tmp:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["at", text, "--data-dir", tmp])
    assert code in (2, 3)
    assert err.getvalue().count("\n") == 1
    assert "Traceback" not in err.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=12), max_size=5))
def test_arbitrary_argv_exits_cleanly(argv: list[str]) -> None:
    """Arbitrary argument lists never raise: a usage error is exit 2 with one line."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.pop("PLSNAP_CONFIG", None)
        err = io.StringIO()
        safe = [a for a in argv if a not in {"daemon", "capture", "check", "prune"}]
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main([*safe, "--data-dir", tmp])
            except SystemExit as exc:
                code = int(exc.code or 0)
    assert code in (0, 1, 2, 3)
    if code:
        assert err.getvalue().count("\n") == 1
        assert "Traceback" not in err.getvalue()


VALUES = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=12),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(min_value=-1000, max_value=1000), max_size=2),
)
KEYS = [(section, key) for section, (_, keys) in SCHEMA.items() for key in keys]


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(KEYS), VALUES)
def test_config_values_validate_or_name_the_key(item: tuple[str, str], value: object) -> None:
    """Any value for any key either loads or raises a ConfigError naming the section and key."""
    section, key = item
    doc = orjson.dumps({section: {key: value}}).decode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plsnap.toml"
        path.write_text(_to_toml(section, key, value))
        try:
            with warnings.catch_warnings():
                load_config(path, environ={})
        except ConfigError as exc:
            assert f"[{section}] {key}" in str(exc) or "[mysql] ssl" in str(exc), (doc, str(exc))


def _to_toml(section: str, key: str, value: object) -> str:
    if isinstance(value, bool):
        rendered = "true" if value else "false"
    elif isinstance(value, str):
        rendered = '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 127 or c in '"\\' else c
                                 for c in value) + '"'  # fmt: skip
    elif isinstance(value, float):
        rendered = repr(value)
    else:
        rendered = orjson.dumps(value).decode()
    return f"[{section}]\n{key} = {rendered}\n"
