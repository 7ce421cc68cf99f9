"""One time parser for every command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plsnap.errors import UsageError
from plsnap.timeparse import parse_time, parse_zone

NOW = datetime(2026, 11, 28, 4, 0, 0, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T03:14:00Z", datetime(2026, 11, 28, 3, 14, tzinfo=UTC)),
        ("2026-11-28T12:14:00+09:00", datetime(2026, 11, 28, 3, 14, tzinfo=UTC)),
        ("2026-11-28 12:14", datetime(2026, 11, 28, 3, 14, tzinfo=UTC)),
        ("2026-11-28 12:14:30", datetime(2026, 11, 28, 3, 14, 30, tzinfo=UTC)),
        ("now", NOW),
        ("-15m", NOW - timedelta(minutes=15)),
        ("now-2h", NOW - timedelta(hours=2)),
        ("-1d", NOW - timedelta(days=1)),
        ("-1h30m", NOW - timedelta(minutes=90)),
        ("1795835640", datetime(2026, 11, 28, 3, 14, tzinfo=UTC)),
        ("1795835640.5", datetime(2026, 11, 28, 3, 14, 0, 500000, tzinfo=UTC)),
        ("12:14", datetime(2026, 11, 28, 3, 14, tzinfo=UTC)),
    ],
)
def test_accepted_forms(text: str, expected: datetime) -> None:
    """ISO-8601, local wall time in --tz, now, relative and epoch forms all parse to UTC."""
    assert parse_time(text, now=NOW, zone=TOKYO) == expected


def test_naive_time_uses_local_zone_by_default() -> None:
    """Without --tz a value without offset is local time."""
    naive = datetime(2026, 11, 28, 3, 14)
    assert parse_time("2026-11-28 03:14", now=NOW) == naive.astimezone().astimezone(UTC)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026-11-28 25:00", "-15x", "12", "nowish"])
def test_rejected_forms_show_accepted_ones(text: str) -> None:
    """A bad value is a UsageError (exit 2) whose one-line message lists the accepted forms."""
    with pytest.raises(UsageError, match="use ISO-8601") as info:
        parse_time(text, now=NOW)
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)


def test_unknown_zone() -> None:
    """An unknown --tz is a UsageError."""
    with pytest.raises(UsageError, match="unknown time zone"):
        parse_zone("Mars/Olympus")


@given(st.text(max_size=40))
def test_any_string_parses_or_raises_usage_error(text: str) -> None:
    """Arbitrary strings either parse to an aware UTC datetime or raise UsageError, nothing else."""
    try:
        result = parse_time(text, now=NOW)
    except UsageError:
        return
    assert result.tzinfo is not None
