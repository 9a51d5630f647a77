"""Numbers of an authorship run: stylometric attribution (both views, with and without copying outputs) and cost."""

from __future__ import annotations

from typing import Any

from ...profiles.model import Profile
from ...text import copy_stats
from ..corpus import Split
from ..stats import bootstrap
from .delta import second_metrics
from .stylometry import VIEWS, AttributionModel, strip_opening


def _summary(rows: list[dict[str, float]], seed: int) -> dict[str, Any]:
    if not rows:
        return {"accuracy": None, "mean_probability": None, "mean_rank": None, "n": 0}
    return {
        "accuracy": bootstrap([r["correct"] for r in rows], seed=seed).as_dict(),
        "mean_probability": sum(r["probability"] for r in rows) / len(rows),
        "mean_rank": sum(r["rank"] for r in rows) / len(rows),
        "n": len(rows),
    }


def attribution_metrics(split: Split, rows: list[dict[str, Any]], methods: list[str], config: Any) -> dict[str, Any]:
    items = {i.id: i for a in split.authors for i in a.held_out}
    demos = {a.author: [d.text for d in a.demonstrations] for a in split.authors}
    training = {a.author: a.classifier_texts for a in split.authors}
    copying: dict[str, dict[str, Any]] = {}
    candidates: dict[str, list[tuple[str, str, bool]]] = {m: [] for m in methods}
    item_ids: dict[str, list[str]] = {m: [] for m in methods}
    for row in rows:
        if row["method"] not in candidates or row["item_id"] not in items:
            continue
        item = items[row["item_id"]]
        text = strip_opening(row["output"], item.opening)
        stats = copy_stats(text, demos[item.author])
        copies = stats["copy_rate"] >= config.copy_threshold
        candidates[row["method"]].append((text, item.author, copies))
        item_ids[row["method"]].append(item.id)
        block = copying.setdefault(row["method"], {"copy_rates": [], "longest": [], "copying": 0})
        block["copy_rates"].append(stats["copy_rate"])
        block["longest"].append(stats["longest_copied_words"])
        block["copying"] += copies
    copy_summary = {
        m: {
            "mean_copy_rate": sum(b["copy_rates"]) / len(b["copy_rates"]),
            "max_longest_copied_words": max(b["longest"]),
            "copying_share": b["copying"] / len(b["copy_rates"]),
        }
        for m, b in copying.items()
    }
    references = [(strip_opening(i.reference, i.opening), i.author) for i in items.values()]
    openings = [(i.opening, i.author) for i in items.values() if i.opening]
    views: dict[str, Any] = {}
    for view in VIEWS:
        model = AttributionModel(training, view=view)

        def score(pairs: list[tuple[str, str]], model: AttributionModel = model) -> dict[str, Any]:
            return _summary(model.attribute([t for t, _ in pairs], [a for _, a in pairs]), config.seed)

        views[view] = {
            "ceiling_real_texts": score(references),
            "floor_opening_only": score(openings) if openings else None,
            "methods": {
                m: {
                    "all": score([(t, a) for t, a, _ in candidates[m]]),
                    "without_copying": score([(t, a) for t, a, c in candidates[m] if not c]),
                }
                for m in methods
            },
        }
    second = second_metrics(training, demos, {m: [(t, a) for t, a, _ in candidates[m]] for m in methods},
                            references, config.seed, item_ids,
                            copying={m: [c for _, _, c in candidates[m]] for m in methods})
    return {"views": views, "copying": copy_summary, "chance": 1 / len(split.authors), "second": second}


def cost_metrics(
    split: Split, rows: list[dict[str, Any]], profiles: dict[str, dict[str, Profile]], methods: list[str],
    ticl: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`profiles`: method -> author -> profile, for the methods that infer one; `ticl`: method -> author -> TICL state
    (each one-off cost is amortized over the author's prompts). Calls per generation count best-of-N's samples."""
    prompts_per_author = sum(len(a.held_out) for a in split.authors) / len(split.authors)
    per_method: dict[str, Any] = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method and r.get("prompt_tokens") is not None]
        if not mine:
            per_method[method] = None
            continue
        prompt = sum(r["prompt_tokens"] for r in mine) / len(mine)
        # What the backend computed of those prompts (the rest it reused from its prefix cache): only where every
        # row recorded it (rows of runs made before it was recorded have none; they would read as "all computed").
        computed = (sum(r["prompt_tokens"] - r["cached_prompt_tokens"] for r in mine) / len(mine)
                    if all(r.get("cached_prompt_tokens") is not None for r in mine) else None)
        completion = sum(r["completion_tokens"] for r in mine) / len(mine)
        calls_per_generation = sum(r.get("llm_calls") or 1 for r in mine) / len(mine)
        # The backend's time on the generation's own calls: rows of runs made before it was recorded have none
        # (their wall time from the stage's start counted the wait behind every other job).
        timed = [r["backend_seconds"] for r in mine if r.get("backend_seconds") is not None]
        seconds = sum(timed) / len(timed) if timed else None
        inference_seconds = None
        inference_calls = inference_prompt = 0.0
        hypotheses = facts = None
        users = profiles.get(method, {})
        states = (ticl or {}).get(method, {})
        if users:
            hypotheses = sum(len(p.inferred_hypotheses) for p in users.values()) / len(users)
            facts = sum(len(p.facts) for p in users.values()) / len(users)
            inference_calls = sum(p.report.usage.calls for p in users.values()) / len(users)
            inference_prompt = sum(p.report.usage.prompt_tokens for p in users.values()) / len(users)
            inference_seconds = sum(p.report.seconds for p in users.values()) / len(users)
        elif states:
            inference_calls = sum(s.usage.calls for s in states.values()) / len(states)
            inference_prompt = sum(s.usage.prompt_tokens for s in states.values()) / len(states)
            inference_seconds = sum(s.seconds for s in states.values()) / len(states)
        per_method[method] = {
            "generations": len(mine),
            "prompt_tokens_per_generation": prompt,
            "computed_prompt_tokens_per_generation": computed,
            "completion_tokens_per_generation": completion,
            "inference_calls_per_user": inference_calls,
            "inference_prompt_tokens_per_user": inference_prompt,
            "llm_calls_per_generation": calls_per_generation,
            "llm_calls_per_user": prompts_per_author * calls_per_generation + inference_calls,
            "prompt_tokens_per_generation_amortized": prompt + inference_prompt / prompts_per_author,
            "hypotheses_per_profile": hypotheses,
            "facts_per_profile": facts,
            "seconds_per_generation": seconds,
            "inference_seconds_per_user": inference_seconds,
        }
    ratio = ratio_amortized = None
    if per_method.get("hyperalign") and per_method.get("few-shot"):
        few = per_method["few-shot"]["prompt_tokens_per_generation"]
        ratio = per_method["hyperalign"]["prompt_tokens_per_generation"] / few
        ratio_amortized = per_method["hyperalign"]["prompt_tokens_per_generation_amortized"] / few
    return {"methods": per_method, "hyperalign_over_few_shot_prompt_tokens": ratio,
            "hyperalign_over_few_shot_prompt_tokens_amortized": ratio_amortized}
