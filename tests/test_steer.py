"""Steering (pipeline/steer.py): which facts become which levers, what the backend receives, what the text becomes."""

from __future__ import annotations

import logging

import pytest

from hyperalign.errors import InputError
from hyperalign.eval.authorship.methods import parse_methods
from hyperalign.llm import Capabilities, CompletionRequest, TextBias
from hyperalign.llm.client import cache_key, unbiased_identity
from hyperalign.llm.fake import FakeBackend
from hyperalign.pipeline import generate as generate_module
from hyperalign.pipeline.generate import GenerationOptions, Strategy
from hyperalign.pipeline.steer import SteerLevel, finish, plan, prefill_text
from hyperalign.profiles.model import Fact, Measure, Profile

EVERYTHING = Capabilities(logit_bias=True, prefill=True)
TASK = "Write a note about the seed swap."


def fact(metric: str, mean: float, contrast_mean: float | None, z: float | None, spread: float = 1.0) -> Fact:
    return Fact(statement=f"fact {metric}",
                measure=Measure(metric=metric, mean=mean, spread=spread, contrast_mean=contrast_mean, z=z))


def bev(*extra: Fact) -> Profile:
    facts = [
        fact("opens_with:Right then.", 1.0, 0.0, 4.0, spread=0.25),
        fact("ends_with:Bev (compost is not optional)", 1.0, 0.0, 4.0, spread=0.25),
        fact("punctuation:exclamation", 0.0, 6.0, -2.5, spread=2.0),  # never, where the default voice does
        fact("punctuation:dash", 9.0, 1.0, 2.0, spread=2.0),  # far more than the default voice
        fact("uses:right|then", 12.0, 1.0, 3.0),
        fact("uses:additionally|overall", 0.0, 5.0, -2.0),  # the default voice's words she never uses
        fact("sentence_words", 9.0, 21.0, -3.0, spread=3.0),  # shorter sentences than the default voice's
        fact("word_letters", 3.9, 4.6, -2.0, spread=0.2),  # no lever: stated in the prompt only
    ]
    return Profile(user_id="bev", facts=[*facts, *extra], examples_hash="0" * 16, n_examples=5,
                   backend="fake", model="fake-model", prompt_version="infer_hypotheses.v1")


def test_each_distinctive_fact_becomes_its_lever():
    steering = plan(bev(), SteerLevel.LIGHT, EVERYTHING, opening="prefill")
    assert steering.opening == "Right then." and steering.prefill
    assert steering.sign_off == "Bev (compost is not optional)"
    by_text = {(b.text, b.kind): b.bias for b in steering.biases}
    assert by_text[("!", "character")] < 0  # never used: every token with "!" discouraged
    assert by_text[("—", "word")] > 0 and by_text[("–", "word")] > 0
    assert by_text[("right", "word")] > 0 and by_text[("then", "word")] > 0
    assert by_text[("additionally", "word")] < 0 and by_text[("overall", "word")] < 0
    assert {lever.how for lever in steering.levers} == {"prefill", "code", "steering"}
    assert by_text[(".", "word")] > 0  # shorter sentences: the full stop comes sooner
    assert "word_letters" not in {lever.metric for lever in steering.levers}
    assert not steering.unavailable


def test_levels_differ_in_strength_and_off_applies_nothing():
    light = {b.text: b.bias for b in plan(bev(), "light", EVERYTHING).biases}
    strong = {b.text: b.bias for b in plan(bev(), "strong", EVERYTHING).biases}
    assert strong["!"] == -100 and -100 < light["!"] < 0  # strong bans never-used punctuation
    assert strong["right"] > light["right"] > 0
    off = plan(bev(), SteerLevel.OFF, EVERYTHING)
    assert off.biases == [] and off.opening is None and off.sign_off is None and off.levers == []
    with pytest.raises(InputError, match="steering level"):
        plan(bev(), "loud", EVERYTHING)


def test_a_backend_without_the_capabilities_gets_code_levers_and_is_told_what_it_lacks():
    steering = plan(bev(), SteerLevel.STRONG, Capabilities())
    assert steering.biases == [] and not steering.prefill and prefill_text(steering) is None
    # the opening, the sign-off and the never-used "!" edited out: code, whatever the backend
    assert [lever.how for lever in steering.levers] == ["code", "code", "code"]
    assert steering.unavailable and "logit bias" in steering.unavailable[0]


def test_a_habit_of_fewer_than_half_the_texts_or_shared_with_the_default_voice_is_no_lever():
    profile = bev()
    profile.facts[0] = fact("opens_with:Right then.", 0.4, 0.0, 1.6, spread=0.25)  # 2 of 5 texts
    profile.facts[1] = fact("ends_with:Bev (compost is not optional)", 1.0, 1.0, 0.0, spread=0.25)
    steering = plan(profile, SteerLevel.LIGHT, EVERYTHING)
    assert steering.opening is None and steering.sign_off is None


def test_facts_measured_without_a_contrast_pull_no_token_lever():
    """The paper method's facts: a "uses" list against general English is often the essays' topic words."""
    profile = bev(fact("uses:lucy|fran|ricky", 9.0, None, None), fact("punctuation:semicolon", 0.0, None, None))
    texts = {b.text for b in plan(profile, SteerLevel.STRONG, EVERYTHING).biases}
    assert not {"lucy", "fran", "ricky", ";"} & texts and "!" in texts


def test_finish_puts_the_opening_and_sign_off_where_the_model_left_them_out():
    steering = plan(bev(), SteerLevel.LIGHT, Capabilities(logit_bias=True))
    done = finish("Bring seeds on Saturday.", steering)
    assert done == "Right then.\n\nBring seeds on Saturday.\n\nBev (compost is not optional)"
    assert finish(done, steering) == done  # already there: nothing added twice
    assert prefill_text(plan(bev(), SteerLevel.LIGHT, EVERYTHING, opening="prefill")) == "Right then.\n\n"
    assert prefill_text(plan(bev(), SteerLevel.LIGHT, EVERYTHING)) is None  # by code unless asked


async def test_the_backend_receives_the_biases_and_the_prefill_and_the_text_carries_both_habits(make_hyperalign):
    ha, fake = make_hyperalign(["Bring seeds on Saturday."], capabilities=EVERYTHING)
    generation = await ha.agenerate(bev(), TASK, options=GenerationOptions(steer=SteerLevel.STRONG, opening="prefill"))
    request = fake.requests[-1]
    assert request.prefill == "Right then.\n\n"
    assert TextBias(text="!", kind="character", bias=-100) in request.logit_bias
    assert generation.text.startswith("Right then.") and generation.text.endswith("Bev (compost is not optional)")
    assert generation.steer is SteerLevel.STRONG
    assert [str(lever) for lever in generation.levers][:2] == ["opening “Right then.”: prefill",
                                                             "sign-off “Bev (compost is not optional)”: code"]


async def test_baselines_and_steer_off_are_never_steered(make_hyperalign):
    ha, fake = make_hyperalign(capabilities=EVERYTHING)
    await ha.agenerate(None, TASK, Strategy.ZERO_SHOT)
    await ha.agenerate(bev(), TASK, options=GenerationOptions(steer=SteerLevel.OFF))
    assert all(r.logit_bias == [] and r.prefill is None for r in fake.requests)


async def test_best_of_steers_every_candidate_and_scores_the_finished_texts(make_hyperalign):
    ha, fake = make_hyperalign(capabilities=EVERYTHING)
    generation = await ha.agenerate(bev(), TASK, options=GenerationOptions(best_of=3, opening="prefill"))
    assert len(fake.requests) == 3 and all(r.logit_bias and r.prefill for r in fake.requests)
    assert generation.text.endswith("Bev (compost is not optional)") and len(generation.candidate_scores) == 3


async def test_a_missing_capability_is_said_once_per_process(make_hyperalign, caplog, monkeypatch):
    monkeypatch.setattr(generate_module, "_SAID", set())
    ha, _ = make_hyperalign()
    with caplog.at_level(logging.WARNING, logger="hyperalign.pipeline.generate"):
        for _ in range(3):
            generation = await ha.agenerate(bev(), TASK)
    assert sum("logit bias" in r.message for r in caplog.records) == 1
    assert generation.text.startswith("Right then.")  # the opening still applied, by code


def test_requests_without_steering_keep_their_cache_keys():
    identity = {"backend": "fake", "model": "m"}
    plain = CompletionRequest(messages=[{"role": "user", "content": "hi"}])
    steered = plain.model_copy(update={"logit_bias": [TextBias(text="!", kind="character", bias=-5)]})
    prefilled = plain.model_copy(update={"prefill": "Right then."})
    assert len({cache_key(identity, r) for r in (plain, steered, prefilled)}) == 3
    # The plain request's key is the one it had before steering existed: no new field enters it.
    import hashlib
    import json

    from hyperalign.llm.client import CACHE_KEY_POLICY
    before = plain.model_dump(exclude={"logit_bias", "prefill"})
    payload = json.dumps({"policy": CACHE_KEY_POLICY, "backend": identity, "request": before},
                         sort_keys=True, ensure_ascii=True, default=str)
    assert cache_key(identity, plain) == hashlib.sha256(payload.encode("ascii")).hexdigest()


def test_how_a_backend_maps_biases_is_in_the_key_of_biased_requests_only():
    plain = CompletionRequest(messages=[{"role": "user", "content": "hi"}])
    steered = plain.model_copy(update={"logit_bias": [TextBias(text="our", bias=3)]})
    v1, v2 = {"backend": "embedded", "logit_bias_mapping": 1}, {"backend": "embedded", "logit_bias_mapping": 2}
    assert cache_key(v1, steered) != cache_key(v2, steered)  # a changed mapping: the biased answer is made again
    assert cache_key(v1, plain) == cache_key(v2, plain) == cache_key({"backend": "embedded"}, plain)
    # A run folder's generator identity is the unbiased one: a new mapping does not disown its unsteered rows.
    assert unbiased_identity(v1) == unbiased_identity(v2) == {"backend": "embedded"}


def test_the_fake_backend_continues_a_prefill_only_where_it_declares_the_capability():
    request = CompletionRequest(messages=[{"role": "user", "content": "hi"}], prefill="Right then.")
    assert FakeBackend(["body"], capabilities=EVERYTHING).complete(request).text == "Right then. body"
    assert FakeBackend(["body"]).complete(request).text == "body"


def test_evaluation_methods_take_a_steering_level_and_share_their_profiles():
    plain, off, strong = parse_methods(["hyperalign", "hyperalign:steer=off", "hyperalign:steer=strong:best-of=4"])
    assert off.generation == {"steer": "off"} and strong.generation == {"steer": "strong", "best_of": 4}
    assert plain.folder == off.folder == strong.folder == ""  # generation-only options infer nothing new
    assert parse_methods(["hyperalign:paper:steer=light"])[0].folder == "hyperalign_paper/"
    with pytest.raises(InputError, match="steer=off|light|strong"):
        parse_methods(["hyperalign:steer=loud"])
    with pytest.raises(InputError):
        parse_methods(["few-shot:steer=light"])  # the baselines have no profile to steer by
