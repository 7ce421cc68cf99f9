"""A FIFO, device, directory or symlink where plsnap expects a small file or a partition: never a hang, never a
silent skip, never a device replaced by a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from plsnap.archive import ArchiveWriter
from plsnap.archive.format import encode_line
from plsnap.cli import main
from tests.synth import session, snap

SRC = Path(__file__).resolve().parents[2] / "src"
#: A hang guard only (a FIFO opened for reading blocks until a writer comes); it never measures anything.
HANG_GUARD = 120


def make_archive(root: Path) -> Path:
    """Samples in three hours of instance ``db1`` under ``root``; returns the instance directory."""
    instance = root / "db1"
    with ArchiveWriter(instance, fsync=False) as writer:
        for t in range(0, 3 * 3600, 600):
            s = snap(t, session(1, "SELECT 1"))
            writer.append(encode_line(s.to_record()), s.ts)
    return instance


def plsnap(tmp_path: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child (a hang in it must fail this test, not freeze the suite)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "HOME": str(tmp_path)}
    env.pop("PLSNAP_CONFIG", None)
    if config is not None:
        env["PLSNAP_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "plsnap", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_GUARD,
        check=False,
    )


@pytest.mark.parametrize("name", [".plsnap.lock", ".plsnap.heartbeat"])
def test_fifo_as_lock_or_heartbeat_never_blocks(tmp_path: Path, name: str) -> None:
    """A FIFO planted as the lock note or the heartbeat is refused: `health` and `prune` answer instead of
    waiting for a writer that never comes."""
    instance = make_archive(tmp_path / "data")
    (instance / name).unlink(missing_ok=True)
    os.mkfifo(instance / name)
    data = ["--data-dir", str(tmp_path / "data"), "--instance", "db1"]
    health = plsnap(tmp_path, "health", *data)
    assert health.returncode == 1
    assert "Traceback" not in health.stderr
    if name == ".plsnap.heartbeat":
        assert "not a regular file" in health.stderr
    prune = plsnap(tmp_path, "prune", "--dry-run", *data)
    assert prune.returncode == 0, prune.stderr
    assert "Traceback" not in prune.stderr
    assert (instance / name).is_fifo()


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink"])
def test_unreadable_partition_fails_verify_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """An hour whose file is a FIFO, a directory or a symlink cannot be read: `verify` exits 1 and `check`
    fails on it, instead of calling the archive ok."""
    instance = make_archive(tmp_path / "data")
    victim = instance / "2026-11-28" / "04.jsonl.zst"
    victim.unlink()
    if kind == "fifo":
        os.mkfifo(victim)
    elif kind == "directory":
        victim.mkdir()
    else:
        (tmp_path / "outside").write_bytes(b"x")
        victim.symlink_to(tmp_path / "outside")
    code = main(["verify", "--data-dir", str(tmp_path / "data"), "--instance", "db1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"left alone: {victim}" in out
    assert "cannot be read" in err
    config = tmp_path / "plsnap.toml"
    config.write_text(
        f'[archive]\ndata_dir = "{tmp_path / "data"}"\ninstance = "db1"\n[mysql]\nhost = "127.0.0.1"\nport = 1\n'
    )
    main(["check", "-c", str(config)])
    out, _ = capsys.readouterr()
    assert any(line.startswith("FAIL") and str(victim) in line for line in out.splitlines()), out


def test_symlinked_date_folder_fails_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A date folder that is a symlink is never followed, and `verify` says the history behind it is unread."""
    make_archive(tmp_path / "data")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "data" / "db1" / "2026-11-29").symlink_to(tmp_path / "elsewhere")
    code = main(["verify", "--data-dir", str(tmp_path / "data"), "--instance", "db1", "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert '"ok": false' in out


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_config_that_is_a_fifo_or_directory_is_refused(tmp_path: Path, kind: str) -> None:
    """PLSNAP_CONFIG naming a FIFO or a directory is a one-line config error (exit 2), never a hang."""
    target = tmp_path / "plsnap.toml"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    result = plsnap(tmp_path, "verify", "--data-dir", str(tmp_path / "none"), config=target)
    assert result.returncode == 2
    assert result.stderr.startswith("plsnap: error: config file")
    assert len(result.stderr.strip().splitlines()) == 1


def test_option_file_including_a_fifo_is_refused(tmp_path: Path) -> None:
    """A ~/.my.cnf that includes a FIFO fails the password check with one line, never a hang."""
    os.mkfifo(tmp_path / "trap.cnf")
    (tmp_path / ".my.cnf").write_text(f"[client]\npassword=Sup3rS3cret\n!include {tmp_path / 'trap.cnf'}\n")
    (tmp_path / ".my.cnf").chmod(0o600)
    config = tmp_path / "plsnap.toml"
    config.write_text(f'[archive]\ndata_dir = "{tmp_path / "data"}"\n[mysql]\nhost = "127.0.0.1"\nport = 1\n')
    result = plsnap(tmp_path, "check", config=config)
    assert result.returncode == 1
    assert "not a regular file (a FIFO)" in result.stdout
    assert "Sup3rS3cret" not in result.stdout + result.stderr


def test_report_never_replaces_a_fifo_or_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`report -o` onto a FIFO (or a symlink to one, like /dev/stdout) is refused: the rename would replace the
    node with a regular file."""
    make_archive(tmp_path / "data")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "stdout-like"
    link.symlink_to(fifo)
    for target in (fifo, link):
        code = main(["report", "2026-11-28T03:00Z", "2026-11-28T06:00Z", "--data-dir", str(tmp_path / "data"),
                     "--instance", "db1", "-o", str(target)])  # fmt: skip
        _, err = capsys.readouterr()
        assert code == 2
        assert "not a regular file" in err
        assert fifo.is_fifo()
        assert link.is_symlink()


def test_atomic_write_never_replaces_a_special_entry(tmp_path: Path) -> None:
    """plsnap's one atomic write refuses a symlink, FIFO or directory at the name (rollups go beside
    partitions that an attacker may share); the heartbeat's ``replace_any`` replaces the symlink itself."""
    from plsnap.archive.fs import SafeDir
    from plsnap.errors import ArchiveError

    outside = tmp_path / "outside"
    outside.write_text("not yours")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "link").symlink_to(outside)
    os.mkfifo(folder / "pipe")
    (folder / "dir").mkdir()
    with SafeDir.open_root(folder, writable=True) as directory:
        for name, kind in (("link", "a symlink"), ("pipe", "a special file"), ("dir", "a directory")):
            with pytest.raises(ArchiveError, match=f"{kind} .* left alone"):
                directory.atomic_write(name, b"x")
        directory.atomic_write("plain", b"one")
        directory.atomic_write("plain", b"two")
        directory.atomic_write("link", b"mine", replace_any=True)
    assert outside.read_text() == "not yours"
    assert (folder / "pipe").is_fifo() and (folder / "dir").is_dir()
    assert not (folder / "link").is_symlink() and (folder / "link").read_bytes() == b"mine"
    assert (folder / "plain").read_bytes() == b"two"
    assert sorted(p.name for p in folder.iterdir()) == ["dir", "link", "pipe", "plain"]
