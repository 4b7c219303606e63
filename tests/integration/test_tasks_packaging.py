"""Production packaging: the Dockerfile and docker-compose.yml refer to real entry points,
real settings and the Redis/Celery choices of RELIABILITY.md (Docker itself cannot run here)."""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadsync.cli import _COMMANDS
from leadsync.config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


def dockerfile_instructions() -> dict[str, list[str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.setdefault(word.upper(), []).append(rest.strip())
    return found


def _argv(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else shlex.split(value)


def _entrypoint(service: dict[str, Any]) -> list[str]:
    if "entrypoint" in service:
        return _argv(service["entrypoint"])
    return yaml.safe_load(dockerfile_instructions()["ENTRYPOINT"][-1])  # JSON form is YAML


def test_dockerfile_slim_non_root_worker_entrypoint() -> None:
    ins = dockerfile_instructions()
    assert ins["FROM"] == ["python:3.11-slim"]
    user = ins["USER"][-1].split(":")[0]
    assert user not in ("root", "0")
    assert any("pip install ." in run for run in ins["RUN"])
    entry = yaml.safe_load(ins["ENTRYPOINT"][-1])
    assert entry[1:] == ["celery", "-A", "leadsync.tasks", "worker"]
    script = next(c.split()[-1] for c in ins["COPY"] if "entrypoint.sh" in c)
    assert entry[0] == Path(script).name
    assert os.access(ROOT / "deploy" / "entrypoint.sh", os.X_OK)


def test_compose_services_and_redis_settings(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"redis", "sandbox", "worker", "beat"}
    redis_cmd = _argv(services["redis"]["command"])
    assert redis_cmd[redis_cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"


def test_worker_and_beat_run_the_celery_app(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker = _entrypoint(services["worker"]) + _argv(services["worker"]["command"])
    beat = _entrypoint(services["beat"]) + _argv(services["beat"]["command"])
    assert worker[1:5] == ["celery", "-A", "leadsync.tasks", "worker"]
    assert beat[1:5] == ["celery", "-A", "leadsync.tasks", "beat"]
    assert any(a.startswith("--schedule=") for a in beat)
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_sandbox_service_runs_a_registered_cli_command(compose: dict[str, Any]) -> None:
    sandbox = compose["services"]["sandbox"]
    argv = _entrypoint(sandbox) + _argv(sandbox["command"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv[0] in scripts
    assert argv[1] in _COMMANDS and argv[2] == "serve"
    env_file = argv[argv.index("--env-file") + 1]
    worker_env = compose["services"]["worker"]["environment"]
    assert worker_env["LEADSYNC_ENV_FILE"] == env_file


def test_compose_environment_names_real_settings(compose: dict[str, Any]) -> None:
    fields = {f"LEADSYNC_{name.upper()}" for name in Settings.model_fields}
    for name in ("worker", "beat"):
        env = compose["services"][name]["environment"]
        unknown = {k for k in env if k not in fields and k != "LEADSYNC_ENV_FILE"}
        assert not unknown, f"{name}: not leadsync settings: {unknown}"
        assert re.match(r"redis://redis:6379/\d+$", env["LEADSYNC_REDIS_URL"])


def test_sandbox_serve_accepts_the_options_compose_passes(compose: dict[str, Any]) -> None:
    cli = pytest.importorskip("leadsync.sandbox.cli", reason="sandbox CLI not built yet")
    argv = _argv(compose["services"]["sandbox"]["command"])
    serve = cli.sandbox.get_command(None, "serve")
    options = {opt for param in serve.params for opt in getattr(param, "opts", [])}
    passed = {a for a in argv if a.startswith("--")}
    assert passed <= options, f"unknown options for `leadsync sandbox serve`: {passed - options}"


@pytest.mark.parametrize(("service", "checks"), [("worker", {"worker"}),
                                                 ("beat", {"beat"})])
def test_worker_and_beat_healthchecks_run_leadsync_health(
    compose: dict[str, Any], service: str, checks: set[str]
) -> None:
    """The healthcheck is `leadsync health` (exit 0/1) with options it accepts, through the
    entrypoint (which loads the sandbox env file), on each service's own component."""
    from leadsync.commands.health import health

    check = compose["services"][service]["healthcheck"]
    argv = _argv(check["test"])
    assert argv[0] == "CMD"
    assert argv[1:3] == ["leadsync-entrypoint", "leadsync"] and argv[3] == "health"
    options = {opt for param in health.params for opt in getattr(param, "opts", [])}
    assert {a for a in argv[4:] if a.startswith("--")} <= options
    assert {argv[i + 1] for i, a in enumerate(argv) if a == "--only"} == checks
    assert ("--local" in argv) == (service == "worker")
    # unhealthy after `retries` failed checks: within a few heartbeat intervals of silence
    interval = int(str(check["interval"]).rstrip("s"))
    assert interval * check["retries"] <= 2 * 60
