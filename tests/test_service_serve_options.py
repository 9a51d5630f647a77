"""`hyperalign serve`'s options for the service's newer settings: a bad value is one line naming the option, exit 2,
before anything starts; tracing without the otel extra says how to install it."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from hyperalign.cli import app

runner = CliRunner()


@pytest.mark.parametrize(("option", "value"), [
    ("--public-url", "ftp://profiles.example.com"), ("--public-url", "https://user:pw@profiles.example.com"),
    ("--review-link-days", "0"), ("--idempotency-hours", "-1"), ("--user-rate-limit", "0/minute"),
    ("--user-rate-limit", "lots"), ("--user-tokens-per-day", "0"),
])
def test_a_bad_value_names_its_option(tmp_path, option, value):
    result = runner.invoke(app, ["--backend", "fake", "serve", "--store", str(tmp_path / "s.sqlite3"), option, value])
    assert result.exit_code == 2, result.output
    assert option in result.output and "Traceback" not in result.output


def test_tracing_without_the_otel_extra_says_how_to_install_it(tmp_path, monkeypatch):
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("opentelemetry") else real_find(name, *a))
    result = runner.invoke(app, ["--backend", "fake", "serve", "--store", str(tmp_path / "s.sqlite3"), "--tracing",
                                 "--port", "1"])
    assert result.exit_code == 2 and "hyperalign[otel]" in result.output and "Traceback" not in result.output
