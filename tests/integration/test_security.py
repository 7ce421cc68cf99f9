"""Nothing leaked: redaction before disk, password masking, secrets hygiene, file modes, TLS."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from plsnap.archive.format import decode_lines
from plsnap.config import load_config, resolve_password
from plsnap.source import Source
from tests.devserver import DevServer
from tests.integration.harness import Sleeper, daemon, plsnap, records, wait_for, wait_for_records, write_config

PLANTED = ("alice@example.com", "4111111111111111", "4111-1111-1111-1111", "hunter2-Secret")


def archive_text(data_dir: Path) -> str:
    """Every decompressed byte under ``data_dir``, as text."""
    chunks = []
    for path in data_dir.rglob("*.zst"):
        chunks += [line.decode("utf-8", "replace") for line in decode_lines(path.read_bytes())[0]]
    return "\n".join(chunks)


def test_redact_literals_keeps_no_planted_value(tmp_path: Path, mariadb_running, capture_user) -> None:
    """With redact = literals, e-mails, card numbers and secrets in running statements never reach the archive."""
    cfg = write_config(tmp_path / "c.toml", mariadb_running, capture_user, capture={"redact": "literals"})
    sql = (
        "SELECT SLEEP(3), 'alice@example.com' AS email, 4111111111111111 AS card, "
        "'4111-1111-1111-1111' AS card2, \"hunter2-Secret\" AS pw /* note */"
    )
    with Sleeper(mariadb_running, 3, "", sql=sql):
        time.sleep(1.2)
        result = plsnap("capture", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    text = archive_text(tmp_path / "archive")
    assert "SELECT SLEEP(?), ? AS email" in text
    assert [p for p in PLANTED if p in text] == []


def test_redact_full_keeps_only_fingerprint(tmp_path: Path, mariadb_running, capture_user) -> None:
    """With redact = full, the archive holds the fingerprint instead of the statement."""
    cfg = write_config(tmp_path / "c.toml", mariadb_running, capture_user, capture={"redact": "full"})
    with Sleeper(mariadb_running, 3, "", sql="SELECT SLEEP(3), 'alice@example.com'"):
        time.sleep(1.2)
        assert plsnap("capture", "-c", str(cfg)).returncode == 0
    text = archive_text(tmp_path / "archive")
    assert "select sleep(?), ?" in text
    assert "alice@example.com" not in text


def test_password_statements_masked_even_without_redaction(tmp_path: Path, mariadb_running, capture_user) -> None:
    """A CREATE USER ... IDENTIFIED BY caught while running is stored masked with redact = none."""
    cfg = write_config(tmp_path / "c.toml", mariadb_running, capture_user, capture={"redact": "none"})
    locker = mariadb_running.root_connect()
    creator = mariadb_running.root_connect()
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES mysql.global_priv WRITE")
        thread = threading.Thread(
            target=lambda: creator.query("CREATE USER 'victim'@'%' IDENTIFIED BY 'hunter2-Secret'"), daemon=True
        )
        thread.start()
        time.sleep(1.0)
        result = plsnap("capture", "-c", str(cfg))
    finally:
        with locker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        locker.close()
        thread.join(10)
        creator.close()
        mariadb_running.execute("DROP USER IF EXISTS 'victim'@'%'")
    assert result.returncode == 0, result.stderr
    (record,) = records(tmp_path / "archive" / "default")
    statements = [s["info"] for s in record["sessions"] if s["info"] and "CREATE USER" in s["info"]]
    assert statements, "the blocked CREATE USER must have been captured"
    assert "hunter2-Secret" not in archive_text(tmp_path / "archive")


def test_password_never_in_ps_logs_or_archive(tmp_path: Path, mariadb_running, capture_user) -> None:
    """The daemon's argv, its debug logs across failed and good connects, and the archive never hold the password."""
    env_cfg = write_config(tmp_path / "c.toml", mariadb_running, capture_user, mysql={"password_file": ""})
    password = capture_user.password
    with daemon(env_cfg, env={"PLSNAP_MYSQL_PASSWORD": password}) as proc:
        wait_for_records(tmp_path / "archive" / "default", 2, error=None)
        ps = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
        cmdline = Path(f"/proc/{proc.proc.pid}/cmdline").read_bytes()
        mariadb_running.stop()
        wait_for_records(tmp_path / "archive" / "default", 2, sessions=None)
        mariadb_running.start()
        mariadb_running.execute(f"ALTER USER '{capture_user.name}'@'localhost' IDENTIFIED BY 'other-Pw-9'")
        wait_for(lambda: "Access denied" in proc.output, 10, "an authentication failure")
        mariadb_running.execute(f"ALTER USER '{capture_user.name}'@'localhost' IDENTIFIED BY '{password}'")
        assert proc.stop() == 0
    assert password not in ps
    assert password.encode() not in cmdline
    assert password not in proc.output
    assert "other-Pw-9" not in proc.output
    assert password not in archive_text(tmp_path / "archive")


def test_world_writable_data_dir_is_refused(tmp_path: Path, mariadb_running, capture_user) -> None:
    """A world-writable archive directory is refused with an explanation and exit 1."""
    data = tmp_path / "archive"
    data.mkdir()
    data.chmod(0o777)
    cfg = write_config(tmp_path / "c.toml", mariadb_running, capture_user)
    result = plsnap("capture", "-c", str(cfg))
    assert result.returncode == 1
    assert "world-writable" in result.stderr
    assert "chmod o-w" in result.stderr


def test_partition_modes_respect_umask(tmp_path: Path, mariadb_running, capture_user) -> None:
    """Daemon-created partitions and rollups are 0640 and directories 0750 under umask 022."""
    cfg = write_config(tmp_path / "c.toml", mariadb_running, capture_user)
    old = os.umask(0o022)
    try:
        assert plsnap("capture", "-c", str(cfg)).returncode == 0
    finally:
        os.umask(old)
    written = sorted((tmp_path / "archive").rglob("*.zst"))
    assert any(path.name.endswith(".jsonl.zst") for path in written)
    assert any(".rollup." in path.name for path in written)
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o640, path
        assert path.parent.stat().st_mode & 0o777 == 0o750, path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> tuple[DevServer, Path, Path]:
    """A second mariadbd that requires TLS, with a certificate from a throwaway CA (and a second, unrelated CA)."""
    base = tmp_path_factory.mktemp("tls")
    certs = base / "certs"
    certs.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=certs)

    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=plsnap test {ca}",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")  # fmt: skip
    (certs / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem")  # fmt: skip
    server = DevServer(
        base / "db",
        extra_args=(f"--ssl-ca={certs / 'ca.pem'}", f"--ssl-cert={certs / 'server.pem'}",
                    f"--ssl-key={certs / 'server.key'}", "--require-secure-transport=ON"),
    )  # fmt: skip
    server.start()
    yield server, certs / "ca.pem", certs / "other-ca.pem"
    server.cleanup()


def tls_source(tmp_path: Path, server: DevServer, user, **mysql: str) -> Source:
    cfg = write_config(tmp_path / "tls.toml", server, user,
                       mysql={"socket": "", "host": "127.0.0.1", "port": server.port, **mysql})  # fmt: skip
    config = load_config(cfg, environ={})
    return Source(config, resolve_password(config))


def test_tls_verified_capture_works(tmp_path: Path, tls_server, capture_user) -> None:
    """With ssl_mode = verify_identity and the right CA, capture works over TLS."""
    server, ca, _ = tls_server
    server.create_user(capture_user.name, capture_user.password)
    source = tls_source(tmp_path, server, capture_user, ssl_mode="verify_identity", ssl_ca=str(ca))
    snapshot = source.sample()
    info = source.info
    source.close()
    assert snapshot.error is None
    assert info is not None and info.tls


def test_tls_wrong_ca_fails_clearly(tmp_path: Path, tls_server, capture_user) -> None:
    """With a CA that did not sign the server certificate, the sample is a gap naming the verification failure."""
    server, _, other = tls_server
    server.create_user(capture_user.name, capture_user.password)
    source = tls_source(tmp_path, server, capture_user, ssl_mode="verify_ca", ssl_ca=str(other))
    snapshot = source.sample()
    source.close()
    assert snapshot.sessions is None
    assert "certificate verify failed" in (snapshot.error or "")


def test_tls_required_never_downgrades(tmp_path: Path, mariadb_running, capture_user) -> None:
    """ssl_mode = required against a server without TLS fails instead of silently using plain TCP."""
    source = tls_source(tmp_path, mariadb_running, capture_user, ssl_mode="required")
    snapshot = source.sample()
    source.close()
    assert snapshot.sessions is None
    assert re.search("did not negotiate TLS|SSL is required but the server doesn't support it", snapshot.error or "")


@pytest.mark.parametrize("source", ["information_schema", "show"])
def test_processlist_content_round_trips(tmp_path: Path, mariadb_running, capture_user, source: str) -> None:
    """NUL bytes, emoji and a 1 MB statement are stored and replayed faithfully, or cut with a flag."""
    cfg = write_config(tmp_path / "c.toml", mariadb_running, capture_user,
                       capture={"max_info_bytes": 2 * 2**20, "source": source})  # fmt: skip
    exact = ["SELECT SLEEP(3) /* nul \x00 byte */", "SELECT SLEEP(3) /* emoji 🔥🐬 and kanji 障害 */"]
    huge = "SELECT SLEEP(3) /* " + "x" * 2**20 + " */"
    texts = [*exact, huge]
    conns = [mariadb_running.root_connect(max_allowed_packet=4 * 2**20) for _ in texts]
    threads = [
        threading.Thread(target=c.query, args=(t.encode(),), daemon=True) for c, t in zip(conns, texts, strict=True)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.2)
    result = plsnap("capture", "-c", str(cfg))
    for thread in threads:
        thread.join(10)
    for conn in conns:
        conn.close()
    assert result.returncode == 0, result.stderr
    (record,) = records(tmp_path / "archive" / "default")
    by_text = {s["info"]: s for s in record["sessions"] if s["info"]}
    assert set(exact) <= by_text.keys()
    if source == "show":
        assert huge in by_text
    else:
        (cut,) = [s for s in record["sessions"] if (s["info"] or "").startswith("SELECT SLEEP(3) /* xxx")]
        assert cut["info_truncated"] is True
        assert huge.startswith(cut["info"])
    at = plsnap("at", record["ts"], "-c", str(cfg), "--format", "json")
    assert at.returncode == 0
    replayed = {s["info"] for s in json.loads(at.stdout)["sessions"]}
    assert set(exact) <= replayed
