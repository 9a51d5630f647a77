"""`hyperalign train ditto` and `hyperalign train generate`: the DITTO fine-tuning baseline (thin shells over
hyperalign.train). The ML stack is imported only when a model is loaded, so the CLI starts without it."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .. import train as ditto
from ..errors import InputError
from ..eval.corpus import PromptStyle, Split
from ..io import check_output_path
from ..pipeline.evidence import normalize
from .common import app, out, progress_bars, say, say_warning

train_app = typer.Typer(help="Fine-tuning baselines (DITTO), compared through `eval authorship --methods import:FILE`.",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")

SPLIT = "Split (use the same values as `hyperalign eval authorship`)"
Shots = Annotated[int, typer.Option(min=1, rich_help_panel=SPLIT)]
Authors = Annotated[int, typer.Option(min=2, rich_help_panel=SPLIT)]
PromptsPerAuthor = Annotated[int, typer.Option(min=1, rich_help_panel=SPLIT)]
Seed = Annotated[int, typer.Option(rich_help_panel=SPLIT)]
PromptStyleName = Annotated[str, typer.Option(help="auto | news | row", rich_help_panel=SPLIT)]


def _command(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return functools.partial(_register, name)


def _register(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A command without the LLM options, which training does not use (the error contract is the group's)."""
    return train_app.command(name)(function)


def _prompt_style(value: str) -> PromptStyle:
    if value not in PromptStyle.__args__:  # type: ignore[attr-defined]
        raise InputError("--prompt-style must be auto, news or row")
    return value  # type: ignore[return-value]


def _load_split(corpus: Path, *, authors: int, shots: int, prompts_per_author: int, seed: int,
                prompt_style: str) -> tuple[Split, PromptStyle]:
    """The evaluation's split from the SPLIT options, and the prompt style they name."""
    style = _prompt_style(prompt_style)
    split = ditto.load_split(corpus, authors=authors, shots=shots, prompts_per_author=prompts_per_author, seed=seed,
                             prompt_style=style)
    return split, style


def _load_base(base_model: str | None, settings: ditto.DittoConfig) -> ditto.LoadedBase:
    """The base model (default: the embedded GGUF), once the training stack is known to be installed."""
    ditto.resolve_base_model(base_model)
    ditto.require_training_stack()
    say(f"Loading {ditto.base_model_label(base_model)} ...")
    return ditto.load_base(base_model, dtype=settings.runtime.dtype, threads=settings.runtime.threads)


@_command("ditto")
def ditto_(
    corpus: Annotated[Path, typer.Option(help="Author folders (CCAT50 layout) or JSONL {author, prompt?, text, split?}.")],
    author: Annotated[str, typer.Option(help="The author to train for (one of the split's authors).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the LoRA adapter and train_log.json.")],
    shots: Shots = 7,
    authors: Authors = 10,
    prompts_per_author: PromptsPerAuthor = 3,
    seed: Seed = 0,
    prompt_style: PromptStyleName = "auto",
    base_model: Annotated[Optional[str], typer.Option(help="Local HF model folder or .gguf file (default: the embedded SmolLM2-135M-Instruct GGUF).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML overriding the DITTO defaults (ditto.default.toml).")] = None,
    tiny: Annotated[bool, typer.Option("--tiny/", help="2 SFT + 2 DPO steps, 2 samples, short sequences (CPU tests).")] = False,
) -> None:
    """Train a DITTO adapter for one author: SFT on the split's demonstrations, then online DPO."""
    settings = ditto.load_config(config, tiny=tiny)
    split, style = _load_split(corpus, authors=authors, shots=shots, prompts_per_author=prompts_per_author, seed=seed,
                               prompt_style=prompt_style)
    (chosen,) = ditto.select_authors(split, [author])
    demonstrations = ditto.demonstrations_of(chosen, style)
    base = _load_base(base_model, settings)
    meta = {
        "author": author, "corpus": str(corpus), "authors": authors, "shots": shots,
        "prompts_per_author": prompts_per_author, "seed": seed, "prompt_style": style, "tiny": tiny,
        "config_file": str(config) if config else None,
    }
    log = ditto.train_ditto(base, demonstrations, settings, out_dir, meta=meta, say=say)
    last = {phase: next((s["loss"] for s in reversed(log["steps"]) if s["phase"] == phase), None) for phase in ("sft", "dpo")}
    say(
        f"Trained {author!r} on {len(demonstrations)} demonstrations ({log['device']}): {log['sft_steps']} SFT steps"
        f"{' (stopped early)' if log['sft_stopped_early'] else ''}, last loss {last['sft']}; {log['dpo_steps']} DPO "
        f"steps in {len(log['dpo_rounds'])} rounds, last loss {last['dpo']}; {log['wall_time_s']['total']} s, peak "
        f"memory {log['peak_memory_mb']} MB."
    )
    out.print(f"Adapter: {out_dir}", highlight=False)


@_command("generate")
def generate(
    adapter: Annotated[str, typer.Option(help="Adapter folder; with several authors a folder of per-author adapters, or a path with {author}.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL {author, prompt, output} for `--methods import:FILE`; resumes.")],
    corpus: Annotated[Optional[Path], typer.Option(help="The evaluation's corpus: generate for the split's held-out prompts.")] = None,
    author: Annotated[Optional[list[str]], typer.Option(help="Author(s) to generate for (repeatable).")] = None,
    all_authors: Annotated[bool, typer.Option("--all-authors/", help="Every author in the split (or in --tasks).")] = False,
    tasks: Annotated[Optional[Path], typer.Option(help='Instead of --corpus: JSONL {"author", "prompt"}.')] = None,
    shots: Shots = 7,
    authors: Authors = 10,
    prompts_per_author: PromptsPerAuthor = 3,
    seed: Seed = 0,
    prompt_style: PromptStyleName = "auto",
    base_model: Annotated[Optional[str], typer.Option(help="The base model the adapters were trained on (default: the embedded GGUF).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML with a \\[generate] section (max_new_tokens, temperature).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(min=1, help="Per output (default 600, as the evaluation).")] = None,
    temperature: Annotated[Optional[float], typer.Option(min=0.0, help="0 = greedy (default, as the evaluation).")] = None,
) -> None:
    """Write each held-out prompt's output with its author's DITTO adapter, as rows for `import:FILE.jsonl`."""
    names = list(author or [])
    if (corpus is None) == (tasks is None):
        raise InputError("give either --corpus (the evaluation's split) or --tasks FILE.jsonl")
    if tasks is not None:
        todo = ditto.read_tasks(tasks, default_author=names[0] if len(names) == 1 else None)
        if names and not all_authors:
            known = {t.author for t in todo}
            missing = [n for n in names if n not in known]
            if missing:
                raise InputError(f"{tasks} has no tasks for author {missing[0]!r}; its authors: {', '.join(sorted(known))}")
            todo = [t for t in todo if t.author in names]
    else:
        assert corpus is not None
        split, _ = _load_split(corpus, authors=authors, shots=shots, prompts_per_author=prompts_per_author, seed=seed,
                               prompt_style=prompt_style)
        todo = ditto.tasks_from_split(ditto.select_authors(split, names, all_authors=all_authors))
    overrides: dict[str, Any] = {}
    if max_tokens is not None:
        overrides["max_new_tokens"] = max_tokens
    if temperature is not None:
        overrides["temperature"] = temperature
    settings = ditto.load_config(config, overrides={"generate": overrides} if overrides else None)
    check_output_path(output, tasks)
    done = ditto.finished_rows(output)

    remaining = [t for t in todo if (t.author, normalize(t.prompt)) not in done]
    if len(remaining) < len(todo):
        say(f"Resuming: {len(todo) - len(remaining)} of {len(todo)} prompts already in {output}.")
    if not remaining:
        say(f"Nothing to do: {output} holds all {len(todo)} outputs.")
        return
    several = len({t.author for t in todo}) > 1
    for name in dict.fromkeys(t.author for t in remaining):  # every adapter found before the model loads
        ditto.resolve_adapter(adapter, name, several)
    base = _load_base(base_model, settings)
    with progress_bars() as progress:
        bar = progress.add_task("ditto", total=len(remaining))
        written = ditto.generate_for_tasks(
            base, todo, adapter, output, settings.generate, on_row=lambda row: progress.advance(bar),
            warn=say_warning,
        )
    say(f"Wrote {written} outputs to {output} ({base.device}).")
    out.print(json.dumps({"output": str(output), "written": written, "total": len(todo)}), highlight=False)
