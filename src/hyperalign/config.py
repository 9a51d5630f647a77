"""Settings, from (highest first): explicit arguments or CLI flags, HYPERALIGN_* environment variables, a TOML file
(HYPERALIGN_CONFIG, else ./hyperalign.toml), defaults; `api_key` and `base_url` then fall back to OPENAI_API_KEY and
OPENAI_BASE_URL, the variables the openai SDK reads. This module is where hyperalign reads its environment.

Every value is checked where it enters (a URL must be http(s) with a host and a valid port, counts must be
positive); a URL is only ever shown without its credentials, in its user part or its query (`redact_url`); and
each setting remembers where it came from (`Settings.sources`), so a hyperalign.toml in the working
directory that redirects the endpoint is visible to the person running the command (`hyperalign settings`)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, TypeAdapter, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .errors import InputError
from .io import check_text, read_text_file
from .llm.cache import default_cache_path
from .redaction import redact_text, redact_url, validate_base_url

DEFAULT_CONFIG_FILE = "hyperalign.toml"
# Settings that fall back to the openai SDK's own environment variables.
SDK_VARIABLES = {"api_key": "OPENAI_API_KEY", "base_url": "OPENAI_BASE_URL"}


def config_file() -> Path:
    return Path(os.environ.get("HYPERALIGN_CONFIG", DEFAULT_CONFIG_FILE))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HYPERALIGN_", extra="forbid")

    backend: str = "embedded"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    context_tokens: int | None = Field(None, ge=256, le=10_000_000)
    cache: Path | None = None
    no_cache: bool = False
    concurrency: int = Field(4, ge=1, le=4096)
    # Repair turns after an invalid structured output (the validation error is shown to the model each time).
    max_repairs: int = Field(1, ge=0, le=10)
    max_retries: int | None = Field(None, ge=0, le=50)  # openai backend: SDK retries on timeouts, 429 and 5xx
    timeout: float | None = Field(None, gt=0, le=3600)  # openai backend: seconds per request before it is retried
    threads: int | None = Field(None, ge=1, le=1024)  # embedded backend: CPU threads
    # A budget on tokens sent and asked for per minute (a provider's TPM limit), shared by the client's calls.
    tokens_per_minute: int | None = Field(None, ge=1, le=10**10)

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        return None if value is None else validate_base_url(value)

    @field_validator("backend", "model", "api_key")
    @classmethod
    def _valid_text(cls, value: str | None) -> str | None:
        if value is not None:
            check_text(value, "the setting")
            if not value.strip():
                raise ValueError("is empty")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file()))

    @property
    def sources(self) -> dict[str, str]:
        """Setting name -> where its value came from ("flag", "env HYPERALIGN_X", a file path, "default")."""
        return dict(self._sources)

    @property
    def cache_path(self) -> Path | None:
        return None if self.no_cache else (self.cache or default_cache_path())

    def backend_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"model": self.model, "base_url": self.base_url, "api_key": self.api_key}
        for name in ("context_tokens", "max_retries", "timeout", "threads"):
            if getattr(self, name) is not None:
                options[name] = getattr(self, name)
        return options

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, value as shown to a person, source) for every setting; the API key is never shown."""
        rows = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            source = self._sources.get(name, "default")
            if name == "api_key":
                shown = "(set)" if value else "(not set)"
            elif name == "base_url":
                shown = redact_url(value) if value else "(not set)"
            else:
                shown = "(not set)" if value is None else str(value)
            rows.append((name, shown, source))
        return rows

    def file_notice(self) -> str | None:
        """One line when the config file decided anything, naming what: an endpoint can otherwise be redirected
        by a hyperalign.toml in the working directory without the person noticing (while the API key comes from
        the environment)."""
        from_file = [name for name, source in self._sources.items() if source.startswith("file ")]
        if not from_file:
            return None
        where = self._sources[from_file[0]].removeprefix("file ")
        shown = ", ".join(f"{n}={v}" for n, v, s in self.describe() if n in from_file)
        line = f"Settings from {where}: {shown}"
        key_from_env = self._sources.get("api_key", "").startswith("env ")
        if "base_url" in from_file and key_from_env:
            line += " — requests (with the API key from OPENAI_API_KEY) go to this endpoint"
        return line + " (`hyperalign settings` lists every setting and its source)"


def _file_values(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(read_text_file(path, allow_empty=True))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); fix the file or point HYPERALIGN_CONFIG elsewhere") from None
    except InputError as exc:
        raise InputError(f"the settings file {exc}") from None


def _check_file_values(path: Path, values: dict[str, Any]) -> None:
    """Every value the settings file holds, checked by its field's type even where a flag or an environment variable
    overrides it: a file that is wrong is said to be wrong now, not on the day the override goes away."""
    for name, value in values.items():
        try:
            field = Settings.model_fields[name]
            kind: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
            TypeAdapter(kind).validate_python(value)  # its type and bounds
        except ValidationError as exc:
            message = redact_text(exc.errors()[0]["msg"].removeprefix("Value error, "))
            raise InputError(f"invalid setting '{name}' (from {path}): {message}") from None


def load_settings(**overrides: Any) -> Settings:
    given = {k: v for k, v in overrides.items() if v is not None}
    path = config_file()
    file_values = _file_values(path)  # read first: a syntax error is named here, never a traceback
    unknown = sorted(set(file_values) - set(Settings.model_fields))
    if unknown:
        raise InputError(f"{path}: unknown setting '{unknown[0]}' (known: {', '.join(Settings.model_fields)})")
    env = EnvSettingsSource(Settings)()
    _check_file_values(path, file_values)
    sources: dict[str, str] = {}
    for name in Settings.model_fields:
        if name in given:
            sources[name] = "flag"
        elif name in env:
            sources[name] = f"env HYPERALIGN_{name.upper()}"
        elif name in file_values:
            sources[name] = f"file {path}"
    fallbacks: dict[str, Any] = {name: os.environ[variable] for name, variable in SDK_VARIABLES.items()
                 if name not in sources and os.environ.get(variable)}
    sources |= {name: f"env {SDK_VARIABLES[name]}" for name in fallbacks}
    try:
        settings = Settings(**{**given, **fallbacks})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        origin = sources.get(name, "")
        where = f" (from {origin.removeprefix('file ')})" if origin and origin != "flag" else ""
        message = redact_text(first["msg"].removeprefix("Value error, "), [given.get("api_key")])
        raise InputError(f"invalid setting '{name}'{where}: {message}") from None
    settings._sources = sources
    return settings
