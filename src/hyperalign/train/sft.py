"""DITTO's first phase: supervised fine-tuning of the LoRA adapter on the demonstrations, stopped early once the
loss is below sft.stop_loss."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .config import DittoConfig
from .data import Demonstration
from .trainer import log_entries, trainer_arguments, unpatch_forward


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


def run_sft(peft_model: Any, tokenizer: Any, demonstrations: Sequence[Demonstration], config: DittoConfig,
            device: str, dtype: str, workdir: str) -> tuple[list[dict[str, Any]], bool]:
    """Train the adapter on the demonstrations; returns the log rows and whether the loss stopped it early."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows = [
        {"prompt": [{"role": "user", "content": d.prompt}], "completion": [{"role": "assistant", "content": d.text}]}
        for d in demonstrations
    ]
    args = SFTConfig(
        **trainer_arguments(config, device, dtype, workdir),
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
    unpatch_forward(peft_model)
    entries = log_entries(trainer.state.log_history, "sft", 0, {})
    stopped = trainer.state.global_step < config.sft.max_steps
    return entries, stopped
