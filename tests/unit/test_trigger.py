"""Trigger conditions, burst guards, counter rates and the sampling math across a burst, on synthetic data."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from plsnap.bursts import burst_end
from plsnap.config import MinFree, TriggerConfig, load_config
from plsnap.counters import CounterTracker, is_gauge, rates
from plsnap.errors import ConfigError
from plsnap.model import Snapshot, format_ts, parse_ts
from plsnap.render import window_json
from plsnap.source import redact_innodb_status as redact_status
from plsnap.summary import summarize
from plsnap.trigger import Guards, Trigger
from tests.synth import at, gap, running, session, snap


def with_status(sample, **status):
    """A sample carrying server counters."""
    return replace(sample, extra={**sample.extra, "status": status})


def test_threads_running_must_hold_for_cycles_checks() -> None:
    """Threads_running above N fires only after K consecutive checks; a dip resets the count."""
    trigger = Trigger(TriggerConfig(threads_running=20, cycles=3))
    values = [25, 30, 5, 21, 22, 23]
    fired = [trigger.check_counters(at(i), {"Threads_running": v}) for i, v in enumerate(values)]
    assert [f is not None for f in fired] == [False, False, False, False, False, True]
    assert fired[-1].values == {"Threads_running": 23, "checks": 3}
    assert "for 3 consecutive checks" in fired[-1].condition


def test_rate_condition_uses_neighbouring_checks() -> None:
    """A counter rate above X/s fires; a counter that went down (restart) never fires nor goes negative."""
    trigger = Trigger(TriggerConfig(rates=(("Questions", 100.0),)))
    assert trigger.check_counters(at(0), {"Questions": 1000, "Uptime": 50}) is None
    assert trigger.check_counters(at(1), {"Questions": 1050, "Uptime": 51}) is None
    assert trigger.check_counters(at(2), {"Questions": 10, "Uptime": 1}) is None
    fired = trigger.check_counters(at(3), {"Questions": 400, "Uptime": 2})
    assert fired is not None and fired.values["Questions"] == 390.0


def test_a_check_without_threads_running_neither_extends_nor_breaks_its_streak() -> None:
    """A sample whose [capture] status leaves Threads_running out is no check of it: the checks between samples
    still fire after K in a row."""
    trigger = Trigger(TriggerConfig(threads_running=10, cycles=3))
    fired = [
        trigger.check_counters(at(0), {"Threads_running": 80}),
        trigger.check_sample(with_status(snap(1), Questions=5)),
        trigger.check_counters(at(2), {"Threads_running": 80}),
        trigger.check_counters(at(3), {}),
        trigger.check_counters(at(4), {"Threads_running": 80}),
    ]
    assert [f is not None for f in fired] == [False, False, False, False, True]


def test_a_rate_is_taken_from_each_counter_s_last_reading_and_names_ignore_case() -> None:
    """A check that lacks a counter (the samples read more than the checks) does not lose its last reading, and
    the server's spelling matches a condition written in another case."""
    trigger = Trigger(TriggerConfig(threads_running=50, rates=(("Innodb_deadlocks", 5.0),)))
    assert trigger.check_counters(at(0), {"Threads_running": 1, "innodb_deadlocks": 0}) is None
    assert trigger.check_counters(at(1), {"Threads_running": 1}) is None
    fired = trigger.check_counters(at(2), {"Threads_running": 1, "INNODB_DEADLOCKS": 100})
    assert fired is not None and fired.values["Innodb_deadlocks"] == 50.0


def test_rate_names_are_the_server_s_spelling_and_levels_are_refused_in_any_case() -> None:
    """Status names are case-insensitive on the server: a condition on ``questions`` is one on Questions, a
    level in any case is refused, and two thresholds on one counter are an error."""

    def trigger(rates: object) -> TriggerConfig:
        return load_config(None, environ={}, overrides={"trigger": {"rates": rates}}).trigger

    def status(names: object) -> tuple[str, ...]:
        return load_config(None, environ={}, overrides={"capture": {"status": names}}).capture.status

    assert trigger(["questions>5", "INNODB_DEADLOCKS>1", "wsrep_local_cert_failures>1"]).rates == (
        ("Questions", 5.0),
        ("Innodb_deadlocks", 1.0),
        ("wsrep_local_cert_failures", 1.0),
    )
    for level in ("threads_running>1", "uptime>1", "OPEN_TABLES>3"):
        with pytest.raises(ConfigError, match="is a level"):
            trigger([level])
    with pytest.raises(ConfigError, match="already a condition on Questions"):
        trigger(["Questions>5", "questions>10"])
    with pytest.raises(ConfigError, match="expected a list"):
        trigger([True])
    assert status(["questions", "Questions", "threads_RUNNING"]) == ("Questions", "Threads_running")
    with pytest.raises(ConfigError, match="expected a list"):
        status([True])


def test_guard_times_after_now_count_as_now() -> None:
    """Markers written while the clock ran a day ahead hold bursts off for the cooldown only, not a day more."""
    guards = Guards(TriggerConfig(threads_running=1, cooldown=60, max_per_hour=1))
    guards.restore([(at(86_400), "burst_start"), (at(86_460), "burst_end")], at(0))
    assert guards.refusal(at(30), None) == "cooldown"
    assert guards.refusal(at(3_600), None) is None


def test_processlist_conditions_on_a_sample() -> None:
    """Running sessions above N, and a lock wait older than S seconds, fire on the sample itself."""
    busy = snap(0, *[running(i, "SELECT 1", started=-1, now=0) for i in range(6)])
    assert Trigger(TriggerConfig(running_sessions=5)).check_sample(busy).values == {"running": 6}
    waiting = snap(0, session(7, "UPDATE t SET n=1", time=40, state="Updating", trx_state="LOCK WAIT"))
    fired = Trigger(TriggerConfig(lock_wait=30)).check_sample(waiting)
    assert fired is not None and fired.values == {"wait_s": 40.0}
    assert Trigger(TriggerConfig(lock_wait=60)).check_sample(waiting) is None
    assert Trigger(TriggerConfig(running_sessions=5)).check_sample(gap(0)) is None


def test_guards_cooldown_hourly_cap_and_free_space() -> None:
    """A burst is refused while one runs, within the cooldown, past the hourly cap, or short of free space."""
    guards = Guards(TriggerConfig(threads_running=1, cooldown=60, max_per_hour=2, min_free=MinFree(bytes=1000)))
    assert guards.refusal(at(0), (10_000, 5_000)) is None
    guards.start(at(0))
    assert guards.refusal(at(10), None) == "burst running"
    guards.end(at(30))
    assert guards.refusal(at(60), None) == "cooldown"
    assert guards.refusal(at(91), None) is None
    guards.start(at(91))
    guards.end(at(100))
    assert guards.refusal(at(200), None) == "max_per_hour"
    assert guards.refusal(at(3601), (10_000, 5_000)) is None
    assert guards.refusal(at(3601), (10_000, 999)) == "min_free"


@pytest.mark.parametrize(
    ("events", "now", "refusal"),
    [
        ([(0, "burst_start"), (60, "burst_end")], 600, "cooldown"),
        ([(0, "burst_start"), (60, "burst_end")], 3700, None),
        ([(0, "burst_start"), (60, "burst_end"), (1000, "burst_start"), (1060, "burst_end")], 3000, "max_per_hour"),
        ([(0, "burst_start")], 120, "cooldown"),
        ([(1060, "burst_end"), (1000, "burst_start")], 1500, "cooldown"),
        ([], 10, None),
    ],
    ids=["cooldown-after-a-restart", "cooldown-over", "hourly-cap", "died-in-a-burst", "any-order", "none"],
)
def test_guards_take_up_an_earlier_runs_bursts(events: list[tuple[int, str]], now: int, refusal: str | None) -> None:
    """A restarted daemon reads the markers of the last hour: the cooldown (30 min) and the cap (2 per hour)
    still hold, and a burst the daemon died in ends when it would have (its 60 s)."""
    guards = Guards(TriggerConfig(threads_running=1, cooldown=1800, max_per_hour=2, burst_duration=60))
    guards.restore([(at(t), event) for t, event in events], at(now))
    assert guards.refusal(at(now), None) == refusal
    assert not guards.running


def test_counter_reset_gives_no_negative_rate() -> None:
    """Across a server restart (counters and Uptime went down) there is no rate, and never a negative one."""
    assert rates({"Questions": 500, "Uptime": 100}, {"Questions": 20, "Uptime": 3}, 10) == {"Questions": None}
    assert rates({"Questions": 500}, {"Questions": 400}, 10) == {"Questions": None}
    tracker = CounterTracker()
    for seconds, questions, uptime in ((0, 100, 50), (10, 200, 60), (20, 5, 2), (30, 105, 12)):
        tracker.feed(with_status(snap(seconds), Questions=questions, Uptime=uptime, Threads_running=3))
    summary = tracker.summary
    assert summary.resets == 1
    assert (summary.rates["Questions"].low, summary.rates["Questions"].high) == (10.0, 10.0)
    assert summary.gauges["Threads_running"].mean == 3


def steady(start: float, end: float, step: float, sessions: int = 4):
    """Samples every ``step`` seconds of a load where ``sessions`` statements always run."""
    out = []
    t = start
    while t < end:
        out.append(
            snap(
                t,
                *[running(i, f"SELECT SLEEP(100) /* {i} */", started=t - 1, now=t) for i in range(sessions)],
                interval=step,
            )
        )
        t += step
    return out


def test_db_time_is_the_same_with_a_burst() -> None:
    """Steady load sampled every 60 s gives the same DB time with a 1 s burst in the middle (within 5 %): each
    sample weighs the time up to the next one, capped at its own interval, and the burst's last sample carries
    the base interval again."""
    plain = steady(0, 3600, 60)
    burst = [s for s in plain if not 620 <= s.ts.timestamp() - at(0).timestamp() < 720]
    dense = steady(620, 680, 1)
    closing = replace(steady(680, 681, 1)[0], interval_s=60.0)
    bursty = sorted([*burst, *dense, closing], key=lambda s: s.ts)
    truth = 4 * 3600
    for samples in (plain, bursty):
        summary = summarize(samples, at(0), at(3600))
        assert summary.total_active_seconds == pytest.approx(truth, rel=0.05)
    naive = sum(s.running for s in bursty) * 60
    assert naive > truth * 1.5, "without weighting the burst would be counted many times over"


def test_innodb_status_statements_are_masked_and_redacted() -> None:
    """In SHOW ENGINE INNODB STATUS only the statement text after a thread line is masked or redacted; InnoDB's
    own numbers stay."""
    status = (
        "History list length 812\n"
        "---TRANSACTION 421, ACTIVE 12 sec\n"
        "2 lock struct(s), heap size 1128, 1 row lock(s)\n"
        "MySQL thread id 9, OS thread handle 140, query id 77 localhost root updating\n"
        "UPDATE users SET email = 'alice@example.com' WHERE id = 42\n"
        "------- TRX HAS BEEN WAITING 12 SEC FOR THIS LOCK TO BE GRANTED:\n"
        "MySQL thread id 10, OS thread handle 141, query id 78 localhost root\n"
        "CREATE USER 'x'@'%' IDENTIFIED BY 'Sekr1t-pw'\n"
        "--------\n"
        "FILE I/O\n"
    )
    redacted = redact_status(status, "literals", 65536)
    assert "alice@example.com" not in redacted and "Sekr1t-pw" not in redacted
    assert "WHERE id = ?" in redacted
    assert "History list length 812" in redacted and "ACTIVE 12 sec" in redacted
    masked = redact_status(status, "none", 65536)
    assert "Sekr1t-pw" not in masked and "alice@example.com" in masked


def test_every_marker_the_daemon_writes_reads_back() -> None:
    """A burst_start marker carries the fired condition's values as the trigger records them (a rate's
    ``per_second`` flag included): readers take it as a marker, never as a line of a bad structure."""
    config = load_config(None, environ={}, overrides={"trigger": {"rates": ["Questions>5"]}}).trigger
    trigger = Trigger(config)
    assert trigger.check_counters(at(0), {"Questions": 0.0}) is None
    fired = trigger.check_counters(at(1), {"Questions": 100.0})
    assert fired is not None and fired.values.get("per_second") is True
    record = {"ts": format_ts(at(1)), "v": 2, "instance": "x", "sessions": None,
              "marker": {"event": "burst_start", **fired.to_record(), "innodb_status": "x"}}  # fmt: skip
    line = Snapshot.from_record(record)
    assert line.is_marker and not line.is_gap and not line.is_sample


def test_a_foreign_marker_s_condition_is_masked_and_odd_value_names_are_damage() -> None:
    """plsnap writes no secret into a marker, another writer might: a reader masks the condition like a
    statement, and a value whose name is no counter's (quotes, spaces) makes the line damaged, not shown."""
    secret = "CREATE USER x IDENTIFIED BY 'TopSecretKey1'"
    record = {"ts": format_ts(at(1)), "v": 2, "instance": "x", "sessions": None,
              "marker": {"event": "burst_start", "condition": secret}}  # fmt: skip
    line = Snapshot.from_record(record)
    assert line.is_marker and "TopSecretKey1" not in str(line.marker) and "IDENTIFIED BY" in line.marker["condition"]
    assert "TopSecretKey1" in record["marker"]["condition"]  # the record read is not changed
    record["marker"] = {"event": "burst_start", "values": {"PASSWORD('TopSecretKey1')": 1}}
    with pytest.raises(ValueError, match="marker line"):
        Snapshot.from_record(record)


#: Statements that hold lines shaped like InnoDB's own (in a comment, a string, or as a line of their own), so that
#: a parser trusting those shapes would end the statement early and leave the secret unmasked.
FORGED = [
    "SELECT SLEEP(4) /*\nMariaDB thread id 1, */, PASSWORD('TopSecretKey1')",
    "CREATE USER bob /*\nMySQL thread id 1, x */ IDENTIFIED BY 'TopSecretKey1'",
    "CREATE USER bob /*\n---TRANSACTION x */ IDENTIFIED BY 'TopSecretKey1'",
    "ALTER USER bob /*\nTABLE LOCK table */ IDENTIFIED BY 'TopSecretKey1'",
    "CREATE USER bob IDENTIFIED BY 'abc\nRECORD LOCKS space id TopSecretKey1'",
    "CREATE USER bob IDENTIFIED BY 'abc\nMySQL thread id 1, x\nTopSecretKey1'",
    "SET PASSWORD = PASSWORD('abc\nEND OF INNODB MONITOR OUTPUT TopSecretKey1')",
    "CREATE USER bob /*\nTrx read view will not see x */ IDENTIFIED BY 'TopSecretKey1'",
    "CREATE USER bob /*\n------- TRX HAS BEEN WAITING */ IDENTIFIED BY 'TopSecretKey1'",
    "CREATE USER `bob\nMySQL thread id 1, x\n` IDENTIFIED BY 'TopSecretKey1'",
    "SELECT 1\nMySQL thread id 1, x PASSWORD('TopSecretKey1')",
    "CREATE USER bob IDENTIFIED BY\n---TRANSACTION 'TopSecretKey1'",
    "SELECT 'hunter2' = PASSWORD('x')",
    "INSERT INTO t VALUES ('hunter2', AES_ENCRYPT('a', 'b'))",
    "SELECT 'hunter2' = PASSWORD('x') /*\n---TRANSACTION 1 */",
]


@pytest.mark.parametrize("statement", FORGED)
@pytest.mark.parametrize("mode", ["none", "literals", "full"])
def test_a_statement_with_lines_shaped_like_innodb_s_own_never_leaks(statement: str, mode: str) -> None:
    """Whatever lines a statement holds, its secret is masked in every redaction mode (the rest of the report
    may be over-masked)."""
    status = (
        "LIST OF TRANSACTIONS FOR EACH SESSION:\n---TRANSACTION 1233, ACTIVE 3 sec\n"
        "2 lock struct(s), heap size 1128, 1 row lock(s), undo log entries 1\n"
        f"MySQL thread id 9, OS thread handle 140, query id 77 localhost root update\n{statement}\n"
        "---TRANSACTION 421, not started\n0 lock struct(s), heap size 1128, 0 row lock(s)\n--------\nFILE I/O\n"
    )
    stored = redact_status(status, mode, 65536)
    assert "TopSecretKey1" not in stored and "hunter2" not in stored, stored
    assert "---TRANSACTION 1233, ACTIVE 3 sec" in stored


#: InnoDB's own text with a quote of its own before a statement that holds a forged line: a reading from the
#: first thread line pairs the quotes wrongly; each statement is read from its own start.
STRAY_QUOTES = [
    "MySQL thread id 5, OS thread handle 1, query id 1 localhost o'brien\n"
    "CREATE USER bob /*\n---TRANSACTION x */ IDENTIFIED BY 'TopSecretKey1'\n",
    "MySQL thread id 4, OS thread handle 1, query id 1 localhost root\nUPDATE t SET v = 1\n"
    "RECORD LOCKS space id 5 page no 3 n bits 320 index PRIMARY of table `app`.`t` trx id 24 lock_mode X\n"
    " 3: len 7; hex 4f27427269656e; asc O'Brien;;\n---TRANSACTION 25, ACTIVE 1 sec\n"
    "MySQL thread id 5, OS thread handle 1, query id 1 localhost root\n"
    "CREATE USER bob IDENTIFIED BY 'abc\n---TRANSACTION x\nTopSecretKey1'\n",
    "MySQL thread id 5, OS thread handle 1, query id 1 localhost a`b\n"
    "SELECT AES_ENCRYPT('data', /*\nTABLE LOCK table */ 'TopSecretKey1')\n",
    "MySQL thread id 5, OS thread handle 1, query id 1 localhost root\n"
    "SELECT AES_ENCRYPT(c,\n---TRANSACTION + 987654321987) FROM t\n",
    "MySQL thread id 5, OS thread handle 1, query id 1 localhost root\n"
    "SELECT AES_ENCRYPT(c,\n---TRANSACTION + 0x546f70536563726574) FROM t\n",
]


@pytest.mark.parametrize("status", STRAY_QUOTES)
@pytest.mark.parametrize("mode", ["none", "literals", "full"])
def test_a_stray_quote_of_innodb_s_own_or_a_forged_line_as_code_never_leaks(status: str, mode: str) -> None:
    stored = redact_status("LIST OF TRANSACTIONS FOR EACH SESSION:\n" + status + "--------\nFILE I/O\n", mode, 65536)
    assert not any(k in stored for k in ("TopSecretKey1", "987654321987", "546f70536563726574")), stored


@pytest.mark.parametrize("opener", ["'", "/*", '"', "`", "#", "-- ", "x\n'\ny", "\n\n/*"])
@pytest.mark.parametrize("mode", ["none", "literals", "full"])
def test_a_user_name_holding_a_newline_and_an_opener_cannot_hide_its_own_statement_s_secret(
    opener: str, mode: str
) -> None:
    """InnoDB ends the thread line with the user name, which may hold newlines: a quote or a comment opener on
    its next line would swallow the statement's secret-bearing word if the statement were read from there only."""
    status = (
        "LIST OF TRANSACTIONS FOR EACH SESSION:\n---TRANSACTION 37, ACTIVE 5 sec\nmysql tables in use 1, locked 1\n"
        f"MariaDB thread id 11, OS thread handle 1403, query id 22 localhost x\n{opener} Sending data\n"
        "SELECT SLEEP(3) FROM DUAL WHERE PASSWORD(/* check */ 'TopSecretKey1') <> ''\n"
        "------- TRX HAS BEEN WAITING 5 SEC FOR THIS LOCK TO BE GRANTED:\n--------\nFILE I/O\n"
    )
    stored = redact_status(status, mode, 65536)
    assert "TopSecretKey1" not in stored, stored
    assert "FILE I/O" in stored


def test_a_long_multiline_statement_is_read_once_when_its_thread_line_left_nothing_open() -> None:
    """Only a thread line whose end leaves something open is read again from its next lines: a statement of
    thousands of short lines costs one reading (the report keeps it, masked)."""
    rows = ",\n".join(f"({n}, 'v')" for n in range(12000))
    status = (
        "---TRANSACTION 37, ACTIVE 5 sec\nMySQL thread id 11, OS thread handle 1, query id 22 localhost app update\n"
        f"INSERT INTO t VALUES\n{rows}, (0, AES_ENCRYPT('a', 'TopSecretKey1'))\n---TRANSACTION 38, not started\n"
    )
    stored = redact_status(status, "none", 2**20)
    assert "TopSecretKey1" not in stored and "could not be delimited" not in stored
    assert "INSERT INTO t VALUES\n" in stored and stored.endswith(", not started\n")


def test_thousands_of_sessions_are_read_one_statement_at_a_time() -> None:
    """Six thousand sessions and a secret-bearing statement at the end: each statement is read to the next
    thread line (not to the end of the report), so the earlier ones stay as they are."""
    block = "---TRANSACTION 4219, ACTIVE 1 sec\nMySQL thread id 12, OS thread handle 1, query id 9 host app\nSELECT 1\n"
    status = "TRANSACTIONS\n" + block * 6000 + "MySQL thread id 1, x\nSELECT AES_ENCRYPT(c, 'TopSecretKey1')\n"
    stored = redact_status(status, "none", 65536)
    assert "TopSecretKey1" not in stored and stored.startswith("TRANSACTIONS\n" + block * 5999)


def test_statements_left_open_across_thousands_of_sessions_keep_nothing_after_the_first() -> None:
    """When every statement is cut inside a comment (each would run to the end of the report), the report keeps
    only what precedes the first statement, with a note, rather than read for minutes."""
    block = (
        "---TRANSACTION 4219, ACTIVE 1 sec\nMySQL thread id 12, OS thread handle 1, query id 9 host app\nSELECT 1 /*\n"
    )
    status = "TRANSACTIONS\n" + block * 3000 + "MySQL thread id 1, x\nSELECT AES_ENCRYPT(c, 'TopSecretKey1')\n"
    stored = redact_status(status, "none", 65536)
    assert "TopSecretKey1" not in stored and "could not be delimited" in stored
    assert stored.startswith("TRANSACTIONS\n---TRANSACTION 4219")


#: A lock wait as MariaDB 10.11 prints it (SHOW ENGINE INNODB STATUS, TRANSACTIONS), the waiting statement
#: spread over lines: an empty one, and one of dashes inside a comment.
MARIADB_WAIT = """LIST OF TRANSACTIONS FOR EACH SESSION:
---TRANSACTION 24, ACTIVE 1 sec starting index read
mysql tables in use 1, locked 1
LOCK WAIT 2 lock struct(s), heap size 1128, 1 row lock(s)
MariaDB thread id 6, OS thread handle 140397785052864, query id 14 localhost root Statistics
SELECT v, AES_ENCRYPT('data',

'TopSecretKey1') /*
----
*/, AES_ENCRYPT('x', 'SecondKey2') FROM app.t WHERE id=1 FOR UPDATE
------- TRX HAS BEEN WAITING 999704 us FOR THIS LOCK TO BE GRANTED:
RECORD LOCKS space id 5 page no 3 n bits 320 index PRIMARY of table `app`.`t` trx id 24 lock_mode X locks rec but not \
gap waiting
Record lock, heap no 2 PHYSICAL RECORD: n_fields 4; compact format; info bits 0
 0: len 4; hex 80000001; asc     ;;
 3: len 17; hex 616c696365406578616d706c652e636f6d; asc alice@example.com;;

------------------
---TRANSACTION 23, ACTIVE 1 sec
2 lock struct(s), heap size 1128, 1 row lock(s)
MariaDB thread id 5, OS thread handle 140397785360064, query id 11 localhost root
---TRANSACTION (0x7fb0e9985b80), not started
0 lock struct(s), heap size 1128, 0 row lock(s)
--------
"""


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT AES_ENCRYPT('data',\n\n'TopSecretKey1')",
        "ALTER USER u IDENTIFIED BY\n\n'TopSecretKey1'",
        "SET PASSWORD FOR u =\n   \nPASSWORD('TopSecretKey1')",
        "CHANGE MASTER TO MASTER_HOST='h',\nLOG_FILE='x',\nPending MASTER_PASSWORD='TopSecretKey1'",
        "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'r',\nhex PASSWORD 'TopSecretKey1')",
        "SELECT AES_ENCRYPT('a',\n----\n'TopSecretKey1')",
        "SELECT AES_ENCRYPT('a',\n*** (2) TRANSACTION:\n'TopSecretKey1')",
    ],
)
@pytest.mark.parametrize(
    "thread",
    [
        "MySQL thread id 9, OS thread handle 140, query id 77 localhost root updating",
        "MariaDB thread id 9, OS thread handle 140, query id 77 localhost root Updating",
    ],
)
def test_innodb_status_never_leaks_a_secret_of_a_multiline_statement(statement: str, thread: str) -> None:
    """InnoDB prints statement text verbatim, newlines included: whatever shape a line of it has (empty, "LOG",
    "Pending", "hex ", dashes, a deadlock heading), the secret stays masked in every mode."""
    status = (
        f"---TRANSACTION 421, ACTIVE 12 sec\n2 lock struct(s), heap size 1128, 1 row lock(s)\n{thread}\n"
        f"{statement}\n------- TRX HAS BEEN WAITING 12 SEC FOR THIS LOCK TO BE GRANTED:\n--------\nFILE I/O\n"
    )
    for mode in ("none", "literals", "full"):
        redacted = redact_status(status, mode, 65536)
        assert "TopSecretKey1" not in redacted, (mode, redacted)
        assert "FILE I/O" in redacted


def test_innodb_status_of_mariadb_is_masked_and_its_row_dumps_redacted() -> None:
    """MariaDB says "MariaDB thread id": its statements are masked too, and since where a statement ends is never
    certain, every literal after its secret-bearing word is masked to the end of the report (InnoDB's numbers
    there included; what comes before the word stays); with redact, the record dumps' row values go too."""
    before_word = MARIADB_WAIT[: MARIADB_WAIT.index("AES_ENCRYPT")]
    masked = redact_status(MARIADB_WAIT, "none", 65536)
    assert "TopSecretKey1" not in masked and "SecondKey2" not in masked and "'data'" not in masked
    assert masked.startswith(before_word)
    assert masked.count("---TRANSACTION ") == MARIADB_WAIT.count("---TRANSACTION ")
    assert "alice@example.com" in masked, "the row dump's text is no literal: only redact removes it"
    for mode in ("literals", "full"):
        redacted = redact_status(MARIADB_WAIT, mode, 65536)
        assert not any(k in redacted for k in ("TopSecretKey1", "SecondKey2", "alice@example.com", "616c6963"))
        assert redacted.startswith(before_word.split("MariaDB thread id")[0])
        assert redacted.count("---TRANSACTION ") == MARIADB_WAIT.count("---TRANSACTION ")


def test_window_says_when_it_holds_bursts() -> None:
    """A burst marker inside a window is counted and said."""
    marker = replace(gap(30), error=None, extra={"marker": {"event": "burst_start", "condition": "x"}})
    summary = summarize([snap(0), marker, snap(31, interval=1.0), snap(60)], at(0), at(120))
    assert len(summary.bursts) == 1
    assert any("triggered burst" in w for w in summary.warnings)
    assert summary.gap_samples == 0
    assert window_json(summary)["bursts"] == [{"ts": format_ts(at(30)), "condition": "x", "values": None}]


def test_a_window_inside_a_burst_says_its_cadence_changes() -> None:
    """A window that begins inside a burst holds no marker, but its samples are 1 s and 5 s apart: the notes
    say so and name the longest interval as the one that under-counts short statements (not the median)."""
    samples = [snap(t, interval=1.0) for t in range(8)] + [snap(t, interval=5.0) for t in range(10, 40, 5)]
    summary = summarize(samples, at(0), at(40))
    assert not summary.bursts
    assert any("the cadence changes in this window (samples every 1s to 5s" in w for w in summary.warnings)
    assert any("statements shorter than 5s are under-counted" in w for w in summary.warnings)
    assert not any("statements shorter than 1s" in w for w in summary.warnings)


def test_absurd_counter_values_never_give_infinite_rates() -> None:
    """Values no server counter can hold (above 2^64, as a hostile or damaged archive may carry) are dropped:
    rates and means stay finite, even between samples a millisecond apart."""
    tracker = CounterTracker()
    for seconds, questions in ((0, 0), (10, 1.7e308), (10.001, 0), (20, 2**64 + 1), (30, 100), (30.001, 1e308)):
        tracker.feed(with_status(snap(seconds), Questions=questions, Threads_running=questions))
    summary = tracker.summary
    found = summary.rates["Questions"]
    assert all(math.isfinite(v) for v in (found.low, found.high, found.mean or 0.0))
    assert summary.gauges["Threads_running"].high == 100


@pytest.mark.parametrize(
    ("now", "duration", "interval", "end"),
    [
        ("2026-12-02T18:03:57.008Z", 60.0, 1.0, "2026-12-02T18:04:58.000Z"),
        ("2026-12-02T18:03:57.000Z", 60.0, 1.0, "2026-12-02T18:04:57.000Z"),
        ("2026-12-02T18:03:57.500Z", 3.0, 2.0, "2026-12-02T18:04:02.000Z"),
        ("2026-12-02T18:03:59.999Z", 0.5, 0.25, "2026-12-02T18:04:00.500Z"),
    ],
)
def test_a_burst_ends_on_its_own_grid(now: str, duration: float, interval: float, end: str) -> None:
    """The closing sample takes the place of the burst slot at or after start + duration: never a second sample
    milliseconds after the last burst sample (whose rates would be absurd)."""
    assert burst_end(parse_ts(now), duration, interval) == parse_ts(end)


@pytest.mark.parametrize(
    ("name", "gauge"),
    [
        ("Memory_used", True),
        ("Innodb_buffer_pool_pages_data", True),
        ("Open_table_definitions", True),
        ("Innodb_row_lock_time_max", True),
        ("Innodb_data_pending_reads", True),
        ("Global_connection_memory", True),
        ("Innodb_undo_tablespaces_active", True),
        ("Rpl_semi_sync_master_wait_sessions", True),
        ("wsrep_local_state", True),
        ("Mysqlx_connections_active", True),
        ("Acl_users", True),
        ("Innodb_ibuf_size", True),
        ("Ongoing_anonymous_transaction_count", True),
        ("Opened_tables", False),
        ("Ssl_sessions_reused", False),
        ("Mysqlx_sessions", False),
        ("Innodb_pages_created", False),
        ("Bytes_sent", False),
        ("Questions", False),
        ("Innodb_buffer_pool_pages_flushed", False),
        ("Innodb_row_lock_time", False),
    ],
)
def test_levels_are_told_from_running_totals(name: str, gauge: bool) -> None:
    """A level added to [capture] status is shown as a level (a fall is no server restart, it has no rate)."""
    assert is_gauge(name) is gauge
