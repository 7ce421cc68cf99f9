"""One parser for every time value on the command line; all results are aware UTC datetimes.

Accepted: ISO-8601 with or without an offset (``2026-11-28T03:14:00Z``, ``2026-11-28 03:14``), a time of day
(``03:14``, today), ``now``, relative times (``-15m``, ``-2h``, ``-1d``, ``-1h30m``) and epoch seconds. Values
without an offset are read in the local zone, or in ``--tz ZONE``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plsnap.errors import UsageError
from plsnap.units import parse_duration

ACCEPTED = (
    "use ISO-8601 (2026-11-28T03:14:00Z, '2026-11-28 03:14'), a time of day (03:14), now, "
    "-15m / -2h / -1d, or epoch seconds (9+ digits)"
)
_EPOCH = re.compile(r"^\d{9,11}(\.\d+)?$")
_RELATIVE = re.compile(r"^(?:now\s*)?-\s*(\S+)$")
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")


def parse_zone(name: str | None) -> tzinfo | None:
    """The zone for ``--tz`` (None means the local zone); UsageError for an unknown name."""
    if not name:
        return None
    if name.upper() in {"UTC", "Z"}:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC") from None


def parse_time(text: str, *, now: datetime | None = None, zone: tzinfo | None = None) -> datetime:
    """Parse ``text`` into an aware UTC datetime; UsageError with the accepted forms when it is malformed."""
    value = text.strip()
    current = now or datetime.now(UTC)
    try:
        if value.lower() == "now":
            return current
        relative = _RELATIVE.match(value.lower())
        if relative:
            return current - timedelta(seconds=parse_duration(relative.group(1)))
        if _EPOCH.match(value):
            return datetime.fromtimestamp(float(value), UTC)
        if _TIME_OF_DAY.match(value):
            local_now = current.astimezone(zone)
            moment = datetime.combine(local_now.date(), time.fromisoformat(value.zfill(5)))
            return _attach(moment, zone)
        if len(value) < 10 or not value[:4].isdigit():
            raise ValueError(value)
        return _attach(datetime.fromisoformat(value.replace(" ", "T", 1)), zone)
    except (ValueError, OverflowError, OSError):
        raise UsageError(f"invalid time {text!r}: {ACCEPTED}") from None


def _attach(moment: datetime, zone: tzinfo | None) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone) if zone is not None else moment.astimezone()
    return moment.astimezone(UTC)
