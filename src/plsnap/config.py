"""Configuration: TOML file, overridden by ``PLSNAP_<SECTION>_<KEY>`` environment variables, overridden by
command-line values, validated into frozen dataclasses.

Every error names the file (or variable), the key and what is allowed. Only the CLI and the daemon call
:func:`load_config`. Passwords are never a config value or a command-line value: see :func:`resolve_password`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from plsnap.archive.layout import validate_instance
from plsnap.errors import ConfigError
from plsnap.units import parse_duration, parse_size

ENV_PREFIX = "PLSNAP_"
PASSWORD_ENV = "PLSNAP_MYSQL_PASSWORD"  # noqa: S105
CONFIG_ENV = "PLSNAP_CONFIG"
DEFAULT_CONFIG_PATH = Path("/etc/plsnap/plsnap.toml")
SOURCES = ("auto", "show", "information_schema", "performance_schema")
SSL_MODES = ("disabled", "preferred", "required", "verify_ca", "verify_identity")
REDACT_MODES = ("none", "literals", "full")
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class MinFree:
    """A free-space floor: ``bytes`` absolute, or ``percent`` of the filesystem."""

    bytes: int | None = None
    percent: float | None = None

    def required(self, total_bytes: int) -> int:
        """The floor in bytes for a filesystem of ``total_bytes``."""
        if self.percent is not None:
            return int(total_bytes * self.percent / 100.0)
        return self.bytes or 0

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.bytes)


@dataclass(frozen=True, slots=True)
class MysqlConfig:
    """How to reach the server. Times in seconds. Empty strings mean "not set"."""

    host: str = ""
    port: int = 3306
    socket: str = ""
    user: str = ""
    password_file: str = ""
    password_credential: str = "mysql-password"  # noqa: S105
    defaults_file: str = ""
    ssl_mode: str = "preferred"
    ssl_ca: str = ""
    ssl_cert: str = ""
    ssl_key: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    write_timeout: float = 10.0
    statement_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """What to sample and how often (``interval`` in seconds)."""

    interval: float = 60.0
    source: str = "auto"
    max_info_bytes: int = 65536
    include_idle: bool = True
    redact: str = "none"
    locks: bool = True


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    """Where and how snapshots are stored."""

    data_dir: str = ""
    instance: str = ""
    level: int = 3
    fsync: bool = True


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """Oldest-first retention. ``max_age`` and ``schedule`` in seconds; ``max_bytes`` 0 means no limit."""

    max_age: float = 7 * 86400.0
    max_bytes: int = 0
    min_free: MinFree | None = None
    schedule: float = 86400.0


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Log rendering: ``auto`` is JSON unless stdout is a terminal."""

    format: str = "auto"
    level: str = "info"


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus and health endpoint (``listen`` as ``host:port``, empty = off); ``stall_after`` in seconds."""

    listen: str = ""
    heartbeat_file: str = ""
    stall_after: float = 0.0


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration; ``path`` is the file it came from, if any."""

    mysql: MysqlConfig = MysqlConfig()
    capture: CaptureConfig = CaptureConfig()
    archive: ArchiveConfig = ArchiveConfig()
    retention: RetentionConfig = RetentionConfig()
    log: LogConfig = LogConfig()
    metrics: MetricsConfig = MetricsConfig()
    path: Path | None = None

    @property
    def data_dir(self) -> Path:
        """The archive root: configured, else ``$STATE_DIRECTORY``, else /var/lib/plsnap (root) or XDG state."""
        if self.archive.data_dir:
            return Path(self.archive.data_dir).expanduser()
        return default_data_dir()

    @property
    def instance(self) -> str:
        """The instance name used for writing."""
        return self.archive.instance or "default"

    @property
    def instance_dir(self) -> Path:
        """``<data_dir>/<instance>``, where the daemon writes."""
        return self.data_dir / self.instance

    @property
    def heartbeat_path(self) -> Path:
        """The file the daemon touches after each capture attempt (read by ``plsnap health``)."""
        if self.metrics.heartbeat_file:
            return Path(self.metrics.heartbeat_file).expanduser()
        return self.instance_dir / ".plsnap.heartbeat"

    @property
    def stall_seconds(self) -> float:
        """How old the last capture attempt may be before health reports a stall (seconds)."""
        return self.metrics.stall_after or max(3 * self.capture.interval, 30.0)


def default_data_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd), /var/lib/plsnap for root, else ``$XDG_STATE_HOME/plsnap``."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/plsnap")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "plsnap"


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected an integer from {low} to {high}")
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}, got {value}")
        return value

    return parse


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
    }:
        return value.strip().lower() in {"1", "true", "yes", "on"}
    raise ValueError("expected true or false")


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value.strip().lower()

    return parse


def _duration(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        seconds = parse_duration(value)
        if not low <= seconds <= high:
            raise ValueError(f"expected a duration from {low:g}s to {high:g}s, got {seconds:g}s")
        return seconds

    return parse


def _size(value: Any) -> int:
    if value in ("", 0, "0"):
        return 0
    return parse_size(value)


def _min_free(value: Any) -> MinFree | None:
    if value in ("", 0, "0"):
        return None
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            percent = float(value.strip()[:-1])
        except ValueError:
            raise ValueError("expected a percentage such as 5% or a size such as 2GB") from None
        if not 0 < percent < 100:
            raise ValueError("a percentage must be between 0% and 100%")
        return MinFree(percent=percent)
    return MinFree(bytes=parse_size(value))


def _instance(value: Any) -> str:
    text = _text(value)
    if text:
        try:
            validate_instance(text)
        except ConfigError:
            raise ValueError("expected 1-128 characters of A-Z a-z 0-9 . _ -") from None
    return text


def _listen(value: Any) -> str:
    text = _text(value).strip()
    if text:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port such as 127.0.0.1:9187")
        del host
    return text


Parser = Callable[[Any], Any]
SCHEMA: dict[str, tuple[type[Any], dict[str, Parser]]] = {
    "mysql": (
        MysqlConfig,
        {
            "host": _text,
            "port": _integer(1, 65535),
            "socket": _text,
            "user": _text,
            "password_file": _text,
            "password_credential": _text,
            "defaults_file": _text,
            "ssl_mode": _choice(*SSL_MODES),
            "ssl_ca": _text,
            "ssl_cert": _text,
            "ssl_key": _text,
            "connect_timeout": _duration(0.1, 600),
            "read_timeout": _duration(0.1, 3600),
            "write_timeout": _duration(0.1, 3600),
            "statement_timeout": _duration(0, 3600),
        },
    ),
    "capture": (
        CaptureConfig,
        {
            "interval": _duration(0.1, 86400),
            "source": _choice(*SOURCES),
            "max_info_bytes": _integer(64, 64 * 2**20),
            "include_idle": _boolean,
            "redact": _choice(*REDACT_MODES),
            "locks": _boolean,
        },
    ),
    "archive": (
        ArchiveConfig,
        {"data_dir": _text, "instance": _instance, "level": _integer(1, 19), "fsync": _boolean},
    ),
    "retention": (
        RetentionConfig,
        {
            "max_age": _duration(3600, 10 * 365 * 86400),
            "max_bytes": _size,
            "min_free": _min_free,
            "schedule": _duration(60, 365 * 86400),
        },
    ),
    "log": (LogConfig, {"format": _choice(*LOG_FORMATS), "level": _choice(*LOG_LEVELS)}),
    "metrics": (
        MetricsConfig,
        {"listen": _listen, "heartbeat_file": _text, "stall_after": _duration(0, 86400)},
    ),
}
ENV_NAMES = {
    f"{ENV_PREFIX}{section.upper()}_{key.upper()}": (section, key)
    for section, (_, keys) in SCHEMA.items()
    for key in keys
}


def find_config_path(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read: ``-c``, else ``$PLSNAP_CONFIG``, else /etc/plsnap/plsnap.toml if it exists."""
    if explicit:
        return Path(explicit).expanduser()
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Read ``path`` (may be None), apply environment and ``overrides`` ({section: {key: value}}), validate."""
    environ = os.environ if environ is None else environ
    raw: dict[str, dict[str, tuple[Any, str]]] = {section: {} for section in SCHEMA}
    if path is not None:
        for section, key, value in _read_toml(path):
            raw[section][key] = (value, f"{path}: [{section}] {key}")
    for name, value in environ.items():
        if name in ENV_NAMES:
            section, key = ENV_NAMES[name]
            raw[section][key] = (value, f"environment variable {name}")
        elif name.startswith(ENV_PREFIX) and name not in {PASSWORD_ENV, CONFIG_ENV} and "_" in name[7:]:
            raise ConfigError(f"unknown environment variable {name} (known: PLSNAP_<SECTION>_<KEY>, see --help)")
    for section, section_values in (overrides or {}).items():
        for key, value in section_values.items():
            if value is not None:
                raw[section][key] = (value, f"command-line option for [{section}] {key}")
    built: dict[str, Any] = {}
    for section, (cls, parsers) in SCHEMA.items():
        values: dict[str, Any] = {}
        for key, (value, origin) in raw[section].items():
            try:
                values[key] = parsers[key](value)
            except ValueError as exc:
                raise ConfigError(f"{origin}: {exc}") from None
        built[section] = cls(**values)
    config = Config(**built, path=path)
    _check_consistency(config)
    return config


def _read_toml(path: Path) -> list[tuple[str, str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    items: list[tuple[str, str, Any]] = []
    for section, table in data.items():
        if section not in SCHEMA:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(SCHEMA)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a table ([{section}])")
        known = SCHEMA[section][1]
        for key, value in table.items():
            if key not in known:
                if section == "mysql" and key == "password":
                    raise ConfigError(
                        f"{path}: [mysql] password is not accepted in the config; use password_file, "
                        f"a systemd credential, {PASSWORD_ENV} or a MySQL option file"
                    )
                raise ConfigError(f"{path}: unknown key [{section}] {key} (known: {', '.join(known)})")
            items.append((section, key, value))
    return items


def _check_consistency(config: Config) -> None:
    mysql = config.mysql
    if mysql.ssl_mode in ("verify_ca", "verify_identity") and not mysql.ssl_ca:
        raise ConfigError(f"[mysql] ssl_mode = {mysql.ssl_mode} needs [mysql] ssl_ca (the CA certificate file)")
    if bool(mysql.ssl_cert) != bool(mysql.ssl_key):
        raise ConfigError("[mysql] ssl_cert and ssl_key must be set together")


def with_overrides(config: Config, **sections: Mapping[str, Any]) -> Config:
    """A copy of ``config`` with some values replaced (already-parsed values; used by tests and the daemon)."""
    updated: dict[str, Any] = {}
    for section, values in sections.items():
        updated[section] = replace(getattr(config, section), **values)
    return replace(config, **updated)


def resolve_password(config: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """The password from, in order: ``password_file``, ``$CREDENTIALS_DIRECTORY/<password_credential>``,
    ``$PLSNAP_MYSQL_PASSWORD``. None leaves it to the MySQL option file (or no password)."""
    environ = os.environ if environ is None else environ
    mysql = config.mysql
    if mysql.password_file:
        return _read_secret(Path(mysql.password_file).expanduser(), "[mysql] password_file")
    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and mysql.password_credential:
        candidate = Path(cred_dir) / mysql.password_credential
        if candidate.exists():
            return _read_secret(candidate, "systemd credential")
    if environ.get(PASSWORD_ENV):
        return environ[PASSWORD_ENV]
    return None


def defaults_file(config: Config) -> Path | None:
    """The MySQL option file to read: ``[mysql] defaults_file``, else ``~/.my.cnf`` when it exists."""
    if config.mysql.defaults_file:
        path = Path(config.mysql.defaults_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"[mysql] defaults_file {path} does not exist")
        return path
    home = Path("~/.my.cnf").expanduser()
    return home if home.is_file() else None


def _read_secret(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    return text.rstrip("\r\n")


def documented_keys() -> dict[str, list[str]]:
    """Every config key by section (used to check that the example config documents them all)."""
    return {section: list(keys) for section, (_, keys) in SCHEMA.items()}


def field_names(cls: type[Any]) -> list[str]:
    """The dataclass field names of a config section."""
    return [f.name for f in fields(cls)]
