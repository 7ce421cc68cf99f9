"""Durations and sizes."""

from __future__ import annotations

import pytest

from plsnap.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("10m", 600), ("7d", 604800), ("1h30m", 5400), ("250ms", 0.25), ("90", 90), ("1w", 604800), (3, 3)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    """Durations accept units s, m, h, d, w, ms, compounds, and bare seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h 30", "-5s", "five", "5s5"])
def test_parse_duration_rejects(text: str) -> None:
    """Malformed durations raise ValueError."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("500MB", 500_000_000), ("2GiB", 2 * 2**30), ("1048576", 1048576), ("10k", 10240), ("1.5GB", 1_500_000_000)],
)
def test_parse_size(text: str, size: int) -> None:
    """Sizes accept SI and binary units."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["9" * 400 + "MB", "9999999TiB", "10000000TB", 2**63, 10**400])
def test_parse_size_rejects_what_no_file_system_holds(text: str | int) -> None:
    """A size too large for a float or for st_size is a ValueError (a config error), never an OverflowError."""
    with pytest.raises(ValueError, match="too large"):
        parse_size(text)


def test_format_duration() -> None:
    """Durations render compactly."""
    assert format_duration(604800) == "7d"
    assert format_duration(5400) == "1h30m"
    assert format_duration(0.5) == "0.5s"
