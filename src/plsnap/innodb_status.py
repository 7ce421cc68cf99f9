"""Statement texts inside ``SHOW ENGINE INNODB STATUS``: found, and masked or redacted, without trusting that
a statement looks unlike InnoDB's own lines (InnoDB prints statements verbatim, newlines included)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from plsnap.masking import mask_secrets, mask_spans, redact_literals, secret_spans
from plsnap.secretwords import may_hold_secret

#: A line that starts a session's block in SHOW ENGINE INNODB STATUS; the statement text follows it.
_THREAD_LINE = re.compile(r"^(?:MySQL|MariaDB) thread id [0-9]+,")
#: Lines InnoDB prints after a statement (MySQL 5.7-8.x and MariaDB 10.x-11.x): the statement ends at the first
#: of them. Only whole shapes count (a statement line may well start with "LOG" or "Pending", or be empty).
_STATEMENT_END = re.compile(
    r"^(?:---TRANSACTION |------- TRX HAS BEEN WAITING |Trx read view will not see |TABLE LOCK table |"
    r"RECORD LOCKS space id |Record lock, heap no |[0-9]+ lock struct\(s\), |LOCK WAIT [0-9]+ lock struct|"
    r"mysql tables in use [0-9]|(?:MySQL|MariaDB) thread id [0-9]+,|\*\*\* |-{4,}\s*$|={4,}|"
    r"END OF INNODB MONITOR OUTPUT|History list length [0-9]+\s*$|Purge done for trx|Trx id counter [0-9]+\s*$|"
    r"LIST OF TRANSACTIONS FOR EACH SESSION:)"
)
#: The lines that only InnoDB prints right after a statement; the other shapes that end one (a ruler of dashes,
#: a deadlock's "*** " heading, "History list length") a statement's own line can take too.
_CERTAIN_END = re.compile(
    r"^(?:---TRANSACTION |------- TRX HAS BEEN WAITING |Trx read view will not see |TABLE LOCK table |"
    r"RECORD LOCKS space id |(?:MySQL|MariaDB) thread id [0-9]+,|END OF INNODB MONITOR OUTPUT)"
)
#: A word no reading takes for part of a literal or a comment unless the text before it left one open.
_SENTINEL = "PLSNAPSTATEMENTENDSHERE"
#: A bare number, decimal or hex (``0x7fb0e9985b80``, a row dump's ``hex 616c...``): InnoDB's own lines are full
#: of them.
_NUMBER = re.compile(r"[0-9][0-9a-fA-FxX.+-]*")
#: A record dump's field (``0: len 4; hex 80000001; asc     ;;``): a row's values.
_FIELD_DUMP = re.compile(r"(\s[0-9]+: len [0-9]+; hex )[0-9a-f]*(; asc ).*?;;")


def redact_status(text: str, convert: Callable[[str], str], *, redact_rows: bool = False) -> str:
    """Mask (and with ``redact``, redact) the statement texts inside an InnoDB status report: the lines after a
    ``MySQL thread id`` or ``MariaDB thread id`` line until InnoDB's own lines resume. ``convert`` turns a
    statement's text into what is kept (masked, redacted); with ``redact_rows`` the record dumps' field values
    (``hex ...; asc ...``) go too.

    A statement may hold any line, one shaped like InnoDB's own included (a comment or a string can hold
    ``MySQL thread id 1,`` or ``---TRANSACTION``), so where a statement ends is never certain:

    - when a statement ends at a line whose shape a statement can take too (dashes, ``*** ...``), everything up
      to the next line only InnoDB prints is read as one text as well, and has all its literals masked when it
      holds a secret;
    - when a statement (or that longer text) ends inside a string, a quoted name or a comment, or when a line
      read as InnoDB's own has a word a secret needs, everything from the first session block to the end is
      read as one text too; when that text holds a secret, every literal that any reading would mask is masked
      (with ``redact_rows``, every literal there is redacted as well).

    InnoDB's own lines hold numbers, and a statement elsewhere that holds a secret makes them literals of that
    long text: so a line read as InnoDB's own sends the report down the second path only when a string (not a
    bare number) of the long text lies in it.

    Over-masking the rest of the report is accepted; a leak is not."""
    lines = text.split("\n")
    parsed = _parse(lines, convert, redact_rows)
    kept = "\n".join(line for line in parsed.out if line is not None)
    if parsed.first is None:
        return kept
    return _mask_from_first_session(text, lines, parsed, redact_rows) or kept


class _Parsed(NamedTuple):
    """What the statement-by-statement pass found: the lines to keep (None: merged into the one before), the
    (begin, stop) line ranges read as statements, the first thread line, and whether a statement ended open."""

    out: list[str | None]
    regions: list[tuple[int, int]]
    first: int | None
    open_end: bool


def _parse(lines: list[str], convert: Callable[[str], str], redact_rows: bool) -> _Parsed:
    out: list[str | None] = [_dump(line, redact_rows) for line in lines]
    regions: list[tuple[int, int]] = []
    first: int | None = None
    open_end = False
    position = 0
    while position < len(lines):
        if not _THREAD_LINE.match(lines[position]):
            position += 1
            continue
        first = position if first is None else first
        begin = end = position + 1
        while end < len(lines) and not _STATEMENT_END.match(lines[end]):
            end += 1
        if end > begin:
            out[begin:end] = [convert("\n".join(lines[begin:end])), *[None] * (end - begin - 1)]
        stop = end
        if end < len(lines) and not _CERTAIN_END.match(lines[end]):
            while stop < len(lines) and not _CERTAIN_END.match(lines[stop]):
                stop += 1
            region = "\n".join(lines[begin:stop])
            masked = mask_secrets(region) if may_hold_secret(region) else region
            if masked != region:
                out[begin:stop] = [_dump(masked, redact_rows), *[None] * (stop - begin - 1)]
        if stop > begin:
            regions.append((begin, stop))
            open_end = open_end or _ends_open("\n".join(lines[begin:stop]))
        position = end
    return _Parsed(out, regions, first, open_end)


def _mask_from_first_session(text: str, lines: list[str], parsed: _Parsed, redact_rows: bool) -> str | None:
    """The report masked as one text from its first thread line on, or None when the pass by statements is
    enough (that text holds no secret, or only in what the pass read as statements and none ended open)."""
    assert parsed.first is not None
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    base = starts[parsed.first]
    tail = text[base:]
    whole = secret_spans(tail)
    if not whole:
        return None
    if not parsed.open_end:
        covered = {i for begin, stop in parsed.regions for i in range(begin, stop)}
        loose = [(starts[i] - base, starts[i + 1] - base) for i in range(parsed.first, len(lines)) if i not in covered]
        if not any(_in_any(a, b, loose) and not _NUMBER.fullmatch(tail[a:b]) for a, b in whole):
            return None
    spans = [(base + a, base + b) for a, b in whole]
    for begin, stop in parsed.regions:
        offset = starts[begin]
        spans += [(offset + a, offset + b) for a, b in secret_spans("\n".join(lines[begin:stop]))]
    masked = mask_spans(text, spans)
    head, rest = masked[:base], masked[base:]
    return _dump(head + (redact_literals(rest) if redact_rows else rest), redact_rows)


def _in_any(start: int, end: int, ranges: list[tuple[int, int]]) -> bool:
    """True when ``[start, end)`` overlaps one of ``ranges``."""
    return any(start < high and low < end for low, high in ranges)


def _ends_open(statement: str) -> bool:
    """True when some reading of ``statement`` ends inside a string, a quoted name or a comment (what follows
    would be part of it)."""
    return _SENTINEL not in redact_literals(f"{statement}\n{_SENTINEL}")


def _dump(text: str, redact_rows: bool) -> str:
    return _FIELD_DUMP.sub(r"\1?\2?;;", text) if redact_rows else text
