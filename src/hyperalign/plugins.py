"""hyperalign's extension points, all named here. A plugin is an installed package that declares entry points in
these groups (its pyproject.toml's ``[project.entry-points."hyperalign.backends"]``, say); hyperalign finds them at
run time, with no registration code. docs/plugins.md walks through writing one.

========================  ======================================================  ==========================================
group                     the entry point's value                                 what it adds
========================  ======================================================  ==========================================
``hyperalign.backends``   a subclass of `hyperalign.llm.LLMBackend`                a backend: ``--backend NAME``,
                                                                                  ``HyperAlign.from_config(backend="NAME")``
``hyperalign.judges``     a package whose folder holds a judge (``config.toml``   a judge: ``--judge NAME`` in the
                          and its prompt templates, as eval/judges/<name>/)       evaluations
========================  ======================================================  ==========================================

A backend declares what it can do in `Capabilities` (schema decoding, log-probabilities, logit bias, prefill,
tokenize, count tokens, prompt-prefix reuse); the pipeline asks those, never the backend's attributes. A built-in
name wins over a plugin of the same name."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

BACKENDS = "hyperalign.backends"
JUDGES = "hyperalign.judges"


def plugins(group: str) -> dict[str, EntryPoint]:
    """The installed plugins of one group, by name."""
    return {entry.name: entry for entry in entry_points(group=group)}


def judge_folder(entry: EntryPoint) -> Path:
    """The folder a judge plugin's package lives in (its config.toml and templates)."""
    package = entry.load()
    return Path(package.__file__).parent
