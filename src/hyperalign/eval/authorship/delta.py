"""A second judge-free metric, on other features than char 3-grams: Burrows' Delta over the most frequent words
(mostly function words), and the measured-style-facts adherence; both reported in the "Authorship Gap" frame
(arXiv 2604.26460): each method's value beside the same metric on real held-out texts of the same author (the
ceiling) and on real texts of the other authors (the cross-author floor).

Burrows' Delta (Burrows 2002): the relative frequencies of the `top` most frequent words of the authors' training
texts, z-scored with the training texts' means and standard deviations; an author is the mean z-vector of their
training texts; a text's Delta to an author is the mean absolute difference of its z-vector from that author's.
Lower is closer. Attribution = the author with the lowest Delta. The margin (mean Delta to the other authors minus
Delta to the target; higher = more this author's) separates "writes like this person" from "writes like the genre":
a text that moves towards every author alike lowers its Delta to the target without raising its margin.

Facts adherence (pipeline/adherence.py) scores a text against facts measured from the author's demonstrations: it
is what best-of-N reranks by, so for `best-of` methods it is not an independent judge — Delta is."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from ...pipeline.adherence import check_facts, facts_adherence
from ...pipeline.facts import style_facts
from ..stats import bootstrap

_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


class DeltaModel:
    def __init__(self, texts_by_author: dict[str, list[str]], top: int = 150):
        self.authors = sorted(texts_by_author)
        counts: Counter[str] = Counter()
        for texts in texts_by_author.values():
            for text in texts:
                counts.update(_words(text))
        self.vocabulary = [w for w, _ in counts.most_common(top)]
        training = {a: np.array([self._frequencies(t) for t in texts_by_author[a]]) for a in self.authors}
        everything = np.vstack(list(training.values()))
        self.mean = everything.mean(axis=0)
        self.sd = everything.std(axis=0)
        self.sd[self.sd == 0] = 1.0
        self.centroids = {a: ((training[a] - self.mean) / self.sd).mean(axis=0) for a in self.authors}

    def _frequencies(self, text: str) -> np.ndarray:
        words = _words(text)
        counts = Counter(words)
        total = max(1, len(words))
        return np.array([counts[w] / total for w in self.vocabulary])

    def deltas(self, text: str) -> dict[str, float]:
        z = (self._frequencies(text) - self.mean) / self.sd
        return {a: float(np.abs(z - c).mean()) for a, c in self.centroids.items()}

    def score(self, text: str, target: str) -> dict[str, float]:
        deltas = self.deltas(text)
        others = [d for author, d in deltas.items() if author != target]
        return {"delta": deltas[target], "correct": float(min(deltas, key=lambda a: deltas[a]) == target),
                "margin": float(np.mean(others)) - deltas[target]}


# Each summary in a second-metric block, and the per-text score it summarizes; the report's columns follow this order.
SUMMARIES = {"delta_accuracy": "correct", "delta": "delta", "delta_margin": "margin", "facts_adherence": "facts"}


def _summary(rows: list[dict[str, float]], key: str, seed: int) -> dict[str, Any] | None:
    return bootstrap([r[key] for r in rows], seed=seed).as_dict() if rows else None


PAIRED_AGAINST = "few-shot"  # the baseline the goal names: each method's margin minus its, prompt by prompt


def second_metrics(
    training: dict[str, list[str]], demonstrations: dict[str, list[str]],
    candidates: dict[str, list[tuple[str, str]]], references: list[tuple[str, str]], seed: int,
    item_ids: dict[str, list[str]] | None = None, copying: dict[str, list[bool]] | None = None,
) -> dict[str, Any]:
    """Delta (attribution accuracy and distance to the target) and facts adherence for each method's outputs
    (`candidates`: method -> [(text, target author)]), with the ceiling (each real held-out text against its own
    author) and the cross-author floor (each real held-out text against every other author). With `item_ids` (method
    -> the prompt of each candidate), each method's Delta margin minus few-shot's on the same prompts: a paired
    difference, whose interval is far narrower than the two methods' own intervals side by side. With `copying` (method
    -> whether each candidate copies its author's demonstrations), the margin of the outputs that do not: a method
    whose margin comes from reproducing the person's texts word for word shows it there."""
    model = DeltaModel(training)
    facts = {author: style_facts(texts) for author, texts in demonstrations.items()}

    def rows(pairs: list[tuple[str, str]]) -> list[dict[str, float]]:
        out = []
        for text, target in pairs:
            row = model.score(text, target)
            row["facts"] = facts_adherence(check_facts(text, facts[target])) or 0.0
            out.append(row)
        return out

    def block(pairs: list[tuple[str, str]]) -> dict[str, Any]:
        scored = rows(pairs)
        return {"n": len(scored), **{name: _summary(scored, key, seed) for name, key in SUMMARIES.items()}}

    floor_pairs = [(text, other) for text, author in references for other in training if other != author]
    floor = block(floor_pairs)
    floor["delta_accuracy"] = None  # attribution to a wrong author by construction: not a floor
    methods = {method: block(pairs) for method, pairs in candidates.items()}
    scores = {m: [model.score(t, a)["margin"] for t, a in pairs] for m, pairs in candidates.items()}
    for method, flags in (copying or {}).items():
        kept = [margin for margin, copies in zip(scores[method], flags, strict=True) if not copies]
        methods[method]["delta_margin_without_copying"] = bootstrap(kept, seed=seed).as_dict() if kept else None
    margins = {m: dict(zip(item_ids[m], scores[m], strict=True)) for m in candidates} if item_ids else {}
    copies = ({m: {i for i, c in zip(item_ids[m], flags, strict=True) if c} for m, flags in copying.items()}
              if copying and item_ids else {})
    if margins and PAIRED_AGAINST in candidates:
        baseline = margins[PAIRED_AGAINST]
        for method, by_item in margins.items():
            shared = [i for i in by_item if i in baseline]
            if method != PAIRED_AGAINST and shared:
                methods[method][f"delta_margin_vs_{PAIRED_AGAINST}"] = bootstrap(
                    [by_item[i] - baseline[i] for i in shared], seed=seed).as_dict()
                # The same difference on the prompts where neither output copies: few-shot's lead without its
                # copies, prompt by prompt (leaving the copies out of one side only would compare other prompts).
                clean = [i for i in shared if i not in copies.get(method, set()) | copies.get(PAIRED_AGAINST, set())]
                if copies and clean:
                    methods[method][f"delta_margin_vs_{PAIRED_AGAINST}_without_copying"] = bootstrap(
                        [by_item[i] - baseline[i] for i in clean], seed=seed).as_dict()
    return {
        "features": f"{len(model.vocabulary)} most frequent words (Burrows' Delta); measured style facts",
        "ceiling_real_texts": block(references),
        "floor_other_authors": floor,
        "methods": methods,
        "paired_against": PAIRED_AGAINST,
        # method -> prompt -> the output's Delta margin: what the judge's verdicts are compared with (judge.py)
        "item_margins": {m: {i: round(v, 4) for i, v in by_item.items()} for m, by_item in margins.items()},
    }
