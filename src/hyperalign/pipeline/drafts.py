"""From proposed drafts to evidence-checked hypotheses — the part every inference path shares: duplicates dropped,
quotes checked against the texts, failed quotes asked for once more, and a warning when too few survive."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import StructuredOutputError, TooFewHypothesesError
from ..llm import LLMClient
from ..profiles.model import Fact, Hypothesis, InferenceReport, Profile, UserExample, examples_hash
from ..profiles.types import Aspect
from ..prompts import version_tag
from . import evidence
from .measured import explains, showing
from .options import InferenceOptions
from .propose import (
    MEASURED,
    AttributesDraft,
    DifferenceDraft,
    FailedEvidence,
    HypothesisDraft,
    MeasuredDraft,
    fix_evidence,
    quote_menu,
)

log = logging.getLogger(__name__)


def constrained_decoding(client: LLMClient) -> bool:
    """Whether the backend enforces a JSON schema while decoding (llama.cpp in-process or as a server, vLLM,
    Ollama): then the quote menu makes invented quotes impossible, at no cost in quality."""
    return client.backend.capabilities.schema_decoding


def proposal_kind(client: LLMClient, options: InferenceOptions) -> str:
    if options.proposal is not None:
        return options.proposal
    return "per-aspect" if client.backend.capabilities.prompt_prefix_cache else "single"


def proposal_budget(client: LLMClient, options: InferenceOptions, single: bool) -> int:
    """Tokens reserved for the proposal's answer: every aspect's in one call, never more than a third of a small
    context (the examples need the rest)."""
    budget = options.max_tokens * len(options.aspects) if single else options.max_tokens
    if client.backend.context_tokens:
        budget = min(budget, max(options.max_tokens, client.backend.context_tokens // 3))
    return budget


def menu_for(client: LLMClient, shown: list[UserExample], options: InferenceOptions,
             truncated: list[int]) -> list[str]:
    """The quote menu for these (fitted) examples, or none; warns of each example the context cut."""
    for index in truncated:
        log.warning("example %d is too long for the model's context and was truncated", index + 1)
    use_menu = options.quote_menu if options.quote_menu is not None else constrained_decoding(client)
    return quote_menu(shown, options.quote_menu_size) if use_menu else []


async def checked_hypotheses(
    client: LLMClient, drafts: Mapping[str, Sequence[HypothesisDraft]], examples: list[UserExample],
    shown: list[UserExample], menu: list[str], report: InferenceReport, options: InferenceOptions,
    measured: Mapping[str, Fact] | None = None,
) -> list[Hypothesis]:
    """The drafts whose quotes the examples contain (one re-ask for the others); unsupported ones are kept, flagged,
    only with `keep_unsupported`. A draft's `instead` (contrastive proposal) becomes the hypothesis's counterpart.
    A draft explaining a measured difference (`measured`: its label -> the fact) is a writing-style hypothesis
    `measured_by` that fact when its statement names what the fact measures, the way the person differs (measured.py:
    explains); one that does not is an ordinary hypothesis, left to the LLM's verification."""
    hypotheses: list[Hypothesis] = []
    failed: list[Hypothesis] = []
    seen: set[str] = set()
    # The person's sentences a measured hypothesis may quote instead of quotes that do not show its difference.
    sentences = (menu or quote_menu(examples, options.quote_menu_size)) if measured else []
    for aspect, batch in drafts.items():
        limit = len(measured or {}) if aspect == MEASURED else options.max_per_aspect
        for draft in batch[:limit]:
            key = evidence.normalize(draft.statement).lower()
            if key in seen:
                continue
            seen.add(key)
            report.proposed += 1
            if evidence.copied_statement(draft.statement, examples):
                report.dropped_copied += 1
                report.copied_statements.append(draft.statement)
                continue
            fact = measured.get(draft.measurement) if measured and isinstance(draft, MeasuredDraft) else None
            if fact is not None and not explains(draft.statement, fact.measure):
                fact = None  # not about its fact, or the wrong way: an ordinary hypothesis
            quotes = list(draft.evidence)
            if fact is not None:  # quotes that show the difference ("?" for question marks)
                quotes = showing(quotes, sentences, fact.measure)
            hypothesis = evidence.check(Aspect.WRITING_STYLE if aspect == MEASURED else aspect, draft.statement,
                                        quotes, examples)
            counterpart = draft.instead.strip() if isinstance(draft, DifferenceDraft) else ""
            if counterpart:
                hypothesis = hypothesis.model_copy(update={"counterpart": counterpart})
            if fact is not None:
                hypothesis = hypothesis.model_copy(update={"measured_by": fact.id})
            (hypotheses if hypothesis.supported else failed).append(hypothesis)
    if failed and options.reask:
        failed = await _reask(client, shown, examples, failed, menu, report, hypotheses)
    if options.keep_unsupported:  # kept, flagged, never shown to the generator
        hypotheses += failed
    else:
        report.dropped_unsupported = len(failed)
    return hypotheses


def assembled(client: LLMClient, user_id: str, examples: list[UserExample], attributes: dict[str, str] | None,
              drafted: AttributesDraft | None, hypotheses: list[Hypothesis], report: InferenceReport,
              steps: list[str], **more: Any) -> Profile:
    """The profile an inference path found: the caller's attributes win over the model's (they know better); the
    prompt version names every step, the re-ask for quotes included when it ran."""
    inferred = {k: v.strip() for k, v in drafted.model_dump().items() if v and v.strip()} if drafted else {}
    return Profile(
        user_id=user_id, attributes={**inferred, **(attributes or {})}, hypotheses=hypotheses,
        examples_hash=examples_hash(examples), n_examples=len(examples), backend=client.backend.name,
        model=client.model, prompt_version=version_tag(*steps, *(["fix_evidence"] if report.reasked else [])),
        report=report, **more)


def check_enough(hypotheses: list[Hypothesis], report: InferenceReport, options: InferenceOptions, user_id: str,
                 why: str = "have a quote found in the texts") -> None:
    supported = sum(h.supported for h in hypotheses)
    report.too_few = supported < options.min_hypotheses
    if report.too_few:
        message = (f"only {supported} of {report.proposed} proposed hypotheses about {user_id} {why} (fewer than "
                   f"{options.min_hypotheses}); generation will rest on the attributes and the measured style facts")
        if options.strict:
            raise TooFewHypothesesError(message + " (strict)")
        log.warning(message)


async def _reask(
    client: LLMClient, shown: list[UserExample], examples: list[UserExample], failed: list[Hypothesis],
    menu: list[str], report: InferenceReport, hypotheses: list[Hypothesis],
) -> list[Hypothesis]:
    """One more call for the failed hypotheses, naming their quotes; those now supported join `hypotheses`. The
    hypotheses still without a found quote are returned."""
    report.reasked = len(failed)
    asked = [FailedEvidence(statement=h.statement, quotes=[e.quote for e in h.evidence]) for h in failed]
    try:
        fixes = await fix_evidence(client, shown, asked, menu=menu, max_tokens=120 * len(asked) + 100)
    except StructuredOutputError as exc:
        log.warning("asking again for quotes failed: %s", exc)
        return failed
    still = []
    for hypothesis, quotes in zip(failed, fixes, strict=True):
        checked = evidence.check(hypothesis.aspect, hypothesis.statement, quotes, examples) if quotes else hypothesis
        if checked.supported:
            report.recovered += 1
            hypotheses.append(checked.model_copy(update={"counterpart": hypothesis.counterpart,
                                                         "measured_by": hypothesis.measured_by}))
        else:
            still.append(hypothesis)
    return still
