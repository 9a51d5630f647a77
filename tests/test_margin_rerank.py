"""Best-of-N by the margin over the default voice: a candidate is worth what it moves away from what the model writes
anyway, towards the person, on the distinctive facts only."""

from __future__ import annotations

import pytest

from hyperalign.errors import InputError
from hyperalign.eval.authorship.methods import parse_methods
from hyperalign.pipeline.adherence import check_facts, facts_margin
from hyperalign.pipeline.facts import style_facts
from hyperalign.pipeline.generate import GenerationOptions, SteerLevel
from hyperalign.profiles.model import Profile
from test_steer import fact

# The person writes 9-word sentences; the default voice 21. Spread 6: one text of the person to the next.
PERSON = fact("sentence_words", 9.0, 21.0, -2.0, spread=6.0)
THIRTEEN = " ".join(["We met at the hall and talked about all the plans for spring."] * 4)
THREE = " ".join(["We met today."] * 8)


def profile(*facts) -> Profile:
    return Profile(user_id="p", facts=list(facts), examples_hash="0" * 16, n_examples=3, backend="fake",
                   model="fake-model", prompt_version="infer_hypotheses.v1")


def by_seed(texts: dict[int, str]):
    return lambda request: texts[request.seed or 0]


def test_the_margin_is_the_distance_gained_from_the_default_voice_in_spreads():
    [check] = check_facts(THIRTEEN, [PERSON])
    assert check.value == pytest.approx(13.0) and check.contrast == 21.0
    assert facts_margin([check]) == pytest.approx((8 - 4) / 6, abs=1e-3)
    on_the_person = check_facts(" ".join(["One two three four five six seven eight nine."] * 3), [PERSON])
    assert facts_margin(on_the_person) == pytest.approx(12 / 6, abs=1e-3)
    like_the_default = check.model_copy(update={"value": 21.0})
    assert facts_margin([like_the_default]) == pytest.approx(-2.0, abs=1e-3)
    assert facts_margin(check_facts(THIRTEEN, style_facts([THREE, THREE]))) is None  # no contrast, no margin


def test_best_of_ranks_by_margin_where_the_facts_have_a_contrast_and_by_adherence_when_asked(make_hyperalign):
    # Adherence prefers 13 words (closer to 9 than 3 is); the margin prefers 3: as far from the default voice's 21 as
    # the person is, where 13 words is most of the way back to it.
    ha, _ = make_hyperalign(by_seed({0: THIRTEEN, 1: THREE}), cache=False)
    options = GenerationOptions(best_of=2, steer=SteerLevel.OFF)
    by_margin = ha.generate(profile(PERSON), "Write a note.", options=options)
    assert by_margin.text == THREE and by_margin.reranked_by == "margin"
    assert by_margin.candidate_scores == pytest.approx([0.667, 2.0], abs=1e-3)
    by_adherence = ha.generate(profile(PERSON), "Write a note.", options=options.model_copy(update={"rerank": "adherence"}))
    assert by_adherence.text == THIRTEEN and by_adherence.reranked_by == "adherence"


def test_facts_without_a_contrast_rerank_by_adherence_and_cannot_by_margin(make_hyperalign):
    ha, backend = make_hyperalign(by_seed({0: THIRTEEN, 1: THREE}), cache=False)
    plain = fact("sentence_words", 9.0, None, None, spread=6.0)
    options = GenerationOptions(best_of=2, steer=SteerLevel.OFF)
    assert ha.generate(profile(plain), "Write a note.", options=options).reranked_by == "adherence"
    written = len(backend.requests)
    with pytest.raises(InputError, match="margin needs facts measured against the default voice"):
        ha.generate(profile(plain), "Write a note.", options=options.model_copy(update={"rerank": "margin"}))
    assert len(backend.requests) == written  # refused before any candidate was written


def test_evaluation_variants_name_the_reranker_and_share_the_profiles():
    [margin, adherence] = parse_methods(["hyperalign:best-of=4", "hyperalign:best-of=4:rerank=adherence"])
    assert margin.generation == {"best_of": 4} and adherence.generation == {"best_of": 4, "rerank": "adherence"}
    assert margin.folder == adherence.folder == ""
    with pytest.raises(InputError, match="add best-of=N"):
        parse_methods(["hyperalign:rerank=margin"])
