"""One unit of batch work (infer one user's profile, or write one request's text) and doing it: the same function
runs in this process (local engine) and inside Ray workers, so both engines give the same results."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

from ..api import HyperAlign
from ..errors import HyperAlignError
from ..pipeline.generate import GenerationOptions, Strategy, agenerate
from ..pipeline.infer import InferenceOptions
from ..pipeline.reference import ReferenceStats
from ..profiles.model import Profile, UserExample
from ..usage import Usage


class BatchOptions(BaseModel):
    inference: InferenceOptions = Field(default_factory=InferenceOptions)
    generation: GenerationOptions = Field(default_factory=GenerationOptions)
    # The batch's users as a reference population (aggregates only, contrast.py): each user is compared with the
    # aggregates of everyone else (their own texts taken out).
    population: Optional[ReferenceStats] = None


class Work(BaseModel):
    key: str
    kind: Literal["infer", "generate"]
    user_id: str
    examples: list[UserExample] = []
    attributes: dict[str, str] = {}
    task: str | None = None
    strategy: Strategy = Strategy.HYPERALIGN
    profile: dict[str, Any] | None = None


class Done(BaseModel):
    """A finished unit: its result (a profile or a generation, as JSON) or, for bad input or an LLM failure, the
    error — a failed unit is reported, never fatal to the batch."""

    key: str
    kind: Literal["infer", "generate"]
    user_id: str
    result: dict[str, Any] | None = None
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)

    @property
    def ok(self) -> bool:
        return self.error is None


async def perform(ha: HyperAlign, work: Work, options: BatchOptions) -> Done:
    done = Done(key=work.key, kind=work.kind, user_id=work.user_id)
    try:
        if work.kind == "infer":
            inference = options.inference
            if options.population is not None:
                others = options.population.without([e.text for e in work.examples])
                inference = inference.model_copy(update={"reference": others})
            profile = await ha.ainfer_profile(work.user_id, work.examples, work.attributes or None, inference)
            return done.model_copy(update={"result": profile.model_dump(mode="json"), "usage": profile.report.usage})
        assert work.task is not None
        profile_model = Profile.from_document(work.profile, f"the profile of {work.user_id!r}") if work.profile else None
        generation = await agenerate(ha.client, work.task, work.strategy, profile=profile_model,
                                     examples=work.examples or None, options=options.generation)
        return done.model_copy(update={"result": generation.model_dump(mode="json"), "usage": generation.usage})
    except HyperAlignError as exc:
        return done.model_copy(update={"error": " ".join(str(exc).split())[:500]})

