"""Window summaries on synthetic samples with known truth."""

from __future__ import annotations

import dataclasses

import pytest

from plsnap.partial import build, join
from plsnap.summary import LoadTracker, choose_bucket, finish, summarize
from tests.synth import at, gap, idle, running, session, snap

SLOW = "SELECT * FROM orders WHERE customer_id = 42"
SLOW2 = "SELECT * FROM orders WHERE customer_id = 7"
FAST = "UPDATE stock SET n = n - 1 WHERE sku = 'A-1'"


def samples():
    """60 s of 10 s samples: the slow query (two literals, one fingerprint) in 6 of 6, the update in 2, a gap."""
    out = []
    for t in range(0, 60, 10):
        sessions = [running(1, SLOW if t < 30 else SLOW2, started=t - 1, now=t, user="report"), idle(9, time=t)]
        if t in (10, 20):
            sessions.append(running(2, FAST, started=t, now=t, user="app"))
        out.append(snap(t, *sessions))
    out.insert(3, gap(25, "connect failed"))
    return out


def test_top_fingerprints_by_sample_count() -> None:
    """Groups are ranked by samples; active seconds = samples x interval; percentages sum to 100."""
    summary = summarize(samples(), at(0), at(60))
    top = [(g.key, g.samples, g.active_seconds) for g in summary.groups]
    assert top == [
        ("select * from orders where customer_id = ?", 6, 60.0),
        ("update stock set n = n - ? where sku = ?", 2, 20.0),
    ]
    assert sum(g.percent for g in summary.groups) == pytest.approx(100.0)
    assert summary.interval == 10.0
    assert summary.samples == 6
    assert summary.total_active_seconds == 80.0


def test_group_by_user_and_top_n() -> None:
    """--by user groups by user; --top 1 keeps only the first group."""
    summary = summarize(samples(), at(0), at(60), by="user", top=1)
    assert [(g.key, g.samples) for g in summary.groups] == [("report", 6)]


def test_gaps_are_reported_with_errors() -> None:
    """Failed samples appear as gap ranges with their error, and a warning says activity there is unknown."""
    summary = summarize(samples(), at(0), at(60))
    assert [(g.first, g.count, g.error) for g in summary.gaps] == [(at(25), 1, "connect failed")]
    assert any("failed sample" in w for w in summary.warnings)
    assert any("under-counted" in w for w in summary.warnings)


def test_longest_executions_have_bounds() -> None:
    """Longest executions are stitched, with their start and the first sample where they were gone."""
    summary = summarize(samples(), at(0), at(60))
    assert summary.longest[0].info in (SLOW, SLOW2)
    assert all(e.ended_before is None or e.ended_before > e.last_seen for e in summary.longest)


def test_window_excludes_outside_samples() -> None:
    """Only samples in [start, end) count."""
    summary = summarize(samples(), at(10), at(30))
    assert summary.samples == 2


def test_activity_buckets_cover_the_window() -> None:
    """Activity has one bucket per step across the window, with mean and max running sessions."""
    summary = summarize(samples(), at(0), at(60))
    assert summary.bucket_seconds == 10
    assert [b.max_running for b in summary.activity] == [1, 2, 2, 1, 1, 1]


@pytest.mark.parametrize(("window", "interval", "bucket"), [(60, 10, 10), (3600, 10, 60), (86400, 10, 1800),
                                                             (600, 60, 60), (7 * 86400, 60, 10800)])  # fmt: skip
def test_bucket_choice(window: float, interval: float, bucket: int) -> None:
    """Bucket size fits the window in about 60 buckets and is never below the interval."""
    assert choose_bucket(window, interval) == bucket


def test_empty_window() -> None:
    """A window without samples summarizes to zero and says so."""
    summary = summarize([], at(0), at(60))
    assert summary.samples == 0
    assert summary.groups == ()
    assert any("no successful samples" in w for w in summary.warnings)


def test_session_factory_sanity() -> None:
    """The synthetic helpers mark Sleep as idle and Query as active."""
    assert not idle(1).active
    assert session(1).active


def test_a_hole_without_any_sample_is_a_gap() -> None:
    """A 47 h stretch with no line at all (the daemon was down) is reported as a no-samples gap with its span,
    not as "failed samples: 0"."""
    before = [snap(t, running(1, SLOW, started=t - 1, now=t)) for t in range(0, 60, 10)]
    after = [
        snap(47 * 3600 + t, running(1, SLOW, started=47 * 3600 + t - 1, now=47 * 3600 + t)) for t in range(0, 60, 10)
    ]
    summary = summarize([*before, *after], at(0), at(47 * 3600 + 60))
    holes = [g for g in summary.gaps if g.kind == "no_samples"]
    assert [(h.first, h.last) for h in holes] == [(at(50), at(47 * 3600))]
    assert holes[0].count == round((47 * 3600 - 50) / 10) - 1
    assert summary.gap_samples == 0
    assert any("have no samples" in w for w in summary.warnings)


def test_window_beyond_the_archive_is_reported_once_as_outside() -> None:
    """The part of a window before the first sample and after the last is one 'outside the archive' span
    each, never a gap and never empty activity buckets."""
    samples_ = [snap(t, running(1, SLOW, started=t - 1, now=t)) for t in range(3600, 7200, 10)]
    summary = summarize(samples_, at(0), at(10800), bounds=(at(3600), at(7190)))
    assert [(o.side, o.first, o.last) for o in summary.outside] == [
        ("before", at(0), at(3600)),
        ("after", at(7190), at(10800)),
    ]
    assert summary.gaps == ()
    assert all(at(3600) <= b.start < at(7200) for b in summary.activity)
    assert all(b.samples for b in summary.activity)


def test_not_recorded_span_from_a_gap_line() -> None:
    """A gap line carrying gap_since (skipped slots, failed writes) is a not-recorded span with its count."""
    from dataclasses import replace

    marker = replace(
        gap(100, "no samples recorded: disk full"), extra={"gap_since": "2026-11-28T03:00:40.000Z", "missed": 6}
    )
    samples_ = [snap(t) for t in (0, 10, 20, 30)] + [marker] + [snap(t) for t in (110, 120)]
    summary = summarize(samples_, at(0), at(130))
    (span,) = [g for g in summary.gaps if g.kind == "not_recorded"]
    assert (span.first, span.last, span.count) == (at(40), at(100), 6)
    assert [g.kind for g in summary.gaps] == ["not_recorded"]


# --- the DB load kept for the report (Load) ---------------------------------------------------------------


def steady(start: float, end: float, step: float = 10.0) -> list:
    """Samples every ``step`` s: session 1 runs SLOW as user report in state "Sending data", session 2 runs FAST
    as app in "Updating" in every other sample, one host per session, a second server version half-way."""
    out = []
    for t in range(int(start), int(end), int(step)):
        sessions = [running(1, SLOW, started=start - 5, now=t, user="report", host="10.0.0.1:5000")]
        if (t // int(step)) % 2 == 0:
            sessions.append(running(2, FAST, started=t, now=t, user="app", host="10.0.0.2:6000", state="Updating"))
        sample = snap(t, *sessions, interval=step)
        if t >= (start + end) / 2:
            from dataclasses import replace

            sample = replace(sample, server="10.11.20-MariaDB")
        out.append(sample)
    return out


def test_load_is_kept_only_when_asked_for() -> None:
    """summarize() keeps no Load unless load_buckets is given: window pays nothing for the report."""
    assert summarize(samples(), at(0), at(60)).load is None


def test_load_weighs_every_sample_like_active_seconds() -> None:
    """Per fingerprint and per user, the Load's active seconds are the summary's active_seconds (same weights),
    including across a failed sample, and the sampled seconds are the samples' weights."""
    data = samples()
    by_fingerprint = summarize(data, at(0), at(60), load_buckets=360)
    by_user = summarize(data, at(0), at(60), by="user")
    load = by_fingerprint.load
    assert load is not None
    assert load.totals("fingerprint") == pytest.approx({g.key: g.active_seconds for g in by_fingerprint.groups})
    assert load.totals("user") == pytest.approx({g.key: g.active_seconds for g in by_user.groups})
    assert sum(load.totals("state").values()) == pytest.approx(by_fingerprint.total_active_seconds)
    assert load.sampled_seconds == pytest.approx(60.0)
    assert load.peak == (at(10), 2)
    # every sighting of session 1 starts a new execution (its started_at moves by 10 s): 6, and 2 updates
    assert load.executions == {
        "select * from orders where customer_id = ?": 6,
        "update stock set n = n - ? where sku = ?": 2,
    }
    assert load.users["update stock set n = n - ? where sku = ?"] == {"app": pytest.approx(20.0)}


def test_load_buckets_are_never_finer_than_the_interval() -> None:
    """An hour sampled every 15 s is kept in 30 s buckets (a multiple of the fine 10 s ones), each with samples:
    no bucket is empty merely because it fell between two samples."""
    summary = summarize(steady(0, 3600, 15), at(0), at(3600), load_buckets=360)
    load = summary.load
    assert load is not None
    assert load.bucket_seconds == 30
    assert sorted(load.samples) == list(range(int(at(0).timestamp()) // 30, int(at(3600).timestamp()) // 30))
    assert set(load.samples.values()) == {2}


def test_load_of_two_halves_joins_into_the_load_of_the_whole() -> None:
    """The parts of [0, 30m) and [30m, 60m), each with its LoadTracker, joined: the Load of [0, 60m), exactly
    (integer milliseconds), the sample at the seam weighed by the second half's first sample."""
    data = steady(0, 3600)
    whole = summarize(data, at(0), at(3600), load_buckets=360).load
    assert whole is not None and whole.bucket_seconds == 10
    halves = [[s for s in data if low <= s.ts < high] for low, high in ((at(0), at(1800)), (at(1800), at(3600)))]
    parts = [build(half, ("fingerprint",), cap=10, load=LoadTracker(10)) for half in halves]
    joined = join(parts, ("fingerprint",), cap=10, load=LoadTracker(10))
    load = finish(joined, at(0), at(3600), by="fingerprint", top=10).load
    assert load is not None
    assert dataclasses.asdict(load) == dataclasses.asdict(whole)
    assert whole.servers == {"10.11.19-MariaDB": 180, "10.11.20-MariaDB": 180}
    assert whole.totals("host") == {"10.0.0.1": pytest.approx(3600.0), "10.0.0.2": pytest.approx(1800.0)}
    with pytest.raises(ValueError, match="cannot merge"):
        LoadTracker(10).merge(LoadTracker(20))


def test_rebucket_keeps_every_total_and_refuses_a_size_that_does_not_divide() -> None:
    """Coarser buckets hold the same sums; a size that is not a multiple of the current one is refused."""
    load = summarize(steady(0, 3600), at(0), at(3600), load_buckets=360).load
    assert load is not None
    coarse = load.rebucket(600)
    assert len(coarse.sampled) == 6
    assert coarse.sampled_seconds == pytest.approx(load.sampled_seconds)
    assert coarse.totals("fingerprint") == pytest.approx(load.totals("fingerprint"))
    assert coarse.bucket_start(min(coarse.sampled)) == at(0)
    with pytest.raises(ValueError, match="not a multiple"):
        load.rebucket(15)
