"""Pairwise LLM judge. A judge is a folder of data (config.toml + a prompt template), as in alpaca_eval; the
built-in ones live in `eval/judges/`, and any folder path works. Every pair is judged in both orders; a pair whose
verdict flips with the order is a tie.

A judge folder may also name a `label_template` that asks for the bare label: on a backend that returns
log-probabilities the judge then reads its verdict's probability from the first output token (`calibration.py`
removes the position bias); elsewhere it falls back to the sampled text verdict, and every row says which it is.

A judge folder with `mode = "pointwise"` (built in: `same-author`) never shows two candidates together: each is
scored alone beside the reference, as the probability of its first label ("Yes, the same author"), and a pair goes
to the higher score — within `POINTWISE_TIE` it is a tie. No position can be preferred, so nothing is calibrated.
Why: a small pairwise judge answers by position, and once that is removed the 1.5B's verdicts were a coin on every
corpus (it could not tell the author's real text from zero-shot's); scored one text at a time it could
(benchmarks/pointwise_judge.py). Pointwise judges need a backend that returns log-probabilities."""

from __future__ import annotations

import itertools
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal, TypeVar

from jinja2 import FileSystemLoader, TemplateError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError, StructuredOutputError, describe_validation_error
from ..io import read_text_file
from ..llm import LLMClient
from ..llm.labels import read_labels
from ..plugins import JUDGES, judge_folder, plugins
from ..prompts import environment, messages_from
from .calibration import calibrated, expected_value
from .runs import short_hash
from .stats import bootstrap, mean_and_se

BUILTIN_JUDGES = Path(__file__).parent / "judges"
# Two pointwise scores closer than this are a tie: below the third decimal the labels' probabilities are noise.
POINTWISE_TIE = 0.001
VALIDITY_THRESHOLD = 0.75  # the share of pairs the real text must win, with its 95% interval above 0.5
# The default judge: the one that passed its validity check where the pairwise one failed (module docstring), where
# the judging backend can run it; elsewhere the pairwise judge, which reads text verdicts.
AUTO_JUDGE, POINTWISE_DEFAULT, PAIRWISE_DEFAULT = "auto", "same-author", "style"
M = TypeVar("M", bound=BaseModel)


def chosen_judge(name: str, client: LLMClient) -> str:
    """The judge a run uses for `name`: `auto` is the pointwise `same-author` on a backend that returns
    log-probabilities and the pairwise `style` elsewhere; any other name is itself."""
    if name != AUTO_JUDGE:
        return name
    return POINTWISE_DEFAULT if client.backend.capabilities.logprobs else PAIRWISE_DEFAULT


class JudgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    template: str = Field("prompt.v1.j2", pattern=r"^[\w.-]+$")  # a file in the judge's own folder
    max_tokens: int = Field(160, ge=1, le=100_000)
    reference_chars: int = Field(1500, ge=1)
    candidate_chars: int = Field(1500, ge=1)
    max_references: int = Field(1, ge=1)
    label_template: str | None = Field(None, pattern=r"^[\w.-]+$", description="asks for the bare label only")
    labels: list[str] = Field(["A", "B"], min_length=2, description="the label tokens, first = the first text")
    label_values: list[float] | None = Field(None, description="a rubric's score for each label (G-Eval)")
    mode: Literal["pairwise", "pointwise"] = Field(
        "pairwise", description="pointwise: each candidate scored alone against the reference (module docstring)")


# JudgeConfig's settings added after judges' verdicts were first keyed by their folder's content (the fingerprint).
LATER_SETTINGS = ("mode",)


class Verdict(BaseModel):
    reason: str = Field(max_length=240)
    closer: Literal["A", "B"]


class Judge:
    def __init__(self, folder: Path):
        self.folder = folder
        self.name = folder.name
        try:
            self.config = JudgeConfig.model_validate(tomllib.loads(read_text_file(folder / "config.toml",
                                                                                  allow_empty=True)))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"judge {folder}: config.toml is not valid TOML ({exc})") from None
        except ValidationError as exc:
            raise InputError(f"judge {folder}: config.toml: {describe_validation_error(exc, JudgeConfig)}") from None
        if self.config.label_values is not None and len(self.config.label_values) != len(self.config.labels):
            raise InputError(f"judge {folder}: config.toml: label_values needs one value for each of the labels")
        if self.config.mode == "pointwise" and self.config.label_template is None:
            raise InputError(f"judge {folder}: config.toml: a pointwise judge reads label probabilities; name its "
                             "label_template")
        names = [self.config.template, *([self.config.label_template] if self.config.label_template else [])]
        loader = environment(FileSystemLoader(folder))
        templates, sources = {}, {}
        for name in names:
            try:
                sources[name] = read_text_file(folder / name)  # a regular, readable UTF-8 file
                templates[name] = loader.get_template(name)
            except InputError as exc:
                raise InputError(f"judge {folder}: template {name}: {exc}") from None
            except TemplateError as exc:
                raise InputError(f"judge {folder}: template {name}: {exc}") from None
        self.template = templates[self.config.template]
        self.label_template = templates.get(self.config.label_template or "")
        self.version = f"{self.name}/{self.config.template}"
        # The folder's content, not its name: an edited prompt or setting is another judge. A setting added to
        # JudgeConfig later counts only where it is set away from its default (which keeps the judge as it was), so
        # the verdicts a judge gave before the setting existed are still its verdicts.
        config = {key: value for key, value in self.config.model_dump().items()
                  if key not in LATER_SETTINGS or value != JudgeConfig.model_fields[key].default}
        self.fingerprint = short_hash({"name": self.name, "config": config,
                                       "template": sources[self.config.template],
                                       **({"label_template": sources[names[1]]} if len(names) > 1 else {})})

    @classmethod
    def load(cls, name_or_path: str) -> Judge:
        """A judge folder's path, a built-in judge's name, or a judge plugin's (entry-point group
        ``hyperalign.judges``)."""
        path = Path(name_or_path)
        folder = path if path.is_dir() else BUILTIN_JUDGES / name_or_path
        installed = plugins(JUDGES)
        if not (folder / "config.toml").is_file() and name_or_path in installed:
            folder = judge_folder(installed[name_or_path])
        if not (folder / "config.toml").is_file():
            known = sorted({p.name for p in BUILTIN_JUDGES.iterdir() if p.is_dir()} | set(installed))
            raise InputError(f"unknown judge {name_or_path!r}: not a judge folder; known judges: {', '.join(known)}")
        return cls(folder)

    def messages(self, references: list[str], a: str, b: str, *, label_only: bool = False) -> list[dict[str, str]]:
        c = self.config
        template = self.label_template if label_only and self.label_template else self.template
        return messages_from(
            template,
            references=[r[: c.reference_chars] for r in references[: c.max_references]],
            a=a[: c.candidate_chars] or "(empty)",
            b=b[: c.candidate_chars] or "(empty)",
        )

    def reads_probabilities(self, client: LLMClient) -> bool:
        return self.label_template is not None and client.backend.capabilities.logprobs

    @property
    def pointwise(self) -> bool:
        return self.config.mode == "pointwise"

    def check(self, client: LLMClient) -> None:
        """Before a run judges anything: its templates render, and a pointwise judge has the log-probabilities it
        reads (without them it could give no verdict at all)."""
        if not self.pointwise:
            self.messages(["reference"], "a", "b")
            return
        self.point_messages("reference", "candidate")
        if not self.reads_probabilities(client):
            raise InputError(f"judge {self.name} scores each text by label probabilities, which the "
                             f"{client.backend.name} backend does not return; use a pairwise judge (style)")

    def point_messages(self, reference: str, text: str) -> list[dict[str, str]]:
        assert self.label_template is not None
        c = self.config
        return messages_from(self.label_template, reference=reference[: c.reference_chars] or "(empty)",
                             candidate=text[: c.candidate_chars] or "(empty)")

    async def point_score(self, client: LLMClient, reference: str, text: str) -> tuple[float, float]:
        """A pointwise judge's score of one text: (the first label's probability, the label mass)."""
        c = self.config
        read = await read_labels(client, self.point_messages(reference, text), c.labels)
        if read is None:
            raise StructuredOutputError(f"judge[{self.name}]", "too little of the first token's probability fell on "
                                        f"the labels {c.labels}", "", repairs=0)
        probabilities, mass = read
        return probabilities[c.labels[0]], mass

    async def label_distribution(self, client: LLMClient, messages: list[dict[str, str]]
                                 ) -> tuple[dict[str, float], float] | None:
        """One output token with its top log-probabilities: (label probabilities, label mass), or None where the
        answer carried none or too little fell on the labels."""
        return await read_labels(client, messages, self.config.labels)

    async def judge_pair(self, client: LLMClient, references: list[str], a: str, b: str) -> dict[str, Any]:
        """One ordered pair: {"first": True when A wins, "p_first", "label_mass", "verdict", "reason"}. The
        probability of A where the backend gives log-probabilities, else the text verdict. A pointwise judge: each
        text's own score ("scores"), and A wins unless B scores higher beyond `POINTWISE_TIE` — so a tie is A in one
        order and B in the other, which the aggregate counts as a tie."""
        if self.pointwise:
            reference = references[0] if references else ""
            (score_a, mass_a), (score_b, mass_b) = [await self.point_score(client, reference, t) for t in (a, b)]
            return {"first": score_a - score_b > -POINTWISE_TIE, "p_first": None,
                    "scores": [round(score_a, 6), round(score_b, 6)], "label_mass": round(min(mass_a, mass_b), 4),
                    "verdict": "pointwise", "reason": ""}
        if self.reads_probabilities(client):
            read = await self.label_distribution(client, self.messages(references, a, b, label_only=True))
            if read is not None:
                probabilities, mass = read
                p_first = probabilities[self.config.labels[0]]
                return {"first": p_first > 0.5, "p_first": round(p_first, 6), "label_mass": round(mass, 4),
                        "verdict": "probability", "reason": ""}
        verdict = await self.compare(client, references, a, b)
        return {"first": verdict.closer == "A", "p_first": None, "verdict": "text", "reason": verdict.reason}

    async def compare(self, client: LLMClient, references: list[str], a: str, b: str) -> Verdict:
        return await client.acomplete_structured(
            self.messages(references, a, b), Verdict, step=f"judge[{self.name}]", max_tokens=self.config.max_tokens
        )

    async def score(self, client: LLMClient, **context: str) -> dict[str, Any] | None:
        """A rubric judge read by probabilities (G-Eval): {"value": the probability-weighted score over the labels,
        "probabilities", "label_mass"}; None where the backend gives no log-probabilities, the folder names no
        label template or values, or too little fell on the labels (then `rate` samples the text verdict)."""
        values = self.config.label_values
        if values is None or not self.reads_probabilities(client):
            return None
        assert self.label_template is not None
        limit = self.config.candidate_chars
        messages = messages_from(self.label_template, **{k: (v[:limit] or "(empty)") for k, v in context.items()})
        read = await read_labels(client, messages, self.config.labels)
        if read is None:
            return None
        probabilities, mass = read
        return {"value": round(expected_value(probabilities, dict(zip(self.config.labels, values, strict=True))), 4),
                "probabilities": {k: round(v, 4) for k, v in probabilities.items()}, "label_mass": round(mass, 4)}

    async def rate(self, client: LLMClient, schema: type[M], **context: str) -> M:
        """An absolute judgment (e.g. harmful yes/no, helpfulness 1-10) with the judge's own template."""
        limit = self.config.candidate_chars
        messages = messages_from(self.template, **{k: (v[:limit] or "(empty)") for k, v in context.items()})
        return await client.acomplete_structured(messages, schema, step=f"judge[{self.name}]", max_tokens=self.config.max_tokens)


def judge_identity(judge: Judge, judge_ha: Any) -> str:
    """Which judge produced a verdict: the judge folder's content and the judging client (endpoint, model, sampling)."""
    return short_hash({"judge": judge.fingerprint, "client": judge_ha.client.identity})


def pair_orders(methods: list[str]) -> list[tuple[str, str, int]]:
    """(shown as A, shown as B, order) for every unordered pair of methods, in both orders."""
    pairs = []
    for x, y in itertools.combinations(methods, 2):
        pairs += [(x, y, 0), (y, x, 1)]
    return pairs


def winners_by_pair(judgments: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[int, str]]:
    """(method, method, task) — the two methods in sorted order — -> order -> winner, for the rows with a verdict."""
    verdicts: dict[tuple[str, str, str], dict[int, str]] = defaultdict(dict)
    for row in judgments:
        if row.get("winner") is not None:
            x, y = sorted((row["a"], row["b"]))
            verdicts[(x, y, row["item_id"])][row["order"]] = row["winner"]
    return verdicts


def passes(mean: float, low: float, threshold: float = VALIDITY_THRESHOLD) -> bool:
    """A judge's validity check: the real text wins at least `threshold` of the tasks, its interval above 0.5."""
    return mean >= threshold and low > 0.5


def aggregate(judgments: list[dict[str, Any]], methods: list[str], bias: float | None = None) -> dict[str, Any]:
    """Win rate of each method against each other one (win 1, tie 0.5), its standard error over prompts, the
    share of pairs whose verdict survived swapping the order (position consistency), and the share of verdicts that
    chose the text shown first (a row's `a`). Below 0.5 consistency — what a coin would reach — the order predicts
    the verdicts better than the texts do, and `judged_by_position` says so. Probability verdicts are calibrated
    first (`bias`: the run's position bias where estimated on more rows than these)."""
    judgments, calibration = calibrated(judgments, bias)
    verdicts = winners_by_pair(judgments)
    invalid = sum(1 for row in judgments if row.get("winner") is None)
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    consistent: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for (x, y, _), by_order in verdicts.items():
        if len(by_order) < 2:
            continue  # one order only (a run stopped midway): not counted
        agreed = by_order[0] == by_order[1]
        score_x = (1.0 if by_order[0] == x else 0.0) if agreed else 0.5
        scores[(x, y)].append(score_x)
        scores[(y, x)].append(1.0 - score_x)
        consistent[(x, y)].append(agreed)
    matrix: dict[str, dict[str, dict[str, float] | None]] = {}
    for row_method in methods:
        matrix[row_method] = {}
        for col in methods:
            values = scores.get((row_method, col), [])
            if row_method == col or not values:
                matrix[row_method][col] = None
                continue
            mean, se = mean_and_se(values)
            matrix[row_method][col] = {
                "win_rate": mean,
                "se": se,
                "n": len(values),
                "wins": sum(v == 1.0 for v in values),
                "ties": sum(v == 0.5 for v in values),
                "losses": sum(v == 0.0 for v in values),
            }
    all_consistent = [c for values in consistent.values() for c in values]
    valid = [row for row in judgments if row.get("winner") is not None]
    consistency = sum(all_consistent) / len(all_consistent) if all_consistent else None
    return {
        "matrix": matrix,
        "position_consistency": consistency,
        "first_shown_share": sum(row["winner"] == row["a"] for row in valid) / len(valid) if valid else None,
        "judged_by_position": consistency is not None and consistency < 0.5,
        "pairs_judged": len(all_consistent),
        "invalid_verdicts": invalid,
        "calibration": calibration,
    }


def validity(judgments: list[dict[str, Any]], real: str, against: str, threshold: float = VALIDITY_THRESHOLD,
             seed: int = 0) -> dict[str, Any] | None:
    """The judge's own test in every run: the author's real held-out text against `against`'s output for the same
    task, judged in both orders like any pair (calibrated with the whole run's position bias). A judge that does not
    clearly prefer the real text cannot tell the author's style, and its win rates mean nothing."""
    rows, _ = calibrated(judgments)
    checks = [row for row in rows if row.get("check") == "validity" and row.get("winner") is not None]
    by_item: dict[str, dict[int, str]] = defaultdict(dict)
    for row in checks:
        by_item[row["item_id"]][row["order"]] = row["winner"]
    scores = [(1.0 if orders[0] == real else 0.0) if orders[0] == orders[1] else 0.5
              for orders in by_item.values() if len(orders) == 2]
    if not scores:
        return None
    interval = bootstrap(scores, seed=seed)
    return {
        "real": real, "against": against, "threshold": threshold, "n": interval.n,
        "real_wins": round(interval.mean, 4), "low": round(interval.low, 4), "high": round(interval.high, 4),
        "passed": passes(interval.mean, interval.low, threshold),
    }


def agreement(judgments: list[dict[str, Any]], metric: dict[str, dict[str, float]], bias: float | None = None,
              seed: int = 0) -> dict[str, Any] | None:
    """How often the judge's decided pairs (the same winner in both orders, after calibration) went to the method
    whose output scored higher on a judge-free `metric` (method -> item -> value) for that task; ties on either side
    are left out. 0.5 is no relation. The "Authorship Gap" (arXiv 2604.26460) found style metrics that disagree with
    each other: this says whether ours do (issue "[3 of 5]" §2)."""
    rows, _ = calibrated(judgments, bias)
    agreed = []
    for (x, y, item), by_order in winners_by_pair([row for row in rows if not row.get("check")]).items():
        if len(by_order) < 2 or by_order[0] != by_order[1] or item not in metric.get(x, {}) or item not in metric.get(y, {}):
            continue
        difference = metric[x][item] - metric[y][item]
        if difference:
            agreed.append(float((difference > 0) == (by_order[0] == x)))
    if not agreed:
        return None
    found = bootstrap(agreed, seed=seed)
    return {"n": found.n, "agree": round(found.mean, 4), "low": round(found.low, 4), "high": round(found.high, 4)}
