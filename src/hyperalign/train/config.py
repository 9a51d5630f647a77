"""DITTO's settings: the packaged defaults (ditto.default.toml), --tiny, the user's TOML and overrides, validated
into one DittoConfig."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import InputError, first_error

DEFAULT_CONFIG_PATH = Path(__file__).with_name("ditto.default.toml")

# --tiny: a run small enough for a CPU test (2 SFT steps, 2 DPO steps, 2 samples per prompt, short sequences).
# Resampling every step makes the second DPO step use a second round, so older samples exist; micro-batches of 2
# comparisons keep the CPU's peak memory down (the step still averages over all of them).
TINY_OVERRIDES: dict[str, dict[str, Any]] = {
    "sft": {"max_steps": 2},
    "dpo": {"max_steps": 2, "samples_per_prompt": 2, "resample_every": 1, "micro_batch_size": 2},
    "lengths": {"max_new_tokens": 128, "max_length": 256},
    "generate": {"max_new_tokens": 128},
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraSettings(_Section):
    r: int = Field(32, ge=1)
    alpha: int = Field(64, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1)


class SFTSettings(_Section):
    learning_rate: float = Field(3e-5, gt=0)
    max_steps: int = Field(30, ge=0)
    stop_loss: float = 1.0
    batch_size: int = Field(4, ge=1)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.2, ge=0, lt=1)


class DPOSettings(_Section):
    beta: float = Field(0.05, gt=0)
    learning_rate: float = Field(1e-6, gt=0)
    max_steps: int = Field(40, ge=0)
    lr_scheduler: Literal["constant_with_warmup", "constant"] = "constant_with_warmup"
    warmup_ratio: float = Field(0.25, ge=0, lt=1)
    samples_per_prompt: int = Field(10, ge=1)
    temperature: float = Field(1.0, gt=0)
    resample_every: int = Field(10, ge=1)
    batch_prompts: int = Field(8, ge=1)
    pairs_per_prompt: int = Field(3, ge=1)
    micro_batch_size: int = Field(8, ge=1)
    frac_demo_vs_current: float = Field(0.7, ge=0, le=1)
    frac_demo_vs_older: float = Field(0.2, ge=0, le=1)
    frac_newer_vs_older: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _fractions(self) -> DPOSettings:
        total = self.frac_demo_vs_current + self.frac_demo_vs_older + self.frac_newer_vs_older
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"the three frac_* values must add up to 1, not {total:g}")
        if self.frac_demo_vs_current <= 0:
            raise ValueError("frac_demo_vs_current must be > 0 (round 1 has no other comparisons)")
        return self

    def fractions(self) -> dict[str, float]:
        return {
            "demo_vs_current": self.frac_demo_vs_current,
            "demo_vs_older": self.frac_demo_vs_older,
            "newer_vs_older": self.frac_newer_vs_older,
        }


class LengthSettings(_Section):
    max_new_tokens: int = Field(1024, ge=1)
    max_length: int = Field(2048, ge=8)


class GenerateSettings(_Section):
    max_new_tokens: int = Field(600, ge=1)
    temperature: float = Field(0.0, ge=0)


class RuntimeSettings(_Section):
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    gradient_checkpointing: bool = False
    seed: int = 42
    sample_batch_size: int = Field(16, ge=1)
    threads: int = Field(0, ge=0)


class DittoConfig(_Section):
    lora: LoraSettings = Field(default_factory=LoraSettings)
    sft: SFTSettings = Field(default_factory=SFTSettings)
    dpo: DPOSettings = Field(default_factory=DPOSettings)
    lengths: LengthSettings = Field(default_factory=LengthSettings)
    generate: GenerateSettings = Field(default_factory=GenerateSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: Path | None = None, *, tiny: bool = False, overrides: dict[str, Any] | None = None) -> DittoConfig:
    """The packaged defaults (ditto.default.toml), then --tiny, then the user's file, then `overrides`.
    Unknown keys are refused by name, so a typo never silently keeps a default."""
    data = _read_toml(DEFAULT_CONFIG_PATH)
    if tiny:
        data = _merge(data, TINY_OVERRIDES)
    source = "the defaults"
    if path is not None:
        data = _merge(data, _read_toml(Path(path)))
        source = str(path)
    if overrides:
        data = _merge(data, overrides)
    try:
        return DittoConfig.model_validate(data)
    except ValidationError as exc:
        where, message = first_error(exc, "config")
        raise InputError(f"{source}: '{where}': {message}") from None
