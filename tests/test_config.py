"""Settings: precedence (flags > HYPERALIGN_* > the settings file > defaults), every value checked where it enters,
and where each came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperalign import HyperAlign
from hyperalign.config import Settings, load_settings
from hyperalign.errors import InputError
from hyperalign.redaction import redact_url, validate_base_url


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "settings.toml"
    monkeypatch.setenv("HYPERALIGN_CONFIG", str(path))
    return path


def test_precedence_and_sources(settings_file, monkeypatch):
    settings_file.write_text("backend = 'fake'\nconcurrency = 2\nmodel = 'from-file'\nmax_repairs = 3\n")
    monkeypatch.setenv("HYPERALIGN_CONCURRENCY", "5")
    settings = load_settings(model="from-flag")
    assert (settings.backend, settings.concurrency, settings.model, settings.max_repairs) == ("fake", 5, "from-flag", 3)
    assert settings.sources == {"backend": f"file {settings_file}", "concurrency": "env HYPERALIGN_CONCURRENCY",
                                "model": "flag", "max_repairs": f"file {settings_file}"}
    described = {name: (value, source) for name, value, source in settings.describe()}
    assert described["threads"] == ("(not set)", "default")
    assert described["concurrency"] == ("5", "env HYPERALIGN_CONCURRENCY")


@pytest.mark.parametrize(("content", "message"), [
    ("backend = \n", r"settings.toml: not valid TOML \(Invalid value"),
    ("colour = 'red'\n", r"unknown setting 'colour' \(known: backend, model"),
    ("concurrency = 'many'\n", r"invalid setting 'concurrency' \(from .*settings.toml\): Input should be a valid integer"),
    ("concurrency = 0\n", "invalid setting 'concurrency'.*greater than or equal to 1"),
    ("base_url = 'ftp://x'\n", "invalid setting 'base_url'.*not an http"),
    ("max_repairs = 11\n", "invalid setting 'max_repairs'.*less than or equal to 10"),
    ("backend = 'a\udc80'\n", r"the settings file .*settings.toml: not valid UTF-8 \(bad byte at offset 12\)"),
])
def test_a_bad_settings_file_is_named(settings_file, content, message):
    settings_file.write_text(content, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(InputError, match=message):
        load_settings()


def test_a_settings_file_that_is_not_a_file_is_named(settings_file):
    settings_file.mkdir()
    with pytest.raises(InputError, match="the settings file .*settings.toml: is a directory"):
        load_settings()


@pytest.mark.parametrize(("name", "value", "message"), [
    ("HYPERALIGN_CONCURRENCY", "abc", "concurrency"),
    ("HYPERALIGN_CONCURRENCY", "-3", "concurrency"),
    ("HYPERALIGN_CONTEXT_TOKENS", "10", "context_tokens"),
    ("HYPERALIGN_TIMEOUT", "0", "timeout"),
    ("HYPERALIGN_BASE_URL", "http://[::1/v1", "Invalid IPv6 URL"),
])
def test_a_bad_environment_variable_is_named(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=message):
        load_settings()


@pytest.mark.parametrize("url", ["http://localhost:8000/v1", "https://api.example.com/v1", "http://[::1]:8080/v1",
                                 "http://user:pw@host/v1"])
def test_valid_urls(url):
    assert validate_base_url(url) == url


@pytest.mark.parametrize(("url", "message"), [
    ("http://[::1/v1", "Invalid IPv6 URL"), ("http://localhost:99999/v1", "Port out of range"),
    ("http://localhost:0/v1", "port 0"), ("not a url", "contains spaces"), ("ftp://x.org", "not an http"),
    ("http:///v1", "has no host"), ("localhost:8000", "not an http"), ("", "empty"),
])
def test_invalid_urls_say_why(url, message):
    with pytest.raises(ValueError, match=message):
        validate_base_url(url)


def test_credentials_are_redacted():
    assert redact_url("http://ann:secret@host:8000/v1") == "http://***@host:8000/v1"
    assert redact_url("http://host/v1") == "http://host/v1"
    assert "secret" not in redact_url("http://[bad:secret@")


def test_the_file_notice_names_a_redirected_endpoint(settings_file, monkeypatch):
    settings_file.write_text("base_url = 'http://u:pw@llm.internal:8000/v1'\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    notice = load_settings().file_notice()
    assert notice is not None and "base_url=http://***@llm.internal:8000/v1" in notice
    assert "with the API key from OPENAI_API_KEY" in notice and "pw" not in notice.replace("OPENAI", "")
    settings_file.write_text("")
    assert load_settings().file_notice() is None


def test_settings_reach_the_client(settings_file, tmp_path):
    settings_file.write_text("backend = 'fake'\nconcurrency = 7\nmax_repairs = 0\n")
    ha = HyperAlign.from_config(cache=False)
    assert ha.client.backend.name == "fake" and ha.client.concurrency == 7 and ha.client.max_repairs == 0
    assert ha.client.cache is None
    assert Settings.model_fields["max_repairs"].default == 1
