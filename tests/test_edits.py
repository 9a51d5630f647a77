"""Code edits (pipeline/edits.py): the habits code applies to a written text, and which facts ask for them."""

from __future__ import annotations

import pytest

from hyperalign.pipeline.edits import apply_edits
from hyperalign.pipeline.steer import SteerLevel, finish, for_stream, plan
from test_steer import EVERYTHING, bev, fact


@pytest.mark.parametrize(("edit", "text", "edited"), [
    ("no-exclamation", "Great! See you there!! Really?!", "Great. See you there. Really?"),
    ("no-semicolon", "Bring gloves; the beds are wet ; and a flask.", "Bring gloves, the beds are wet, and a flask."),
    ("no-dash", "The rota — pinned on the door – is final -- mostly. A well-kept plot.",
     "The rota, pinned on the door, is final, mostly. A well-kept plot."),
    ("no-ellipsis", "Well... maybe… later.", "Well. maybe. later."),
    ("expand-contractions", "Don't worry, I'm sure we'll manage; it's fine. They can't, we won't, you've seen it.",
     "Do not worry, I am sure we will manage; it's fine. They cannot, we will not, you have seen it."),
    ("use-contractions", "Do not worry. It is fine, I am here and we are not late. This cannot wait.",
     "Don't worry. It's fine, I'm here and we're not late. This can't wait."),
])
def test_each_edit_keeps_the_meaning(edit, text, edited):
    assert apply_edits(text, [edit]) == edited


def test_the_facts_that_ask_for_edits_and_the_levers_that_say_so():
    steering = plan(bev(), SteerLevel.LIGHT, EVERYTHING)
    assert steering.edits == ["no-exclamation"]  # never "!"; bev's dashes are "more", which code cannot add
    assert any(lever.how == "code" and lever.what == "‘!’ made ‘.’" for lever in steering.levers)
    assert finish("Great! See you.", steering) == "Right then.\n\nGreat. See you.\n\nBev (compost is not optional)"
    assert plan(bev(), SteerLevel.OFF, EVERYTHING).edits == []
    never_contracts = bev().model_copy(update={"facts": [fact("contractions", 0.0, 12.0, -2.0)]})
    assert plan(never_contracts, "light", EVERYTHING).edits == ["expand-contractions"]
    contracts = bev().model_copy(update={"facts": [fact("contractions", 30.0, 5.0, 2.5)]})
    assert plan(contracts, "light", EVERYTHING).edits == ["use-contractions"]
    uncontrasted = bev().model_copy(update={"facts": [fact("punctuation:exclamation", 0.0, None, None)]})
    assert plan(uncontrasted, "light", EVERYTHING).edits == []  # without a contrast, "never" may be the genre's


def test_a_stream_carries_only_the_edits_it_can_apply_piece_by_piece():
    profile = bev().model_copy(update={"facts": [*bev().facts, fact("contractions", 0.0, 12.0, -2.0)]})
    steering = plan(profile, "light", EVERYTHING)
    streamed = for_stream(steering)
    assert set(steering.edits) == {"no-exclamation", "expand-contractions"} and streamed.edits == ["no-exclamation"]
    assert "contractions written out" in {lever.what for lever in steering.levers}
    assert "contractions written out" not in {lever.what for lever in streamed.levers}
