"""The run's report (markdown, CSV, plots) and the `eval authorship` / `report` commands."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyperalign import HyperAlign
from hyperalign.cli import app
from hyperalign.eval.authorship.run import AuthorshipConfig, AuthorshipRun
from hyperalign.eval.corpus import load_corpus, make_split
from hyperalign.eval.report import write_report
from hyperalign.eval.runs import RunFolder
from hyperalign.llm import LLMClient
from hyperalign.llm.fake import FakeBackend

PNG = b"\x89PNG\r\n\x1a\n"
HABITS = {
    "ann": "Indeed; the {x} met the {y}; indeed, it was so.",
    "bo": "Awesome! The {x} and the {y}! So awesome!!",
    "cy": "The {x} -- as ever -- waited for the {y} (quietly)...",
}
TOPICS = ["river", "market", "engine", "garden", "castle", "letter", "winter", "bridge"]
runner = CliRunner()


def write_corpus(root: Path, texts_per_author: int = 4) -> Path:
    for author, habit in HABITS.items():
        (root / author).mkdir(parents=True)
        for index in range(texts_per_author):
            body = " ".join(habit.format(x=TOPICS[(index + k) % 8], y=TOPICS[(index + k + 1) % 8]) for k in range(3))
            (root / author / f"{index}.txt").write_text(f"{author.title()} note {index} starts. {body}", encoding="utf-8")
    return root


def fake_run(corpus: Path, folder: Path, methods: list[str], judge_backend: FakeBackend | None = None) -> dict:
    cfg = AuthorshipConfig(corpus=str(corpus), methods=methods, authors=3, shots=2, prompts_per_author=2, seed=0,
                           backend="fake", model="fake-model", judge_backend="fake", judge_model="fake-model")
    ha = HyperAlign(LLMClient(FakeBackend()))
    judge_ha = HyperAlign(LLMClient(judge_backend)) if judge_backend else ha
    return asyncio.run(AuthorshipRun(cfg, ha, judge_ha, RunFolder(folder)).run())


def csv_table(folder: Path) -> list[dict[str, str]]:
    with (folder / "results.csv").open(newline="", encoding="utf-8") as source:
        return list(csv.DictReader(source))


def test_report_renders_tables_csv_and_plots(tmp_path):
    folder = tmp_path / "run"
    results = fake_run(write_corpus(tmp_path / "corpus"), folder, ["hyperalign", "few-shot", "zero-shot"])
    path = write_report(RunFolder(folder))
    assert path == folder / "report.md"
    report = path.read_text(encoding="utf-8")
    assert report.startswith("# Authorship evaluation: corpus")
    assert "· judge: `" in report  # a judged run names its judge
    assert "## Stylometric attribution (judge-free)" in report
    assert "| method | masked: accuracy | raw: accuracy |" in report
    for method in ("hyperalign", "few-shot", "zero-shot"):
        assert f"| {method} | " in report
    assert "| *real held-out texts (ceiling)* | 1.00 [1.00, 1.00] (n=6) | 1.00 [1.00, 1.00] (n=6) |" in report
    assert "| *the given opening alone (floor)* |" in report
    assert "## Pairwise LLM judge" in report
    # The fake judge always answers "A": it chose by position, so it cannot tell the real text from zero-shot's, its
    # validity check fails, and no win rate of it is shown - in the report, the CSV or a plot.
    warning = ("**This judge chose by position, not by text:** its verdict survived swapping the order in 0% of "
               "pairs (a coin would in half) and it chose the text shown first in 100% of verdicts.")
    assert warning in report and "Validity check (**failed**)" in report
    assert "no win rate of the 18 judged pairs is shown" in report and "| | hyperalign |" not in report
    assert not [r for r in csv_table(folder) if r["metric"] == "win_rate"]
    assert not (folder / "plots" / "win_rates.png").exists() and "win_rates.png" not in report
    # A judge that passed its check gets its matrix, below the position warning where it earned one.
    saved = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    saved["judge"]["validity"]["passed"] = True
    (folder / "results.json").write_text(json.dumps(saved), encoding="utf-8")
    report = write_report(RunFolder(folder)).read_text(encoding="utf-8")
    assert "Position consistency:" in report and "over 18 pairs" in report
    assert warning in report and report.index(warning) < report.index("| | hyperalign | few-shot | zero-shot |")
    for method in ("hyperalign", "few-shot", "zero-shot"):
        assert f"| **{method}** |" in report
    saved["judge"] |= {"position_consistency": 0.9, "first_shown_share": 0.52, "judged_by_position": False}
    (folder / "results.json").write_text(json.dumps(saved), encoding="utf-8")
    report = write_report(RunFolder(folder)).read_text(encoding="utf-8")
    assert "chose by position" not in report and "| | hyperalign | few-shot | zero-shot |" in report
    assert "## Cost" in report
    ratio = results["cost"]["hyperalign_over_few_shot_prompt_tokens"]
    assert f"hyperalign / few-shot prompt tokens per generation: **{ratio:.2f}**" in report

    table = csv_table(folder)
    assert set(table[0]) == {"metric", "view", "method", "subset", "value", "low", "high", "n"}
    ceilings = [r for r in table if r["metric"] == "attribution_accuracy" and r["method"] == "ceiling_real_texts"]
    assert sorted(r["view"] for r in ceilings) == ["masked", "raw"] and all(float(r["value"]) == 1.0 for r in ceilings)
    accuracy = [r for r in table if r["metric"] == "attribution_accuracy" and r["method"] == "few-shot"]
    assert {(r["view"], r["subset"]) for r in accuracy} >= {("masked", "all"), ("raw", "all")}
    wins = [r for r in table if r["metric"] == "win_rate"]
    assert len(wins) == 6 and all(0.0 <= float(r["value"]) <= 1.0 and r["n"] == "6" for r in wins)
    assert any(r["metric"] == "prompt_tokens_per_generation" and r["method"] == "hyperalign" for r in table)
    # The second metric is in the CSV too, with its interval, for every method and for the ceiling and floor.
    second = saved["attribution"]["second"]
    for method, block in [*second["methods"].items(), ("ceiling_real_texts", second["ceiling_real_texts"]),
                          ("floor_other_authors", second["floor_other_authors"])]:
        margin = [r for r in table if r["metric"] == "delta_margin" and r["method"] == method and r["subset"] == "all"]
        assert len(margin) == 1 and float(margin[0]["value"]) == pytest.approx(block["delta_margin"]["mean"])
        assert float(margin[0]["low"]) <= float(margin[0]["value"]) <= float(margin[0]["high"])
    assert "| method | Delta accuracy | Delta to target | Delta margin | facts adherence |" in report
    # The margin of the outputs that do not copy: in the report and the CSV for each method (the fake's outputs
    # copy nothing, so it covers every output and equals the margin).
    for method, block in second["methods"].items():
        without = block["delta_margin_without_copying"]
        assert without["n"] == block["n"] and without["mean"] == pytest.approx(block["delta_margin"]["mean"])
        assert [r for r in table if r["metric"] == "delta_margin" and r["method"] == method
                and r["subset"] == "without_copying"]
    assert "| margin, without copying | margin − few-shot, neither copying |" in report
    assert f"(n={without['n']}) |" in report
    paired = [r for r in table if r["metric"] == "delta_margin_vs_few-shot" and r["method"] == "hyperalign"]
    assert {r["subset"] for r in paired} == {"all", "without_copying"}

    for name in ("attribution", "win_rates", "tokens", "delta_margin"):
        png = folder / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG


def test_report_of_an_import_run_whose_judge_always_failed(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    split = make_split(load_corpus(corpus), authors=3, shots=2, prompts_per_author=2, seed=0)
    imported = tmp_path / "theirs.jsonl"
    imported.write_text("".join(json.dumps({"author": i.author, "prompt": i.prompt, "output": "Mine. " * 30}) + "\n"
                                for a in split.authors for i in a.held_out), encoding="utf-8")
    folder = tmp_path / "run"
    fake_run(corpus, folder, ["few-shot", f"import:{imported}"], judge_backend=FakeBackend(lambda r: "{not json"))
    report = write_report(RunFolder(folder)).read_text(encoding="utf-8")
    assert "| import:theirs | (imported: not measured) |" in report
    assert "No pairs judged." in report and "hyperalign / few-shot" not in report
    table = csv_table(folder)
    assert not [r for r in table if r["metric"] == "win_rate"]
    assert {r["method"] for r in table if r["metric"] == "attribution_accuracy"} >= {"few-shot", "import:theirs"}
    assert not (folder / "plots" / "win_rates.png").exists()  # nothing judged: no empty plot
    assert (folder / "plots" / "tokens.png").read_bytes()[:8] == PNG


def invoke(*args: str):
    return runner.invoke(app, ["--backend", "fake", "--no-cache", *args])


def authorship(corpus: Path, out: Path, *extra: str):
    return invoke("eval", "authorship", "--corpus", str(corpus), "--authors", "3", "--prompts-per-author", "1",
                  "--shots", "2", "--out", str(out), *extra)


def flat(output: str) -> str:
    return " ".join(output.split())  # rich wraps long lines


def assert_clean_failure(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception
    assert flat(result.output).count("Error:") == 1
    assert fragment in flat(result.output), result.output


def test_cli_eval_authorship_and_report(tmp_path):
    corpus, out = write_corpus(tmp_path / "corpus", texts_per_author=3), tmp_path / "run"
    result = authorship(corpus, out)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["n_prompts"] == 3 and results["methods"] == ["hyperalign", "few-shot", "zero-shot"]
    assert results["config"]["backend"] == "fake" and results["judge"]["pairs_judged"] == 9
    assert "Stylometric attribution" in result.output and "LLM calls:" in result.output
    # The fake judge always answers "A": the CLI warns once, beside the report that explains it.
    assert flat(result.output).count("Warning: the judge chose by position, not by text") == 1
    (out / "report.md").unlink()
    (out / "plots" / "tokens.png").unlink()
    again = invoke("report", str(out))
    assert again.exit_code == 0, again.output
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# Authorship evaluation")
    assert (out / "plots" / "tokens.png").read_bytes()[:8] == PNG
    assert_clean_failure(invoke("report", str(tmp_path / "corpus")), "missing; is")


def missing_prompts_import(tmp_path: Path, corpus: Path) -> str:
    split = make_split(load_corpus(corpus), authors=3, shots=2, prompts_per_author=1, seed=0)
    path = tmp_path / "partial.jsonl"
    path.write_text(json.dumps({"author": "ann", "prompt": split.authors[0].held_out[0].prompt, "output": "x"}) + "\n",
                    encoding="utf-8")
    return f"few-shot,import:{path}"


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("unknown method", "unknown method 'bogus'; use hyperalign[:paper][:select]"),
        ("missing corpus", "no such corpus"),
        ("import missing prompts", "lacks 2 of the run's 3 prompts"),
        ("too few texts", "only 0 author(s) have enough texts for 2 shots + 1 held out (of 3 in the corpus)"),
    ],
)
def test_cli_bad_inputs_exit_2_with_one_message(tmp_path, case, fragment):
    corpus = write_corpus(tmp_path / "corpus", texts_per_author=3 if case != "too few texts" else 2)
    extra = []
    if case == "unknown method":
        extra = ["--methods", "few-shot,bogus"]
    elif case == "import missing prompts":
        extra = ["--methods", missing_prompts_import(tmp_path, corpus)]
    target = tmp_path / "nowhere" if case == "missing corpus" else corpus
    assert_clean_failure(authorship(target, tmp_path / "run", *extra), fragment)


def test_a_failed_start_does_not_poison_the_run_folder(tmp_path):
    corpus, out = write_corpus(tmp_path / "corpus", texts_per_author=3), tmp_path / "run"
    assert authorship(tmp_path / "typo", out).exit_code == 2
    result = authorship(corpus, out, "--methods", "few-shot,zero-shot", "--judge", "none")
    assert result.exit_code == 0, result.output
    # Run without a judge, the header says so rather than naming an empty "judge model".
    assert "· judge: none\n" in (out / "report.md").read_text(encoding="utf-8")
