"""The CLI contract: commands, options before or after the command, and one clear message with exit 2 on faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyperalign.cli import app
from hyperalign.llm.fake import FakeBackend
from hyperalign.profiles.model import Profile

runner = CliRunner()


def write_examples(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def examples_file(tmp_path: Path) -> Path:
    return write_examples(
        tmp_path / "ex.jsonl",
        [
            {"prompt": "Note about the gate", "text": "Right then. Somebody left the gate open. Lock it. No excuses."},
            {"text": "Right then. Bulb day is Saturday, nine sharp. Bring gloves and a trowel."},
        ],
    )


def invoke(*args: str, cache: Path | None = None):
    base = ["--backend", "fake"] + (["--cache", str(cache)] if cache else ["--no-cache"])
    return runner.invoke(app, [*base, *args])


def assert_clean_failure(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_infer_writes_a_valid_profile_and_second_run_is_cached(tmp_path, examples_file):
    cache = tmp_path / "cache.sqlite3"
    out = tmp_path / "p.json"
    first = invoke("infer", str(examples_file), "--user", "bev", "-o", str(out), "--attribute", "role=gardener",
                   "--method", "paper", cache=cache)
    assert first.exit_code == 0, first.output
    profile = Profile.load(out)
    assert profile.user_id == "bev" and profile.n_examples == 2
    assert profile.attributes["role"] == "gardener"
    # One call for every aspect and the attributes; the fake's invented quotes are asked for once more.
    assert "LLM calls: 2 (cache hits: 0)" in first.output
    second = invoke("infer", str(examples_file), "--user", "bev", "-o", str(out), "--method", "paper", cache=cache)
    assert second.exit_code == 0
    assert "LLM calls: 0 (cache hits: 2)" in second.output
    paper = invoke("infer", str(examples_file), "--user", "bev", "--proposal", "per-aspect", "--no-reask",
                   "--method", "paper")
    assert paper.exit_code == 0 and "LLM calls: 4 (cache hits: 0)" in paper.output  # the paper's 3 aspects + attributes
    # The default (contrastive): the model's default voice for each example is part of the profile.
    contrastive = invoke("infer", str(examples_file), "--user", "bev", "-o", str(out), cache=cache)
    assert contrastive.exit_code == 0 and "dropped as not telling bev from the default voice" in contrastive.output
    stored = Profile.load(out)
    assert stored.report.method == "contrastive" and stored.contrast and len(stored.contrast.texts) == 2


def test_options_work_after_the_command(tmp_path, examples_file):
    result = runner.invoke(app, ["infer", str(examples_file), "--user", "bev", "--backend", "fake", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[: result.stdout.rindex("}") + 1])["user_id"] == "bev"


def test_show_prints_markdown(tmp_path, examples_file):
    out = tmp_path / "p.json"
    assert invoke("infer", str(examples_file), "--user", "bev", "-o", str(out)).exit_code == 0
    result = runner.invoke(app, ["show", str(out)])
    assert result.exit_code == 0
    assert result.stdout.startswith("# Profile of bev")


def test_generate_single_task_each_strategy(tmp_path, examples_file):
    out = tmp_path / "p.json"
    assert invoke("infer", str(examples_file), "--user", "bev", "-o", str(out)).exit_code == 0
    for strategy, extra in [("hyperalign", ["--profile", str(out)]), ("few-shot", ["--examples", str(examples_file)]), ("zero-shot", [])]:
        result = invoke("generate", "--strategy", strategy, *extra, "Write a note about the compost heap.")
        assert result.exit_code == 0, result.output
        assert "[fake completion" in result.stdout


def test_generate_many_writes_each_result_and_resumes(tmp_path):
    tasks = write_examples(tmp_path / "tasks.jsonl", [{"id": "a", "task": "one"}, {"id": "b", "task": "two"}, {"task": "three"}])
    out = tmp_path / "out.jsonl"
    first = invoke("generate", "--strategy", "zero-shot", "--tasks", str(tasks), "-o", str(out))
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["3", "a", "b"]
    assert all(r["strategy"] == "zero-shot" and r["output"] for r in rows)
    second = invoke("generate", "--strategy", "zero-shot", "--tasks", str(tasks), "-o", str(out))
    assert second.exit_code == 0
    assert "3 of 3 tasks already" in second.output
    assert len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize(
    "content, fragments",
    [
        (None, ["no such file"]),
        (b"", ["empty"]),
        (b'{"text": "fine"}\n{"text": broken\n', ["line 2", "not valid JSON"]),
        (b'{"prompt": "p"}\n', ["line 1", "text"]),
        (b'{"text": "   "}\n', ["line 1", "no text"]),
        (b'{"text": "caf\xe9"}\n', ["not valid UTF-8"]),
        (b'["text"]\n', ["line 1", "JSON object"]),
    ],
    ids=["missing", "empty", "malformed", "no-text-field", "blank-text", "non-utf8", "not-object"],
)
def test_bad_examples_file(tmp_path, content, fragments):
    path = tmp_path / "ex.jsonl"
    if content is not None:
        path.write_bytes(content)
    assert_clean_failure(invoke("infer", str(path), "--user", "u"), *fragments)


def test_example_longer_than_context_is_truncated_with_a_warning(tmp_path):
    path = write_examples(tmp_path / "ex.jsonl", [{"text": "A long sentence about gardens. " * 400}, {"text": "Short one here."}])
    result = invoke("--context-tokens", "2000", "infer", str(path), "--user", "u", "-o", str(tmp_path / "p.json"))
    assert result.exit_code == 0, result.output
    assert "example 1 was longer than the model's context and was truncated" in result.output
    assert Profile.load(tmp_path / "p.json").report.truncated_examples == [0]


def test_unreachable_endpoint(tmp_path, examples_file, monkeypatch):
    monkeypatch.setenv("HYPERALIGN_MAX_RETRIES", "0")
    result = runner.invoke(
        app, ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--no-cache", "infer", str(examples_file), "--user", "u"]
    )
    assert_clean_failure(result, "cannot reach the LLM endpoint http://127.0.0.1:9/v1")


def test_invalid_llm_output_after_repair(tmp_path, examples_file, register_test_backend):
    register_test_backend("garbage", lambda **_: FakeBackend(responses=lambda request: "this is not json"))
    result = runner.invoke(app, ["--backend", "garbage", "--no-cache", "infer", str(examples_file), "--user", "u"])
    assert_clean_failure(result, "not valid after 1 repair attempt", "step 'infer_")


def test_unknown_backend_and_missing_model_file(examples_file):
    assert_clean_failure(invoke_raw("--backend", "nope", "infer", str(examples_file), "--user", "u"), "unknown backend 'nope'")
    result = invoke_raw("--backend", "embedded", "--model", "/no/such/model.gguf", "infer", str(examples_file), "--user", "u")
    assert_clean_failure(result, "model file not found: /no/such/model.gguf")


def invoke_raw(*args: str):
    return runner.invoke(app, ["--no-cache", *args])


def test_corrupt_profile_names_the_field(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"schema_version": 1, "user_id": "u", "hypotheses": [{"aspect": "x"}]}))
    assert_clean_failure(runner.invoke(app, ["show", str(path)]), "invalid profile: field 'hypotheses.0.statement' is missing")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["generate", "--strategy", "hyperalign", "task"], "needs --profile"),
        (["generate", "--strategy", "few-shot", "task"], "needs --examples"),
        (["generate"], "either one TASK or --tasks"),
    ],
)
def test_generate_argument_faults(args, fragment):
    assert_clean_failure(invoke(*args), fragment)
