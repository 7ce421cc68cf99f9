"""Replay accuracy against the truth: timed SLEEP statements sampled by the daemon every 2 s."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.integration.harness import daemon, plsnap, wait_for_records, write_config

MARKER = re.compile(r"/\* replay-(\d+) \*/")
EDGE = 0.15  # seconds: instants this close to a statement's start or end are not judged


def run_statement(server, number: int, delay: float, seconds: float, truth: dict[int, tuple[float, float]]) -> None:
    time.sleep(delay)
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            start = time.time()
            cur.execute(f"SELECT SLEEP({seconds}) /* replay-{number} */")
            cur.fetchall()
            truth[number] = (start, time.time())
    finally:
        conn.close()


def test_at_recall_and_certain_precision(tmp_path: Path, mariadb_running, capture_user) -> None:
    """For 30 instants, `plsnap at` lists every statement alive there that any sample saw, and all 'certain'
    entries were really running."""
    cfg = write_config(tmp_path / "plsnap.toml", mariadb_running, capture_user, interval="2s")
    root = tmp_path / "archive" / "default"
    plan = [(0.0, 5.0), (0.5, 1.0), (1.2, 7.5), (2.0, 3.0), (3.1, 2.2), (4.0, 9.0), (5.5, 0.6), (6.0, 4.5),
            (7.3, 3.3), (8.0, 1.7), (9.2, 6.0), (10.0, 2.5)]  # fmt: skip
    truth: dict[int, tuple[float, float]] = {}
    with daemon(cfg) as proc:
        wait_for_records(root, 1, error=None)
        threads = [
            threading.Thread(target=run_statement, args=(mariadb_running, n, d, s, truth))
            for n, (d, s) in enumerate(plan)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        time.sleep(2.5)
        assert proc.stop() == 0
    assert len(truth) == len(plan)
    sampled = [r for r in _records(root) if r["sessions"] is not None]
    sample_times = [datetime.fromisoformat(r["ts"]).timestamp() for r in sampled]
    seen = {n for n, (s, e) in truth.items() if any(s < ts < e for ts in sample_times)}
    begin = min(s for s, _ in truth.values())
    end = max(e for _, e in truth.values())
    instants = [begin + i * (end - begin) / 30 for i in range(30)]
    expected_total = listed_total = certain_total = certain_right = 0
    for moment in instants:
        at_text = datetime.fromtimestamp(moment, UTC).isoformat()
        result = plsnap("at", at_text, "-c", str(cfg), "--format", "json")
        assert result.returncode == 0, result.stderr
        body = json.loads(result.stdout)
        listed = {}
        for row in body["sessions"]:
            match = MARKER.search(row["info"] or "")
            if match:
                listed[int(match.group(1))] = row["confidence"]
        alive = {n for n in seen if truth[n][0] + EDGE <= moment <= truth[n][1] - EDGE}
        expected_total += len(alive)
        listed_total += len(alive & listed.keys())
        for n, confidence in listed.items():
            if confidence != "certain":
                continue
            start, stop = truth[n]
            certain_total += 1
            certain_right += start - EDGE <= moment <= stop + EDGE
    recall = listed_total / expected_total
    precision = certain_right / certain_total
    print(f"\nreplay: {len(instants)} instants, {expected_total} alive-and-sampled cases, recall {recall:.3f}, "
          f"{certain_total} certain answers, certain-precision {precision:.3f}")  # fmt: skip
    assert expected_total >= 20
    assert recall == 1.0
    assert precision == 1.0


def _records(root: Path) -> list[dict]:
    from plsnap.archive import ArchiveReader

    return list(ArchiveReader(root).iter_records())
