"""Stitching and `at` semantics on hand-built sample sequences with known truth (DESIGN §5)."""

from __future__ import annotations

from plsnap.replay import sessions_at, stitch
from tests.synth import at, gap, idle, running, session, snap

Q = "SELECT * FROM orders WHERE id = 1"


def confidences(result) -> dict[int, str]:
    return {row.session.id: row.confidence for row in result.sessions}


def test_query_visible_in_two_samples_is_one_execution() -> None:
    """A statement seen in consecutive samples with consistent Time is one execution with both sightings."""
    samples = [snap(0, running(1, Q, started=-5, now=0)), snap(10, running(1, Q, started=-5, now=10)), snap(20)]
    (execution,) = stitch(samples)
    assert execution.sightings == 2
    assert execution.started_at == at(-5)
    assert (execution.first_seen, execution.last_seen, execution.ended_before) == (at(0), at(10), at(20))
    assert confidences(sessions_at(samples, at(5))) == {1: "certain"}


def test_started_between_samples_still_running_later() -> None:
    """A query that started at 13 and is seen at 20 was certainly running at 15 and absent at 12."""
    samples = [snap(10), snap(20, running(1, Q, started=13, now=20)), snap(30)]
    assert confidences(sessions_at(samples, at(15))) == {1: "certain"}
    assert confidences(sessions_at(samples, at(12))) == {}


def test_ended_between_samples_is_possible() -> None:
    """A query seen at 10 and gone at 20 is only possible at 15, and not listed at 20 or later."""
    samples = [snap(10, running(1, Q, started=8, now=10)), snap(20), snap(30)]
    assert confidences(sessions_at(samples, at(15))) == {1: "possible"}
    assert confidences(sessions_at(samples, at(20))) == {}
    assert confidences(sessions_at(samples, at(25))) == {}


def test_rerun_by_same_session_is_two_executions() -> None:
    """The same text re-run by the same session (Time restarts) is two executions, not one."""
    samples = [
        snap(0, running(1, Q, started=-2, now=0)),
        snap(10, running(1, Q, started=6, now=10)),
        snap(20, running(1, Q, started=6, now=20)),
    ]
    first, second = stitch(samples)
    assert (first.started_at, first.ended_before) == (at(-2), at(10))
    assert (second.started_at, second.sightings) == (at(6), 2)
    result = sessions_at(samples, at(3))
    assert [(r.execution.started_at, r.confidence) for r in result.sessions] == [(at(-2), "possible")]


def test_session_id_reuse_is_not_stitched() -> None:
    """A new connection reusing an id with other text is a separate execution."""
    samples = [snap(0, running(7, Q, started=-3, now=0)), snap(10, running(7, "UPDATE t SET a=1", started=9, now=10))]
    executions = stitch(samples)
    assert [e.info for e in executions] == [Q, "UPDATE t SET a=1"]
    assert executions[0].ended_before == at(10)


def test_gap_neither_ends_nor_proves() -> None:
    """Across a failed sample an execution stays one; at an instant inside the gap it is certain from both sides."""
    samples = [snap(0, running(1, Q, started=-1, now=0)), gap(10), snap(20, running(1, Q, started=-1, now=20))]
    (execution,) = stitch(samples)
    assert execution.sightings == 2
    result = sessions_at(samples, at(10))
    assert confidences(result) == {1: "certain"}
    assert result.in_gap
    assert [g.ts for g in result.gaps] == [at(10)]


def test_seen_only_before_with_gap_after_is_possible() -> None:
    """When the samples after T failed, a query seen before T is possible, never certain."""
    samples = [snap(0, running(1, Q, started=-1, now=0)), gap(10), gap(20)]
    result = sessions_at(samples, at(15))
    assert confidences(result) == {1: "possible"}
    assert result.after is None


def test_idle_sessions_only_with_all_and_running_first() -> None:
    """Sleep sessions are listed only with include_idle, after the running ones; longest running first."""
    samples = [
        snap(0, idle(3, time=100), running(1, Q, started=-2, now=0), running(2, "SELECT 2", started=-50, now=0)),
        snap(10, idle(3, time=110), running(1, Q, started=-2, now=10), running(2, "SELECT 2", started=-50, now=10)),
    ]
    assert [r.session.id for r in sessions_at(samples, at(5)).sessions] == [2, 1]
    full = sessions_at(samples, at(5), include_idle=True)
    assert [r.session.id for r in full.sessions] == [2, 1, 3]
    assert full.sessions[-1].elapsed == 105


def test_time_ms_gives_precise_start() -> None:
    """With time_ms the start estimate is exact, so a statement starting 0.4 s after T is not listed."""
    samples = [snap(0), snap(10, session(1, Q, time=9, time_ms=9600.0))]
    result = sessions_at(samples, at(0.2))
    assert confidences(result) == {}
    assert confidences(sessions_at(samples, at(0.5))) == {1: "certain"}


def test_before_and_after_samples_reported() -> None:
    """The result names the nearest good samples on each side of T."""
    samples = [snap(0), gap(10), snap(20)]
    result = sessions_at(samples, at(12))
    assert result.before is not None and result.before.ts == at(0)
    assert result.after is not None and result.after.ts == at(20)
    assert sessions_at([], at(0)).before is None


def test_idle_blocker_is_listed_without_all() -> None:
    """An idle session holding the lock that a listed statement waits for is shown even without include_idle."""
    sql = "UPDATE stock SET n = n - 1 WHERE sku = 'A-1'"
    samples = [
        snap(t, running(1, sql, started=-4, now=t, blocked_by=[5]), idle(5, time=30 + t, trx_state="RUNNING"),
             idle(6, time=30 + t))
        for t in (0, 10)
    ]  # fmt: skip
    result = sessions_at(samples, at(5))
    assert [r.session.id for r in result.sessions] == [1, 5]
    assert result.sessions[0].session.blocked_by == [5]
