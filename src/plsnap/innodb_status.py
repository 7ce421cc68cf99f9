"""Statement texts inside ``SHOW ENGINE INNODB STATUS``: found, and masked or redacted, without trusting that
a statement looks unlike InnoDB's own lines (InnoDB prints statements verbatim, newlines included)."""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable
from typing import NamedTuple

from plsnap.masking import mask_secrets, mask_spans, redact_literals, secret_spans
from plsnap.secretwords import PRECHECK, may_hold_secret

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
#: At most this many characters are read as statements (about a second of tokenizing): more means strings or
#: comments left open across thousands of sessions.
BUDGET = 8_000_000
#: What replaces everything after the first thread line when that budget would be passed.
UNDELIMITED = "<plsnap: statements holding secret-bearing words could not be delimited; the rest is not kept>"
#: How far the end of a thread line may run on: it ends with the session's user name, which may hold newlines
#: (MariaDB allows 128 characters, MySQL 32), then the session's state; the statement begins after it.
NAME_LINES = 130
NAME_CHARS = 256
#: Phrases of InnoDB's own lines that hold a word of the secret precheck (``mysql``, ``master``).
_OWN_PHRASES = ("mysql thread id", "mysql tables in use", "srv_master_thread", "master thread")
#: A record dump's field (``0: len 4; hex 80000001; asc     ;;``): a row's values.
#: Its numbers may already be masked or redacted (``'<secret>'``, ``?``) when the dump is removed.
_FIELD_DUMP = re.compile(r"(\s(?:[0-9]+|\?|'<secret>'): len (?:[0-9]+|\?|'<secret>'); hex )[^;]*(; asc ).*?;;")


def redact_status(text: str, convert: Callable[[str], str], *, redact_rows: bool = False) -> str:
    """Mask (and with ``redact``, redact) the statement texts inside an InnoDB status report: the lines after a
    ``MySQL thread id`` or ``MariaDB thread id`` line until InnoDB's own lines resume. ``convert`` turns a
    statement's text into what is kept (masked, redacted); with ``redact_rows`` the record dumps' field values
    (``hex ...; asc ...``) go too.

    A statement may hold any line, one shaped like InnoDB's own included (a comment, a string, even code can
    hold ``MySQL thread id 1,`` or ``---TRANSACTION``), so where a statement ends is never certain; where it
    starts is: right after its thread line. So besides the pass by statements (each up to the next line shaped
    like InnoDB's, or for an ambiguous shape such as a ruler of dashes, up to the next line only InnoDB prints),
    the text from each thread line's next line is read as one statement up to the end of the next thread line
    where every reading is back in code (InnoDB's lines between are read with it), and when it holds a
    secret, every literal of it is masked (a statement touched is then converted again; with
    ``redact_rows``, InnoDB's lines touched are redacted as well). Over-masking InnoDB's own numbers there is
    accepted; a leak is not. When that would mean reading more than :data:`BUDGET` characters,
    everything after the first thread line is replaced by a note instead."""
    lines = text.split("\n")
    parsed = _parse(lines, convert, redact_rows)
    kept = "\n".join(line for line in parsed.out if line is not None)
    if parsed.first is None:
        return kept
    return _mask_every_statement(text, lines, parsed, convert, redact_rows) or kept


class _Parsed(NamedTuple):
    """What the statement-by-statement pass found: the lines to keep (None: merged into the one before), the
    first thread line, and the lines where a statement (converted as one text) begins."""

    out: list[str | None]
    first: int | None
    statements: frozenset[int]


def _parse(lines: list[str], convert: Callable[[str], str], redact_rows: bool) -> _Parsed:
    out: list[str | None] = [_dump(line, redact_rows) for line in lines]
    first: int | None = None
    statements: set[int] = set()
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
            statements.add(begin)
        stop = end
        if end < len(lines) and not _CERTAIN_END.match(lines[end]):
            while stop < len(lines) and not _CERTAIN_END.match(lines[stop]):
                stop += 1
            region = "\n".join(lines[begin:stop])
            masked = mask_secrets(region) if may_hold_secret(region) else region
            if masked != region:
                out[begin:stop] = [_dump(masked, redact_rows), *[None] * (stop - begin - 1)]
        position = end
    return _Parsed(out, first, frozenset(statements))


def _mask_every_statement(
    text: str, lines: list[str], parsed: _Parsed, convert: Callable[[str], str], redact_rows: bool
) -> str | None:
    """The report with the secret literals of every statement, each read from its own start to the next thread
    line where every reading is back in code (a string, a quoted name or a comment still open there runs on),
    masked; None when none of them holds a secret (the pass by statements stands)."""
    assert parsed.first is not None
    words = _secret_words(text)
    if not words:
        return None
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    spans = _statement_spans(text, lines, starts, words)
    if spans is None:
        return text[: starts[parsed.first + 1]] + UNDELIMITED
    if not spans:
        return None
    pieces: list[str] = []
    segments = [k for k, out in enumerate(parsed.out) if out is not None] + [len(lines)]
    for k, following in itertools.pairwise(segments):
        low, high = starts[k], starts[following] - 1
        inside = [(max(a, low) - low, min(b, high) - low) for a, b in spans if a < high and low < b]
        if not inside:
            pieces.append(parsed.out[k] or "")
            continue
        masked = mask_spans(text[low:high], inside)
        if k in parsed.statements:  # as the pass by statements keeps it (masked, truncated, redacted)
            pieces.append(convert(masked))
        else:
            pieces.append(_dump(redact_literals(masked) if redact_rows else masked, redact_rows))
    return "\n".join(pieces)


def _statement_spans(
    text: str, lines: list[str], starts: list[int], words: list[tuple[int, int]]
) -> list[tuple[int, int]] | None:
    """The secret literals of every statement read from each of its possible starts to the next thread line
    where every reading is back in code; None when that would read more than :data:`BUDGET` characters."""
    word_ends = [stop for _, stop in words]
    thread_lines = [i for i, line in enumerate(lines) if _THREAD_LINE.match(line)]
    boundaries = [starts[i + 1] - 1 for i in thread_lines] + [len(text)]  # the ends of the thread lines
    spans: list[tuple[int, int]] = []
    read = 0
    for number, index in enumerate(thread_lines):
        for begin in _statement_starts(text, lines, starts, index):
            later = number + 1
            end = boundaries[later]
            while end < len(text) and _ends_open(text[begin:end]):
                read += end - begin
                if read > BUDGET:
                    return None
                later += 1
                end = boundaries[later]
            found = bisect.bisect_right(word_ends, begin)
            if found == len(words) or words[found][0] >= end:
                continue
            read += end - begin
            if read > BUDGET:
                return None
            spans += [(begin + a, begin + b) for a, b in secret_spans(text[begin:end])]
    return spans


def _statement_starts(text: str, lines: list[str], starts: list[int], thread_line: int) -> list[int]:
    """Where the statement after ``thread_line`` may begin (offsets in ``text``): right after it, and, when the
    thread line's end (its user name, which may hold newlines, then the state) left a string, a quoted name or
    a comment open, after each of its next lines that may still be part of it."""
    first = thread_line + 1
    found = [starts[first]] if first < len(lines) else []
    for line in range(first + 1, min(len(lines), first + NAME_LINES)):
        head = text[starts[first] : starts[line]]
        if len(head) > NAME_CHARS:
            break
        if _ends_open(head):
            found.append(starts[line])
    return found


def _ends_open(statement: str) -> bool:
    """True when some reading of ``statement`` ends inside a string, a quoted name or a comment (what follows
    would be part of it)."""
    return _SENTINEL not in redact_literals(f"{statement}\n{_SENTINEL}")


def _secret_words(text: str) -> list[tuple[int, int]]:
    """(start, end) of every word a secret needs, in order, InnoDB's own phrases left out."""
    lowered = text.lower()
    for phrase in _OWN_PHRASES:
        lowered = lowered.replace(phrase, " " * len(phrase))
    return [match.span() for match in PRECHECK.finditer(lowered)]


def _dump(text: str, redact_rows: bool) -> str:
    return _FIELD_DUMP.sub(r"\1?\2?;;", text) if redact_rows else text
