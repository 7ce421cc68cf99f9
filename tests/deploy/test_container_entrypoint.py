"""The container's behaviour, outside Docker: what the image runs, with only what the image and compose provide.

There is no Docker engine on the test machines. These tests take the command, the environment and the health
check from docker/Dockerfile itself and run them here: configuration from PLSNAP_* variables only (no config
file, no ~/.my.cnf), JSON logs on stdout, plsnap as PID 1 of its own PID namespace (as in a container, where
SIGTERM from `docker stop` only works because plsnap installs a handler), and `plsnap health`.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from plsnap.config import DEFAULT_CONFIG_PATH
from tests.deploy.helpers import (
    VENV_BIN,
    dockerfile_env,
    dockerfile_instructions,
    healthcheck_command,
    image_command,
    require_tool,
)
from tests.integration.harness import records, wait_for, wait_for_records

pytestmark = pytest.mark.integration


def container_env(tmp_path: Path, server, user) -> dict[str, str]:
    """The image's ENV (archive moved into tmp) plus what compose sets, pointed at the test server over TCP."""
    if DEFAULT_CONFIG_PATH.exists():
        pytest.fail(f"{DEFAULT_CONFIG_PATH} exists on this machine and would be read; these tests need it absent")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = dockerfile_env(dockerfile_instructions())
    assert env["PLSNAP_ARCHIVE_DATA_DIR"] == "/var/lib/plsnap"
    env.update(
        {
            # a minimal environment: no PLSNAP_CONFIG, no STATE_DIRECTORY/CREDENTIALS_DIRECTORY/NOTIFY_SOCKET,
            # and an empty HOME so no ~/.my.cnf is read
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PLSNAP_ARCHIVE_DATA_DIR": str(tmp_path / "archive"),
            "PLSNAP_MYSQL_HOST": "127.0.0.1",
            "PLSNAP_MYSQL_PORT": str(server.port),
            "PLSNAP_MYSQL_USER": user.name,
            "PLSNAP_MYSQL_PASSWORD_FILE": str(user.password_file),
            "PLSNAP_MYSQL_CONNECT_TIMEOUT": "2s",
            "PLSNAP_CAPTURE_INTERVAL": "1s",
            "PLSNAP_METRICS_STALL_AFTER": "2s",
        }
    )
    return env


def health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command."""
    return subprocess.run(
        healthcheck_command(dockerfile_instructions()), env=env, capture_output=True, text=True, timeout=30, check=False
    )


@contextmanager
def container(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` with stdout and stderr to ``log``; SIGKILL it if the block fails."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def json_lines(log: Path) -> list[dict[str, object]]:
    """Every stdout line, each of which must be one JSON object."""
    lines = log.read_text().splitlines()
    assert lines, "no log output"
    parsed = []
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    return parsed


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stdout == "", result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_env_only_config_logs_json_and_reports_health(tmp_path: Path, mariadb_running, capture_user) -> None:
    """With PLSNAP_* variables only, `plsnap daemon` logs JSON lines and archives samples; `plsnap health` is
    0 while it runs and 1 once the heartbeat is older than stall_after."""
    env = container_env(tmp_path, mariadb_running, capture_user)
    instance_dir = tmp_path / "archive" / "default"
    log = tmp_path / "stdout.log"
    with container(image_command(dockerfile_instructions()), env, log) as proc:
        wait_for_records(instance_dir, 3, error=None)
        running = health(env)
        assert running.returncode == 0, running.stderr
        assert running.stdout.startswith("healthy: last attempt"), running.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    lines = json_lines(log)
    assert lines[0]["event"] == "plsnap daemon starting"
    assert lines[0]["config"] is None, "no config file may be read"
    assert lines[-1]["event"] == "plsnap daemon stopped"
    assert all({"event", "level", "timestamp"} <= line.keys() for line in lines)
    assert all(r["error"] is None for r in records(instance_dir))

    stopped = health(env)
    assert stopped.returncode == 1
    assert one_line_error(stopped).startswith("plsnap: error: unhealthy: the daemon stopped"), stopped.stderr


def test_health_without_heartbeat_fails_in_one_line(tmp_path: Path, mariadb_running, capture_user) -> None:
    """`plsnap health` before the daemon ever ran exits 1 with one line naming the missing heartbeat."""
    result = health(container_env(tmp_path, mariadb_running, capture_user))
    assert result.returncode == 1
    assert "no heartbeat at" in one_line_error(result), result.stderr


def test_sigterm_to_pid1_closes_the_partition_and_exits_0(tmp_path: Path, mariadb_running, capture_user) -> None:
    """As PID 1 of its own PID namespace, on a read-only root with only the archive writable (compose's
    `read_only: true`), plsnap runs, stops on SIGTERM with exit 0 and leaves partitions that pass `zstd -t`."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root for unshare --pid (run the suite as root, as CI does)")
    unshare = require_tool("unshare", "apt-get install -y util-linux")
    zstd = require_tool("zstd", "apt-get install -y zstd")
    env = container_env(tmp_path, mariadb_running, capture_user)
    instance_dir = tmp_path / "archive" / "default"
    log = tmp_path / "stdout.log"
    archive = Path(env["PLSNAP_ARCHIVE_DATA_DIR"])
    archive.mkdir()  # the volume
    # In the new mount namespace only (unshare makes it private): keep the archive writable, make / read-only.
    # "remount,bind" changes this namespace's mount flags, never the file system's.
    read_only_root = 'mount --bind "$0" "$0" && mount -o remount,bind,ro / && exec "$@"'
    argv = [
        unshare, "--pid", "--fork", "--mount-proc", "--kill-child", "--",
        "sh", "-c", read_only_root, str(archive), *image_command(dockerfile_instructions()),
    ]  # fmt: skip
    with container(argv, env, log) as proc:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        pid = int(wait_for(lambda: children.read_text().split(), 10, "the namespace's init process")[0])
        nspid = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("NSpid"))
        assert nspid.split()[-1] == "1", f"plsnap is not PID 1 in its namespace: {nspid}"
        wait_for_records(instance_dir, 2, error=None)
        os.kill(pid, signal.SIGTERM)  # what `docker stop` does: STOPSIGNAL to the container's PID 1
        assert proc.wait(30) == 0, log.read_text()
    assert json_lines(log)[-1]["event"] == "plsnap daemon stopped"
    partitions = sorted(instance_dir.glob("*/*.jsonl.zst"))
    assert partitions
    subprocess.run([zstd, "-q", "-t", *map(str, partitions)], check=True)
