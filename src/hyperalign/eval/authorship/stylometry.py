"""Judge-free style metric: closed-set authorship attribution (the PAN-19 baseline).

Character 3-grams (TF-IDF, sublinear tf), MaxAbsScaler, linear SVM, trained only on the authors' training texts.
Two views: `raw` and `masked` — text distortion (Stamatatos 2017): words outside the training texts' 300 most
frequent are masked (letters -> '*', digits -> '#'), so the classifier sees function words and punctuation
rather than topic. Scores are softmaxed SVM decision values ("probabilities" for ranking and averaging only)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler
from sklearn.svm import LinearSVC

from ...pipeline.evidence import normalize

VIEWS = ("raw", "masked")
_WORD = re.compile(r"\w+", re.UNICODE)


def distort(text: str, keep: frozenset[str]) -> str:
    def mask(match: re.Match[str]) -> str:
        word = match.group(0)
        if word.lower() in keep:
            return word
        return re.sub(r"\d", "#", re.sub(r"[^\W\d]", "*", word))

    return _WORD.sub(mask, text)


def frequent_words(texts: list[str], top: int = 300) -> frozenset[str]:
    counts = Counter(w.lower() for t in texts for w in _WORD.findall(t))
    return frozenset(w for w, _ in counts.most_common(top))


class AttributionModel:
    def __init__(self, texts_by_author: dict[str, list[str]], view: str = "raw", c: float = 1.0):
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}")
        self.view = view
        self.authors = sorted(texts_by_author)
        texts = [t for a in self.authors for t in texts_by_author[a]]
        labels = [a for a in self.authors for _ in texts_by_author[a]]
        self.keep = frequent_words(texts) if view == "masked" else frozenset()
        self.pipeline = make_pipeline(
            TfidfVectorizer(analyzer="char", ngram_range=(3, 3), sublinear_tf=True, lowercase=False, min_df=1),
            MaxAbsScaler(),
            LinearSVC(C=c, random_state=0),
        )
        self.pipeline.fit([self._prepare(t) for t in texts], labels)

    def _prepare(self, text: str) -> str:
        return distort(text, self.keep) if self.view == "masked" else text

    def scores(self, texts: list[str]) -> np.ndarray:
        """Softmax over decision values, columns ordered as `self.authors`."""
        decision = np.asarray(self.pipeline.decision_function([self._prepare(t) for t in texts]))
        if decision.ndim == 1:  # two authors: sklearn returns one score per text, for the second class
            decision = np.column_stack([-decision, decision])
        exp = np.exp(decision - decision.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def attribute(self, texts: list[str], targets: list[str]) -> list[dict[str, float]]:
        """Per text: correct (0/1), the target's probability and rank (1 = attributed to the target)."""
        if not texts:
            return []
        probabilities = self.scores(texts)
        rows = []
        for row, target in zip(probabilities, targets, strict=True):
            column = self.authors.index(target)
            rank = int((row >= row[column]).sum())  # ties share the worse rank: a tie is not an attribution
            rows.append({"correct": float(rank == 1), "probability": float(row[column]), "rank": float(rank)})
        return rows


def strip_opening(text: str, opening: str) -> str:
    """Remove the opening the prompt handed over, wherever the output repeats it (judge the method's own words)."""
    if not opening:
        return text
    flat, needle = normalize(text), normalize(opening)
    position = flat.find(needle)
    if position < 0:
        return text
    return " ".join((flat[:position] + " " + flat[position + len(needle):]).split())
