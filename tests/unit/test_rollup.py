"""Rollup files: built by the daemon's keeper and by reindex, found and checked by readers, and never an answer
that differs from the raw rows (docs/archive-format.md, "Rollups")."""

from __future__ import annotations

import dataclasses
import os
import random
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from plsnap import query, report, report_md, retention
from plsnap.archive.format import PartitionDecoder, encode_line
from plsnap.archive.layout import list_partitions
from plsnap.archive.reader import ArchiveReader
from plsnap.archive.writer import ArchiveWriter
from plsnap.config import RetentionConfig
from plsnap.errors import NoDataError, UsageError
from plsnap.model import Snapshot, format_ts, parse_ts
from plsnap.render import episode_json, window_json
from plsnap.rollup import Keeper, Rollups, _all_after, decode_file, reindex
from tests.unit.test_partial import history

DIMS = ("fingerprint", "user", "state")


def lines_for(hours: float, seed: int = 7) -> list[Snapshot]:
    """About ``hours`` of 10 s samples with gaps, cadence changes, locks and counters."""
    rng = random.Random(seed)
    steps = []
    for _ in range(int(hours * 360)):
        kind = rng.choice(["sample"] * 12 + ["gap", "span", "marker"])
        changes = [(rng.randint(1, 6), rng.randint(0, 9)) for _ in range(rng.randint(0, 4))]
        steps.append((10000, rng.randint(0, 40), kind, changes, rng.randint(0, 8)))
    return history(steps)


def write(root: Path, lines: list[Snapshot], *, keeper: bool = False, close: bool = True) -> ArchiveWriter:
    """Write ``lines`` as the recorder does (with a rollup keeper when asked)."""
    writer = ArchiveWriter(root, fsync=False)
    kept = Keeper(writer.directory) if keeper else None
    for line in lines:
        record = line.to_record()
        writer.append(encode_line(record), line.ts)
        frames, writer.closed_frames = writer.closed_frames, []
        if kept is not None:
            kept.feed(record, opened=writer.opened, fresh=writer.fresh, frames=frames)
    if close:
        writer.close_partition()
        if kept is not None:
            kept.close(writer.closed_frames)
        writer.close()
    return writer


def answers(root: Path, start: datetime, end: datetime, *, by: str = "fingerprint", top: int = 5, **kw: object):
    """(window JSON, locks JSON, reader problems, stale reasons) with rollups, and the same from raw rows."""
    with ArchiveReader(root) as reader:
        rollups = Rollups(reader, **kw)  # type: ignore[arg-type]
        fast = window_json(query.window(reader, start, end, by=by, top=top, rollups=rollups))
        fast_locks = [episode_json(e) for e in query.lock_episodes(reader, start, end, rollups=rollups)]
        stale = [why for _, why in rollups.stale]
        problems = reader.problems
    with ArchiveReader(root) as reader:
        slow = window_json(query.window(reader, start, end, by=by, top=top))
        slow_locks = [episode_json(e) for e in query.lock_episodes(reader, start, end)]
    assert fast == slow
    assert fast_locks == slow_locks
    if by == "fingerprint":
        assert load_through(root, start, end, top=top, **kw) == load_through(root, start, end, top=top, raw=True)
    return problems, stale


def load_through(root: Path, start: datetime, end: datetime, *, top: int = 5, raw: bool = False, **kw: object):
    """The report's DB load of the window (buckets of whole minutes), with rollups or from raw rows only."""
    with ArchiveReader(root) as reader:
        rollups = None if raw else Rollups(reader, **kw)  # type: ignore[arg-type]
        load = query.window(reader, start, end, top=top, rollups=rollups, load_buckets=60).load
    assert load is not None
    return dataclasses.asdict(load)


def _copy(root: Path, copy: Path, *, rollups: bool = True) -> Path:
    """A copy of the archive ``root`` (new files, so new mtimes), with or without its rollups."""
    copy.mkdir(parents=True)
    for part in list_partitions(root).partitions:
        (copy / part.date_name).mkdir(exist_ok=True)
        for name in part.all_names if rollups else part.names:
            (copy / part.date_name / name).write_bytes((part.path.parent / name).read_bytes())
    return copy


def _flip(path: Path, where: float, *, mtime_ns_after: int | None = None) -> None:
    """Flip one bit ``where`` (a fraction of the size) into ``path``; ``mtime_ns_after``: then set its mtime to
    the old one plus this many ns (0 keeps it: bit rot that changes neither size nor mtime)."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x08
    path.write_bytes(bytes(data))
    if mtime_ns_after is not None:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + mtime_ns_after))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Snapshot]]:
    root = tmp_path_factory.mktemp("rollups") / "inst"
    lines = lines_for(3.2)
    write(root, lines)
    done = reindex(root, now=lines[-1].ts + timedelta(hours=2))
    assert {d.action for d in done} == {"built"}
    return root, lines


@pytest.mark.parametrize("by", DIMS)
@pytest.mark.parametrize(
    ("lead", "trail"),
    [(0, 0), (17 * 60 + 3, -23 * 60), (-3600, 3600), (3600 - 600, -7200 + 300)],
    ids=["all", "unaligned", "beyond-the-archive", "hour-edges"],
)
def test_window_through_rollups_equals_the_raw_scan(archive, by: str, lead: int, trail: int) -> None:
    root, lines = archive
    start = lines[0].ts.replace(minute=0, second=0, microsecond=0) + timedelta(seconds=lead)
    end = lines[-1].ts + timedelta(seconds=trail)
    problems, stale = answers(root, start, end, by=by)
    assert not stale
    assert not problems


def test_reindex_skips_what_is_current_and_rebuilds_when_forced(archive) -> None:
    root, lines = archive
    again = reindex(root, now=lines[-1].ts + timedelta(hours=2))
    assert {d.action for d in again} == {"current"}
    forced = reindex(root, now=lines[-1].ts + timedelta(hours=2), force=True)
    assert {d.action for d in forced} == {"built"}


def test_reindex_leaves_foreign_entries_alone_and_reports_what_it_found(archive, tmp_path: Path) -> None:
    """A symlink or a FIFO named like a rollup is never replaced; a garbage rollup is called unreadable (not
    missing) and rebuilt; damage found in the raw rows on the way is warned about, as every reader does."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst", rollups=False)
    parts = list_partitions(copy).partitions
    outside = tmp_path / "outside"
    outside.write_text("not yours")
    (parts[0].path.parent / parts[0].rollup_name).symlink_to(outside)
    os.mkfifo(parts[1].path.parent / parts[1].rollup_name)
    (parts[2].path.parent / parts[2].rollup_name).write_bytes(os.urandom(300))
    _flip(parts[3].path, 0.3)
    warnings: list[str] = []
    done = reindex(copy, now=lines[-1].ts + timedelta(hours=2), warn=warnings.append)
    by_path = {d.partition.path: d for d in done}
    assert by_path[parts[0].path].action == "skipped" and "a symlink stands at" in by_path[parts[0].path].reason
    assert by_path[parts[1].path].action == "skipped" and "a special file" in by_path[parts[1].path].reason
    assert by_path[parts[2].path].action == "built"
    assert by_path[parts[2].path].reason.startswith("unreadable rollup")
    assert outside.read_text() == "not yours"
    assert (parts[0].path.parent / parts[0].rollup_name).is_symlink()
    assert (parts[1].path.parent / parts[1].rollup_name).is_fifo()
    assert any(str(parts[2].path.parent / parts[2].rollup_name) in w for w in warnings)
    assert any(w.startswith(str(parts[3].path)) for w in warnings), warnings
    assert len(warnings) == len(set(warnings))


def _lie(path: Path, change: Any) -> bool:
    """Rewrite a rollup with ``change(header, rows)`` applied and its CRCs fixed up, as a liar who knows the
    format would; True when ``change`` found something to change."""
    content = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    header, *rows = [orjson.loads(line) for line in content.split(b"\n") if line]
    changed = change(header, rows)
    lines = [orjson.dumps(row) for row in rows]
    header["crc"] = struct.pack(f">{len(lines)}I", *(zlib.crc32(line) for line in lines)).hex()
    path.write_bytes(zstandard.ZstdCompressor().compress(b"\n".join([orjson.dumps(header), *lines]) + b"\n"))
    return bool(changed)


def _first(rows: list[Any], test: Any) -> Any:
    return next((row["data"] for row in rows if test(row)), None)


def _gap_missed(header: Any, rows: list[Any]) -> bool:
    for row in rows:
        for extra in row["data"].get("lines", {}).get("other", {}).values():
            if type(extra) is list:
                extra[2] = -5000
                return True
    return False


def _shift(step: int, at: int) -> Any:
    def change(header: Any, rows: list[Any]) -> bool:
        data = _first(rows, lambda r: r["dim"] == "" and len(r["data"]["lines"]["ts"]) > at + 1)
        data["lines"]["ts"][at] = step
        return True

    return change


def _repeat_session(header: Any, rows: list[Any]) -> bool:
    for row in rows:
        for group in row["data"].get("groups", []) if row["dim"] not in ("", "load") else []:
            if len(group[4]) > 1:
                group[4][1] = 0
                return True
    return False


def _huge_counter(header: Any, rows: list[Any]) -> bool:
    for row in rows:
        for cell in row["data"].get("counters", {}).get("cells", []) if row["dim"] == "" else []:
            for found in cell[1].values():
                found[3] = 1e300
                return True
    return False


def _counter_cell(minute: int) -> Any:
    def change(header: Any, rows: list[Any]) -> bool:
        for row in rows:
            for cell in row["data"].get("counters", {}).get("cells", []) if row["dim"] == "" else []:
                cell[0] = minute
                return True
        return False

    return change


def _tiny_interval(header: Any, rows: list[Any]) -> bool:
    data = _first(rows, lambda r: r["dim"] == "" and any(r["data"]["lines"]["interval"]))
    position = next(i for i, v in enumerate(data["lines"]["interval"]) if v)
    data["lines"]["interval"][position] = 1e-300
    return True


def _header_ts(key: str, minutes: int) -> Any:
    def change(header: Any, rows: list[Any]) -> bool:
        moment = parse_ts(header[key]) + timedelta(minutes=minutes)
        header[key] = format_ts(moment)
        return True

    return change


def _drop_hour_part(header: Any, rows: list[Any]) -> bool:
    before = len(rows)
    rows[:] = [row for row in rows if row["part"] != "hour"]
    return len(rows) < before


def _swap_first_last(header: Any, rows: list[Any]) -> bool:
    header["first_ts"], header["last_ts"] = header["last_ts"], header["first_ts"]
    return True


@pytest.mark.parametrize(
    "change",
    [
        _gap_missed,
        _shift(10**12, 50),
        _shift(-20_000_000, 1),
        _repeat_session,
        _huge_counter,
        _drop_hour_part,
        _swap_first_last,
        _counter_cell(10**18),
        _counter_cell(-5),
        _tiny_interval,
        _header_ts("first_ts", 38),
        _header_ts("first_ts", -24 * 60),
        _header_ts("last_ts", -3),
    ],
    ids=[
        "negative-missed",
        "line-days-later",
        "lines-out-of-order",
        "repeated-session",
        "huge-counter",
        "complete-without-hour-part",
        "last-before-first",
        "counter-cell-far-later",
        "counter-cell-before-1970",
        "interval-of-1e-300",
        "first-ts-after-the-first-line",
        "first-ts-outside-the-hour",
        "last-ts-before-the-last-line",
    ],
)
def test_a_rollup_that_lies_consistently_is_ignored(archive, tmp_path: Path, change: Any) -> None:
    """Valid JSON, matching CRCs, absurd content (what a liar who knows the format writes): ignored with a
    warning, and the answers are the raw rows'."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    victim = list_partitions(copy).partitions[1]
    assert _lie(victim.path.parent / str(victim.rollup), change)
    problems, _ = answers(copy, lines[0].ts, lines[-1].ts + timedelta(seconds=1))
    assert any("rollup" in p and ("ignored" in p or "could not be read" in p) for p in problems), problems


def test_an_unfinished_hour_is_left_to_the_daemon(tmp_path: Path) -> None:
    lines = lines_for(0.5)
    write(tmp_path / "inst", lines)
    (done,) = reindex(tmp_path / "inst", now=lines[-1].ts)
    assert done.action == "skipped"


def test_keeper_rollups_answer_like_the_raw_rows(tmp_path: Path) -> None:
    """The daemon's keeper writes a rollup at every frame close and at rotation; readers use them."""
    root = tmp_path / "inst"
    lines = lines_for(2.5, seed=11)
    write(root, lines, keeper=True)
    listing = list_partitions(root)
    assert all(p.rollup for p in listing.partitions)
    for part in listing.partitions[:-1]:
        header = decode_file((part.path.parent / part.rollup).read_bytes()).header
        assert header.complete and header.built_by == "daemon"
    start = lines[0].ts + timedelta(minutes=7)
    _, stale = answers(root, start, lines[-1].ts + timedelta(seconds=1))
    assert not stale


def test_crash_in_mid_hour_leaves_a_partial_rollup_and_reindex_completes_it(tmp_path: Path) -> None:
    """kill -9 in mid-hour: the live rollup covers up to the last closed frame, the rest is read raw, and the
    answers stay exact; reindex, once the hour is over, restores the whole hour's rollup."""
    root = tmp_path / "inst"
    lines = lines_for(1.6, seed=5)
    writer = write(root, lines, keeper=True, close=False)
    for fd in (writer._fd, writer._note_fd):
        if fd is not None:
            os.close(fd)
    last = list_partitions(root).partitions[-1]
    header = decode_file((last.path.parent / last.rollup).read_bytes()).header
    assert not header.complete
    _, stale = answers(root, lines[0].ts, lines[-1].ts + timedelta(seconds=1))
    assert not stale
    done = reindex(root, now=last.end + timedelta(minutes=1))
    assert [d.action for d in done] == ["current", "built"]
    assert decode_file((last.path.parent / last.rollup).read_bytes()).header.complete
    answers(root, lines[0].ts, lines[-1].ts + timedelta(seconds=1))


def test_lines_added_after_the_rollup_make_it_stale(tmp_path: Path) -> None:
    """A partition appended to after its rollup was built (a writer back in that hour) is read raw."""
    root = tmp_path / "inst"
    lines = lines_for(1.2, seed=3)
    write(root, lines)
    first = list_partitions(root).partitions[0]
    reindex(root, now=lines[-1].ts + timedelta(hours=2))
    late = [line for line in lines_for(0.2, seed=9) if line.ts < first.start + timedelta(minutes=30)]
    with ArchiveWriter(root, fsync=False) as writer:
        for line in late:
            moved = dataclasses.replace(line, ts=line.ts + timedelta(milliseconds=3))
            writer.append(encode_line(moved.to_record()), moved.ts)
    _, stale = answers(root, first.start, first.end + timedelta(minutes=30))
    assert any("added to a span the rollup covers" in why for why in stale)


def _append_frame(path: Path, payload: bytes) -> None:
    with path.open("ab") as out:
        out.write(zstandard.ZstdCompressor().compress(payload))


@pytest.mark.parametrize(
    "added",
    [
        lambda first: zstandard.ZstdCompressor().compress(random.Random(5).randbytes(4000))[:40],
        lambda first: zstandard.ZstdCompressor().compress(
            encode_line({**first, "ts": "2099-01-01T00:10:00.000Z"}).replace(b"2099-01-01", first["ts"][:10].encode())
        ),
    ],
    ids=["torn-frame", "lines-of-another-hour"],
)
def test_damage_added_after_a_finished_hour_s_rollup_is_reported(archive, tmp_path: Path, added: Any) -> None:
    """What is appended to a finished hour after its rollup was built (half a frame, lines stamped with another
    hour) makes the rollup stale: the raw rows are read, and they report it."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    first = list_partitions(copy).partitions[0]
    with ArchiveReader(copy) as reader:
        record = next(reader.iter_records())
    record = {**record, "ts": "2099-01-01T" + f"{(first.start.hour + 1) % 24:02d}" + ":10:00.000Z"}
    with first.path.open("ab") as out:
        out.write(added(record))
    problems, stale = answers(copy, lines[0].ts, lines[-1].ts)
    assert stale and problems, (stale, problems)


def test_a_newest_hour_of_damaged_files_only_or_a_bad_ts_in_it_still_answers(archive, tmp_path: Path) -> None:
    """The newest partition may be damaged files only, or end in a line whose ts is not a time: windows still
    answer (like the raw rows), never with an internal error."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    *_, newest = list_partitions(copy).partitions
    _append_frame(newest.path, b'{"ts":"' + format_ts(newest.start)[:14].encode() + b'59:60.000Z","sessions":[]}\n')
    answers(copy, lines[0].ts, lines[0].ts + timedelta(minutes=10))
    answers(copy, lines[0].ts, lines[-1].ts)
    newest.path.rename(newest.path.with_name(newest.path.name + ".damaged"))
    reindex(copy, now=lines[-1].ts + timedelta(hours=2))
    answers(copy, lines[0].ts, lines[0].ts + timedelta(minutes=10))


@pytest.mark.parametrize("keep", [0.8, 0.9, 0.99])
def test_a_truncated_rollup_is_ignored_with_a_warning(archive, tmp_path: Path, keep: float) -> None:
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    part = list_partitions(copy).partitions[0]
    path = part.path.parent / part.rollup
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    problems, _ = answers(copy, lines[0].ts, lines[-1].ts)
    assert len([p for p in problems if "rollup ignored" in p]) == 1, problems


@pytest.mark.parametrize("where", ["instance", "data-dir", "inside"])
def test_reindex_refuses_a_cache_that_overlaps_the_archive(archive, tmp_path: Path, where: str) -> None:
    """A --cache inside the archive, or one whose <instance> folder is the archive, is refused before anything
    is written."""
    root, lines = archive
    copy = _copy(root, tmp_path / "data" / "inst", rollups=False)
    before = sorted(str(p) for p in (tmp_path / "data").rglob("*"))
    cache = {"instance": copy, "data-dir": copy.parent, "inside": copy / "cache"}[where]
    with pytest.raises(UsageError, match="overlaps the archive"):
        reindex(copy, cache=cache, now=lines[-1].ts + timedelta(hours=2))
    assert sorted(str(p) for p in (tmp_path / "data").rglob("*")) == before


def test_a_rewritten_partition_makes_its_rollup_stale(archive, tmp_path: Path) -> None:
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    victim = list_partitions(copy).partitions[1].path
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0x40
    victim.write_bytes(bytes(data))
    _, stale = answers(copy, lines[0].ts, lines[-1].ts)
    assert stale == ["the partition changed since the rollup was built"]


def test_a_damaged_file_set_aside_makes_the_rollup_stale(archive, tmp_path: Path) -> None:
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    second = list_partitions(copy).partitions[1]
    (second.path.parent / (second.path.name + ".damaged")).write_bytes(b"\x28\xb5\x2f\xfd junk")
    problems, stale = answers(copy, lines[0].ts, lines[-1].ts)
    assert stale == ["the damaged files beside the partition changed"]
    assert any(".damaged" in p for p in problems), "the damage itself is still reported"


def test_a_damaged_file_changed_in_place_makes_the_rollup_stale(archive, tmp_path: Path) -> None:
    """Readers read what they can of a damaged file set aside: a byte changed in it (its size kept) changes
    what they read, so the rollup built with it is stale."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst", rollups=False)
    second = list_partitions(copy).partitions[1]
    aside = second.path.with_name(second.path.name + ".damaged")
    second.path.rename(aside)
    reindex(copy, now=lines[-1].ts + timedelta(hours=2))
    _, stale = answers(copy, lines[0].ts, lines[-1].ts)
    assert not stale
    _flip(aside, 0.5, mtime_ns_after=0)
    _, stale = answers(copy, lines[0].ts, lines[-1].ts)
    assert stale == ["the damaged files beside the partition changed"]


def test_a_flipped_byte_in_a_rollup_never_changes_an_answer(archive, tmp_path: Path) -> None:
    """Rollups are read lazily, before zstd's checksum at the frame's end: each line's CRC in the header
    still catches damage, and the answer comes from the raw rows, with a warning."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    part = list_partitions(copy).partitions[1]
    path = part.path.parent / part.rollup
    data = bytearray(path.read_bytes())
    warned = 0
    for where in range(len(data) // 10, len(data), len(data) // 10):
        flipped = bytearray(data)
        flipped[where] ^= 0x08
        path.write_bytes(bytes(flipped))
        problems, _ = answers(copy, lines[0].ts, lines[-1].ts)
        warned += any("rollup" in p for p in problems)
    assert warned, "no flip was noticed"


@pytest.mark.parametrize(
    "content",
    [b"not zstd at all", b"\x28\xb5\x2f\xfd\x00\x00", None],
    ids=["garbage", "truncated-zstd", "foreign-json"],
)
def test_a_foreign_or_corrupt_rollup_is_ignored_with_one_warning(archive, tmp_path: Path, content) -> None:
    import zstandard

    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    part = list_partitions(copy).partitions[0]
    bad = content if content is not None else zstandard.compress(b'{"kind":"something-else"}\n')
    (part.path.parent / part.rollup).write_bytes(bad)
    problems, _ = answers(copy, lines[0].ts, lines[-1].ts)
    assert len([p for p in problems if "rollup ignored" in p]) == 1, problems


def test_a_symlinked_rollup_is_never_followed(archive, tmp_path: Path) -> None:
    root, lines = archive
    copy = _copy(root, tmp_path / "inst", rollups=False)
    part = list_partitions(root).partitions[0]
    outside = tmp_path / "elsewhere.rollup"
    outside.write_bytes((part.path.parent / part.rollup).read_bytes())
    (copy / part.date_name / part.rollup).symlink_to(outside)
    problems, _ = answers(copy, lines[0].ts, lines[-1].ts)
    assert any("symlink" in p for p in problems)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "dir"])
def test_an_odd_entry_at_a_rollup_s_name_is_said_once_and_is_no_lost_history(
    archive, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A symlink, FIFO or directory where a rollup should be: one warning from a window, and verify (whose
    exit 1 means history that cannot be read) exits 0, since a rollup is derived data."""
    from plsnap.cli import main

    root, lines = archive
    copy = _copy(root, tmp_path / "data" / "inst", rollups=False)
    part = list_partitions(copy).partitions[0]
    where = part.path.parent / part.rollup_name
    {"symlink": lambda: where.symlink_to(tmp_path), "fifo": lambda: os.mkfifo(where), "dir": where.mkdir}[kind]()
    args = ["--data-dir", str(copy.parent), "--instance", "inst"]
    assert main(["window", format_ts(lines[0].ts), format_ts(lines[-1].ts), *args, "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert err.count(str(where)) == 1, err
    assert main(["verify", *args]) == 0


def test_reindex_into_a_cache_leaves_the_archive_alone(archive, tmp_path: Path) -> None:
    root, lines = archive
    copy = _copy(root, tmp_path / "copy" / "inst", rollups=False)
    before = sorted(p.name for p in copy.rglob("*"))
    cache = tmp_path / "cache"
    done = reindex(copy, cache=cache, now=lines[-1].ts + timedelta(hours=2))
    assert {d.action for d in done} == {"built"}
    assert sorted(p.name for p in copy.rglob("*")) == before
    assert len(list(cache.rglob("*.rollup.json.zst"))) == len(done)
    _, stale = answers(copy, lines[0].ts, lines[-1].ts, cache=cache)
    assert not stale


def test_retention_removes_a_partition_with_its_rollup(archive, tmp_path: Path) -> None:
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    oldest = list_partitions(copy).partitions[0]
    policy = RetentionConfig(max_age=3600.0)
    from plsnap.archive.fs import SafeDir

    with SafeDir.open_root(copy, writable=True) as directory:
        outcome = retention.run(directory, policy, newest_snapshot=lines[-1].ts)
    assert oldest.path in {d.partition.path for d in outcome.deleted}
    assert not (oldest.path.parent / oldest.rollup).exists()
    assert not oldest.path.exists()


def test_a_rollup_without_its_partition_is_foreign_and_shields_nothing(archive, tmp_path: Path) -> None:
    """A stray rollup in a later hour (copied by hand, or left by whoever deleted a partition) is reported and
    left alone: it is no partition, so retention never takes it for the newest one and deletes the real
    newest; an hour whose data file is gone is never answered from its rollup."""
    from plsnap.archive.fs import SafeDir

    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    real = list_partitions(copy).partitions
    stray = copy / "2026-12-30" / "23.rollup.json.zst"
    stray.parent.mkdir()
    stray.write_bytes((real[0].path.parent / str(real[0].rollup)).read_bytes())
    listing = list_partitions(copy)
    assert [p.path for p in listing.partitions] == [p.path for p in real]
    assert [(f.path, f.reason) for f in listing.foreign] == [(stray, "a rollup without its partition")]
    with SafeDir.open_root(copy, writable=True) as directory:
        outcome = retention.run(directory, RetentionConfig(max_age=7 * 86400.0, max_bytes=1000),
                                newest_snapshot=lines[-1].ts)  # fmt: skip
    assert real[-1].path.exists() and stray.exists()
    assert real[-1].path not in {d.partition.path for d in outcome.deleted}
    second = _copy(root, tmp_path / "second")
    victim = list_partitions(second).partitions[1]
    victim.path.unlink()
    with ArchiveReader.open(second.parent, second.name) as reader:
        with pytest.raises(NoDataError, match="no sample in"):
            query.lock_episodes(reader, victim.start, victim.end, rollups=Rollups(reader))
        assert any("a rollup without its partition" in p for p in reader.problems)


@pytest.mark.parametrize("where", [0.02, 0.3, 0.6], ids=["near-the-start", "a-third-in", "in-the-middle"])
def test_damage_anywhere_in_a_partition_makes_its_rollup_stale(archive, tmp_path: Path, where: float) -> None:
    """A flipped byte far from the end of a closed partition (bit rot, a bad copy) loses lines for raw readers:
    the rollup built before must not answer for them (its digest covers every byte it summarizes)."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    victim = list_partitions(copy).partitions[1].path
    assert victim.stat().st_size > 3 * 4096
    _flip(victim, where)
    problems, stale = answers(copy, lines[0].ts, lines[-1].ts)
    assert stale == ["the partition changed since the rollup was built"]
    assert any(str(victim) in p for p in problems), "the damage is reported"


def test_damage_that_keeps_size_and_mtime_is_found_by_verify(archive, tmp_path: Path) -> None:
    """Readers trust a partition whose size and mtime are the ones its rollup recorded, without hashing it again
    on every read. Bit rot that changes neither is what ``plsnap verify`` is for: it reports the damage and
    removes the rollup, and from then on the answer is the raw rows' again."""
    from plsnap.cli import main

    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    done = reindex(copy, now=lines[-1].ts + timedelta(hours=2), force=True)
    assert {d.action for d in done} == {"built"}
    victim = list_partitions(copy).partitions[1].path
    _flip(victim, 1 / 3, mtime_ns_after=0)
    with ArchiveReader(copy) as reader:
        rollups = Rollups(reader)
        query.window(reader, lines[0].ts, lines[-1].ts, rollups=rollups)
        assert rollups.stale == [], "same size, same mtime: trusted without a hash"
    assert main(["verify", "--data-dir", str(copy)]) == 1
    problems, stale = answers(copy, lines[0].ts, lines[-1].ts)
    assert stale == ["no rollup"], "verify removed the rollup of the damaged partition"
    assert not (victim.parent / list_partitions(copy).partitions[1].rollup_name).exists()
    assert any(str(victim) in p for p in problems), "the damage is reported"


def test_a_write_changes_what_the_fast_check_sees(archive, tmp_path: Path) -> None:
    """Damage written into a partition after its rollup was built (its mtime moves) is caught by the digest."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    reindex(copy, now=lines[-1].ts + timedelta(hours=2), force=True)
    victim = list_partitions(copy).partitions[1].path
    _flip(victim, 1 / 2, mtime_ns_after=1)
    _, stale = answers(copy, lines[0].ts, lines[-1].ts)
    assert stale == ["the partition changed since the rollup was built"]


def _rle_bomb(byte: bytes, blocks: int, *, every: int = 0) -> bytes:
    """A zstd frame of ``blocks`` RLE blocks of 128 KiB each (4 bytes apiece: 1 GiB from 32 KiB for 8192), with
    a raw newline block after every ``every`` of them."""
    out = bytearray(b"\x28\xb5\x2f\xfd\x00\x38")  # magic; no checksum or size; a 128 KiB window
    for number in range(blocks):
        last = number == blocks - 1
        out += ((131072 << 3) | (1 << 1) | last).to_bytes(3, "little") + byte
        if every and not last and number % every == every - 1:
            out += (1 << 3).to_bytes(3, "little") + b"\n"
    return bytes(out)


@pytest.mark.parametrize(
    "bomb",
    [_rle_bomb(b"a", 8192), _rle_bomb(b"\n", 8192), _rle_bomb(b"x", 8192, every=4)],
    ids=["one-endless-line", "empty-lines", "many-long-lines"],
)
def test_a_rollup_that_decompresses_to_a_gigabyte_is_refused_in_bounded_memory(
    archive, tmp_path: Path, bomb: bytes
) -> None:
    """32 KiB that decompress to 1 GiB, put where a rollup goes: refused with one warning, holding at most a few
    dozen MiB at once (the decoder is fed in small pieces), and the answer comes from the raw rows."""
    import tracemalloc

    from plsnap.rollup import RollupError

    tracemalloc.start()
    try:
        with pytest.raises(RollupError):
            decode_file(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 160 * 2**20, f"{peak / 2**20:.0f} MiB held"
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    part = list_partitions(copy).partitions[0]
    (part.path.parent / part.rollup).write_bytes(bomb)
    problems, _ = answers(copy, lines[0].ts, lines[-1].ts)
    assert len([p for p in problems if "rollup ignored" in p]) == 1, problems


@pytest.mark.parametrize("value", [10**18, -5, 0], ids=["absurd", "negative", "zero"])
def test_a_rollup_with_a_valid_crc_but_groups_that_do_not_add_up_is_ignored(archive, tmp_path: Path, value) -> None:
    """A rollup rewritten with one group's active time changed and its CRCs recomputed: the groups no longer
    add up to the part's total, so it is ignored with one warning and the answer is the raw rows'."""
    import struct
    import zlib

    import orjson
    import zstandard

    root, _ = archive
    copy = _copy(root, tmp_path / "inst")
    part = list_partitions(copy).partitions[1]
    path = part.path.parent / part.rollup
    header, *body = zstandard.decompress(path.read_bytes()).split(b"\n")[:-1]
    row = orjson.loads(body[1])
    assert (row["part"], row["dim"]) == ("hour", "fingerprint")
    row["data"]["groups"][0][2] = value
    body[1] = orjson.dumps(row)
    head = orjson.loads(header)
    head["crc"] = struct.pack(f">{len(body)}I", *(zlib.crc32(line) for line in body)).hex()
    content = b"\n".join([orjson.dumps(head), *body]) + b"\n"
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(content))
    problems, _ = answers(copy, part.start, part.end, by="fingerprint")
    assert len([p for p in problems if "rollup" in p and ("add up" in p or "negative" in p)]) == 1, problems


def test_the_keeper_reads_records_as_readers_read_their_lines() -> None:
    """The keeper folds the record the recorder encoded, not the line parsed again: every kind of record the
    synthetic histories hold (sessions, lock edges, counters, gaps) parses back from its line unchanged."""
    from plsnap.archive.format import parse_line

    steps = [(10000, 3, "sample", [(1, 2), (2, 7), (3, 1)], 3), (10000, 0, "sample", [(3, 4), (4, 1)], 4)]
    steps += [(5000, 0, "gap", [], 1), (1000, 0, "span", [], 2), (200, 0, "marker", [], 0)]
    steps += [(10000, 0, "sample", [(1, 8), (2, 0)], 7)]
    for snapshot in lines_for(1.0, seed=3) + history(steps):
        record = snapshot.to_record()
        assert parse_line(encode_line(record)) == record


def test_damage_recorded_by_a_rollup_is_reported_whenever_it_answers(archive, tmp_path: Path) -> None:
    """A rollup rebuilt after damage answers for the hour; the damage its raw read saw is repeated as a warning,
    so the window through rollups says what --no-rollups says."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    victim = list_partitions(copy).partitions[1]
    _flip(victim.path, 1 / 3)
    reindex(copy, now=lines[-1].ts + timedelta(hours=2), force=True)
    with ArchiveReader(copy) as reader:
        rollups = Rollups(reader)
        query.window(reader, lines[0].ts, lines[-1].ts, rollups=rollups)
        assert rollups.stale == [], "the rollup rebuilt after the damage answers"
        assert any(p.startswith(str(victim.path)) and "recorded by its rollup" in p for p in reader.problems)


def test_verify_removes_a_rollup_that_recorded_earlier_damage(archive, tmp_path: Path) -> None:
    """Later bit rot in a partition whose rollup recorded earlier damage keeps size and mtime: verify finds it and
    removes that rollup too, so the next answer comes from the raw rows, with every loss reported."""
    from plsnap.cli import main

    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    victim = list_partitions(copy).partitions[1]
    _flip(victim.path, 1 / 4)
    reindex(copy, now=lines[-1].ts + timedelta(hours=2), force=True)
    _flip(victim.path, 0.7, mtime_ns_after=0)
    assert main(["verify", "--data-dir", str(copy)]) == 1
    assert not (victim.path.parent / victim.rollup_name).exists()
    _, stale = answers(copy, lines[0].ts, lines[-1].ts)
    assert stale == ["no rollup"]


def test_a_cache_rollup_is_always_checked_by_its_digest(archive, tmp_path: Path) -> None:
    """verify cannot remove a --cache rollup, so it never gets the stat-only check: bit rot that kept the
    partition's size and mtime makes it stale, and the answer equals the raw rows'."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    for part in list_partitions(copy).partitions:
        if part.rollup:
            (part.path.parent / part.rollup).unlink()
    cache = tmp_path / "cache"
    reindex(copy, cache=cache, now=lines[-1].ts + timedelta(hours=2))
    _flip(list_partitions(copy).partitions[1].path, 0.5, mtime_ns_after=0)
    _, stale = answers(copy, lines[0].ts, lines[-1].ts, cache=cache)
    assert "the partition changed since the rollup was built" in stale


def test_a_partition_dated_before_1970_gets_a_readable_rollup(archive, tmp_path: Path) -> None:
    """A file mtime before the epoch (a restored backup, a broken clock) is not recorded: the rollup stays
    readable and current, checked by its digest."""
    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    for part in list_partitions(copy).partitions:
        os.utime(part.path, ns=(0, -3_000_000_000))
    done = reindex(copy, now=lines[-1].ts + timedelta(hours=2), force=True)
    assert {d.action for d in done} == {"built"}
    again = reindex(copy, now=lines[-1].ts + timedelta(hours=2))
    assert {d.action for d in again} == {"current"}, again
    problems, stale = answers(copy, lines[0].ts, lines[-1].ts)
    assert stale == [] and not any("rollup" in p for p in problems)


def test_the_report_reads_its_load_from_the_rollups(tmp_path: Path) -> None:
    """A report of six hours or more (its chart's buckets are whole minutes) reads only the raw rows of its
    unaligned edges when rollups exist, and its page is the same as the one built from raw rows alone."""
    root = tmp_path / "inst"
    lines = lines_for(7.5, seed=5)
    write(root, lines)
    reindex(root, now=lines[-1].ts + timedelta(hours=2))
    start = lines[0].ts.replace(minute=0, second=0, microsecond=0) + timedelta(minutes=50, seconds=3)
    end = start + timedelta(hours=6, minutes=15)
    inside = sum(1 for line in lines if start <= line.ts < end)
    pages = []
    for use in (True, False):
        with ArchiveReader(root) as reader:
            read = _count_reads(reader)
            made = report.build(reader, start, end, rollups=Rollups(reader) if use else None, now=end)
            pages.append(report_md.render(made, zone=UTC))
            scanned = len({s.ts for s in read if start <= s.ts < end})
            assert scanned < inside / 4 if use else scanned == inside
    assert pages[0] == pages[1]


def _count_reads(reader: ArchiveReader) -> list[Snapshot]:
    """Every raw line ``reader`` decodes from now on (its iter_snapshots is wrapped, not replaced)."""
    read: list[Snapshot] = []
    scan = reader.iter_snapshots

    def counted(*args: Any, **kw: Any) -> Iterator[Snapshot]:
        for snapshot in scan(*args, **kw):
            read.append(snapshot)
            yield snapshot

    reader.iter_snapshots = counted  # type: ignore[method-assign]
    return read


def _set_load(data: dict[str, Any], change: str) -> None:
    """Change one value of a stored load (see docs/archive-format.md, the load line)."""
    if change == "active":
        data["active"]["state"][0][2] += 1000
    elif change == "spread":
        data["spread"]["host"][1] += 1
    elif change == "peak":
        data["peak"][1] += 1
    elif change == "samples":
        data["samples"][1] += 1
    elif change == "users":
        data["users"][0][2] = -1
    elif change == "reference":
        data["users"][0][0] = len(data["values"])
    elif change == "shape":
        data["sampled"] = data["sampled"][:-1]
    elif change == "bucket":
        data["bucket"] = 30
    elif change == "sampled":
        data["sampled"][1] = 10**12
    elif change == "shifted":
        data["first"] += 1
    elif change == "sources":
        data["sources"] = [*data["sources"], ["elsewhere", -1], ["again", 1]]
    elif change == "peak-ts":
        data["peak"][0] += 1000
    elif change == "pending-none":
        data["pending"] = None
    elif change == "duplicate":
        data["active"]["state"].append(list(data["active"]["state"][0]))
    elif change == "table":
        data["values"].append(data["values"][0])
    elif change in ("bucket-later", "bucket-before"):
        series = data["active"]["state"][0]
        series[1] = 10**9 if change == "bucket-later" else -5 - data["first"]


@pytest.mark.parametrize(
    "change",
    ["active", "spread", "peak", "samples", "users", "reference", "shape", "bucket", "sampled", "shifted",
     "sources", "peak-ts", "pending-none", "duplicate", "table", "bucket-later", "bucket-before"],
)  # fmt: skip
def test_a_load_row_that_does_not_match_its_part_is_ignored(archive, tmp_path: Path, change: str) -> None:
    """The hour's DB-load row rewritten (CRCs recomputed) so that it no longer matches its part: the rollup is
    ignored with one warning, and the report's load is the raw rows'."""
    import struct
    import zlib

    import orjson
    import zstandard

    root, _ = archive
    copy = _copy(root, tmp_path / "inst")
    part = list_partitions(copy).partitions[1]
    path = part.path.parent / part.rollup
    header, *body = zstandard.decompress(path.read_bytes()).split(b"\n")[:-1]
    at = next(i for i, line in enumerate(body) if orjson.loads(line)["part"] == "hour" and b'"dim":"load"' in line)
    row = orjson.loads(body[at])
    _set_load(row["data"], change)
    body[at] = orjson.dumps(row)
    head = orjson.loads(header)
    head["crc"] = struct.pack(f">{len(body)}I", *(zlib.crc32(line) for line in body)).hex()
    path.write_bytes(
        zstandard.ZstdCompressor(write_checksum=True).compress(b"\n".join([orjson.dumps(head), *body]) + b"\n")
    )
    with ArchiveReader(copy) as reader:
        load = query.window(reader, part.start, part.end, rollups=Rollups(reader), load_buckets=60).load
        problems = reader.problems
    assert load is not None
    assert dataclasses.asdict(load) == load_through(copy, part.start, part.end, top=10, raw=True)
    assert len([p for p in problems if "rollup" in p]) == 1, problems


def test_rollups_of_another_plsnap_version_are_one_warning_and_reindex_rebuilds_them(archive, tmp_path: Path) -> None:
    """After an upgrade, the old format's rollups are ignored with one warning for the whole archive (not one
    per hour), the answer is the raw rows', and reindex rebuilds them without --force."""
    import orjson
    import zstandard

    root, lines = archive
    copy = _copy(root, tmp_path / "inst")
    partitions = list_partitions(copy).partitions
    for part in partitions:
        path = part.path.parent / part.rollup
        header, rest = zstandard.decompress(path.read_bytes()).split(b"\n", 1)
        head = orjson.loads(header)
        head["v"] -= 1
        path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(orjson.dumps(head) + b"\n" + rest))
    problems, stale = answers(copy, partitions[0].start, partitions[-1].end)
    assert len(problems) == 1 and "another plsnap version" in problems[0], problems
    assert len(stale) == len(partitions) and all(why.startswith("outdated rollup") for why in stale)
    rebuilt = reindex(copy, now=lines[-1].ts + timedelta(hours=2))
    assert [d.action for d in rebuilt] == ["built"] * len(partitions)
    problems, stale = answers(copy, partitions[0].start, partitions[-1].end)
    assert not problems and not stale


def test_a_cache_directory_that_holds_no_rollups_for_the_instance_is_said_once(archive, tmp_path: Path) -> None:
    """A mistyped --cache DIR is one warning (a window that is only slower would hide it), never an error."""
    root, lines = archive
    problems, _ = answers(root, lines[0].ts, lines[-1].ts, cache=tmp_path / "typo")
    assert len(problems) == 1 and "--cache" in problems[0] and "no rollups for instance" in problems[0], problems


def test_two_rollups_read_in_turn_do_not_break_each_other(archive) -> None:
    """python-zstandard's decompressobj() of one decompressor share its context: each rollup (and each frame of
    a partition) has a decompressor of its own, so reading one, then another, then the first again works."""
    root, _ = archive
    first, second = (p for p in list_partitions(root).partitions[:2])
    one = decode_file((first.path.parent / str(first.rollup)).read_bytes())
    two = decode_file((second.path.parent / str(second.rollup)).read_bytes())
    assert one.hour_part(["user"]) is not None and two.hour_part(["user"]) is not None
    assert one.slice_part(one.header.hour, ["user"]) is not None
    assert two.slice_part(two.header.hour, ["user"]) is not None
    assert one.checked_span() == (one.header.first_ts, one.header.last_ts)


def test_closed_frames_appended_after_a_rollup_are_judged_by_their_own_indexes(tmp_path: Path) -> None:
    """Frames read from the middle of a file keep the file's offsets: frames closed after a rollup's size, all
    later than what it covers, leave it fresh; one that starts before ``covered_until`` does not."""
    root = tmp_path / "inst"
    with ArchiveWriter(root, fsync=False, frame_seconds=300) as writer:
        for line in lines_for(0.5, seed=4):
            writer.append(encode_line(line.to_record()), line.ts)
    (part,) = list_partitions(root).partitions
    data = part.path.read_bytes()
    decoder = PartitionDecoder(data)
    for _ in decoder.chunks():
        pass
    second = decoder.frames[1]
    assert second.index is not None and second.first_ts is not None
    since = parse_ts(second.first_ts.decode())
    rest = data[second.offset :]
    assert _all_after(rest, second.offset, since, part.end, live=False)
    assert not _all_after(rest, second.offset, since + timedelta(seconds=1), part.end, live=False)
    assert not _all_after(rest, 0, since, part.end, live=False)
