"""`hyperalign keys …` and `hyperalign db upgrade`: keys shown once and kept hashed, revoked by id, the tenant's
strategy; bad input is one line and exit 2. (`hyperalign serve` itself runs as a real process in
test_service_faults.py.)"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from hyperalign.cli import app
from hyperalign.profiles.store import ProfileStore
from hyperalign.service.tenants import authenticate

runner = CliRunner()


def keys(store: Path, *args: str):
    return runner.invoke(app, ["keys", *args, "--store", str(store)])


def test_a_key_is_printed_once_listed_by_id_and_revoked(tmp_path):
    store = tmp_path / "s.sqlite3"
    created = keys(store, "create", "--tenant", "acme", "--name", "web shop", "--strategy", "few-shot")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("ha-") and "shown once" in created.stderr
    with ProfileStore(store) as opened:
        found = authenticate(opened, key)
    assert found is not None and found[1].strategy == "few-shot"
    key_id = found[0]
    listed = keys(store, "list")
    assert listed.exit_code == 0 and key_id in listed.stdout and "acme" in listed.stdout and "active" in listed.stdout
    secret = key.split("-", 2)[2]  # ha-<id>-<secret>; the secret is url-safe base64 and may itself hold "-"
    assert len(secret) >= 40 and secret not in listed.stdout  # never the secret again
    assert keys(store, "revoke", key_id).exit_code == 0
    assert "revoked" in keys(store, "list").stdout
    again = keys(store, "revoke", key_id)
    assert again.exit_code == 2 and "already revoked" in again.output and "Traceback" not in again.output


def test_the_tenants_strategy_and_bad_values(tmp_path):
    store = tmp_path / "s.sqlite3"
    assert keys(store, "create", "--tenant", "acme").exit_code == 0
    assert keys(store, "strategy", "acme", "none").exit_code == 0
    # Another key for the tenant does not change every key's default behind their back.
    other = keys(store, "create", "--tenant", "acme", "--strategy", "few-shot")
    assert other.exit_code == 2 and "keys strategy acme few-shot" in other.output
    assert keys(store, "create", "--tenant", "acme", "--strategy", "none").exit_code == 0  # the same: fine
    bad = keys(store, "strategy", "acme", "telepathy")
    assert bad.exit_code == 2 and "unknown strategy 'telepathy'" in bad.output
    missing = keys(store, "strategy", "ghost", "none")
    assert missing.exit_code == 2 and "no tenant 'ghost'" in missing.output


def test_db_upgrade_reports_the_schema(tmp_path):
    result = runner.invoke(app, ["db", "upgrade", "--store", str(tmp_path / "s.sqlite3")])
    assert result.exit_code == 0, result.output
    assert "at 0009_statement_word_keys (profiles) and 0008_user_token_usage (service); 9 migrations applied" in \
        " ".join(result.output.split())


def test_serve_refuses_a_bad_rate_limit_before_starting(tmp_path):
    result = runner.invoke(app, ["--backend", "fake", "serve", "--store", str(tmp_path / "s.sqlite3"),
                                 "--rate-limit", "lots"])
    assert result.exit_code == 2 and "--rate-limit" in result.output and "Traceback" not in result.output


def test_serve_refuses_an_address_it_cannot_listen_on(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["--backend", "fake", "serve", "--store", str(tmp_path / "s.sqlite3"),
                                     "--port", str(port)])
    assert result.exit_code == 2 and f"--port {port}: cannot listen there" in result.output
    assert "Traceback" not in result.output
