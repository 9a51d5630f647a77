"""The pointwise judge (`mode = "pointwise"`, built in: `same-author`): each candidate scored alone beside the
reference, the pair to the higher score, a tie within POINTWISE_TIE; it proves itself by the same validity check as
the pairwise judge, and refuses a backend that gives no log-probabilities before judging anything."""

from __future__ import annotations

import re

import pytest

from hyperalign.errors import InputError
from hyperalign.eval.authorship.report import judge_section
from hyperalign.eval.judge import POINTWISE_TIE, Judge, aggregate, chosen_judge
from hyperalign.llm import CompletionRequest, LLMClient
from hyperalign.llm.fake import FakeBackend
from test_eval_authorship import config, rows, run, write_corpus


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus")


def shown(request: CompletionRequest) -> str:
    prompt = request.messages[-1]["content"]
    found = re.findall(r"<candidate>\n(.*?)\n</candidate>", prompt, re.S)
    assert len(found) == 1, "a pointwise judge shows one candidate at a time"
    return found[0]


def same_author(p_yes):
    """A fake judge model: P(Yes) from the one candidate it is shown."""
    def probabilities(request: CompletionRequest) -> dict[str, float]:
        p = p_yes(shown(request))
        return {"Yes": p * 0.95, "No": (1 - p) * 0.95, "The": 0.05}
    return probabilities


async def test_each_text_is_scored_alone_and_the_higher_score_wins_in_both_orders():
    judge = Judge.load("same-author")
    client = LLMClient(FakeBackend(probabilities=same_author(lambda text: 0.8 if "mine" in text else 0.3)))
    first = await judge.judge_pair(client, ["the reference"], "mine, truly", "someone else's")
    second = await judge.judge_pair(client, ["the reference"], "someone else's", "mine, truly")
    assert first["verdict"] == second["verdict"] == "pointwise" and first["p_first"] is None
    assert first["first"] and not second["first"]
    assert first["scores"] == pytest.approx([0.8, 0.3]) and second["scores"] == pytest.approx([0.3, 0.8])


async def test_scores_within_the_tie_margin_flip_with_the_order_and_count_as_a_tie():
    judge = Judge.load("same-author")
    close = {"x text": 0.5, "y text": 0.5 + POINTWISE_TIE / 2}
    client = LLMClient(FakeBackend(probabilities=same_author(lambda text: close[text])))
    judgments = []
    for a, b, order in (("x", "y", 0), ("y", "x", 1)):
        verdict = await judge.judge_pair(client, ["ref"], f"{a} text", f"{b} text")
        judgments.append({"a": a, "b": b, "order": order, "item_id": "i", "winner": a if verdict["first"] else b,
                          **verdict})
    assert judgments[0]["winner"] != judgments[1]["winner"]
    result = aggregate(judgments, ["x", "y"])
    assert result["matrix"]["x"]["y"]["ties"] == 1 and result["calibration"]["verdicts"] == "pointwise"


def test_end_to_end_a_pointwise_judge_that_tells_real_text_passes_its_check_and_says_how_it_judged(corpus, tmp_path):
    # The fake generator's outputs all hold "[fake completion"; the real held-out texts do not.
    judge_backend = FakeBackend(probabilities=same_author(lambda text: 0.2 if "[fake" in text else 0.7))
    results = run(config(corpus, judge="same-author"), tmp_path / "run", FakeBackend(), judge_backend)
    judge = results["judge"]
    assert judge["validity"]["passed"] and judge["validity"]["real_wins"] == 1.0
    assert judge["calibration"]["verdicts"] == "pointwise" and judge["calibration"]["probability_verdicts"] == 0
    # Every method's output scores alike: every pair of methods is a tie, not a win for whichever was shown first.
    assert all(cell is None or cell["ties"] == cell["n"] for cols in judge["matrix"].values() for cell in cols.values())
    section = "\n".join(judge_section(judge))
    assert "pointwise judge" in section and "calibrated" not in section
    assert "Pairs not tied: 0.00" in section and "Position consistency" not in section
    assert judge["agreement_with_delta_margin"] is None  # every pair tied: nothing decided to compare
    assert all(r["verdict"] == "pointwise" for r in rows(tmp_path / "run", "judgments.jsonl"))


def test_auto_picks_the_pointwise_judge_where_the_backend_reads_probabilities_and_the_pairwise_one_elsewhere():
    reads = LLMClient(FakeBackend(probabilities=same_author(lambda text: 0.5)))
    plain = LLMClient(FakeBackend())
    assert chosen_judge("auto", reads) == "same-author" and chosen_judge("auto", plain) == "style"
    assert chosen_judge("style", reads) == "style" and chosen_judge("same-author", plain) == "same-author"


@pytest.mark.parametrize(("probabilities", "named", "verdicts"), [(True, "same-author", "pointwise"),
                                                                  (False, "style", "text")])
def test_a_run_with_the_default_judge_runs_and_names_the_judge_its_backend_can_carry(
        corpus, tmp_path, probabilities, named, verdicts):
    judge_backend = FakeBackend(probabilities=same_author(lambda text: 0.2 if "[fake" in text else 0.7)
                                if probabilities else None)
    results = run(config(corpus), tmp_path / "run", FakeBackend(), judge_backend)
    assert results["config"]["judge"] == named and results["judge"]["judge"].startswith(named)
    assert results["judge"]["calibration"]["verdicts"] == verdicts


def test_a_pointwise_judge_on_a_backend_without_log_probabilities_stops_before_judging(corpus, tmp_path):
    with pytest.raises(InputError, match="same-author scores each text by label probabilities"):
        run(config(corpus, judge="same-author"), tmp_path / "run", FakeBackend(), FakeBackend())
    assert not (tmp_path / "run" / "judgments.jsonl").exists() or not rows(tmp_path / "run", "judgments.jsonl")


def test_a_pointwise_judge_folder_without_a_label_template_is_an_input_error(tmp_path):
    (tmp_path / "config.toml").write_text('mode = "pointwise"\nlabels = ["Yes", "No"]\n', encoding="utf-8")
    (tmp_path / "prompt.v1.j2").write_text("{% block user %}{{ candidate | data }}{% endblock %}", encoding="utf-8")
    with pytest.raises(InputError, match="a pointwise judge reads label probabilities"):
        Judge.load(str(tmp_path))


def test_agreement_with_a_judge_free_metric_counts_decided_pairs_only():
    from hyperalign.eval.judge import agreement

    def pair(x: str, y: str, item: str, winners: tuple[str, str]) -> list[dict]:
        return [{"a": x, "b": y, "order": 0, "item_id": item, "winner": winners[0]},
                {"a": y, "b": x, "order": 1, "item_id": item, "winner": winners[1]}]

    margins = {"x": {"1": 0.05, "2": 0.01, "3": 0.02, "4": 0.03}, "y": {"1": 0.01, "2": 0.04, "3": 0.02, "4": 0.0}}
    judgments = (pair("x", "y", "1", ("x", "x"))      # decided for x, which has the higher margin: agrees
                 + pair("x", "y", "2", ("x", "x"))    # decided for x, y has the higher margin: disagrees
                 + pair("x", "y", "3", ("x", "x"))    # equal margins: left out
                 + pair("x", "y", "4", ("x", "y")))   # flipped with the order (a tie): left out
    found = agreement(judgments, margins)
    assert found["n"] == 2 and found["agree"] == 0.5
    assert agreement(pair("x", "y", "1", ("y", "y")), margins)["agree"] == 0.0
    assert agreement(pair("x", "y", "9", ("x", "x")), margins) is None  # no margin for that task


def test_the_report_states_the_judge_s_agreement_with_the_delta_margin_beside_its_win_rates():
    cell = {"win_rate": 0.7, "se": 0.1, "n": 10, "wins": 7, "ties": 0, "losses": 3}
    judge = {"pairs_judged": 10, "position_consistency": 1.0, "first_shown_share": 0.5, "invalid_verdicts": 0,
             "judged_by_position": False, "calibration": {"verdicts": "pointwise", "pointwise_verdicts": 20},
             "validity": {"real_wins": 0.9, "low": 0.8, "high": 1.0, "n": 10, "threshold": 0.75, "passed": True,
                          "against": "zero-shot"},
             "matrix": {"x": {"x": None, "y": cell}, "y": {"x": cell | {"win_rate": 0.3}, "y": None}},
             "agreement_with_delta_margin": {"n": 8, "agree": 0.625, "low": 0.25, "high": 0.875}}
    section = "\n".join(judge_section(judge))
    assert "higher margin on that task in 0.62 [0.25, 0.88] of 8 pairs (0.5: no relation)" in section
