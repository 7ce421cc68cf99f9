"""SQL fingerprints compatible with Percona Toolkit's pt-fingerprint, plus literal scrubbing.

:func:`fingerprint` reduces a statement to its shape so that statements differing only in
literal values group together, following pt-fingerprint / pt-query-digest 3.2.1:

* ``administrator command: ...`` is returned as is; a mysqldump ``SELECT /*!40001 SQL_NO_CACHE */ *
  FROM`` becomes ``mysqldump``; a pt-table-checksum query (``/*db.tbl:1/2*/``) becomes
  ``percona-toolkit``; ``CALL proc(...)`` becomes ``call proc``; ``USE db`` becomes ``use ?``.
* ``/* */``, ``-- `` and ``#`` comments are removed; ``/*!...*/`` version comments are kept.
* Quoted strings and numbers become ``?``; so do digit runs inside identifiers together with the
  lowercase hex digits, ``x`` and ``b`` that follow them (``users_2009`` -> ``users_?``,
  ``fbc5e68a`` -> ``fbc?``).
* Whitespace runs collapse to one space, ASCII letters are lowercased (other text is kept
  verbatim, as pt-fingerprint works on bytes), ``null`` becomes ``?``.
* ``IN (?, ?)`` and ``VALUES (?), (?)`` collapse to ``in(?+)`` / ``values(?+)``; a multi-row
  ``VALUES`` list keeps only its first row; ``select ... UNION [ALL] select ...`` repeats of the same
  query become ``/*repeat union [all]*/``; ``LIMIT ?, ?`` / ``LIMIT ? OFFSET ?`` become ``limit ?``;
  ``ASC`` is dropped after ``ORDER BY``.

Deliberate differences from pt-fingerprint 3.2.1, where it is wrong:

* A sign is part of a number only when it is unary, that is when it directly precedes the number and
  follows an operator, ``(``, ``,``, a keyword such as ``AND`` or the start of the text:
  ``balance - 1.50`` -> ``balance - ?``, ``col1-1`` -> ``col?-?``, ``id = -7`` -> ``id = ?``
  (pt-fingerprint swallows the operator).
* Strings are tokenized properly, so ``'O''Reilly'`` and ``'it\\'s'`` are one ``?`` each and a quote
  inside a comment does not start a string.
* Hex and bit literals (``0x1F``, ``X'1F'``, ``b'01'``, ``0b01``, also ``N'..'``) become ``?``.
* Dots and letters before an embedded number survive: ``db1.t2`` -> ``db?.t?``, ``tab1`` -> ``tab?``.
* No trailing space is left behind by a ``--`` comment; ``--`` starts a comment only when followed by
  whitespace (as in MySQL); a comment between two words leaves a space instead of gluing them.
* ``CALL``, ``USE`` and the mysqldump marker are also recognised after leading comments or in any
  letter case; ``LIMIT`` is normalised everywhere, not only at its first occurrence; ``ASC`` is removed
  only as a whole word.
* Rows after the first in a multi-row ``VALUES`` list are dropped without truncating the rest of the
  statement (pt-fingerprint also cuts off ``ON DUPLICATE KEY UPDATE ...``).

:func:`redact_literals` keeps the statement text but replaces every string and numeric literal with
``?`` and removes comments (optimizer hints and ``/*!...*/`` are kept, their literals redacted).
Digits inside identifiers (``users_2009``, ``catch22``) and backticked identifiers are kept; a bare
word that starts with a digit (``2fa``) is redacted as if it were a number. Backslash escapes are
honoured inside strings (the MySQL default, not ``NO_BACKSLASH_ESCAPES``).

:func:`mask_password_statements` replaces every string literal and hex literal with ``'<secret>'`` in
``CREATE USER``, ``ALTER USER``, ``SET PASSWORD``, ``CHANGE MASTER|REPLICATION SOURCE TO`` /
``START SLAVE|REPLICA`` with a password, and any statement that has ``IDENTIFIED BY|WITH|AS`` or
``PASSWORD(...)`` outside string literals and comments; all other statements are returned unchanged.
"""

from __future__ import annotations

import functools
import re
import string

__all__ = ["fingerprint", "mask_password_statements", "redact_literals"]

_QUOTED_REST = r"""(?:[^'\\]++|\\.?|'')*+'?"""
_DQUOTED_REST = r"""(?:[^"\\]++|\\.?|"")*+"?"""
_STRING_REST = rf"""(?<=')(?:{_QUOTED_REST})|(?<=")(?:{_DQUOTED_REST})|(?<=[xXbBnN])(?<![\w$].)'(?:{_QUOTED_REST})"""
_COMMENT_REST = r"""(?<=/)\*(?!!).*?(?:\*/|\Z)|(?<=-)-(?=[\x00-\x20]|\Z)[^\r\n]*|(?<=\#)[^\r\n]*"""
_BACKTICK_REST = r"""(?<=`)(?:[^`]++|``)*+`"""
_NUMBER = r"""(?:0[xX][0-9a-fA-F]+|0[bB][01]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"""

# Every token pattern consumes one character from a small set first, so that the regex engine can
# skip ahead to candidate positions; the alternatives then look behind to see what was consumed.
_FP_TOKEN = re.compile(
    rf"""
    [-+.0-9'"`\#/xXbBnN]
    (?:
        (?P<e>(?<=[\w$][0-9])[0-9a-fxb]*)
        |(?P<n>
            (?<![\w$][0-9.])
            (?:
                (?<=0)[xX][0-9a-fA-F]+
                |(?<=0)[bB][01]+
                |(?<=[0-9])[0-9]*(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?
                |(?<=\.)[0-9]+(?:[eE][-+]?[0-9]+)?
            )[0-9a-fxb]*
            |(?<=[-+])(?=\.?[0-9]){_NUMBER}[0-9a-fxb]*
        )
        |(?P<s>{_STRING_REST})
        |(?P<c>{_COMMENT_REST})
        |(?P<b>{_BACKTICK_REST}(?:\.`(?:[^`]++|``)*+`)*+)
    )
    """,
    re.S | re.X,
)
_RD_TOKEN = re.compile(
    rf"""
    [-+.0-9'"`\#/xXbBnN]
    (?:
        (?P<n>
            (?<![\w$.][0-9.])(?:(?<=[0-9])|(?<=\.)[0-9])[\w$.]*+
            |(?<=[-+])(?=\.?[0-9])[.0-9][\w$.]*+
        )
        |(?P<s>{_STRING_REST})
        |(?P<b>{_BACKTICK_REST})
        |(?P<c>{_COMMENT_REST.replace("(?!!)", "(?![!+])")})
    )
    """,
    re.S | re.X,
)
_MASK_TOKEN = re.compile(
    rf"""
    [0'"`\#/xXbBnN-]
    (?:
        (?P<s>{_STRING_REST}|(?<=0)(?<![\w$.]0)[xX][0-9a-fA-F]++(?![\w$]))
        |(?P<b>{_BACKTICK_REST})
        |(?P<c>{_COMMENT_REST})
    )
    """,
    re.S | re.X,
)

_DIGITS = re.compile(r"[0-9][0-9a-fxb]*")
_WS = re.compile(r"[ \t\n\r\f\v](?:(?<=[\t\n\r\f\v])[ \t\n\r\f\v]*|[ \t\n\r\f\v]+)")
_NULL = re.compile(r"null(?<!\wnull)\b")
_ROW = r"\((?:[^()]++|\((?:[^()]++|\([^()]*+\))*+\))*+\)"
_VALUES_ROWS = re.compile(rf"(value(?<!\wvalue)s? ?{_ROW})(?: ?, ?{_ROW})+")
_LISTS = re.compile(r"(in(?<!\win)|value(?<!\wvalue)s?)(?:[ ,]*\([ ?,]*\))+")
_UNION = re.compile(r"\b(select .*?)(?:( union(?: all)?) \1)+")
_LIMIT = re.compile(r"limit(?<!\wlimit) \?(?:, ?\?| offset \?)?")
_ORDER_BY = re.compile(r"order by (?<!\worder by )")
_ASC = re.compile(r" asc(?![\w$])")
_USE = re.compile(r"use (?:`[^`]*`|\S+)")

_LEAD = r"(?:\s|/\*.*?\*/|(?:--[\x00-\x20]|\#)[^\n]*)*+"
_CALL = re.compile(rf"{_LEAD}call\s+((?:`[^`]*`|[^\s(`])+)\s*\(", re.I | re.S | re.X)
_MYSQLDUMP = re.compile(r"\s*select\s+/\*!40001\s+sql_no_cache\s*\*/\s*\*\s*from\s", re.I)
_PTOOL = re.compile(r"/\*\w+\.\w+:[0-9]/[0-9]\*/")

_SECRET_PRECHECK = re.compile(r"passw|identif|(?:create|alter)\s+user", re.I)
_SECRET_HEAD = re.compile(
    r"""\s*(?:/\*!\d*\s*)?(?:
        (?:create|alter)\s+user\b
        |set\s+password\b
        |(?:change\s+(?:master|replication\s+source)\s+to|start\s+(?:slave|replica))\b.*?password
    )""",
    re.I | re.S | re.X,
)
_SECRET_ANYWHERE = re.compile(r"\bidentified\s+(?:by|with|as)\b|\bpassword\s*\(", re.I)
_MASKED = "'<secret>'"

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_SPACE = frozenset(" \t\n\r\f\v")
_OPERAND_END = frozenset(")]}?'\"`")
_UNARY_KEYWORDS = (
    "all and any between by case default distinct div else elseif escape if in interval is like limit mod "
    "not offset on or regexp return rlike row select set some sounds then to until using value values when "
    "where while xor"
)
_UNARY_AFTER = frozenset(_UNARY_KEYWORDS.split())


def _ascii_lower(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


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


def _number(match: re.Match[str]) -> str:
    text = match.string
    start = match.start()
    sign = text[start]
    if sign in "+-" and not _sign_is_unary(text, start):
        return sign + "?"
    return "?"


def _comment(match: re.Match[str]) -> str:
    text = match.string
    start, end = match.span()
    if start > 0 and end < len(text) and _is_word(text[start - 1]) and _is_word(text[end]):
        return " "
    return ""


def _fp_token(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind in {"e", "s"}:
        return "?"
    if kind == "n":
        return _number(match)
    if kind == "c":
        return _comment(match)
    return _DIGITS.sub("?", match.group())


def _rd_token(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "n":
        return _number(match)
    if kind == "s":
        return "?"
    if kind == "c":
        return _comment(match)
    return match.group()


def _mask_token(match: re.Match[str]) -> str:
    return _MASKED if match.lastgroup == "s" else match.group()


def _code_token(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "s":
        return "''"
    if kind == "c":
        return " "
    return "``"


def _collapse(query: str) -> str:
    """Apply the pt-fingerprint rewrites that work on the lowercased, literal-free text."""
    if "null" in query:
        query = _NULL.sub("?", query)
    if "value" in query:
        query = _VALUES_ROWS.sub(r"\1", query)
    query = _LISTS.sub(r"\1(?+)", query)
    if "union" in query:
        query = _UNION.sub(r"\1 /*repeat\2*/", query)
    if "limit" in query:
        query = _LIMIT.sub("limit ?", query)
    order_by = _ORDER_BY.search(query)
    if order_by:
        start = order_by.end()
        query = query[:start] + _ASC.sub("", query[start:])
    return query


def _fingerprint_exact(sql: str) -> str:
    """Reference implementation of :func:`fingerprint`: one tokenizer pass with Python callbacks.

    :func:`fingerprint` falls back to it for the statements :func:`_fingerprint_fast` does not handle, and
    the tests use it as the oracle for the fast path.
    """
    if sql.startswith("administrator command: "):
        return sql
    if _MYSQLDUMP.match(sql):
        return "mysqldump"
    if "/*" in sql and _PTOOL.search(sql):
        return "percona-toolkit"
    call = _CALL.match(sql)
    if call:
        return "call " + _WS.sub(" ", _ascii_lower(call.group(1)))
    query = _WS.sub(" ", _FP_TOKEN.sub(_fp_token, sql)).strip(" ")
    query = _collapse(_ascii_lower(query))
    if query.startswith("use ") and _USE.fullmatch(query):
        return "use ?"
    return query


# Fast path. _fingerprint_exact makes one tokenizer pass that calls back into Python for every token,
# which dominates the cost of fingerprinting many distinct statements. The fast path gets the same result
# with a few regex substitutions whose replacements are plain strings, so that all the work stays in C:
#
# 1. strings become ``?`` (the same regex as the tokenizer's string alternative);
# 2. comments become a NUL placeholder; a placeholder between two word characters then becomes a space
#    and the others are dropped, as _comment() does;
# 3. whitespace is collapsed and stripped, and numbers become ``?`` with the same alternatives as the
#    tokenizer; whether a sign is unary is decided by lookbehinds instead of _sign_is_unary();
# 4. the text is lowercased and the pt-fingerprint rewrites are applied, as by _collapse().
#
# Running these steps one after another instead of in one tokenizer pass gives the same result only when
# no token hides the start of another and removing a comment does not change how its neighbours are
# tokenized. _FAST_SAFE checks that for statements with comments or backticks, and _fingerprint_fast falls
# back to _fingerprint_exact for the statements that fail it or that need a special case.

# A statement whose comments and backticked identifiers are simple enough for the fast path: no quote or
# backtick inside a comment, a backticked identifier holds no quote, comment marker, sign, dot or number (a
# digit must follow a word character there, as _DIGITS and the tokenizer then agree), a block comment is
# not preceded by a sign or dot, and no comment is followed by a sign, a dot or a prefixed string.
_FAST_SAFE = re.compile(
    r"""(?:
        [^'"`/\#-]++
        |'(?:[^'\\]++|\\.?|'')*+'?
        |"(?:[^"\\]++|\\.?|"")*+"?
        |(?<![-+.])(?>/\*(?!!)[^'"`]*?(?:\*/|\Z))(?![xXbBnN]')(?!\s*[-+.])
        |/(?!\*(?!!))
        |(?:--(?=[\x00-\x20]|\Z)|\#)[^\r\n'"`]*+(?![^\r\n])(?!\s*[-+.])
        |-
        |`(?:[^`'"\\\#/+.\-0-9]++|(?<=[\w$])[0-9]++)*+`
    )*+""",
    re.X,
)
# Statements that may need one of fingerprint's special cases (CALL, mysqldump) take the exact path.
_FAST_HEAD = re.compile(rf"{_LEAD}(?:call|select\s+/\*!40001)", re.I | re.S | re.X)
_FAST_STRING = re.compile(rf"""[xXbBnN'"](?:{_STRING_REST})""", re.S)
_FAST_COMMENT = re.compile(rf"[-/\#](?:{_COMMENT_REST})", re.S)
_FAST_GLUE = re.compile(r"(?<=[\w$])\x00(?=[\w$])")


def _unary_lookbehinds() -> str:
    """Lookbehinds, placed just after a sign, that hold when _sign_is_unary() would return True.

    The text is ASCII, whitespace is collapsed to single spaces and it does not start with a space.
    """
    other = r"[^\w$)\]}?'\"`\x20]"
    alternatives = [r"(?<![\s\S]{2})", rf"(?<={other}[-+])", rf"(?<={other}\x20[-+])"]
    by_length: dict[int, list[str]] = {}
    for word in sorted(_UNARY_AFTER):
        by_length.setdefault(len(word), []).append(word)
    for words in by_length.values():
        keyword = f"(?i:{'|'.join(words)})"
        for space in ("", r"\x20"):
            alternatives.append(rf"(?<={keyword}{space}[-+])(?<![\w$]{keyword}{space}[-+])")
    return "|".join(alternatives)


_FAST_NUMBER = re.compile(
    rf"""
    [-+.0-9]
    (?:
        (?<=[\w$][0-9])[0-9a-fxb]*
        |(?<![\w$][0-9.])
        (?:
            (?<=0)[xX][0-9a-fA-F]+
            |(?<=0)[bB][01]+
            |(?<=[0-9])[0-9]*(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?
            |(?<=\.)[0-9]+(?:[eE][-+]?[0-9]+)?
        )[0-9a-fxb]*
        |(?=\.?[0-9])(?:{_unary_lookbehinds()}){_NUMBER}[0-9a-fxb]*
    )
    """,
    re.X,
)

# _LISTS with the keyword matched by a lookbehind, so that the replacement is a plain string. The text
# between the keyword and the first ``(`` is one of _LIST_SEPARATORS unless it holds ",," or ", ,"; the
# placeholder in the replacement marks where the separator ends, and the separator is then removed.
_LIST_SEPARATORS = (" , ", ", ", " ,", ",", " ", "")


def _list_lookbehinds() -> str:
    by_length: dict[int, list[str]] = {}
    for keyword in ("in", "value", "values"):
        for separator in _LIST_SEPARATORS:
            head = keyword + separator + "("
            by_length.setdefault(len(head), []).append(re.escape(head))
    return "|".join(rf"(?<=\b(?:{'|'.join(heads)}))" for heads in by_length.values())


_FAST_LISTS = re.compile(rf"\((?:{_list_lookbehinds()})[ ?,]*\)(?:[ ,]*\([ ?,]*\))*")


def _collapse_fast(query: str) -> str:
    """Same as _collapse(query), faster for the common statements."""
    if "null" in query:
        query = _NULL.sub("?", query)
    if "value" in query:
        query = _VALUES_ROWS.sub(r"\1", query)
    if "(" in query:
        if ",," in query or ", ," in query:
            query = _LISTS.sub(r"\1(?+)", query)
        else:
            query = _FAST_LISTS.sub("\x00(?+)", query)
            if "\x00" in query:
                for separator in _LIST_SEPARATORS:
                    query = query.replace(separator + "\x00", "")
    if "union" in query:
        query = _UNION.sub(r"\1 /*repeat\2*/", query)
    if "limit" in query:
        query = _LIMIT.sub("limit ?", query)
    if "order by " in query:
        order_by = _ORDER_BY.search(query)
        if order_by:
            start = order_by.end()
            query = query[:start] + _ASC.sub("", query[start:])
    return query


def _fingerprint_fast(sql: str) -> str | None:
    """Return the same as _fingerprint_exact(sql), or None when ``sql`` needs the exact path."""
    if "\x00" in sql or sql.startswith("administrator command: ") or _FAST_HEAD.match(sql):
        return None
    has_comment = "/*" in sql or "#" in sql or "--" in sql
    if has_comment or "`" in sql:
        if not _FAST_SAFE.fullmatch(sql) or ("/*" in sql and _PTOOL.search(sql)):
            return None
    query = sql
    if "'" in query or '"' in query:
        query = _FAST_STRING.sub("?", query)
    if has_comment:
        query = _FAST_COMMENT.sub("\x00", query)
        if "\x00" in query:
            query = _FAST_GLUE.sub(" ", query).replace("\x00", "")
    if not query.isascii():
        return None
    if "  " in query or not query.isprintable():
        query = _WS.sub(" ", query)
    query = _FAST_NUMBER.sub("?", query.strip(" ")).lower()
    query = _collapse_fast(query)
    if query.startswith("use ") and _USE.fullmatch(query):
        return "use ?"
    return query


@functools.lru_cache(maxsize=65536)
def fingerprint(sql: str) -> str:
    """Return the pt-fingerprint style fingerprint of ``sql`` (see the module docstring)."""
    query = _fingerprint_fast(sql)
    return _fingerprint_exact(sql) if query is None else query


def redact_literals(sql: str) -> str:
    """Replace string and numeric literals with ``?`` and drop comments, keeping the rest of ``sql``."""
    return _RD_TOKEN.sub(_rd_token, sql)


def _is_secret_statement(sql: str) -> bool:
    code = _MASK_TOKEN.sub(_code_token, sql)
    return bool(_SECRET_HEAD.match(code) or _SECRET_ANYWHERE.search(code))


def mask_password_statements(sql: str) -> str:
    """Replace every string literal of a statement that can carry a password with ``'<secret>'``."""
    if not _SECRET_PRECHECK.search(sql) or not _is_secret_statement(sql):
        return sql
    return _MASK_TOKEN.sub(_mask_token, sql)
