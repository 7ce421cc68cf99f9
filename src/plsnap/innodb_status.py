"""Statement texts inside ``SHOW ENGINE INNODB STATUS``: found, and masked or redacted, without trusting that
a statement looks unlike InnoDB's own lines (InnoDB prints statements verbatim, newlines included)."""

from __future__ import annotations

import re
from collections.abc import Callable

from plsnap.masking import mask_secrets
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
#: A record dump's field (``0: len 4; hex 80000001; asc     ;;``): a row's values.
_FIELD_DUMP = re.compile(r"(\s[0-9]+: len [0-9]+; hex )[0-9a-f]*(; asc ).*?;;")


def redact_status(text: str, convert: Callable[[str], str], *, redact_rows: bool = False) -> str:
    """Mask (and with ``redact``, redact) the statement texts inside an InnoDB status report: the lines after a
    ``MySQL thread id`` or ``MariaDB thread id`` line until InnoDB's own lines resume. When a statement ends at
    a line whose shape a statement can take too (dashes, ``*** ...``), everything up to the next line only
    InnoDB prints is read as one text as well, and has all its literals masked when it holds a secret: a
    statement that holds such a line never leaks the rest. ``convert`` turns a statement's text into what is
    kept (masked, redacted); with ``redact_rows`` the record dumps' field values (``hex ...; asc ...``) go too."""
    lines = text.split("\n")
    out: list[str | None] = [_dump(line, redact_rows) for line in lines]
    position = 0
    while position < len(lines):
        if not _THREAD_LINE.match(lines[position]):
            position += 1
            continue
        begin = end = position + 1
        while end < len(lines) and not _STATEMENT_END.match(lines[end]):
            end += 1
        if end > begin:
            out[begin:end] = [convert("\n".join(lines[begin:end])), *[None] * (end - begin - 1)]
        if end < len(lines) and not _CERTAIN_END.match(lines[end]):
            stop = end
            while stop < len(lines) and not _CERTAIN_END.match(lines[stop]):
                stop += 1
            region = "\n".join(lines[begin:stop])
            masked = mask_secrets(region) if may_hold_secret(region) else region
            if masked != region:
                out[begin:stop] = [_dump(masked, redact_rows), *[None] * (stop - begin - 1)]
        position = end
    return "\n".join(line for line in out if line is not None)


def _dump(text: str, redact_rows: bool) -> str:
    return _FIELD_DUMP.sub(r"\1?\2?;;", text) if redact_rows else text
