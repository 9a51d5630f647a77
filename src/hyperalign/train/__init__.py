"""DITTO, the fine-tuning baseline the evaluation compares hyperalign with (Shaikh et al. 2024, "Show, Don't Tell",
arXiv 2406.00888).

Per user: supervised fine-tuning of a LoRA adapter on the user's few demonstrations, then online DPO in which the
demonstrations are preferred over the policy's own samples (and later samples over earlier ones), with the reference
fixed at the SFT policy. The demonstrations are exactly the ones the authorship evaluation's split gives that author,
and `generate_for_tasks` writes the `import:` rows the evaluation compares on the same held-out prompts.

Along the pipeline: config (settings), data (demonstrations), model (base model), sft, pairs and dpo (the two
training phases), pipeline (one user's run), generate (samples and import rows); trainer holds what SFT and DPO share.

Nothing here imports an ML library at import time: the configuration, the demonstrations and the comparison pairs are
plain Python (and tested without torch); torch, transformers, peft and trl are imported when a model is loaded, so
the extra `pip install -e ".[train]"` is needed only then.
"""

from .config import DEFAULT_CONFIG_PATH, DittoConfig, DPOSettings, load_config
from .data import Demonstration, demonstrations_of, load_split, select_authors
from .generate import (
    Task,
    finished_rows,
    generate_for_tasks,
    read_tasks,
    resolve_adapter,
    tasks_from_split,
)
from .model import (
    INSTALL_HINT,
    LoadedBase,
    base_model_label,
    load_base,
    require_training_stack,
    resolve_base_model,
)
from .pairs import (
    PAIR_KINDS,
    Pair,
    batch_shape,
    build_round_pairs,
    build_step_pairs,
    pair_counts,
)
from .pipeline import train_ditto
from .sft import sft_should_stop, stop_below_loss

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "INSTALL_HINT",
    "PAIR_KINDS",
    "DPOSettings",
    "Demonstration",
    "DittoConfig",
    "LoadedBase",
    "Pair",
    "Task",
    "base_model_label",
    "batch_shape",
    "build_round_pairs",
    "build_step_pairs",
    "demonstrations_of",
    "finished_rows",
    "generate_for_tasks",
    "load_base",
    "load_config",
    "load_split",
    "pair_counts",
    "read_tasks",
    "require_training_stack",
    "resolve_adapter",
    "resolve_base_model",
    "select_authors",
    "sft_should_stop",
    "stop_below_loss",
    "tasks_from_split",
    "train_ditto",
]
