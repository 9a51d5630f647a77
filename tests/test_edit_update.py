"""A person's edits (flags, the YAML view, and `hyperalign profile edit` in $VISUAL/$EDITOR), the diff, measured
facts edited by id, and incremental updates from new texts."""

from __future__ import annotations

import json
import re
import shlex
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import single_call
from hyperalign.cli import app
from hyperalign.errors import InputError
from hyperalign.llm import CompletionRequest
from hyperalign.llm.loop import run_sync
from hyperalign.pipeline.facts import style_facts
from hyperalign.pipeline.update import UpdateOptions, aupdate_profile
from hyperalign.profiles.diff import diff_profiles
from hyperalign.profiles.edit import (
    Edits,
    HypothesisChange,
    apply_edits,
    edit_profile,
    edits_from_yaml,
    to_yaml,
)
from hyperalign.profiles.model import (
    Evidence,
    Fact,
    Hypothesis,
    HypothesisScore,
    Measure,
    Profile,
    UserExample,
    VoiceSample,
    fact_id,
    wilson_lower_bound,
)
from hyperalign.profiles.rejections import rejections, restore, without_rejected
from hyperalign.profiles.store import ProfileStore


def scored(supports: int, contradicts: int) -> HypothesisScore:
    return HypothesisScore(supports=supports, contradicts=contradicts,
                           value=wilson_lower_bound(supports, supports + contradicts))


SIGN_OFF = Hypothesis(aspect="writing_style", statement="Signs off with her name and post.",
                      evidence=[Evidence(quote="— Keeper Morwenna, North Light", verified=True, example_index=0)],
                      supported=True, score=scored(2, 0))
LONG = Hypothesis(aspect="writing_style", statement="Writes long flowing paragraphs.", supported=True, score=scored(0, 2))
PARTIES = Hypothesis(aspect="personality", statement="Loves parties.", supported=True, score=scored(0, 2), pinned=True)
EXCLAIMS = Hypothesis(aspect="writing_style", statement="Uses exclamation marks a lot.", supported=True,
                      score=scored(0, 2), origin="person")
FRESH = Hypothesis(aspect="personality", statement="Is new to the job.", supported=True)


def keeper_profile() -> Profile:
    return Profile(user_id="morwenna", attributes={"role": "keeper", "formality": "informal"},
                   hypotheses=[SIGN_OFF, LONG, PARTIES, EXCLAIMS, FRESH], examples_hash="base", n_examples=5,
                   backend="fake", model="fake-model", prompt_version="infer_hypotheses.v1")


def store_file(folder: Path) -> Path:
    """Where each test's store lives (the fixture and the CLI open the same file)."""
    return folder / "profiles.sqlite3"


@pytest.fixture
def store(tmp_path: Path):
    opened = ProfileStore(store_file(tmp_path))
    opened.save(keeper_profile(), expected_version=0, author="setup", action="import")
    yield opened
    opened.close()


# --- edits by flags ---------------------------------------------------------------------------------------------

def test_each_edit_operation():
    profile = keeper_profile()
    before = profile.model_copy(deep=True)
    edits = Edits.from_flags(pin=[SIGN_OFF.id], unpin=[PARTIES.id], delete=[LONG.id],
                             set_statement=[f"{FRESH.id}=Has kept the light for decades."],
                             add=["humour=Finds the seals rude."], attribute=["role=head keeper", "formality="])
    edited = apply_edits(profile, edits)
    by_id = {h.id: h for h in edited.hypotheses}
    assert by_id[SIGN_OFF.id].pinned and by_id[SIGN_OFF.id].origin == "inferred"
    assert not by_id[PARTIES.id].pinned
    assert LONG.id not in by_id
    reworded = by_id[FRESH.id]  # the id stays, so history and diffs can follow it
    assert (reworded.statement, reworded.origin, reworded.score) == ("Has kept the light for decades.", "person", None)
    [added] = [h for h in edited.hypotheses if h.aspect == "humour"]
    assert (added.statement, added.origin, added.supported) == ("Finds the seals rude.", "person", True)
    assert edited.attributes == {"role": "head keeper"}
    assert profile == before  # the input is not modified
    assert edits.action() == "edit"
    assert Edits.from_flags(pin=["x"]).action() == "pin" and Edits.from_flags(unpin=["x"]).action() == "unpin"


@pytest.mark.parametrize("flags, message", [
    ({"pin": ["nope1234"]}, "no hypothesis or fact nope1234 in profile 'morwenna'"),
    ({"pin": [SIGN_OFF.id], "unpin": [SIGN_OFF.id]}, "both pinned and unpinned"),
    ({"delete": [LONG.id], "set_statement": [f"{LONG.id}=x y z"]}, "both deleted and edited"),
    ({"add": ["writing_style=Signs off with her name and post."]}, f"already in the profile as {SIGN_OFF.id}"),
])
def test_impossible_edits_are_refused(flags, message):
    with pytest.raises(InputError, match=re.escape(message)):
        apply_edits(keeper_profile(), Edits.from_flags(**flags))


@pytest.mark.parametrize("flags, message", [
    ({"set_statement": ["no-equals-sign"]}, "--set expects ID=STATEMENT"),
    ({"add": ["=statement without aspect"]}, "--add expects ASPECT=STATEMENT"),
    ({"attribute": ["=x"]}, "--attribute expects KEY=VALUE"),
])
def test_malformed_flags_are_refused(flags, message):
    with pytest.raises(InputError, match=message):
        Edits.from_flags(**flags)


def test_edit_profile_saves_a_version_with_author_action_and_summary(store):
    info = edit_profile(store, "morwenna", Edits.from_flags(pin=[FRESH.id]), author="ann")
    assert (info.version, info.author, info.action, info.message) == (2, "ann", "pin", f"pin {FRESH.id}")
    assert store.get("morwenna").profile.hypotheses[4].pinned
    assert edit_profile(store, "morwenna", Edits.from_flags(pin=[FRESH.id]), author="ann") is None  # already pinned
    assert edit_profile(store, "morwenna", Edits(), author="ann") is None
    assert store.current_version("morwenna") == 2


# --- the YAML view and $EDITOR ----------------------------------------------------------------------------------

def test_the_yaml_view_round_trips_without_changes():
    profile = keeper_profile()
    text = to_yaml(profile, version=3)
    assert text.startswith("# Profile of morwenna (version 3).")
    view = yaml.safe_load(text)
    assert view["attributes"] == profile.attributes
    assert view["hypotheses"][0] == {"id": SIGN_OFF.id, "aspect": "writing_style", "statement": SIGN_OFF.statement,
                                     "pinned": False, "quotes": ["— Keeper Morwenna, North Light"]}
    assert edits_from_yaml(text, profile).is_empty()
    assert edits_from_yaml("", profile).is_empty()  # an emptied file cancels


def fake_editor(tmp_path: Path, body: str) -> str:
    """An editor command: a Python script that keeps a copy of what it was shown, then runs `body` on the YAML file."""
    script = tmp_path / "fake_editor.py"
    script.write_text(
        "import sys, shutil, yaml\n"
        "path = sys.argv[1]\n"
        f"shutil.copy(path, {str(tmp_path / 'shown.yaml')!r})\n"
        "text = open(path, encoding='utf-8').read()\n"
        "data = yaml.safe_load(text)\n" + body, encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


WRITE_BACK = "open(path, 'w', encoding='utf-8').write(yaml.safe_dump(data, allow_unicode=True))\n"


@pytest.fixture
def edit_in_editor(store, tmp_path, monkeypatch):
    """`hyperalign profile edit morwenna` (no flags: the editor) on the store, with `editor` as $EDITOR (and no
    $VISUAL unless given); temporary files, the rescued edit's included, go to tmp_path/tmp."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    monkeypatch.delenv("VISUAL", raising=False)

    def edit(editor: str, *args: str, visual: str | None = None):
        monkeypatch.setenv("EDITOR", editor)
        if visual is not None:
            monkeypatch.setenv("VISUAL", visual)
        return CliRunner().invoke(app, ["profile", "edit", "morwenna", *args, "--store", str(store_file(tmp_path))])

    edit.temporary = temporary  # type: ignore[attr-defined]
    return edit


def output(result) -> str:
    """The CLI's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_editing_in_the_editor_applies_every_kind_of_change(store, tmp_path, edit_in_editor):
    result = edit_in_editor(fake_editor(tmp_path, (
        "h = data['hypotheses']\n"
        "h[0]['pinned'] = True\n"
        "h[4]['statement'] = 'Has kept the light for decades.'\n"
        "h[0]['quotes'].append('Gears first, opinions later.')\n"
        "del h[1]\n"
        "h.append({'aspect': 'humour', 'statement': 'Finds the seals rude.', 'quotes': ['very rude']})\n"
        "data['attributes']['role'] = 'head keeper'\n"
        "del data['attributes']['formality']\n" + WRITE_BACK)),
        "--author", "ann", "-m", "after reading her logbook")
    assert result.exit_code == 0, result.output
    assert "Saved version 2 of morwenna (edit: after reading her logbook)" in output(result)
    info = store.history("morwenna")[-1]
    assert (info.version, info.action, info.author, info.message) == (2, "edit", "ann", "after reading her logbook")
    assert SIGN_OFF.id in (tmp_path / "shown.yaml").read_text(encoding="utf-8")
    profile = store.get("morwenna").profile
    by_id = {h.id: h for h in profile.hypotheses}
    assert LONG.id not in by_id
    assert by_id[SIGN_OFF.id].pinned and by_id[SIGN_OFF.id].origin == "person"  # its quotes changed
    assert [e.verified for e in by_id[SIGN_OFF.id].evidence] == [True, False]  # a typed-in quote is unverified
    assert by_id[FRESH.id].statement == "Has kept the light for decades." and by_id[FRESH.id].origin == "person"
    assert by_id[PARTIES.id] == PARTIES and by_id[EXCLAIMS.id] == EXCLAIMS
    assert [h.statement for h in profile.hypotheses if h.aspect == "humour"] == ["Finds the seals rude."]
    assert profile.attributes == {"role": "head keeper"}
    assert list(edit_in_editor.temporary.iterdir()) == []  # the editor's file is gone, nothing was rescued


def test_visual_is_the_editor_before_editor(store, tmp_path, edit_in_editor):
    pin = fake_editor(tmp_path, "data['hypotheses'][4]['pinned'] = True\n" + WRITE_BACK)
    result = edit_in_editor("/no/such/editor", visual=pin)
    assert result.exit_code == 0, result.output
    assert store.get("morwenna").profile.hypotheses[4].pinned


def test_closing_the_editor_without_saving_saves_nothing(store, tmp_path, edit_in_editor):
    result = edit_in_editor(fake_editor(tmp_path, "pass\n"))
    assert result.exit_code == 0, result.output
    assert "No changes; morwenna stays at its current version." in output(result)
    assert store.current_version("morwenna") == 1


@pytest.mark.parametrize("body, message", [
    ("open(path, 'w').write('attributes: {role: [keeper\\n')\n", r"edited profile: not valid YAML at line 2, column 1"),
    ("del data['hypotheses'][1]['statement']\n" + WRITE_BACK,
     rf"field 'statement' of hypothesis #2 \(id {LONG.id}\): Field required"),
    ("data['hypotheses'][0]['statment'] = data['hypotheses'][0].pop('statement')\n" + WRITE_BACK,
     r"field 'statment' of hypothesis #1 .*unknown field; a hypothesis has id, aspect, statement, pinned, quotes"),
    ("data['hypotheses'][2]['pinned'] = 'maybe'\n" + WRITE_BACK, r"field 'pinned' of hypothesis #3 .*valid boolean"),
    ("data['hypotheses'][0]['statement'] = '   '\n" + WRITE_BACK, r"field 'statement' of hypothesis #1"),
    ("data['hypotheses'][0]['id'] = 'zzzz9999'\n" + WRITE_BACK, r"field 'id' of hypothesis #1: zzzz9999 is not in"),
    ("data['attributes'] = ['role', 'keeper']\n" + WRITE_BACK, r"field 'attributes': Input should be a valid dict"),
    ("data['colour'] = 'blue'\n" + WRITE_BACK, r"field 'colour': unknown field"),
    ("open(path, 'w').write('- just\\n- a list\\n')\n", r"expected the keys 'attributes', 'hypotheses' and 'facts'"),
])
def test_a_hand_broken_yaml_names_the_problem_and_keeps_the_edit(store, tmp_path, edit_in_editor, body, message):
    result = edit_in_editor(fake_editor(tmp_path, body))
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert re.search(message, output(result)), result.output
    [kept] = edit_in_editor.temporary.glob("hyperalign-rescued-*")  # the edit, never lost
    assert f"your edit is kept in {kept}" in output(result)
    edited = kept.read_text(encoding="utf-8")
    assert edited != to_yaml(keeper_profile(), version=1) and (tmp_path / "shown.yaml").read_text() != edited
    assert store.current_version("morwenna") == 1


def test_an_editor_that_fails_or_is_missing_changes_nothing(store, edit_in_editor):
    for editor in (f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(3)'", "/no/such/editor"):
        result = edit_in_editor(editor)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert "the editor could not be used (" in output(result) and "Editing failed" in output(result)
        assert "the profile is unchanged" in output(result)
    assert store.current_version("morwenna") == 1


# --- diff ------------------------------------------------------------------------------------------------------

def test_diff_names_each_change_readably():
    old = keeper_profile()
    new = apply_edits(old, Edits.from_flags(pin=[SIGN_OFF.id], delete=[LONG.id], add=["humour=Finds the seals rude."],
                                            set_statement=[f"{FRESH.id}=Has kept the light for decades."],
                                            attribute=["role=head keeper", "formality=", "home=North Light"]))
    lines = diff_profiles(old, new)
    humour = next(h for h in new.hypotheses if h.aspect == "humour")
    assert lines == [
        "~ attribute role: 'keeper' → 'head keeper'",
        "- attribute formality (was 'informal')",
        "+ attribute home: 'North Light'",
        f"+ [{humour.id}] humour: Finds the seals rude. (by a person)",
        f"- [{LONG.id}] writing_style: Writes long flowing paragraphs.",
        f"~ [{SIGN_OFF.id}] pinned: 'Signs off with her name and post.'",
        f"~ [{FRESH.id}] statement: 'Is new to the job.' → 'Has kept the light for decades.'",
        f"~ [{FRESH.id}] origin: inferred → person",
    ]
    assert diff_profiles(old, old) == []


# --- measured facts, edited by id ------------------------------------------------------------------------------

SENTENCES = Fact(statement="Sentences average 9 words.", measure=Measure(metric="sentence_words", mean=9, spread=2))
COMMAS = Fact(statement="Uses few commas.", measure=Measure(metric="punctuation:comma", mean=12, spread=4),
              evidence=[Evidence(quote="Fog again.", verified=True, example_index=0)])
DIGITS = Fact(statement="Writes numbers as digits.", measure=Measure(metric="numbers_as_digits", mean=1, spread=0.1))


def keeper_with_facts() -> Profile:
    return keeper_profile().model_copy(update={"facts": [SENTENCES, COMMAS]})


def test_facts_are_pinned_reworded_and_deleted_by_id_like_hypotheses():
    profile = keeper_with_facts()
    edited = apply_edits(profile, Edits.from_flags(pin=[SENTENCES.id], delete=[COMMAS.id],
                                                   set_statement=[f"{SENTENCES.id}=Keeps sentences short."]))
    [fact] = edited.facts
    assert (fact.id, fact.statement, fact.pinned, fact.origin) == (SENTENCES.id, "Keeps sentences short.", True,
                                                                    "person")
    assert fact.measure == SENTENCES.measure  # the numbers stay what the texts say
    assert edited.hypotheses == profile.hypotheses and profile.facts == [SENTENCES, COMMAS]  # the input is unchanged
    assert not apply_edits(edited, Edits.from_flags(unpin=[SENTENCES.id])).facts[0].pinned
    unchanged = apply_edits(profile, Edits.from_flags(set_statement=[f"{COMMAS.id}={COMMAS.statement}"]))
    assert unchanged.facts == profile.facts  # the same wording is no rewording: still measured


@pytest.mark.parametrize("change, message", [
    (HypothesisChange(aspect="personality"), f"{COMMAS.id} is a measured style fact"),
    (HypothesisChange(statement="Uses few commas.", quotes=["Fog again."]), f"{COMMAS.id} is a measured style fact"),
    (HypothesisChange(statement="   "), f"the new statement of {COMMAS.id} is empty"),
])
def test_a_facts_aspect_and_quotes_are_what_the_texts_show(change, message):
    with pytest.raises(InputError, match=re.escape(message)):
        apply_edits(keeper_with_facts(), Edits(change={COMMAS.id: change}))


def test_the_yaml_view_lists_the_facts_to_pin_reword_or_delete():
    profile = keeper_with_facts()
    text = to_yaml(profile, version=1)
    view = yaml.safe_load(text)
    assert view["facts"] == [{"id": SENTENCES.id, "statement": SENTENCES.statement, "pinned": False},
                             {"id": COMMAS.id, "statement": COMMAS.statement, "pinned": False}]
    assert edits_from_yaml(text, profile).is_empty()
    view["facts"][0] |= {"pinned": True, "statement": "Keeps sentences short."}
    del view["facts"][1]
    edits = edits_from_yaml(yaml.safe_dump(view), profile)
    assert (edits.pin, edits.delete) == ([SENTENCES.id], [COMMAS.id])
    assert edits.change == {SENTENCES.id: HypothesisChange(statement="Keeps sentences short.")}
    assert not (edits.unpin or edits.add or edits.attributes)


@pytest.mark.parametrize("listed, message", [
    ({"id": "m0000000", "statement": "Writes in verse."},
     "field 'id' of fact m0000000: is not a measured fact of this profile (facts cannot be added)"),
    ({"id": SENTENCES.id, "statement": "Again."}, f"field 'id' of fact {SENTENCES.id}: appears twice"),
    ({"id": LONG.id, "statement": "A hypothesis's id."}, f"field 'id' of fact {LONG.id}: is not a measured fact"),
    ({"id": COMMAS.id, "statement": "Few commas.", "metric": "x"}, "unknown field; a fact has id, statement, pinned"),
])
def test_facts_cannot_be_added_or_listed_twice_in_the_yaml_view(listed, message):
    profile = keeper_with_facts()
    view = yaml.safe_load(to_yaml(profile))
    view["facts"].append(listed)
    with pytest.raises(InputError, match=re.escape(message)):
        edits_from_yaml(yaml.safe_dump(view), profile)


def test_the_diff_shows_the_facts():
    old = keeper_with_facts()
    new = apply_edits(old, Edits.from_flags(pin=[SENTENCES.id], delete=[COMMAS.id],
                                            set_statement=[f"{SENTENCES.id}=Keeps sentences short."]))
    new = new.model_copy(update={"facts": [*new.facts, DIGITS]})
    assert diff_profiles(old, new) == [
        f"+ [{DIGITS.id}] measured: Writes numbers as digits.",
        f"- [{COMMAS.id}] measured: Uses few commas.",
        f"~ [{SENTENCES.id}] statement: 'Sentences average 9 words.' → 'Keeps sentences short.'",
        f"~ [{SENTENCES.id}] pinned: 'Keeps sentences short.'",
    ]
    assert diff_profiles(new, new) == []


def test_a_deleted_fact_is_rejected_and_restored_among_the_facts(tmp_path):
    store = ProfileStore(tmp_path / "facts.sqlite3")
    store.save(keeper_with_facts(), expected_version=0, author="setup", action="import")
    edit_profile(store, "morwenna", Edits.from_flags(delete=[COMMAS.id]), author="ann")
    [rejected] = rejections(store, "morwenna")
    assert rejected.hypothesis == COMMAS and isinstance(rejected.hypothesis, Fact)
    assert (rejected.author, rejected.version) == ("ann", 2)
    info = restore(store, "morwenna", COMMAS.id, author="ann")
    assert info is not None and info.version == 3
    profile = store.get("morwenna").profile
    assert profile.facts == [SENTENCES, COMMAS] and profile.hypotheses == keeper_profile().hypotheses
    assert rejections(store, "morwenna") == []
    store.close()


def test_an_update_does_not_bring_back_a_fact_the_person_deleted(store, make_hyperalign):
    texts = [e.text for e in NEW_TEXTS]
    measured = style_facts(texts)
    sentence_words = fact_id("sentence_words")
    assert sentence_words in {f.id for f in measured}
    store.modify("morwenna", lambda p: p.model_copy(update={"facts": measured}), author="setup", action="edit")
    edit_profile(store, "morwenna", Edits.from_flags(delete=[sentence_words]), author="ann")
    ha, _ = make_hyperalign(responder)
    result = ha.update_profile(store, "morwenna", NEW_TEXTS, UpdateOptions(infer_new=False))
    ids = [f.id for f in result.profile.facts]
    assert sentence_words not in ids  # the new texts measured it again; the person's deletion stands
    assert ids == [f.id for f in measured if f.id != sentence_words]


def test_a_deleted_voice_sample_is_rejected_kept_out_of_a_new_inference_and_restored(tmp_path):
    """A voice sample is the person's own sentence shown to the writer: deleting it must stop it being shown for good
    — a new inference from scratch would choose the same sentence of the same texts again."""
    store = ProfileStore(tmp_path / "samples.sqlite3")
    samples = [VoiceSample(text="Gears first, opinions later.", example_index=0),
               VoiceSample(text="Counting keeps you honest.", example_index=1)]
    store.save(keeper_profile().model_copy(update={"voice_samples": samples}), expected_version=0, author="setup",
               action="import")
    edit_profile(store, "morwenna", Edits.from_flags(delete=[samples[1].id]), author="ann")
    [rejected] = rejections(store, "morwenna")
    assert rejected.hypothesis == samples[1] and (rejected.author, rejected.version) == ("ann", 2)
    # the same sentence chosen again by an inference from scratch, under the same id or (reworded spacing) another
    again = keeper_profile().model_copy(update={"voice_samples": [
        samples[0], samples[1], VoiceSample(text="Counting  keeps you HONEST.", example_index=3)]})
    assert without_rejected(again, rejections(store, "morwenna")).voice_samples == [samples[0]]
    assert without_rejected(again, rejections(store, "morwenna")).hypotheses == again.hypotheses
    info = restore(store, "morwenna", samples[1].id, author="ann")
    assert info is not None and info.version == 3
    assert store.get("morwenna").profile.voice_samples == samples
    assert rejections(store, "morwenna") == []
    store.close()


def test_an_update_does_not_bring_back_a_deleted_voice_sample_a_new_text_repeats(store, make_hyperalign):
    sample = VoiceSample(text="Counted the steps again: 176, as ever.", example_index=0)
    store.modify("morwenna", lambda p: p.model_copy(update={"voice_samples": [sample]}), author="setup",
                 action="edit")
    edit_profile(store, "morwenna", Edits.from_flags(delete=[sample.id]), author="ann")
    # samples too short to be chosen again, as many as the new texts have sentences long enough to be: every one of
    # those is chosen, but for the deleted one
    many = [VoiceSample(text=f"Fog, day {n}.", example_index=0) for n in range(6)]
    store.modify("morwenna", lambda p: p.model_copy(update={"voice_samples": many}), author="setup", action="import")
    ha, _ = make_hyperalign(responder)
    result = ha.update_profile(store, "morwenna", NEW_TEXTS, UpdateOptions(infer_new=False))
    # NEW_TEXTS[1] holds the deleted sentence word for word
    assert [v.text for v in result.profile.voice_samples] == ["He did not count the steps."]


# --- incremental update ----------------------------------------------------------------------------------------

NEW_TEXTS = [
    UserExample(text="Fog at dawn. The lamp turned 390 times. Gears first, opinions later.\n— Keeper Morwenna, North Light"),
    UserExample(text="Counted the steps again: 176, as ever. Counting keeps you honest.\n— Keeper Morwenna, North Light"),
    UserExample(text="The inspector came. He did not count the steps. I did.\n— Keeper Morwenna, North Light"),
]
CONTRADICTED = ("long flowing", "parties", "exclamation", "new to the job")


def rated(request: CompletionRequest) -> list[tuple[str, str]]:
    return re.findall(r"^h(\d+): (.*)$", request.messages[-1]["content"], re.MULTILINE)


def responder(request: CompletionRequest, candidates: dict[str, list[dict]] | None = None) -> str:
    return single_call(lambda r: per_aspect_responder(r, candidates))(request)


def per_aspect_responder(request: CompletionRequest, candidates: dict[str, list[dict]] | None = None) -> str:
    if request.schema_name.startswith("score_hypotheses"):
        assert set(request.json_schema["required"]) == {f"h{n}" for n, _ in rated(request)}
        return json.dumps({f"h{n}": "contradicts" if any(w in s for w in CONTRADICTED) else
                           "supports" if "Signs off" in s else "neutral" for n, s in rated(request)})
    assert request.schema_name.startswith("infer_hypotheses-"), request.schema_name  # no attributes on update
    aspect = request.schema_name.removeprefix("infer_hypotheses-")
    default = {"writing_style": [{"statement": "Counts things out loud.", "evidence": ["Counting keeps you honest."]},
                                 {"statement": "Signs off with her name and post.", "evidence": ["Keeper Morwenna"]}],
               "personality": [{"statement": "Invents quotes.", "evidence": ["I adore crowded harbour parties."]}]}
    hypotheses = (candidates or default).get(aspect, [])
    return json.dumps({"hypotheses": hypotheses or [{"statement": "Has nothing checkable.", "evidence": ["not there at all"]}]})


def test_update_rescores_adds_and_retires_but_keeps_pinned_and_person_hypotheses(store, make_hyperalign):
    ha, backend = make_hyperalign(responder)
    result = ha.update_profile(store, "morwenna", NEW_TEXTS, UpdateOptions(min_ratings=4))
    profile = result.profile
    by_id = {h.id: h for h in profile.hypotheses}

    assert sum(r.schema_name.startswith("score_hypotheses") for r in backend.requests) == len(NEW_TEXTS)
    assert by_id[SIGN_OFF.id].score == scored(5, 0)  # 2 earlier supports + 3 new ones, accumulated
    assert result.retired == [LONG.id] and LONG.id not in by_id  # 0 of 5: below 0.1, rated at least 4 times
    assert by_id[PARTIES.id].score.tested == 5 and by_id[PARTIES.id].pinned  # as bad, but pinned
    assert by_id[EXCLAIMS.id].score.tested == 5 and by_id[EXCLAIMS.id].origin == "person"  # as bad, but a person's
    assert by_id[FRESH.id].score == scored(0, 3)  # as bad, but rated only 3 times so far
    [counts] = [h for h in profile.hypotheses if h.statement == "Counts things out loud."]
    assert result.added == [counts.id]  # the duplicate and the one with an invented quote are not added
    assert counts.evidence[0].verified and counts.evidence[0].example_index == 5 + 1  # index in all 8 texts
    assert counts.score is None  # not scored on the texts it was inferred from
    assert profile.n_examples == 8 and profile.examples_hash != "base"
    assert profile.attributes == keeper_profile().attributes

    info = result.version
    assert (info.version, info.action, info.author) == (2, "update", "hyperalign")
    assert info.message == f"3 new texts: rescored 5, added 1, retired 1 ({LONG.id})"
    assert info.details == {"texts": 3, "rescored": 5, "added": [counts.id], "retired": [LONG.id]}
    assert LONG in store.get("morwenna", version=1).profile.hypotheses  # history keeps what was retired

    # Next time: the fresh one has 0 of 6 now and goes; a retired hypothesis proposed again is not re-added.
    again = {"writing_style": [{"statement": "Writes long flowing paragraphs.", "evidence": ["Counting keeps you honest."]}]}
    ha2, _ = make_hyperalign(lambda r: responder(r, again), cache=False)
    second = run_sync(aupdate_profile(ha2.client, store, "morwenna", NEW_TEXTS, UpdateOptions(min_ratings=4)))
    assert second.retired == [FRESH.id] and second.added == []
    assert {h.id for h in second.profile.supported_hypotheses} == {SIGN_OFF.id, PARTIES.id, EXCLAIMS.id, counts.id}
    assert {h.id for h in second.profile.inferred_hypotheses} == {SIGN_OFF.id, PARTIES.id, counts.id}  # not the person's


def test_update_thresholds_are_options(store, make_hyperalign):
    ha, _ = make_hyperalign(responder)
    lenient = ha.update_profile(store, "morwenna", NEW_TEXTS, UpdateOptions(retire_below=0.0, infer_new=False))
    assert lenient.retired == [] and lenient.added == []
    strict = ha.update_profile(store, "morwenna", NEW_TEXTS[:1], UpdateOptions(min_ratings=1, infer_new=False))
    assert sorted(strict.retired) == sorted([LONG.id, FRESH.id])
    with pytest.raises(InputError, match="no new examples"):
        ha.update_profile(store, "morwenna", [])


def test_a_person_edit_made_during_an_update_is_kept(store, make_hyperalign):
    edited = []

    def person_edits_meanwhile(request: CompletionRequest) -> str:
        if not edited:  # while the update waits for the LLM, the person pins one and rewords another
            edited.append(edit_profile(store, "morwenna", Edits.from_flags(
                pin=[SIGN_OFF.id], set_statement=[f"{FRESH.id}=Has kept the light for decades."]), author="ann"))
        return responder(request)

    ha, _ = make_hyperalign(person_edits_meanwhile)
    result = ha.update_profile(store, "morwenna", NEW_TEXTS, UpdateOptions(min_ratings=4))
    assert [(v.version, v.action) for v in store.history("morwenna")] == [(1, "import"), (2, "edit"), (3, "update")]
    by_id = {h.id: h for h in result.profile.hypotheses}
    assert by_id[SIGN_OFF.id].pinned and by_id[SIGN_OFF.id].score == scored(5, 0)  # the pin and the new counts
    # The counts rated the old wording, so the reworded hypothesis does not receive them.
    assert by_id[FRESH.id].statement == "Has kept the light for decades." and by_id[FRESH.id].score is None
    assert result.retired == [LONG.id]


def test_update_of_a_missing_profile_is_an_input_error(store, make_hyperalign):
    ha, backend = make_hyperalign(responder)
    with pytest.raises(InputError, match="no profile 'nobody'"):
        ha.update_profile(store, "nobody", NEW_TEXTS)
    assert backend.requests == []


def test_an_update_chooses_the_voice_samples_again_among_those_kept_and_the_new_texts(store, make_hyperalign):
    """As many samples as the profile keeps; a new text's sentence names its place among all the texts; one the
    person deleted does not come back (it is not among the candidates)."""
    kept = [VoiceSample(text="Fog again, and the horn going all night — as ever.", example_index=0),
            VoiceSample(text="Honestly, the gears first and the opinions later.", example_index=1),
            VoiceSample(text="The relief boat came at noon with the oil.", example_index=2)]
    store.modify("morwenna", lambda p: p.model_copy(update={"voice_samples": kept}), author="setup", action="edit")
    edit_profile(store, "morwenna", Edits.from_flags(delete=[kept[2].id]), author="ann")
    ha, _ = make_hyperalign(responder)
    result = ha.update_profile(store, "morwenna", NEW_TEXTS, UpdateOptions(infer_new=False))
    samples = result.profile.voice_samples
    assert len(samples) == 2 and kept[2].text not in [s.text for s in samples]
    texts = [s.text for s in kept[:2]] + [e.text for e in NEW_TEXTS]
    for sample in samples:
        assert sample.text in texts[[0, 1, 5, 6, 7].index(sample.example_index)]
    # a profile that keeps none (the paper method's) gets none from an update
    store.modify("morwenna", lambda p: p.model_copy(update={"voice_samples": []}), author="setup", action="edit")
    assert ha.update_profile(store, "morwenna", NEW_TEXTS, UpdateOptions(infer_new=False)).profile.voice_samples == []
