"""The ablation over shots × hypothesis selection and budget: one resumable authorship run per shots value, every
variant judged against one-pass hyperalign only, a table and a plot; `hyperalign report` re-renders it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from hyperalign import HyperAlign
from hyperalign.cli import app
from hyperalign.eval.ablation.run import run_ablation
from hyperalign.eval.authorship.run import AuthorshipConfig
from hyperalign.eval.runs import RunFolder
from hyperalign.llm import LLMClient
from hyperalign.llm.fake import FakeBackend
from test_eval_authorship import write_corpus

METHODS = ["hyperalign", "hyperalign:select", "hyperalign:budget=1", "zero-shot"]


def ablate(corpus: Path, folder: Path, backend: FakeBackend, shots: list[int]) -> dict:
    ha = HyperAlign(LLMClient(backend))
    base = AuthorshipConfig(corpus=str(corpus), methods=METHODS, authors=3, shots=shots[0], prompts_per_author=1,
                            judge_against="hyperalign")
    return asyncio.run(run_ablation(base, shots, ha, ha, RunFolder(folder)))


def test_one_run_per_shots_value_each_variant_against_hyperalign(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    result = ablate(corpus, tmp_path / "ablation", FakeBackend(), [1, 3])
    folder = tmp_path / "ablation"
    assert result["kind"] == "ablation" and result["shots"] == [1, 3]
    assert {p.name for p in folder.iterdir()} >= {"shots-1", "shots-3", "results.json", "report.md", "plots"}
    # Selection holds texts out to score on, so it needs 2 shots: it is left out at 1 shot.
    assert [(r["shots"], r["method"]) for r in result["rows"]] == [
        (1, "hyperalign"), (1, "hyperalign:budget=1"), (1, "zero-shot"),
        (3, "hyperalign"), (3, "hyperalign:select"), (3, "hyperalign:budget=1"), (3, "zero-shot")]
    # Only pairs with one-pass hyperalign are judged (3 authors x 1 prompt x 3 other methods x 2 orders at 3 shots),
    # besides the judge's own validity check: the real text against zero-shot's (3 authors x 1 prompt x 2 orders).
    rows = [json.loads(line) for line in (folder / "shots-3" / "judgments.jsonl").read_text().splitlines()]
    judged = [r for r in rows if not r.get("check")]
    checks = [r for r in rows if r.get("check") == "validity"]
    assert len(judged) == 3 * 3 * 2 and all("hyperalign" in (r["a"], r["b"]) for r in judged)
    assert len(checks) == 3 * 2 and all({r["a"], r["b"]} == {"real text", "zero-shot"} for r in checks)
    versus = {r["method"]: r["win_rate_vs_hyperalign"] for r in result["rows"] if r["shots"] == 3}
    assert versus["hyperalign"] is None and all(versus[m] is not None for m in METHODS[1:])
    budget = next(r for r in result["rows"] if r["method"] == "hyperalign:budget=1")
    assert budget["hypotheses_per_profile"] <= 1
    report = (folder / "report.md").read_text()
    assert report.count("\n| 3 | ") == 4 and "plots/ablation.png" in report
    assert (folder / "plots" / "ablation.png").stat().st_size > 1000


def test_a_rerun_resumes_without_calls_and_the_report_is_rerendered(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    first = ablate(corpus, tmp_path / "ablation", FakeBackend(), [2])
    again = FakeBackend()
    second = ablate(corpus, tmp_path / "ablation", again, [2])
    assert again.requests == [] and second["rows"] == first["rows"]
    (tmp_path / "ablation" / "report.md").unlink()
    result = CliRunner().invoke(app, ["report", str(tmp_path / "ablation")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ablation" / "report.md").read_text().startswith("# Ablation: shots")


def test_the_cli_runs_an_ablation_and_refuses_bad_shots(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    runner = CliRunner()
    base = ["--backend", "fake", "--no-cache", "eval", "ablation", "--corpus", str(corpus), "--out",
            str(tmp_path / "a"), "--authors", "3", "--prompts-per-author", "1", "--methods", "hyperalign,zero-shot"]
    ok = runner.invoke(app, [*base, "--shots", "1,2"])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "a" / "results.json").read_text())["shots"] == [1, 2]
    for shots, message in (("a,b", "comma-separated whole numbers"), ("0", "must be >= 1")):
        bad = runner.invoke(app, [*base, "--shots", shots])
        assert bad.exit_code == 2 and message in bad.output
