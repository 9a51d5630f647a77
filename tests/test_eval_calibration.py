"""Judges from probabilities: a fake judge with a known position bias whose calibrated verdicts recover the truth,
the validity check that stops a judge that cannot tell the real text, and the fallback to text verdicts."""

from __future__ import annotations

import math
import re

import pytest

from hyperalign.eval.calibration import calibrated, position_bias
from hyperalign.eval.judge import Judge, aggregate, validity
from hyperalign.llm import Capabilities, Completion, CompletionRequest, LLMClient, TokenLogprobs
from hyperalign.llm.fake import FakeBackend
from hyperalign.llm.labels import label_of, label_probabilities, logit
from test_eval_authorship import config, rows, run, write_corpus


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus")


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def candidates(request: CompletionRequest) -> tuple[str, str]:
    prompt = request.messages[-1]["content"]
    a, b = (re.search(rf'<candidate id="{x}">\n(.*?)\n</candidate>', prompt, re.S).group(1) for x in "AB")
    return a, b


def biased_judge(quality, bias: float, strength: float = 1.0):
    """P(A) = sigmoid(strength * (quality(A) - quality(B)) + bias): a judge that sees the truth but leans to A."""
    def probabilities(request: CompletionRequest) -> dict[str, float]:
        a, b = candidates(request)
        p = sigmoid(strength * (quality(a) - quality(b)) + bias)
        return {"A": p * 0.9, "B": (1 - p) * 0.9, "The": 0.1}
    return probabilities


def row(a: str, b: str, order: int, item: str, p_first: float, check: str = "") -> dict:
    return {"a": a, "b": b, "order": order, "item_id": item, "p_first": p_first, "winner": a if p_first > .5 else b,
            **({"check": check} if check else {})}


def test_calibration_recovers_the_truth_from_a_judge_that_always_says_first():
    # x is truly better on every item; the judge leans to the first-shown text so hard it always says "first".
    bias, truth = 2.0, 0.8
    judgments = []
    for item in range(10):
        judgments += [row("x", "y", 0, f"i{item}", sigmoid(bias + truth)),
                      row("y", "x", 1, f"i{item}", sigmoid(bias - truth))]
    raw = aggregate([r | {"p_first": None} for r in judgments], ["x", "y"])
    assert raw["matrix"]["x"]["y"]["win_rate"] == 0.5 and raw["first_shown_share"] == 1.0  # all ties
    result = aggregate(judgments, ["x", "y"])
    assert result["matrix"]["x"]["y"]["win_rate"] == 1.0
    assert result["calibration"]["position_bias_logit"] == pytest.approx(bias, abs=1e-3)
    assert result["calibration"]["raw_first_shown_share"] == 1.0
    assert result["calibration"]["calibrated_first_shown_share"] == 0.5


def test_a_difference_within_the_position_noise_is_a_tie():
    # Both orders of item "close" lean to x but less than the bias moves: after calibration they disagree -> tie.
    judgments = [row("x", "y", 0, "clear", sigmoid(1 + 2)), row("y", "x", 1, "clear", sigmoid(1 - 2)),
                 row("x", "y", 0, "close", sigmoid(1 + 0.1)), row("y", "x", 1, "close", sigmoid(1 + 0.05))]
    rows_, _ = calibrated(judgments)
    winners = {(r["item_id"], r["order"]): r["winner"] for r in rows_}
    assert winners[("clear", 0)] == winners[("clear", 1)] == "x"
    assert winners[("close", 0)] != winners[("close", 1)]  # a tie in the matrix
    assert aggregate(judgments, ["x", "y"])["matrix"]["x"]["y"]["ties"] == 1


def test_bias_is_estimated_only_from_pairs_seen_in_both_orders():
    lone = row("x", "y", 0, "half", 0.99)
    pair = [row("x", "y", 0, "i", sigmoid(0.5)), row("y", "x", 1, "i", sigmoid(0.5))]
    assert position_bias([lone, *pair]) == pytest.approx(0.5)
    assert position_bias([lone]) is None


def test_label_probabilities_normalize_over_the_labels_and_ignore_wrapping():
    completion = Completion(text="A", logprobs=[TokenLogprobs(token="A", logprob=math.log(0.5), top={
        "A": math.log(0.5), ' "B': math.log(0.2), "**A": math.log(0.1), "a": math.log(0.1), "The": math.log(0.1)})])
    probabilities, mass = label_probabilities(completion, ["A", "B"])
    assert probabilities["A"] == pytest.approx(0.6 / 0.8) and mass == pytest.approx(0.8)
    assert label_of(" Yes.", ["yes", "no"]) == "yes" and label_of("a", ["A", "B"]) is None
    thin = Completion(text="The", logprobs=[TokenLogprobs(token="The", logprob=-0.01, top={"The": -0.01, "A": -5.0})])
    assert label_probabilities(thin, ["A", "B"]) is None  # too little on the labels to read
    assert label_probabilities(Completion(text="A"), ["A", "B"]) is None  # no log-probabilities at all
    assert logit(1.0) == -logit(0.0) > 9


def test_validity_passes_a_judge_that_prefers_the_real_text_and_fails_one_that_cannot_tell():
    def checks(p_real_first: float, p_real_second: float) -> list[dict]:
        out = []
        for item in range(12):
            out += [row("real text", "zero-shot", 0, f"i{item}", p_real_first, "validity"),
                    row("zero-shot", "real text", 1, f"i{item}", p_real_second, "validity")]
        return out
    good = validity(checks(sigmoid(3 + 1), sigmoid(3 - 1)), "real text", "zero-shot")
    assert good["passed"] and good["real_wins"] == 1.0 and good["n"] == 12
    blind = validity(checks(sigmoid(3), sigmoid(3)), "real text", "zero-shot")
    assert not blind["passed"] and blind["real_wins"] == 0.5
    assert validity([], "real text", "zero-shot") is None


async def test_judge_reads_probabilities_where_the_backend_gives_them_and_text_elsewhere():
    judge = Judge.load("style")
    backend = FakeBackend(probabilities=lambda request: {"A": 0.2, "B": 0.7, "The": 0.1})
    verdict = await judge.judge_pair(LLMClient(backend), ["ref"], "one", "two")
    assert verdict["verdict"] == "probability" and verdict["p_first"] == pytest.approx(0.2 / 0.9, abs=1e-5)
    assert not verdict["first"] and verdict["label_mass"] == pytest.approx(0.9)
    assert set(verdict) == {"first", "p_first", "label_mass", "verdict", "reason"}  # a row of the run, as it is
    [request] = backend.requests
    assert request.max_tokens == 1 and request.top_logprobs == 20 and request.json_schema is None
    assert "single letter A or B" in request.messages[-1]["content"]

    text_only = FakeBackend(['{"reason": "shorter", "closer": "B"}'])
    verdict = await judge.judge_pair(LLMClient(text_only), ["ref"], "one", "two")
    assert verdict["verdict"] == "text" and verdict["p_first"] is None and not verdict["first"]
    assert set(verdict) == {"first", "p_first", "verdict", "reason"}
    assert text_only.requests[0].json_schema is not None

    # Log-probabilities declared, but the answer carried none on the labels: the text verdict, never a guess.
    silent = FakeBackend(['{"reason": "r", "closer": "A"}'], probabilities=lambda request: {"Sure": 1.0})
    verdict = await judge.judge_pair(LLMClient(silent), ["ref"], "one", "two")
    assert verdict["verdict"] == "text" and verdict["first"]


def test_end_to_end_a_biased_probability_judge_passes_its_validity_check_and_ranks_by_truth(corpus, tmp_path):
    # The fake generator's outputs all hold "[fake completion" (hyperalign's after the opening its steering puts in
    # front); the real held-out texts do not. A judge that leans to the first-shown text by 3 log-odds but sees
    # real text as better by 1.5 says "A" every time.
    judge_backend = FakeBackend(probabilities=biased_judge(lambda t: 0.0 if "[fake" in t else 1.5, 3.0))
    results = run(config(corpus, judge="style"), tmp_path / "run", FakeBackend(), judge_backend)
    judgments = rows(tmp_path / "run", "judgments.jsonl")
    checks = [r for r in judgments if r.get("check") == "validity"]
    assert len(checks) == 2 * 6 and all(r["p_first"] > 0.5 and r["winner"] == r["a"] for r in checks)  # raw: "A"
    judge = results["judge"]
    assert judge["validity"]["passed"] and judge["validity"]["real_wins"] == 1.0
    assert judge["calibration"]["verdicts"] == "probabilities"
    assert judge["calibration"]["raw_first_shown_share"] == 1.0
    # Every method's output is "[fake ...": no method truly beats another, so calibrated verdicts tie.
    assert all(cell is None or cell["ties"] == cell["n"] for cols in judge["matrix"].values() for cell in cols.values())


def test_a_judge_that_fails_its_validity_check_shows_no_win_rate(corpus, tmp_path):
    from hyperalign.eval.authorship.report import judge_section, shown_win_rates

    judge_backend = FakeBackend(probabilities=lambda request: {"A": 0.95, "B": 0.05})  # blind: always first
    results = run(config(corpus, judge="style"), tmp_path / "run", FakeBackend(), judge_backend)
    judge = results["judge"]
    assert judge["validity"] is not None and not judge["validity"]["passed"]
    assert shown_win_rates(judge) == {}
    section = "\n".join(judge_section(judge))
    assert "Validity check (**failed**)" in section and "| **" not in section
    assert f"no win rate of the {judge['pairs_judged']} judged pairs is shown" in section


def test_the_embedded_and_fake_backends_declare_logprobs():
    from hyperalign.llm.embedded import EmbeddedBackend

    assert EmbeddedBackend.capabilities.logprobs and EmbeddedBackend.capabilities.schema_decoding
    assert not FakeBackend().capabilities.logprobs
    assert FakeBackend(capabilities=Capabilities(schema_decoding=True)).capabilities.schema_decoding


async def test_rubric_judges_score_the_probability_weighted_label():
    # Helpfulness: 40% on "3", 60% on "7" (and a little on a non-label) -> 0.4*3 + 0.6*7 = 5.4, not the argmax 7.
    backend = FakeBackend(probabilities=lambda request: {"3": 0.36, "7": 0.54, "Score": 0.1})
    client = LLMClient(backend)
    read = await Judge.load("helpfulness").score(client, request="r", answer="a")
    assert read["value"] == pytest.approx(5.4) and read["label_mass"] == pytest.approx(0.9)
    assert "single digit" in backend.requests[-1].messages[-1]["content"]
    harm = await Judge.load("harm").score(LLMClient(FakeBackend(probabilities=lambda r: {"Yes": 0.2, "no": 0.6})),
                                          behaviour="b", answer="a")
    assert harm["value"] == pytest.approx(0.25)  # P(yes) among the labels, case ignored for word labels
    assert await Judge.load("harm").score(LLMClient(FakeBackend()), behaviour="b", answer="a") is None  # no logprobs
    assert await Judge.load("style").score(client, a="x", b="y") is None  # a pairwise judge has no rubric values


def test_a_judge_folder_whose_values_do_not_match_its_labels_is_an_input_error(tmp_path):
    from hyperalign.errors import InputError

    (tmp_path / "config.toml").write_text('label_template = "prompt.v1.j2"\nlabels = ["yes", "no"]\n'
                                          'label_values = [1.0]\n', encoding="utf-8")
    (tmp_path / "prompt.v1.j2").write_text("{% block user %}{{ answer | data }}{% endblock %}", encoding="utf-8")
    with pytest.raises(InputError, match="one value for each of the labels"):
        Judge.load(str(tmp_path))
