"""The contrastive method (the default): a profile of how this person differs from what the model writes anyway.

1. The contrast: the backbone's default voice for the person's own tasks (contrast.py), once per profile, cached,
   stored with the profile and its cost counted in the report.
2. Contrastive proposal: the person's text beside the default voice's for the same task; each hypothesis is a
   difference, with the person's quoted evidence (quote menu and evidence check as in the paper's method) and what
   a typical answer does instead (propose.py).
3. Discriminative verification: kept only when, given the hypothesis, a check tells the person's text from the
   default's in both orders (verify.py).
4. Facts and words by code, kept only where the person stands apart from the contrast (distinctive.py).
5. Voice samples by code: the person's own sentences that carry their habits most against the contrast
   (excerpts.py), shown to the generator as written — on a small backbone the one part of a profile measured to
   carry the person (benchmarks/results: `hyperalign:excerpts=8`).
6. Word use by code: the person's rates of common habit words against the default voice's (word_use.py), what
   best-of-N ranks candidates by.

No other person's text is used: the contrast is model output, and a reference population enters as aggregates."""

from __future__ import annotations

import asyncio

from ..llm import LLMClient
from ..profiles.model import (
    Contrast,
    Fact,
    InferenceReport,
    Profile,
    UserExample,
    VoiceSample,
)
from .context import TokenCounter, fit_examples, token_counter
from .contrast import default_voice
from .distinctive import distinctive_facts
from .drafts import assembled, check_enough, checked_hypotheses, menu_for, proposal_budget, proposal_kind
from .excerpts import characteristic_samples
from .measured import direction_of
from .options import InferenceOptions
from .propose import (
    AttributesDraft,
    HypothesisDraft,
    measurement_labels,
    propose_attributes,
    propose_differences,
)
from .verify import discriminate
from .word_use import measure_word_use


def _pairs(examples: list[UserExample], contrast: Contrast, context_tokens: int | None, reserve: int,
           count_tokens: TokenCounter | None) -> tuple[list[dict[str, str]], list[UserExample], list[int]]:
    """The person's texts and the default voice's, fitted together into the context; the person's texts as shown."""
    by_example = {c.example_index: c for c in contrast.texts}
    both = [*examples, *(UserExample(text=c.text) for c in contrast.texts)]
    fitted, truncated = fit_examples(both, context_tokens, reserve, count_tokens)
    shown = fitted[: len(examples)]
    typical = dict(zip((c.example_index for c in contrast.texts), fitted[len(examples):], strict=True))
    pairs = [{"task": by_example[i].prompt, "person": shown[i].text, "typical": typical[i].text}
             for i in range(len(examples)) if i in by_example]
    return pairs, shown, [i for i in truncated if i < len(examples)]


async def ainfer_contrastive(
    client: LLMClient, user_id: str, examples: list[UserExample], attributes: dict[str, str] | None,
    options: InferenceOptions,
) -> Profile:
    contrast = await default_voice(client, examples, genre_task=options.genre_task,
                                   max_tokens=options.contrast_max_tokens, earlier=options.contrast)
    if options.reference is not None:
        contrast = contrast.model_copy(update={"reference": options.reference.name,
                                               "reference_texts": options.reference.texts})
    report = InferenceReport(method="contrastive")
    single = proposal_kind(client, options) == "single"
    budget = proposal_budget(client, options, single)
    pairs, shown, truncated = _pairs(examples, contrast, client.backend.context_tokens, budget, token_counter(client))
    report.truncated_examples = truncated
    menu = menu_for(client, shown, options, truncated)

    facts: list[Fact] = []
    measured = 0
    if options.style_facts:
        facts, measured = distinctive_facts([e.text for e in examples], [c.text for c in contrast.texts],
                                            reference=options.reference, min_z=options.min_fact_z,
                                            language=options.language)
    report.measured_facts, report.facts_measured = len(facts), measured
    # Its habit words are English closed classes: other languages get no word use (best-of-N: the facts' margin).
    word_use = (measure_word_use([e.text for e in examples], [c.text for c in contrast.texts])
                if options.style_facts and options.language == "en" else None)
    explained = sorted(facts, key=lambda f: -abs(f.measure.z or 0.0))[:options.measured_hypotheses]
    labelled = dict(zip(measurement_labels(len(explained)), explained, strict=True))
    statements = {label: f"{direction_of(f.measure)} — {f.statement}" for label, f in labelled.items()}

    drafted_attributes: AttributesDraft | None = None
    drafts: dict[str, list[HypothesisDraft]] = {}
    if single:
        drafts, drafted_attributes = await propose_differences(
            client, pairs, options.aspects, menu=menu, max_per_aspect=options.max_per_aspect,
            attributes=options.infer_attributes, max_tokens=budget, measurements=statements)
    else:  # one call per aspect, and one for the measured differences
        calls: list[tuple[dict[str, str], dict[str, str]]] = [({aspect: guidance}, {})
                                                             for aspect, guidance in options.aspects.items()]
        if statements:
            calls.append(({}, statements))
        per_call = [propose_differences(client, pairs, aspects, menu=menu, max_per_aspect=options.max_per_aspect,
                                        attributes=False, max_tokens=budget, measurements=measurements)
                    for aspects, measurements in calls]
        for found, _ in await asyncio.gather(*per_call):
            drafts.update(found)
        if options.infer_attributes:
            drafted_attributes = await propose_attributes(client, shown)

    candidates = await checked_hypotheses(client, drafts, examples, shown, menu, report, options, measured=labelled)
    supported = [h for h in candidates if h.supported]
    # A hypothesis that explains a measured difference is checked by that measurement (the fact is distinctive
    # against the default voice); the LLM's pairwise check, a coin on a small model, is for the others.
    by_measure = [h for h in supported if h.measured_by]
    kept, failed, stats = await discriminate(
        client, [h for h in supported if not h.measured_by], examples, contrast, max_pairs=options.verify_pairs,
        z=options.verify_z, min_score=options.min_discrimination, pointwise=options.verification == "pointwise")
    report.verification = {**stats, "measured": float(len(by_measure))}
    report.failed_verification = failed
    # Hypotheses that fail verification are dropped (counted in report.verification); unsupported ones (no quote
    # found) are kept, flagged, only with keep_unsupported, as in the paper's method.
    hypotheses = by_measure + kept + ([h for h in candidates if not h.supported] if options.keep_unsupported else [])
    check_enough(hypotheses, report, options, user_id, why="tell the person's texts from the default voice's")

    samples = [VoiceSample(text=sentence, example_index=index) for index, sentence in characteristic_samples(
        [e.text for e in examples], [c.text for c in contrast.texts], options.voice_samples, options.language)]
    steps = ["infer_differences", "verify_hypotheses"] + (["infer_attributes"] if options.infer_attributes and not single else [])
    return assembled(client, user_id, examples, attributes, drafted_attributes, hypotheses, report, steps, facts=facts,
                     contrast=contrast, voice_samples=samples, word_use=word_use)
