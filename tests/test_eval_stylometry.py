"""Judge-free style metric: attribution model, text distortion, opening stripping, copy detection, bootstrap."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from hyperalign.eval.authorship.stylometry import (
    AttributionModel,
    distort,
    frequent_words,
    strip_opening,
)
from hyperalign.eval.stats import bootstrap
from hyperalign.text import copy_stats

TOPICS = ["river", "market", "engine", "garden", "castle", "letter", "winter", "bridge", "harbor", "window",
          "forest", "ticket", "violin", "ladder", "candle", "pocket", "meadow", "signal", "basket", "mirror"]
HABITS = {
    "semicolon": "Indeed; the {x} met the {y}; indeed, it was so.",
    "exclaim": "Awesome! The {x} and the {y}! So awesome!!",
    "dashes": "The {x} -- as ever -- waited for the {y} (quietly)...",
}


def synthetic(author: str, count: int, seed: int) -> list[str]:
    rng = random.Random(f"{author}:{seed}")
    texts = []
    for _ in range(count):
        sentences = [HABITS[author].format(x=x, y=y) for x, y in (rng.sample(TOPICS, 2) for _ in range(4))]
        texts.append(" ".join(sentences))
    return texts


@pytest.fixture(scope="module")
def corpus() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    train = {author: synthetic(author, 6, seed=0) for author in HABITS}
    test = {author: synthetic(author, 4, seed=1) for author in HABITS}
    return train, test


@pytest.mark.parametrize("view", ["raw", "masked"])
def test_ceiling_accuracy_on_clearly_different_authors(corpus, view):
    train, test = corpus
    model = AttributionModel(train, view=view)
    assert model.authors == sorted(HABITS)
    texts = [t for a in test for t in test[a]]
    targets = [a for a in test for _ in test[a]]
    rows = model.attribute(texts, targets)
    assert len(rows) == len(texts)
    assert sum(r["correct"] for r in rows) / len(rows) == 1.0
    assert all(r["rank"] == 1.0 and r["probability"] > 1 / 3 for r in rows)


def test_scores_are_distributions_and_rank_one_iff_correct(corpus):
    train, test = corpus
    model = AttributionModel(train)
    texts = [t for a in test for t in test[a]]
    scores = model.scores(texts)
    assert scores.shape == (len(texts), 3)
    assert np.allclose(scores.sum(axis=1), 1.0) and (scores > 0).all()
    # Wrong targets on purpose: the rows must say incorrect, with rank > 1.
    wrong = [sorted(HABITS)[(sorted(HABITS).index(a) + 1) % 3] for a in test for _ in test[a]]
    rows = model.attribute(texts, wrong) + model.attribute(texts, [a for a in test for _ in test[a]])
    assert any(r["correct"] == 0.0 for r in rows) and any(r["correct"] == 1.0 for r in rows)
    for row in rows:
        assert (row["rank"] == 1.0) == (row["correct"] == 1.0)
        assert 1.0 <= row["rank"] <= 3.0
    assert all(r["correct"] == 0.0 for r in rows[: len(texts)])
    assert model.attribute([], []) == []


def test_binary_attribution(corpus):
    train, test = corpus
    model = AttributionModel({"exclaim": train["exclaim"], "semicolon": train["semicolon"]})
    texts = test["exclaim"] + test["semicolon"]
    scores = model.scores(texts)
    assert scores.shape == (len(texts), 2)
    assert np.allclose(scores.sum(axis=1), 1.0)
    assert (scores[:4, 0] > 0.5).all() and (scores[4:, 1] > 0.5).all()  # columns follow model.authors
    right = model.attribute(texts, ["exclaim"] * 4 + ["semicolon"] * 4)
    wrong = model.attribute(texts, ["semicolon"] * 4 + ["exclaim"] * 4)
    assert all(r["correct"] == 1.0 and r["rank"] == 1.0 for r in right)
    assert all(r["correct"] == 0.0 and r["rank"] == 2.0 for r in wrong)


def test_unknown_view_is_rejected(corpus):
    with pytest.raises(ValueError, match="unknown view"):
        AttributionModel(corpus[0], view="topic")


def test_masked_view_keeps_frequent_words_and_punctuation():
    keep = frozenset({"the", "indeed"})
    assert distort("Indeed, the 42 cats ran! Café on 3rd.", keep) == "Indeed, the ## **** ***! **** ** #**."
    assert distort("THE end; the END", keep) == "THE ***; the ***"
    assert frequent_words(["a a a b b c", "B d"], top=2) == frozenset({"a", "b"})
    model = AttributionModel({"x": ["the cat sat; the end!"] * 2, "y": ["a dog ran, a dog hid?"] * 2}, view="masked")
    assert "the" in model.keep and "dog" in model.keep
    assert model._prepare("the zebra!") == "the *****!"


def test_strip_opening_removes_it_despite_whitespace_differences():
    text = "The storm   hit the\ncoast at dawn.\n\nThen it left quietly."
    assert strip_opening(text, "The storm hit the coast at dawn.") == "Then it left quietly."
    middle = strip_opening("Intro. The storm hit.  Rest.", "The  storm\nhit.")
    assert "storm" not in middle and middle.split() == ["Intro.", "Rest."]
    assert strip_opening(text, "") == text


def test_strip_opening_leaves_text_alone_when_the_opening_is_absent():
    text = "First line.\n\nSecond   paragraph."
    assert strip_opening(text, "Not in there.") == text


def test_copy_stats_novel_verbatim_and_partial():
    demo = " ".join(f"word{i}" for i in range(20))
    assert copy_stats("completely new words that nobody wrote before in any demo at all", [demo]) == {
        "copy_rate": 0.0, "longest_copied_words": 0.0}
    assert copy_stats(demo.upper(), ["unrelated text here", demo]) == {"copy_rate": 1.0, "longest_copied_words": 20.0}
    partial = " ".join(f"word{i}" for i in range(12)) + " " + " ".join(f"novel{i}" for i in range(12))
    stats = copy_stats(partial, [demo])
    assert stats["copy_rate"] == pytest.approx(5 / 17)  # 17 word 8-grams, the first 5 lie inside the demo
    assert stats["longest_copied_words"] == 12.0
    assert copy_stats("too short", [demo]) == {"copy_rate": 0.0, "longest_copied_words": 0.0}


def test_bootstrap_interval():
    values = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    interval = bootstrap(values, seed=3)
    assert interval.mean == pytest.approx(0.625) and interval.n == 8
    assert 0.0 <= interval.low < interval.mean < interval.high <= 1.0
    assert bootstrap(values, seed=3) == interval  # seeded
    constant = bootstrap([0.5] * 5)
    assert constant.low == constant.mean == constant.high == 0.5
    empty = bootstrap([])
    assert empty.n == 0 and math.isnan(empty.mean)
    assert empty.as_dict()["n"] == 0 and set(interval.as_dict()) == {"mean", "low", "high", "n"}
