"""The copy guard: a hyperalign text that hands back the person's words shown in its prompt is written again, and a
proposed "hypothesis" that is a copy of the input is no hypothesis."""

from __future__ import annotations

import asyncio

import pytest

from hyperalign.eval.authorship.methods import parse_methods
from hyperalign.llm import LLMClient
from hyperalign.llm.fake import FakeBackend
from hyperalign.pipeline.drafts import checked_hypotheses
from hyperalign.pipeline.evidence import copied_statement
from hyperalign.pipeline.generate import GenerationOptions, SteerLevel
from hyperalign.pipeline.options import InferenceOptions
from hyperalign.pipeline.propose import HypothesisDraft
from hyperalign.profiles.model import InferenceReport, Profile, UserExample
from hyperalign.text import copy_stats
from test_steer import bev

ROTA = ("The watering rota is pinned on the shed door and every plot holder takes one evening a week without fail "
        "so nobody comes back from holiday to dead beans")
EXAMPLES = [UserExample(prompt="A note about the rota.", text=ROTA),
            UserExample(prompt="Bulb day.", text="Saturday, nine sharp. Bring gloves and a trowel and a flask.")]
FRESH = "Short note today. The hoses are back in the shed and the gate code has changed again, ask me for it."
HALF = "Short note today. " + " ".join(ROTA.split()[:10]) + " and the gate code has changed again, ask me for it."
OFF = SteerLevel.OFF
TASK = "Write a note about the watering rota."


def scripted(by_seed: dict[int, str]):
    """Replies by the request's seed (greedy first: seed 0; rewrites: seeds 1, 2, ...)."""
    return lambda request: by_seed[request.seed or 0]


def shown_options(**more) -> GenerationOptions:
    return GenerationOptions(example_texts=1, steer=OFF, **more)


def test_a_text_that_copies_the_shown_text_is_written_again_sampled(make_hyperalign):
    ha, backend = make_hyperalign(scripted({0: ROTA, 1: FRESH}), cache=False)
    generation = ha.generate(bev(), TASK, "hyperalign", EXAMPLES, options=shown_options())
    assert generation.text == FRESH and generation.rewrites == 1 and generation.copy_rate == 0.0
    assert [(r.temperature, r.seed) for r in backend.requests] == [(0.0, 0), (0.8, 1)]
    assert len({str(r.messages) for r in backend.requests}) == 1  # the same prompt, sampled
    assert generation.usage.llm_calls == 2  # the rewrite's cost is counted


def test_when_every_try_copies_the_least_copying_is_kept_and_tries_are_bounded(make_hyperalign):
    ha, backend = make_hyperalign(scripted({0: ROTA, 1: HALF, 2: ROTA, 3: FRESH}), cache=False)
    generation = ha.generate(bev(), TASK, "hyperalign", EXAMPLES, options=shown_options(copy_retries=2))
    # two sampled rewrites (seed 3 never asked), then the last try without the shown text (greedy: ROTA again)
    assert len(backend.requests) == 4 and generation.rewrites == 3 and not generation.without_shown_texts
    assert "<user_text" not in backend.requests[3].messages[0]["content"] and backend.requests[3].seed == 0
    assert generation.text == HALF
    system = backend.requests[0].messages[0]["content"]
    assert generation.copy_rate == pytest.approx(copy_stats(HALF, [system])["copy_rate"], abs=1e-4)
    assert 0.05 < generation.copy_rate < 1.0


def test_a_text_under_the_limit_costs_one_call(make_hyperalign):
    ha, backend = make_hyperalign(scripted({0: FRESH}), cache=False)
    generation = ha.generate(bev(), TASK, "hyperalign", EXAMPLES, options=shown_options())
    assert len(backend.requests) == 1 and generation.rewrites == 0 and generation.copy_rate == 0.0


def test_the_guard_can_be_turned_off_and_the_baselines_are_never_guarded(make_hyperalign):
    ha, backend = make_hyperalign(scripted({0: ROTA, 1: FRESH}), cache=False)
    off = ha.generate(bev(), TASK, "hyperalign", EXAMPLES, options=shown_options(max_copied=1.0))
    assert off.text == ROTA and off.copy_rate is None and len(backend.requests) == 1
    few_shot = ha.generate(None, TASK, "few-shot", EXAMPLES, options=GenerationOptions())
    assert few_shot.text == ROTA and few_shot.copy_rate is None and few_shot.rewrites == 0
    assert len(backend.requests) == 2


BEV_LIKE = ("Right then. Rota on the shed door — one evening each — no swaps without asking first. Dead beans help "
            "nobody — right then, that is that. Bev (compost is not optional)")
PLAIN = "Additionally, overall the rota is a great idea and everyone should really be taking part in it together!"


def test_best_of_prefers_a_candidate_under_the_limit_to_a_more_adherent_copy(make_hyperalign):
    # The copy is bev's own words, so by her facts it is the more adherent candidate: unguarded, it wins.
    texts = [UserExample(prompt="A note about the rota.", text=BEV_LIKE)]
    options = GenerationOptions(example_texts=1, steer=OFF, best_of=2)
    ha, _ = make_hyperalign(scripted({0: BEV_LIKE, 1: PLAIN}), cache=False)
    unguarded = ha.generate(bev(), TASK, "hyperalign", texts, options=options.model_copy(update={"max_copied": 1.0}))
    assert unguarded.text == BEV_LIKE and unguarded.copy_rate is None
    guarded = ha.generate(bev(), TASK, "hyperalign", texts, options=options)
    assert guarded.text == PLAIN and guarded.copy_rate == 0.0
    assert guarded.candidate_scores[0] > guarded.candidate_scores[1]  # it won on the copy limit, not adherence


@pytest.mark.parametrize(("statement", "copied"), [
    ("<user_text>The watering rota is pinned on the shed door", True),  # the prompt's markup
    ("Writes: the watering rota is pinned on the shed door and every plot holder takes one", True),  # 12+ words
    ("Opens with 'The watering rota is pinned' rather than a greeting.", False),  # a short quote describes
    ("Uses no exclamation marks, where a typical answer uses several.", False),
])
def test_a_statement_must_describe_the_text_not_be_it(statement, copied):
    assert copied_statement(statement, EXAMPLES) is copied


def test_copied_statements_are_dropped_counted_and_kept_in_the_report():
    drafts = {"writing_style": [
        HypothesisDraft(statement="<user_text>Saturday, nine sharp. Bring gloves", evidence=["Saturday, nine sharp."]),
        HypothesisDraft(statement="Gives the time and what to bring in clipped sentences.",
                        evidence=["Bring gloves and a trowel and a flask."]),
    ]}
    report = InferenceReport()
    client = LLMClient(FakeBackend())
    kept = asyncio.run(checked_hypotheses(client, drafts, EXAMPLES, EXAMPLES, [], report, InferenceOptions()))
    assert [h.statement for h in kept] == ["Gives the time and what to bring in clipped sentences."]
    assert report.proposed == 2 and report.dropped_copied == 1 and report.dropped_unsupported == 0
    assert report.copied_statements == ["<user_text>Saturday, nine sharp. Bring gloves"]
    profile = Profile(user_id="ann", examples_hash="x", n_examples=2, backend="fake", model="m", prompt_version="v",
                      report=report)
    assert "## Proposed and dropped" in profile.to_markdown()
    assert "- <user_text>Saturday, nine sharp. Bring gloves" in profile.to_markdown()


def test_evaluation_variants_turn_the_guard_off_on_the_same_profiles():
    [guarded, unguarded] = parse_methods(["hyperalign:examples=1", "hyperalign:examples=1:copy-guard=off"])
    assert guarded.generation == {"example_texts": 1}
    assert unguarded.generation == {"example_texts": 1, "max_copied": 1.0} and unguarded.folder == guarded.folder



def test_when_every_try_copies_the_last_is_written_without_the_shown_texts(make_hyperalign):
    def copies_what_it_is_shown(request) -> str:
        return ROTA if "<user_text" in request.messages[0]["content"] else FRESH

    ha, backend = make_hyperalign(copies_what_it_is_shown, cache=False)
    generation = ha.generate(bev(), TASK, "hyperalign", EXAMPLES, options=shown_options())
    assert generation.text == FRESH and generation.without_shown_texts and generation.rewrites == 3
    assert "<profile>" in backend.requests[-1].messages[0]["content"]  # the profile is still shown
    never = ha.generate(bev(), TASK, "hyperalign", EXAMPLES, options=shown_options(copy_retries=0))
    assert never.text == ROTA and never.rewrites == 0  # no rewrites asked: no last try either
