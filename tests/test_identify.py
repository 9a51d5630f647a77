"""Profile identification by hypotheses (eval/authorship/identify.py): one check call per held-out text names the
profile that fits, read from calibrated letter probabilities or a sampled letter."""

from __future__ import annotations

import asyncio
import re
import string

import pytest

from hyperalign.eval.authorship.identify import identification_by_hypotheses
from hyperalign.eval.corpus import AuthorSplit, HeldOutItem, Split
from hyperalign.llm import LLMClient
from hyperalign.llm.base import CompletionRequest
from hyperalign.llm.fake import FakeBackend
from hyperalign.profiles.model import Hypothesis, Profile

AUTHORS = ["ann", "bo", "cy", "di"]


def profile(author: str, hypotheses: int = 1) -> Profile:
    return Profile(user_id=author, examples_hash="0" * 16, n_examples=3, backend="fake", model="fake-model",
                   prompt_version="test", hypotheses=[
        Hypothesis(aspect="writing_style", statement=f"Writes the word marker:{author}:{i}.", supported=True)
        for i in range(hypotheses)])


def split() -> Split:
    return Split(authors=[
        AuthorSplit(author=a, demonstrations=[], classifier_texts=[], held_out=[
            HeldOutItem(id=f"{a}-{n}", author=a, prompt="Write.", opening="", reference=f"A note. marker:{a}:0 here.")
            for n in range(2)])
        for a in AUTHORS])


def shown_letters(request: CompletionRequest) -> dict[str, str]:
    """letter -> author, as the prompt showed them."""
    prompt = request.messages[-1]["content"]
    return {letter: author for letter, author in re.findall(r'<profile id="([A-Z])">\s*- Writes the word marker:(\w+):0', prompt)}


def text_author(request: CompletionRequest) -> str:
    return re.search(r"A note\. marker:(\w+):0 here", request.messages[-1]["content"]).group(1)  # type: ignore[union-attr]


def test_a_checker_that_leans_to_a_still_identifies_once_the_letter_prior_is_removed() -> None:
    def probabilities(request: CompletionRequest) -> dict[str, float]:
        letters = shown_letters(request)
        truth = next(letter for letter, author in letters.items() if author == text_author(request))
        # "A" always wins the raw vote; the person's own letter gets a little more than its share.
        chances = {letter: 0.05 for letter in letters}
        chances["A"] = 0.6
        chances[truth] += 0.1
        return chances

    backend = FakeBackend(probabilities=probabilities)
    result = asyncio.run(identification_by_hypotheses(LLMClient(backend), split(),
                                                      {a: profile(a) for a in AUTHORS}))
    assert result["accuracy"]["mean"] == 1.0 and result["accuracy"]["n"] == 4
    assert result["chance"] == 0.25 and result["reading"].startswith("label probabilities")
    # Every person's own profile was shown at some position; A was not always the person's.
    firsts = {shown_letters(r)["A"] for r in backend.requests}
    assert len(firsts) > 1


def test_a_sampled_letter_is_used_where_the_backend_has_no_log_probabilities() -> None:
    def answer(request: CompletionRequest) -> str:
        letters = shown_letters(request)
        wrong = next(letter for letter, author in letters.items() if author != text_author(request))
        return f'{{"writer": "{wrong}"}}'

    result = asyncio.run(identification_by_hypotheses(LLMClient(FakeBackend(answer)), split(),
                                                      {a: profile(a) for a in AUTHORS}, per_author=2))
    assert result["accuracy"]["mean"] == 0.0 and result["accuracy"]["n"] == 8
    assert result["reading"] == "sampled letter"


def test_profiles_without_hypotheses_are_not_shown_and_too_few_skip_the_check() -> None:
    backend = FakeBackend()
    users = {a: profile(a, hypotheses=0) for a in AUTHORS}
    users["ann"] = profile("ann")
    result = asyncio.run(identification_by_hypotheses(LLMClient(backend), split(), users))
    assert result["accuracy"] is None and result["profiles_with_hypotheses"] == 1 and result["profiles"] == 4
    assert backend.requests == []

    users["bo"] = profile("bo")
    result = asyncio.run(identification_by_hypotheses(LLMClient(backend), split(), users))
    assert result["accuracy"]["n"] == 2 and result["chance"] == 0.5
    assert all(set(shown_letters(r).values()) == {"ann", "bo"} for r in backend.requests)


def test_more_profiles_than_letters_show_the_persons_own_among_25_others() -> None:
    many = [f"p{i:02d}" for i in range(30)]
    corpus = Split(authors=[AuthorSplit(author=a, demonstrations=[], classifier_texts=[], held_out=[
        HeldOutItem(id=f"{a}-0", author=a, prompt="Write.", opening="", reference=f"A note. marker:{a}:0 here.")])
        for a in many])
    backend = FakeBackend()
    result = asyncio.run(identification_by_hypotheses(LLMClient(backend), corpus, {a: profile(a) for a in many}))
    assert result["chance"] == pytest.approx(1 / 26)
    for request in backend.requests:
        letters = shown_letters(request)
        assert len(letters) == 26 and set(letters) == set(string.ascii_uppercase)
        assert text_author(request) in letters.values()


def test_specific_only_shows_each_profile_without_what_the_population_marks_generic() -> None:
    people = ["ann", "bo", "cy", "di", "ed"]
    corpus = Split(authors=[AuthorSplit(author=a, demonstrations=[], classifier_texts=[], held_out=[
        HeldOutItem(id=f"{a}-0", author=a, prompt="Write.", opening="", reference=f"A note. marker:{a}:0 here.")])
        for a in people])
    users = {a: profile(a) for a in people}
    for a in people:  # everyone "uses analogies", in one wording or another
        shared = Hypothesis(aspect="writing_style", statement=f"The person uses {'more ' * (a < 'c')}analogies.",
                            supported=True)
        users[a] = users[a].model_copy(update={"hypotheses": [shared, *users[a].hypotheses]})
    users["ed"] = users["ed"].model_copy(update={"hypotheses": users["ed"].hypotheses[:1]})  # analogies alone

    backend = FakeBackend()
    result = asyncio.run(identification_by_hypotheses(LLMClient(backend), corpus, users, specific_only=True))
    prompts = [r.messages[-1]["content"] for r in backend.requests]
    assert result["profiles_with_hypotheses"] == 4 and result["profiles"] == 5  # ed had nothing of their own
    assert len(prompts) == 4 and not any("analogies" in p for p in prompts)
    assert all(set(shown_letters(r).values()) == {"ann", "bo", "cy", "di"} for r in backend.requests)

    everything = FakeBackend()
    asyncio.run(identification_by_hypotheses(LLMClient(everything), corpus, users))
    assert len(everything.requests) == 5 and all("analogies" in r.messages[-1]["content"] for r in everything.requests)
