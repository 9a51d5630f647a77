"""What the service does to a chat request for a known end user: put the user's profile (or their texts, for
few-shot) in a system message before the conversation, and record exactly what was applied, so every answer can be
audited later from its response headers."""

from __future__ import annotations

from pydantic import BaseModel

from ..llm import Capabilities
from ..pipeline.context import fit_examples
from ..pipeline.evidence import locate, normalize
from ..pipeline.generate import GenerationOptions, Strategy, own_sentences, shown_to_generator, system_content
from ..pipeline.generic import marked
from ..pipeline.steer import Steering, SteerLevel, plan
from ..profiles.model import Evidence, Profile, UserExample
from ..profiles.statements import scope_of, shares, statement_keys
from ..profiles.store import ProfileStore, StoredProfile
from ..prompts import version_tag

FEW_SHOT_EXAMPLES = 7  # the most recent texts; the paper's and our evaluations' k
FEW_SHOT_CONTEXT_TOKENS = 8192  # fit them as for a small model's context when the upstream's is unknown


class Applied(BaseModel):
    """What personalized one response: the strategy, the profile version and the ids of the hypotheses and facts
    the model was shown, or how many of the user's texts."""

    strategy: str
    profile_version: int | None = None
    hypothesis_ids: list[str] = []
    examples: int = 0
    excerpts: int = 0  # how many of the user's own sentences were shown (voice samples, or `hyperalign:excerpts=N`)
    prompt_version: str | None = None
    # The profile's habits applied while and after the model writes (pipeline/steer.py); hyperalign strategies only.
    steering: Steering = Steering()

    def headers(self) -> dict[str, str]:
        headers = {"X-Hyperalign-Strategy": self.strategy,
                   "X-Hyperalign-Profile-Version": str(self.profile_version) if self.profile_version else "none"}
        if self.hypothesis_ids:
            headers["X-Hyperalign-Hypotheses"] = ",".join(self.hypothesis_ids)
        if self.examples:
            headers["X-Hyperalign-Examples"] = str(self.examples)
        if self.excerpts:
            headers["X-Hyperalign-Excerpts"] = str(self.excerpts)
        if self.prompt_version:
            headers["X-Hyperalign-Prompt"] = self.prompt_version
        if self.strategy.startswith("hyperalign"):
            headers["X-Hyperalign-Steer"] = self.steering.level.value
        if self.steering.levers:  # the facts' ids, each with how it was applied (ASCII, whatever the fact says)
            headers["X-Hyperalign-Levers"] = ",".join(f"{lever.fact_id}={lever.how}" for lever in self.steering.levers)
        return headers


def with_generic_marks(store: ProfileStore, user_key: str, profile: Profile) -> Profile:
    """The profile with each statement's share of the tenant's profiles (`shared_by`) and the generic mark
    (pipeline/generic.py), from the counts the store keeps as it saves (profiles/statements.py): one indexed read."""
    with store.transaction() as connection:
        counts, population = shares(connection, scope_of(user_key), statement_keys(profile))
    return profile.model_copy(update={"hypotheses": marked(profile.hypotheses, counts, population)})


def verify_person_quotes(profile: Profile, examples: list[UserExample]) -> Profile:
    """The profile with each quote a person gave (a hypothesis of origin "person") marked verified where it stands
    word for word in their texts (pipeline/evidence.locate, as inferred quotes are checked); a quote that is not
    there stays unverified. (`supported` is left as the edit set it: a person's own statement is applied whether or
    not they quoted anything.)"""
    # Evidence points into the texts the profile was made from (its first n_examples); a quote from a text added
    # since is checked once an update has taken that text in.
    normalized = [normalize(e.text) for e in examples[:profile.n_examples]]

    def checked(evidence: Evidence) -> Evidence:
        if evidence.verified:
            return evidence
        index = locate(evidence.quote, normalized)
        return evidence if index is None else evidence.model_copy(update={"verified": True, "example_index": index})

    hypotheses = []
    for h in profile.hypotheses:
        if h.origin == "person" and h.evidence:
            h = h.model_copy(update={"evidence": [checked(e) for e in h.evidence]})
        hypotheses.append(h)
    return profile.model_copy(update={"hypotheses": hypotheses})


def example_texts(strategy: str) -> int:
    """How many of the user's texts `hyperalign:examples=K` shows beside the profile (0 for any other strategy)."""
    prefix = "hyperalign:examples="
    return int(strategy.removeprefix(prefix)) if strategy.startswith(prefix) else 0


def excerpts(strategy: str) -> int | None:
    """How many of the user's sentences `hyperalign:excerpts=N` chooses from their texts; None for any other
    strategy (a `hyperalign` strategy then shows the profile's own voice samples)."""
    prefix = "hyperalign:excerpts="
    return int(strategy.removeprefix(prefix)) if strategy.startswith(prefix) else None


def shows_texts(strategy: str) -> bool:
    """Whether the strategy shows the user's own words beside the profile (texts or sentences of them)."""
    return bool(example_texts(strategy) or excerpts(strategy))


def system_message(strategy: str, stored: StoredProfile | None, examples: list[UserExample],
                   max_tokens: int | None, *, steer: SteerLevel = SteerLevel.OFF,
                   capabilities: Capabilities | None = None, task: str = "(task)") -> tuple[str | None, Applied]:
    """The system message that carries the user's profile (or texts), and what it applied; None for nothing. It is
    rendered by the same function as the library's and the evaluations' generation prompt (`system_content`). The
    steering is planned as the library plans it, for an upstream that can do `capabilities`; `hyperalign:no-facts`
    shows no facts and is steered by none. `hyperalign:examples=K` adds the K of `examples` closest to `task`,
    `hyperalign:excerpts=N` the N sentences of `examples` that carry the user's habits most."""
    options = GenerationOptions(max_tokens=max_tokens or 600, example_texts=example_texts(strategy),
                                excerpts=excerpts(strategy))
    if strategy == "few-shot" and examples:
        recent, _ = fit_examples(examples[-FEW_SHOT_EXAMPLES:], FEW_SHOT_CONTEXT_TOKENS, options.max_tokens)
        system = system_content(Strategy.FEW_SHOT, examples=recent, options=options)
        applied = Applied(strategy=strategy, examples=len(recent))
    elif strategy.startswith("hyperalign") and stored is not None:
        with_facts = strategy != "hyperalign:no-facts"
        options.include_facts = with_facts
        hypotheses, facts = shown_to_generator(stored.profile, options)
        shown = examples[-FEW_SHOT_EXAMPLES:] if options.example_texts or options.excerpts else None
        system = system_content(Strategy.HYPERALIGN, stored.profile, shown, options=options, task=task,
                                context_tokens=FEW_SHOT_CONTEXT_TOKENS if shown else None)
        steering = plan(stored.profile, steer if with_facts else SteerLevel.OFF, capabilities or Capabilities(),
                        words=options.steer_words if with_facts else SteerLevel.OFF)  # the library's default
        applied = Applied(strategy=strategy, profile_version=stored.version,
                          hypothesis_ids=[h.id for h in hypotheses] + [f.id for f in facts], steering=steering,
                          examples=min(options.example_texts, len(shown or [])),
                          excerpts=len(own_sentences(Strategy.HYPERALIGN, stored.profile, shown, options)))
    else:
        return None, Applied(strategy="none")
    applied.prompt_version = version_tag("generate")
    return system, applied
