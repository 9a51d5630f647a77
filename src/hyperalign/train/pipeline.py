"""One user's DITTO run: wrap the base model in a LoRA adapter, SFT then online DPO, save the adapter and
train_log.json."""

from __future__ import annotations

import json
import resource
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .config import DittoConfig
from .data import Demonstration
from .dpo import run_dpo
from .model import TRAINING_PACKAGES, LoadedBase
from .sft import run_sft


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in TRAINING_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def train_ditto(
    base: LoadedBase,
    demonstrations: Sequence[Demonstration],
    config: DittoConfig,
    out_dir: Path,
    *,
    meta: dict[str, Any] | None = None,
    say: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """SFT then online DPO on one user's demonstrations; saves the LoRA adapter and train_log.json in out_dir.
    The base model is wrapped in place (PEFT) and unwrapped again at the end, so one loaded base serves many users."""
    if not demonstrations:
        raise InputError("DITTO needs at least one demonstration")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(config.runtime.seed)
    device = base.device
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    lora = LoraConfig(
        r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
        target_modules=list(config.lora.target_modules), task_type="CAUSAL_LM", bias="none",
    )
    base_parameters = sum(p.numel() for p in base.model.parameters())
    peft_model = get_peft_model(base.model, lora)
    trainable_parameters = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    try:
        with tempfile.TemporaryDirectory(prefix="ditto-") as workdir:
            say(f"SFT: up to {config.sft.max_steps} steps on {len(demonstrations)} demonstrations")
            sft_started = time.perf_counter()
            sft_entries, stopped = run_sft(peft_model, base.tokenizer, demonstrations, config, device, base.dtype,
                                           workdir)
            sft_s = time.perf_counter() - sft_started
            dpo_started = time.perf_counter()
            dpo_entries, rounds = run_dpo(peft_model, base.tokenizer, demonstrations, config, device, base.dtype,
                                          workdir, say)
            dpo_s = time.perf_counter() - dpo_started
        with warnings.catch_warnings():  # "no config file next to the GGUF, assuming the vocabulary is unchanged"
            warnings.simplefilter("ignore", UserWarning)
            peft_model.save_pretrained(str(out_dir), selected_adapters=["default"])
        log = {
            "method": "ditto",
            **(meta or {}),
            "base_model": base.label,
            "device": device,
            "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
            "dtype": base.dtype,
            "parameters": {"base": base_parameters, "trainable": trainable_parameters},
            "demonstrations": len(demonstrations),
            "sft_steps": len(sft_entries),
            "sft_stopped_early": stopped,
            "dpo_steps": len(dpo_entries),
            "dpo_rounds": rounds,
            "steps": sft_entries + dpo_entries,
            "wall_time_s": {"sft": round(sft_s, 2), "dpo": round(dpo_s, 2),
                            "total": round(time.perf_counter() - started, 2)},
            "peak_memory_mb": round(peak_memory_mb(device), 1),
            "peak_memory_source": "torch.cuda.max_memory_allocated" if device == "cuda" else "ru_maxrss (process)",
            "versions": _versions(),
            "config": config.model_dump(),
        }
        (out_dir / "train_log.json").write_text(json.dumps(log, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return log
    finally:
        base.model = peft_model.unload()
