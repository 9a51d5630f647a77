"""A profile plus the person's texts most similar to the task (`example_texts` / `hyperalign:examples=K`)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hyperalign.cli import app
from hyperalign.errors import InputError
from hyperalign.eval.authorship.methods import parse_methods
from hyperalign.pipeline.examples import closest_examples
from hyperalign.pipeline.generate import GenerationOptions, build_messages
from hyperalign.profiles.model import UserExample
from test_steer import bev

TEXTS = [UserExample(prompt="Note on bulb day.", text="Saturday, nine sharp. Bring gloves and a trowel."),
         UserExample(text="The watering rota is on the shed door. Water at dawn."),
         UserExample(prompt="Reply about tomatoes.", text="Tomatoes in the shared bed? No.")]


def test_the_closest_texts_share_the_tasks_words_and_ties_keep_their_order():
    assert closest_examples("Write about the watering rota.", TEXTS, 1) == [TEXTS[1]]
    assert closest_examples("Write a reply about tomatoes in the bed.", TEXTS, 2)[0] == TEXTS[2]
    assert closest_examples("Zebras.", TEXTS, 2) == TEXTS[:2]  # nothing in common: their own order
    assert closest_examples("anything", TEXTS, 5) == TEXTS and closest_examples("anything", TEXTS, 0) == []


def test_the_profile_comes_with_the_chosen_texts_only_when_asked():
    task = "Write about the watering rota."
    shown = build_messages(task, "hyperalign", bev(), TEXTS, options=GenerationOptions(example_texts=1))[0]["content"]
    assert "<profile>" in shown and shown.count("<user_text id=") == 1 and "watering rota is on the shed" in shown
    plain = build_messages(task, "hyperalign", bev(), TEXTS)[0]["content"]  # texts given, none asked for
    assert "<user_text id=" not in plain and "<profile>" in plain
    with pytest.raises(InputError, match="needs the user's examples"):
        build_messages(task, "hyperalign", bev(), None, options=GenerationOptions(example_texts=2))


def test_evaluation_methods_take_examples_and_share_the_plain_profiles():
    [method] = parse_methods(["hyperalign:examples=2:steer=off"])
    assert method.generation == {"steer": "off", "example_texts": 2} and method.folder == ""
    with pytest.raises(InputError, match="examples must be between 1 and 8"):
        parse_methods(["hyperalign:examples=9"])


@pytest.mark.parametrize(("options", "message"), [
    (["--example-texts", "1"], "--example-texts needs --examples"),
    (["--max-copied", "1.5"], "--max-copied"),  # the copy guard's limit is a share: 0 to 1
])
def test_the_cli_refuses_generation_options_it_cannot_use(tmp_path, options, message):
    profile = tmp_path / "bev.json"
    profile.write_text(bev().to_json(), encoding="utf-8")
    result = CliRunner().invoke(app, ["--backend", "fake", "generate", "--profile", str(profile),
                                      *options, "Write a note."])
    assert result.exit_code == 2 and message in result.output
