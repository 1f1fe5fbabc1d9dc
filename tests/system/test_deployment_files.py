"""The Docker deployment files are wired correctly (Docker itself cannot run here, so we read them)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest
import yaml  # the test extras bring PyYAML

from delivery.settings import delivery_settings
from tests.support.paths import REPO as ROOT
from workflows.search_attributes import ALL, CLI_TYPE_NAMES

CONTRACT_VARIABLES = ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "COMPLAINTS_TASK_QUEUE", "DATABASE_URL")
# How escalations reach people, and the worker's metrics (delivery/settings.py): from the environment.
DELIVERY_VARIABLES = ("SMTP_URL", "SMTP_FROM", "COMPLAINTS_PUBLIC_URL", "COMPLAINTS_TEAM_EMAILS",
                      "DELIVERY_GIVE_UP_SECONDS", "COMPLAINTS_METRICS_PORT")  # fmt: skip


def interpolate(value: object) -> object:
    """Compose's ${VAR:-default} / ${VAR} / $$ with an empty environment; a required ${VAR:?message} as required-VAR."""
    if isinstance(value, str):
        value = re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: f"required-{m.group(1)}", value)
        value = re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", value)
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict:
    return interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def script_of(service: dict) -> str:
    command = service.get("command")
    return "\n".join(command) if isinstance(command, list) else str(command or "")


def test_every_dependency_exists_with_a_valid_condition(services: dict) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dep, condition in depends_on(service).items():
            assert dep in services, f"{name} depends on missing service {dep}"
            assert condition in conditions, f"{name} -> {dep}: unknown condition {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, but it has no healthcheck"


def test_worker_is_built_here_and_waits_for_everything_it_uses(services: dict) -> None:
    worker = services["worker"]
    assert worker.get("build") in (".", {"context": "."})
    deps = depends_on(worker)
    assert deps.get("temporal") == "service_healthy"
    assert deps.get("complaints-db") == "service_healthy"
    assert deps.get("temporal-setup") == "service_completed_successfully"


def test_worker_gets_the_four_contract_variables_pointing_at_services(services: dict) -> None:
    env = env_of(services["worker"])
    for variable in CONTRACT_VARIABLES:
        assert env.get(variable), f"worker lacks {variable}"
    host, port = env["TEMPORAL_ADDRESS"].rsplit(":", 1)
    assert services[host]["image"].startswith("temporalio/server:") and port == "7233"
    assert env["TEMPORAL_NAMESPACE"] == env_of(services["temporal-setup"])["NAMESPACE"] == "default"
    assert env["COMPLAINTS_TASK_QUEUE"] == "complaints"
    db = urlsplit(env["DATABASE_URL"])
    assert db.scheme in ("postgresql", "postgres") and db.hostname in services
    app_db = services[db.hostname]
    assert app_db["image"].startswith("postgres:")
    assert db.hostname != "temporal-db", "the application database is separate from Temporal's"
    app_env = env_of(app_db)
    assert (db.username, db.password, db.path.lstrip("/")) == (
        app_env["POSTGRES_USER"],
        app_env["POSTGRES_PASSWORD"],
        app_env["POSTGRES_DB"],
    )


def test_registered_search_attributes_match_the_contract(services: dict) -> None:
    words = shlex.split(script_of(services["temporal-setup"]).replace("\\\n", " "))
    start = words.index("search-attribute")
    registered: dict[str, str] = {}
    for i in range(start, len(words) - 1):
        if words[i] == "--name":
            assert words[i + 2] == "--type", words[i : i + 4]
            registered[words[i + 1]] = words[i + 3]
    expected = {key.name: CLI_TYPE_NAMES[key.indexed_value_type.name] for key in ALL}
    assert registered == expected


def test_schema_setup_covers_both_databases_with_versioned_dirs(services: dict) -> None:
    script = script_of(services["temporal-schema"])
    assert "create-database" in script
    for db in ("temporal", "temporal_visibility"):
        assert f"--db {db} setup-schema -v 0.0" in script
        assert f"--db {db} update-schema" in script
    assert "/temporal/versioned" in script and "/visibility/versioned" in script
    assert depends_on(services["temporal"]).get("temporal-schema") == "service_completed_successfully"


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
@pytest.mark.parametrize("name", ["temporal-schema", "temporal-setup"])
def test_one_shot_scripts_are_valid_shell(services: dict, name: str) -> None:
    result = subprocess.run(["sh", "-n", "-c", script_of(services[name])], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_images_are_pinned_and_server_tools_agree(services: dict) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and re.match(r"^v?\d+(\.\d+)+", tag), f"{name}: {image} is not pinned"
        assert "auto-setup" not in repo, "temporalio/auto-setup is deprecated"
    tags = {s["image"].split(":")[0]: s["image"].split(":")[1] for s in services.values()}
    assert tags["temporalio/server"] == tags["temporalio/admin-tools"]


def test_dockerfile_runs_the_worker_as_a_non_root_user() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0].startswith("FROM python:3.11")
    cmd = [ln for ln in lines if ln.startswith("CMD")][-1]
    assert json.loads(cmd[len("CMD") :]) == ["python", "worker.py"]
    users = [ln.split()[1] for ln in lines if ln.startswith("USER")]
    assert users and users[-1] not in ("root", "0")
    assert any("pip install" in ln for ln in lines) and "pyproject.toml" in "\n".join(lines)


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", "data", ".git"} <= ignored


def test_no_secret_has_a_default_and_each_unset_one_is_named():
    """Issue 14.6: compose stops with a message naming a password or the keys when they are unset."""
    text = (ROOT / "docker-compose.yml").read_text()
    uses = re.findall(r"\$\{(\w*(?:PASSWORD|ENCRYPTION_KEYS)\w*)(:[?-])?([^}]*)\}", text)
    assert {name for name, _, _ in uses} == {"TEMPORAL_DB_PASSWORD", "COMPLAINTS_DB_PASSWORD", "COMPLAINTS_ENCRYPTION_KEYS"}
    for name, operator, message in uses:
        assert operator == ":?" and message.startswith("set"), (name, operator, message)


def test_published_ports_listen_on_loopback_unless_a_variable_says_otherwise(services: dict) -> None:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    published = [(name, port) for name, service in raw.items() for port in service.get("ports", [])]
    assert published, "the frontend and the UI are published"
    for name, port in published:
        assert str(port).startswith("${COMPLAINTS_BIND_ADDRESS:-127.0.0.1}:"), (name, port)
        assert str(interpolate(port)).startswith("127.0.0.1:"), (name, port)


def test_a_dotenv_file_stays_out_of_git_and_the_image() -> None:
    for ignore_file in (".gitignore", ".dockerignore"):
        lines = {ln.strip() for ln in (ROOT / ignore_file).read_text().splitlines()}
        assert ".env" in lines, ignore_file


def test_worker_gets_the_delivery_settings_from_variables_and_publishes_its_metrics_on_loopback(services: dict) -> None:
    """Issue 20.2: SMTP and the rest come from the environment; empty means unset, so no email by default."""
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    runs_a_worker = ["worker"] + [name for name in ("api",) if env_of(services[name]).get("API_WITH_WORKER") != "false"]
    for name in runs_a_worker:
        for variable in DELIVERY_VARIABLES:
            assert str(raw[name]["environment"].get(variable, "")).startswith(f"${{{variable}:-"), (name, variable)
    env = env_of(services["worker"])
    settings = delivery_settings(env)  # the defaults are valid settings
    assert settings.smtp is None and settings.metrics_port == 9464
    assert f"127.0.0.1:{settings.metrics_port}:{settings.metrics_port}" in services["worker"]["ports"]
    # The dev profile's mail catcher, as the compose header says to name it.
    smtp = delivery_settings({**env, "SMTP_URL": "smtp://mailpit:1025"}).smtp
    assert smtp is not None and (smtp.host, smtp.port, smtp.security) == ("mailpit", 1025, "plain")
    assert smtp.host in services


def test_mailpit_runs_only_in_the_dev_profile_and_the_header_says_how_to_use_it(services: dict) -> None:
    mailpit = services["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit:") and mailpit["profiles"] == ["dev"]
    assert [name for name, service in services.items() if service.get("profiles") and name != "mailpit"] == []
    assert all("mailpit" not in depends_on(service) for service in services.values()), "the engine runs without it"
    assert mailpit["ports"] == ["127.0.0.1:8025:8025"], "the web inbox, on loopback; SMTP stays inside compose"
    header = "\n".join(ln for ln in (ROOT / "docker-compose.yml").read_text().splitlines() if ln.startswith("#"))
    assert "docker compose --profile dev up" in header and "SMTP_URL=smtp://mailpit:1025" in header
    assert "http://localhost:8025" in header
