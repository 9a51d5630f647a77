"""Living profiles, the LLM half of an update from new texts of the same user: every hypothesis rated on each new
text, new candidates inferred from them (evidence-checked as always), the measured facts measured on them — once,
against the version read at the start — and the voice samples chosen again among those the profile keeps and the
new texts' sentences (as many as it keeps). What this finds is merged into the current version by profiles/update.py,
so a person's edit made meanwhile wins."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..llm import LLMClient, track_usage
from ..profiles.model import Fact, Profile, UserExample, VoiceSample, WordUse
from ..profiles.store import ProfileStore
from ..profiles.update import AUTOMATED_AUTHOR, Findings, UpdateResult, save_update, score_difference
from .excerpts import characteristic_samples
from .facts import merge_facts, style_facts
from .infer import ainfer_profile
from .options import InferenceOptions
from .selection import score_hypotheses
from .word_use import blend_word_use


def _default_inference() -> InferenceOptions:
    # New hypotheses come by the paper's one pass for now: an update rescores by held-out support (below), which is
    # that method's. A contrastive update (the new texts against their default voice) is not built yet.
    return InferenceOptions(method="paper", infer_attributes=False, style_facts=False)


class UpdateOptions(BaseModel):
    """How an update from new texts treats the profile (`HyperAlign.update_profile`)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    retire_below: float = Field(0.1, ge=0.0, le=1.0, description="retire an inferred, unpinned hypothesis whose "
                                "support score (Wilson lower bound) falls below this ...")
    min_ratings: int = Field(3, ge=1, description="... once it has been rated on at least this many texts")
    infer_new: bool = Field(True, description="infer new candidate hypotheses from the new texts")
    inference: InferenceOptions = Field(default_factory=_default_inference,
                                        description="how new candidates are inferred (attributes are left alone: "
                                        "after the first inference they are the person's to edit)")
    update_facts: bool = Field(True, description="measure the facts on the new texts and blend them in, weighted "
                               "by text counts")


async def aupdate_profile(
    client: LLMClient, store: ProfileStore, user_id: str, examples: Sequence[UserExample],
    options: UpdateOptions | None = None, *, author: str = AUTOMATED_AUTHOR, message: str | None = None,
) -> UpdateResult:
    options = options or UpdateOptions()
    examples = list(examples)
    if not examples:
        raise InputError("no new examples to update the profile with")
    base = store.get(user_id).profile

    # Rating and inferring are independent LLM work: run them together. Measured facts are measured, not rated.
    with track_usage() as usage:
        scoring = score_hypotheses(client, base.hypotheses, examples)
        if options.infer_new:
            rescored, inferred = await asyncio.gather(
                scoring, ainfer_profile(client, user_id, examples, None,
                                        # candidates for an existing profile: no facts (blended below), no minimum
                                        options.inference.model_copy(update={"style_facts": False,
                                                                              "min_hypotheses": 0})))
        else:
            rescored, inferred = await scoring, None
    deltas = {after.id: (after.statement, score_difference(after.score, before.score))
              for before, after in zip(base.hypotheses, rescored, strict=True)}
    facts = style_facts([e.text for e in examples], language=options.inference.language) if options.update_facts else []

    def blend(profile: Profile, rejected: set[str]) -> list[Fact]:
        merged = merge_facts(profile.facts, facts, profile.n_examples, len(examples))
        return [f for f in merged if f.id not in rejected]

    def resampled(profile: Profile) -> list[VoiceSample]:
        # The samples it keeps compete with the new texts' sentences: each kept one stands as a text of its own,
        # under its own example; the new texts follow the profile's. A sample the person deleted is not among them.
        kept = profile.voice_samples
        texts = [v.text for v in kept] + [e.text for e in examples]
        indices = [v.example_index for v in kept] + [profile.n_examples + i for i in range(len(examples))]
        chosen = characteristic_samples(texts, profile.contrast_texts, len(kept), options.inference.language)
        return [VoiceSample(text=sentence, example_index=indices[t]) for t, sentence in chosen]

    def blended_use(profile: Profile) -> WordUse | None:
        return blend_word_use(profile.word_use, [e.text for e in examples]) if profile.word_use else None

    findings = Findings(deltas, inferred.hypotheses if inferred else [], usage, inferred.report if inferred else None,
                        examples, store.retired_ids(user_id), retire_below=options.retire_below,
                        min_ratings=options.min_ratings, facts=blend if facts else None,
                        samples=resampled if base.voice_samples else None,
                        word_use=blended_use if options.update_facts else None)
    return save_update(store, user_id, findings, author=author, message=message)
