"""Generation with the trained adapters: the policy's samples during DPO, and the `import:FILE.jsonl` rows
{"author", "prompt", "output"} the evaluation compares on the held-out prompts."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..eval.corpus import AuthorSplit
from ..io import JsonlLog, iter_jsonl, read_json_file
from ..pipeline.evidence import normalize
from .config import GenerateSettings
from .model import LoadedBase


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


def author_folder_name(author: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", author).strip("._") or "author"


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
        f"(train one for this author first)"
    )


def adapter_log(adapter_dir: Path) -> dict[str, Any]:
    path = Path(adapter_dir) / "train_log.json"
    if not path.is_file():
        return {}
    try:
        log = read_json_file(path)
    except InputError:
        return {}  # the log only adds a warning; a damaged one is not worth failing generation for
    return log if isinstance(log, dict) else {}


@dataclass(frozen=True)
class Task:
    author: str
    prompt: str


def finished_rows(path: Path) -> set[tuple[str, str]]:
    """(author, normalized prompt) already in an import file: these are skipped when resuming."""
    from ..pipeline.evidence import normalize

    if not Path(path).exists():
        return set()
    return {
        (row["author"], normalize(row["prompt"]))
        for _, row in iter_jsonl(Path(path))
        if isinstance(row.get("author"), str) and isinstance(row.get("prompt"), str) and isinstance(row.get("output"), str)
    }


def read_tasks(path: Path, default_author: str | None = None) -> list[Task]:
    """JSONL rows {"author", "prompt" (or "task")}; "author" may be left out when one --author is given."""

    tasks = []
    for number, row in iter_jsonl(Path(path)):
        prompt = row.get("prompt", row.get("task"))
        author = row.get("author", default_author)
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f'{path}, line {number}: expected a non-empty "prompt" (or "task") string')
        if not isinstance(author, str) or not author:
            raise InputError(f'{path}, line {number}: needs an "author" (or name one author for every row)')
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


    done = finished_rows(output)
    todo = [t for t in tasks if (t.author, normalize(t.prompt)) not in done]
    authors = list(dict.fromkeys(t.author for t in todo))
    several = len({t.author for t in tasks}) > 1
    adapters = {a: resolve_adapter(adapter, a, several) for a in authors}  # all found before any slow work
    for folder in adapters.values():
        recorded = adapter_log(folder).get("base_model")
        if recorded and Path(recorded) != Path(base.label):
            warn(f"the adapter {folder} was trained on {recorded}, not on {base.label}")
    log = JsonlLog(Path(output))
    written = 0
    # One adapter at a time; each row is appended (and synced) as it is written.
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
                    log.append(row)
                    written += 1
                    on_row(row)
        finally:
            base.model = model.unload()
    return written


def tasks_from_split(authors: Sequence[AuthorSplit]) -> list[Task]:
    return [Task(author=item.author, prompt=item.prompt) for a in authors for item in a.held_out]
