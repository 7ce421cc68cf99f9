"""Tests for plsnap.fingerprint: pt-fingerprint compatible fingerprints and literal scrubbing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from plsnap.fingerprint import (
    _fingerprint_exact,
    _fingerprint_fast,
    fingerprint,
    mask_password_statements,
    redact_literals,
)

CASES_PATH = Path(__file__).resolve().parents[1] / "data" / "fingerprint_cases.tsv"  # copied from shared/reference
_UNESCAPES = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_ESCAPE = re.compile(r"\\(.)")


def _unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(0)), field)


def _reference_rows() -> list[Any]:
    if not CASES_PATH.is_file():
        return [pytest.param(None, None, id="reference-file-missing")]
    rows = []
    lines = CASES_PATH.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if (number == 1 and line.startswith("input\t")) or not line:
            continue
        sql, _pt_fingerprint, expected = (_unescape(field) for field in line.split("\t"))
        rows.append(pytest.param(sql, expected, id=f"line{number}"))
    return rows


@pytest.mark.parametrize(("sql", "expected"), _reference_rows())
def test_reference_cases(sql: str | None, expected: str | None) -> None:
    """fingerprint() returns the `expected` column of the shared reference TSV for every row."""
    assert sql is not None, f"reference file is missing: {CASES_PATH}"
    assert fingerprint(sql) == expected


def test_reference_file_is_present() -> None:
    """The shared reference TSV exists and holds cases besides its header."""
    assert CASES_PATH.is_file(), f"reference file is missing: {CASES_PATH}"
    assert len(CASES_PATH.read_text(encoding="utf-8").splitlines()) > 10


EXTRA_CASES = [
    pytest.param("SELECT /* multi\nline */ a FROM t WHERE b = 1 # note", "select a from t where b = ?", id="comments"),
    pytest.param("SELECT a\n   FROM t\r\n\tWHERE b = 'x'\n", "select a from t where b = ?", id="multi-line-whitespace"),
    pytest.param(
        "SELECT * FROM t WHERE h = 'a' -- it's a comment\nAND x = 2",
        "select * from t where h = ? and x = ?",
        id="quote-inside-line-comment",
    ),
    pytest.param("SELECT a/* c */FROM t", "select a from t", id="comment-between-words-is-a-space"),
    pytest.param("SELECT * FROM t WHERE id IN ( 1 , 2 ,3 )", "select * from t where id in(?+)", id="in-list"),
    pytest.param("SELECT * FROM t WHERE id IN (-1, -2.5, +3)", "select * from t where id in(?+)", id="in-signed"),
    pytest.param("INSERT INTO t VALUES (1,'a'), (2, 'b')", "insert into t values(?+)", id="values-list"),
    pytest.param(
        "INSERT INTO t (a, b) VALUES (1, NOW()), (2, NOW())",
        "insert into t (a, b) values (?, now())",
        id="values-first-row-only",
    ),
    pytest.param(
        "INSERT INTO t VALUES (1),(2) ON DUPLICATE KEY UPDATE a = VALUES(a)",
        "insert into t values(?+) on duplicate key update a = values(a)",
        id="values-keeps-tail",
    ),
    pytest.param(
        "SELECT * FROM log_2024_01, tab1, db1.t2 WHERE shard3 = 5",
        "select * from log_?_?, tab?, db?.t? where shard? = ?",
        id="numbers-in-identifiers",
    ),
    pytest.param(
        "SELECT * FROM t WHERE s = 'it\\'s' AND u = \"say \\\"hi\\\"\" AND v = 'O''Neil' AND w = 'a\\\\'",
        "select * from t where s = ? and u = ? and v = ? and w = ?",
        id="quoted-strings-with-escapes",
    ),
    pytest.param(
        "SELECT `Order`, `Weird 'name'` FROM `db`.`tbl_1` WHERE `a` = 'secret'",
        "select `order`, `weird 'name'` from `db`.`tbl_?` where `a` = ?",
        id="backticks",
    ),
    pytest.param("CALL db.proc_2(1, 'x', @out)", "call db.proc_2", id="call"),
    pytest.param("  /* lead */ CALL p()", "call p", id="call-after-comment"),
    pytest.param(
        "SELECT 'héllo wörld', name FROM ÄRGER_tbl WHERE emoji = '😀' AND 名前 = 1 AND x = '日本語'",
        "select ?, name from Ärger_tbl where emoji = ? and 名前 = ? and x = ?",
        id="multibyte-and-emoji",
    ),
    pytest.param("SELECT a - -5, b*-2, c+1, d = - 3", "select a - ?, b*?, c+?, d = - ?", id="negative-numbers"),
    pytest.param(
        "SELECT 1e10, 1.5E-3, .5e+2 FROM t WHERE x > 2.5e3", "select ?, ?, ? from t where x > ?", id="exponents"
    ),
    pytest.param(
        "SELECT * FROM t WHERE a = 0xDEADBEEF OR b = X'1F' OR c = b'101' OR d = 0b11",
        "select * from t where a = ? or b = ? or c = ? or d = ?",
        id="hex-and-bit-literals",
    ),
    pytest.param(
        "SELECT * FROM t WHERE a IS NOT NULL AND b <=> NULL", "select * from t where a is not ? and b <=> ?", id="null"
    ),
    pytest.param(
        "select a from t order by a asc, b desc, ascii_col ASC limit 5 offset 10",
        "select a from t order by a, b desc, ascii_col limit ?",
        id="order-by-asc-and-limit-offset",
    ),
    pytest.param("USE `my_db`", "use ?", id="use-backticked"),
    pytest.param("SELECT 1 UNION SELECT 1 UNION SELECT 1", "select ? /*repeat union*/", id="union"),
    pytest.param("/*!40101 SET NAMES utf8 */", "/*!? set names utf? */", id="version-comment-kept"),
    pytest.param("REPLACE /*db.tbl:3/3*/ INTO checksum.checksum", "percona-toolkit", id="pt-table-checksum"),
    pytest.param("", "", id="empty"),
    pytest.param(" \n\t ", "", id="blank"),
]


@pytest.mark.parametrize(("sql", "expected"), EXTRA_CASES)
def test_extra_cases(sql: str, expected: str) -> None:
    """fingerprint() matches hand-derived expectations for comments, lists, literals and identifiers."""
    assert fingerprint(sql) == expected


def test_fingerprint_cache_hit() -> None:
    """A repeated call with the same text is answered from the LRU cache."""
    sql = "SELECT cache_probe FROM t WHERE id = 918273645 -- test_fingerprint_cache_hit"
    first = fingerprint(sql)
    before = fingerprint.cache_info()
    assert fingerprint(sql) == first
    after = fingerprint.cache_info()
    assert after.hits == before.hits + 1
    assert after.misses == before.misses
    assert after.maxsize is not None and after.maxsize >= 65536


@given(st.text())
def test_fingerprint_never_raises(sql: str) -> None:
    """fingerprint() accepts any text, and its output can be fingerprinted again."""
    result = fingerprint(sql)
    assert isinstance(fingerprint(result), str)
    if not sql.startswith("administrator command: "):
        assert result == result.strip(" ")
        assert not set(result) & set("\t\n\r\f\v")


@given(st.text(alphabet="SELECTinvalu fromwhr'\"`\\-#/*!+0123456789xXbe.,()?\n"))
def test_fingerprint_and_redact_never_raise_on_sql_like_text(sql: str) -> None:
    """fingerprint() and redact_literals() accept text dense in quotes, comments and numbers."""
    assert isinstance(fingerprint(fingerprint(sql)), str)
    assert isinstance(redact_literals(sql), str)


REDACT_CASES = [
    pytest.param("SELECT * FROM users WHERE email = 'john.doe@example.com'", ["john.doe", "example.com"], id="email"),
    pytest.param(
        "INSERT INTO payments (user_id, card) VALUES (7, '4111-1111-1111-1111')", ["4111", "1111"], id="card-quoted"
    ),
    pytest.param("SELECT * FROM payments WHERE card = 4111 1111 1111 1111", ["4111", "1111"], id="card-bare"),
    pytest.param("SELECT * FROM payments WHERE card = 4111111111111111", ["4111"], id="card-one-number"),
    pytest.param("CREATE USER 'bob'@'%' IDENTIFIED BY 'secret'", ["secret", "bob"], id="identified-by"),
    pytest.param(
        'UPDATE t SET note = "it\\"s a \'secret\'" WHERE id = -42', ["secret", "42", "-"], id="escapes-and-negative"
    ),
    pytest.param("SELECT * FROM t WHERE name = 'O''Reilly' AND x = 1.5e-3", ["Reilly", "1.5", "5e"], id="doubled"),
    pytest.param(
        "SELECT * FROM t WHERE h = 0xDEADBEEF OR b = X'CAFE' OR c = b'1011' OR d = 0b1101",
        ["DEADBEEF", "CAFE", "1011", "1101", "0x", "0b"],
        id="hex-and-bits",
    ),
    pytest.param("/* user=alice@corp.example */ SELECT 1", ["alice", "corp"], id="comment"),
    pytest.param("SELECT 'a\\\\', 'top-secret'", ["top-secret", "a\\"], id="escaped-backslash"),
    pytest.param("SELECT * FROM t WHERE n = 'Zoë 😀 Müller'", ["Zoë", "Müller", "😀"], id="multibyte"),
    pytest.param("SELECT * FROM t WHERE n = 'unterminated secret", ["unterminated", "secret"], id="unterminated"),
]


@pytest.mark.parametrize(("sql", "secrets"), REDACT_CASES)
def test_redact_literals_removes_secrets(sql: str, secrets: list[str]) -> None:
    """redact_literals() leaves no part of a planted string or numeric literal in its output."""
    redacted = redact_literals(sql)
    assert "?" in redacted
    for secret in secrets:
        assert secret not in redacted


def test_redact_literals_keeps_the_rest() -> None:
    """redact_literals() keeps case, whitespace, backticked identifiers and digits inside identifiers."""
    sql = "SELECT `tbl_1`.a, `123`\n  FROM users_2009 WHERE id = -7 AND s = 'x' AND catch22 > 3.5"
    assert redact_literals(sql) == "SELECT `tbl_1`.a, `123`\n  FROM users_2009 WHERE id = ? AND s = ? AND catch22 > ?"


def test_redact_literals_keeps_binary_minus() -> None:
    """redact_literals() keeps a minus that is an operator and drops a sign that belongs to a number."""
    assert redact_literals("SELECT a-1, b - 2, c = -3") == "SELECT a-?, b - ?, c = ?"


_REDACT_PREFIX = "SELECT * FROM t WHERE a = '"
_REDACTED = "SELECT * FROM t WHERE a = ?"


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="'\""), min_size=3))
def test_redact_literals_property(text: str) -> None:
    """For any quote-free content, the quoted literal never survives redaction."""
    content = text.replace("\\", "")
    assume(len(content) >= 3)
    redacted = redact_literals(_REDACT_PREFIX + content + "'")
    assert redacted == _REDACTED
    assume(content not in _REDACTED)
    assert content not in redacted


MASK_CASES = [
    pytest.param("CREATE USER 'u'@'%' IDENTIFIED BY 'Pw-1a!x'", "Pw-1a!x", id="create-user"),
    pytest.param("ALTER USER 'app'@'10.0.0.%' IDENTIFIED BY 'N3w-pass'", "N3w-pass", id="alter-user"),
    pytest.param("SET PASSWORD FOR 'bob'@'localhost' = PASSWORD('hunter2')", "hunter2", id="set-password-for"),
    pytest.param("SET PASSWORD = 'hunter2'", "hunter2", id="set-password"),
    pytest.param("GRANT ALL PRIVILEGES ON db.* TO 'bob'@'%' IDENTIFIED BY 'hunter2'", "hunter2", id="grant"),
    pytest.param("create user bob identified with mysql_native_password by 'hunter2'", "hunter2", id="lower-with"),
    pytest.param("alter user bob identified with caching_sha2_password as '$A$005$hash'", "$A$005", id="lower-as"),
    pytest.param("set password for bob = password('hunter2')", "hunter2", id="lower-password-function"),
    pytest.param("/* admin tool */ CREATE USER 'bob' IDENTIFIED BY \"hunter2\"", "hunter2", id="leading-comment"),
    pytest.param("-- rotate\n  ALTER USER bob IDENTIFIED BY 'hunt\\'er2'", "hunt", id="leading-line-comment"),
    pytest.param("  \n\tSeT PaSsWoRd = 'hunter2'", "hunter2", id="mixed-case"),
    pytest.param(
        "CREATE USER 'bob'@'%' IDENTIFIED WITH caching_sha2_password AS 0x24412430303524", "2441", id="hex-hash"
    ),
    pytest.param("CHANGE MASTER TO MASTER_USER='repl', MASTER_PASSWORD='hunter2'", "hunter2", id="change-master"),
]


@pytest.mark.parametrize(("sql", "password"), MASK_CASES)
def test_mask_password_statements(sql: str, password: str) -> None:
    """mask_password_statements() replaces the password of a credential statement with '<secret>'."""
    masked = mask_password_statements(sql)
    assert password not in masked
    assert "'<secret>'" in masked


def test_mask_password_statements_exact() -> None:
    """mask_password_statements() replaces every string literal and keeps everything else."""
    assert (
        mask_password_statements("CREATE USER 'u'@'%' IDENTIFIED BY 'pw'")
        == "CREATE USER '<secret>'@'<secret>' IDENTIFIED BY '<secret>'"
    )
    assert (
        mask_password_statements("SET PASSWORD FOR `bob`@`%` = PASSWORD('pw') /* keep */")
        == "SET PASSWORD FOR `bob`@`%` = PASSWORD('<secret>') /* keep */"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM notes WHERE body = 'change your password; identified by: create user'",
        "SELECT password FROM users WHERE id = 7",
        "UPDATE users SET password = 'x' WHERE id = 1",
        "SELECT `password`, `user` FROM mysql.user WHERE note = \"set password = 'x'\"",
        "SELECT 1",
    ],
)
def test_mask_password_statements_leaves_other_statements(sql: str) -> None:
    """mask_password_statements() returns statements that set no credential unchanged."""
    assert mask_password_statements(sql) is sql


# The fast path of fingerprint() must agree with the reference implementation it falls back to.

_FAST_PATH_CASES = [
    "SELECT `users`.`id`, `users`.`email` FROM `users` WHERE `users`.`account_id` = 42 AND `users`.`status` = 'x1' "
    "ORDER BY `users`.`id` ASC LIMIT 20",
    "UPDATE orders SET status = 'shipped', updated_at = '2024-05-12 10:17:00' WHERE id = 123456789 AND version = 7",
    "INSERT INTO events_12 (user_id, kind, payload, ts) VALUES (1, 'a', NULL, NOW()), (2, 'b', NULL, NOW())",
    "SELECT o.id, SUM(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.region IN (1, 2) "
    "AND o.created_at >= NOW() - INTERVAL 14 DAY GROUP BY o.id",
    "/* app=web req=5e0a4c */ SELECT * FROM sessions WHERE token = 'it''s' AND expires > 123 LIMIT 1",
    "DELETE FROM cache_entries WHERE key_hash = 'a5e0' OR (expires_at < 99 AND shard = 3)",
    "SELECT a - -5, b*-2, c+1, d = - 3, e IN (-1, +2.5e-3, .5), f = 0x1F, g = X'1F' FROM t LIMIT 10, 20",
    "SELECT * FROM t WHERE a = 1 /* trailing */",
    "select name,   password from user\n   where id='12823' -- note\n AND x IN ( 1 , 2 ,3 )",
]


@pytest.mark.parametrize("sql", _FAST_PATH_CASES)
def test_fast_path_handles_common_statements(sql: str) -> None:
    """The fast path answers common statement shapes itself, with the reference implementation's result."""
    assert _fingerprint_fast(sql) == _fingerprint_exact(sql)


# Pieces of SQL-like statements; the escapes are a Kelvin sign, a long s and a dotted capital I.
_KEYWORDS = ["SELECT", "select", "FROM", "WHERE", "AND", "or", "NOT", "IN", "in", "VALUES", "value", "INSERT INTO"]
_KEYWORDS += ["SET", "ORDER BY", "order by", "LIMIT", "OFFSET", "ASC", "asc_col", "NULL", "null", "IS", "LIKE"]
_KEYWORDS += ["li\u212ae", "\u017felect", "\u0130n", "INTERVAL", "UNION", "UNION ALL", "CALL", "USE"]
_KEYWORDS += ["administrator command: ", "t", "o.id", "col_1", "$in", "x", "B", "n", "e", "now()", "é", "名前"]
_OPERATORS = ["=", "<", ">=", "<=>", "!=", "-", "+", "*", "/", ",", "(", ")", ";", ".", "?", "@v", "!", ":", "\\"]
_NUMBERS = ["0", "42", "-7", "+3", "1.5", ".5", "5.", "1e5", "1E-3", "2.5e+3", "0x1F", "0xab", "0X1", "0b101", "0B1"]
_NUMBERS += ["007", "12ab", "1f", "3x", "1.2.3", "-.5", "--5", "999999999999"]
_STRING_BODIES = ["", "a", "it''s", "it\\'s", "a\\\\", "#ff", "/* x */", "-- y\n", "`q`", "2024-05-01 10:00"]
_STRING_BODIES += ["é😀", "\\", "x\ny"]
_IDENTIFIERS = ["users", "tbl_1", "a b", "1x", "a.b", "a-b", "x'y", "a#b", "a/*b", "Order", "é", "a$1", "", "a``b"]
_COMMENTS = ["/* c */", "/*x*/", "/* it's */", "/*`*/", "/*+ hint */", "/*!40101 x */", "/*db.t:1/2*/"]
_COMMENTS += ["/* unterminated", "-- c\n", "--\tc\n", "# c\n", "#\n"]
_LISTS = ["IN (1, 2)", "IN(?, ?)", "VALUES (1, 'a'), (2, 'b')", "values()", "in , (1)", "in,,(2)", "LIMIT 3 OFFSET 4"]
_GAPS = [" ", " ", " ", "", "  ", "\n", "\t", " \n ", "\r\n", "\x0b", "\xa0"]

_sql_strings = st.builds(
    lambda prefix, quote, body: prefix + quote + body.replace(quote, quote * 2) + quote,
    st.sampled_from(["", "", "", "x", "X", "b", "N", "n"]),
    st.sampled_from(["'", "'", '"']),
    st.sampled_from(_STRING_BODIES),
)
_sql_pieces = st.one_of(
    st.sampled_from(_KEYWORDS),
    st.sampled_from(_OPERATORS),
    st.sampled_from(_NUMBERS),
    st.integers(min_value=0, max_value=10**12).map(str),
    _sql_strings,
    st.sampled_from(_IDENTIFIERS).map(lambda name: f"`{name}`"),
    st.sampled_from(_COMMENTS),
    st.sampled_from(_LISTS),
    st.text(alphabet="'\"`#/*-+.0123456789xXbBeE \n\x00", max_size=4),
)
_sql_statements = st.lists(st.tuples(_sql_pieces, st.sampled_from(_GAPS)), max_size=16).map(
    lambda parts: "".join(piece + gap for piece, gap in parts)
)


@settings(max_examples=2500, deadline=None)
@given(_sql_statements)
def test_fast_path_matches_exact_on_sql_like_statements(sql: str) -> None:
    """Whenever the fast path answers for an SQL-like statement, it agrees with the reference implementation."""
    fast = _fingerprint_fast(sql)
    exact = _fingerprint_exact(sql)
    event("fast path" if fast is not None else "exact path")
    assert fast is None or fast == exact
    assert fingerprint.__wrapped__(sql) == exact


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="SELECTinvalu fromwhrasc'\"`\\-#/*!+0123456789xXbe.,()?\n\t", max_size=60))
def test_fast_path_matches_exact_on_dense_text(sql: str) -> None:
    """On text dense in quotes, comment markers, signs and numbers, the fast path agrees or defers to the exact one."""
    fast = _fingerprint_fast(sql)
    event("fast path" if fast is not None else "exact path")
    assert fast is None or fast == _fingerprint_exact(sql)
