"""Configuration: TOML file, overridden by ``PLSNAP_<SECTION>_<KEY>`` environment variables, overridden by
command-line values, validated into frozen dataclasses.

The schema is declared once: every section is a dataclass whose fields carry their parser
(:func:`option`), and the table of sections and keys is derived from them. Every error names the file (or
variable), the key and what is allowed. Only the CLI calls :func:`load_config` (the daemon re-reads through a
callback it is given). Passwords are never a config value or a command-line value: see :func:`resolve_password`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from plsnap.counters import canonical_name, is_gauge
from plsnap.errors import ConfigError
from plsnap.smallfile import read_capped
from plsnap.units import format_duration, parse_duration, parse_size

ENV_PREFIX = "PLSNAP_"
PASSWORD_ENV = "PLSNAP_MYSQL_PASSWORD"  # noqa: S105
CONFIG_ENV = "PLSNAP_CONFIG"
DEBUG_ENV = "PLSNAP_DEBUG"
DEFAULT_CONFIG_PATH = Path("/etc/plsnap/plsnap.toml")
MAX_CONFIG_BYTES = 1 * 2**20
MAX_SECRET_BYTES = 64 * 2**10
SOURCES = ("auto", "show", "information_schema", "performance_schema")
SSL_MODES = ("disabled", "preferred", "required", "verify_ca", "verify_identity")
REDACT_MODES = ("none", "literals", "full")
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
#: Server counters stored with every sample (``[capture] status``): what an expert looks at first.
DEFAULT_STATUS = (
    "Threads_running",
    "Threads_connected",
    "Questions",
    "Com_select",
    "Com_insert",
    "Com_update",
    "Com_delete",
    "Com_commit",
    "Com_rollback",
    "Innodb_row_lock_waits",
    "Innodb_row_lock_current_waits",
    "Innodb_row_lock_time",
    "Innodb_deadlocks",
    "Innodb_history_list_length",
    "Created_tmp_disk_tables",
    "Slow_queries",
    "Aborted_connects",
    "Aborted_clients",
    "Max_used_connections",
    "Innodb_buffer_pool_reads",
    "Innodb_buffer_pool_read_requests",
)

Parser = Callable[[Any], Any]


def option(default: Any, parse: Parser) -> Any:
    """A config field: its default and the parser that validates raw values (TOML, environment, flags)."""
    return field(default=default, metadata={"parse": parse})


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _integer(low: int, high: int) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected an integer from {low} to {high}")
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}, got {value}")
        return value

    return parse


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("expected true or false")


def _choice(*allowed: str) -> Parser:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value.strip().lower()

    return parse


def _duration(low: float, high: float) -> Parser:
    """Durations are written with a unit (``5s``, ``10m``, ``1h30m``); only zero may be a bare number."""

    def parse(value: Any) -> float:
        if value in (0, "0"):
            seconds = 0.0
        elif not isinstance(value, str) or value != value.strip() or " " in value or value.strip().isdigit():
            raise ValueError(f'expected a duration with a unit, written like "5s", "10m" or "1h30m" (got {value!r})')
        else:
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


_STATUS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def _names(value: Any) -> tuple[str, ...]:
    """A list of server status variable names (TOML array, or comma-separated text from the environment)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ValueError('expected a list of status variable names such as ["Threads_running", "Questions"]')
    names = [item.strip() for item in items if item.strip()]
    bad = [n for n in names if not _STATUS_NAME.match(n)]
    if bad:
        raise ValueError(f"not a status variable name: {bad[0]!r} (letters, digits and _ only)")
    return tuple(dict.fromkeys(canonical_name(name, DEFAULT_STATUS) for name in names))


def _rates(value: Any) -> tuple[tuple[str, float], ...]:
    """Rate conditions written ``Name>X`` (X per second), as a list or comma-separated text."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ValueError('expected a list such as ["Questions>5000", "Com_rollback>50"]')
    found: dict[str, float] = {}
    for item in items:
        text = item.replace(" ", "")
        if not text:
            continue
        name, sep, threshold = text.partition(">")
        try:
            limit = float(threshold)
        except ValueError:
            limit = -1.0
        if not sep or not _STATUS_NAME.match(name) or not 0 < limit < math.inf:
            raise ValueError(
                f"{item!r} is not a rate condition: write Name>X with X above 0, e.g. Questions>5000 (per second)"
            )
        if is_gauge(name):
            raise ValueError(
                f"{item!r}: {name} is a level, not a running total, so it has no rate (use threads_running for "
                "Threads_running, or a counter such as Questions)"
            )
        name = canonical_name(name, DEFAULT_STATUS)
        if name in found:
            raise ValueError(f"{item!r}: there is already a condition on {name} (one threshold per counter)")
        found[name] = limit
    return tuple(found.items())


def _instance(value: Any) -> str:
    from plsnap.archive.layout import validate_instance

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
        _, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port such as 127.0.0.1:9187")
    return text


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

    host: str = option("", _text)
    port: int = option(3306, _integer(1, 65535))
    socket: str = option("", _text)
    user: str = option("", _text)
    password_file: str = option("", _text)
    password_credential: str = option("mysql-password", _text)
    defaults_file: str = option("", _text)
    ssl_mode: str = option("preferred", _choice(*SSL_MODES))
    ssl_ca: str = option("", _text)
    ssl_cert: str = option("", _text)
    ssl_key: str = option("", _text)
    connect_timeout: float = option(5.0, _duration(0.1, 600))
    read_timeout: float = option(10.0, _duration(0.1, 3600))
    write_timeout: float = option(10.0, _duration(0.1, 3600))
    statement_timeout: float = option(5.0, _duration(0, 3600))


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """What to sample and how often (``interval`` in seconds)."""

    interval: float = option(60.0, _duration(0.1, 86400))
    source: str = option("auto", _choice(*SOURCES))
    max_info_bytes: int = option(65536, _integer(64, 64 * 2**20))
    include_idle: bool = option(True, _boolean)
    redact: str = option("none", _choice(*REDACT_MODES))
    locks: bool = option(True, _boolean)
    status: tuple[str, ...] = option(DEFAULT_STATUS, _names)
    replication: bool = option(True, _boolean)


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    """Where and how snapshots are stored (``frame_every`` in seconds; 0 = one frame per partition; ``rollups``:
    keep each hour's summary beside its partition, for fast windows; ``compact_level``: the zstd level a closed
    hour is recompressed at, 0 = never)."""

    data_dir: str = option("", _text)
    instance: str = option("", _instance)
    level: int = option(3, _integer(1, 19))
    fsync: bool = option(True, _boolean)
    frame_every: float = option(300.0, _duration(0, 3600))
    rollups: bool = option(True, _boolean)
    compact_level: int = option(9, _integer(0, 19))


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """Oldest-first retention. ``max_age`` and ``schedule`` in seconds; ``max_bytes`` 0 means no limit."""

    max_age: float = option(7 * 86400.0, _duration(3600, 10 * 365 * 86400))
    max_bytes: int = option(0, _size)
    min_free: MinFree | None = option(None, _min_free)
    schedule: float = option(86400.0, _duration(60, 365 * 86400))


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Log rendering: ``auto`` is JSON unless stdout is a terminal."""

    format: str = option("auto", _choice(*LOG_FORMATS))
    level: str = option("info", _choice(*LOG_LEVELS))


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """Triggered bursts (pt-stalk's job): conditions, the burst, and its guards. Times in seconds; a threshold
    of 0 turns its condition off; ``min_free`` is checked on the archive's filesystem before a burst starts."""

    threads_running: int = option(0, _integer(0, 1_000_000))
    cycles: int = option(2, _integer(1, 1000))
    running_sessions: int = option(0, _integer(0, 1_000_000))
    lock_wait: float = option(0.0, _duration(0, 86400))
    rates: tuple[tuple[str, float], ...] = option((), _rates)
    check_interval: float = option(1.0, _duration(0.1, 3600))
    burst_interval: float = option(1.0, _duration(0.1, 3600))
    burst_duration: float = option(60.0, _duration(1, 86400))
    cooldown: float = option(600.0, _duration(0, 7 * 86400))
    max_per_hour: int = option(6, _integer(1, 3600))
    min_free: MinFree | None = option(MinFree(percent=5.0), _min_free)
    innodb_status: bool = option(True, _boolean)

    @property
    def enabled(self) -> bool:
        """True when at least one condition is set."""
        return bool(self.threads_running or self.running_sessions or self.lock_wait or self.rates)

    @property
    def counters(self) -> tuple[str, ...]:
        """The status variables the between-sample check reads."""
        names = ["Threads_running"] if self.threads_running else []
        names += [name for name, _ in self.rates if name not in names]
        return tuple(names)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus and health endpoint (``listen`` as ``host:port``, empty = off); ``stall_after`` in seconds."""

    listen: str = option("", _listen)
    heartbeat_file: str = option("", _text)
    stall_after: float = option(0.0, _duration(0, 86400))


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration; ``path`` is the file it came from, if any."""

    mysql: MysqlConfig = MysqlConfig()
    capture: CaptureConfig = CaptureConfig()
    archive: ArchiveConfig = ArchiveConfig()
    retention: RetentionConfig = RetentionConfig()
    log: LogConfig = LogConfig()
    metrics: MetricsConfig = MetricsConfig()
    trigger: TriggerConfig = TriggerConfig()
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
        from plsnap.archive.layout import DEFAULT_INSTANCE

        return self.archive.instance or DEFAULT_INSTANCE

    @property
    def instance_dir(self) -> Path:
        """``<data_dir>/<instance>``, where the daemon writes."""
        return self.data_dir / self.instance

    @property
    def heartbeat_path(self) -> Path:
        """The file the daemon replaces after each capture attempt (read by ``plsnap health``)."""
        if self.metrics.heartbeat_file:
            return Path(self.metrics.heartbeat_file).expanduser()
        return self.instance_dir / ".plsnap.heartbeat"

    def stall_seconds(self, interval: float | None = None) -> float:
        """How old the last capture attempt may be before health reports a stall (seconds), for a daemon
        running with ``interval`` (default: the configured one)."""
        every = interval or self.capture.interval
        attempt = self.mysql.connect_timeout + self.mysql.read_timeout
        return self.metrics.stall_after or max(3 * every, every + attempt + 5, 30.0)


def _schema() -> dict[str, tuple[type[Any], dict[str, Parser]]]:
    sections: dict[str, tuple[type[Any], dict[str, Parser]]] = {}
    for section in fields(Config):
        if section.name == "path":
            continue
        cls: type[Any] = type(section.default)
        sections[section.name] = (cls, {key.name: key.metadata["parse"] for key in fields(cls)})
    return sections


#: The sections of the config file: name -> (dataclass, {key: parser}), derived from the dataclasses.
SCHEMA = _schema()
ENV_NAMES = {
    f"{ENV_PREFIX}{section.upper()}_{key.upper()}": (section, key)
    for section, (_, keys) in SCHEMA.items()
    for key in keys
}
OTHER_ENV = (PASSWORD_ENV, CONFIG_ENV, DEBUG_ENV)


def default_data_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd), /var/lib/plsnap for root, else ``$XDG_STATE_HOME/plsnap``."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/plsnap")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "plsnap"


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
        elif name.startswith(ENV_PREFIX) and name not in OTHER_ENV and "_" in name[len(ENV_PREFIX) :]:
            raise ConfigError(_unknown_env(name))
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


def _unknown_env(name: str) -> str:
    close = difflib.get_close_matches(name, [*ENV_NAMES, *OTHER_ENV], n=1, cutoff=0.75)
    hint = f"did you mean {close[0]}? " if close else ""
    return (
        f"unknown environment variable {name}: {hint}each config key [section] key is PLSNAP_<SECTION>_<KEY> "
        "(e.g. PLSNAP_CAPTURE_INTERVAL); the keys are listed in config/plsnap.example.toml and docs/configuration.md"
    )


def _read_toml(path: Path) -> list[tuple[str, str, Any]]:
    try:
        raw, _ = read_capped(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes: not a plsnap config")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {_toml_position(exc)}") from None
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
                close = difflib.get_close_matches(key, list(known), n=1)
                hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(known)})"
                raise ConfigError(f"{path}: unknown key [{section}] {key}{hint}")
            items.append((section, key, value))
    return items


def _toml_position(exc: tomllib.TOMLDecodeError) -> str:
    """Where the TOML error is, without quoting the file (a misplaced secret must not be echoed)."""
    message = str(exc)
    marker = message.find("(at line")
    return message[marker + 1 : -1] if marker >= 0 and message.endswith(")") else "syntax error"


def _check_consistency(config: Config) -> None:
    mysql = config.mysql
    if mysql.ssl_mode in ("verify_ca", "verify_identity") and not mysql.ssl_ca:
        raise ConfigError(f"[mysql] ssl_mode = {mysql.ssl_mode} needs [mysql] ssl_ca (the CA certificate file)")
    if bool(mysql.ssl_cert) != bool(mysql.ssl_key):
        raise ConfigError("[mysql] ssl_cert and ssl_key must be set together")
    trigger, interval = config.trigger, config.capture.interval
    if trigger.enabled and trigger.burst_interval > interval:
        raise ConfigError(
            f"[trigger] burst_interval ({format_duration(trigger.burst_interval)}) must not be longer than [capture] "
            f"interval ({format_duration(interval)}): a burst samples at least as often as the base cadence"
        )
    if trigger.enabled and trigger.burst_duration < trigger.burst_interval:
        raise ConfigError(
            f"[trigger] burst_duration ({format_duration(trigger.burst_duration)}) must be at least burst_interval "
            f"({format_duration(trigger.burst_interval)}): a burst takes at least one sample"
        )


def resolve_password(
    config: Config, environ: Mapping[str, str] | None = None, *, warn: Callable[[str], None] | None = None
) -> str | None:
    """The password from, in order: ``password_file``, ``$CREDENTIALS_DIRECTORY/<password_credential>``,
    ``$PLSNAP_MYSQL_PASSWORD``. None leaves it to the MySQL option file (or no password).

    ``warn`` is told when a password file is readable by group or others.
    """
    environ = os.environ if environ is None else environ
    mysql = config.mysql
    if mysql.password_file:
        return _read_secret(Path(mysql.password_file).expanduser(), "[mysql] password_file", warn)
    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and mysql.password_credential:
        candidate = Path(cred_dir) / mysql.password_credential
        if candidate.exists():
            return _read_secret(candidate, "systemd credential", None)
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


def _read_secret(path: Path, what: str, warn: Callable[[str], None] | None) -> str:
    try:
        raw, mode = read_capped(path, MAX_SECRET_BYTES)
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise ConfigError(f"{what} {path} is larger than {MAX_SECRET_BYTES} bytes: not a password file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    if warn is not None and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(f"{what} {path} is readable by other users (mode {stat.S_IMODE(mode):04o}); run chmod 600 {path}")
    return text.splitlines()[0] if text else ""


def documented_keys() -> dict[str, list[str]]:
    """Every config key by section (used to check that the example config documents them all)."""
    return {section: list(keys) for section, (_, keys) in SCHEMA.items()}
