"""`hyperalign demo`: bev's profile from the bundled texts, then one task written three ways — zero-shot, with the
profile in the prompt only, and with the profile steered (pipeline/steer.py) — and each of bev's measured habits
shown in each text, beside the lever that acted on it. A lever that moves nothing shows as such."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..io import check_text
from ..pipeline.adherence import check_facts, facts_adherence
from ..pipeline.distinctive import format_value
from ..pipeline.facts import measure, metric_label
from ..pipeline.generate import GenerationOptions, Strategy
from ..pipeline.infer import InferenceOptions
from ..pipeline.steer import SteerLevel
from ..profiles.model import Profile, read_examples
from .common import cli_command, client, err, out, report_usage, say, terminal_safe
from .core import DEMO_TASK, OpeningChoice, infer_with_status, print_markdown


def _habits(profile: Profile, texts: list[str], how: Mapping[str, str]) -> Table:
    table = Table(title="bev's measured habits in each text", show_lines=False)
    for heading in ("habit", "bev", "zero-shot", "prompt only", "steered", "lever"):
        table.add_column(heading)
    for fact in profile.facts:
        m = fact.measure
        if m is None:
            continue
        values = [measure(m.metric, text) for text in texts]
        cells = [format_value(m.metric, v) if v is not None else "–" for v in values]
        table.add_row(metric_label(m.metric), format_value(m.metric, m.mean), *cells, how.get(m.metric, "prompt only"))
    return table


@cli_command
def demo(
    task: Annotated[str, typer.Option(help="The task to personalize.")] = DEMO_TASK,
    max_tokens: Annotated[int, typer.Option(min=1, max=100_000)] = 300,
    steer: Annotated[SteerLevel, typer.Option(help="Steering of the third text.")] = GenerationOptions().steer,
    best_of: Annotated[int, typer.Option(min=1, max=16, help="Candidates for the steered text, reranked.")] = 1,
    opening: Annotated[OpeningChoice, typer.Option(help="bev's opening in the steered text: by code or prefilled.")] = OpeningChoice.CODE,
) -> None:
    """Offline demo: infer bev's profile from bundled texts, then write the task zero-shot, with the profile in the
    prompt only, and with the profile steered — and show bev's measured habits in each."""
    check_text(task, "--task")
    source = resources.files("hyperalign") / "data" / "demo_user.jsonl"
    with resources.as_file(source) as path:
        examples = read_examples(path)
    ha = client()
    unsteered = GenerationOptions(max_tokens=max_tokens, steer=SteerLevel.OFF)
    say(f"Backend: {ha.client.backend.name} · model: {ha.client.model} · {len(examples)} example texts by 'bev'")
    profile = infer_with_status(ha, "bev", examples, {}, InferenceOptions())
    print_markdown(profile.to_markdown(), plain=False)
    with err.status("Writing the task zero-shot, with the profile, and with the profile steered…"):
        zero_shot = ha.generate(None, task, Strategy.ZERO_SHOT, options=unsteered).text
        prompt_only = ha.generate(profile, task, Strategy.HYPERALIGN, options=unsteered).text
        steered = ha.generate(profile, task, Strategy.HYPERALIGN, options=unsteered.model_copy(
            update={"steer": steer, "best_of": best_of, "opening": opening.value}))
    table = Table(title=Text(terminal_safe(f"Task: {task}")), show_lines=True, expand=True)
    reranked = f", best of {best_of}" if best_of > 1 else ""
    columns = [("zero-shot (task only)", zero_shot), ("hyperalign, profile in the prompt only", prompt_only),
               (f"hyperalign, steered ({steer.value}{reranked})", steered.text)]
    for title, text in columns:
        score = facts_adherence(check_facts(text, profile.facts)) or 0.0
        table.add_column(f"{title}\nadherence to bev's measured style: {score:.2f}", ratio=1)
    table.add_row(*(Text(terminal_safe(text)) for _, text in columns))
    out.print(table, markup=False, highlight=False)
    how = {lever.metric: lever.how for lever in steered.levers}
    out.print(_habits(profile, [text for _, text in columns], how), markup=False, highlight=False)
    levers = " · ".join(str(lever) for lever in steered.levers)
    say("Levers: " + (levers or "none (none of bev's habits asked for one)"))
    say(f"Adherence: how close each text's numbers are to bev's over her {len(profile.facts)} measured style facts, "
        "exp(-mean(z²)/2) with z in her own spreads (1 = on all her means; 0.61 = one spread off on average).")
    report_usage(ha)
