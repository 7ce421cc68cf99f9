"""Tests for plsnap.masking: secrets masked and literals redacted whatever the session's quoting mode."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plsnap import fingerprint as fingerprint_module
from plsnap.masking import (
    _FORKS,
    _linear_spans,
    _linear_tokens,
    _precheck,
    _rd_fast_token,
    _redact_all_readings,
    _redact_spans,
    mask_secrets,
    redact_literals,
)

MASKED = "'<secret>'"
SECRET = "Hunter2-S3cret"

# How a session quotes: whether backslash escapes are on in '...' strings, and whether "..." is an identifier.
MODES = {
    "default": {"backslash": True, "ansi": False},
    "no_backslash_escapes": {"backslash": False, "ansi": False},
    "ansi_quotes": {"backslash": True, "ansi": True},
    "ansi_quotes_no_backslash_escapes": {"backslash": False, "ansi": True},
}


def quote(value: str, mode: str, doubled: bool = False) -> str:
    """``value`` as a '...' string literal of ``mode`` (escaping quotes with a backslash, or doubling them)."""
    if MODES[mode]["backslash"]:
        value = value.replace("\\", "\\\\")
        return "'" + value.replace("'", "''" if doubled else "\\'") + "'"
    return "'" + value.replace("'", "''") + "'"


def ident(name: str, mode: str) -> str:
    """``name`` as a quoted identifier of ``mode``."""
    return f'"{name}"' if MODES[mode]["ansi"] else f"`{name}`"


def decoy(mode: str) -> str:
    """A literal value that a tokenizer using the wrong backslash rules reads with the wrong length."""
    return "Dec0y-x\\" if not MODES[mode]["backslash"] else "Dec0y-o'k\\"


# (id, template, value): {s} is the literal holding the secret, whose value is ``value`` with {} replaced by
# the secret, or {q} by the secret as a literal (nested statements); {d} is a decoy literal, {i} an identifier.
FAMILIES = [
    ("create-user", "CREATE USER {i}@'%' IDENTIFIED BY {s}", "{}"),
    ("create-user-multi", "CREATE USER a IDENTIFIED BY {d}, b IDENTIFIED BY {s}", "{}"),
    ("create-user-if-not-exists", "CREATE USER IF NOT EXISTS {i}@'localhost' IDENTIFIED BY {s}", "{}"),
    ("alter-user", "ALTER USER {i}@'10.0.0.%' IDENTIFIED BY {s}", "{}"),
    ("alter-user-multi", "ALTER USER a IDENTIFIED BY {d}, {i} IDENTIFIED BY {s}", "{}"),
    ("identified-with-by", "CREATE USER u IDENTIFIED WITH caching_sha2_password BY {s}", "{}"),
    ("identified-with-as", "ALTER USER u IDENTIFIED WITH mysql_native_password AS {s}", "{}"),
    ("identified-via-ed25519", "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD({s})", "{}"),
    (
        "identified-via-or-unix-socket",
        "CREATE OR REPLACE USER u@localhost IDENTIFIED VIA ed25519 USING PASSWORD({s}) OR unix_socket",
        "{}",
    ),
    ("set-password-for-function", "SET PASSWORD FOR {i}@'%' = PASSWORD({s})", "{}"),
    ("set-password-for", "SET PASSWORD FOR u@localhost = {s}", "{}"),
    ("set-password", "SET PASSWORD = {s}", "{}"),
    ("password-function", "SELECT PASSWORD({s})", "{}"),
    ("old-password-function", "SELECT OLD_PASSWORD({d}), PASSWORD({s})", "{}"),
    ("grant-identified", "GRANT ALL PRIVILEGES ON db.* TO {i}@'%' IDENTIFIED BY {s}", "{}"),
    ("change-master", "CHANGE MASTER TO MASTER_HOST={d}, MASTER_USER='repl', MASTER_PASSWORD={s}", "{}"),
    ("change-master-named", "CHANGE MASTER 'm1' TO MASTER_PASSWORD={s}", "{}"),
    ("change-source", "CHANGE REPLICATION SOURCE TO SOURCE_USER={d}, SOURCE_PASSWORD={s}", "{}"),
    ("start-slave", "START SLAVE USER='repl' PASSWORD={s}", "{}"),
    ("start-replica", "START REPLICA USER={d} PASSWORD={s}", "{}"),
    ("create-server", "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST {d}, USER 'u', PASSWORD {s})", "{}"),
    ("alter-server", "ALTER SERVER s OPTIONS (USER {d}, PASSWORD {s})", "{}"),
    ("aes-encrypt", "SELECT AES_ENCRYPT({d}, {s})", "{}"),
    ("aes-decrypt", "SELECT AES_DECRYPT(col, {s}) FROM t WHERE id = 1", "{}"),
    ("aes-encrypt-key-first-arg-literal", "INSERT INTO t VALUES (AES_ENCRYPT({s}, 'key'))", "{}"),
    ("des-encrypt", "SELECT DES_ENCRYPT({d}, {s})", "{}"),
    ("des-decrypt", "SELECT DES_DECRYPT(col, {s}) FROM t", "{}"),
    ("encrypt", "SELECT ENCRYPT({d}, {s})", "{}"),
    ("encode", "SELECT ENCODE({d}, {s})", "{}"),
    ("decode", "SELECT DECODE(col, {s}) FROM t", "{}"),
    ("prepare-create-user", "PREPARE stmt FROM {s}", "CREATE USER u IDENTIFIED BY {q}"),
    ("prepare-set-password", "PREPARE stmt FROM {s}", "SET PASSWORD = {q}"),
    ("execute-immediate", "EXECUTE IMMEDIATE {s}", "ALTER USER u IDENTIFIED BY {q}"),
    ("execute-immediate-aes", "EXECUTE IMMEDIATE {s}", "SELECT AES_ENCRYPT('x', {q})"),
    ("federated-connection", "CREATE TABLE t (a INT) ENGINE=FEDERATED CONNECTION={s}", "mysql://app:{}@db1:3306/db/t"),
    ("federated-alter", "ALTER TABLE t CONNECTION = {s}", "mysql://app:{}@db1/db/t"),
    ("connect-option-list", "CREATE TABLE t ENGINE=CONNECT TABLE_TYPE=MYSQL OPTION_LIST={s}", "user=app,password={}"),
    ("wsrep-sst-auth", "SET GLOBAL wsrep_sst_auth = {s}", "sst:{}"),
    ("wsrep-sst-auth-sysvar", "SET @@global.wsrep_sst_auth={s}", "sst:{}"),
    ("keyring-key-store", "SELECT keyring_key_store('k1', 'AES', {s})", "{}"),
    ("keyring-key-generate", "SELECT keyring_key_generate({s}, 'AES', 32)", "{}"),
    ("mysql-user-authentication-string", "UPDATE mysql.user SET authentication_string = {s} WHERE User = 'u'", "{}"),
    ("mysql-user-password-column", "UPDATE mysql.user SET Password = {s} WHERE User = {d}", "{}"),
    ("mysql-global-priv", "UPDATE `mysql`.`global_priv` SET Priv = {s}", '{{"authentication_string":"{}"}}'),
    ("mixed-case", "CrEaTe UsEr u IdEnTiFiEd By {s}", "{}"),
    ("comment-between-keywords", "CREATE/**/USER u IDENTIFIED/* x */BY {s}", "{}"),
    ("line-comment-between-keywords", "ALTER USER u IDENTIFIED -- rotate\nBY {s}", "{}"),
    ("hash-comment-between-keywords", "ALTER USER u IDENTIFIED # it's\nBY {s}", "{}"),
    ("newlines-and-tabs", "create\tuser u\n  identified\n\tby\r\n{s}", "{}"),
    ("national-string", "CREATE USER u IDENTIFIED BY N{s}", "{}"),
    ("charset-introducer", "SET PASSWORD = _utf8mb4{s}", "{}"),
    ("version-comment", "/*!80000 CREATE USER u IDENTIFIED BY {s} */", "{}"),
    ("version-comment-inside", "CREATE USER u /*!80000 IDENTIFIED BY {s} */", "{}"),
    ("mariadb-version-comment", "/*M!100502 ALTER USER u IDENTIFIED BY {s} */", "{}"),
    ("leading-comments", "/* admin */ -- x\n# y\n  SET PASSWORD FOR u = {s}", "{}"),
    ("procedure-body", "CREATE PROCEDURE p() BEGIN CREATE USER u IDENTIFIED BY {s}; END", "{}"),
]
FAMILY_IDS = [family[0] for family in FAMILIES]


def render(template: str, value: str, mode: str, secret: str, doubled: bool = False) -> str:
    """The statement of a family with ``secret`` in it, quoted as ``mode`` quotes."""
    inner = value.replace("{q}", quote(secret, mode, doubled)) if "{q}" in value else value.format(secret)
    return template.format(
        s=quote(inner, mode, doubled), d=quote(decoy(mode), mode, doubled), i=ident("app_user", mode)
    )


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("family", "template", "value"), FAMILIES, ids=FAMILY_IDS)
def test_families_are_masked_in_every_mode(family: str, template: str, value: str, mode: str) -> None:
    """Each secret-bearing statement family has its secret (and every other literal) masked in every mode."""
    for doubled in (False, True):
        sql = render(template, value, mode, SECRET, doubled)
        masked = mask_secrets(sql)
        assert SECRET not in masked, sql
        assert "S3cret" not in masked, sql
        assert "Dec0y" not in masked, sql
        assert MASKED in masked, sql


@pytest.mark.parametrize(
    ("sql", "secret"),
    [
        pytest.param("SET PASSWORD = X'48756e746572325333637265'", "48756e746572", id="hex-string"),
        pytest.param("SET PASSWORD = x'48756e746572325333637265'", "48756e746572", id="hex-string-lower"),
        pytest.param("CREATE USER u IDENTIFIED WITH mysql_native_password AS 0x2A4142434445", "4142434445", id="0x"),
        pytest.param("SET GLOBAL wsrep_sst_auth = 0x7373743a70617373", "7373743a", id="0x-sysvar"),
        pytest.param("CREATE USER u IDENTIFIED BY b'0110100001101001'", "01101000", id="bit-string"),
        pytest.param("SELECT AES_ENCRYPT('data', 123456789)", "123456789", id="number-key"),
        pytest.param("SELECT AES_DECRYPT(c, -987654321) FROM t", "987654321", id="signed-number-key"),
        pytest.param("SELECT AES_ENCRYPT('data', /*!800001234567*/)", "234567", id="number-after-version"),
        pytest.param("SELECT AES_ENCRYPT('data', 0b1010101010)", "1010101010", id="0b"),
    ],
)
def test_hex_bit_and_number_literals_are_masked(sql: str, secret: str) -> None:
    """Hex, bit and number literals of secret-bearing statements are masked like strings."""
    masked = mask_secrets(sql)
    assert secret not in masked
    assert MASKED in masked


def test_review_leak_no_backslash_escapes_multi_user() -> None:
    """A backslash that ends a string under NO_BACKSLASH_ESCAPES cannot hide the next user's password."""
    sql = "CREATE USER a IDENTIFIED BY 'x\\', b IDENTIFIED BY 'secret2'"
    masked = mask_secrets(sql)
    assert "secret2" not in masked
    assert masked.startswith("CREATE USER a IDENTIFIED BY '<secret>'")


def test_review_leak_create_server() -> None:
    """CREATE SERVER ... OPTIONS (PASSWORD '...') has every option value masked."""
    sql = "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'h', USER 'u', PASSWORD 'pw')"
    assert mask_secrets(sql) == (
        "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST '<secret>', USER '<secret>', PASSWORD '<secret>')"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "PREPARE s FROM 'CREATE USER u IDENTIFIED BY ''pw-secret'''",
        "PREPARE s FROM 'CREATE USER u IDENTIFIED BY \\'pw-secret\\''",
        "EXECUTE IMMEDIATE 'CREATE USER u IDENTIFIED BY ''pw-secret'''",
        "EXECUTE IMMEDIATE CONCAT('CREATE USER u IDENTIFIED BY ', '''pw-secret''')",
        "SET @s = 'ALTER USER u IDENTIFIED BY ''pw-secret'''",
        "PREPARE s FROM '\\C\\R\\E\\A\\T\\E \\U\\S\\E\\R u \\I\\D\\E\\N\\T\\I\\F\\I\\E\\D BY ''pw-secret'''",
        "PREPARE s FROM \"SET PASSWORD = 'pw-secret'\"",
    ],
)
def test_review_leak_nested_statements(sql: str) -> None:
    """A secret-bearing statement nested in PREPARE, EXECUTE IMMEDIATE or SET @var text is masked."""
    masked = mask_secrets(sql)
    assert "pw-secret" not in masked
    assert MASKED in masked


def test_exact_masking_keeps_the_rest() -> None:
    """Masking replaces each literal with '<secret>' and keeps keywords, identifiers and comments byte for byte."""
    assert (
        mask_secrets("CREATE USER 'u'@'%' IDENTIFIED BY 'pw' /* note */ -- end")
        == "CREATE USER '<secret>'@'<secret>' IDENTIFIED BY '<secret>' /* note */ -- end"
    )
    assert mask_secrets("SET PASSWORD FOR `bob`@`%` = PASSWORD('pw')") == (
        "SET PASSWORD FOR `bob`@`%` = PASSWORD('<secret>')"
    )
    assert mask_secrets("SELECT AES_DECRYPT(c, 'k') FROM t WHERE id = -5") == (
        "SELECT AES_DECRYPT(c, '<secret>') FROM t WHERE id = -'<secret>'"
    )


@pytest.mark.parametrize(
    ("sql", "secret"),
    [
        pytest.param("CREATE USER [u'] IDENTIFIED BY 'bracket-pw'", "bracket-pw", id="mariadb-mssql-brackets"),
        pytest.param("SELECT $$ ' $$, AES_ENCRYPT('a', 'dollar-key')", "dollar-key", id="mysql9-dollar-quoted-string"),
        pytest.param(
            "SELECT /*+ SET_VAR(sort_buffer_size = 1) QB_NAME(`a'`) */ AES_ENCRYPT('a', 'hint-key')",
            "hint-key",
            id="quote-in-hint",
        ),
        pytest.param("/*!99999 ' */ /*!50000 CREATE USER u IDENTIFIED BY 'pw-99' */", "pw-99", id="future-version"),
        pytest.param("/*!99999 /* x */ ' */ CREATE USER u IDENTIFIED BY 'pw-nested'", "pw-nested", id="nested-comment"),
        pytest.param("/*M!999999 ' */ CREATE USER u IDENTIFIED BY 'pw-maria'", "pw-maria", id="mariadb-comment"),
        pytest.param("SELECT 1 --\x7f'\n, AES_ENCRYPT('a', 'dash-key')", "dash-key", id="dash-dash-del"),
        pytest.param("SELECT 1 # x\r'\n, AES_ENCRYPT('a', 'cr-key')", "cr-key", id="carriage-return-in-comment"),
        pytest.param('SELECT "a\\", AES_ENCRYPT(\'a\', "ansi-key")', "ansi-key", id="ansi-quotes-backslash"),
        pytest.param("SELECT `a'`, AES_ENCRYPT('a', 'tick-key')", "tick-key", id="quote-in-backticks"),
        pytest.param("SELECT 'a' /* ' */, AES_ENCRYPT('a', 'cmt-key')", "cmt-key", id="quote-in-comment"),
        pytest.param("SELECT `AES_ENCRYPT`('a', 'quoted-fn-key')", "quoted-fn-key", id="backticked-function"),
        pytest.param("SELECT \"AES_ENCRYPT\"('a', 'ansi-fn-key')", "ansi-fn-key", id="ansi-quoted-function"),
        pytest.param("CALL mysql.rds_set_external_master('h', 3306, 'repl', 'rds-pw', 'f', 4, 0)", "rds-pw", id="rds"),
        pytest.param('INSERT INTO t (cfg) VALUES (\'{"api_key": "k-123456"}\')', "k-123456", id="json-secret"),
        pytest.param("SELECT * FROM links WHERE url = 'https://bob:url-pw@example.com/'", "url-pw", id="url-creds"),
        pytest.param(
            'CREATE TABLE t (a INT) ENGINE=SPIDER COMMENT=\'srv "s1", password "spider-pw"\'',
            "spider-pw",
            id="spider-comment",
        ),
    ],
)
def test_mode_dependent_constructs_cannot_hide_a_secret(sql: str, secret: str) -> None:
    """Constructs that some server version or sql_mode reads differently never leave a secret in clear."""
    masked = mask_secrets(sql)
    assert secret not in masked
    assert MASKED in masked


def test_too_many_readings_mask_the_statement() -> None:
    """A candidate statement with more readings than can be checked one by one is masked, to be safe."""
    sql = "SELECT master_pos" + " /*!50000 , 'v' */" * 8
    masked = mask_secrets(sql)
    assert "'v'" not in masked
    assert masked.count(MASKED) == 8


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM t WHERE a = 'x'",
        "SELECT * FROM notes WHERE body = 'change your password; identified by: create user'",
        "SELECT password FROM users WHERE id = 7",
        "UPDATE users SET password = 'x' WHERE id = 1",
        "SELECT `password`, `user` FROM mysql.user WHERE note = \"set password = 'x'\"",
        "SELECT 1",
        "INSERT INTO t (a, b) VALUES (1, 'it\\'s'), (2, 'a\\\\b')",
        'SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t WHERE a = "x" /*!80000 AND b = 2 */',
        "SELECT $$x$$, [y], `z` FROM t WHERE c = 'd' -- done",
        "UPDATE accounts SET balance = balance - 1.50 WHERE user_id = 42",
        "SELECT * FROM t WHERE name LIKE 'a\\_b%' AND body = 'secretary note'",
        "/*!40101 SET NAMES utf8mb4 */",
        "DELETE FROM sessions WHERE expires < NOW() - INTERVAL 1 DAY",
        "",
    ],
)
def test_non_secret_statements_are_unchanged(sql: str) -> None:
    """Statements that carry no credential are returned as the very same object."""
    assert mask_secrets(sql) is sql


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM orders WHERE id = 42",
        "INSERT INTO events (user_id, kind, ts) VALUES (1, 'click', NOW())",
        "UPDATE users SET name = 'Ann', updated_at = NOW() WHERE id = 7",
        "SELECT o.id, SUM(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY o.id",
        "DELETE FROM cache WHERE k = 'a5e0' LIMIT 100",
        "BEGIN",
        "COMMIT",
    ],
)
def test_common_statements_skip_the_slow_path(sql: str) -> None:
    """The one-regex precheck rejects common statements, so they never reach the tokenizer."""
    assert not _precheck(sql)


def test_fingerprint_module_re_exports() -> None:
    """plsnap.fingerprint keeps exporting mask_password_statements and redact_literals from plsnap.masking."""
    assert fingerprint_module.mask_password_statements is mask_secrets
    assert fingerprint_module.redact_literals is redact_literals
    assert {"mask_password_statements", "redact_literals"} <= set(fingerprint_module.__all__)


# Property: a generated secret embedded in any family, quoted as a random mode quotes, never survives.

_SECRET_TEXT = st.text(
    alphabet=st.sampled_from(list("abcXYZ0123456789'\"\\@%_-:;/*!#$ ,()=`[]\n")), min_size=6, max_size=24
)


@settings(max_examples=400, deadline=None)
@given(
    secret=_SECRET_TEXT,
    family=st.sampled_from(FAMILIES),
    mode=st.sampled_from(list(MODES)),
    doubled=st.booleans(),
)
def test_generated_secrets_never_survive_masking(
    secret: str, family: tuple[str, str, str], mode: str, doubled: bool
) -> None:
    """For any secret quoted correctly for any mode, inside any family, the output never contains it."""
    _, template, value = family
    sql = render(template, value, mode, secret, doubled)
    skeleton = render(template, value, mode, "", doubled)
    assume(secret not in skeleton)
    # The output is made of pieces of the template and of the mask: a secret made of those is not a leak.
    assume(set(secret) - set(skeleton) - set(MASKED))
    assert secret not in mask_secrets(sql)


@given(st.text())
def test_mask_secrets_never_raises(sql: str) -> None:
    """mask_secrets() accepts any text."""
    assert isinstance(mask_secrets(sql), str)


@given(st.text(alphabet=st.sampled_from(list("CREATE USER identified by password('x') \\\"`/*!+-#$[]\n0123456789"))))
def test_mask_secrets_never_raises_on_sql_like_text(sql: str) -> None:
    """mask_secrets() accepts text dense in quotes, comments, version markers and keywords."""
    assert isinstance(mask_secrets(sql), str)


# redact_literals()

PLANTED = ["victim@example.com", "4111-1111-1111-1111"]


@pytest.mark.parametrize("mode", list(MODES))
def test_redact_literals_under_every_mode(mode: str) -> None:
    """A planted e-mail or card number in a literal never survives redaction, whatever the quoting mode."""
    for doubled in (False, True):
        for value in PLANTED:
            sql = f"SELECT {ident('c', mode)}, {quote(decoy(mode), mode, doubled)}, {quote(value, mode, doubled)} AS v"
            redacted = redact_literals(sql)
            assert value not in redacted, sql
            assert "?" in redacted


@pytest.mark.parametrize(
    ("sql", "secrets"),
    [
        pytest.param("SELECT 'a\\', 'victim@example.com'", ["victim@example.com"], id="no-backslash-escapes"),
        pytest.param("SELECT \"a\\\", 'victim@example.com'", ["victim@example.com"], id="ansi-quotes"),
        pytest.param("SELECT 'a\\'', 4111111111111111, 'b'", ["4111"], id="escaped-quote"),
        pytest.param("/*!99999 ' */ SELECT 'victim@example.com'", ["victim@example.com"], id="future-version"),
        pytest.param("SELECT [a'], 'victim@example.com'", ["victim@example.com"], id="mssql-brackets"),
        pytest.param("SELECT $$ ' $$, 'victim@example.com'", ["victim@example.com"], id="dollar-quote"),
        pytest.param("SELECT 1 # x\r'\n, 'victim@example.com'", ["victim@example.com"], id="carriage-return"),
        pytest.param("SELECT `a'`, 'victim@example.com' -- 4111", ["victim@example.com", "4111"], id="backticks"),
        pytest.param("SELECT /*+ QB_NAME(`*/`) */ 'victim@example.com'", ["victim@example.com"], id="hint"),
        pytest.param("SELECT 'unterminated \\' victim@example.com", ["victim@example.com"], id="unterminated"),
    ],
)
def test_redact_literals_leaves_nothing_in_clear(sql: str, secrets: list[str]) -> None:
    """Texts that quoting modes read differently keep no literal content in clear."""
    redacted = redact_literals(sql)
    for secret in secrets:
        assert secret not in redacted


def test_redact_literals_keeps_existing_behaviour() -> None:
    """Unambiguous texts are redacted as before: literals become ?, comments go, identifiers and signs stay."""
    assert redact_literals("SELECT a-1, b - 2, c = -3 FROM t_1 WHERE x = 'y' /* c */") == (
        "SELECT a-?, b - ?, c = ? FROM t_1 WHERE x = ? "
    )
    assert redact_literals("SELECT /*+ BKA(t) */ a FROM t WHERE b = 5 /*!80000 AND c = 'x' */") == (
        "SELECT /*+ BKA(t) */ a FROM t WHERE b = ? /*!? AND c = ? */"
    )
    assert redact_literals("SELECT a/**/FROM t") == "SELECT a FROM t"
    assert redact_literals("SELECT 'it''s', N'x', X'1F' FROM t WHERE `we'ird` = 2fa") == (
        "SELECT ?, ?, ? FROM t WHERE `we'ird` = ?"
    )


def test_redact_literals_line_comments_end_only_at_newline() -> None:
    """A # or -- comment runs to the newline, as in MySQL, not to a carriage return."""
    assert redact_literals("SELECT 1 # a\rb\nFROM t") == "SELECT ? \nFROM t"
    assert redact_literals("SELECT 1 -- a\rb\nFROM t") == "SELECT ? \nFROM t"


_UNAMBIGUOUS = st.text(alphabet=st.sampled_from(list("SELECTwhr xXbBnN'\"`#/*-+.,()?0123456789e\n\r\t\x00")))


@settings(max_examples=400)
@given(_UNAMBIGUOUS)
def test_redact_fast_path_matches_the_general_tokenizer(sql: str) -> None:
    """For texts every mode reads alike, the one-regex redaction equals the all-readings redaction."""
    assume("\\" not in sql and not _FORKS.search(sql))
    assert _linear_tokens(False, False).sub(_rd_fast_token, sql) == _redact_all_readings(sql)


_BACKSLASHED = st.text(alphabet=st.sampled_from(list("SELECTwhr xXbBnN'\"`#/*-+.,()?0123456789e\n\r\t\x00\\\\")))


@settings(max_examples=400)
@given(_BACKSLASHED)
def test_redact_one_pass_per_mode_matches_the_general_tokenizer(sql: str) -> None:
    """For texts whose modes differ only by backslashes, one regex pass per mode equals the general tokenizer."""
    assume(not _FORKS.search(sql))
    assert _redact_spans(sql, _linear_spans(sql)) == _redact_all_readings(sql)


@settings(max_examples=400, deadline=None)
@given(secret=_SECRET_TEXT, mode=st.sampled_from(list(MODES)), doubled=st.booleans(), before=st.booleans())
def test_generated_literals_never_survive_redaction(secret: str, mode: str, doubled: bool, before: bool) -> None:
    """For any literal quoted correctly for any mode, the redacted text never contains it."""
    literal = quote(secret, mode, doubled)
    other = quote(decoy(mode), mode, doubled)
    sql = f"SELECT {other}, {literal} FROM t" if before else f"SELECT {literal}, {other} FROM t"
    skeleton = sql.replace(literal, "?")
    assume(secret not in skeleton)
    assume(set(secret) - set(skeleton))
    assert secret not in redact_literals(sql)


@given(st.text())
def test_redact_literals_never_raises(sql: str) -> None:
    """redact_literals() accepts any text."""
    assert isinstance(redact_literals(sql), str)


def test_word_classes_are_the_unicode_ranges_they_replace() -> None:
    """The negated ASCII classes of the tokenizer match exactly what the ranges up to U+10FFFF matched."""
    import re

    pairs = [
        (r"[0-9A-Za-z_$\u0080-\U0010ffff]", r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"),
        (r"[0-9A-Za-z_\u0080-\U0010ffff]", r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"),
        (r"[\x7f-\U0010ffff]", r"[^\x00-\x7e]"),
    ]
    points = [*range(0x3000), 0xD7FF, 0xE000, 0xFEFF, 0xFFFF, 0x10000, 0x1F600, 0x10FFFF]
    for old, new in pairs:
        before, after = re.compile(old), re.compile(new)
        assert [cp for cp in points if bool(before.fullmatch(chr(cp))) != bool(after.fullmatch(chr(cp)))] == []
