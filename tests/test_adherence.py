"""Profile adherence (pipeline/adherence.py) and best-of-N reranking (pipeline/generate.py), and the guarantee that
the reranker of an evaluation only ever sees the facts of the author it writes for."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import MeteredBackend
from hyperalign import HyperAlign
from hyperalign.errors import InputError
from hyperalign.eval.authorship.methods import parse_methods
from hyperalign.eval.authorship.run import AuthorshipConfig, AuthorshipRun
from hyperalign.eval.runs import RunFolder
from hyperalign.eval.split_file import read_split
from hyperalign.llm import CompletionRequest, LLMClient, track_usage
from hyperalign.llm.fake import FakeBackend, _default_reply
from hyperalign.pipeline import adherence as adherence_module
from hyperalign.pipeline.adherence import aadherence, check_facts
from hyperalign.pipeline.facts import style_facts
from hyperalign.pipeline.generate import GenerationOptions
from hyperalign.profiles.model import Fact, Hypothesis, Profile, UserExample, fact_id

FILLER = "maple river stone cloud garden window lantern meadow harbor pebble".split()
# Everyday words: no author's marker word is crowded out of the distinctive words by the filler.
COMMON = "the day was long and the road ran on past the old town to a small house".split()


def sentence(n: int, offset: int = 0, words: list[str] = FILLER) -> str:
    chosen = [words[(offset + i) % len(words)] for i in range(n)]
    return " ".join([chosen[0].capitalize(), *chosen[1:]]) + "."


def prose(lengths: list[int], offset: int = 0, words: list[str] = FILLER) -> str:
    return " ".join(sentence(n, offset + i, words) for i, n in enumerate(lengths))


# The person writes six 8-word sentences per text.
PERSON = [prose([8] * 6, offset=k) for k in range(4)]
# Best-of-N candidates by seed: only the third reads like the person.
CANDIDATES = [prose([40] * 3), prose([2] * 20, offset=1), prose([8] * 6, offset=7), prose([25] * 3, offset=2)]
TASK = "Write about the harbor."
HYPOTHESES = [Hypothesis(aspect="writing_style", statement="Writes plain, even sentences.", supported=True),
              Hypothesis(aspect="personality", statement="Is calm.", supported=True)]


def profile_of(hypotheses: list[Hypothesis], facts: list[Fact] | None = None) -> Profile:
    return Profile(user_id="pat", hypotheses=hypotheses, facts=facts or [], examples_hash="0" * 16,
                   n_examples=len(PERSON), backend="fake", model="fake-model", prompt_version="infer_hypotheses.v1")


def facts_score(text: str, facts: list[Fact]) -> float:
    """The facts' joint score as documented: exp(-mean(min(z, 4)^2) / 2)."""
    z = [min(abs(c.value - c.target) / c.spread, 4.0) for c in check_facts(text, facts)]
    return math.exp(-sum(v * v for v in z) / len(z) / 2)


def by_seed(request: CompletionRequest) -> str:
    if request.json_schema is not None:
        return _default_reply(request)
    return CANDIDATES[(request.seed or 0) % len(CANDIDATES)]


def verdicts(answer_for: Callable[[str], str]) -> Callable[[CompletionRequest], str]:
    """A backend answering each hypotheses check with `answer_for(candidate prompt)` for every hypothesis."""
    def respond(request: CompletionRequest) -> str:
        if request.schema_name == "adherence":
            fields = list(request.json_schema["properties"])
            return json.dumps({name: answer_for(request.messages[-1]["content"]) for name in fields})
        return by_seed(request)
    return respond


# --- adherence by code ------------------------------------------------------------------------------------------------


def test_a_text_matching_the_facts_scores_near_1_and_one_far_off_lower():
    facts = style_facts(PERSON)
    close, far = check_facts(CANDIDATES[2], facts), check_facts(CANDIDATES[0], facts)
    assert {c.metric for c in close} == {f.measure.metric for f in facts}
    assert facts_score(CANDIDATES[0], facts) < 0.9 < 0.95 < facts_score(CANDIDATES[2], facts)
    length = next(c for c in far if c.metric == "sentence_words")
    assert (length.value, length.target) == (40, 8) and length.score < 0.01
    assert next(c for c in close if c.metric == "sentence_words").score == 1.0
    semicolons = "; ".join(["maple river stone"] * 20) + "."
    assert next(c for c in check_facts(semicolons, facts) if c.metric == "punctuation:semicolon").score < 0.01
    for check in close:
        assert check.id == fact_id(check.metric) and 0.0 <= check.score <= 1.0


def test_the_score_is_a_gaussian_of_the_distance_in_spreads():
    facts = [f for f in style_facts(PERSON) if f.measure.metric == "sentence_words"]
    spread = facts[0].measure.spread
    assert spread == 2.0  # the texts agree exactly: the floor
    [one_spread_away] = check_facts(prose([10] * 4), facts)
    [two_spreads_away] = check_facts(prose([12] * 4), facts)
    assert one_spread_away.score == pytest.approx(0.6065, abs=1e-4)
    assert two_spreads_away.score == pytest.approx(0.1353, abs=1e-4)


def test_facts_the_candidate_says_nothing_about_are_skipped():
    numbered = [p + " We met 3 boats and two ships." for p in PERSON]
    facts = style_facts(numbered)
    metrics = {f.measure.metric for f in facts}
    assert "numbers_as_digits" in metrics
    checked = {c.metric for c in check_facts(CANDIDATES[2], facts)}
    assert checked == metrics - {"numbers_as_digits"}  # no numbers in the candidate
    empty = {c.metric for c in check_facts("", facts)}
    assert not empty & {"sentence_words", "paragraph_sentences", "word_letters", "numbers_as_digits"}
    assert "punctuation:comma" in empty
    with track_usage() as usage:
        adherence = asyncio.run(aadherence("", []))
    assert (adherence.score, adherence.facts, adherence.facts_score, usage.calls) == (0.0, [], None, 0)


# --- the hypotheses check ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "expected"), [("supports", 1.0), ("contradicts", 0.0), ("neutral", 0.5)])
def test_the_hypotheses_check_changes_the_score_with_one_call_per_candidate(make_hyperalign, answer, expected):
    ha, backend = make_hyperalign(verdicts(lambda prompt: answer), cache=False)
    facts = style_facts(PERSON)
    with track_usage() as none:
        alone = asyncio.run(aadherence(CANDIDATES[3], facts, HYPOTHESES))
    assert alone.hypotheses_score is None and none.calls == 0 and backend.requests == []
    with track_usage() as usage:
        checked = asyncio.run(aadherence(CANDIDATES[3], facts, HYPOTHESES, client=ha.client))
    assert usage.calls == len(backend.requests) == 1
    request = backend.requests[0]
    assert request.schema_name == "adherence" and set(request.json_schema["properties"]) == {"h1", "h2"}
    assert CANDIDATES[3] in request.messages[-1]["content"]
    assert checked.facts_score == pytest.approx(alone.facts_score)
    assert checked.hypotheses_score == expected
    assert checked.score == pytest.approx((alone.facts_score + expected) / 2, abs=1e-4)
    only_hypotheses = asyncio.run(aadherence(CANDIDATES[3], [], HYPOTHESES, client=ha.client))
    assert only_hypotheses.score == expected and only_hypotheses.facts_score is None


# --- best-of-N through HyperAlign.generate ----------------------------------------------------------------------------


def test_best_of_4_samples_four_seeds_and_returns_the_most_adherent(make_hyperalign):
    ha, backend = make_hyperalign(by_seed, cache=False)
    profile = profile_of(HYPOTHESES, style_facts(PERSON))
    generation = ha.generate(profile, TASK, options=GenerationOptions(best_of=4))
    assert len(backend.requests) == 4
    assert sorted(r.seed for r in backend.requests) == [0, 1, 2, 3]
    # The plain (greedy) output is candidate 0, so reranking can only improve on it; then 3 samples.
    assert [r.temperature for r in sorted(backend.requests, key=lambda r: r.seed)] == [0.0, 0.8, 0.8, 0.8]
    assert all(r.json_schema is None for r in backend.requests)
    assert len({json.dumps(r.messages) for r in backend.requests}) == 1  # one prompt, four samples
    assert generation.text == CANDIDATES[2]
    expected = [round(facts_score(c, profile.facts), 4) for c in CANDIDATES]
    assert generation.candidate_scores == pytest.approx(expected, abs=1e-4)
    assert generation.adherence == max(generation.candidate_scores) == generation.candidate_scores[2]
    assert generation.adherence > 0.95 and generation.usage.llm_calls == 4 and generation.usage.cache_hits == 0
    prompt_words = sum(len(m["content"].split()) for m in backend.requests[0].messages)
    assert generation.usage.prompt_tokens == 4 * prompt_words
    assert generation.usage.completion_tokens == sum(len(c.split()) for c in CANDIDATES)


def test_best_of_n_costs_the_backend_time_of_all_its_candidates(make_hyperalign):
    ha, _ = make_hyperalign(cache=False, backend=MeteredBackend(by_seed))
    profile = profile_of([], style_facts(PERSON))
    best_of_4 = ha.generate(profile, TASK, options=GenerationOptions(best_of=4)).usage
    assert best_of_4.backend_seconds == 4 * MeteredBackend.SECONDS
    assert ha.generate(profile, TASK, options=GenerationOptions()).usage.backend_seconds == MeteredBackend.SECONDS


def test_best_of_n_seeds_start_at_the_configured_seed(make_hyperalign):
    ha, backend = make_hyperalign(by_seed, cache=False)
    generation = ha.generate(profile_of([], style_facts(PERSON)), TASK,
                             options=GenerationOptions(best_of=3, seed=5, sample_temperature=1.1))
    assert sorted(r.seed for r in backend.requests) == [5, 6, 7]
    assert [r.temperature for r in sorted(backend.requests, key=lambda r: r.seed)] == [0.0, 1.1, 1.1]
    assert generation.text == CANDIDATES[2]  # seed 6 samples the matching candidate
    assert generation.candidate_scores == pytest.approx(
        [round(facts_score(CANDIDATES[s % 4], style_facts(PERSON)), 4) for s in (5, 6, 7)], abs=1e-4)


def test_checking_hypotheses_costs_one_call_per_candidate_and_can_change_the_choice(make_hyperalign):
    # The hypotheses check supports only the 25-word candidate, and that outweighs its poorer facts.
    ha, backend = make_hyperalign(verdicts(lambda prompt: "supports" if CANDIDATES[3] in prompt else "contradicts"),
                                  cache=False)
    profile = profile_of(HYPOTHESES, style_facts(PERSON))
    generation = ha.generate(profile, TASK, options=GenerationOptions(best_of=4, check_hypotheses=True))
    checks = [r for r in backend.requests if r.schema_name == "adherence"]
    assert len(backend.requests) == 8 and len(checks) == 4 and generation.usage.llm_calls == 8
    assert {c for c in CANDIDATES if any(c in r.messages[-1]["content"] for r in checks)} == set(CANDIDATES)
    expected = [round(facts_score(c, profile.facts) / 2 + (0.5 if i == 3 else 0.0), 4) for i, c in enumerate(CANDIDATES)]
    assert generation.candidate_scores == pytest.approx(expected, abs=1e-4)
    assert generation.text == CANDIDATES[3] and generation.adherence == generation.candidate_scores[3]
    samples = [r for r in backend.requests if r.json_schema is None]
    assert generation.usage.prompt_tokens == sum(sum(len(m["content"].split()) for m in r.messages)
                                                 for r in backend.requests)
    assert generation.usage.completion_tokens == sum(len(c.split()) for c in CANDIDATES) + sum(
        len(by_seed_check(r).split()) for r in checks) and len(samples) == 4


def by_seed_check(request: CompletionRequest) -> str:
    fields = list(request.json_schema["properties"])
    answer = "supports" if CANDIDATES[3] in request.messages[-1]["content"] else "contradicts"
    return json.dumps({name: answer for name in fields})


def test_few_shot_best_of_n_reranks_by_facts_measured_from_the_examples(make_hyperalign):
    ha, backend = make_hyperalign(by_seed, cache=False)
    ha.generation = GenerationOptions(best_of=4)  # the instance's default, for both calls below
    examples = [UserExample(text=t) for t in PERSON]
    generation = ha.generate(None, TASK, "few-shot", examples)
    assert generation.text == CANDIDATES[2] and len(backend.requests) == 4
    assert generation.candidate_scores == pytest.approx(
        [round(facts_score(c, style_facts(PERSON)), 4) for c in CANDIDATES], abs=1e-4)
    # Another person, who writes 40-word sentences, gets the 40-word candidate from the same samples.
    long_writer = [UserExample(text=prose([40] * 3, offset=k)) for k in range(3)]
    assert ha.generate(None, TASK, "few-shot", long_writer).text == CANDIDATES[0]


def test_zero_shot_best_of_n_and_a_profile_without_facts_are_refused(make_hyperalign):
    ha, backend = make_hyperalign(by_seed, cache=False)
    best_of_3 = GenerationOptions(best_of=3)
    with pytest.raises(InputError, match="zero-shot has neither"):
        ha.generate(None, TASK, "zero-shot", options=best_of_3)
    with pytest.raises(InputError, match="best-of-N needs measured style facts"):
        ha.generate(profile_of(HYPOTHESES), TASK, options=best_of_3)
    assert backend.requests == []
    # hypotheses alone can rerank
    generation = ha.generate(profile_of(HYPOTHESES), TASK, options=GenerationOptions(best_of=3, check_hypotheses=True))
    assert len(generation.candidate_scores) == 3 and generation.usage.llm_calls == 6


# --- the reranker never reads other people's texts --------------------------------------------------------------------


MARKERS = {"ann": ("zorblaxa", 6), "bo": ("quimbleb", 12), "cy": ("frandlec", 20)}  # author -> (marker, sentence words)


def write_corpus(root: Path) -> Path:
    for author, (marker, length) in MARKERS.items():
        (root / author).mkdir(parents=True)
        for index in range(6):
            body = prose([length] * 4, offset=index, words=COMMON)
            text = f"The {marker} story {index} begins. {body} Then the {marker} rests."
            (root / author / f"{index}.txt").write_text(text, encoding="utf-8")
    return root


def marker_of(text: str) -> str:
    found = [author for author, (marker, _) in MARKERS.items() if marker in text]
    assert len(found) == 1, text
    return found[0]


def eval_responder(request: CompletionRequest) -> str:
    if request.json_schema is not None:
        return _default_reply(request)
    marker = MARKERS[marker_of(request.messages[-1]["content"])][0]  # the task: the held-out text's first sentence
    return f"The {marker} candidate. " + prose([[4, 10, 18][(request.seed or 0) % 3]] * 3)


def test_the_reranker_only_ever_sees_facts_of_the_author_it_writes_for(tmp_path, monkeypatch):
    seen: list[tuple[str, list]] = []
    original = adherence_module.check_facts

    def recording(text, facts):
        seen.append((text, [f.measure for f in facts]))
        return original(text, facts)

    monkeypatch.setattr(adherence_module, "check_facts", recording)
    corpus = write_corpus(tmp_path / "corpus")
    methods = ["hyperalign:paper:best-of=3", "few-shot:best-of=3"]  # the paper method's facts are every metric
    config = AuthorshipConfig(corpus=str(corpus), methods=methods, authors=3, shots=3, prompts_per_author=2, seed=0,
                              judge=None)
    folder = tmp_path / "run"
    backend = FakeBackend(eval_responder)
    results = asyncio.run(AuthorshipRun(config, HyperAlign(LLMClient(backend)), None, RunFolder(folder)).run())
    assert results["methods"] == methods and results["n_prompts"] == 6

    split = read_split(RunFolder(folder))
    own = {a.author: [f.measure for f in style_facts([d.text for d in a.demonstrations])] for a in split.authors}
    for author in MARKERS:
        profile = Profile.load(folder / "profiles" / parse_methods(methods)[0].folder / f"{author}.json")
        assert [f.measure for f in profile.facts] == own[author]  # the profile's facts are the author's own
        words = next(m.metric for m in own[author] if m.metric.startswith("uses:")).removeprefix("uses:").split("|")
        assert MARKERS[author][0] in words and not {MARKERS[o][0] for o in MARKERS if o != author} & set(words)
    assert len({json.dumps([m.model_dump() for m in v]) for v in own.values()}) == 3  # the authors do differ

    assert len(seen) == len(methods) * 6 * 3  # every candidate of every best-of-N generation was checked
    assert {marker_of(text) for text, _ in seen} == set(MARKERS)
    for text, measures in seen:
        author = marker_of(text)
        assert measures == own[author]
        assert all(measures != own[other] for other in MARKERS if other != author)
        uses = next(m.metric for m in measures if m.metric.startswith("uses:"))
        assert MARKERS[author][0] in uses and not any(MARKERS[o][0] in uses for o in MARKERS if o != author)

    generations = [json.loads(line) for line in (folder / "generations.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(generations) == 12
    assert all(r["llm_calls"] == 3 and len(r["candidate_scores"]) == 3 for r in generations)
    assert all(r["adherence"] == max(r["candidate_scores"]) for r in generations)
    assert all(marker_of(r["output"]) == r["author"] for r in generations)
