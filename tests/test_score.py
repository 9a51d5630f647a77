"""Hypothesis scoring on held-out texts, selection within budgets, refinement, and the plain default."""

from __future__ import annotations

import json

import pytest

from conftest import single_call
from hyperalign import HyperAlign, InferenceOptions, UserExample
from hyperalign.errors import InputError
from hyperalign.llm import LLMClient, track_usage
from hyperalign.llm.fake import FakeBackend
from hyperalign.pipeline.selection import (
    SelectionOptions,
    score_hypotheses,
    score_value,
    select,
)
from hyperalign.profiles.model import Evidence, Hypothesis, HypothesisScore, wilson_lower_bound

TEXTS = [
    "Right then. The rota is on the shed door. No excuses, no exceptions.",
    "Right then. Bulb day is Saturday, nine sharp. Bring gloves and a trowel.",
    "Right then. Somebody left the gate open. The foxes had a lovely evening.",
    "Right then. We grew 212 kilos this year. I checked the log twice.",
]
EXAMPLES = [UserExample(text=t) for t in TEXTS]


def scripted(verdict_for: dict[str, str], default: str = "neutral"):
    """A responder: hypotheses verified by their quote; held-out ratings decided by statement keywords."""

    def respond(request) -> str:
        name = request.schema_name
        if name.startswith("infer_hypotheses"):
            aspect = name.split("-", 1)[1]
            return json.dumps({"hypotheses": [
                {"statement": f"Opens every note with 'Right then' ({aspect})", "evidence": ["Right then. The rota is on the shed door."]},
                {"statement": f"Uses dry humour about animals ({aspect})", "evidence": ["The foxes had a lovely evening."]},
            ]})
        if name.startswith("infer_attributes"):
            return json.dumps({"likely_role": "coordinator", "domain": "gardening", "audience": "volunteers", "formality": "informal"})
        if name.startswith("score_hypotheses"):
            prompt = request.messages[-1]["content"]
            lines = [line for line in prompt.splitlines() if line.startswith("h") and ":" in line[:4]]
            out = {}
            for line in lines:
                key, statement = line.split(":", 1)
                out[key] = next((v for k, v in verdict_for.items() if k in statement), default)
            return json.dumps(out)
        raise AssertionError(name)

    return single_call(respond)


def hypothesis(statement: str, supports: int = 0, tested: int = 0, **extra) -> Hypothesis:
    score = HypothesisScore(supports=supports, neutral=tested - supports, value=wilson_lower_bound(supports, tested)) if tested else None
    return Hypothesis(aspect=extra.pop("aspect", "writing_style"), statement=statement, supported=True,
                      evidence=[Evidence(quote="q" * 20, verified=True, example_index=0)], score=score, **extra)


def test_wilson_lower_bound_rewards_evidence_count():
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(1, 1) < wilson_lower_bound(7, 7)
    assert 0.2 < wilson_lower_bound(1, 1) < 0.21
    assert 0.64 < wilson_lower_bound(7, 7) < 0.66
    assert wilson_lower_bound(3, 10) < wilson_lower_bound(6, 10)


async def test_scoring_counts_each_held_out_text_and_accumulates():
    client = LLMClient(FakeBackend(scripted({"Right then": "supports", "humour": "contradicts"})))
    hs = [hypothesis("Opens with Right then"), hypothesis("Dry humour")]
    with track_usage() as usage:
        scored = await score_hypotheses(client, hs, EXAMPLES[:3])
    assert usage.calls == 3  # one call per text, rating all hypotheses at once
    assert (scored[0].score.supports, scored[0].score.tested) == (3, 3)
    assert (scored[1].score.contradicts, scored[1].score.supports) == (3, 0)
    assert scored[0].score.value == pytest.approx(wilson_lower_bound(3, 3))
    again = await score_hypotheses(client, scored, EXAMPLES[3:])
    assert again[0].score.tested == 4 and again[0].score.supports == 4


async def test_score_schema_requires_one_verdict_per_hypothesis():
    backend = FakeBackend(scripted({}))
    await score_hypotheses(LLMClient(backend), [hypothesis("a b c d e f g h"), hypothesis("i j k l m n o p")], EXAMPLES[:1])
    schema = backend.requests[0].json_schema
    assert schema["required"] == ["h1", "h2"]
    assert set(schema["properties"]["h1"]["enum"]) == {"supports", "contradicts", "neutral"}


def test_select_ranks_by_lower_bound_per_aspect_and_budget():
    few = hypothesis("one of one", 1, 1)
    many = hypothesis("seven of seven", 7, 7)
    weak = hypothesis("two of seven", 2, 7)
    other = hypothesis("other aspect", 3, 4, aspect="personality")
    chosen = select([few, many, weak, other], SelectionOptions(per_aspect=1))
    assert [h.statement for h in chosen] == ["seven of seven", "other aspect"]
    assert [h.statement for h in select([few, many, weak, other], SelectionOptions(per_aspect=None, max_hypotheses=2))] == ["seven of seven", "other aspect"]
    assert select([few, many], SelectionOptions(per_aspect=None, max_tokens=1)) == []


def test_select_keeps_pinned_and_person_hypotheses_even_when_weak():
    pinned = hypothesis("pinned but weak", 0, 5, pinned=True)
    person = hypothesis("written by a person", 0, 0, origin="person")
    strong = hypothesis("strong", 6, 6)
    chosen = select([pinned, person, strong], SelectionOptions(per_aspect=1, min_score=0.5))
    assert {h.statement for h in chosen} == {"pinned but weak", "written by a person"}


def test_budget_without_scores_keeps_inferred_order():
    hs = [hypothesis(f"statement number {i}") for i in range(5)]
    assert select(hs, SelectionOptions(score=False, per_aspect=None, max_hypotheses=3)) == hs[:3]


def test_selection_infers_on_part_and_scores_on_held_out():
    backend = FakeBackend(scripted({"Right then": "supports"}))
    ha = HyperAlign(LLMClient(backend))
    profile = ha.infer_profile("bev", EXAMPLES, options=InferenceOptions(method="paper", quote_menu=False, selection=SelectionOptions(held_out=2, per_aspect=1)))
    inference_prompts = [r.messages[-1]["content"] for r in backend.requests if r.schema_name.startswith("infer_")]
    assert all(TEXTS[3] not in p and TEXTS[2] not in p for p in inference_prompts)  # held-out texts unseen
    scoring = [r for r in backend.requests if r.schema_name.startswith("score_")]
    assert len(scoring) == 2
    assert all(h.score and h.score.tested == 2 for h in profile.inferred_hypotheses)
    assert all("Right then" in h.statement for h in profile.inferred_hypotheses)  # the supported ones win each aspect
    # The humour quote lies in a held-out text, so those candidates are unsupported and dropped.
    assert profile.report.selection == {"candidates": 3, "scored_on": 2, "refine_rounds": 0, "selected": 3}
    assert profile.n_examples == 4 and "score_hypotheses.v1" in profile.prompt_version


def test_refinement_infers_from_worst_described_texts():
    backend = FakeBackend(scripted({"Right then": "supports"}))
    ha = HyperAlign(LLMClient(backend))
    ha.infer_profile("bev", EXAMPLES, options=InferenceOptions(method="paper", quote_menu=False, selection=SelectionOptions(held_out=1, refine_rounds=1)))
    inference_calls = [r for r in backend.requests if r.schema_name == "infer_profile"]
    assert len(inference_calls) == 2  # every aspect in one call, then again from the worst-described texts


def test_selection_needs_two_examples():
    ha = HyperAlign(LLMClient(FakeBackend(scripted({}))))
    with pytest.raises(InputError, match="at least 2 examples"):
        ha.infer_profile("bev", EXAMPLES[:1], options=InferenceOptions(method="paper", selection=SelectionOptions()))


def test_the_paper_method_without_selection_is_one_pass_and_the_contrastive_method_is_the_default():
    assert InferenceOptions().method == "contrastive"
    assert InferenceOptions().selection is None
    backend = FakeBackend(scripted({}))
    HyperAlign(LLMClient(backend)).infer_profile("bev", EXAMPLES, options=InferenceOptions(method="paper", quote_menu=False))
    assert not any(r.schema_name.startswith("score_") for r in backend.requests)


def test_score_value_of_missing_score_is_zero():
    assert score_value(None) == 0.0
