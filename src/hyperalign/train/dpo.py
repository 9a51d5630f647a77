"""DITTO's second phase: online DPO in rounds of fresh samples, the demonstrations preferred over the policy's own
samples (and later samples over earlier ones), with the reference fixed at the SFT policy."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from .config import DittoConfig
from .data import Demonstration
from .generate import generate_texts
from .pairs import PAIR_KINDS, batch_shape, build_round_pairs
from .trainer import log_entries, trainer_arguments, unpatch_forward


def sample_round(model: Any, tokenizer: Any, demonstrations: Sequence[Demonstration], config: DittoConfig,
                 device: str) -> list[list[str]]:
    m = config.dpo.samples_per_prompt
    prompts = [d.prompt for d in demonstrations for _ in range(m)]
    texts = generate_texts(model, tokenizer, prompts, max_new_tokens=config.lengths.max_new_tokens,
                           temperature=config.dpo.temperature, batch_size=config.runtime.sample_batch_size, device=device)
    return [texts[i * m : (i + 1) * m] for i in range(len(demonstrations))]


def run_dpo(
    peft_model: Any, tokenizer: Any, demonstrations: Sequence[Demonstration], config: DittoConfig, device: str,
    dtype: str, workdir: str, say: Callable[[str], None],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train the SFT adapter further by DPO; returns the per-step log rows and one summary per sampling round."""
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
            **trainer_arguments(config, device, dtype, workdir),
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
        unpatch_forward(peft_model)
        kinds = {k: sum(p.kind == k for pairs in per_step for p in pairs) for k in PAIR_KINDS}
        round_index = len(rounds)
        entries += log_entries(trainer.state.log_history, "dpo", step, {"round": round_index})
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
