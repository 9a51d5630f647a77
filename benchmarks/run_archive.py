"""Run folders kept as one compressed file: benchmarks/runs/NAME.tar.gz holds the folder NAME/ (written at checkpoints
by contrast_run.py and steering_run.py, never committed file by file). Every script that reads a finished run takes
either the folder or its archive (`opened_run`)."""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SUFFIX = ".tar.gz"


def archive(folder: Path, target: Path) -> None:
    """The run folder as one .tar.gz, replaced atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    partial.replace(target)


def unpack(target: Path, folder: Path) -> None:
    """Unpack an archive's run folder beside `folder` (an archive holds one folder, named as the run)."""
    with tarfile.open(target, "r:gz") as tar:
        tar.extractall(folder.parent, filter="data")


@contextmanager
def opened_run(path: Path) -> Iterator[Path]:
    """A finished run's folder: `path` itself, or unpacked into a temporary folder from `path` when that is an
    archive, or from `path`.tar.gz when the folder is not there (a run committed as its archive)."""
    path = Path(path)
    if not path.exists() and Path(f"{path}{SUFFIX}").is_file():
        path = Path(f"{path}{SUFFIX}")
    if path.is_dir() or not path.name.endswith(SUFFIX):
        yield path
        return
    with tempfile.TemporaryDirectory() as scratch:
        unpack(path, Path(scratch) / "run")
        (folder,) = [p for p in Path(scratch).iterdir() if p.is_dir()]
        yield folder
