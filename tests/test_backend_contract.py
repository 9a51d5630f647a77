"""The backend contract: one base class with one required async method, capabilities the pipeline asks (never the
backend's attributes), and plugins found by entry point — here a real plugin package (tests/plugins), found the way
an installed one is, through its dist-info's entry points."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hyperalign import HyperAlign
from hyperalign.errors import InputError
from hyperalign.llm import Capabilities, LLMBackend, LLMClient, backend_names, create_backend
from hyperalign.llm.fake import FakeBackend
from hyperalign.pipeline.context import fit_examples
from hyperalign.profiles.model import UserExample

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def plugin_installed(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))


def test_a_plugin_backend_is_found_by_its_entry_point(plugin_installed):
    assert "echo" in backend_names()
    backend = create_backend("echo", model="echo-7")
    assert isinstance(backend, LLMBackend) and backend.model == "echo-7"
    ha = HyperAlign.from_config(backend="echo", cache=False)
    generation = ha.generate(None, "alpha beta gamma", "zero-shot")
    assert generation.text.split()[:3] == ["gamma", "beta", "alpha"]


def test_a_plugin_backend_works_from_the_command_line(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(PLUGINS), "HYPERALIGN_CONFIG": str(tmp_path / "none.toml"),
                   "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-m", "hyperalign", "--backend", "echo", "--no-cache", "generate",
                           "--strategy", "zero-shot", "alpha beta"], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "beta alpha" in done.stdout


def test_a_plugin_judge_is_found_by_its_entry_point(plugin_installed):
    from hyperalign.eval.judge import Judge

    judge = Judge.load("brevity")
    assert judge.folder == PLUGINS / "hyperalign_echo_plugin" / "brevity_judge"
    assert "closer in length" in judge.messages(["ref"], "a", "b")[-1]["content"]
    with pytest.raises(InputError, match="known judges: .*brevity"):
        Judge.load("nonesuch")


def test_a_backend_must_implement_acomplete_and_nothing_else():
    class Half(LLMBackend):
        name = "half"

    with pytest.raises(TypeError, match="acomplete"):
        Half()  # type: ignore[abstract]

    class Minimal(LLMBackend):
        name = "minimal"
        model = "m"

        async def acomplete(self, request):
            return FakeBackend().reply(request)

    client = LLMClient(Minimal())
    assert client.backend.capabilities == Capabilities()
    assert client.identity == {"backend": "minimal", "model": "m"}


def test_a_capability_not_declared_is_not_there():
    backend = FakeBackend()
    with pytest.raises(NotImplementedError, match="count_tokens"):
        backend.count_tokens("two words")
    assert FakeBackend(capabilities=Capabilities(count_tokens=True)).count_tokens("two words") == 2


def test_examples_are_fitted_by_the_backend_s_own_count_where_it_can_count():
    text = "word " * 3000
    examples = [UserExample(text=text)]
    words = lambda t: len(t.split())  # noqa: E731 - the backend's count, one token a word
    by_count, cut = fit_examples(examples, context_tokens=2000, reserve_tokens=100, count_tokens=words)
    estimated, _ = fit_examples(examples, context_tokens=2000, reserve_tokens=100)
    assert cut == [0]
    assert 1400 <= words(by_count[0].text) <= 1500  # 2000 - 100 reserved - 400 prompt overhead, in its tokens
    assert words(estimated[0].text) < 1100  # from characters, at 3.5 a token


def test_generation_asks_the_count_only_of_a_backend_that_declares_it():
    counting = FakeBackend(capabilities=Capabilities(count_tokens=True), context_tokens=2000)
    silent = FakeBackend(context_tokens=2000)  # count_tokens would raise if asked
    examples = [UserExample(text="word " * 3000)]
    for backend in (counting, silent):
        HyperAlign(LLMClient(backend)).generate(None, "Write.", "few-shot", examples)
    sent = [len(b.requests[0].messages[0]["content"].split()) for b in (counting, silent)]
    assert sent[0] > sent[1]


def test_no_module_probes_a_backend_s_attributes():
    """Capabilities are declared and asked; `getattr`/`hasattr` on a backend would be a probe."""
    offenders = []
    for path in (ROOT / "src" / "hyperalign").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"getattr", "hasattr"}:
                if node.args and "backend" in ast.unparse(node.args[0]):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
