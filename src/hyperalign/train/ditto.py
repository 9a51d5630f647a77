"""DITTO, the fine-tuning baseline (Shaikh et al. 2024, "Show, Don't Tell", arXiv 2406.00888).

Per user: supervised fine-tuning of a LoRA adapter on the user's few demonstrations, then online DPO in which the
demonstrations are preferred over the policy's own samples (and later samples over earlier ones), with the reference
fixed at the SFT policy. The demonstrations are exactly the ones the authorship evaluation's split gives that author,
and `generate_for_tasks` writes the `import:` rows the evaluation compares on the same held-out prompts.

This module imports no ML library at import time: the configuration, the demonstrations and the comparison pairs are
plain Python (and tested without torch); torch, transformers, peft and trl are imported when a model is loaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import resource
import sys
import tempfile
import time
import tomllib
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import BackendUnavailableError, InputError
from ..eval.corpus import NEWS_PROMPT, AuthorSplit, PromptStyle, Split, first_sentence, load_corpus, make_split

INSTALL_HINT = 'pip install -e ".[train]"'
DEFAULT_CONFIG_PATH = Path(__file__).with_name("ditto.default.toml")
TRAINING_PACKAGES = ("torch", "transformers", "peft", "trl", "gguf")

# --tiny: a run small enough for a CPU test (2 SFT steps, 2 DPO steps, 2 samples per prompt, short sequences).
# Resampling every step makes the second DPO step use a second round, so older samples exist; micro-batches of 2
# comparisons keep the CPU's peak memory down (the step still averages over all of them).
TINY_OVERRIDES: dict[str, dict[str, Any]] = {
    "sft": {"max_steps": 2},
    "dpo": {"max_steps": 2, "samples_per_prompt": 2, "resample_every": 1, "micro_batch_size": 2},
    "lengths": {"max_new_tokens": 128, "max_length": 256},
    "generate": {"max_new_tokens": 128},
}


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------


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
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise InputError(f"{source}: '{where}': {first['msg'].removeprefix('Value error, ')}") from None


# ---------------------------------------------------------------------------------------------------------------
# Demonstrations and held-out prompts: the authorship evaluation's split
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demonstration:
    prompt: str
    text: str


def load_split(
    corpus: Path, *, authors: int, shots: int, prompts_per_author: int, seed: int, prompt_style: PromptStyle = "auto"
) -> Split:
    """The same call `hyperalign eval authorship` makes, so the author set, demonstrations and prompts match."""
    return make_split(
        load_corpus(corpus), authors=authors, shots=shots, prompts_per_author=prompts_per_author, seed=seed,
        prompt_style=prompt_style,
    )


def select_authors(split: Split, names: Sequence[str] = (), *, all_authors: bool = False) -> list[AuthorSplit]:
    if all_authors:
        return list(split.authors)
    if not names:
        raise InputError("name an author (--author NAME, repeatable) or pass --all-authors")
    by_name = {a.author: a for a in split.authors}
    missing = [n for n in names if n not in by_name]
    if missing:
        skipped = f"; left out of the split for too few texts: {', '.join(split.skipped)}" if split.skipped else ""
        raise InputError(
            f"author {missing[0]!r} is not in this split (same --corpus, --authors, --shots, --prompts-per-author and "
            f"--seed as the evaluation). The split's authors: {', '.join(by_name)}{skipped}"
        )
    return [by_name[n] for n in dict.fromkeys(names)]


def demonstrations_of(author: AuthorSplit, prompt_style: PromptStyle = "auto") -> list[Demonstration]:
    """The author's demonstrations, each with its row prompt or the news preset on its own first sentence."""
    result = []
    for example in author.demonstrations:
        if prompt_style == "row" or (prompt_style == "auto" and example.prompt):
            if not example.prompt:
                raise InputError(f"author {author.author!r}: prompt style 'row' needs a prompt on every demonstration")
            prompt = example.prompt
        else:
            prompt = NEWS_PROMPT.format(opening=first_sentence(example.text))
        result.append(Demonstration(prompt=prompt, text=example.text.strip()))
    return result


def author_folder_name(author: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", author).strip("._") or "author"


# ---------------------------------------------------------------------------------------------------------------
# Comparison pairs
# ---------------------------------------------------------------------------------------------------------------

PAIR_KINDS = ("demo_vs_current", "demo_vs_older", "newer_vs_older")


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    kind: str


# rounds[r][i]: the samples drawn in sampling round r (oldest first) for demonstration i.
SampleRounds = Sequence[Sequence[Sequence[str]]]


def pair_counts(total: int, fractions: dict[str, float]) -> dict[str, int]:
    return {kind: round(total * fractions[kind]) for kind in PAIR_KINDS}


def build_step_pairs(
    demonstrations: Sequence[Demonstration],
    rounds: SampleRounds,
    *,
    batch_prompts: int,
    pairs_per_prompt: int,
    fractions: dict[str, float],
    rng: random.Random,
) -> list[Pair]:
    """One DPO step's comparisons, as the authors' collator builds them: a batch of prompts, pairs_per_prompt
    comparisons per prompt, split 70/20/10 between the demonstration over a current sample, the demonstration over an
    older sample and a newer sample over an older one. A kind with too few candidates contributes all it has, so
    round 1 (no older samples) holds only demonstration-vs-current comparisons, and fewer of them."""
    if not rounds:
        raise ValueError("no samples yet")
    chosen = sorted(rng.sample(range(len(demonstrations)), min(batch_prompts, len(demonstrations))))
    current, older = rounds[-1], rounds[:-1]
    pools: dict[str, list[Pair]] = {kind: [] for kind in PAIR_KINDS}
    for i in chosen:
        demo = demonstrations[i]
        pools["demo_vs_current"] += [Pair(demo.prompt, demo.text, s, "demo_vs_current") for s in current[i]]
        pools["demo_vs_older"] += [Pair(demo.prompt, demo.text, s, "demo_vs_older") for r in older for s in r[i]]
        for newer in range(len(rounds)):
            for old in range(newer):
                pools["newer_vs_older"] += [
                    Pair(demo.prompt, a, b, "newer_vs_older") for a in rounds[newer][i] for b in rounds[old][i]
                ]
    pairs: list[Pair] = []
    for kind, count in pair_counts(pairs_per_prompt * len(chosen), fractions).items():
        pool = pools[kind]
        pairs += rng.sample(pool, min(count, len(pool)))
    return pairs


def build_round_pairs(
    demonstrations: Sequence[Demonstration], rounds: SampleRounds, steps: int, settings: DPOSettings, rng: random.Random
) -> list[list[Pair]]:
    """The comparisons of every step of one sampling round (a fresh draw per step)."""
    return [
        build_step_pairs(
            demonstrations, rounds, batch_prompts=settings.batch_prompts, pairs_per_prompt=settings.pairs_per_prompt,
            fractions=settings.fractions(), rng=rng,
        )
        for _ in range(steps)
    ]


def batch_shape(pairs_per_step: int, micro_batch_size: int) -> tuple[int, int]:
    """(per-device batch, gradient accumulation) that make exactly pairs_per_step comparisons per optimizer step."""
    per_device = max(d for d in range(1, min(micro_batch_size, pairs_per_step) + 1) if pairs_per_step % d == 0)
    return per_device, pairs_per_step // per_device


def sft_should_stop(log_history: Iterable[dict[str, Any]], threshold: float) -> bool:
    """True once the last logged training loss is below the threshold (the authors stop SFT there: more overfits)."""
    last = None
    for entry in log_history:
        if "loss" in entry:
            last = entry["loss"]
    return last is not None and last < threshold


def stop_below_loss(threshold: float) -> Any:
    """A transformers TrainerCallback: ends training right after the step whose logged loss is below threshold
    (logging every step). The authors check the same condition at the next step's start, which runs one more step."""
    from transformers import TrainerCallback

    class StopBelowLoss(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if sft_should_stop(state.log_history, threshold):
                control.should_training_stop = True
            return control

    return StopBelowLoss()


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------


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
        raise InputError(f"--base-model {path}: no such file or folder (a local model folder or a .gguf file)")
    raise InputError(f"--base-model {path}: neither a model folder with config.json nor a .gguf file")


def base_model_label(spec: str | Path | None) -> str:
    folder, gguf = resolve_base_model(spec)
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
    label = str(folder / gguf) if gguf else str(folder)
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
    model.to(device)
    return LoadedBase(model=model, tokenizer=tokenizer, device=device, dtype=str(torch_dtype).removeprefix("torch."),
                      label=label)


def chat_prompt(tokenizer: Any, prompt: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def generate_texts(
    model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int, temperature: float, batch_size: int,
    device: str,
) -> list[str]:
    """One completion per prompt (repeat a prompt to get several samples). temperature 0 is greedy; otherwise plain
    sampling from the full distribution (no top-k/top-p)."""
    import torch

    was_training = model.training
    model.eval()
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    outputs: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = [chat_prompt(tokenizer, p) for p in prompts[start : start + batch_size]]
            encoded = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            sampling: dict[str, Any] = (
                {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
                if temperature > 0 else {"do_sample": False}
            )
            with torch.no_grad():
                generated = model.generate(
                    **encoded, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling
                )
            new_tokens = generated[:, encoded["input_ids"].shape[1] :]
            outputs += [t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
        if was_training:
            model.train()
    return outputs


def sample_round(model: Any, tokenizer: Any, demonstrations: Sequence[Demonstration], config: DittoConfig,
                 device: str) -> list[list[str]]:
    m = config.dpo.samples_per_prompt
    prompts = [d.prompt for d in demonstrations for _ in range(m)]
    texts = generate_texts(model, tokenizer, prompts, max_new_tokens=config.lengths.max_new_tokens,
                           temperature=config.dpo.temperature, batch_size=config.runtime.sample_batch_size, device=device)
    return [texts[i * m : (i + 1) * m] for i in range(len(demonstrations))]


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


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


def _trainer_arguments(config: DittoConfig, device: str, dtype: str, output_dir: str) -> dict[str, Any]:
    return dict(
        output_dir=output_dir,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=device == "cpu",
        bf16=dtype == "bfloat16",
        fp16=dtype == "float16",
        gradient_checkpointing=config.runtime.gradient_checkpointing,
        seed=config.runtime.seed,
        max_length=config.lengths.max_length,
        weight_decay=0.0,
        dataloader_num_workers=0,
    )


def _unpatch_forward(peft_model: Any) -> None:
    """TRL patches the base model's forward (a fused LM head) for each trainer; drop the patch after training."""
    peft_model.get_base_model().__dict__.pop("forward", None)


def _log_entries(history: list[dict[str, Any]], phase: str, offset: int, extra: dict[str, Any]) -> list[dict[str, Any]]:
    keep = ("loss", "learning_rate", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
            "rewards/margins", "mean_token_accuracy")
    rows = []
    for entry in history:
        if "loss" not in entry or "step" not in entry:
            continue
        row = {"phase": phase, "step": offset + int(entry["step"]), **extra}
        row.update({k: float(entry[k]) for k in keep if k in entry})
        rows.append(row)
    return rows


def _sft(peft_model: Any, tokenizer: Any, demonstrations: Sequence[Demonstration], config: DittoConfig,
         device: str, dtype: str, workdir: str) -> tuple[list[dict[str, Any]], bool]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows = [
        {"prompt": [{"role": "user", "content": d.prompt}], "completion": [{"role": "assistant", "content": d.text}]}
        for d in demonstrations
    ]
    args = SFTConfig(
        **_trainer_arguments(config, device, dtype, workdir),
        max_steps=config.sft.max_steps,
        learning_rate=config.sft.learning_rate,
        per_device_train_batch_size=config.sft.batch_size,
        lr_scheduler_type=config.sft.lr_scheduler,
        warmup_steps=config.sft.warmup_ratio,
        completion_only_loss=True,
        packing=False,
    )
    trainer = SFTTrainer(
        model=peft_model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
        callbacks=[stop_below_loss(config.sft.stop_loss)],
    )
    trainer.train()
    _unpatch_forward(peft_model)
    entries = _log_entries(trainer.state.log_history, "sft", 0, {})
    stopped = trainer.state.global_step < config.sft.max_steps
    return entries, stopped


def _dpo(peft_model: Any, tokenizer: Any, demonstrations: Sequence[Demonstration], config: DittoConfig,
         device: str, dtype: str, workdir: str, say: Callable[[str], None]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import torch
    from datasets import Dataset
    from transformers import get_constant_schedule, get_constant_schedule_with_warmup
    from trl import DPOConfig, DPOTrainer

    settings = config.dpo
    # The reference is the SFT policy: a frozen copy of the SFT adapter, restored after TRL (re)creates its "ref"
    # adapter from the current policy at each trainer's start.
    sft_weights = {n: p.detach().clone() for n, p in peft_model.named_parameters() if ".default." in n}
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    if settings.lr_scheduler == "constant_with_warmup":
        scheduler = get_constant_schedule_with_warmup(optimizer, round(settings.warmup_ratio * settings.max_steps))
    else:
        scheduler = get_constant_schedule(optimizer)
    rng = random.Random(config.runtime.seed)
    rounds: list[list[list[str]]] = []
    entries: list[dict[str, Any]] = []
    round_log: list[dict[str, Any]] = []
    step = 0
    while step < settings.max_steps:
        steps = min(settings.resample_every, settings.max_steps - step)
        started = time.perf_counter()
        say(f"DPO round {len(rounds) + 1}: sampling {settings.samples_per_prompt} completions for each of "
            f"{len(demonstrations)} prompts")
        rounds.append(sample_round(peft_model, tokenizer, demonstrations, config, device))
        sampling_s = time.perf_counter() - started
        per_step = build_round_pairs(demonstrations, rounds, steps, settings, rng)
        pairs_per_step = len(per_step[0])
        per_device, accumulation = batch_shape(pairs_per_step, settings.micro_batch_size)
        rows = [
            {"prompt": [{"role": "user", "content": p.prompt}],
             "chosen": [{"role": "assistant", "content": p.chosen}],
             "rejected": [{"role": "assistant", "content": p.rejected}]}
            for pairs in per_step for p in pairs
        ]
        if "ref" in peft_model.peft_config:
            peft_model.delete_adapter("ref")
        args = DPOConfig(
            **_trainer_arguments(config, device, dtype, workdir),
            max_steps=steps,
            learning_rate=settings.learning_rate,
            beta=settings.beta,
            loss_type=["sigmoid"],
            per_device_train_batch_size=per_device,
            gradient_accumulation_steps=accumulation,
        )
        trainer = DPOTrainer(
            model=peft_model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
            optimizers=(optimizer, scheduler),
        )
        _restore_reference(peft_model, sft_weights)
        trainer.train()
        _unpatch_forward(peft_model)
        kinds = {k: sum(p.kind == k for pairs in per_step for p in pairs) for k in PAIR_KINDS}
        round_index = len(rounds)
        entries += _log_entries(trainer.state.log_history, "dpo", step, {"round": round_index})
        sample_lengths = [len(s) for samples in rounds[-1] for s in samples]
        round_log.append({
            "round": round_index, "first_step": step + 1, "steps": steps, "pairs_per_step": pairs_per_step,
            "per_device_batch": per_device, "gradient_accumulation": accumulation, "pairs": kinds,
            "sampling_s": round(sampling_s, 2), "mean_sample_chars": sum(sample_lengths) / max(1, len(sample_lengths)),
            "example_sample": rounds[-1][0][0][:300],
        })
        step += steps
    if "ref" in peft_model.peft_config:
        peft_model.delete_adapter("ref")
    return entries, round_log


def _restore_reference(peft_model: Any, sft_weights: dict[str, Any]) -> None:
    import torch

    if "ref" not in peft_model.peft_config:
        raise RuntimeError("TRL did not create its 'ref' adapter; the reference cannot be the SFT policy")
    parameters = dict(peft_model.named_parameters())
    with torch.no_grad():
        for name, weight in sft_weights.items():
            reference = parameters[name.replace(".default.", ".ref.")]
            reference.copy_(weight)
            reference.requires_grad_(False)


def reference_matches_sft(peft_model: Any, sft_weights: dict[str, Any]) -> bool:
    parameters = dict(peft_model.named_parameters())
    return all(
        bool((parameters[n.replace(".default.", ".ref.")].detach() == w).all()) for n, w in sft_weights.items()
    )


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
            sft_entries, stopped = _sft(peft_model, base.tokenizer, demonstrations, config, device, base.dtype, workdir)
            sft_s = time.perf_counter() - sft_started
            dpo_started = time.perf_counter()
            dpo_entries, rounds = _dpo(peft_model, base.tokenizer, demonstrations, config, device, base.dtype, workdir,
                                       say)
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


# ---------------------------------------------------------------------------------------------------------------
# Generation for the evaluation (`import:FILE.jsonl` rows)
# ---------------------------------------------------------------------------------------------------------------


def resolve_adapter(adapter: str | Path, author: str, several: bool) -> Path:
    """--adapter may hold '{author}'; else it is the adapter folder itself (one author) or holds one folder per
    author (as `train ditto --out adapters/AUTHOR` makes them)."""
    text = str(adapter)
    if "{author}" in text:
        candidates = [Path(text.replace("{author}", author_folder_name(author)))]
    else:
        root = Path(text)
        own = [root / author_folder_name(author), root / author]
        candidates = own + [root] if not several else own
    candidates = list(dict.fromkeys(candidates))
    for candidate in candidates:
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise InputError(
        f"no adapter for author {author!r}: looked for adapter_config.json in {', '.join(map(str, candidates))} "
        f"(train one with `hyperalign train ditto --author {author!r} --out ...`)"
    )


def adapter_log(adapter_dir: Path) -> dict[str, Any]:
    path = Path(adapter_dir) / "train_log.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


@dataclass(frozen=True)
class Task:
    author: str
    prompt: str


def finished_rows(path: Path) -> set[tuple[str, str]]:
    """(author, normalized prompt) already in an import file: these are skipped when resuming."""
    from ..evidence import normalize
    from ..examples import iter_jsonl

    if not Path(path).exists():
        return set()
    return {
        (row["author"], normalize(row["prompt"]))
        for _, row in iter_jsonl(Path(path))
        if isinstance(row.get("author"), str) and isinstance(row.get("prompt"), str) and isinstance(row.get("output"), str)
    }


def read_tasks(path: Path, default_author: str | None = None) -> list[Task]:
    """JSONL rows {"author", "prompt" (or "task")}; "author" may be left out when one --author is given."""
    from ..examples import iter_jsonl

    tasks = []
    for number, row in iter_jsonl(Path(path)):
        prompt = row.get("prompt", row.get("task"))
        author = row.get("author", default_author)
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f'{path}, line {number}: expected a non-empty "prompt" (or "task") string')
        if not isinstance(author, str) or not author:
            raise InputError(f'{path}, line {number}: needs an "author" (or pass one --author)')
        tasks.append(Task(author=author, prompt=prompt))
    if not tasks:
        raise InputError(f"{path}: no tasks")
    return tasks


def generate_for_tasks(
    base: LoadedBase,
    tasks: Sequence[Task],
    adapter: str | Path,
    output: Path,
    settings: GenerateSettings,
    *,
    batch_size: int = 4,
    on_row: Callable[[dict[str, Any]], None] = lambda row: None,
    warn: Callable[[str], None] = lambda message: None,
) -> int:
    """Generate each task with its author's adapter and append {"author", "prompt", "output"} to `output` as each
    finishes; rows already there are skipped. Returns the number written."""
    from peft import PeftModel

    from ..evidence import normalize

    done = finished_rows(output)
    todo = [t for t in tasks if (t.author, normalize(t.prompt)) not in done]
    authors = list(dict.fromkeys(t.author for t in todo))
    several = len({t.author for t in tasks}) > 1
    adapters = {a: resolve_adapter(adapter, a, several) for a in authors}  # all found before any slow work
    for author, folder in adapters.items():
        recorded = adapter_log(folder).get("base_model")
        if recorded and Path(recorded) != Path(base.label):
            warn(f"the adapter {folder} was trained on {recorded}, not on {base.label}")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with output.open("a", encoding="utf-8") as sink:
        for author in authors:
            mine = [t for t in todo if t.author == author]
            model = PeftModel.from_pretrained(base.model, str(adapters[author]))
            model.to(base.device)
            try:
                for start in range(0, len(mine), batch_size):
                    chunk = mine[start : start + batch_size]
                    texts = generate_texts(
                        model, base.tokenizer, [t.prompt for t in chunk], max_new_tokens=settings.max_new_tokens,
                        temperature=settings.temperature, batch_size=batch_size, device=base.device,
                    )
                    for task, text in zip(chunk, texts, strict=True):
                        row = {"author": task.author, "prompt": task.prompt, "output": text}
                        sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                        sink.flush()
                        written += 1
                        on_row(row)
            finally:
                base.model = model.unload()
    return written


def tasks_from_split(authors: Sequence[AuthorSplit]) -> list[Task]:
    return [Task(author=item.author, prompt=item.prompt) for a in authors for item in a.held_out]


__all__ = [
    "DEFAULT_CONFIG_PATH", "INSTALL_HINT", "PAIR_KINDS", "DittoConfig", "Demonstration", "LoadedBase", "Pair", "Task",
    "batch_shape", "build_round_pairs", "build_step_pairs", "demonstrations_of", "generate_for_tasks", "load_base",
    "load_config", "load_split", "pair_counts", "read_tasks", "require_training_stack", "resolve_adapter",
    "resolve_base_model", "select_authors", "sft_should_stop", "tasks_from_split", "train_ditto",
]
