"""Parts joined give the one-pass answer: the property behind the rollups (docs/archive-format.md, rollups).

Generated histories have gaps and spans without samples, cadence changes, bursts, statements that run across
any cut, session ids that come back as someone else, lock waits with blockers that stay and change, and
counters that reset. They are cut anywhere into parts; each part is summarized alone, the parts are joined,
and every key of ``window --format json`` and of ``locks --format json`` must equal the one-pass summary's.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest import approx

from plsnap.fingerprint import fingerprint
from plsnap.locks import episodes
from plsnap.model import Session, Snapshot
from plsnap.partial import DIMENSIONS, LOAD_BUCKET, Partial, build, join
from plsnap.partial_codec import decode, encode
from plsnap.query import resolve_texts, texts_in
from plsnap.render import episode_json, window_json
from plsnap.replay import Execution, Stitcher
from plsnap.summary import LoadTracker, cell_seconds_for, finish, summarize
from tests.synth import T0

TEXTS = (
    "SELECT * FROM orders WHERE id = 1",
    "SELECT * FROM orders WHERE id = 2",
    "UPDATE stock SET n = n - 1 WHERE sku = 'a'",
    "ALTER TABLE orders ADD COLUMN x INT",
)
USERS = ("app", "report", "batch")
STATES = ("Sending data", "Waiting for table metadata lock", "updating")
ERRORS = ("connect failed", "timed out")

step = st.tuples(
    st.sampled_from([200, 1000, 5000, 10000, 10000, 10000, 60000, 250000]),  # ms since the previous line
    st.integers(0, 40),  # jitter, ms
    st.sampled_from(["sample"] * 8 + ["gap", "span", "marker"]),
    st.lists(st.tuples(st.integers(1, 6), st.integers(0, 9)), max_size=6),  # (session id, what happens)
    st.integers(0, 9),  # counters / locks / cadence dice
)


def history(steps: list[tuple[int, int, str, list[tuple[int, int]], int]]) -> list[Snapshot]:
    """Lines from the steps: a small simulated server whose sessions run, idle, leave and come back."""
    now = T0
    interval = 10.0
    sessions: dict[int, dict[str, Any]] = {}
    questions, uptime = 1000, 50000
    lines: list[Snapshot] = []
    for number, (gap_ms, jitter, kind, changes, dice) in enumerate(steps):
        previous = now
        now += timedelta(milliseconds=gap_ms + jitter)
        if dice == 9:
            interval = (1.0, 5.0, 10.0, 60.0)[number % 4]
        if kind == "gap":
            lines.append(_line(now, None, interval, error=ERRORS[dice % 2]))
            continue
        if kind == "span":
            since = previous + timedelta(milliseconds=1)
            lines.append(_line(now, None, interval, error="skipped", gap_since=since, missed=dice))
            continue
        if kind == "marker":
            lines.append(_line(now, None, interval, marker={"event": "burst_start", "reason": "test"}))
            continue
        for sid, what in changes:
            _change(sessions, sid, what, now, number)
        questions += 10 * dice
        uptime += gap_ms // 1000
        if dice == 0:
            questions, uptime = 5, 1
        extra: dict[str, Any] = {}
        if dice != 5:
            extra["status"] = {"Questions": questions, "Uptime": uptime, "Threads_running": len(sessions)}
        locks = _locks(sessions, dice)
        if locks:
            extra["locks"] = locks
        rows = tuple(_session(sid, state, now) for sid, state in sorted(sessions.items()))
        lines.append(_line(now, rows, interval, **extra))
    return lines


def _change(sessions: dict[int, dict[str, Any]], sid: int, what: int, now: datetime, number: int) -> None:
    state = sessions.get(sid)
    if what == 0:
        sessions.pop(sid, None)
    elif state is None:
        sessions[sid] = {"user": USERS[(sid + number) % 3], "info": None, "since": now, "trx": None}
    elif what <= 4:
        state["info"], state["since"] = TEXTS[what - 1], now - timedelta(milliseconds=700 * what)
    elif what <= 6:
        state["info"], state["since"] = None, now
    elif what == 7:
        state["trx"] = state["trx"] or now - timedelta(seconds=3)
    else:
        state["trx"] = None


def _session(sid: int, state: dict[str, Any], now: datetime) -> Session:
    info = state["info"]
    elapsed = (now - state["since"]).total_seconds()
    record: dict[str, Any] = {}
    if state["trx"] is not None:
        record["trx_age"] = round((now - state["trx"]).total_seconds(), 3)
        record["trx_state"] = "RUNNING"
    return Session(
        id=sid,
        user=state["user"],
        host=f"10.0.0.{sid}:4000",
        db="shop",
        command="Query" if info else "Sleep",
        time=int(elapsed),
        state=STATES[sid % 3] if info else "",
        info=info,
        record=record,
    )


def _locks(sessions: dict[int, dict[str, Any]], dice: int) -> list[dict[str, Any]]:
    ids = sorted(sessions)
    waiters = [sid for sid in ids if sessions[sid]["info"] is not None]
    if dice < 3 or len(ids) < 2 or not waiters:
        return []
    blocker = ids[dice % len(ids)]
    edges = []
    for waiter in waiters[: 1 + dice % 3]:
        if waiter != blocker:
            kind = "metadata" if dice % 2 else "row"
            edges.append({"waiter": waiter, "blocker": blocker, "kind": kind, "how": "lock_table", "wait_s": 1.5,
                          "object": "shop.orders"})  # fmt: skip
    return edges


def _line(moment: datetime, sessions: tuple[Session, ...] | None, interval: float, **extra: Any) -> Snapshot:
    error = extra.pop("error", None)
    since = extra.pop("gap_since", None)
    if since is not None:
        extra["gap_since"] = since.strftime("%Y-%m-%dT%H:%M:%S.") + f"{since.microsecond // 1000:03d}Z"
    return Snapshot(moment, "test", "information_schema", "11.4", 2.0, error, sessions, interval, None, extra)


def _cut(lines: list[Snapshot], cuts: list[int]) -> list[list[Snapshot]]:
    points = sorted({c % (len(lines) + 1) for c in cuts})
    chunks, previous = [], 0
    for point in [*points, len(lines)]:
        chunks.append(lines[previous:point])
        previous = point
    return chunks


@settings(max_examples=int(os.environ.get("PLSNAP_PARTIAL_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(
    steps=st.lists(step, min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
    by=st.sampled_from(sorted(DIMENSIONS)),
    top=st.integers(1, 6),
    spare=st.integers(0, 4),
    lead=st.integers(-3600, 600),
    trail=st.integers(-600, 3600),
)
def test_joined_parts_equal_one_pass(
    steps: list[Any], cuts: list[int], by: str, top: int, spare: int, lead: int, trail: int
) -> None:
    lines = history(steps)
    start = lines[0].ts + timedelta(seconds=lead)
    end = max(start + timedelta(seconds=1), lines[-1].ts + timedelta(seconds=trail))
    bounds = (lines[0].ts, lines[-1].ts)
    inside = [line for line in lines if start <= line.ts < end]
    cell = cell_seconds_for(start, end)
    parts = [build(chunk, DIMENSIONS, cap=top + spare, cell_seconds=cell) for chunk in _cut(inside, cuts)]
    joined = join(parts, DIMENSIONS, cap=top + spare, cell_seconds=cell)
    whole = summarize(lines, start, end, by=by, top=top, bounds=bounds)
    assert joined.stitch.complete_for(top)
    merged = finish(joined, start, end, by=by, top=top, bounds=bounds)
    assert window_json(merged) == window_json(whole)
    assert [episode_json(e) for e in joined.episodes.finish()] == [episode_json(e) for e in episodes(inside)]
    stored = [decode(orjson.loads(orjson.dumps(encode(part))), (by,)) for part in parts]
    again = finish(join(stored, (by,), cap=top + spare, cell_seconds=cell), start, end, by=by, top=top, bounds=bounds)
    resolved = resolve_texts(again, lambda refs: texts_in(inside, refs))
    assert resolved is not None
    assert window_json(resolved) == window_json(whole), "through the rollup encoding, texts by reference"


@given(steps=st.lists(step, min_size=1, max_size=40), cuts=st.lists(st.integers(0, 10_000), max_size=4))
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_parts_are_not_modified_by_joining(steps: list[Any], cuts: list[int]) -> None:
    """Joining reads its parts only: the same parts joined twice give the same answer."""
    lines = history(steps)
    start, end = lines[0].ts, lines[-1].ts + timedelta(seconds=1)
    parts = [build(chunk, ("fingerprint",), cap=5) for chunk in _cut(lines, cuts)]
    first = window_json(finish(join(parts, ("fingerprint",), cap=5), start, end, by="fingerprint", top=5))
    again = window_json(finish(join(parts, ("fingerprint",), cap=5), start, end, by="fingerprint", top=5))
    assert first == again


def test_a_capped_part_says_it_cannot_answer_a_longer_top() -> None:
    """A part keeps at most ``cap`` ended executions: asked for more than it kept, it says so."""
    steps = [(10000, 0, "sample", [(1, 1)], 1), (10000, 0, "sample", [(1, 5)], 1)] * 6
    lines = history(steps)
    part = build(lines, ("fingerprint",), cap=2)
    assert part.stitch.ended_count > 2
    assert part.stitch.complete_for(2)
    assert not part.stitch.complete_for(3)


def _executions_by_fingerprint(lines: list[Snapshot]) -> dict[str, tuple[int, float]]:
    """Every execution of one stitching pass, per fingerprint: how many, and the longest (seconds)."""
    found: list[Execution] = []
    stitcher = Stitcher(include_idle=False, on_end=found.append)
    for line in lines:
        if line.sessions is not None:
            stitcher.feed(line)
    found += stitcher.finish()
    tally: dict[str, tuple[int, float]] = {}
    for execution in found:
        key = fingerprint(execution.last.info or "")
        count, longest = tally.get(key, (0, 0.0))
        tally[key] = (count + 1, max(longest, execution.min_duration))
    return tally


@settings(max_examples=int(os.environ.get("PLSNAP_PARTIAL_EXAMPLES", "300")) // 2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(
    steps=st.lists(step, min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
    lead=st.integers(-3600, 600),
    trail=st.integers(-600, 3600),
    buckets=st.sampled_from([60, 360]),
)
def test_joined_load_equals_one_pass(steps: list[Any], cuts: list[int], lead: int, trail: int, buckets: int) -> None:
    """The report's DB load from per-minute parts (as rollups keep them, through their encoding) equals the
    one-pass load, every bucket and every total; and its executions per fingerprint are those of one stitching
    pass."""
    lines = history(steps)
    start = lines[0].ts + timedelta(seconds=lead)
    end = max(start + timedelta(hours=6 if buckets == 360 else 1), lines[-1].ts + timedelta(seconds=trail))
    bounds = (lines[0].ts, lines[-1].ts)
    inside = [line for line in lines if start <= line.ts < end]
    fine = LoadTracker.for_window(start, end, buckets).bucket_seconds
    assert fine % LOAD_BUCKET == 0
    whole = summarize(lines, start, end, top=5, bounds=bounds, load_buckets=buckets)
    assert whole.load is not None
    parts = [build(c, DIMENSIONS, cap=5, load=LoadTracker(LOAD_BUCKET)) for c in _cut(inside, cuts)]
    stored = [decode(orjson.loads(orjson.dumps(encode(part))), ("fingerprint",)) for part in parts]
    for chosen in (parts, stored):
        joined = join(chosen, ("fingerprint",), cap=5, load=LoadTracker(LOAD_BUCKET))
        merged = finish(joined, start, end, by="fingerprint", top=5, bounds=bounds, load_bucket=fine)
        assert merged.load is not None
        assert dataclasses.asdict(merged.load) == dataclasses.asdict(whole.load)
    truth = _executions_by_fingerprint(inside)
    assert whole.load.executions == {key: count for key, (count, _) in truth.items()}
    assert whole.load.longest == {key: longest for key, (_, longest) in truth.items()}
    assert sum(sum(b.values()) for b in whole.load.active.get("state", {}).values()) == approx(
        whole.total_active_seconds
    )


def test_a_join_with_a_part_without_load_keeps_none() -> None:
    """A part built without the DB load (an older rollup, a raw read without it) makes the joined load unknown,
    never a load that silently lacks that span."""
    lines = history([(10000, 0, "sample", [(1, 1), (2, 2)], 1)] * 30)
    parts = [build(lines[:15], DIMENSIONS, load=LoadTracker(LOAD_BUCKET)), build(lines[15:], DIMENSIONS)]
    assert join(parts, DIMENSIONS, load=LoadTracker(LOAD_BUCKET)).load is None
    both = [
        build(lines[:15], DIMENSIONS, load=LoadTracker(LOAD_BUCKET)),
        build(lines[15:], DIMENSIONS, load=LoadTracker(LOAD_BUCKET)),
    ]
    assert join(both, DIMENSIONS, load=LoadTracker(LOAD_BUCKET)).load is not None


def test_a_join_of_parts_without_samples_keeps_the_load_and_its_tally() -> None:
    """An empty covered slice (no line) joined alone or after another empty part leaves the load and the
    executions' tally in place, so a report of a window that holds only gaps has a load, as from raw rows."""
    empty = Partial(("fingerprint",), groups={"fingerprint": {}})
    joined = join([empty, empty], ("fingerprint",), load=LoadTracker(LOAD_BUCKET))
    assert joined.load is not None and joined.stitch.tally == {}
    summary = finish(joined, T0, T0 + timedelta(hours=6), by="fingerprint", top=5, load_bucket=LOAD_BUCKET)
    assert summary.load is not None and summary.load.executions == {}
