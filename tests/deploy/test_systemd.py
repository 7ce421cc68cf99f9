"""systemd/plsnap.service: exposure score, syntax, consistency with the code and docs, and a run "as systemd would".

There is no systemd as PID 1 on the test machines, so the end-to-end test reproduces what the unit gives the
daemon: the sd_notify socket, ``WATCHDOG_USEC``, ``STATE_DIRECTORY``, ``CREDENTIALS_DIRECTORY``, the unit's
``Environment=`` and ``UMask=``, and the kernel-level parts of the sandbox that matter for a Python process:
``NoNewPrivileges=`` and ``MemoryDenyWriteExecute=`` (through prctl, the mechanism systemd itself uses on newer
versions), ``SystemCallFilter=`` (a seccomp allow-list built with libseccomp from the unit's own filter lines), and
a read-only mount over the MySQL socket's directory (what ``ProtectSystem=strict`` does to /run). Not reproduced:
``DynamicUser=`` (the daemon runs as root here) and the namespace-based settings (Protect*=, Private*=).
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from plsnap.config import DEFAULT_CONFIG_PATH, MysqlConfig
from tests.deploy.helpers import DEPLOY_DOC, UNIT, parse_unit, plsnap_bin, require_tool, unit_value
from tests.integration.harness import records, wait_for

MAX_EXPOSURE = 2.0
SYSTEMD_HINT = "apt-get install -y systemd (it provides systemd-analyze)"


def timespan(text: str) -> float:
    """Seconds in a systemd time span such as ``5min`` or ``1min 30s`` (the units this unit uses)."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text)
    assert parts and "".join(f"{n}{u}" for n, u in parts) == text.replace(" ", ""), f"cannot read {text!r}"
    return sum(float(number) * units[unit or "s"] for number, unit in parts)


def systemd_analyze() -> str:
    return require_tool("systemd-analyze", SYSTEMD_HINT)


def test_security_exposure_is_at_most_two() -> None:
    """`systemd-analyze security --offline=yes` rates the unit's overall exposure at 2.0 or lower ("OK")."""
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for plsnap\.service: (\d+(?:\.\d+)?)", result.stdout)
    assert match, f"no exposure line in:\n{result.stdout}\n{result.stderr}"
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{result.stdout}"


def verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    copy = tmp_path / "plsnap.service"
    copy.write_text(unit_text)
    return subprocess.run(
        [systemd_analyze(), "verify", "--man=no", "--generators=no", "--recursive-errors=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a single warning (ExecStart pointed at this venv)."""
    text = UNIT.read_text()
    # verify checks that ExecStart's binary exists; /usr/local/bin/plsnap does not on a test machine, so a copy of
    # the unit runs the venv's plsnap instead. Nothing else changes.
    executable = unit_value(parse_unit(), "Service", "ExecStart").split()[0]
    result = verify(text.replace(f"ExecStart={executable} ", f"ExecStart={plsnap_bin()} "), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", f"systemd-analyze verify warned:\n{result.stderr}"
    # The check has teeth: a misspelt key or a bad value is reported (verify still exits 0 for those).
    broken = verify(text.replace("ProtectSystem=strict", "ProtectSystem=stricter\nProtectSystm=yes"), tmp_path)
    assert "ProtectSystm" in broken.stderr and "protect system value" in broken.stderr, broken.stderr


def test_unit_matches_the_code_and_the_docs() -> None:
    """Type=notify, `plsnap daemon -c <documented path>`, the credential name the code reads, state dir, watchdog,
    umask."""
    unit = parse_unit()
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    assert unit_value(unit, "Service", "Type") == "notify"
    argv = shlex.split(unit_value(unit, "Service", "ExecStart"))
    assert argv[1:] == ["daemon", "-c", str(DEFAULT_CONFIG_PATH)], argv
    assert f"{argv[0]} daemon -c {DEFAULT_CONFIG_PATH}" in doc, "docs/deploy.md must show the unit's ExecStart command"
    assert unit_value(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"

    name, _, source = unit_value(unit, "Service", "LoadCredential").partition(":")
    assert name == MysqlConfig().password_credential, "LoadCredential= must use the name plsnap looks up"
    assert source in doc, f"docs/deploy.md must tell where the password file goes ({source})"
    assert unit_value(unit, "Service", "StateDirectory") == "plsnap"
    assert unit_value(unit, "Service", "DynamicUser") == "yes" or unit["Service"].get("User")

    watchdog = timespan(unit_value(unit, "Service", "WatchdogSec"))
    defaults = MysqlConfig()
    assert watchdog > 60 + defaults.connect_timeout + defaults.read_timeout, "WatchdogSec shorter than one attempt"
    umask = int(unit_value(unit, "Service", "UMask"), 8)
    assert umask & 0o027 == 0o027, f"UMask={umask:04o} is looser than 0027"
    for key in ("ProtectSystem", "NoNewPrivileges", "MemoryDenyWriteExecute", "SystemCallFilter"):
        assert unit["Service"].get(key), f"{key}= is missing"
    assert unit_value(unit, "Service", "CapabilityBoundingSet") == ""


class NotifySocket:
    """A bound AF_UNIX datagram socket standing in for systemd's ``$NOTIFY_SOCKET``; collects every message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def poll(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.messages
            self.messages.extend(data.decode().splitlines())

    def wait_for(self, message: str, after: int = 0, timeout: float = 20) -> int:
        """Index of the first ``message`` (exact, or a ``KEY=`` prefix) at or after index ``after``."""

        def seen() -> int | None:
            for index, line in enumerate(self.poll()[after:], after):
                if line == message or (message.endswith("=") and line.startswith(message)):
                    return index + 1  # +1 so index 0 is truthy for wait_for
            return None

        return int(wait_for(seen, timeout, f"{message} on NOTIFY_SOCKET (got {self.messages})")) - 1

    def close(self) -> None:
        self.sock.close()


# Runs inside the sandbox, then execs plsnap: what NoNewPrivileges=, MemoryDenyWriteExecute=, UMask= and
# SystemCallFilter= (an allow-list, everything else failing with SystemCallErrorNumber=) do.
SANDBOX = textwrap.dedent(
    """
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_NO_NEW_PRIVS, PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 38, 65, 1
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_NO_NEW_PRIVS) failed: " + os.strerror(ctypes.get_errno()))
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_MDWE) failed (Linux >= 6.3 needed): " + os.strerror(ctypes.get_errno()))
    os.umask(int(os.environ.pop("SANDBOX_UMASK"), 8))
    seccomp = ctypes.CDLL("libseccomp.so.2")
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    SCMP_ACT_ALLOW, SCMP_ACT_ERRNO = 0x7FFF0000, 0x00050000
    ctx = seccomp.seccomp_init(SCMP_ACT_ERRNO | int(os.environ.pop("SANDBOX_ERRNO")))
    for name in os.environ.pop("SANDBOX_SYSCALLS").split():
        number = seccomp.seccomp_syscall_resolve_name(name.encode())
        if number >= 0 and seccomp.seccomp_rule_add(ctx, SCMP_ACT_ALLOW, number, 0) != 0:
            sys.exit("seccomp_rule_add failed for " + name)
    if seccomp.seccomp_load(ctx) != 0:
        sys.exit("seccomp_load failed")
    os.execv(sys.argv[1], sys.argv[1:])
    """
)


def allowed_syscalls(filters: list[str]) -> set[str]:
    """The system calls a list of ``SystemCallFilter=`` values allows, groups expanded by systemd-analyze."""
    analyze = systemd_analyze()
    listings: dict[str, list[str]] = {}

    def expand(items: list[str]) -> set[str]:
        names: set[str] = set()
        for item in items:
            if not item.startswith("@"):
                names.add(item)
                continue
            if item not in listings:
                out = subprocess.run(
                    [analyze, "syscall-filter", "--no-pager", item],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=True,
                ).stdout.splitlines()
                assert out and out[0].strip() == item, out[:2]
                listings[item] = [w.strip() for w in out[1:] if w.strip() and not w.strip().startswith("#")]
            names |= expand(listings[item])
        return names

    allowed: set[str] = set()
    for value in filters:
        if value.startswith("~"):
            allowed -= expand(value[1:].split())
        else:
            allowed |= expand(value.split())
    assert {"execve", "read", "write", "connect", "fsync"} <= allowed, "the filter emulation is broken"
    return allowed


@pytest.mark.integration
def test_daemon_runs_as_the_unit_would_run_it(tmp_path: Path, mariadb_running, capture_user) -> None:
    """With only what the unit provides (credential, state dir, notify socket, watchdog, sandbox), the daemon
    notifies READY, STATUS, WATCHDOG, RELOADING on SIGHUP and STOPPING on SIGTERM, exits 0, and writes under
    $STATE_DIRECTORY."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root for unshare --mount (run the suite as root, as CI does)")
    unshare = require_tool("unshare", "apt-get install -y util-linux")
    unit = parse_unit()
    state = tmp_path / "state"
    state.mkdir(mode=0o750)
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o500)
    credential = unit_value(unit, "Service", "LoadCredential").partition(":")[0]
    (credentials / credential).write_text(capture_user.password)
    home = tmp_path / "home"  # DynamicUser has no home with a ~/.my.cnf
    home.mkdir()
    config = tmp_path / "plsnap.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            # no password_file and no data_dir: both must come from what systemd provides
            [mysql]
            socket = "{mariadb_running.socket}"
            user = "{capture_user.name}"
            connect_timeout = "2s"
            read_timeout = "3s"
            [capture]
            interval = "1s"
            [log]
            format = "json"
            """
        )
    )
    notify = NotifySocket(tmp_path / "notify")
    env = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "NOTIFY_SOCKET": str(notify.path),
        "WATCHDOG_USEC": "2000000",
        "STATE_DIRECTORY": str(state),
        "CREDENTIALS_DIRECTORY": str(credentials),
        "SANDBOX_UMASK": unit_value(unit, "Service", "UMask"),
        "SANDBOX_SYSCALLS": " ".join(sorted(allowed_syscalls(unit["Service"]["SystemCallFilter"]))),
        "SANDBOX_ERRNO": str(getattr(errno, unit_value(unit, "Service", "SystemCallErrorNumber"))),
    }
    for assignment in unit["Service"].get("Environment", []):
        for item in shlex.split(assignment):
            key, _, value = item.partition("=")
            env[key] = value
    socket_dir = str(mariadb_running.socket.parent)
    argv = [
        unshare, "--mount", "--propagation", "private", "--",
        "sh", "-c", 'mount -o bind,ro "$0" "$0" && exec "$@"', socket_dir,
        sys.executable, "-c", SANDBOX, str(plsnap_bin()), "daemon", "-c", str(config),
    ]  # fmt: skip
    log_path = tmp_path / "stdout.log"
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            ready = notify.wait_for("READY=1")
            status = notify.wait_for("STATUS=", after=ready)
            watchdog = notify.wait_for("WATCHDOG=1", after=ready)
            proc.send_signal(signal.SIGHUP)
            reloading = notify.wait_for("RELOADING=1", after=max(status, watchdog))
            notify.wait_for("READY=1", after=reloading)
            notify.wait_for("WATCHDOG=1", after=reloading)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        time.sleep(0.1)
        messages = notify.poll()
    finally:
        notify.close()
    output = log_path.read_text()
    assert code == 0, output

    assert messages[0].startswith("STATUS="), "the first capture attempt comes before READY=1"
    assert "sessions" in messages[status], messages[status]
    assert messages.count("STOPPING=1") == 1, messages
    stopping = messages.index("STOPPING=1")
    assert stopping > messages.index("RELOADING=1") > ready, messages
    assert "READY=1" not in messages[stopping:], "READY after STOPPING"

    lines = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    starting = next(line for line in lines if line.get("event") == "plsnap daemon starting")
    assert starting["archive"] == str(state / "default"), "the archive must default to $STATE_DIRECTORY"
    assert any(line.get("event") == "config reloaded" for line in lines), output
    assert not [line for line in lines if line.get("level") == "error"], output

    found = records(state / "default")
    # No gap lines: the password from $CREDENTIALS_DIRECTORY was accepted, through the read-only socket directory.
    assert found and all(r["error"] is None for r in found), found[:3]
    partitions = sorted(state.glob("default/*/*.jsonl.zst"))
    assert partitions
    subprocess.run([require_tool("zstd", "apt-get install -y zstd"), "-q", "-t", *map(str, partitions)], check=True)
    for path in [*partitions, *partitions[0].parents[:2]]:
        assert path.stat().st_mode & 0o007 == 0, f"{path} is accessible to other users under UMask=0027"
