"""The CLI's error contract, through the real entry point in a subprocess: bad input -> one line, exit 2, whatever
the terminal width or the path length; a bug -> exit 1, one line, the traceback in a log file; output is
terminal-safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyperalign.cli import app

runner = CliRunner()


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HYPERALIGN_", "OPENAI_"))}
    environment.update({"HYPERALIGN_BACKEND": "fake", "HYPERALIGN_CONFIG": str(cwd / "none.toml"),
                        "XDG_CACHE_HOME": str(cwd / "cache"), "XDG_DATA_HOME": str(cwd / "data"),
                        "XDG_STATE_HOME": str(cwd / "state"), **env})
    return subprocess.run([sys.executable, "-m", "hyperalign", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("columns", ["20", "80", "400"])
def test_an_error_is_one_line_at_any_width_and_any_path_length(tmp_path, columns):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / ("and-another-one-" * 4)
    deep.mkdir(parents=True)
    missing = deep / "examples.jsonl"
    done = run(["infer", str(missing), "--user", "bev"], tmp_path, COLUMNS=columns)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: ")
    assert f"{missing}: no such file" in done.stderr


def test_a_usage_error_is_one_line_too(tmp_path):
    done = run(["infer", "x.jsonl"], tmp_path, COLUMNS="30")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "Missing option '--user'" in done.stderr and "--help" in done.stderr


def test_a_bug_exits_1_with_one_line_and_the_traceback_in_a_log_file(tmp_path, monkeypatch):
    """A real bug, planted: a backend plugin whose completion raises ZeroDivisionError."""
    path = plugin_backend(tmp_path, "class Buggy(FakeBackend):\n    name = 'buggy'\n"
                                    "    def reply(self, request):\n        return 1 / 0\n"
                                    "register_backend('buggy', Buggy)\n")
    done = run(["--backend", "buggy", "--no-cache", "generate", "--strategy", "zero-shot", "Hi."], tmp_path,
               PYTHONPATH=path)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "internal error (a bug in hyperalign): ZeroDivisionError" in line
    logs = list((tmp_path / "state" / "hyperalign" / "logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    assert "Traceback (most recent call last)" in logs[0].read_text(encoding="utf-8")
    assert "ZeroDivisionError" in logs[0].read_text(encoding="utf-8")


def test_generated_text_with_escape_sequences_reaches_the_terminal_escaped(register_test_backend):
    from hyperalign.llm.fake import FakeBackend

    class Hostile(FakeBackend):
        def __init__(self, **options):
            super().__init__(lambda request: "Dear all,\x1b[2J\x1b]0;owned\x07 bring seeds.\u202eevil", **options)

    register_test_backend("hostile-test", Hostile)
    result = runner.invoke(app, ["--backend", "hostile-test", "--no-cache", "generate", "--strategy", "zero-shot",
                                 "Write."])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "Dear all,\\x1b[2J\\x1b]0;owned\\x07 bring seeds.\\u202eevil" in result.stdout


def plugin_backend(tmp_path: Path, body: str) -> str:
    """A backend plugin registered in a subprocess through sitecustomize; returns the PYTHONPATH to use."""
    plugin = tmp_path / "plugin"
    plugin.mkdir(exist_ok=True)
    (plugin / "test_backend_plugin.py").write_text(
        "import time\nfrom hyperalign.llm.fake import FakeBackend\nfrom hyperalign.llm.registry import register_backend\n"
        + body, encoding="utf-8")
    (plugin / "sitecustomize.py").write_text("import test_backend_plugin\n", encoding="utf-8")
    return str(plugin)


def test_ctrl_c_keeps_finished_results_and_a_rerun_finishes_the_rest(tmp_path):
    # A backend that waits on its endpoint (it yields to the event loop while it waits, as every real one does).
    path = plugin_backend(tmp_path, "import asyncio\nclass Slow(FakeBackend):\n    name = 'slow'\n"
                                    "    async def acomplete(self, request):\n        await asyncio.sleep(0.2)\n"
                                    "        return self.reply(request)\n"
                                    "register_backend('slow', Slow)\n")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"id": f"t{i}", "task": f"Task {i}."}) + "\n" for i in range(40)))
    out = tmp_path / "out.jsonl"
    args = ["--backend", "slow", "--no-cache", "--concurrency", "1", "generate", "--strategy", "zero-shot", "--tasks",
            str(tasks), "-o", str(out)]
    environment = {**os.environ, "PYTHONPATH": path, "HYPERALIGN_CONFIG": str(tmp_path / "none.toml"),
                   "XDG_STATE_HOME": str(tmp_path / "state")}
    # The CLI respects an ignored SIGINT, and a child inherits SIG_IGN when pytest runs as a background job of a
    # non-interactive shell (as under nohup): the child gets the default disposition back before exec, as in a
    # terminal. A wrapper rather than preexec_fn, which is unsafe while the runner has threads (pytest-xdist).
    default_sigint = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                      "os.execv(sys.executable, [sys.executable, '-m', 'hyperalign', *sys.argv[1:]])")
    process = subprocess.Popen([sys.executable, "-c", default_sigint, *args], cwd=tmp_path, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # wait (at most 60 s) until two results are written
        if out.exists() and out.read_text().count("\n") >= 2:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Interrupted; finished results are kept." in stderr and "Traceback" not in stderr
    kept = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert 2 <= len(kept) < 40
    rerun = subprocess.run([sys.executable, "-m", "hyperalign", *args], cwd=tmp_path, env=environment,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"Resuming: {len(kept)} of 40 tasks already" in rerun.stderr
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == sorted(f"t{i}" for i in range(40))


def test_settings_show_each_source_and_never_the_key(tmp_path):
    (tmp_path / "hyperalign.toml").write_text("base_url = 'http://u:pw1@llm.example/v1'\nmodel = 'm'\n")
    env = {k: v for k, v in os.environ.items() if k != "HYPERALIGN_CONFIG"}
    environment = {**env, "OPENAI_API_KEY": "sk-never-shown", "HYPERALIGN_CONCURRENCY": "3",
                   "XDG_CACHE_HOME": str(tmp_path / "c")}
    done = subprocess.run([sys.executable, "-m", "hyperalign", "--backend", "openai", "settings"], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert "(flag)" in rows["backend"]
    assert "http://***@llm.example/v1" in rows["base_url"] and "hyperalign.toml" in rows["base_url"]
    assert "(env HYPERALIGN_CONCURRENCY)" in rows["concurrency"]
    assert "(set)" in rows["api_key"] and "OPENAI_API_KEY" in rows["api_key"]
    assert "sk-never-shown" not in done.stdout + done.stderr and "pw1" not in done.stdout + done.stderr


def test_a_settings_file_that_redirects_the_endpoint_is_announced(tmp_path):
    (tmp_path / "hyperalign.toml").write_text("base_url = 'http://127.0.0.1:9/v1'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERALIGN_")}
    environment = {**env, "OPENAI_API_KEY": "sk-x", "HYPERALIGN_MAX_RETRIES": "0",
                   "XDG_CACHE_HOME": str(tmp_path / "c")}
    done = subprocess.run([sys.executable, "-m", "hyperalign", "--backend", "openai", "generate", "--strategy",
                           "zero-shot", "Hi."], cwd=tmp_path, env=environment, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    notice, error = done.stderr.strip().splitlines()
    assert notice.startswith("Settings from hyperalign.toml: base_url=http://127.0.0.1:9/v1")
    assert "with the API key from OPENAI_API_KEY" in notice
    assert error.startswith("Error: cannot reach the LLM endpoint http://127.0.0.1:9/v1")


def test_the_service_answers_by_whose_fault_an_error_is():
    """Every hyperalign error says whether it is the caller's to fix (4xx) or not (5xx): the service answers by it,
    so a library error no route expected is never a 500."""
    pytest.importorskip("fastapi")
    from hyperalign.errors import BackendUnavailableError, ContextOverflowError, LLMError, TooFewHypothesesError
    from hyperalign.service.errors import as_response

    for error, status in [(TooFewHypothesesError("too few"), 400), (ContextOverflowError("too long"), 400),
                          (LLMError("the endpoint failed"), 503), (BackendUnavailableError("down"), 503)]:
        answer = as_response(error)
        assert answer.status_code == status, error
        assert json.loads(answer.body)["error"]["type"] == ("invalid_request_error" if status == 400 else
                                                            "server_error")
