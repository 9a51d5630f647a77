"""Word use against the default voice: measured from hand-made texts whose habits are known, the margin a candidate
gets for them, what best-of-N ranks by, and where the profile keeps it."""

from __future__ import annotations

import math

import pytest

from hyperalign.errors import InputError
from hyperalign.llm import Capabilities
from hyperalign.pipeline.adherence import rank_score, ranked_by
from hyperalign.pipeline.generate import GenerationOptions, SteerLevel
from hyperalign.pipeline.steer import plan, word_biases
from hyperalign.pipeline.update import UpdateOptions
from hyperalign.pipeline.word_use import MIN_WORDS, blend_word_use, measure_word_use, word_margin
from hyperalign.profiles.model import Profile, WordUse
from test_contrastive import PERSON as WALKER
from test_contrastive import infer, oracle
from test_edit_update import NEW_TEXTS, responder, store  # noqa: F401  (store: the fixture)
from test_margin_rerank import PERSON as SHORT_SENTENCES
from test_margin_rerank import by_seed, profile

# The person leans on "we", "so" and "yet"; the default voice on "the", "of" and "however"; the person's texts are
# about a nanny (a topic, not a habit).
PERSON = [
    "We went out early, so we saw the nanny at the gate. Yet we did not stop, and we kept on walking so far.",
    "So we tried again and we waited; yet the nanny had gone, and we laughed so much we sat down on the wall.",
    "We know the nanny well, yet we never ask her name, so we just wave and we smile and walk on to the park.",
]
VOICE = [
    "The history of the town is the story of the river; however, the growth of the trade and the roads changed it.",
    "The role of the school in the life of the village is central; however, the cost of the buildings and the staff.",
]
LIKE_THE_PERSON = ("We left at noon, so we missed the bus, yet we did not mind and we walked on, so we saw the hills "
                   "and we sang.")
LIKE_THE_VOICE = ("The value of the land and the price of the houses rose; however, the size of the market and the "
                  "number of the buyers fell.")


@pytest.fixture
def use() -> WordUse:
    measured = measure_word_use(PERSON, VOICE)
    assert measured is not None
    return measured


def test_word_use_finds_the_persons_habit_words_and_leaves_topics_out(use):
    more, fewer = use.most_distinctive(5)
    assert {"we", "so", "yet"} <= set(more) and {"the", "of", "however"} <= set(fewer)
    assert not set(more) & {"the", "of", "however"}
    assert "nanny" not in use.words and "walking" not in use.words  # topic and content words are no habits
    assert (use.texts, use.voice_texts) == (3, 2) and len(use.words) == len(use.person) == len(use.spread)


def test_a_text_with_the_persons_habits_has_a_positive_margin_and_one_like_the_default_voice_a_negative_one(use):
    person, voice = word_margin(LIKE_THE_PERSON, use), word_margin(LIKE_THE_VOICE, use)
    assert person is not None and voice is not None
    assert person > 0 > voice
    assert word_margin("We went so far.", use) is None  # too short to measure a rate
    assert len("We went so far.".split()) < MIN_WORDS


def test_a_word_both_use_alike_moves_no_margin():
    alike = WordUse(words=["and", "we"], person=[40.0, 60.0], voice=[40.0, 5.0], spread=[10.0, 20.0], texts=2,
                    voice_texts=2)
    base = " ".join(["we"] * 3 + ["walk"] * 27)
    more_and = " ".join(["we"] * 3 + ["and"] * 9 + ["walk"] * 18)
    assert word_margin(base, alike) == pytest.approx(word_margin(more_and, alike))  # "and" adds 0 either way


def test_without_two_texts_of_the_person_or_any_of_the_voice_there_is_no_word_use():
    assert measure_word_use(PERSON[:1], VOICE) is None
    assert measure_word_use(PERSON, []) is None
    assert measure_word_use(PERSON, ["", "   "]) is None


def test_an_unaligned_word_use_is_refused():
    with pytest.raises(ValueError, match="one value per word"):
        WordUse(words=["we", "so"], person=[1.0], voice=[1.0, 2.0], spread=[1.0, 1.0], texts=2, voice_texts=1)


def test_auto_ranks_by_word_use_where_the_profile_has_it_and_refuses_word_margin_where_not(use):
    assert ranked_by("auto", use, []) == "word-margin"
    assert ranked_by("auto", None, [SHORT_SENTENCES]) == "margin"
    assert ranked_by("margin", use, [SHORT_SENTENCES]) == "margin"
    with pytest.raises(InputError, match="word-margin needs a profile whose word use was measured"):
        ranked_by("word-margin", None, [SHORT_SENTENCES])
    assert rank_score(LIKE_THE_PERSON, [], use) == (word_margin(LIKE_THE_PERSON, use), "word-margin")
    assert rank_score("Too short.", [], use) == (-4.0, "word-margin")  # unmeasurable ranks last


def test_best_of_returns_the_candidate_closest_to_the_persons_word_use(make_hyperalign, use):
    ha, _ = make_hyperalign(by_seed({0: LIKE_THE_VOICE, 1: LIKE_THE_PERSON, 2: "Too short."}), cache=False)
    with_use = profile(SHORT_SENTENCES).model_copy(update={"word_use": use})
    options = GenerationOptions(best_of=3, steer=SteerLevel.OFF)
    chosen = ha.generate(with_use, "Write a note.", options=options)
    assert chosen.text == LIKE_THE_PERSON and chosen.reranked_by == "word-margin"
    assert chosen.candidate_scores[2] == -4.0 and chosen.candidate_scores[1] > 0 > chosen.candidate_scores[0]
    by_facts = ha.generate(with_use, "Write a note.", options=options.model_copy(update={"rerank": "margin"}))
    assert by_facts.reranked_by == "margin"
    without_facts = profile().model_copy(update={"word_use": use})  # word use alone is enough to rank by
    assert ha.generate(without_facts, "Write a note.", options=options).text == LIKE_THE_PERSON


def test_contrastive_inference_measures_word_use_stores_it_and_shows_it():
    inferred, _ = infer(oracle)
    assert inferred.word_use is not None and inferred.word_use.texts == len(WALKER)
    assert inferred.word_use.voice_texts == len(inferred.contrast.texts)
    assert Profile.from_json(inferred.to_json()).word_use == inferred.word_use
    assert "## Word use (measured against a typical answer" in inferred.to_markdown()
    assert infer(oracle, style_facts=False)[0].word_use is None  # no measurements asked for
    assert infer(oracle, language="de")[0].word_use is None  # its habit words are English


def test_new_texts_blend_into_the_persons_rates_by_text_count():
    use = WordUse(words=["we", "the"], person=[0.0, 100.0], voice=[5.0, 60.0], spread=[10.0, 10.0], texts=1,
                  voice_texts=2)
    blended = blend_word_use(use, [" ".join(["we"] * 20), ""])  # an empty text is no text
    assert blended.person == [500.0, 50.0] and blended.texts == 2
    assert (blended.words, blended.voice, blended.spread) == (use.words, use.voice, use.spread)
    assert blend_word_use(use, []) == use


def test_a_living_profiles_update_blends_its_word_use_unless_facts_are_left_alone(store, make_hyperalign):  # noqa: F811
    use = WordUse(words=["we", "the"], person=[50.0, 40.0], voice=[5.0, 60.0], spread=[10.0, 10.0], texts=3,
                  voice_texts=2)
    store.modify("morwenna", lambda p: p.model_copy(update={"word_use": use}), author="setup", action="edit")
    ha, _ = make_hyperalign(responder)
    result = ha.update_profile(store, "morwenna", NEW_TEXTS, UpdateOptions(infer_new=False))
    expected = blend_word_use(use, [e.text for e in NEW_TEXTS])
    assert result.profile.word_use == expected and expected.texts == 3 + len(NEW_TEXTS)
    assert expected.person != use.person
    kept = ha.update_profile(store, "morwenna", NEW_TEXTS, UpdateOptions(infer_new=False, update_facts=False))
    assert kept.profile.word_use == expected


def test_word_steering_biases_the_words_that_stand_apart_towards_the_persons_rates_within_a_cap(use):
    biases = {b.text: b.bias for b in word_biases(use, 1.0)}
    assert biases["we"] == 1.0 and biases["yet"] > 0 and biases["so"] > 0  # capped at 1 logit
    assert biases["the"] < 0 and biases["of"] == -1.0 and biases["however"] < 0
    assert all(abs(b) <= 1.0 for b in biases.values()) and "nanny" not in biases
    alike = WordUse(words=["and", "we"], person=[40.0, 60.0], voice=[40.5, 5.0], spread=[10.0, 20.0], texts=2,
                    voice_texts=2)
    assert [b.text for b in word_biases(alike, 2.0)] == ["we"]  # "and": the same rate, no bias
    assert word_biases(alike, 3.0)[0].bias == pytest.approx(math.log(61 / 6), abs=0.01)  # under the cap: the log ratio


def test_word_steering_is_asked_for_apart_from_the_facts_levers_and_said_where_the_backend_cannot(use):
    with_use = profile(SHORT_SENTENCES).model_copy(update={"word_use": use})
    biased = Capabilities(logit_bias=True)
    assert plan(with_use, SteerLevel.OFF, biased).biases == []  # off unless asked
    steering = plan(with_use, SteerLevel.OFF, biased, words=SteerLevel.STRONG)
    assert {b.text for b in steering.biases} == {b.text for b in word_biases(use, 2.0)}
    assert [lever.metric for lever in steering.levers] == ["word_use"] and steering.levers[0].how == "steering"
    with_facts = plan(with_use, SteerLevel.LIGHT, biased, words=SteerLevel.LIGHT)
    assert len({b.text for b in with_facts.biases}) == len(with_facts.biases)  # a fact's own bias on a word stands
    unable = plan(with_use, SteerLevel.OFF, Capabilities(), words=SteerLevel.LIGHT)
    assert unable.biases == [] and unable.unavailable == ["word-use steering: this backend takes no logit bias"]
    assert plan(profile(SHORT_SENTENCES), SteerLevel.OFF, biased, words=SteerLevel.LIGHT).biases == []  # no word use


def test_generation_sends_the_word_use_biases_for_hyperalign_only(make_hyperalign, use):
    ha, backend = make_hyperalign(lambda request: LIKE_THE_PERSON, cache=False,
                                  capabilities=Capabilities(logit_bias=True))
    with_use = profile(SHORT_SENTENCES).model_copy(update={"word_use": use})
    options = GenerationOptions(steer=SteerLevel.OFF, steer_words=SteerLevel.LIGHT)
    written = ha.generate(with_use, "Write a note.", options=options)
    sent = {b.text: b.bias for b in backend.requests[-1].logit_bias or []}
    assert sent == {b.text: b.bias for b in word_biases(use, 1.0)}
    assert "word use:" in " ".join(lever.what for lever in written.levers)
