"""Nothing is written or deleted outside the data directory: symlinks below it are never followed, directories
are checked for owner and mode, and the writer lock survives its note file being removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plsnap.archive import ArchiveReader, ArchiveWriter
from plsnap.archive.format import encode_line
from plsnap.archive.fs import SafeDir
from plsnap.archive.layout import list_partitions
from plsnap.config import RetentionConfig
from plsnap.errors import ArchiveError
from plsnap.retention import run
from tests.synth import T0, at, session, snap


def append(writer: ArchiveWriter, seconds: float) -> None:
    """One sample at ``T0 + seconds``."""
    writer.append(encode_line(snap(seconds, session(1, "SELECT 1")).to_record()), at(seconds))


def test_existing_world_writable_instance_dir_is_refused(tmp_path: Path) -> None:
    """A world-writable instance directory is refused even when it already exists."""
    instance = tmp_path / "data" / "default"
    instance.mkdir(parents=True)
    instance.chmod(0o777)
    with pytest.raises(ArchiveError, match="world-writable"):
        ArchiveWriter(instance)


def test_world_writable_date_dir_is_refused(tmp_path: Path) -> None:
    """A date folder that anyone may write to is refused when the writer enters it."""
    instance = tmp_path / "data" / "default"
    with ArchiveWriter(instance) as writer:
        append(writer, 0)
    (instance / "2026-11-28").chmod(0o777)
    with ArchiveWriter(instance) as writer, pytest.raises(ArchiveError, match="world-writable"):
        append(writer, 3600)


def test_instance_dir_replaced_by_symlink_is_refused(tmp_path: Path) -> None:
    """An instance directory that is a symlink is refused: no lock, heartbeat or partition lands in its target."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "default").symlink_to(target)
    with pytest.raises(ArchiveError, match="symlink"):
        ArchiveWriter(tmp_path / "data" / "default")
    assert list(target.iterdir()) == []


def test_symlinked_current_partition_is_never_appended_to(tmp_path: Path) -> None:
    """A current-hour partition that is a symlink is refused; the file it points to is not touched."""
    instance = tmp_path / "data" / "default"
    outside = tmp_path / "victim.txt"
    outside.write_bytes(b"precious")
    (instance / "2026-11-28").mkdir(parents=True, mode=0o750)
    (instance / "2026-11-28" / "03.jsonl.zst").symlink_to(outside)
    with ArchiveWriter(instance) as writer, pytest.raises(ArchiveError, match="symlink"):
        append(writer, 0)
    assert outside.read_bytes() == b"precious"


def test_symlinked_date_folder_is_never_pruned_through(tmp_path: Path) -> None:
    """Retention does not delete anything behind a date folder that is a symlink; it says why."""
    instance = tmp_path / "data" / "default"
    with ArchiveWriter(instance) as writer:
        append(writer, 0)
        append(writer, 40 * 86400)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "05.jsonl.zst").write_bytes(b"not plsnap's")
    (instance / "2026-11-20").symlink_to(outside, target_is_directory=True)
    with SafeDir.open_root(instance, writable=True) as directory:
        outcome = run(directory, RetentionConfig(), newest_snapshot=at(40 * 86400))
    assert (outside / "05.jsonl.zst").read_bytes() == b"not plsnap's"
    assert any("symlink" in f.reason for f in outcome.listing.foreign)
    assert [d.partition.start for d in outcome.deleted] == [T0]


def test_data_dir_itself_may_be_a_symlink(tmp_path: Path) -> None:
    """The data directory may be a symlink (systemd DynamicUser): it is resolved once, and writing works."""
    real = tmp_path / "private" / "plsnap"
    real.mkdir(parents=True, mode=0o750)
    link = tmp_path / "plsnap"
    link.symlink_to(real, target_is_directory=True)
    with ArchiveWriter(link / "default") as writer:
        append(writer, 0)
    assert [p.path.name for p in list_partitions(real / "default").partitions] == ["03.jsonl.zst"]
    assert len(list(ArchiveReader(link / "default").iter_records())) == 1


def test_reader_does_not_follow_symlinks_below_the_instance(tmp_path: Path) -> None:
    """A reader lists a symlinked date folder as left alone, and reads nothing through it."""
    instance = tmp_path / "data" / "default"
    with ArchiveWriter(instance) as writer:
        append(writer, 0)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "04.jsonl.zst").write_bytes((instance / "2026-11-28" / "03.jsonl.zst").read_bytes())
    (instance / "2026-11-29").symlink_to(copy, target_is_directory=True)
    reader = ArchiveReader(instance)
    assert len(list(reader.iter_records())) == 1
    assert any(f.path.name == "2026-11-29" and "symlink" in f.reason for f in reader.foreign())


def test_lock_holds_when_its_note_file_is_removed(tmp_path: Path) -> None:
    """Removing .plsnap.lock does not let a second writer in (the lock is on the directory itself), and the
    first writer's live file is not touched by the attempt."""
    instance = tmp_path / "data" / "default"
    with ArchiveWriter(instance) as first:
        append(first, 0)
        (instance / ".plsnap.lock").unlink()
        live = instance / "2026-11-28" / "03.jsonl.zst"
        before = live.read_bytes()
        with pytest.raises(ArchiveError, match="locked by another plsnap writer"):
            ArchiveWriter(instance)
        assert live.read_bytes() == before
        append(first, 10)
    assert len(list(ArchiveReader(instance).iter_records())) == 2


def test_lock_error_names_the_whole_holder_note(tmp_path: Path) -> None:
    """The lock error quotes the holder's pid in full, not a truncated note."""
    instance = tmp_path / "data" / "default"
    with ArchiveWriter(instance), pytest.raises(ArchiveError, match=rf"\(pid {os.getpid()}\)"):
        ArchiveWriter(instance)


def test_directories_owned_by_someone_else_are_refused(tmp_path: Path) -> None:
    """A date folder owned by another user is refused by the writer (as root, by chown; else by a stat check)."""
    instance = tmp_path / "data" / "default"
    with ArchiveWriter(instance) as writer:
        append(writer, 0)
    folder = instance / "2026-11-28"
    if os.geteuid() != 0:
        from plsnap.archive import fs

        with pytest.raises(ArchiveError, match="owned by uid"):
            fs._check_owned_dir(Path("/").stat(), Path("/"))
        return
    os.chown(folder, 12345, 12345)
    with ArchiveWriter(instance) as writer, pytest.raises(ArchiveError, match="owned by uid 12345"):
        append(writer, 60)
    assert len(list(ArchiveReader(instance).iter_records())) == 1
