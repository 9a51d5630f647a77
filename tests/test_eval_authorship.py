"""Authorship evaluation end to end with the FakeBackend: outputs, resumption after a kill, imports, judge failures."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

import pytest

from conftest import KilledAfter, MeteredBackend
from hyperalign import HyperAlign
from hyperalign.errors import InputError
from hyperalign.eval.authorship.metrics import cost_metrics
from hyperalign.eval.authorship.report import markdown
from hyperalign.eval.authorship.run import AuthorshipConfig, AuthorshipRun
from hyperalign.eval.corpus import load_corpus, make_split
from hyperalign.eval.runs import RunFolder
from hyperalign.llm import Capabilities, LLMClient
from hyperalign.llm.fake import FakeBackend

HABITS = {
    "ann": "Indeed; the {x} met the {y}; indeed, it was so.",
    "bo": "Awesome! The {x} and the {y}! So awesome!!",
    "cy": "The {x} -- as ever -- waited for the {y} (quietly)...",
}
TOPICS = ["river", "market", "engine", "garden", "castle", "letter", "winter", "bridge", "harbor", "window"]
METHODS = ["hyperalign", "few-shot", "zero-shot"]
ITEMS, PAIRS = 6, 3  # 3 authors x 2 prompts; 3 method pairs
VERDICTS = 2 * (PAIRS + 1) * ITEMS  # every pair in both orders, and the judge's validity check (real vs zero-shot)


def write_corpus(root: Path) -> Path:
    for author, habit in HABITS.items():
        (root / author).mkdir(parents=True)
        for index in range(6):
            words = [TOPICS[(index + k) % len(TOPICS)] for k in range(4)]
            text = f"{author.title()} story {index} begins. " + " ".join(
                habit.format(x=words[k], y=words[k + 1]) for k in range(3))
            (root / author / f"{index}.txt").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


def config(corpus: Path, **changes) -> AuthorshipConfig:
    values = dict(corpus=str(corpus), methods=METHODS, authors=3, shots=3, prompts_per_author=2, seed=0)
    return AuthorshipConfig(**{**values, **changes})


def run(cfg: AuthorshipConfig, folder: Path, backend: FakeBackend, judge_backend: FakeBackend | None = None) -> dict:
    ha = HyperAlign(LLMClient(backend))
    judge_ha = HyperAlign(LLMClient(judge_backend)) if judge_backend else ha
    return asyncio.run(AuthorshipRun(cfg, ha, judge_ha, RunFolder(folder)).run())


def rounded(value, digits: int = 4):
    """LinearSVC is not seeded, so probabilities may differ between runs in the 6th decimal."""
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    return round(value, digits) if isinstance(value, float) else value


TIMINGS = {"seconds_per_generation", "inference_seconds_per_user"}


def untimed(cost: dict) -> dict:
    """Wall times are measurements of this run, not results: a resumed run's differ from the reference's."""
    return {**cost, "methods": {m: {k: v for k, v in block.items() if k not in TIMINGS}
                                for m, block in cost["methods"].items()}}


def rows(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / name).read_text(encoding="utf-8").splitlines()]


def test_end_to_end_results_and_records(corpus, tmp_path):
    backend = FakeBackend()
    results = run(config(corpus), tmp_path / "run", backend)
    folder = tmp_path / "run"
    assert results == json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert results["methods"] == METHODS and results["authors"] == ["ann", "bo", "cy"] and results["n_prompts"] == ITEMS
    assert {p.stem for p in (folder / "profiles").glob("*.json")} == {"ann", "bo", "cy"}
    attribution = results["attribution"]
    assert attribution["chance"] == pytest.approx(1 / 3)
    for view in ("raw", "masked"):
        block = attribution["views"][view]
        assert block["ceiling_real_texts"]["n"] == ITEMS and block["ceiling_real_texts"]["accuracy"]["mean"] == 1.0
        assert block["floor_opening_only"]["n"] == ITEMS  # the news prompt handed over an opening
        for method in METHODS:
            assert block["methods"][method]["all"]["n"] == ITEMS
    assert set(attribution["copying"]) == set(METHODS)

    generations = rows(folder, "generations.jsonl")
    assert len(generations) == len({r["key"] for r in generations}) == len(METHODS) * ITEMS
    assert {(r["method"], r["item_id"]) for r in generations} == {
        (m, f"{a}#{i}") for m in METHODS for a in HABITS for i in range(2)}
    judgments = rows(folder, "judgments.jsonl")
    checks = [r for r in judgments if r.get("check") == "validity"]  # the real text against zero-shot, both orders
    assert len(judgments) == len({(r["a"], r["b"], r["item_id"]) for r in judgments}) == 2 * (PAIRS + 1) * ITEMS
    assert len(checks) == 2 * ITEMS and {r["a"] for r in checks} == {"real text", "zero-shot"}
    assert all(r["winner"] in (r["a"], r["b"]) and r["verdict"] == "text" for r in judgments)

    judge = results["judge"]
    assert judge["pairs_judged"] == PAIRS * ITEMS and judge["invalid_verdicts"] == 0
    assert judge["validity"]["n"] == ITEMS and judge["calibration"]["verdicts"] == "text"
    assert judge["judge"] == "style/prompt.v1.j2"
    for x in METHODS:
        for y in METHODS:
            if x != y:
                assert judge["matrix"][x][y]["win_rate"] + judge["matrix"][y][x]["win_rate"] == pytest.approx(1.0)

    cost = results["cost"]
    mean_prompt = {m: sum(r["prompt_tokens"] for r in generations if r["method"] == m) / ITEMS for m in METHODS}
    for method in METHODS:
        assert cost["methods"][method]["prompt_tokens_per_generation"] == pytest.approx(mean_prompt[method])
    assert cost["hyperalign_over_few_shot_prompt_tokens"] == pytest.approx(mean_prompt["hyperalign"] / mean_prompt["few-shot"])
    inference = cost["methods"]["hyperalign"]["inference_calls_per_user"]
    assert inference >= 1 and cost["methods"]["few-shot"]["inference_calls_per_user"] == 0
    assert cost["hyperalign_over_few_shot_prompt_tokens_amortized"] > cost["hyperalign_over_few_shot_prompt_tokens"]
    assert len(backend.requests) == 3 * inference + len(generations) + len(judgments)


def test_a_generations_seconds_are_its_own_calls_not_its_wait_behind_the_others(corpus, tmp_path):
    # Every job of a stage starts at once and queues for the client's slots; each is charged its calls only.
    results = run(config(corpus, methods=["hyperalign", "hyperalign:best-of=2", "few-shot"]), tmp_path / "run",
                  MeteredBackend())
    generations = rows(tmp_path / "run", "generations.jsonl")
    assert generations and all(r["backend_seconds"] == MeteredBackend.SECONDS * r["llm_calls"] for r in generations)
    cost = results["cost"]["methods"]
    assert cost["hyperalign"]["seconds_per_generation"] == cost["few-shot"]["seconds_per_generation"] == 2.5
    assert cost["hyperalign:best-of=2"]["seconds_per_generation"] == 5.0
    assert all(r["backend_seconds"] == MeteredBackend.SECONDS for r in rows(tmp_path / "run", "judgments.jsonl"))


def test_the_prompt_computed_is_reported_beside_the_prompt_billed(corpus, tmp_path):
    """A backend that keeps its last prompt (the fake, as llama.cpp's one slot) computes less than it bills: each
    generation records what it reused, and the cost table reports both. Rows that did not record it (a run from
    before) give no computed count rather than a wrong one."""
    methods = ["hyperalign", "hyperalign:best-of=2", "few-shot"]
    backend = FakeBackend(capabilities=Capabilities(prompt_prefix_cache=True))
    results = run(config(corpus, methods=methods, judge=None), tmp_path / "run", backend)
    generations = rows(tmp_path / "run", "generations.jsonl")
    assert all(0 <= r["cached_prompt_tokens"] <= r["prompt_tokens"] for r in generations)
    assert any(r["cached_prompt_tokens"] for r in generations if r["method"] == "hyperalign:best-of=2")
    cost = results["cost"]["methods"]
    for method in methods:
        mine = [r for r in generations if r["method"] == method]
        computed = sum(r["prompt_tokens"] - r["cached_prompt_tokens"] for r in mine) / len(mine)
        assert cost[method]["computed_prompt_tokens_per_generation"] == pytest.approx(computed)
    best_of = cost["hyperalign:best-of=2"]
    assert best_of["computed_prompt_tokens_per_generation"] < best_of["prompt_tokens_per_generation"]
    report = markdown(results)
    assert "| of them computed |" in report and "reused from its prefix cache" in report

    old_rows = [{k: v for k, v in r.items() if k != "cached_prompt_tokens"} for r in generations]
    split = make_split(load_corpus(corpus), authors=3, shots=3, prompts_per_author=2, seed=0)
    before = cost_metrics(split, old_rows, {}, methods)["methods"]
    assert all(before[m]["computed_prompt_tokens_per_generation"] is None for m in methods)


@pytest.mark.parametrize("stage", ["profiles", "generations", "judgments"])
def test_a_killed_run_resumes_without_redoing_finished_work(corpus, tmp_path, stage):
    reference_backend = FakeBackend()
    reference = run(config(corpus), tmp_path / "reference", reference_backend)
    total = len(reference_backend.requests)
    per_profile = reference["cost"]["methods"]["hyperalign"]["inference_calls_per_user"]
    limit = {"profiles": per_profile + 1, "generations": 3 * per_profile + 7,
             "judgments": total - VERDICTS + 11}[stage]
    folder = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt, match=f"killed after {int(limit)} calls"):
        run(config(corpus), folder, KilledAfter(int(limit)))
    gc.collect()  # asyncio logs the dead task's unretrieved KeyboardInterrupt now, inside this test's captured log
    profiles_done = len(list((folder / "profiles").glob("*.json")))
    generations = (folder / "generations.jsonl").read_bytes() if (folder / "generations.jsonl").exists() else b""
    judgments = (folder / "judgments.jsonl").read_bytes() if (folder / "judgments.jsonl").exists() else b""
    generated, judged = generations.count(b"\n"), judgments.count(b"\n")
    assert 0 < profiles_done * per_profile + generated + judged <= limit < total
    assert (stage == "profiles") == (profiles_done < 3)

    counting = FakeBackend()
    resumed = run(config(corpus), folder, counting)
    unfinished = (3 - profiles_done) * per_profile + (len(METHODS) * ITEMS - generated) + (VERDICTS - judged)
    assert len(counting.requests) == unfinished
    assert (folder / "generations.jsonl").read_bytes().startswith(generations)
    assert (folder / "judgments.jsonl").read_bytes().startswith(judgments)
    assert len(rows(folder, "generations.jsonl")) == len(METHODS) * ITEMS
    assert resumed["judge"] == reference["judge"] and untimed(resumed["cost"]) == untimed(reference["cost"])
    assert rounded(resumed["attribution"]) == rounded(reference["attribution"])
    again = FakeBackend()
    run(config(corpus), folder, again)
    assert again.requests == []


def test_a_torn_last_line_is_tolerated_and_that_unit_redone(corpus, tmp_path):
    folder = tmp_path / "run"
    run(config(corpus), folder, FakeBackend())
    path = folder / "generations.jsonl"
    complete = path.read_bytes()
    last = complete.rstrip(b"\n").rsplit(b"\n", 1)[1]
    path.write_bytes(complete[: len(complete) - len(last) // 2 - 1])  # a kill mid-write
    counting = FakeBackend()
    run(config(corpus), folder, counting)
    assert len(counting.requests) == 1
    assert [json.loads(line) for line in path.read_text().splitlines() if line.strip()][-1] == json.loads(last)


def test_rerun_with_another_seed_is_refused(corpus, tmp_path):
    run(config(corpus, methods=["few-shot", "zero-shot"], judge=None), tmp_path / "run", FakeBackend())
    with pytest.raises(InputError, match=r"another configuration \(seed: 0 -> 1\)"):
        run(config(corpus, methods=["few-shot", "zero-shot"], judge=None, seed=1), tmp_path / "run", FakeBackend())


def import_file(path: Path, corpus: Path, drop: int = 0) -> Path:
    split = make_split(load_corpus(corpus), authors=3, shots=3, prompts_per_author=2, seed=0)
    items = [i for a in split.authors for i in a.held_out][drop:]
    lines = [json.dumps({"author": i.author, "prompt": "  " + i.prompt.replace(" ", "  "), "output": i.reference})
             for i in items]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_imported_outputs_are_a_method_without_cost(corpus, tmp_path):
    imported = import_file(tmp_path / "mine.jsonl", corpus)
    backend = FakeBackend()
    results = run(config(corpus, methods=["few-shot", f"import:{imported}"]), tmp_path / "run", backend)
    assert results["methods"] == ["few-shot", "import:mine"]
    assert results["cost"]["methods"]["import:mine"] is None
    assert results["cost"]["hyperalign_over_few_shot_prompt_tokens"] is None
    raw = results["attribution"]["views"]["raw"]
    # The import hands in the real held-out texts, so it scores exactly like the ceiling.
    assert raw["methods"]["import:mine"]["all"] == raw["ceiling_real_texts"]
    generations = rows(tmp_path / "run", "generations.jsonl")
    assert sum(r["method"] == "import:mine" and r["prompt_tokens"] is None for r in generations) == ITEMS
    assert results["judge"]["pairs_judged"] == ITEMS
    assert len(backend.requests) == ITEMS + 2 * ITEMS  # few-shot generations + both orders; imports cost nothing


def test_import_missing_prompts_and_unknown_methods_are_input_errors(corpus, tmp_path):
    partial = import_file(tmp_path / "partial.jsonl", corpus, drop=2)
    with pytest.raises(InputError, match=r"partial\.jsonl lacks 2 of the run's 6 prompts"):
        run(config(corpus, methods=["few-shot", f"import:{partial}"]), tmp_path / "run", FakeBackend())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"author": "ann", "prompt": "p"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r'line 1: needs string fields "author", "prompt", "output"'):
        run(config(corpus, methods=[f"import:{bad}"]), tmp_path / "run2", FakeBackend())
    with pytest.raises(InputError, match="unknown method 'four-shot'"):
        run(config(corpus, methods=["few-shot", "four-shot"]), tmp_path / "run3", FakeBackend())
    with pytest.raises(InputError, match="no such file"):
        run(config(corpus, methods=[f"import:{tmp_path / 'absent.jsonl'}"]), tmp_path / "run4", FakeBackend())
    with pytest.raises(InputError, match="distinct"):
        run(config(corpus, methods=["few-shot", "few-shot"]), tmp_path / "run5", FakeBackend())


def test_judge_failures_are_recorded_and_counted_not_fatal(corpus, tmp_path):
    judge_backend = FakeBackend(lambda request: "this is not JSON")
    results = run(config(corpus, methods=["few-shot", "zero-shot"]), tmp_path / "run", FakeBackend(), judge_backend)
    judgments = rows(tmp_path / "run", "judgments.jsonl")
    assert len(judgments) == 2 * 2 * ITEMS  # the pair in both orders, and the validity check in both orders
    assert all(r["winner"] is None and "not valid after 1 repair attempt" in r["error"] for r in judgments)
    assert len(judge_backend.requests) == 2 * len(judgments)  # each verdict: the call and its repair
    assert results["judge"]["validity"] is None  # nothing usable to check the judge with
    assert results["judge"]["invalid_verdicts"] == 2 * ITEMS and results["judge"]["pairs_judged"] == 0
    assert results["judge"]["matrix"]["few-shot"]["zero-shot"] is None
    assert results["attribution"]["views"]["masked"]["methods"]["few-shot"]["all"]["n"] == ITEMS


def test_a_rerun_that_would_change_finished_generations_is_refused(corpus, tmp_path):
    base = dict(methods=["few-shot", "zero-shot"])
    run(config(corpus, **base), tmp_path / "run", FakeBackend())
    with pytest.raises(InputError, match=r"another configuration \(classifier_texts: 'all' -> 'shots'\)"):
        run(config(corpus, **base, classifier_texts="shots"), tmp_path / "run", FakeBackend())
    with pytest.raises(InputError, match="generator"):  # the same model name behind another endpoint
        run(config(corpus, **base), tmp_path / "run", OtherEndpoint())


class OtherEndpoint(FakeBackend):
    def identity(self) -> dict:
        return {"endpoint": "http://elsewhere:8000/v1"}


def write_judge(folder: Path, wording: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "config.toml").write_text("", encoding="utf-8")
    (folder / "prompt.v1.j2").write_text("{% block system %}" + wording + "{% endblock %}{% block user %}"
                                         "{{ a | data }} / {{ b | data }}{% endblock %}", encoding="utf-8")
    return folder


def test_another_judge_judges_the_same_outputs_again_and_only_its_verdicts_count(corpus, tmp_path):
    base = dict(methods=["few-shot", "zero-shot"])
    first = FakeBackend()
    run(config(corpus, **base), tmp_path / "run", first)
    generations = rows(tmp_path / "run", "generations.jsonl")
    judge_folder = write_judge(tmp_path / "other-judge", "Judge.")
    second = FakeBackend()
    results = run(config(corpus, **base, judge=str(judge_folder)), tmp_path / "run", second)
    assert rows(tmp_path / "run", "generations.jsonl") == generations  # nothing generated again
    assert all(r.json_schema for r in second.requests)  # every new call is a verdict
    verdicts = rows(tmp_path / "run", "judgments.jsonl")
    assert {r["judge"] for r in verdicts} == {"style/prompt.v1.j2", "other-judge/prompt.v1.j2"}  # both kept
    assert results["judge"]["judge"] == "other-judge/prompt.v1.j2"
    assert results["judge"]["pairs_judged"] == ITEMS  # the new judge's pairs only, not the old judge's too
    # The same folder with another prompt is another judge: its verdicts are not the old ones relabelled.
    write_judge(judge_folder, "A stricter judge.")
    third = FakeBackend()
    again = run(config(corpus, **base, judge=str(judge_folder)), tmp_path / "run", third)
    assert len(third.requests) == 4 * ITEMS and again["judge"]["pairs_judged"] == ITEMS  # pairs + validity checks
    assert len(rows(tmp_path / "run", "judgments.jsonl")) == 3 * 4 * ITEMS



def test_judge_against_validity_runs_only_the_judges_own_check(corpus, tmp_path):
    from hyperalign.eval.authorship.report import judge_section

    results = run(config(corpus, judge_against="validity"), tmp_path / "run", FakeBackend())
    judgments = rows(tmp_path / "run", "judgments.jsonl")
    assert len(judgments) == 2 * ITEMS and all(r["check"] == "validity" for r in judgments)
    assert results["judge"]["pairs_judged"] == 0 and results["judge"]["validity"]["n"] == ITEMS
    section = "\n".join(judge_section(results["judge"]))
    assert "Validity check" in section and "No pair of methods judged" in section
