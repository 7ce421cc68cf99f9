"""Secret masking and literal redaction of captured SQL text, correct under every quoting mode at once.

plsnap stores the statement text of sessions whose ``sql_mode`` it cannot know, and the quoting rules depend
on it: with ``NO_BACKSLASH_ESCAPES`` a backslash is an ordinary character (``'a\\'`` is a whole string), with
``ANSI_QUOTES`` ``"..."`` is an identifier, MariaDB's ``MSSQL`` mode adds ``[...]`` identifiers, and a
``/*!50700 ... */`` version comment is code or a comment depending on the server version. A tokenizer that
picks one set of rules can be fooled by a text written for another (``CREATE USER a IDENTIFIED BY 'x\\', b
IDENTIFIED BY 'secret2'`` holds one string by the default rules, two under ``NO_BACKSLASH_ESCAPES``).

So the text is tokenized by every set of rules at once, the way the MySQL and MariaDB lexers do it:

* once per quoting mode: backslash escapes in ``'...'`` and ``"..."`` (the default), in neither
  (``NO_BACKSLASH_ESCAPES``, also with ``ANSI_QUOTES``), or only in ``'...'`` (``ANSI_QUOTES``, where
  ``"..."`` is an identifier, which is masked like a string: over-masking an identifier is harmless);
* within a mode, every construct that some server version or mode reads in more than one way forks the
  tokenizer, which follows each way: ``/*!NNNNN`` and ``/*M!NNNNN`` (code, a comment, MySQL's ordinary comment),
  ``/*+`` optimizer hints (a comment, or scanned by the hint lexer), MySQL 9 ``$tag$...$tag$`` strings,
  MariaDB ``[...]`` identifiers, ``--`` followed by a non-ASCII or DEL character. Forks that reach the same
  position merge, so the work stays linear.

A literal (string, hex, bit or number) of any of these readings is a *span*; the spans of all readings are
merged where they overlap, so that whatever the true mode, every real literal lies inside a merged span.
Over-masking is accepted, leaking is not.

:func:`mask_secrets` decides whether a statement can carry a secret on each reading's code (the text with
its literals and comments blanked), and on the decoded content of its literals; when any reading says so,
it replaces every merged span with ``'<secret>'``. :func:`redact_literals` replaces every merged span with
``?`` and removes comments.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from plsnap.secretwords import may_hold_secret

__all__ = ["mask_secrets", "mask_spans", "redact_literals", "secret_spans"]

_MASKED = "'<secret>'"


# Rules on the lowercased code of one reading: literals replaced with '' (or with their content when a quoted
# identifier holds a plain word), comments with a space, backticks dropped around plain words. (Word
# boundaries are checked after a first literal character, which lets the regex engine skip ahead.)
_SECRET_CODE = re.compile(
    r"""
    (?:c(?<!\wc)reate|a(?<!\wa)lter)\s+(?:or\s+replace\s+)?(?:user|server)\b
    |i(?<!\wi)dentified\b
    |passw\w*\s*\(
    |c(?<!\wc)hange\s+(?:master|replication\s+source)\b
    |s(?<!\ws)tart\s+(?:slave|replica|group_replication)\b
    |(?:(?:en|de)(?:crypt|code)|keyring|asymmetric)\w*\s*\(
    |c(?<!\wc)onnection\s*=?\s*''
    |option_list\b
    |auth(?:entication)?_string\b
    |(?:i(?<!\wi)nsert|u(?<!\wu)pdate|r(?<!\wr)eplace)\b[^;]*?\bmysql\s*\.\s*
        (?:user|global_priv|servers|slave_master_info)\b
    |c(?<!\wc)all\s[^;(]*?(?:passw|pwd|auth|secret|token|cred|master|source|replica|slave|rds_|az_)
    """,
    re.X,
)
# A SET statement naming a credential (SET PASSWORD, SET GLOBAL wsrep_sst_auth = ...), unless it is the SET
# clause of an UPDATE, INSERT, REPLACE or LOAD DATA statement.
_SET_SECRET = re.compile(r"s(?<!\ws)et\b[^;]*?(?:passw|pwd|auth|secret|token|credential|private)")
_SET_CLAUSE_OF = re.compile(r"\b(?:update|insert|replace|load)\b")
# Statements that run or keep the text of their literals as SQL: those literals are checked with may_hold_secret().
_DYNAMIC = re.compile(r"p(?<!\wp)repare\b|e(?<!\we)xecute\s+immediate\b|;\s*set\b|@[\w$.]*\s*:?=|i(?<!\wi)nto\s+@")
_SET_FIRST = re.compile(r"\s*set\b")
# Credentials inside a lowercased literal: a URL with a user and password, key=value and JSON forms.
_SECRET_LITERAL = re.compile(
    r"://[^@]*@|(?:passw|pwd|secret|token|api_?key|credential|private[ _]?key)[\w-]*(?:=|[\"']?\s*:|\s+[\"'])"
)
# Beyond this many readings of one statement's code, the statement is taken to be secret.
_MAX_READINGS = 64

# Word characters ([0-9A-Za-z_] and every non-ASCII character) are written as negated ASCII classes: the same
# set as a range up to U+10FFFF, but compiled in 0.1 ms instead of 3 (start-up of every command that masks).
# Texts where no construct but a backslash is read differently by some mode (no fork): each quoting mode reads
# them in one regex pass. Without a backslash either, all modes read them alike and redaction is one
# substitution. Every token pattern consumes one character from a small set first, so that the regex engine
# can skip ahead to candidate positions; the alternatives then look behind to see what was consumed.
_FORKS = re.compile(
    r"""[\[/$-](?:
        (?<=\[)
        |(?<=/)\*(?:[!+]|M!)
        |(?<=-)-[^\x00-\x7e]
        |(?<=\$)(?<![A-Za-z0-9_$]\$)[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]*\$
    )""",
    re.X,
)
_SINGLE_REST = {True: r"(?:[^'\\]++|\\.?|'')*+'?", False: r"(?:[^']++|'')*+'?"}
_DOUBLE_REST = {True: r'(?:[^"\\]++|\\.?|"")*+"?', False: r'(?:[^"]++|"")*+"?'}


@functools.cache
def _linear_tokens(single_backslash: bool, double_backslash: bool) -> re.Pattern[str]:
    """The tokens of a text without forks, read with the given backslash rules (compiled on first use: a text
    without a backslash needs one mode only)."""
    single = _SINGLE_REST[single_backslash]
    double = _DOUBLE_REST[double_backslash]
    return re.compile(
        rf"""
        [-+.0-9'"`\#/xXbBnN]
        (?:
            (?P<n>
                (?<![\w$.][0-9.])(?:(?<=[0-9])|(?<=\.)[0-9])[\w$.]*+
                |(?<=[-+])(?=\.?[0-9])[.0-9][\w$.]*+
            )
            |(?P<s>(?<=')(?:{single})|(?<=")(?:{double})|(?<=[xXbBnN])(?<![\w$].)'(?:{single}))
            |(?P<b>(?<=`)(?:[^`]++|``)*+(?P<bt>`)?)
            |(?P<c>(?<=/)\*.*?(?:\*/|\Z)|(?<=-)-(?=[\x00-\x20]|\Z)[^\n\x00]*+|(?<=\#)[^\n\x00]*+)
        )
        """,
        re.S | re.X,
    )


# The tokenizer of all readings.
_EVENT = re.compile(r"""['"`#\[$]|--|/\*""")
_NUMBER = re.compile(r"[-+](?=\.?[0-9])[.0-9][\w$.]*+|(?<![\w$.])(?:[0-9]|\.[0-9])[\w$.]*+")
_NUMBER_START = re.compile(r"[-+]?(?:[0-9]|\.[0-9])[\w$.]*+")
_SINGLE = {True: re.compile(r"(?:[^'\\]++|\\[\s\S]?|'')*+(')?"), False: re.compile(r"(?:[^']++|'')*+(')?")}
_DOUBLE = {True: re.compile(r'(?:[^"\\]++|\\[\s\S]?|"")*+(")?'), False: re.compile(r'(?:[^"]++|"")*+(")?')}
_BACKTICKED = re.compile(r"(?:[^`]++|``)*+(`)?")
_BRACKETED = re.compile(r"(?:[^\]]++|\]\])*+(\])?")
_LINE_REST = re.compile(r"[^\n\x00]*+")
_FIVE_DIGITS = re.compile(r"[0-9]{5}")
_DOLLAR_TAG = re.compile(r"\$[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]*\$")
_IDENT_RUN = re.compile(r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]*")
_PLAIN_WORD = re.compile(r"[0-9A-Za-z_$]+")
_ASCII_IDENT = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_$")
_NESTED_STOP = re.compile(r"\*/|/\*")
_HINT_STOP = {True: re.compile(r"\*/|['\"`]"), False: re.compile(r"\*/|[\"`]")}
_HINT_QUOTED = {"'": _SINGLE[False], '"': _DOUBLE[False], "`": _BACKTICKED}
_UNESCAPE = {"'": re.compile(r"\\([\s\S])|''"), '"': re.compile(r'\\([\s\S])|""')}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "0": "\x00", "Z": "\x1a", "%": "\\%", "_": "\\_"}

_SPACE = frozenset(" \t\n\r\f\v")
_OPERAND_END = frozenset(")]}?'\"`")
_UNARY_KEYWORDS = (
    "all and any between by case default distinct div else elseif escape if in interval is like limit mod "
    "not offset on or regexp return rlike row select set some sounds then to until using value values when "
    "where while xor"
)
_UNARY_AFTER = frozenset(_UNARY_KEYWORDS.split())

_Span = tuple[int, int, str]
"""A token of one reading: start, end, and kind: ``s`` literal, ``n`` number, ``v`` version number of a
``/*!`` comment, ``c`` comment that redaction removes."""


class _Alt(NamedTuple):
    """One way of reading the token at a position: where code resumes, the token in the code, its spans."""

    to: int
    piece: str
    spans: tuple[_Span, ...] = ()


_precheck = may_hold_secret


def _is_word(char: str) -> bool:
    return char.isalnum() or char in "_$"


def _sign_is_unary(text: str, pos: int) -> bool:
    """Whether the ``+``/``-`` at ``pos`` is a unary sign rather than a binary operator."""
    j = pos - 1
    while j >= 0 and text[j] in _SPACE:
        j -= 1
    if j < 0:
        return True
    if not _is_word(text[j]):
        return text[j] not in _OPERAND_END
    k = j
    while k > 0 and _is_word(text[k - 1]):
        k -= 1
    return text[k : j + 1].lower() in _UNARY_AFTER


def _number_text(text: str, start: int) -> str:
    """``?`` for the number at ``start``, keeping a sign that is a binary operator."""
    sign = text[start]
    if sign in "+-" and not _sign_is_unary(text, start):
        return sign + "?"
    return "?"


def _comment_text(text: str, start: int, end: int) -> str:
    """What a removed comment leaves: a space between two words, else nothing."""
    if start > 0 and end < len(text) and _is_word(text[start - 1]) and _is_word(text[end]):
        return " "
    return ""


def _decode(raw: str, quote: str, backslash: bool) -> str:
    """The value of a quoted literal's ``raw`` content, as the server reads it."""
    if not backslash:
        return raw.replace(quote * 2, quote)

    def one(match: re.Match[str]) -> str:
        char = match.group(1)
        return quote if char is None else _ESCAPES.get(char, char)

    return _UNESCAPE[quote].sub(one, raw)


def _quoted_piece(raw: str, empty: str) -> str:
    """A quoted identifier in the code of a reading: its content if a plain word (a function name), else ``empty``."""
    return raw if _PLAIN_WORD.fullmatch(raw) else empty


def _nested_comment_end(sql: str, pos: int) -> int:
    """End of a skipped version comment, which may hold one level of ``/* */`` (MySQL's consume_comment(1))."""
    while (match := _NESTED_STOP.search(sql, pos)) is not None:
        if match.group() == "*/":
            return match.end()
        inner = sql.find("*/", match.end())
        if inner < 0:
            break
        pos = inner + 2
    return len(sql)


def _comment_end(sql: str, start: int) -> int:
    end = sql.find("*/", start + 2)
    return len(sql) if end < 0 else end + 2


def _hint_scan(sql: str, start: int, single_quotes: bool) -> _Alt | None:
    """The optimizer hint at ``start`` as the hint lexer reads it: quoted names and strings may hold ``*/``."""
    pos = start + 3
    spans: list[_Span] = []
    while (match := _HINT_STOP[single_quotes].search(sql, pos)) is not None:
        if match.group() == "*/":
            return _Alt(match.end(), " ", tuple(spans))
        quote = match.group()
        quoted = _HINT_QUOTED[quote].match(sql, match.end())
        assert quoted is not None
        if quoted.group(1) is None:
            return None  # an unterminated quote is a hint syntax error: the hint is then read as a comment
        if quote != "`":
            spans.append((match.start(), quoted.end(), "s"))
        pos = quoted.end()
    return None


class _Reading:
    """Every reading of ``sql`` in one quoting mode: a graph from code positions to the tokens found there.

    ``nodes`` maps a position where code resumes to the end of the code that follows and the ways of reading
    the token there; ``spans`` holds the spans of every reading, ``literals`` the raw content and the quote
    of every string (by start), ``bodies`` the content of dollar-quoted strings.
    """

    def __init__(self, sql: str, single_backslash: bool, double_backslash: bool) -> None:
        self.sql = sql
        self.single_backslash = single_backslash
        self.double_backslash = double_backslash
        self.nodes: dict[int, tuple[int, tuple[_Alt, ...]]] = {}
        self.spans: set[_Span] = set()
        self.literals: dict[int, tuple[str, str]] = {}
        self.bodies: list[str] = []
        todo = [0]
        while todo:
            pos = todo.pop()
            if pos in self.nodes:
                continue
            end, alts = self._step(pos)
            self.nodes[pos] = (end, alts)
            # A number right where code resumes starts a token whatever precedes it (a version number, the
            # end of a dollar-quoted string): the lookbehind of _NUMBER does not apply there.
            first = _NUMBER_START.match(sql, pos, end)
            if first is not None:
                self.spans.add((pos, first.end(), "n"))
            numbers = _NUMBER.finditer(sql, pos if first is None else first.end(), end)
            self.spans.update((m.start(), m.end(), "n") for m in numbers)
            for alt in alts:
                self.spans.update(alt.spans)
                if alt.to not in self.nodes:
                    todo.append(alt.to)

    def _step(self, pos: int) -> tuple[int, tuple[_Alt, ...]]:
        """Where the code starting at ``pos`` ends, and the ways of reading the token found there."""
        sql = self.sql
        search = pos
        while (match := _EVENT.search(sql, search)) is not None:
            start = match.start()
            alts = _HANDLERS[sql[start]](self, start, pos)
            if alts is not None:
                return start, alts
            search = start + 1
        return len(sql), ()

    def _single(self, start: int, pos: int) -> tuple[_Alt, ...]:
        sql = self.sql
        match = _SINGLE[self.single_backslash].match(sql, start + 1)
        assert match is not None
        terminated = match.group(1) is not None
        end = match.end() if terminated else len(sql)
        raw = sql[start + 1 : end - 1] if terminated else sql[start + 1 :]
        self.literals[start] = (raw, "'")
        first = start - 1 if self._prefixed(start, pos) else start
        return (_Alt(end, "''", ((first, end, "s"),)),)

    def _prefixed(self, start: int, pos: int) -> bool:
        """Whether the quote at ``start`` opens an ``X'..'``, ``B'..'`` or ``N'..'`` string.

        The letter must start a token: it must not end a word, nor a number such as ``0.`` (``0.X`` is a
        number-like word to redaction).
        """
        sql = self.sql
        if start <= pos or sql[start - 1] not in "xXbBnN":
            return False
        if start < 2 or sql[start - 2] != ".":
            return start < 2 or not _is_word(sql[start - 2])
        run = start - 2
        while run > pos and (sql[run - 1] == "." or _is_word(sql[run - 1])):
            run -= 1
        return _NUMBER.search(sql, max(run - 1, pos), start - 1) is None

    def _double(self, start: int, pos: int) -> tuple[_Alt, ...]:
        sql = self.sql
        match = _DOUBLE[self.double_backslash].match(sql, start + 1)
        assert match is not None
        terminated = match.group(1) is not None
        end = match.end() if terminated else len(sql)
        raw = sql[start + 1 : end - 1] if terminated else sql[start + 1 :]
        self.literals[start] = (raw, '"')
        return (_Alt(end, _quoted_piece(raw, "''"), ((start, end, "s"),)),)

    def _backtick(self, start: int, pos: int) -> tuple[_Alt, ...]:
        sql = self.sql
        match = _BACKTICKED.match(sql, start + 1)
        assert match is not None
        if match.group(1) is None:  # unterminated: the rest is read as a literal, to be safe
            return (_Alt(len(sql), "``", ((start, len(sql), "s"),)),)
        return (_Alt(match.end(), _quoted_piece(sql[start + 1 : match.end() - 1], "``")),)

    def _bracket(self, start: int, pos: int) -> tuple[_Alt, ...]:
        """``[``: a MariaDB MSSQL-mode identifier, or an ordinary character."""
        sql = self.sql
        match = _BRACKETED.match(sql, start + 1)
        assert match is not None
        end = match.end()
        raw = sql[start + 1 : end - 1] if match.group(1) is not None else sql[start + 1 :]
        return (_Alt(end, _quoted_piece(raw, "[]")), _Alt(start + 1, "["))

    def _line_comment(self, start: int) -> _Alt:
        rest = _LINE_REST.match(self.sql, start + 1)
        assert rest is not None
        return _Alt(rest.end(), " ", ((start, rest.end(), "c"),))

    def _hash(self, start: int, pos: int) -> tuple[_Alt, ...]:
        return (self._line_comment(start),)

    def _dash(self, start: int, pos: int) -> tuple[_Alt, ...] | None:
        """``--``: a comment when followed by whitespace or a control character (maybe a non-ASCII one)."""
        after = self.sql[start + 2 : start + 3]
        if after <= " ":
            return (self._line_comment(start),)
        if after >= "\x7f":
            return (self._line_comment(start), _Alt(start + 1, "-"))
        return None

    def _slash(self, start: int, pos: int) -> tuple[_Alt, ...]:
        sql = self.sql
        marker = sql[start + 2 : start + 4]
        if marker.startswith("!"):
            return self._version(start, start + 3)
        if marker == "M!":  # MariaDB's; an ordinary comment to MySQL
            end = _comment_end(sql, start)
            return (*self._version(start, start + 4, mariadb_only=True), _Alt(end, " ", ((start, end, "c"),)))
        if marker.startswith("+"):
            alts = [_Alt(_comment_end(sql, start), " ")]
            alts += [alt for single in (True, False) if (alt := _hint_scan(sql, start, single)) is not None]
            alts.append(_Alt(start + 3, " "))  # as ordinary code, the way redaction always read hints
            return tuple(alts)
        end = _comment_end(sql, start)
        return (_Alt(end, " ", ((start, end, "c"),)),)

    def _version(self, start: int, body: int, mariadb_only: bool = False) -> tuple[_Alt, ...]:
        """``/*!`` or ``/*M!`` at ``start``: with a version number, code or a comment; without one, code.

        MySQL reads five digits and MariaDB six when there are six; ``mariadb_only`` says MariaDB alone
        reads this marker.
        """
        sql = self.sql
        if not _FIVE_DIGITS.match(sql, body):
            return (_Alt(body, " "),)
        six = sql[body + 5 : body + 6].isdigit() and sql[body + 5].isascii()
        alts = [] if mariadb_only and six else [_Alt(body + 5, " ", ((body, body + 5, "v"),))]
        if six:
            alts.append(_Alt(body + 6, " ", ((body, body + 6, "v"),)))
        alts.append(_Alt(_nested_comment_end(sql, body), " "))
        return tuple(alts)

    def _dollar(self, start: int, pos: int) -> tuple[_Alt, ...] | None:
        """``$tag$``: a MySQL 9 dollar-quoted string, or an identifier (MariaDB, MySQL 8)."""
        sql = self.sql
        if start > pos and sql[start - 1] in _ASCII_IDENT:
            return None  # inside an identifier
        tag = _DOLLAR_TAG.match(sql, start)
        if tag is None:
            return None
        close = sql.find(tag.group(), tag.end())
        end = len(sql) if close < 0 else close + len(tag.group())
        self.bodies.append(sql[tag.end() : end])
        ident = _IDENT_RUN.match(sql, start + 1)
        assert ident is not None
        return (_Alt(end, "''", ((start, end, "s"),)), _Alt(ident.end(), sql[start : ident.end()]))

    def values(self) -> list[str]:
        """The value of every string literal, as the server decodes it in this mode."""
        backslash = {"'": self.single_backslash, '"': self.double_backslash}
        return [_decode(raw, quote, backslash[quote]) for raw, quote in self.literals.values()]

    def readings(self, limit: int) -> list[str] | None:
        """The code of every reading (at most ``limit``, else None): literals as '', comments as spaces."""
        sql = self.sql
        done: list[str] = []
        stack: list[tuple[int, list[str]]] = [(0, [])]
        while stack:
            pos, pieces = stack.pop()
            while True:
                end, alts = self.nodes[pos]
                pieces.append(sql[pos:end])
                ways = list(dict.fromkeys((alt.to, alt.piece) for alt in alts))
                if not ways:
                    done.append("".join(pieces))
                    break
                stack += [(to, [*pieces, piece]) for to, piece in ways[1:]]
                if len(stack) + len(done) >= limit:
                    return None
                pos, piece = ways[0]
                pieces.append(piece)
        return done


_Handler = Callable[[_Reading, int, int], "tuple[_Alt, ...] | None"]
_HANDLERS: dict[str, _Handler] = {
    "'": _Reading._single,
    '"': _Reading._double,
    "`": _Reading._backtick,
    "[": _Reading._bracket,
    "#": _Reading._hash,
    "-": _Reading._dash,
    "/": _Reading._slash,
    "$": _Reading._dollar,
}


def _modes(sql: str) -> list[tuple[bool, bool]]:
    """The quoting modes that can read ``sql`` differently, as backslash rules for '...' and "...".

    The modes differ only where the text has a backslash, and ANSI_QUOTES differs from the default only in
    ``"..."``.
    """
    if "\\" not in sql:
        return [(True, True)]
    if '"' not in sql:
        return [(True, True), (False, False)]
    return [(True, True), (False, False), (True, False)]


def _readings(sql: str) -> list[_Reading]:
    """One _Reading per quoting mode that can read ``sql`` differently."""
    return [_Reading(sql, *mode) for mode in _modes(sql)]


def _set_names_secret(code: str) -> bool:
    """Whether lowercased ``code`` has a SET statement naming a credential (not the SET clause of an UPDATE)."""
    for match in _SET_SECRET.finditer(code):
        head = code[code.rfind(";", 0, match.start()) + 1 : match.start()]
        if not _SET_CLAUSE_OF.search(head):
            return True
    return False


def _is_secret(readings: Iterable[_Reading]) -> bool:
    """Whether some reading of the statement can carry a secret."""
    values: set[str] = set()
    codes: set[str] = set()
    for reading in readings:
        if any(_precheck(body) for body in reading.bodies):
            return True
        found = reading.readings(_MAX_READINGS)
        if found is None:
            return True
        values.update(value.lower() for value in reading.values())
        codes.update(code.lower() for code in found)
    if any(_SECRET_LITERAL.search(value) for value in values):
        return True
    dynamic = False
    for code in codes:
        if _SECRET_CODE.search(code) or _set_names_secret(code):
            return True
        dynamic = dynamic or bool(_SET_FIRST.match(code) or _DYNAMIC.search(code))
    return dynamic and any(_precheck(value) for value in values)


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans merged, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def mask_secrets(sql: str) -> str:
    """Replace every literal of a statement that can carry a secret with ``'<secret>'``; return others as is.

    Secret-bearing statements are CREATE/ALTER USER, IDENTIFIED BY|WITH|AS|VIA, PASSWORD() calls, SET
    PASSWORD and other SET statements naming a credential, GRANT ... IDENTIFIED BY, CHANGE MASTER|REPLICATION
    SOURCE, START SLAVE|REPLICA|GROUP_REPLICATION, CREATE/ALTER SERVER, encryption and keyring functions
    (AES_ENCRYPT, DES_DECRYPT, ENCODE, keyring_key_store...), FEDERATED/CONNECT connection strings, writes to
    the grant tables, credential-looking literals (``user:pw@`` URLs, ``password=``), and PREPARE, EXECUTE
    IMMEDIATE or SET statements whose literals hold such a statement. The decision and the literals follow
    every quoting mode at once (see the module docstring); over-masking is preferred to any leak. Strings,
    hex, bit and number literals are masked (a sign is kept); comments and identifiers are kept.
    """
    return mask_spans(sql, secret_spans(sql))


def secret_spans(sql: str) -> list[tuple[int, int]]:
    """The (start, end) offsets :func:`mask_secrets` masks, merged and in order; empty when ``sql`` cannot
    carry a secret."""
    if not _precheck(sql):
        return []
    readings = _readings(sql)
    if not _is_secret(readings):
        return []
    spans: set[tuple[int, int]] = set()
    for reading in readings:
        for start, end, kind in reading.spans:
            if kind == "s":
                spans.add((start, end))
            elif kind == "n":
                spans.add((start + 1, end) if sql[start] in "+-" else (start, end))
    return _merge(spans)


def mask_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with each of ``spans`` (offsets, possibly overlapping) replaced by ``'<secret>'``."""
    parts: list[str] = []
    last = 0
    for start, end in _merge(spans):
        parts += (text[last:start], _MASKED)
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _rd_fast_token(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "n":
        return _number_text(match.string, match.start())
    if kind == "c":
        return _comment_text(match.string, match.start(), match.end())
    if kind == "b" and match.group("bt") is not None:
        return match.group()
    return "?"


def _linear_spans(sql: str) -> set[_Span]:
    """The spans of every quoting mode's reading of a text without forks (one regex pass per mode)."""
    spans: set[_Span] = set()
    for mode in _modes(sql):
        for match in _linear_tokens(*mode).finditer(sql):
            kind = match.lastgroup
            assert kind is not None
            if kind != "b":
                spans.add((match.start(), match.end(), kind))
            elif match.group("bt") is None:  # unterminated: the rest is read as a literal, to be safe
                spans.add((match.start(), len(sql), "s"))
    return spans


def _redact_spans(sql: str, spans: Iterable[_Span]) -> str:
    """``sql`` with overlapping spans merged and redacted: a comment removed, a number or literal made ``?``."""
    groups: list[tuple[int, int, set[_Span]]] = []
    for span in sorted(spans):
        start, end, _ = span
        if groups and start < groups[-1][1]:
            first, last, members = groups[-1]
            members.add(span)
            groups[-1] = (first, max(last, end), members)
        else:
            groups.append((start, end, {span}))
    parts: list[str] = []
    last = 0
    for start, end, members in groups:
        parts.append(sql[last:start])
        if (start, end, "c") in members:
            parts.append(_comment_text(sql, start, end))
        elif len(members) == 1 and next(iter(members))[2] == "n":
            parts.append(_number_text(sql, start))
        else:
            parts.append("?")
        last = end
    parts.append(sql[last:])
    return "".join(parts)


def _redact_all_readings(sql: str) -> str:
    """redact_literals() by the general tokenizer: the spans of every reading of every mode, merged."""
    return _redact_spans(sql, {span for reading in _readings(sql) for span in reading.spans})


def redact_literals(sql: str) -> str:
    """Replace string and numeric literals with ``?`` and drop comments, keeping the rest of ``sql``.

    Every string (also ``X'..'``, ``B'..'``, ``N'..'`` and ``"..."``), hex, bit and number literal becomes
    ``?``, whatever the session's quoting mode (backslash escapes or not, ``ANSI_QUOTES``, version comments
    read as code or comment): where the modes disagree, what any of them reads as a literal is redacted.
    ``/* */``, ``#`` and ``-- `` comments are removed (a space is left between two words); optimizer hints
    and ``/*!...*/`` are kept, their literals redacted. Digits inside identifiers (``users_2009``,
    ``catch22``) and backticked identifiers are kept; a bare word that starts with a digit (``2fa``) is
    redacted as if it were a number, and a sign that is a binary operator is kept (``a-1`` -> ``a-?``).
    """
    if _FORKS.search(sql):
        return _redact_all_readings(sql)
    if "\\" in sql:
        return _redact_spans(sql, _linear_spans(sql))
    return _linear_tokens(False, False).sub(_rd_fast_token, sql)
