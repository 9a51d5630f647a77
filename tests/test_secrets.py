"""Secrets never leave: not in a crash log (which only its owner can read), not in `settings`, an error message or
`serve`'s banner — whether a secret sits in an option (`--api-key`, `--upstream-api-key=…`), in a URL's user part or
in its query string (`?api-key=`, `?key=`, `?token=`, `?access_token=`, libpq's `?password=`, `?sslpassword=`) —
and the service's unauthenticated probes say nothing about the deployment."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hyperalign.redaction import redact_argv, redact_text, redact_url
from hyperalign.service.tables import open_service_store
from hyperalign.service.tenants import create_key
from openai_test_server import OpenAITestServer
from serve_process import free_port, wait_until_healthy

SECRET = "QsEcReT9x7"  # appears only where a secret was given; any trace of it in output is a leak
KEY = "sk-opERAToR1234567890abcdefWXYZ"
QUERY_NAMES = ["api-key", "api_key", "apikey", "key", "token", "access_token", "password", "sslpassword",
               "client_secret", "sig"]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HYPERALIGN_", "OPENAI_"))}
    environment.update({"HYPERALIGN_CONFIG": str(cwd / "none.toml"), "XDG_CACHE_HOME": str(cwd / "cache"),
                        "XDG_DATA_HOME": str(cwd / "data"), "XDG_STATE_HOME": str(cwd / "state"), **env})
    return subprocess.run([sys.executable, "-m", "hyperalign", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=120)


def buggy_backend(tmp_path: Path) -> str:
    """A backend plugin whose completion raises ZeroDivisionError (a planted bug); the PYTHONPATH to use."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "buggy_plugin.py").write_text(
        "from hyperalign.llm.fake import FakeBackend\nfrom hyperalign.llm.registry import register_backend\n"
        "class Buggy(FakeBackend):\n    name = 'buggy'\n    def reply(self, request):\n"
        f"        raise ZeroDivisionError('while calling http://u:{SECRET}@h/v1?key={SECRET} with {KEY}')\n"
        "register_backend('buggy', Buggy)\n", encoding="utf-8")
    (plugin / "sitecustomize.py").write_text("import buggy_plugin\n", encoding="utf-8")
    return str(plugin)


@pytest.mark.parametrize("secret_args", [
    ["--api-key", KEY],
    [f"--api-key={KEY}"],
    ["--base-url", f"http://keeper:{SECRET}@llm.example/v1"],
    ["--base-url", f"https://llm.example/v1?api-version=1&api-key={SECRET}"],
    [f"--base-url=https://llm.example/v1?access_token={SECRET}"],
])
def test_the_crash_log_holds_no_secret_and_only_its_owner_can_read_it(tmp_path, secret_args):
    done = run(["--backend", "buggy", "--no-cache", *secret_args, "generate", "--strategy", "zero-shot", "Hi."],
               tmp_path, PYTHONPATH=buggy_backend(tmp_path))
    assert done.returncode == 1, done.stderr
    folder = tmp_path / "state" / "hyperalign" / "logs"
    logs = list(folder.glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in done.stderr
    text = logs[0].read_text(encoding="utf-8")
    assert "ZeroDivisionError" in text and "--backend buggy" in text  # still useful to whoever reads it
    assert SECRET not in text and KEY not in text and KEY[:12] not in text
    assert SECRET not in done.stderr and KEY not in done.stderr
    assert stat.S_IMODE(logs[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # created by hyperalign, for its owner only


@pytest.mark.parametrize("argv", [
    ["serve", "--upstream-api-key", SECRET],
    ["serve", f"--upstream-api-key={SECRET}"],
    ["--token", SECRET, "demo"],
    ["x", f"--db-password={SECRET}", "--client-secret", SECRET],
    ["profile", "list", "--store", f"postgresql+psycopg://ann:{SECRET}@db/x"],
    ["profile", "list", "--store", f"postgresql+psycopg://db/x?sslmode=require&sslpassword={SECRET}"],
    ["keys", "revoke", f"ha-0123456789ab-{SECRET}"],
])
def test_every_secret_bearing_argument_is_redacted(argv):
    shown = " ".join(redact_argv(argv))
    assert SECRET not in shown and "***" in shown
    assert shown.split()[0] == argv[0]  # the command itself stays readable


def test_counts_and_names_are_not_mistaken_for_secrets():
    argv = ["--max-tokens", "40", "--tokens-per-minute", "900", "--author", "ann", "--context-tokens", "4096"]
    assert redact_argv(argv) == argv


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_secrets_are_redacted_by_the_one_helper(name):
    url = f"https://u:{SECRET}@llm.example:8443/v1?api-version=2024-01&{name}={SECRET}"
    shown = redact_url(url)
    assert SECRET not in shown and f"{name}=***" in shown and "api-version=2024-01" in shown
    assert "llm.example:8443/v1" in shown
    assert SECRET not in redact_text(f"failed: cannot reach {url}.")


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_settings_never_print_a_query_secret(tmp_path, name):
    url = f"https://llm.example/v1?{name}={SECRET}&x=1"
    for args, env in ((["--backend", "openai", "--base-url", url, "settings"], {}),
                      (["--backend", "openai", "settings"], {"HYPERALIGN_BASE_URL": url}),
                      (["--backend", "openai", "settings"], {"OPENAI_BASE_URL": url})):
        done = run(args, tmp_path, **env)
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
        assert f"https://llm.example/v1?{name}=***&x=1" in done.stdout


@pytest.mark.parametrize("args", [
    ["--backend", "openai", "--base-url", f"ftp://llm.example/v1?api_key={SECRET}", "settings"],
    ["--backend", "openai", "--base-url", f"http://llm.example:99999/v1?token={SECRET}", "settings"],
    ["--backend", "fake", "profile", "list", "--store",
     f"postgresql+psycopg://ann@127.0.0.1:1/x?password={SECRET}&connect_timeout=2"],
    ["--backend", "fake", "serve", "--store", "s.sqlite3", "--upstream-base-url", f"ftp://h/v1?key={SECRET}"],
])
def test_error_messages_never_show_a_query_secret(tmp_path, args):
    done = run(args, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1
    assert SECRET not in done.stdout + done.stderr and "***" in done.stderr


def test_serve_banner_and_probes_say_nothing_secret_and_status_needs_a_key(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with open_service_store(store_url) as store:
        key, _ = create_key(store, "acme")
    port = free_port()
    log = tmp_path / "serve.log"
    with OpenAITestServer() as upstream, log.open("w") as output:
        upstream_url = f"{upstream.base_url}?api-version=1&api-key={SECRET}"
        command = [sys.executable, "-m", "hyperalign", "--backend", "fake", "serve", "--store", store_url,
                   "--port", str(port), "--upstream-base-url", upstream_url, "--upstream-api-key", KEY]
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, process, log=log.read_text)
            health = httpx.get(f"{base}/healthz", timeout=5)
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            ready = httpx.get(f"{base}/readyz", timeout=5)
            assert ready.status_code == 200 and ready.json() == {"status": "ok"}
            for probe in (health, ready):
                assert str(upstream.port) not in probe.text and "127.0.0.1" not in probe.text
            assert httpx.get(f"{base}/v1/status", timeout=5).status_code == 401
            status = httpx.get(f"{base}/v1/status", headers={"Authorization": f"Bearer {key}"}, timeout=5)
            assert status.status_code == 200 and status.json()["tenant"] == "acme"
            assert "api-key=***" in status.json()["upstream"] and SECRET not in status.text
        finally:
            process.terminate()
            process.wait(timeout=30)
    banner = log.read_text()
    assert "hyperalign service on" in banner and "api-key=***" in banner
    assert SECRET not in banner and KEY not in banner
