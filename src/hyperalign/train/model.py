"""The base model DITTO fine-tunes: a local HF folder or a GGUF file (by default the embedded SmolLM2), loaded
offline onto the device with torch's threads."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, InputError

INSTALL_HINT = 'pip install -e ".[train]"'
TRAINING_PACKAGES = ("torch", "transformers", "peft", "trl", "gguf")


def _offline() -> None:
    """Never download anything: models come from local folders or GGUF files."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF loader's bar; our CLI shows its own progress
    if "huggingface_hub" in sys.modules:  # imported before us: its constants were read already
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True


def require_training_stack(gguf: bool = True) -> None:
    """One clear message when the `train` extra is missing."""
    needed = [p for p in TRAINING_PACKAGES if gguf or p != "gguf"]
    missing = [p for p in needed if importlib.util.find_spec(p) is None]
    if missing:
        raise BackendUnavailableError(
            f"DITTO needs {', '.join(TRAINING_PACKAGES)} (missing: {', '.join(missing)}). "
            f"Install them with `{INSTALL_HINT}`"
        )


def resolve_base_model(spec: str | Path | None) -> tuple[Path, str | None]:
    """(folder, GGUF file name or None) for --base-model: a local HF model folder, a .gguf file, or by default the
    embedded SmolLM2-135M-Instruct GGUF."""
    if spec is None or str(spec) == "":
        from ..llm.embedded import default_model_path

        path = default_model_path()
        if not path.is_file():
            raise BackendUnavailableError(f"{path}: the embedded model file is missing")
        return path.parent, path.name
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path.parent.resolve(), path.name
    if path.is_dir() and (path / "config.json").is_file():
        return path.resolve(), None
    if not path.exists():
        raise InputError(f"the base model {path}: no such file or folder (a local model folder or a .gguf file)")
    raise InputError(f"the base model {path}: neither a model folder with config.json nor a .gguf file")


def base_model_label(spec: str | Path | None) -> str:
    return _label(*resolve_base_model(spec))


def _label(folder: Path, gguf: str | None) -> str:
    return str(folder / gguf) if gguf else str(folder)


@dataclass
class LoadedBase:
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    label: str


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        if device == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


def _quiet() -> None:
    import datasets
    import transformers

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|trl)\b")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()


def load_base(
    spec: str | Path | None = None, *, dtype: str = "auto", device: str | None = None, threads: int = 0
) -> LoadedBase:
    """The base model and its tokenizer, offline. threads > 0 sets torch's CPU threads (0: torch's default)."""
    folder, gguf = resolve_base_model(spec)
    _offline()
    require_training_stack(gguf=gguf is not None)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet()
    device = device or pick_device()
    if threads:
        torch.set_num_threads(threads)
    torch_dtype = _dtype(dtype, device)
    kwargs: dict[str, Any] = {"local_files_only": True}
    model_kwargs: dict[str, Any] = {}
    if gguf:
        from transformers import GgufConfig

        kwargs["gguf_file"] = gguf
        # Unpacked into a plain dense model: LoRA training needs ordinary Linear layers (a GGUF-quantized model is
        # refused by the Trainer).
        model_kwargs["quantization_config"] = GgufConfig(dequantize=True)
    label = _label(folder, gguf)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch_dtype, **kwargs, **model_kwargs)
    except (OSError, ValueError) as exc:
        raise BackendUnavailableError(f"{label}: cannot load the model offline ({exc})") from None
    if getattr(model, "hf_quantizer", None) is not None and gguf:
        raise BackendUnavailableError(f"{label}: transformers kept the GGUF weights packed; DITTO needs them unpacked")
    if tokenizer.chat_template is None:
        raise InputError(f"{label}: the model has no chat template (DITTO needs an instruction-tuned chat model)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)  # type: ignore[arg-type]  # transformers types `to` through a wrapper that expects a model
    return LoadedBase(model=model, tokenizer=tokenizer, device=device, dtype=str(torch_dtype).removeprefix("torch."),
                      label=label)
