"""SQL fingerprints compatible with Percona Toolkit's pt-fingerprint (literal scrubbing lives in plsnap.masking).

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

:func:`mask_password_statements` and :func:`redact_literals` are re-exported from :mod:`plsnap.masking`
(``mask_password_statements`` is :func:`plsnap.masking.mask_secrets` under its former name), which masks
secrets and redacts literals correctly whatever the session's quoting mode (``NO_BACKSLASH_ESCAPES``,
``ANSI_QUOTES``, version comments).
"""

from __future__ import annotations

import functools
import re
import string

from plsnap.masking import mask_secrets as mask_password_statements
from plsnap.masking import redact_literals
from plsnap.secretwords import may_hold_secret

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


# Fast path. _fingerprint_exact makes one tokenizer pass that calls back into Python for every token, which
# dominates the cost of fingerprinting many distinct statements. _fingerprint_fast gets the same result with
# regex substitutions whose replacement is a plain string, so that the work stays in C:
#
# 1. _FAST_TOKEN turns strings and numbers into ``?`` with the alternatives of _FP_TOKEN, except that
#    lookbehinds decide whether a sign is unary, instead of _sign_is_unary();
# 2. _fast_finish() collapses whitespace, lowercases ASCII letters and applies the rewrites of _collapse()
#    (skipping those that cannot apply). Its input is the same for statements that differ only in their
#    literals, so it is cached.
#
# That is only right when the statement holds nothing that _FAST_TOKEN does not know about. _fast_finish()
# also reports what it finds that may need more work (_BACKTICKS to _EXACT below), and
# _fingerprint_fast_retry() does that work: backticked identifiers must pass _FAST_PLAIN_BACKTICKS or
# _FAST_BACKTICKS; comments are removed first, together with strings, by _STRING_OR_COMMENT (unless removing
# one would change how its neighbours are tokenized); X'..', B'..' and N'..' strings need
# _FAST_TOKEN_PREFIXED; a sign after several whitespace characters needs the whitespace collapsed first. A
# leading comment is simply cut off. Statements that may need a special case of fingerprint()
# (administrator commands, CALL, mysqldump, pt-table-checksum), statements with a NUL and whatever else the
# fast path cannot vouch for are left to _fingerprint_exact.

# How a statement that fingerprint() treats specially can start, besides whitespace and a SELECT.
_HEAD_START = "aCc/-#"
_FAST_HEAD = re.compile(rf"{_LEAD}(?:call|select\s+/\*!40001)", re.I | re.S | re.X)

# A statement without comments whose backticked identifiers hold no quote and no digit after a non-word
# character: _FAST_TOKEN then leaves them as the tokenizer does (replacing their digits as _DIGITS does).
# The backticks are paired in order, ignoring strings: a string holding an odd number of backticks would put
# a quote between paired backticks (the string's own closing quote, or its opening one), so the pairs are
# the identifiers, plus pieces of strings holding an even number of backticks. _FAST_PLAIN_BACKTICKS is a
# faster check for the common identifiers.
_FAST_PLAIN_BACKTICKS = re.compile(r"[^`]*+(?:`[a-zA-Z_][a-zA-Z0-9_$]*+`[^`]*+)*+")
_FAST_BACKTICKS = re.compile(r"""[^`]*+(?:`[^`'"0-9]*+(?:(?<=[\w$])[0-9]++[^`'"0-9]*+)*+`[^`]*+)*+""")
# Statements with backticks and comments must also have no quote or backtick inside a comment.
_FAST_BACKTICKS_AND_COMMENTS = re.compile(
    r"""(?:
        [^`'"/\#-]++
        |`(?:[^`'"0-9\#/-]++|-(?!-)|(?<=[\w$])[0-9]++)*+`
        |'(?:[^'\\]++|\\.?|'')*+'?
        |"(?:[^"\\]++|\\.?|"")*+"?
        |/\*(?!!)[^'"`]*?(?:\*/|\Z)
        |(?:--(?=[\x00-\x20]|\Z)|\#)[^\r\n'"`]*+(?![^\r\n])
        |-(?!-(?:[\x00-\x20]|\Z))
        |/(?!\*(?!!))
    )*+""",
    re.X,
)
_STRING_OR_COMMENT = re.compile(rf"""[xXbBnN'"/\#-](?:(?P<s>{_STRING_REST})|{_COMMENT_REST})""", re.S)
_SIGN_OR_DOT_AHEAD = re.compile(r"\s*(?:[-+]\.?[0-9]|\.)")


def _fast_string_or_comment(match: re.Match[str]) -> str:
    """Like _fp_token() for a string or a comment; NUL when removing the comment changes its neighbours."""
    if match.lastgroup == "s":
        return "?"
    text = match.string
    start, end = match.span()
    if (start > 0 and text[start - 1] in "-+.") or text.startswith("/*", end) or _SIGN_OR_DOT_AHEAD.match(text, end):
        return "\x00"
    return _comment(match)


def _ascii_ignore_case(word: str) -> str:
    """A pattern for ``word`` matching what str.lower() maps to it (re.I also matches a long s or a dotless i)."""
    kelvin = "\u212a"  # "\u212a".lower() == "k"
    return "".join(f"[{char}{char.upper()}{kelvin if char == 'k' else ''}]" for char in word)


def _unary_lookbehinds() -> str:
    """Lookbehinds, just after a sign, that hold when _sign_is_unary() would return True.

    They look back over at most one whitespace character, and assume that the text does not start with
    whitespace; _fast_finish() rejects the statements where a sign follows more whitespace.
    """
    space = r"[\x20\t\n\r\x0b\x0c]"
    other = r"[^\w$)\]}?'\"`\x20\t\n\r\x0b\x0c]"
    alternatives = [r"(?<![\s\S]{2})", rf"(?<={other}[-+])", rf"(?<={other}{space}[-+])"]
    by_length: dict[int, list[str]] = {}
    for word in sorted(_UNARY_AFTER):
        by_length.setdefault(len(word), []).append(_ascii_ignore_case(word))
    for words in by_length.values():
        keyword = f"(?:{'|'.join(words)})"
        for gap in ("", space):
            alternatives.append(rf"(?<={keyword}{gap}[-+])(?<![\w$]{keyword}{gap}[-+])")
    return "|".join(alternatives)


def _fast_token_pattern(prefixed: bool) -> str:
    """The string and number alternatives of _FP_TOKEN, as one branch per first character.

    When every branch starts with a literal character, the regex engine skips ahead to the next candidate
    position by itself, and rejects the branches of the other characters without evaluating them. Unless
    ``prefixed``, there are no branches for the (rare) ``X'..'``, ``B'..'`` and ``N'..'`` strings, which
    start with frequent letters, and the quote of such a string is left in place instead. (Quantifiers are
    possessive where the tokenizer never backtracks, and ``(?:x|)`` stands for ``(?:x)?``: both are faster.)
    """
    exponent = "(?:[eE][-+]?[0-9]++|)"
    tail = "[0-9a-fxb]*+"
    unary = _unary_lookbehinds()
    branches = []
    for digit in "0123456789":
        number = rf"[0-9]*+(?:\.[0-9]*+|){exponent}"
        if digit == "0":
            number = rf"(?:[xX][0-9a-fA-F]++|[bB][01]++|{number})"
        branches.append(rf"{digit}(?:(?<=[\w$]{digit}){tail}|{number}{tail})")
    branches += [
        rf"\.[0-9](?<![\w$]\.[0-9])[0-9]*+{exponent}{tail}",
        f'"{_DQUOTED_REST}',
        *(rf"\{sign}(?=\.?[0-9])(?:{unary}){_NUMBER}{tail}" for sign in "-+"),
    ]
    if prefixed:
        branches += [f"'{_QUOTED_REST}", *(f"{letter}'(?<![\\w$]{letter}'){_QUOTED_REST}" for letter in "xXbBnN")]
    else:
        branches.append(f"'(?:(?<![xXbBnN]')|(?<=[\\w$][xXbBnN]')){_QUOTED_REST}")
    return "|".join(branches)


_FAST_TOKEN = re.compile(_fast_token_pattern(prefixed=False), re.S)


@functools.cache
def _fast_token_prefixed() -> re.Pattern[str]:
    """_FAST_TOKEN with the branches of ``X'..'``, ``B'..'`` and ``N'..'`` strings (_FAST_TOKEN_PREFIXED in the
    comments), compiled when a statement first needs it: such strings are rare, and compiling costs ~20 ms."""
    return re.compile(_fast_token_pattern(prefixed=True), re.S)


# _LISTS with the keyword matched by a lookbehind, so that the replacement is a plain string. Unless the text
# holds ",," or ", ,", what lies between the keyword and the first ``(`` is one of _LIST_SEPARATORS; a NUL
# in the replacement marks where it ends, and it is removed afterwards.
_LIST_SEPARATORS = (" , ", ", ", " ,", ",", " ", "")


def _list_lookbehinds() -> str:
    by_length: dict[int, list[str]] = {}
    for keyword in ("in", "value", "values"):
        for separator in _LIST_SEPARATORS:
            head = keyword + separator + "("
            by_length.setdefault(len(head), []).append(re.escape(head))
    return "|".join(rf"(?<=\b(?:{'|'.join(heads)}))" for heads in by_length.values())


_FAST_LISTS = re.compile(rf"\((?<=[ ,nes]\()(?:{_list_lookbehinds()})[ ?,]*\)(?:[ ,]*\([ ?,]*\))*")


def _first_group(match: re.Match[str]) -> str:
    return match.group(1)


def _collapse_fast(query: str) -> str:
    """Return _collapse(query), skipping the rewrites that cannot apply."""
    if "null" in query:
        query = _NULL.sub("?", query)
    if "value" in query and (")," in query or ") ," in query):
        query = _VALUES_ROWS.sub(_first_group, query)
    if "(" in query:
        if ",," in query or ", ," in query:
            query = _LISTS.sub(r"\1(?+)", query)
        else:
            query = _FAST_LISTS.sub("\x00(?+)", query)
            if "\x00" in query:
                query = query.replace(" \x00", "\x00")
                if ",\x00" in query:
                    query = query.replace(",\x00", "\x00").replace(" \x00", "\x00")
                query = query.replace("\x00", "")
    if "union" in query:
        query = _UNION.sub(r"\1 /*repeat\2*/", query)
    if "limit ?" in query and ("limit ?," in query or "limit ? offset ?" in query):
        query = _LIMIT.sub("limit ?", query)
    if " asc" in query and "order by " in query:
        order_by = _ORDER_BY.search(query)
        if order_by:
            start = order_by.end()
            query = query[:start] + _ASC.sub("", query[start:])
    return query


_SPACES = " \t\n\r\x0b\x0c"
_COMMENT_START = re.compile(r"/\*(?!!)|--(?=[\x00-\x20]|\Z)|\#")
_SIGN_AFTER_SPACES = re.compile(r"[\x20\t\n\r\x0b\x0c]{2}[-+]\?")
# What _fast_finish() found in the output of _FAST_TOKEN, besides the fingerprint:
_READY = 0  # nothing: the fingerprint is right
_BACKTICKS = 1  # backticks: the fingerprint is right if the identifiers pass _FAST_(PLAIN_)BACKTICKS
_PREFIXED = 2  # a quote: the statement has an X'..', B'..' or N'..' string, _FAST_TOKEN_PREFIXED is needed
_COMMENTS = 3  # a comment marker: the statement may have comments, which must be removed first
_SPACES_FIRST = 4  # a sign after several whitespace characters: the whitespace must be collapsed first
_EXACT = 5  # a NUL: the exact path is needed


@functools.lru_cache(maxsize=8192)
def _fast_finish(tokenized: str) -> tuple[int, str]:
    """Return what _fingerprint_fast() must check, and the fingerprint for the output of _FAST_TOKEN.

    This is cached: statements that differ only in their literals share that output.
    """
    if ("/*" in tokenized or "#" in tokenized or "--" in tokenized) and _COMMENT_START.search(tokenized):
        return _COMMENTS, ""
    if "'" in tokenized:
        return _PREFIXED, ""
    if "\x00" in tokenized:
        return _EXACT, ""
    query = tokenized
    if "  " in query or "\n" in query or "\t" in query or "\r" in query or "\x0b" in query or "\x0c" in query:
        if _SIGN_AFTER_SPACES.search(query):
            return _SPACES_FIRST, ""
        query = _WS.sub(" ", query)
    query = _collapse_fast(query.lower() if query.isascii() else query.translate(_ASCII_LOWER))
    if query.startswith("use ") and _USE.fullmatch(query):
        query = "use ?"
    return (_BACKTICKS if "`" in tokenized else _READY), query


def _fingerprint_fast(sql: str) -> str | None:
    """Return _fingerprint_exact(sql), or None when ``sql`` needs the exact path."""
    if ":" in sql and "/*" in sql and _PTOOL.search(sql):
        return None
    first = sql[:1]
    query = sql
    special: object
    if first == "/" and sql.startswith("/*") and not sql.startswith("/*!"):
        # A leading comment is removed whatever it holds, and what follows is tokenized as if it came first.
        end = sql.find("*/", 2)
        query = sql[end + 2 :] if end >= 0 else ""
        special = _FAST_HEAD.match(query)
    elif first in "sS\u017f":  # only mysqldump's "SELECT /*!40001 SQL_NO_CACHE */ * FROM" is special
        special = "!" in sql and _FAST_HEAD.match(sql)
    else:
        special = (first in _HEAD_START or first.isspace()) and (
            sql.startswith("administrator command: ") or _FAST_HEAD.match(sql)
        )
    if special:
        return None
    query = query.strip(_SPACES)
    kind, result = _fast_finish(_FAST_TOKEN.sub("?", query))
    return result if kind == _READY else _fingerprint_fast_retry(sql, query, kind, result)


def _fingerprint_fast_retry(sql: str, query: str, kind: int, result: str) -> str | None:
    """_fingerprint_fast() for the statements that need more than _FAST_TOKEN (``kind`` says why)."""
    if kind in (_SPACES_FIRST, _PREFIXED):
        query = _WS.sub(" ", query)
        kind, result = _fast_finish(_fast_token_prefixed().sub("?", query))
    if kind == _BACKTICKS and (_FAST_PLAIN_BACKTICKS.fullmatch(query) or _FAST_BACKTICKS.fullmatch(query)):
        return result
    if kind == _READY:
        return result
    if kind == _EXACT or not ("/*" in sql or "#" in sql or "--" in sql):
        return None
    # The statement may have comments, which _FAST_TOKEN does not know: remove them (and strings) first.
    if "`" in sql and not _FAST_BACKTICKS_AND_COMMENTS.fullmatch(sql):
        return None
    query = _STRING_OR_COMMENT.sub(_fast_string_or_comment, sql)
    if "\x00" in query:
        return None
    query = _WS.sub(" ", query).strip(" ")
    kind, result = _fast_finish(_FAST_TOKEN.sub("?", query))
    return result if kind in (_READY, _BACKTICKS) else None


@functools.lru_cache(maxsize=65536)
def fingerprint(sql: str) -> str:
    """Return the pt-fingerprint style fingerprint of ``sql`` (see the module docstring). A statement that can
    carry a secret is fingerprinted with its literals masked first (:func:`plsnap.masking.mask_secrets`, which
    reads the quotes in every ``sql_mode``), so that no reading of its quotes leaves a secret in the fingerprint
    of a text an older or foreign writer stored in clear."""
    if may_hold_secret(sql):
        sql = mask_password_statements(sql)
    query = _fingerprint_fast(sql)
    return _fingerprint_exact(sql) if query is None else query
