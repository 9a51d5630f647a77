"""`hyperalign eval ...` and `hyperalign report RUN`: thin shells over hyperalign.eval. The evaluation stack
(scikit-learn, matplotlib) is the `[eval]` extra: it is imported when an evaluation runs, so every other command
starts without it, and without it these commands say how to install it."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markdown import Markdown

from ..api import HyperAlign
from ..errors import InputError
from ..llm.loop import run_sync
from .common import (
    app,
    cli_command,
    client,
    out,
    progress_bars,
    report_usage,
    say,
    say_warning,
    terminal_safe,
)

if TYPE_CHECKING:
    from ..eval.runs import ProgressHook, RunFolder

EVAL_INSTALL_HINT = "pip install 'hyperalign[eval]'"
PROMPT_STYLES = ("auto", "news", "row")


def require_eval_stack() -> None:
    missing = [name for name in ("sklearn", "matplotlib", "numpy") if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"evaluations need the eval extra ({', '.join(missing)} missing): {EVAL_INSTALL_HINT}")


eval_app = typer.Typer(help="Evaluate personalization against baselines.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
JUDGE = "Judge (default: the generation backend and model)"
JudgeOption = Annotated[Optional[str], typer.Option(rich_help_panel=JUDGE)]


@contextmanager
def stage_bars() -> Iterator[ProgressHook]:
    with progress_bars() as progress:
        def stage(name: str, total: int) -> Callable[[], None]:
            task = progress.add_task(name, total=total)
            return lambda: progress.advance(task)

        yield stage


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def run_and_report(start: Callable[[RunFolder, ProgressHook], Any], ha: HyperAlign, out_dir: Path) -> None:
    """Run an evaluation into its (resumable) folder, then write and show its report and the session's usage."""
    from ..eval.report import write_report
    from ..eval.runs import RunFolder

    folder = RunFolder(out_dir)
    with stage_bars() as stage:
        results = run_sync(start(folder, stage).run())
    show_report(write_report(folder, results))
    judge = results.get("judge") if isinstance(results, dict) else None
    if isinstance(judge, dict) and judge.get("judged_by_position"):
        say_warning(f"the judge chose by position, not by text (consistent across orders in "
                    f"{judge['position_consistency']:.0%} of pairs): its win rates carry little signal")
    report_usage(ha)


def show_report(path: Path, extra: str = "") -> None:
    out.print(Markdown(terminal_safe(path.read_text(encoding="utf-8"))))
    say(f"Report: {path}{extra}", style="")


def judge_client(ha: HyperAlign, backend: str | None, model: str | None, base_url: str | None) -> HyperAlign:
    if not (backend or model or base_url):
        return ha
    store = ha.client.cache.path if ha.client.cache else False
    return HyperAlign.from_config(backend or ha.client.backend.name, model=model, base_url=base_url,
                                  cache=str(store) if store else False)


def _setup(
    max_tokens: int, judge: str, judge_backend: str | None, judge_model: str | None, judge_base_url: str | None,
    methods: str, **fields: Any,
) -> tuple[HyperAlign, HyperAlign, Any]:
    require_eval_stack()
    from ..eval.authorship.run import AuthorshipConfig

    ha = client()
    judge_ha = judge_client(ha, judge_backend, judge_model, judge_base_url)
    config = AuthorshipConfig(
        methods=comma_list(methods), max_tokens=max_tokens,
        judge=None if judge == "none" else judge, backend=ha.client.backend.name, model=ha.client.model,
        judge_backend=judge_ha.client.backend.name, judge_model=judge_ha.client.model, **fields,
    )
    return ha, judge_ha, config


def authorship(
    corpus: Annotated[Path, typer.Option(help="Author folders (CCAT50 layout) or JSONL {author, prompt?, text, split?}.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder; rerunning resumes it.")],
    methods: Annotated[str, typer.Option(help="Comma-separated: hyperalign[:options], few-shot[:best-of=N], zero-shot, ticl[:epochs=E], import:FILE.jsonl.")] = "hyperalign,few-shot,zero-shot",
    authors: Annotated[int, typer.Option(min=2)] = 10,
    shots: Annotated[int, typer.Option(min=1)] = 7,
    prompts_per_author: Annotated[int, typer.Option(min=1)] = 3,
    seed: int = 0,
    prompt_style: Annotated[str, typer.Option(help="auto | news | row")] = "auto",
    max_tokens: Annotated[int, typer.Option(min=1, help="Per generated text.")] = 600,
    judge: Annotated[str, typer.Option(help="Judge folder or built-in name; 'auto': same-author where the judge backend returns log-probabilities, else style; 'none' to skip.")] = "auto",
    judge_against: Annotated[Optional[str], typer.Option(help="Judge only the pairs with this method (fewer judge calls); 'validity': only the judge's own check, the real text vs zero-shot.", rich_help_panel=JUDGE)] = None,
    judge_backend: JudgeOption = None,
    judge_model: JudgeOption = None,
    judge_base_url: JudgeOption = None,
) -> None:
    """Authorship evaluation: attribution, pairwise judge and cost for each method."""
    from ..eval.authorship.run import VALIDITY_ONLY, AuthorshipRun

    if prompt_style not in PROMPT_STYLES:
        raise typer.BadParameter("--prompt-style must be auto, news or row")
    if judge_against is not None and judge_against not in [*comma_list(methods), VALIDITY_ONLY]:
        raise typer.BadParameter(f"--judge-against {judge_against!r} is neither one of --methods nor "
                                 f"'{VALIDITY_ONLY}'")
    ha, judge_ha, config = _setup(
        max_tokens, judge, judge_backend, judge_model, judge_base_url, corpus=str(corpus), methods=methods,
        authors=authors, shots=shots, prompts_per_author=prompts_per_author, seed=seed, prompt_style=prompt_style,
        judge_against=judge_against,
    )
    run_and_report(lambda folder, stage: AuthorshipRun(config, ha, judge_ha, folder, stage), ha, out_dir)


cli_command(authorship, group=eval_app)


def ablation(
    corpus: Annotated[Path, typer.Option(help="As for `eval authorship`.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Ablation folder: one run per shots value inside.")],
    shots: Annotated[str, typer.Option(help="Comma-separated shots values.")] = "1,2,4,7",
    methods: Annotated[str, typer.Option(help="hyperalign variants (and baselines) to compare.")] = "hyperalign,hyperalign:select,hyperalign:budget=3",
    authors: Annotated[int, typer.Option(min=2)] = 5,
    prompts_per_author: Annotated[int, typer.Option(min=1)] = 2,
    seed: int = 0,
    max_tokens: Annotated[int, typer.Option(min=1)] = 600,
    judge: Annotated[str, typer.Option(help="As for `eval authorship`.")] = "auto",
    judge_backend: JudgeOption = None,
    judge_model: JudgeOption = None,
    judge_base_url: JudgeOption = None,
) -> None:
    """Ablation over shots, hypothesis selection and budget: attribution and judge win rate vs one-pass hyperalign."""
    try:
        shots_values = sorted({int(v) for v in shots.split(",") if v.strip()})
    except ValueError:
        raise typer.BadParameter("--shots takes comma-separated whole numbers, e.g. 1,2,4,7") from None
    if not shots_values or min(shots_values) < 1:
        raise typer.BadParameter("--shots values must be >= 1")
    ha, judge_ha, config = _setup(
        max_tokens, judge, judge_backend, judge_model, judge_base_url, corpus=str(corpus), methods=methods,
        authors=authors, shots=shots_values[0], prompts_per_author=prompts_per_author, seed=seed,
        judge_against="hyperalign" if "hyperalign" in comma_list(methods) else None,
    )
    from ..eval.ablation.run import run_ablation
    from ..eval.runs import RunFolder

    folder = RunFolder(out_dir)
    with stage_bars() as stage:
        run_sync(run_ablation(config, shots_values, ha, judge_ha, folder, stage))
    show_report(folder.file("report.md"), f" · plot: {folder.file('plots/ablation.png')}")
    report_usage(ha)


cli_command(ablation, group=eval_app)


def deliberative(
    harmful: Annotated[str, typer.Option(help="Harmful behaviours: PATH[,PATH] (TXT lines, JSONL {prompt}, CSV, JSON list).")],
    templates: Annotated[Path, typer.Option(help="Jailbreak templates (JSON list, TXT, JSONL or CSV).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder; rerunning resumes it.")],
    benign: Annotated[Optional[Path], typer.Option(help="Benign controls (default: the 60 shipped with hyperalign).")] = None,
    users: Annotated[int, typer.Option(min=1)] = 20,
    shots: Annotated[int, typer.Option(min=1)] = 4,
    requests_per_user: Annotated[int, typer.Option(min=1)] = 3,
    benign_requests_per_user: Annotated[int, typer.Option(min=1)] = 2,
    methods: Annotated[str, typer.Option(help="vanilla, spec, hyperalign; spec:cases and hyperalign:cases write the safety specification as worked cases.")] = "vanilla,spec,hyperalign",
    seed: int = 0,
    max_tokens: Annotated[int, typer.Option(min=1)] = 700,
    judge_backend: JudgeOption = None,
    judge_model: JudgeOption = None,
    judge_base_url: JudgeOption = None,
) -> None:
    """Deliberative alignment: do hypotheses about the user make safe answers more helpful, and not harmful?"""
    require_eval_stack()
    from ..eval.deliberative.run import (
        DeliberativeConfig,
        DeliberativeRun,
        default_benign_path,
    )

    ha = client()
    judge_ha = judge_client(ha, judge_backend, judge_model, judge_base_url)
    config = DeliberativeConfig(
        harmful=comma_list(harmful), templates=str(templates),
        benign=str(benign) if benign else default_benign_path(), methods=comma_list(methods),
        users=users, shots=shots, requests_per_user=requests_per_user, benign_requests_per_user=benign_requests_per_user,
        seed=seed, max_tokens=max_tokens, backend=ha.client.backend.name, model=ha.client.model,
        judge_backend=judge_ha.client.backend.name, judge_model=judge_ha.client.model,
    )
    run_and_report(lambda folder, stage: DeliberativeRun(config, ha, judge_ha, folder, stage), ha, out_dir)


cli_command(deliberative, group=eval_app)


def report(run: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.")]) -> None:
    """Re-render a run's report.md, results.csv and plots from its results.json."""
    require_eval_stack()
    from ..eval.report import write_report
    from ..eval.runs import RunFolder

    if not run.is_dir():
        raise InputError(f"{run}: not a run folder (no such directory)")
    show_report(write_report(RunFolder(run)))


cli_command(report)
