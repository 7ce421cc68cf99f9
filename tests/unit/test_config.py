"""Config: TOML < environment < command line, with precise errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from plsnap.config import MinFree, documented_keys, load_config, resolve_password
from plsnap.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plsnap.toml"
    path.write_text(text)
    return path


def test_defaults_without_file() -> None:
    """With no file and no environment, the documented defaults apply."""
    config = load_config(None, environ={})
    assert config.capture.interval == 60.0
    assert config.retention.max_age == 7 * 86400
    assert config.retention.schedule == 86400
    assert config.capture.source == "auto"
    assert config.instance == "default"


def test_units_are_parsed(tmp_path: Path) -> None:
    """Durations and sizes accept human units; min_free accepts a percentage or a size."""
    path = write(
        tmp_path,
        '[capture]\ninterval = "5s"\n[retention]\nmax_age = "2d"\nmax_bytes = "500MB"\nmin_free = "5%"\n'
        'schedule = "7d"\n',
    )
    config = load_config(path, environ={})
    assert config.capture.interval == 5.0
    assert config.retention.max_age == 2 * 86400
    assert config.retention.max_bytes == 500_000_000
    assert config.retention.min_free == MinFree(percent=5.0)
    assert config.retention.schedule == 7 * 86400


def test_precedence_file_env_cli(tmp_path: Path) -> None:
    """The environment overrides the file, and command-line values override both."""
    path = write(tmp_path, '[capture]\ninterval = "30s"\nsource = "show"\n')
    env = {"PLSNAP_CAPTURE_INTERVAL": "10s"}
    assert load_config(path, environ=env).capture.interval == 10.0
    assert load_config(path, environ=env).capture.source == "show"
    config = load_config(path, environ=env, overrides={"capture": {"interval": "2s"}})
    assert config.capture.interval == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[capture]\nintervall = 5\n", r"plsnap.toml: unknown key \[capture\] intervall \(did you mean interval\?\)"),
        ("[capture]\ninterval = 5\n", r"\[capture\] interval: expected a duration with a unit"),
        ('[capture]\ninterval = "5 s"\n', r"\[capture\] interval: expected a duration with a unit"),
        ("[captur]\n", r"unknown section \[captur\]"),
        ('[capture]\ninterval = "5parsecs"\n', r"\[capture\] interval: '5parsecs' is not a duration"),
        ('[capture]\nsource = "magic"\n', r"\[capture\] source: expected one of auto, show"),
        ("[archive]\nlevel = 99\n", r"\[archive\] level: expected an integer from 1 to 19"),
        ('[archive]\nfsync = "perhaps"\n', r"\[archive\] fsync: expected true or false"),
        ('[archive]\ninstance = "a/b"\n', r"\[archive\] instance: expected 1-128 characters"),
        ('[mysql]\npassword = "hunter2"\n', r"\[mysql\] password is not accepted"),
        ("[capture\n", r"is not valid TOML"),
        ('[retention]\nmin_free = "150%"\n', r"\[retention\] min_free: a percentage must be between"),
        ('[retention]\nmax_age = "10m"\n', r"\[retention\] max_age: expected a duration from 3600s"),
        ("capture = 3\n", r"capture must be a table"),
        ('[mysql]\nssl_mode = "verify_ca"\n', r"ssl_mode = verify_ca needs \[mysql\] ssl_ca"),
        ('[metrics]\nlisten = "nope"\n', r"\[metrics\] listen: expected host:port"),
        ('[trigger]\nrates = ["Questions>nan"]\n', r"\[trigger\] rates: 'Questions>nan' is not a rate condition"),
        ('[trigger]\nrates = ["Questions>inf"]\n', r"is not a rate condition: write Name>X with X above 0"),
        ('[trigger]\nrates = ["Questions>1e999"]\n', r"is not a rate condition"),
        ('[trigger]\nrates = ["Questions>0"]\n', r"is not a rate condition"),
        ('[trigger]\nrates = ["Threads_running>5"]\n', r"Threads_running is a level, not a running total"),
        ('[trigger]\nrates = ["Open_tables>5"]\n', r"Open_tables is a level"),
        ('[trigger]\nrates = ["Innodb_row_lock_current_waits>1"]\n', r"is a level"),
        ('[trigger]\nrates = ["Global_connection_memory>1"]\n', r"is a level"),
        ('[trigger]\nmin_free = "' + "9" * 400 + 'MB"\n', r"\[trigger\] min_free: .* is too large"),
        ("[retention]\nmax_bytes = 99999999999999999999999999\n", r"\[retention\] max_bytes: .* is too large"),
        (
            '[capture]\ninterval = "1s"\n[trigger]\nthreads_running = 5\nburst_interval = "40s"\n',
            r"burst_interval \(40s\) must not be longer than \[capture\] interval \(1s\)",
        ),
        ('[capture]\ninterval = "10m"\n[trigger]\nthreads_running = 5\nburst_interval = "3600s"\n', r"not be longer"),
        (
            '[capture]\ninterval = "60s"\n[trigger]\nthreads_running = 5\n'
            'burst_interval = "10s"\nburst_duration = "5s"\n',
            r"burst_duration \(5s\) must be at least burst_interval \(10s\)",
        ),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    """Each bad file gives a ConfigError naming the file or the key and what is allowed."""
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), environ={})


def test_bad_env_names_variable() -> None:
    """A bad environment value names the variable; an unknown PLSNAP_ variable is rejected."""
    with pytest.raises(ConfigError, match="environment variable PLSNAP_CAPTURE_INTERVAL"):
        load_config(None, environ={"PLSNAP_CAPTURE_INTERVAL": "soon"})
    with pytest.raises(ConfigError, match="unknown environment variable PLSNAP_CAPTURE_INTERVALL"):
        load_config(None, environ={"PLSNAP_CAPTURE_INTERVALL": "5s"})


def test_missing_file() -> None:
    """A missing config file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=r"does-not-exist\.toml does not exist"):
        load_config(Path("/nonexistent/does-not-exist.toml"), environ={})


def test_password_sources_in_order(tmp_path: Path) -> None:
    """password_file wins over the systemd credential, which wins over PLSNAP_MYSQL_PASSWORD."""
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mysql-password").write_text("from-credential")
    env = {"CREDENTIALS_DIRECTORY": str(creds), "PLSNAP_MYSQL_PASSWORD": "from-env"}
    with_file = load_config(write(tmp_path, f'[mysql]\npassword_file = "{secret}"\n'), environ={})
    assert resolve_password(with_file, env) == "from-file"
    plain = load_config(None, environ={})
    assert resolve_password(plain, env) == "from-credential"
    assert resolve_password(plain, {"PLSNAP_MYSQL_PASSWORD": "from-env"}) == "from-env"
    assert resolve_password(plain, {}) is None


def test_unreadable_password_file_names_it(tmp_path: Path) -> None:
    """A password file that cannot be read is a ConfigError naming the key and file, without a traceback."""
    config = load_config(write(tmp_path, f'[mysql]\npassword_file = "{tmp_path / "absent"}"\n'), environ={})
    with pytest.raises(ConfigError, match=r"\[mysql\] password_file .*absent cannot be read"):
        resolve_password(config, {})


def test_example_config_documents_every_key_and_parses() -> None:
    """config/plsnap.example.toml lists every key of every section and loads without error."""
    example = REPO / "config" / "plsnap.example.toml"
    data = tomllib.loads(example.read_text())
    assert {s: sorted(v) for s, v in data.items()} == {s: sorted(v) for s, v in documented_keys().items()}
    load_config(example, environ={})


def test_unknown_env_variable_points_to_where_the_variables_are_listed() -> None:
    """The error suggests the close match and sends the user to the list of keys, not to --help (which lists
    no variables)."""
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"PLSNAP_CAPTURE_INTERVALL": "5s"})
    message = str(caught.value)
    assert "did you mean PLSNAP_CAPTURE_INTERVAL?" in message
    assert "docs/configuration.md" in message and "--help" not in message


def test_password_file_readable_by_others_is_warned_about(tmp_path: Path) -> None:
    """A 0644 password file still works, but the warning names the file, its mode and the fix; 0600 is quiet."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    config = load_config(write(tmp_path, f'[mysql]\npassword_file = "{secret}"\n'), environ={})
    for mode, expected in ((0o644, [f"[mysql] password_file {secret} is readable by other users (mode 0644); "
                                    f"run chmod 600 {secret}"]), (0o600, [])):  # fmt: skip
        secret.chmod(mode)
        warnings: list[str] = []
        assert resolve_password(config, {}, warn=warnings.append) == "s3cret"
        assert warnings == expected
