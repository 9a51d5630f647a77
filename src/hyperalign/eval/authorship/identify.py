"""Profile identification by hypotheses: shown a held-out text of a person and the run's profiles (each only its
kept hypotheses, under a letter, in an order shuffled per text), one check call names the profile that fits. A
profile whose statements could be anyone's cannot be picked out; one that names the person's differences can.
Chance is 1 / the profiles shown.

On a sample: the first `per_author` held-out texts of each person whose profile kept a hypothesis (a profile with
none has nothing to be identified by, and is counted apart). At most 26 profiles are shown (one letter each): with
more, the person's own and 25 drawn from the others.

`specific_only`: each profile shown without the hypotheses the run's population marks generic (pipeline/generic.py,
as a batch marks them), so the measure tells whether what is left names the person.

Where the backend returns log-probabilities the letter is read from them, and each letter's prior over the run's
calls is removed first (contextual calibration: a small checker that favours "A" would otherwise pick whoever was
shuffled first); elsewhere, one sampled letter, validated."""

from __future__ import annotations

import random
import string
from typing import Any, Literal

from pydantic import create_model

from ...llm import LLMClient
from ...llm.labels import read_labels
from ...pipeline.context import clip
from ...pipeline.generic import mark_generic
from ...profiles.model import Profile
from ...prompts import render_messages
from ..corpus import Split
from ..stats import bootstrap

MAX_SHOWN = len(string.ascii_uppercase)
TEXT_CHARS = 2000  # the text's opening: enough to show how it is written, leaving the room to the profiles


def _shown(author: str, others: list[str], key: str) -> list[str]:
    """The profiles shown for one text, in their order: the person's own among (at most MAX_SHOWN - 1) others."""
    rng = random.Random(key)
    others = sorted(others)
    if len(others) > MAX_SHOWN - 1:
        others = rng.sample(others, MAX_SHOWN - 1)
    shown = [author, *others]
    rng.shuffle(shown)
    return shown


async def _letter_probabilities(client: LLMClient, messages: list[dict[str, str]], letters: str,
                                ) -> dict[str, float] | None:
    read = await read_labels(client, messages, tuple(letters))
    return read[0] if read else None


async def _sampled_letter(client: LLMClient, messages: list[dict[str, str]], letters: str) -> str:
    schema = create_model("Identification", writer=(Literal[tuple(letters)], ...))  # type: ignore[arg-type]
    answer = await client.acomplete_structured(messages, schema, step="identify_profile", max_tokens=20)
    return str(answer.model_dump()["writer"])


async def identification_by_hypotheses(client: LLMClient, split: Split, users: dict[str, Profile],
                                       per_author: int = 1, seed: int = 0, specific_only: bool = False,
                                       ) -> dict[str, Any]:
    """How often the check call names the person's own profile (module docstring)."""
    if specific_only:
        users = dict(zip(users, mark_generic(list(users.values())), strict=True))
    shown_hypotheses = {a: [h.statement for h in p.inferred_hypotheses if not (specific_only and h.generic)]
                        for a, p in users.items()}
    statements = {a: s for a, s in shown_hypotheses.items() if s}
    result: dict[str, Any] = {"profiles_with_hypotheses": len(statements), "profiles": len(users)}
    if len(statements) < 2:
        return {**result, "accuracy": None, "chance": None, "reading": None,
                "skipped": "fewer than two profiles kept a hypothesis"}
    calls: list[tuple[str, list[str], list[dict[str, str]]]] = []
    for author in split.authors:
        if author.author not in statements:
            continue
        for item in author.held_out[:per_author]:
            shown = _shown(author.author, [a for a in statements if a != author.author], f"{seed}:{item.id}")
            messages = render_messages("identify_profile", text=clip(item.reference, TEXT_CHARS),
                                       profiles=[(string.ascii_uppercase[i], statements[a]) for i, a in enumerate(shown)])
            calls.append((author.author, shown, messages))
    picks: list[str | None]
    if client.backend.capabilities.logprobs:
        read = [await _letter_probabilities(client, m, string.ascii_uppercase[:len(s)]) for _, s, m in calls]
        prior = {letter: sum(r.get(letter, 0.0) for r in read if r) / max(1, sum(1 for r in read if r))
                 for letter in string.ascii_uppercase[:max(len(s) for _, s, _ in calls)]}
        picks = [max(r, key=lambda letter: r[letter] / max(prior[letter], 1e-6)) if r else None for r in read]
        reading = "label probabilities, each letter's prior over the run removed"
    else:
        picks = [await _sampled_letter(client, m, string.ascii_uppercase[:len(s)]) for _, s, m in calls]
        reading = "sampled letter"
    hits = [float(pick is not None and shown[string.ascii_uppercase.index(pick)] == author)
            for (author, shown, _), pick in zip(calls, picks, strict=True)]
    return {**result, "accuracy": bootstrap(hits, seed=seed).as_dict(), "unread": sum(p is None for p in picks),
            "chance": sum(1 / len(s) for _, s, _ in calls) / len(calls), "reading": reading}
