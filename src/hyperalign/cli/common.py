"""What every command shares: the LLM options, the error contract, consoles and terminal-safe output.

The error contract, in one place (`ContractGroup.main`), for every command and sub-command:
- bad input or an environment fault (`HyperAlignError`, a usage error, an OSError) -> one line on stderr naming the
  input and what to do, exit code 2, whatever the terminal width;
- a bug (any other exception) -> one line with the path of a log file holding the traceback, exit code 1;
- Ctrl-C -> exit code 130; finished results are kept by the writers themselves (they persist as they go).
Text that came from a user, a file or a model is made terminal-safe before it is printed: escape sequences and other
control characters never reach the terminal raw."""

from __future__ import annotations

import contextlib
import datetime
import functools
import inspect
import logging
import os
import re
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text
from typer.core import TyperGroup
from typer.exceptions import TyperException

from ..api import HyperAlign
from ..config import Settings, load_settings
from ..errors import HyperAlignError
from ..redaction import redact_argv, redact_text

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# C0 controls but newline and tab, DEL, C1 controls, and the bidirectional overrides that can make a line read
# differently from what it is ("Trojan Source"). ESC goes with them, so no escape sequence survives.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def terminal_safe(text: str) -> str:
    """Text to print: every control character shown as an escape (\\x1b) instead of acting on the terminal; a lone
    surrogate (an undecodable byte in a file name) as its code, instead of failing to encode."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}",
                       text)


def one_line(text: str) -> str:
    return " ".join(terminal_safe(text).split())


def echo(text: str = "") -> None:
    """Print user- or model-derived text to stdout, terminal-safe."""
    sys.stdout.write(terminal_safe(text) + "\n")


def echo_json(text: str) -> None:
    """Print a JSON document to stdout, terminal-safe and still valid JSON: the characters JSON may carry raw but a
    terminal must not see (DEL, C1 controls, bidirectional overrides; C0 controls are escaped already) become
    \\uXXXX escapes, which are only possible inside strings, where they mean the same character."""
    sys.stdout.write(_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def say_error(message: str) -> None:
    err.print(Text("Error: ", style="bold red") + Text(one_line(redact_text(message))), highlight=False)


def say_warning(message: str) -> None:
    err.print(Text("Warning: ", style="yellow") + Text(one_line(redact_text(message))), highlight=False)


def say(message: str, style: str = "dim") -> None:
    """A line on stderr for the person running the command: never a credential, wherever the text came from (a
    store URL in a database error, a key an endpoint echoed)."""
    err.print(Text(one_line(redact_text(message)), style=style), highlight=False)


class _WarningHandler(logging.Handler):
    """The library's warnings (truncated examples, an unwritable cache) as one line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            say_warning(record.getMessage())


def _install_warning_handler() -> None:
    logger = logging.getLogger("hyperalign")
    if not any(isinstance(h, _WarningHandler) for h in logger.handlers):
        logger.addHandler(_WarningHandler(level=logging.WARNING))
        logger.propagate = False


def crash_log_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hyperalign" / "logs"


def write_crash_log(exc: BaseException, argv: Sequence[str]) -> Path | None:
    """The traceback of a bug, for the person to read and report: readable by them only (0600, in a 0700 folder
    when it is created here), its command line and text without any secret (`redact_argv`, `redact_text`). Falls
    back to the temp folder, where the name is unpredictable and the file created exclusively."""
    now = datetime.datetime.now()
    body = (f"hyperalign {' '.join(redact_argv(argv))}\n{now.isoformat()}\n\n"
            + redact_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))))
    for folder in (crash_log_dir(), Path(tempfile.gettempdir())):
        try:
            if not folder.exists():
                folder.parent.mkdir(parents=True, exist_ok=True)
                folder.mkdir(mode=0o700, exist_ok=True)
            descriptor, name = tempfile.mkstemp(prefix=f"crash-{now:%Y%m%d-%H%M%S}-{os.getpid()}-", suffix=".log",
                                                dir=folder)  # O_EXCL, mode 0600
            with os.fdopen(descriptor, "w", encoding="utf-8", errors="backslashreplace") as log:
                log.write(body)
            return Path(name)
        except OSError:
            continue
    return None


def _usage_hint(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    return f" (see `{ctx.command_path} --help`)" if ctx is not None else ""


class ContractGroup(TyperGroup):
    """The `hyperalign` command group: runs a command and applies the error contract (module docstring)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        _install_warning_handler()
        # The terminal's width as this command starts (COLUMNS first), not as it was when the module was imported.
        out.width = err.width = shutil.get_terminal_size().columns
        try:
            code = super().main(args=argv, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                                **extra)
            code = code if isinstance(code, int) else 0
            if code == 130:  # typer turns Ctrl-C into exit code 130 before it reaches the handlers below
                say("Interrupted; finished results are kept.", style="")
        except typer.Abort:
            say("Aborted; finished results are kept.", style="")
            code = 130
        except TyperException as exc:  # usage errors (typer's click): a bad option, a missing argument, no command
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                out.print(ctx.get_help(), markup=False, highlight=False)
            else:
                format_message = getattr(exc, "format_message", None)
                say_error((format_message() if callable(format_message) else str(exc)) + _usage_hint(exc))
            code = int(getattr(exc, "exit_code", 2))
        except HyperAlignError as exc:
            say_error(str(exc))
            code = 2
        except KeyboardInterrupt:
            say("Interrupted; finished results are kept.", style="")
            code = 130
        except MemoryError:
            say_error("out of memory; use fewer or shorter inputs, or lower --concurrency")
            code = 2
        except OSError as exc:  # an environment fault the boundaries did not name: still the user's to fix
            where = f": {exc.filename}" if exc.filename else ""
            say_error(f"{exc.strerror or exc}{where}")
            code = 2
        except Exception as exc:  # a bug: never a bare traceback on the terminal
            log = write_crash_log(exc, argv)
            where = f"; the traceback is in {log}" if log else ""
            say_error(f"internal error (a bug in hyperalign): {type(exc).__name__}: {exc}{where}. Please report it.")
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=ContractGroup,
    help="Hypothesis-driven personalization of LLM outputs (HyPerAlign).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

LLM = "LLM options (also accepted before the command)"


def _print_version(value: bool) -> None:
    if value:
        echo(f"hyperalign {package_version('hyperalign')}")
        raise typer.Exit()


@app.callback()
def options(
    ctx: typer.Context,
    backend: Annotated[Optional[str], typer.Option(rich_help_panel=LLM, help="LLM backend: embedded (default), openai, fake, plugins.")] = None,
    model: Annotated[Optional[str], typer.Option(rich_help_panel=LLM, help="Model name (openai) or GGUF path (embedded).")] = None,
    base_url: Annotated[Optional[str], typer.Option(rich_help_panel=LLM, help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")] = None,
    api_key: Annotated[Optional[str], typer.Option(rich_help_panel=LLM, help="API key (default: OPENAI_API_KEY).", show_default=False)] = None,
    cache: Annotated[Optional[str], typer.Option(rich_help_panel=LLM, help="SQLite file caching every completion.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache/", rich_help_panel=LLM, help="Call the LLM even for a cached request.")] = False,
    concurrency: Annotated[Optional[int], typer.Option(min=1, rich_help_panel=LLM, help="Parallel LLM calls.")] = None,
    context_tokens: Annotated[Optional[int], typer.Option(min=256, rich_help_panel=LLM, help="The model's context, to fit examples into it.")] = None,
    max_repairs: Annotated[Optional[int], typer.Option(min=0, max=10, rich_help_panel=LLM, help="Repair turns after an invalid structured output (default 1).")] = None,
    timeout: Annotated[Optional[float], typer.Option(min=0.001, max=3600, rich_help_panel=LLM, help="Seconds per request to an endpoint before it is retried (default 120).")] = None,
    tokens_per_minute: Annotated[Optional[int], typer.Option(min=1, rich_help_panel=LLM, help="Budget of tokens per minute (a provider's TPM limit): calls wait instead of drawing 429s.")] = None,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print hyperalign's version and exit.")] = False,
) -> None:
    """Options shared by every command (also accepted after the command's name)."""
    ctx.obj = dict(
        backend=backend,
        model=model,
        base_url=base_url,
        api_key=api_key,
        cache=cache,
        no_cache=no_cache or None,
        concurrency=concurrency,
        context_tokens=context_tokens,
        max_repairs=max_repairs,
        timeout=timeout,
        tokens_per_minute=tokens_per_minute,
    )


_settings: ContextVar[dict[str, Any]] = ContextVar("hyperalign_cli_settings")


def cli_command(function: Callable[..., Any], group: typer.Typer | None = None,
                name: str | None = None) -> Callable[..., Any]:
    """Register a command that also takes the LLM options (before or after the command name)."""
    shared = [p for p in inspect.signature(options, eval_str=True).parameters.values()
              if p.name not in ("ctx", "version")]  # `--version` belongs to `hyperalign` alone

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx: typer.Context = kwargs.pop("_typer_context")
        given = {p.name: kwargs.pop(p.name) for p in shared}
        root = ctx.find_root().obj or {}
        _settings.set({**root, **{k: v for k, v in given.items() if v not in (None, False)}})
        return function(*args, **kwargs)

    own = inspect.signature(function, eval_str=True)
    context = inspect.Parameter("_typer_context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    extra = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in shared] + [context]
    signature = own.replace(parameters=[*own.parameters.values(), *extra])
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    # Evaluated objects, not strings: typer resolves string annotations in the command's module, not this one.
    wrapper.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    return (group or app).command(name)(wrapper)


def settings() -> Settings:
    """The settings for this command: flags, then HYPERALIGN_* variables, then the settings file."""
    given = dict(_settings.get({}))
    return load_settings(**{k: v for k, v in given.items() if v is not None})


def client() -> HyperAlign:
    resolved = settings()
    notice = resolved.file_notice()
    if notice:
        say(notice)
    return HyperAlign.from_settings(resolved)


def report_usage(ha: HyperAlign) -> None:
    say(ha.stats.summary())


def progress_bars() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )
