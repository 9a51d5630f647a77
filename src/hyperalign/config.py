"""Settings, from (highest first): explicit arguments or CLI flags, HYPERALIGN_* environment variables, a TOML
file (HYPERALIGN_CONFIG, else ./hyperalign.toml), defaults. The openai backend also reads OPENAI_API_KEY and
OPENAI_BASE_URL, as the openai SDK does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .errors import InputError, first_error
from .llm.cache import default_cache_path


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HYPERALIGN_", extra="forbid")

    backend: str = "embedded"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    context_tokens: int | None = None
    cache: Path | None = None
    no_cache: bool = False
    concurrency: int = 4
    max_retries: int | None = None  # for the openai backend's SDK retries on timeouts, 429 and 5xx
    threads: int | None = None  # embedded backend: CPU threads (1 degrades gracefully when cores are shared)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = Path(os.environ.get("HYPERALIGN_CONFIG", "hyperalign.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml))

    @property
    def cache_path(self) -> Path | None:
        return None if self.no_cache else (self.cache or default_cache_path())

    def backend_options(self) -> dict[str, Any]:
        options = {"model": self.model, "base_url": self.base_url, "api_key": self.api_key}
        if self.context_tokens is not None:
            options["context_tokens"] = self.context_tokens
        if self.max_retries is not None:
            options["max_retries"] = self.max_retries
        if self.threads is not None:
            options["threads"] = self.threads
        return options


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        where, message = first_error(exc, "settings")
        raise InputError(f"invalid setting '{where}': {message}") from None
