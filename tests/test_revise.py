"""The revision pass (`revise`, pipeline/revise.py): code names the draft's deviations from the person's measured
facts, one call revises, and the revision is kept only where code measures it closer to the person."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hyperalign.cli import app
from hyperalign.errors import InputError
from hyperalign.eval.authorship.methods import parse_methods
from hyperalign.llm import Capabilities
from hyperalign.pipeline.adherence import FactCheck, check_facts
from hyperalign.pipeline.generate import GenerationOptions, SteerLevel
from hyperalign.pipeline.revise import deviation_text, deviations, without_preamble
from hyperalign.profiles.model import UserExample
from test_steer import bev

TASK = "Write a note inviting the volunteers to Saturday's event."
DRAFT = ("Hello everyone! We are having a big event on Saturday and everyone should come along with all their friends "
         "and family members!")
CLOSER = ("Right then. We are having a big event on Saturday — everyone should come along. Bring friends and family "
          "members. Bev (compost is not optional)")
OTHER = "Right then. Pancakes. Bev (compost is not optional)"  # closer by the numbers, but the content is gone
WORSE = ("Hello everyone!!! We are having a big event on Saturday and everyone should come along with all their "
         "friends and family members and also their neighbours and their neighbours' friends too, additionally!")
OFF = SteerLevel.OFF


def editor(revision: str, draft: str = DRAFT):
    """The writer answers `draft`; the editor (the revision prompt) answers `revision`."""
    return lambda request: revision if request.messages[0]["content"].startswith("You are an editor") else draft


def test_the_deviations_are_measured_and_named_in_the_persons_terms():
    words = len(DRAFT.split())
    named = [deviation_text(c, words) for c in deviations(check_facts(DRAFT, bev().facts))]
    assert len(named) == 4  # the largest four, by distance in the person's own spread
    assert "Remove every one of the exclamation marks: this person never uses them." in named
    assert "Begin the text with “Right then.”, as this person does." in named
    assert "End the text with “Bev (compost is not optional)”, as this person does." in named
    sentences = deviation_text(next(c for c in check_facts(DRAFT, bev().facts) if c.metric == "sentence_words"), words)
    assert sentences == ("Your draft: sentences average 11 words; this person: sentences average 9 words. Write shorter "
                         "sentences: split the long ones.")
    left = {c.metric for c in deviations(check_facts(CLOSER, bev().facts))}
    assert not left & {"opens_with:Right then.", "ends_with:Bev (compost is not optional)", "punctuation:exclamation"}


def test_rates_are_said_as_counts_in_a_text_of_the_drafts_length():
    def said(metric: str, value: float, target: float, words: int) -> str:
        return deviation_text(FactCheck(id="f", metric=metric, value=value, target=target, spread=2.0, score=0.0,
                                        contrast=1.0), words)

    assert said("punctuation:dash", 0.0, 9.0, 400) == ("Your draft has 0 dashes; this person would use about 4 in a "
                                                        "text this long. Add 4.")
    assert said("uses:right|then", 20.0, 0.0, 300).endswith("about 0 in a text this long. Remove them all.")
    assert "“right” or “then”" in said("uses:right|then", 0.0, 12.0, 300)
    assert said("punctuation:dash", 0.0, 9.0, 20).startswith("Your draft uses dashes at 0 per 1,000 words")  # too short
    assert said("numbers_as_digits", 0.0, 0.84, 100) == ("Your draft: 0% of numbers written as digits; this person: "
                                                         "84% of numbers written as digits. Write numbers as digits "
                                                         "(7, not seven).")
    assert "about 40 different words in every 50" in said("vocabulary", 0.6, 0.8, 100)


def test_a_revision_that_measures_closer_replaces_the_draft(make_hyperalign):
    ha, backend = make_hyperalign(editor(CLOSER), cache=False)
    generation = ha.generate(bev(), TASK, "hyperalign", options=GenerationOptions(steer=OFF, revise=True))
    revision = generation.revision
    assert generation.text == CLOSER and revision is not None and revision.kept and revision.draft == DRAFT
    assert revision.scored_by == "margin" and revision.revised_score > revision.draft_score
    assert revision.revised == CLOSER
    assert generation.usage.llm_calls == 2
    prompt = backend.requests[1].messages[1]["content"]
    assert f"<draft>\n{DRAFT}\n</draft>" in prompt and all(d in prompt for d in revision.deviations)
    assert backend.requests[1].temperature == 0.0


@pytest.mark.parametrize(("answer", "reason"), [
    (WORSE, "no closer to the person"),
    (OTHER, "dropped more than half of the draft's words"),
    ("", "empty"),
])
def test_a_revision_that_is_not_better_leaves_the_draft(make_hyperalign, answer, reason):
    ha, _ = make_hyperalign(editor(answer), cache=False)
    generation = ha.generate(bev(), TASK, "hyperalign", options=GenerationOptions(steer=OFF, revise=True))
    assert generation.text == DRAFT and not generation.revision.kept and reason in generation.revision.reason
    assert generation.usage.llm_calls == 2  # the call that was tried is counted


def test_a_draft_that_already_follows_the_person_costs_no_revision_call(make_hyperalign):
    fitting = ("Right then. Tea at four — bring a cup. Beds get weeded first. Then we talk seeds. "
               "Bev (compost is not optional)")
    ha, backend = make_hyperalign(editor("unused", draft=fitting), cache=False)
    profile = bev().model_copy(update={"facts": bev().facts[:3]})  # opening, sign-off, no "!"
    generation = ha.generate(profile, TASK, "hyperalign", options=GenerationOptions(steer=OFF, revise=True))
    assert generation.text == fitting and len(backend.requests) == 1
    assert generation.revision.deviations == [] and not generation.revision.kept


def test_the_revision_is_steered_like_the_draft_and_its_copies_are_refused(make_hyperalign):
    ha, backend = make_hyperalign(editor(CLOSER), cache=False, capabilities=Capabilities(logit_bias=True))
    generation = ha.generate(bev(), TASK, "hyperalign", options=GenerationOptions(steer="light", revise=True))
    assert backend.requests[1].logit_bias == backend.requests[0].logit_bias != []
    assert generation.revision.kept
    # A revision that repeats the profile's shown words is not kept, whatever its numbers.
    shown = UserExample(prompt="Saturday.", text=CLOSER)
    ha, _ = make_hyperalign(editor(CLOSER), cache=False)
    copied = ha.generate(bev(), TASK, "hyperalign", [shown],
                         options=GenerationOptions(steer=OFF, revise=True, example_texts=1))
    assert copied.text == DRAFT and "repeated" in copied.revision.reason


def test_a_chat_preamble_is_not_the_revision():
    assert without_preamble("Here is the revised text:\n\nRight then. Tea.") == "Right then. Tea."
    assert without_preamble("Sure! Revised version:\nRight then.") == "Right then."
    assert without_preamble("Here we go: tea at four.\nRight.") == "Here we go: tea at four.\nRight."  # no newline


def test_revise_is_for_a_profile_with_facts_everywhere(make_hyperalign):
    ha, _ = make_hyperalign(editor(CLOSER), cache=False)
    with pytest.raises(InputError, match="needs the 'hyperalign' strategy"):
        ha.generate(None, TASK, "few-shot", [UserExample(text=DRAFT)], options=GenerationOptions(revise=True))
    with pytest.raises(InputError, match="measured style facts"):
        ha.generate(bev().model_copy(update={"facts": []}), TASK, "hyperalign", options=GenerationOptions(revise=True))
    [method] = parse_methods(["hyperalign:revise:steer=off"])
    assert method.generation == {"steer": "off", "revise": True} and method.folder == ""
    with pytest.raises(InputError, match="no-facts"):
        parse_methods(["hyperalign:no-facts:revise"])
    result = CliRunner().invoke(app, ["--backend", "fake", "generate", "--revise", "--strategy", "zero-shot",
                                      "Write a note."])
    assert result.exit_code == 2 and "--revise: only the hyperalign strategy uses it" in result.output
