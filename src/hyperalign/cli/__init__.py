"""The `hyperalign` command: a thin shell over the library."""

from . import core, evaluate, profiles, train
from .common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
