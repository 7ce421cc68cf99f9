"""Parsing human units: durations (``5s``, ``10m``, ``1h30m``, ``7d``) and sizes (``500MB``, ``2GiB``, ``5%``)."""

from __future__ import annotations

import re

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]*)$")


def parse_duration(text: str | float) -> float:
    """Seconds for ``text``: a number of seconds or unit parts like ``90s``, ``1h30m``, ``7d``; ValueError if not."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise ValueError("must not be negative")
        return float(text)
    if not isinstance(text, str):
        raise ValueError("expected a duration such as 30s, 10m, 7d")
    value = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(value) or not value:
        raise ValueError(f"{text!r} is not a duration (use e.g. 30s, 10m, 1h30m, 7d)")
    return total


#: Sizes are below 2^63 bytes (what a file system and st_size can hold).
MAX_SIZE = 2**63


def parse_size(text: str | int) -> int:
    """Bytes for ``text``: an integer or a number with a unit (``500MB``, ``2GiB``; K/M/G alone are binary)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError("must not be negative")
        if text >= MAX_SIZE:
            shown = str(text) if len(str(text)) <= 40 else str(text)[:40] + "..."
            raise ValueError(f"{shown} bytes is too large (at most 8EiB)")
        return text
    if not isinstance(text, str):
        raise ValueError("expected a size such as 500MB or 2GiB")
    match = _SIZE.match(text.strip().lower())
    if not match or match.group(2) not in SIZE_UNITS:
        raise ValueError(f"{text[:60]!r} is not a size (use e.g. 500MB, 2GiB, 1048576)")
    size = float(match.group(1)) * SIZE_UNITS[match.group(2)]
    if not size < MAX_SIZE:  # also inf, from a number too long for a float
        raise ValueError(f"{text[:40]!r} is too large (at most 8EiB)")
    return int(size)


def format_duration(seconds: float) -> str:
    """A compact rendering such as ``7d``, ``1h30m``, ``45s`` or ``0.5s``."""
    if seconds < 1 or seconds != int(seconds):
        return f"{seconds:g}s"
    remaining, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts) or "0s"


def format_size(size: float) -> str:
    """A compact binary rendering such as ``12.3MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"
