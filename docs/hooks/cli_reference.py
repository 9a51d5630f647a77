"""MkDocs hook: the CLI reference page, generated at build time from the typer app (`hyperalign.cli:app`) by typer's
own documentation generator (`typer MODULE utils docs`), so every command and option on the page is the one the code
defines."""

from __future__ import annotations

import subprocess
import sys

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

PAGE = "reference/cli.md"
INTRO = ("Every command, argument and option, generated from the code when the site is built. The LLM options "
         "(`--backend`, `--model`, ...) are accepted before or after the command name. Guides: [CLI](../guides/cli.md).\n")


def cli_reference() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "typer", "hyperalign.cli", "utils", "docs", "--name", "hyperalign",
         "--title", "CLI reference"],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0 or not done.stdout.startswith("# CLI reference"):
        raise PluginError(f"typer could not document hyperalign.cli: {done.stderr.strip() or done.stdout[:200]}")
    title, _, rest = done.stdout.partition("\n")
    return f"{title}\n\n{INTRO}\n{rest}"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, PAGE, content=cli_reference()))
    return files
