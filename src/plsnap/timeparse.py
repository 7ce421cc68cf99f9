"""One parser for every time value on the command line; all results are aware UTC datetimes.

Accepted: ISO-8601 with or without an offset (``2026-11-28T03:14:00Z``, ``2026-11-28 03:14``), a time of day
(``03:14``, today), ``now``, relative times (``-15m``, ``-2h``, ``-1d``, ``-1h30m``) and epoch seconds. Values
without an offset are read in the local zone, or in ``--tz ZONE``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo

from plsnap.errors import UsageError
from plsnap.model import TS_MAX, TS_MIN
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
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only for --tz: a millisecond of every start-up

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC") from None


def parse_time(text: str, *, now: datetime | None = None, zone: tzinfo | None = None) -> datetime:
    """Parse ``text`` into an aware UTC datetime; UsageError with the accepted forms when it is malformed."""
    return parse_time_noted(text, now=now, zone=zone)[0]


def parse_time_noted(
    text: str, *, now: datetime | None = None, zone: tzinfo | None = None, shown: str | None = None
) -> tuple[datetime, str | None]:
    """:func:`parse_time`, plus a note when a local time was ambiguous or did not exist (a DST change), saying
    which reading was taken and how to choose the other. Messages quote ``shown`` (default: ``text``)."""
    shown = text if shown is None else shown
    if len(text) > 100:
        raise UsageError(f"invalid time {shown[:40]!r}...: {ACCEPTED}")
    value = text.strip()
    current = now or datetime.now(UTC)
    try:
        if value.lower() == "now":
            return current, None
        relative = _RELATIVE.match(value.lower())
        if relative:
            return _checked(current - timedelta(seconds=parse_duration(relative.group(1)))), None
        if _EPOCH.match(value):
            return _checked(datetime.fromtimestamp(float(value), UTC)), None
        if _TIME_OF_DAY.match(value):
            local_now = current.astimezone(zone)
            moment = datetime.combine(local_now.date(), time.fromisoformat(value.zfill(5)))
            return _attach(moment, zone, text)
        if len(value) < 10 or not value[:4].isdigit():
            raise ValueError(value)
        return _attach(datetime.fromisoformat(value.replace(" ", "T", 1)), zone, text)
    except (ValueError, OverflowError, OSError):
        raise UsageError(f"invalid time {shown!r}: {ACCEPTED}") from None


def _checked(moment: datetime) -> datetime:
    """Reject instants so far out that arithmetic around them would overflow."""
    if not TS_MIN <= moment < TS_MAX:
        raise UsageError(f"time {moment.isoformat()} is out of range: plsnap reads instants from 2000 to 2199")
    return moment


def _attach(moment: datetime, zone: tzinfo | None, text: str) -> tuple[datetime, str | None]:
    if moment.tzinfo is not None:
        return _checked(moment.astimezone(UTC)), None
    first = _localize(moment.replace(fold=0), zone)
    second = _localize(moment.replace(fold=1), zone)
    name = _zone_name(zone, first)
    if first == second:
        return _checked(first), None
    wall = first.astimezone(zone).replace(tzinfo=None) if zone is not None else first.astimezone().replace(tzinfo=None)
    if wall == moment.replace(fold=0):
        note = (
            f"{text.strip()!r} happens twice in {name} (the clocks went back): read as the first, "
            f"{_show(first, zone)}; give an offset ({_offset(second, zone)}) for the second"
        )
    else:
        note = (
            f"{text.strip()!r} does not exist in {name} (the clocks went forward): read as {_show(first, zone)}; "
            "give an offset to be explicit"
        )
    return _checked(first), note


def _localize(moment: datetime, zone: tzinfo | None) -> datetime:
    aware = moment.replace(tzinfo=zone) if zone is not None else moment.astimezone()
    return aware.astimezone(UTC)


def _zone_name(zone: tzinfo | None, moment: datetime) -> str:
    if zone is None:
        return f"the local zone ({moment.astimezone().tzname()})"
    return str(zone)


def _show(moment: datetime, zone: tzinfo | None) -> str:
    local = moment.astimezone(zone) if zone is not None else moment.astimezone()
    return f"{local.isoformat(timespec='minutes')} ({moment.strftime('%H:%MZ')})"


def _offset(moment: datetime, zone: tzinfo | None) -> str:
    local = moment.astimezone(zone) if zone is not None else moment.astimezone()
    return local.isoformat(timespec="minutes")[-6:]
