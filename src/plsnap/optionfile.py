"""Reading a MySQL option file (``~/.my.cnf``) the way the ``mysql`` client does, without ever showing its
content.

Only the ``[client]`` group is used (as PyMySQL and the MySQL clients do). Supported: ``key=value`` and bare
``key`` lines, ``#``/``;`` comment lines, ``#`` comments after an unquoted value, single or double quotes
around a value with the client's escapes (``\\n \\t \\r \\b \\s \\\\``), dashes and underscores being the same
in names, ``!include FILE`` and ``!includedir DIR`` (``*.cnf`` files, sorted). Errors name the file and the
line number, never the line: an option file holds a password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from plsnap.errors import ConfigError
from plsnap.smallfile import read_capped

MAX_OPTION_FILE_BYTES = 1 * 2**20
MAX_INCLUDE_DEPTH = 10
GROUP = "client"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "s": " ", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """The ``[client]`` values plsnap uses; empty strings mean "not set". ``password`` is None when unset."""

    user: str = ""
    password: str | None = field(default=None, repr=False)
    host: str = ""
    port: int | None = None
    socket: str = ""
    ssl_ca: str = ""
    ssl_cert: str = ""
    ssl_key: str = ""


def read_client_options(path: Path) -> ClientOptions:
    """The ``[client]`` options of ``path`` (and the files it includes); ConfigError when it cannot be read."""
    values: dict[str, str] = {}
    _read(path, values, depth=0)
    port: int | None = None
    if values.get("port"):
        try:
            port = int(values["port"])
        except ValueError:
            raise ConfigError(f"{path}: [client] port is not a number") from None
        if not 0 < port < 65536:
            raise ConfigError(f"{path}: [client] port is out of range")
    return ClientOptions(
        user=values.get("user", ""),
        password=values.get("password"),
        host=values.get("host", ""),
        port=port,
        socket=values.get("socket", ""),
        ssl_ca=values.get("ssl_ca", ""),
        ssl_cert=values.get("ssl_cert", ""),
        ssl_key=values.get("ssl_key", ""),
    )


def _read(path: Path, values: dict[str, str], depth: int) -> None:
    if depth > MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{path}: !include nested more than {MAX_INCLUDE_DEPTH} levels deep")
    try:
        raw, _ = read_capped(path, MAX_OPTION_FILE_BYTES)
    except OSError as exc:
        raise ConfigError(f"MySQL option file {path} cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_OPTION_FILE_BYTES:
        raise ConfigError(f"MySQL option file {path} is larger than {MAX_OPTION_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"MySQL option file {path}: line {bad_line} is not UTF-8 text") from None
    group: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("!"):
            _directive(path, number, stripped, values, depth)
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise ConfigError(f"MySQL option file {path}: line {number} is not a valid group header")
            group = stripped[1:-1].strip().lower()
            continue
        if group is None:
            raise ConfigError(
                f"MySQL option file {path}: line {number} is outside any [group] (the line is not shown: it may "
                "hold a password)"
            )
        if group != GROUP:
            continue
        key, sep, value = stripped.partition("=")
        name = key.strip().lower().replace("-", "_")
        if not name:
            raise ConfigError(f"MySQL option file {path}: line {number} has no option name")
        values[name] = _value(path, number, value) if sep else ""


def _directive(path: Path, number: int, line: str, values: dict[str, str], depth: int) -> None:
    word, _, argument = line.partition(" ")
    target = Path(argument.strip()).expanduser()
    if not target.is_absolute():
        target = path.parent / target
    if word == "!include":
        _read(target, values, depth + 1)
    elif word == "!includedir":
        if target.is_dir():
            for child in sorted(target.glob("*.cnf")):
                _read(child, values, depth + 1)
    else:
        raise ConfigError(f"MySQL option file {path}: line {number} has an unknown directive")


def _value(path: Path, number: int, raw: str) -> str:
    """An option value: quotes removed with escapes applied, or an unquoted value up to a ``#`` comment."""
    text = raw.strip()
    if text[:1] in ("'", '"'):
        quote = text[0]
        out: list[str] = []
        index = 1
        while index < len(text):
            char = text[index]
            if char == "\\" and index + 1 < len(text):
                out.append(_ESCAPES.get(text[index + 1], "\\" + text[index + 1]))
                index += 2
                continue
            if char == quote:
                rest = text[index + 1 :].strip()
                if rest and not rest.startswith("#"):
                    raise ConfigError(f"MySQL option file {path}: line {number} has text after a quoted value")
                return "".join(out)
            out.append(char)
            index += 1
        raise ConfigError(f"MySQL option file {path}: line {number} has an unterminated quote")
    comment = text.find("#")
    if comment >= 0:
        text = text[:comment]
    return text.strip()
