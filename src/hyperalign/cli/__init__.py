"""The `hyperalign` command: a thin shell over the library."""

from . import batch, core, demo, evaluate, profiles, serve, train  # noqa: F401  (importing them registers their commands)
from .common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
