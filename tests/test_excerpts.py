"""A profile plus the person's most characteristic sentences (`excerpts` / `hyperalign:excerpts=N`): sentences picked
for the person's habits against the default voice, not for their topic."""

from __future__ import annotations

import pytest
import yaml

from hyperalign.errors import InputError
from hyperalign.eval.authorship.methods import parse_methods
from hyperalign.pipeline.excerpts import characteristic_samples, characteristic_sentences, habit_weights
from hyperalign.pipeline.generate import GenerationOptions, SteerLevel, build_messages
from hyperalign.profiles.edit import Edits, apply_edits, edits_from_yaml, to_yaml
from hyperalign.profiles.model import Contrast, ContrastText, Profile, UserExample, VoiceSample
from test_steer import bev

# She says "honestly", "anyway" and "actually", and leans on dashes; her topic sentences carry none of it.
PERSON = [
    "The allotment committee met on Tuesday evening in the village hall. Honestly the new rota is fair enough — "
    "actually, nobody asked the Hendersons. The treasurer presented the accounts for the spring season.",
    "Anyway, the compost bays are full again — honestly we need a third one. The council delivered forty bags of "
    "woodchip to the north gate. Membership fees rise to twelve pounds from April.",
    "Seed potatoes arrive on the first Saturday of March at the main shed. Actually, honestly, the frost will have a "
    "say in that — it usually does, anyway. Please label your trays with your plot number.",
]
# The default voice: the same tasks, written plainly.
CONTRAST = [
    "The allotment committee held its meeting on Tuesday. The members discussed the new watering rota. Additionally, "
    "the treasurer presented the accounts. Overall, the meeting was productive and well attended.",
    "The compost bays are currently full. It is recommended that a third bay be built. Additionally, the council "
    "delivered woodchip to the north gate. Membership fees will increase in April.",
    "Seed potatoes will arrive in March. Members should label their trays with their plot number. Additionally, "
    "frost may delay planting. Overall, members are advised to plan ahead.",
]


def with_contrast():
    texts = [ContrastText(prompt=f"Task {i}", text=t, example_index=i) for i, t in enumerate(CONTRAST)]
    return bev().model_copy(update={"contrast": Contrast(model="fake-model", texts=texts)})


def test_her_habits_weigh_for_her_and_the_default_voices_against_her():
    weights = habit_weights(PERSON, CONTRAST)
    assert weights["honestly"] > 0 and weights["anyway"] > 0 and weights["—"] > 0
    assert weights.get("additionally", 0.0) <= 0  # she never writes it: no weight for her
    assert "allotment" not in weights and "compost" not in weights  # topic words are not habits


def test_the_chosen_sentences_carry_her_habits_not_her_topics_and_come_from_every_text():
    chosen = characteristic_sentences(PERSON, CONTRAST, 3)
    assert len(chosen) == 3 and all("onestly" in s or "nyway" in s or "—" in s for s in chosen)
    sources = {next(i for i, text in enumerate(PERSON) if s in text) for s in chosen}
    assert sources == {0, 1, 2}  # at most ceil(3 / 3) = 1 from each text
    # in the order written
    assert chosen == sorted(chosen, key=lambda s: next(i for i, text in enumerate(PERSON) if s in text))
    assert characteristic_sentences(PERSON, CONTRAST, 0) == []
    assert len(characteristic_sentences(PERSON, CONTRAST, 50)) == len(set(characteristic_sentences(PERSON, CONTRAST, 50)))


def test_without_a_contrast_the_pick_still_follows_her_habits():
    chosen = characteristic_sentences(PERSON, [], 2)
    assert len(chosen) == 2 and all("onestly" in s or "nyway" in s or "—" in s for s in chosen)


def test_the_prompt_shows_the_sentences_only_when_asked_and_never_without_texts():
    examples = [UserExample(text=t) for t in PERSON]
    task = "Write a note about the spring open day."
    shown = build_messages(task, "hyperalign", with_contrast(), examples,
                           options=GenerationOptions(excerpts=2, steer=SteerLevel.OFF))[0]["content"]
    chosen = characteristic_sentences(PERSON, CONTRAST, 2)
    assert all(f"- {s}" in shown for s in chosen) and "<user_text" not in shown
    plain = build_messages(task, "hyperalign", with_contrast(), examples)[0]["content"]
    assert not any(s in plain for s in chosen)
    with pytest.raises(InputError, match="needs the user's examples"):
        build_messages(task, "hyperalign", with_contrast(), None, options=GenerationOptions(excerpts=2))
    # the baselines never show them
    zero = build_messages(task, "zero-shot", None, examples, options=GenerationOptions(excerpts=2))[0]["content"]
    assert not any(s in zero for s in chosen)


def test_a_copying_text_is_last_written_without_the_sentences(make_hyperalign):
    examples = [UserExample(text=t) for t in PERSON]
    copied = " ".join(characteristic_sentences(PERSON, CONTRAST, 3))
    fresh = "Open day is Sunday at ten. Bring cake if you bake, and mind the gate: it sticks."
    replies = iter([copied, copied, copied, fresh])
    ha, backend = make_hyperalign(lambda request: next(replies), cache=False)
    generation = ha.generate(with_contrast(), "Write a note about the open day.", "hyperalign", examples,
                             options=GenerationOptions(excerpts=3, steer=SteerLevel.OFF))
    assert generation.text == fresh and generation.without_shown_texts
    assert "honestly" in backend.requests[0].messages[0]["content"]
    assert not any(s in backend.requests[3].messages[0]["content"] for s in characteristic_sentences(PERSON, CONTRAST, 3))


def test_evaluation_methods_take_excerpts_and_share_the_plain_profiles():
    [method] = parse_methods(["hyperalign:excerpts=8"])
    assert method.generation == {"excerpts": 8} and method.folder == ""
    with pytest.raises(InputError, match="excerpts must be between 0 and 24"):
        parse_methods(["hyperalign:excerpts=25"])
    [ablation] = parse_methods(["hyperalign:excerpts=0"])  # the profile without its voice samples
    assert ablation.generation == {"excerpts": 0}


def with_samples():
    profile = with_contrast()
    samples = [VoiceSample(text=s, example_index=i) for i, s in characteristic_samples(PERSON, CONTRAST, 3)]
    return profile.model_copy(update={"voice_samples": samples, "n_examples": len(PERSON)})


def test_the_profile_keeps_its_voice_samples_and_the_prompt_shows_them_by_default():
    """Voice samples are chosen at inference and stored; generation shows them without the person's texts at hand.
    `excerpts=0` leaves them out, `excerpts=N` without texts shows the first N."""
    profile = with_samples()
    task = "Write a note about the spring open day."
    texts = [v.text for v in profile.voice_samples]
    assert texts == characteristic_sentences(PERSON, CONTRAST, 3)
    assert [PERSON[v.example_index].count(v.text) for v in profile.voice_samples] == [1, 1, 1]
    shown = build_messages(task, "hyperalign", profile, None)[0]["content"]
    assert all(f"- {t}" in shown for t in texts)
    hidden = build_messages(task, "hyperalign", profile, None, options=GenerationOptions(excerpts=0))[0]["content"]
    assert not any(t in hidden for t in texts)
    first = build_messages(task, "hyperalign", profile, None, options=GenerationOptions(excerpts=1))[0]["content"]
    assert texts[0] in first and not any(t in first for t in texts[1:])
    # a paper-method profile keeps none: its prompt is what it was
    assert build_messages(task, "hyperalign", with_contrast(), None)[0]["content"] == hidden
    # read back from its JSON, and shown to the person
    assert Profile.from_json(profile.to_json()) == profile
    assert all(t in profile.to_markdown() for t in texts) and "In their own words" in profile.to_markdown()


def test_a_profile_document_with_a_bad_voice_sample_is_refused_by_name():
    document = with_samples().model_dump(mode="json")
    twice = document | {"voice_samples": [document["voice_samples"][0]] * 2}
    with pytest.raises(InputError, match="voice sample id v[0-9a-f]{7} appears twice"):
        Profile.from_document(twice, "ann.json")
    beyond = document | {"voice_samples": [document["voice_samples"][0] | {"example_index": 7}]}
    with pytest.raises(InputError, match="points to example 8, but the profile was inferred from 3"):
        Profile.from_document(beyond, "ann.json")
    empty = document | {"voice_samples": [{"text": "", "example_index": 0}]}
    with pytest.raises(InputError, match="ann.json"):
        Profile.from_document(empty, "ann.json")


def test_a_voice_sample_can_be_deleted_but_not_reworded():
    profile = with_samples()
    first, *rest = profile.voice_samples
    assert apply_edits(profile, Edits(delete=[first.id])).voice_samples == rest
    view = to_yaml(profile)
    assert "voice_samples:" in view and first.id in view
    data = yaml.safe_load(view)
    data["voice_samples"] = data["voice_samples"][1:]
    edits = edits_from_yaml(yaml.safe_dump(data), profile)
    assert edits.delete == [first.id] and apply_edits(profile, edits).voice_samples == rest
    data["voice_samples"][0]["text"] = "Honestly, I never wrote this."
    with pytest.raises(InputError, match="delete it rather than reword it"):
        edits_from_yaml(yaml.safe_dump(data), profile)
    data = yaml.safe_load(view)
    data["voice_samples"].append({"id": "v0000000", "text": "Anyway, a sentence of my own."})
    with pytest.raises(InputError, match="cannot be added"):
        edits_from_yaml(yaml.safe_dump(data), profile)

