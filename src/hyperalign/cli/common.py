"""What every command shares: the LLM options, the error contract (one message, exit 2), consoles."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ..api import HyperAlign
from ..errors import HyperAlignError

app = typer.Typer(
    help="Hypothesis-driven personalization of LLM outputs (HyPerAlign).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

LLM = "LLM options (also accepted before the command)"
@app.callback()
def options(
    ctx: typer.Context,
    backend: Annotated[Optional[str], typer.Option(rich_help_panel=LLM, help="LLM backend: embedded (default), openai, fake, plugins.")] = None,
    model: Annotated[Optional[str], typer.Option(rich_help_panel=LLM, help="Model name (openai) or GGUF path (embedded).")] = None,
    base_url: Annotated[Optional[str], typer.Option(rich_help_panel=LLM, help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")] = None,
    api_key: Annotated[Optional[str], typer.Option(rich_help_panel=LLM, help="API key (default: OPENAI_API_KEY).", show_default=False)] = None,
    cache: Annotated[Optional[str], typer.Option(rich_help_panel=LLM, help="SQLite file caching every completion.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache/", rich_help_panel=LLM, help="Call the LLM even for a cached request.")] = False,
    concurrency: Annotated[Optional[int], typer.Option(rich_help_panel=LLM, help="Parallel LLM calls.")] = None,
    context_tokens: Annotated[Optional[int], typer.Option(rich_help_panel=LLM, help="The model's context, to fit examples into it.")] = None,
) -> None:
    ctx.obj = dict(
        backend=backend,
        model=model,
        base_url=base_url,
        api_key=api_key,
        cache=cache,
        cache_off=no_cache,
        concurrency=concurrency,
        context_tokens=context_tokens,
    )


_settings: ContextVar[dict[str, Any]] = ContextVar("hyperalign_cli_settings")


def error_contract(function: Callable[..., Any]) -> Callable[..., Any]:
    """Known faults become one line on stderr and exit code 2, never a traceback; Ctrl-C keeps finished work."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except HyperAlignError as exc:
            err.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            err.print(f"[bold red]Error:[/] {escape(str(exc.strerror or exc))}: {exc.filename or ''}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("Interrupted; finished results are kept.")
            raise typer.Exit(130) from None

    return guarded


def cli_command(function: Callable[..., Any], group: typer.Typer | None = None) -> Callable[..., Any]:
    """Register a command that also takes the LLM options, and whose known faults become one line on stderr
    and exit code 2, never a traceback."""
    shared = [p for p in inspect.signature(options, eval_str=True).parameters.values() if p.name != "ctx"]

    guarded = error_contract(function)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx: typer.Context = kwargs.pop("_typer_context")
        given = {p.name: kwargs.pop(p.name) for p in shared}
        _settings.set({**(ctx.obj or {}), **{k: v for k, v in given.items() if v not in (None, False)}})
        return guarded(*args, **kwargs)

    own = inspect.signature(function, eval_str=True)
    context = inspect.Parameter("_typer_context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    extra = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in shared] + [context]
    wrapper.__signature__ = own.replace(parameters=[*own.parameters.values(), *extra])  # type: ignore[attr-defined]
    # Evaluated objects, not strings: typer resolves string annotations in the command's module, not this one.
    wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}
    return (group or app).command()(wrapper)


def client() -> HyperAlign:
    settings = dict(_settings.get())
    cache_off, cache = settings.pop("cache_off"), settings.pop("cache")
    return HyperAlign.from_config(**settings, cache=False if cache_off else cache)


def report_usage(ha: HyperAlign) -> None:
    err.print(f"[dim]{escape(ha.stats.summary())}[/]", highlight=False)


def progress_bars() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )
