"""Operating the daemon: Prometheus metrics and /healthz, `plsnap check`, SIGHUP reload, `plsnap health`."""

from __future__ import annotations

import itertools
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from plsnap.model import parse_ts
from tests.devserver import free_port
from tests.integration.harness import daemon, plsnap, records, wait_for, wait_for_records, write_config


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "le")
            values[f"{sample.name}{{{label}}}" if label else sample.name] = sample.value
    return values


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def test_metrics_move_and_healthz(tmp_path: Path, mariadb_running, capture_user) -> None:
    """After real samples the counters move and the source is a label; a database outage keeps /healthz 200."""
    port = free_port()
    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="1s",
                       metrics={"listen": f"127.0.0.1:{port}", "stall_after": "3s"}, log={"level": "info"})  # fmt: skip
    with daemon(cfg) as proc:
        wait_for_records(tmp_path / "archive" / "default", 3, error=None)
        first = scrape(port)
        wait_for_records(tmp_path / "archive" / "default", 5, error=None)
        # the line is written before the sample's metrics are observed: give the fifth sample its observation
        wait_for(lambda: scrape(port)["plsnap_capture_duration_seconds_count"] >= 5, 10, "five durations observed")
        second = scrape(port)
        assert (
            second["plsnap_samples_total{source=information_schema}"]
            > first["plsnap_samples_total{source=information_schema}"]
        )
        assert second["plsnap_archive_written_bytes_total"] > first["plsnap_archive_written_bytes_total"]
        assert second["plsnap_capture_duration_seconds_count"] >= 5
        assert second["plsnap_last_success_timestamp_seconds"] > time.time() - 5
        assert "plsnap_sessions" in second
        assert any(k.startswith("plsnap_source_info{") and "information_schema" in k for k in second)
        assert "plsnap_partitions_pruned_total" in second
        assert "plsnap_archive_size_bytes" in second
        assert healthz(port) == 200
        mariadb_running.stop()
        wait_for(lambda: scrape(port)["plsnap_samples_failed_total"] >= 2, 15, "failed samples counted")
        assert healthz(port) == 200, "a database outage is not a stall: attempts still complete"
        mariadb_running.start()
        assert proc.stop() == 0


def test_healthz_reports_stall(tmp_path: Path, mariadb_running, capture_user) -> None:
    """When capture attempts stop completing (the job is stuck), /healthz answers 503."""
    port = free_port()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    hung_port = listener.getsockname()[1]
    cfg = write_config(
        tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="1s",
        mysql={"socket": "", "host": "127.0.0.1", "port": hung_port, "connect_timeout": "8s", "read_timeout": "8s"},
        metrics={"listen": f"127.0.0.1:{port}", "stall_after": "3s"},
    )  # fmt: skip
    try:
        with daemon(cfg) as proc:
            wait_for(lambda: _up(port), 15, "metrics listener")
            wait_for(lambda: healthz(port) == 503, 20, "/healthz 503 while the capture is stuck")
            assert proc.stop() == 0
    finally:
        listener.close()


def _up(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def test_check_with_and_without_process(tmp_path: Path, mariadb_running, capture_user) -> None:
    """`plsnap check` passes for the PROCESS user and names the missing GRANT for a user without it."""
    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user)
    good = plsnap("check", "-c", str(cfg))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "MariaDB" in good.stdout
    assert "source would be information_schema" in good.stdout
    assert "has PROCESS: all sessions are visible" in good.stdout
    weak_pw = tmp_path / "weak.pw"
    weak_pw.write_text("weak-Passw0rd")
    weak_pw.chmod(0o600)
    mariadb_running.create_user("plsnap_weak", "weak-Passw0rd", ("USAGE ON *.*",))
    cfg2 = write_config(tmp_path / "weak.toml", mariadb_running, capture_user,
                        mysql={"user": "plsnap_weak", "password_file": str(weak_pw)})  # fmt: skip
    bad = plsnap("check", "-c", str(cfg2))
    assert bad.returncode == 1
    assert "run: GRANT PROCESS ON *.* TO 'plsnap_weak'@'localhost'" in bad.stdout
    assert bad.stdout.count("FAIL") == 1
    weak_pw.chmod(0o644)
    loose = plsnap("check", "-c", str(cfg2))
    assert "password: [mysql] password_file" in loose.stdout and "chmod 600" in loose.stdout
    assert "weak-Passw0rd" not in loose.stdout + loose.stderr


def test_check_reports_unreachable_server_and_damaged_partition(tmp_path: Path, capture_user) -> None:
    """Each failing check is one FAIL line; exit code 1."""
    data = tmp_path / "archive" / "default" / "2026-11-28"
    data.mkdir(parents=True)
    (data / "03.jsonl.zst").write_bytes(b"this is not zstd")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[mysql]\nhost = "127.0.0.1"\nport = 1\npassword_file = "{capture_user.password_file}"\n'
                   f'[archive]\ndata_dir = "{tmp_path / "archive"}"\n')  # fmt: skip
    result = plsnap("check", "-c", str(cfg))
    assert result.returncode == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 3
    assert "127.0.0.1:1 failed: connection refused" in fails[0]
    assert "1 damaged (details: plsnap verify)" in fails[1]
    assert "03.jsonl.zst: lost" in fails[2] and "junk" in fails[2]


def test_sighup_reload_applies_interval_and_rejects_bad_config(tmp_path: Path, mariadb_running, capture_user) -> None:
    """SIGHUP re-reads the config: a new interval applies without restart; a broken file is rejected."""
    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="3s")
    root = tmp_path / "archive" / "default"
    with daemon(cfg) as proc:
        wait_for_records(root, 2, error=None)
        write_config(cfg, mariadb_running, capture_user, interval="1s")
        proc.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in proc.output, 10, "reload log line")
        reloaded_at = time.time()
        wait_for(lambda: len([r for r in records(root) if parse_ts(r["ts"]).timestamp() > reloaded_at]) >= 4, 10,
                 "samples at the new interval")  # fmt: skip
        cfg.write_text("[capture]\ninterval = \n")
        proc.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reload rejected" in proc.output, 10, "rejection log line")
        count = len(records(root))
        time.sleep(2.2)
        assert len(records(root)) >= count + 2, "the old config keeps running after a rejected reload"
        assert proc.stop() == 0
    stamps = [parse_ts(r["ts"]).timestamp() for r in records(root) if parse_ts(r["ts"]).timestamp() > reloaded_at]
    spacing = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(spacing) > 0.8 and sorted(spacing)[len(spacing) // 2] < 1.3
    events = [orjson.loads(line)["event"] for line in proc.lines if line.startswith("{")]
    assert "config reload rejected; keeping the running config" in events


def test_health_command(tmp_path: Path, mariadb_running, capture_user) -> None:
    """`plsnap health` exits 0 while the daemon captures and 1 once the heartbeat is stale."""
    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="1s",
                       metrics={"stall_after": "2s"})  # fmt: skip
    missing = plsnap("health", "-c", str(cfg))
    assert missing.returncode == 1
    assert "no heartbeat" in missing.stderr
    with daemon(cfg) as proc:
        wait_for_records(tmp_path / "archive" / "default", 2, error=None)
        ok = plsnap("health", "-c", str(cfg))
        assert ok.returncode == 0, ok.stderr
        assert proc.stop() == 0
    stopped = plsnap("health", "-c", str(cfg))
    assert stopped.returncode == 1
    assert "unhealthy: the daemon stopped" in stopped.stderr
    with daemon(cfg) as proc:
        wait_for_records(tmp_path / "archive" / "default", 4, error=None)
        proc.proc.kill()
        proc.proc.wait(10)
    time.sleep(3)
    stale = plsnap("health", "-c", str(cfg))
    assert stale.returncode == 1
    assert "unhealthy: last capture attempt" in stale.stderr
    assert stale.stderr.count("\n") == 1
