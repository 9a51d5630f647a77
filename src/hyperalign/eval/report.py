"""`hyperalign report RUN`: re-render any run's report from its results.json. Each evaluation registers the writer
for the `kind` its results.json records (a registry, not an if/elif chain)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError
from .ablation.report import write_ablation_report
from .authorship.report import write_authorship_report
from .deliberative.report import write_deliberative_report
from .runs import RunFolder

ReportWriter = Callable[[RunFolder, dict[str, Any]], None]
WRITERS: dict[str, ReportWriter] = {
    "authorship": write_authorship_report,
    "deliberative": write_deliberative_report,
    "ablation": write_ablation_report,
}


def write_report(folder: RunFolder, results: dict[str, Any] | None = None) -> Path:
    """Write report.md (and the kind's tables and plots) into the run folder; return the report's path."""
    results = results if results is not None else folder.read_json("results.json")
    kind = results.get("kind") if isinstance(results, dict) else None
    writer = WRITERS.get(kind) if isinstance(kind, str) else None
    if writer is None:
        raise InputError(f"{folder.file('results.json')}: not a hyperalign results file (unknown kind {kind!r}; "
                         f"known: {', '.join(WRITERS)})")
    try:
        writer(folder, results)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        # results.json is written whole by the run; one that cannot be rendered was edited or truncated by hand.
        raise InputError(f"{folder.file('results.json')}: incomplete or not from this version of hyperalign "
                         f"({type(exc).__name__}: {exc}); rerun the evaluation into its folder to rebuild it") from None
    return folder.file("report.md")
