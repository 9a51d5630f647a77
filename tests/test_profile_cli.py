"""`hyperalign profile …`: the store's commands, and one clear message with exit code 2 for bad input."""

from __future__ import annotations

import json
import re
import shlex
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import single_call
from hyperalign.cli import app
from hyperalign.llm import CompletionRequest
from hyperalign.llm.fake import FakeBackend
from hyperalign.profiles.model import Evidence, Hypothesis, HypothesisScore, Profile
from hyperalign.profiles.store import ProfileStore

runner = CliRunner()

MOTTO = Hypothesis(aspect="writing_style", statement="Repeats a motto.", supported=True,
                   evidence=[Evidence(quote="Gears first, opinions later.", verified=True, example_index=0)],
                   score=HypothesisScore(supports=2, value=0.34))
PARTIES = Hypothesis(aspect="personality", statement="Loves parties.", supported=True)


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "profiles.sqlite3")


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    profile = Profile(user_id="morwenna", attributes={"role": "keeper"}, hypotheses=[MOTTO, PARTIES],
                      examples_hash="abc", n_examples=2, backend="fake", model="fake-model", prompt_version="v1")
    path = tmp_path / "morwenna.json"
    profile.save(path)
    return path


def run(*args: str, store: str | None = None):
    return runner.invoke(app, [*args, *(["--store", store] if store else [])])


def text(result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return text(result)


def assert_clean_failure(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in text(result), result.output


def test_import_list_show_history_and_export_round_trip(tmp_path, store, profile_file):
    assert "Saved version 1 of morwenna (import: from morwenna.json)" in ok(run("profile", "import", str(profile_file), store=store))
    listed = run("profile", "list", store=store)
    assert re.match(r"morwenna\tversion 1\t2 hypotheses\t\d{4}-\d\d-\d\d \d\d:\d\d UTC\timport by \S+", ok(listed) and listed.stdout)
    shown = run("profile", "show", "morwenna", store=store)
    assert shown.stdout.startswith("# Profile of morwenna") and "_Version 1: import by" in shown.stdout
    exported = tmp_path / "out.json"
    assert "Wrote version 1 of morwenna" in ok(run("profile", "export", "morwenna", "-o", str(exported), store=store))
    assert Profile.load(exported) == Profile.load(profile_file)
    stdout = run("profile", "export", "morwenna", store=store).stdout
    assert Profile.from_json(stdout) == Profile.load(profile_file)
    ok(run("profile", "import", str(exported), "--user", "bev", "-m", "a copy", store=store))
    assert [line.split("\t")[0] for line in run("profile", "list", store=store).stdout.splitlines()] == ["bev", "morwenna"]
    history = run("profile", "history", "bev", store=store)
    assert re.fullmatch(r" +1  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  \S+ +import +a copy\n", ok(history) and history.stdout)


def test_edit_with_flags_then_history_and_diff(store, profile_file):
    ok(run("profile", "import", str(profile_file), store=store))
    edited = run("profile", "edit", "morwenna", "--pin", PARTIES.id, "--add", "humour=Finds the seals rude.",
                 "--set", f"{MOTTO.id}=Ends notes with a motto.", "--attribute", "role=head keeper",
                 "--author", "ann", "-m", "after her logbook", store=store)
    assert "Saved version 2 of morwenna (edit: after her logbook)" in ok(edited)
    assert "Saved version 3 of morwenna (unpin: unpin" in ok(run("profile", "edit", "morwenna", "--unpin", PARTIES.id, store=store))
    history = run("profile", "history", "morwenna", store=store).stdout.splitlines()
    assert [line.split()[4:6] for line in history] == [["import", "from"], ["edit", "after"], ["unpin", "unpin"]]
    assert [line.split()[0] for line in history] == ["1", "2", "3"] and history[1].split()[3] == "ann"
    diff = run("profile", "diff", "morwenna", "1", "2", store=store)
    humour = Hypothesis(aspect="humour", statement="Finds the seals rude.").id
    assert diff.stdout.splitlines() == [
        "morwenna: version 1 → version 2",
        "  ~ attribute role: 'keeper' → 'head keeper'",
        f"  + [{humour}] humour: Finds the seals rude. (by a person)",
        f"  ~ [{MOTTO.id}] statement: 'Repeats a motto.' → 'Ends notes with a motto.'",
        f"  ~ [{MOTTO.id}] origin: inferred → person",
        f"  ~ [{MOTTO.id}] score: 2/2 support, 0 contradict (0.34) → unrated",
        f"  ~ [{PARTIES.id}] pinned: 'Loves parties.'",
    ]
    assert run("profile", "diff", "morwenna", "2", "2", store=store).stdout.splitlines()[1] == "  no differences"
    assert "No changes" in ok(run("profile", "edit", "morwenna", "--unpin", PARTIES.id, store=store))


def editor_command(tmp_path: Path, body: str) -> str:
    """$EDITOR: a Python script running `body` on the YAML file (click runs $VISUAL first: unset in these tests)."""
    script = tmp_path / "editor.py"
    script.write_text("import sys, yaml\npath = sys.argv[1]\ndata = yaml.safe_load(open(path, encoding='utf-8'))\n"
                      + body, encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def test_edit_without_flags_opens_the_editor(tmp_path, store, profile_file, monkeypatch):
    ok(run("profile", "import", str(profile_file), store=store))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", editor_command(tmp_path, (
        "data['hypotheses'][1]['pinned'] = True\n"
        "data['hypotheses'].append({'aspect': 'humour', 'statement': 'Finds the seals rude.'})\n"
        "open(path, 'w', encoding='utf-8').write(yaml.safe_dump(data))\n")))
    assert "Saved version 2 of morwenna (edit:" in ok(run("profile", "edit", "morwenna", store=store))
    profile = ProfileStore(store).get("morwenna").profile
    assert profile.hypotheses[1].pinned and profile.hypotheses[2].origin == "person"


def test_a_broken_yaml_from_the_editor_exits_2_naming_the_field(tmp_path, store, profile_file, monkeypatch):
    ok(run("profile", "import", str(profile_file), store=store))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the edit is rescued
    monkeypatch.setenv("EDITOR", editor_command(tmp_path, (
        "data['hypotheses'][0]['pinned'] = 'sometimes'\n"
        "open(path, 'w', encoding='utf-8').write(yaml.safe_dump(data))\n")))
    result = run("profile", "edit", "morwenna", store=store)
    [kept] = tmp_path.glob("hyperalign-rescued-*")
    assert_clean_failure(result, f"field 'pinned' of hypothesis #1 (id {MOTTO.id})", f"your edit is kept in {kept}")
    assert "pinned: sometimes" in kept.read_text(encoding="utf-8")
    assert ProfileStore(store).current_version("morwenna") == 1


def keeper_llm(request: CompletionRequest) -> str:
    return single_call(keeper_per_aspect)(request)


def keeper_per_aspect(request: CompletionRequest) -> str:
    if request.schema_name.startswith("score_hypotheses"):
        statements = re.findall(r"^h(\d+): (.*)$", request.messages[-1]["content"], re.MULTILINE)
        return json.dumps({f"h{n}": "contradicts" if "parties" in s else "supports" for n, s in statements})
    return json.dumps({"hypotheses": [{"statement": "Counts things.", "evidence": ["Counting keeps you honest."]}]})


def test_update_rescores_adds_and_retires(tmp_path, store, profile_file, register_test_backend):
    register_test_backend("keeper", lambda **_: FakeBackend(keeper_llm))
    ok(run("profile", "import", str(profile_file), store=store))
    new = tmp_path / "new.jsonl"
    new.write_text("".join(json.dumps({"text": t}) + "\n" for t in [
        "Counted the steps again: 176. Counting keeps you honest.", "Gears first, opinions later. Always."]))
    result = run("--backend", "keeper", "--no-cache", "profile", "update", "morwenna", str(new), "--min-ratings", "2",
                 store=store)
    assert f"Saved version 2 of morwenna (update: 2 new texts: rescored 2, added 1, retired 1 ({PARTIES.id}))" in ok(result)
    assert "LLM calls: 3" in text(result)  # 2 ratings + 1 proposal for every aspect; no attributes
    profile = ProfileStore(store).get("morwenna").profile
    assert [h.statement for h in profile.inferred_hypotheses] == ["Repeats a motto.", "Counts things."]
    assert profile.inferred_hypotheses[0].score.supports == 4
    # The two new texts were measured: the profile now has its style facts (it was imported without any).
    assert profile.facts and all(f.origin == "measured" for f in profile.facts)
    assert f"- [{PARTIES.id}] personality: Loves parties." in ok(run("profile", "diff", "morwenna", "1", "2", store=store))


def test_infer_stores_a_profile_and_replaces_one_only_when_asked(tmp_path, store):
    examples = tmp_path / "ex.jsonl"
    examples.write_text(json.dumps({"text": "Right then. Lock the gate. No excuses, no exceptions."}) + "\n")
    infer = ("--backend", "fake", "--no-cache", "profile", "infer", str(examples), "--user", "bev")
    assert "Saved version 1 of bev (infer)" in ok(run(*infer, "--attribute", "role=gardener", store=store))
    assert_clean_failure(run(*infer, store=store), "profile 'bev' is already stored (version 1)", "profile update bev")
    assert "Saved version 2 of bev (infer)" in ok(run(*infer, "--replace", store=store))
    stored = ProfileStore(store).get("bev", version=1)
    assert stored.profile.attributes["role"] == "gardener" and stored.info.author == "hyperalign"


def test_the_default_store_follows_xdg_data_home_and_hyperalign_store(tmp_path, profile_file, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    ok(run("profile", "import", str(profile_file)))
    assert ProfileStore(tmp_path / "data" / "hyperalign" / "profiles.sqlite3").current_version("morwenna") == 1
    monkeypatch.setenv("HYPERALIGN_STORE", str(tmp_path / "elsewhere.sqlite3"))
    ok(run("profile", "import", str(profile_file)))
    assert ProfileStore(tmp_path / "elsewhere.sqlite3").current_version("morwenna") == 1


def test_bad_input_gives_one_message_and_exit_2(tmp_path, store, profile_file):
    ok(run("profile", "import", str(profile_file), store=store))
    broken = tmp_path / "broken.json"
    broken.write_text(profile_file.read_text().replace('"n_examples": 2', '"n_examples": "many"'))
    empty, good = tmp_path / "empty.jsonl", tmp_path / "good.jsonl"
    empty.write_text("")
    good.write_text('{"text": "Fog again."}\n')
    cases = [
        (["profile", "import", str(broken)], ["invalid profile: field 'n_examples'"]),
        (["profile", "import", str(tmp_path / "missing.json")], ["no such file"]),
        (["profile", "show", "nobody"], ["no profile 'nobody'"]),
        (["profile", "show", "morwenna", "--version", "9"], ["no version 9"]),
        (["profile", "diff", "morwenna", "1", "4"], ["no version 4"]),
        (["profile", "history", "nobody"], ["no profile 'nobody'"]),
        (["profile", "edit", "morwenna", "--pin", "nope1234"], ["no hypothesis or fact nope1234 in profile 'morwenna'"]),
        (["profile", "edit", "morwenna", "--set", "no-equals"], ["--set expects ID=STATEMENT"]),
        (["profile", "edit", "morwenna", "--add", "humour"], ["--add expects ASPECT=STATEMENT"]),
        (["--backend", "fake", "profile", "update", "morwenna", str(empty)], [f"{empty}: the file is empty"]),
        (["--backend", "fake", "profile", "update", "morwenna", str(profile_file)], ["line 1: not valid JSON"]),
        (["--backend", "fake", "profile", "update", "nobody", str(good)], ["no profile 'nobody'"]),
    ]
    for args, fragments in cases:
        assert_clean_failure(run(*args, store=store), *fragments)
    assert_clean_failure(run("profile", "list", store="nosuchdialect://x"), "cannot use the profile store URL")
    assert ProfileStore(store).current_version("morwenna") == 1
