"""A person's edits (flags and the $EDITOR YAML view), the diff, and incremental updates from new texts."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from conftest import single_call
from hyperalign.errors import InputError
from hyperalign.llm import CompletionRequest
from hyperalign.pipeline.selection import wilson_lower_bound
from hyperalign.profiles.edit import (
    Edits,
    apply_edits,
    diff_profiles,
    edit_in_editor,
    edit_profile,
    edits_from_yaml,
    to_yaml,
)
from hyperalign.profiles.model import (
    Evidence,
    Hypothesis,
    HypothesisScore,
    Profile,
    UserExample,
)
from hyperalign.profiles.store import ProfileStore
from hyperalign.profiles.update import UpdateOptions, update_profile


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


@pytest.fixture
def store(tmp_path: Path):
    opened = ProfileStore(tmp_path / "profiles.sqlite3")
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
    ({"pin": ["nope1234"]}, "no hypothesis nope1234 in profile 'morwenna'"),
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
    """An $EDITOR: a Python script that keeps a copy of what it was shown, then runs `body` on the YAML file."""
    script = tmp_path / "fake_editor.py"
    script.write_text(
        "import sys, shutil, yaml\n"
        "path = sys.argv[1]\n"
        f"shutil.copy(path, {str(tmp_path / 'shown.yaml')!r})\n"
        "text = open(path, encoding='utf-8').read()\n"
        "data = yaml.safe_load(text)\n" + body, encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


WRITE_BACK = "open(path, 'w', encoding='utf-8').write(yaml.safe_dump(data, allow_unicode=True))\n"


def test_editing_in_the_editor_applies_every_kind_of_change(store, tmp_path, monkeypatch):
    monkeypatch.setenv("EDITOR", fake_editor(tmp_path, (
        "h = data['hypotheses']\n"
        "h[0]['pinned'] = True\n"
        "h[4]['statement'] = 'Has kept the light for decades.'\n"
        "h[0]['quotes'].append('Gears first, opinions later.')\n"
        "del h[1]\n"
        "h.append({'aspect': 'humour', 'statement': 'Finds the seals rude.', 'quotes': ['very rude']})\n"
        "data['attributes']['role'] = 'head keeper'\n"
        "del data['attributes']['formality']\n" + WRITE_BACK)))
    info = edit_in_editor(store, "morwenna", author="ann", message="after reading her logbook")
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


def test_closing_the_editor_without_changes_saves_nothing(store, tmp_path):
    assert edit_in_editor(store, "morwenna", editor=fake_editor(tmp_path, "pass\n")) is None
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
    ("open(path, 'w').write('- just\\n- a list\\n')\n", r"expected the keys 'attributes' and 'hypotheses'"),
])
def test_a_hand_broken_yaml_names_the_problem_and_keeps_the_edit(store, tmp_path, body, message):
    with pytest.raises(InputError, match=message) as failure:
        edit_in_editor(store, "morwenna", editor=fake_editor(tmp_path, body))
    kept = Path(str(failure.value).rsplit("your edit is kept in ", 1)[1])
    assert kept.exists()
    kept.unlink()
    assert store.current_version("morwenna") == 1


def test_an_editor_that_fails_or_is_missing_changes_nothing(store):
    with pytest.raises(InputError, match="exited with status 3"):
        edit_in_editor(store, "morwenna", editor=f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(3)'")
    with pytest.raises(InputError, match="cannot be started .No such file or directory"):
        edit_in_editor(store, "morwenna", editor="/no/such/editor")
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
    second = update_profile(ha2.client, store, "morwenna", NEW_TEXTS, UpdateOptions(min_ratings=4))
    assert second.retired == [FRESH.id] and second.added == []
    assert {h.id for h in second.profile.inferred_hypotheses} == {SIGN_OFF.id, PARTIES.id, EXCLAIMS.id, counts.id}


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
