"""What the SFT and the DPO trainers (TRL) share: their common arguments, the cleanup after each, and the log rows
train_log.json keeps."""

from __future__ import annotations

from typing import Any

from .config import DittoConfig


def trainer_arguments(config: DittoConfig, device: str, dtype: str, output_dir: str) -> dict[str, Any]:
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


def unpatch_forward(peft_model: Any) -> None:
    """TRL patches the base model's forward (a fused LM head) for each trainer; drop the patch after training."""
    peft_model.get_base_model().__dict__.pop("forward", None)


def log_entries(history: list[dict[str, Any]], phase: str, offset: int, extra: dict[str, Any]) -> list[dict[str, Any]]:
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
