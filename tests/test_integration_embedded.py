"""End to end on the real embedded model (SmolLM2-135M via llama.cpp), no fake: infer, then generate."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyperalign import HyperAlign, Profile, Strategy
from hyperalign.cli import app
from hyperalign.profiles.model import read_examples

pytestmark = pytest.mark.integration


@pytest.fixture
def cache_path(tmp_path) -> Path:
    """Each test its own cache: no test depends on what another one left behind."""
    return tmp_path / "cache.sqlite3"


@pytest.fixture(scope="module")
def demo_examples():
    with resources.as_file(resources.files("hyperalign") / "data" / "demo_user.jsonl") as path:
        return read_examples(path)


def test_infer_and_generate_on_the_embedded_model(cache_path, demo_examples):
    ha = HyperAlign.from_config(backend="embedded", cache=str(cache_path))
    profile = ha.infer_profile("bev", demo_examples)
    assert Profile.from_json(profile.to_json()) == profile
    assert profile.model == "SmolLM2-135M-Instruct.Q4_1.gguf"
    # The contrastive method: the model's default voice for bev's tasks is part of the profile, and what is kept of
    # bev differs from it. The embedded backend returns log-probabilities, so each statement is checked on its own
    # in both orders of every pair (one single-token call each), with a placebo statement beside them, its position
    # bias removed; few or no hypotheses pass on the 135M checker: the measured facts carry the profile.
    assert profile.report.method == "contrastive" and len(profile.contrast.texts) == len(demo_examples)
    pairs, verification = min(5, len(demo_examples)), profile.report.verification
    checked = verification.get("kept", 0) + verification.get("failed", 0)
    assert verification.get("probabilities") == 1.0 and 0 <= verification["position_bias_p_a"] <= 1
    assert checked >= 1 and verification["calls"] == 2 * pairs * (checked + 1)
    assert all(len(h.discrimination.leans) <= pairs for h in profile.report.failed_verification if h.discrimination)
    assert all(abs(f.measure.z) >= 1 for f in profile.facts)
    # The grammar decodes every proposed statement as a description of the person (pipeline/propose.py).
    proposed = [h.statement for h in (*profile.hypotheses, *profile.report.failed_verification)]
    proposed += profile.report.copied_statements
    assert proposed and all(s.startswith("The person ") and "<" not in s for s in proposed), proposed
    for hypothesis in profile.inferred_hypotheses:  # every shown quote is real text of the example it names
        quotes = [e.quote for e in hypothesis.evidence if e.verified]
        assert any(" ".join(q.split()) in " ".join(demo_examples[e.example_index].text.split())
                   for e in hypothesis.evidence if e.verified for q in [e.quote]), quotes
    assert any("Right then." in f.statement for f in profile.facts)  # bev's opening, measured by code
    # In-process: the default voice (one per example), the call per aspect (3) plus one for the attributes and one
    # for the measured differences (bev has some: her opening at least), and two checks per verification pair; the
    # quote menu makes every quote real, so nothing is asked again.
    assert profile.facts
    assert ha.stats.llm_calls == len(demo_examples) + 5 + profile.report.verification["calls"]
    assert ha.stats.prompt_tokens > 3000
    # The report counts every call of the inference, the contrast's included.
    assert (profile.report.usage.llm_calls, profile.report.usage.cache_hits) == (ha.stats.llm_calls, ha.stats.cache_hits)
    assert profile.report.usage.prompt_tokens == ha.stats.prompt_tokens
    # llama.cpp keeps the last prompt: consecutive checks share their start, which it reports as reused, not computed.
    usage = profile.report.usage
    assert 0 < usage.cached_prompt_tokens < usage.prompt_tokens and usage.evaluated_prompt_tokens > 0

    text = ha.generate(profile, "Write a short note asking volunteers to bring seeds to the swap.").text
    zero = ha.generate(None, "Write a short note asking volunteers to bring seeds to the swap.", Strategy.ZERO_SHOT).text
    assert len(text.split()) > 10 and len(zero.split()) > 10
    assert text != zero


def without_clock(text: str) -> str:
    return re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "<time>", text)


def test_cli_demo_offline_then_from_the_cache(cache_path):
    cold = CliRunner().invoke(app, ["--cache", str(cache_path), "demo", "--max-tokens", "120"],
                              env={"COLUMNS": "200"})
    assert cold.exit_code == 0, cold.output
    assert "Profile of bev" in cold.stdout and "Measured style" in cold.stdout
    for column in ("zero-shot (task only)", "hyperalign, profile in the prompt only", "hyperalign, steered (light)"):
        assert column in cold.stdout
    assert cold.stdout.count("adherence to bev's measured style:") == 3
    # bev's habits per text, and the levers: her opening and sign-off by code (the default), token steering.
    assert "bev's measured habits in each text" in cold.stdout and "opens with “Right then.”" in cold.stdout
    said = " ".join(cold.output.split())  # as printed, but for the terminal's line wrapping
    assert "opening “Right then.”: code" in said and "sign-off “Bev (compost is not optional)”: code" in said
    assert ": steering" in said  # the embedded backend takes token biases
    # 5 default-voice texts, 5 proposal calls (3 aspects, the attributes, the measured differences), single-token
    # checks (each quoted statement on 5 pairs, both orders);
    # zero-shot, the profile in the prompt only, the steered text. How many statements have a quote found depends on
    # the model's words, and those on llama.cpp's thread count (the suite gives it one thread per worker).
    calls = int(re.search(r"LLM calls: (\d+) \(cache hits: 0\)", cold.output).group(1))
    assert calls >= 5 + 5 + 3 and (calls - 5 - 5 - 3) % (2 * 5) == 0
    warm = CliRunner().invoke(app, ["--cache", str(cache_path), "demo", "--max-tokens", "120"],
                              env={"COLUMNS": "200"})
    assert warm.exit_code == 0 and f"LLM calls: 0 (cache hits: {calls})" in warm.output
    assert without_clock(warm.stdout) == without_clock(cold.stdout)  # the profile's time may cross a minute
