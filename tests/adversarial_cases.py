"""The adversarial pass: hostile inputs and faults given to the real `hyperalign` command, one process each, as a new
and hostile user would. Shared by tests/test_adversarial.py (CI) and benchmarks/adversarial_pass.py (the counts).

Every case says what a correct program does: `reject` (exit 2, exactly one line starting "Error:", naming the
input — `fragment` — and no traceback) or `accept` (exit 0). A `check` inspects the case's folder afterwards for
lost or damaged work. Outcomes other than "ok": traceback, bug (exit 1), hang, silent_accept, unexpected_reject,
wrong_message, multi_line, lost_work, leak (a secret or a raw escape sequence in the output), crashed (other code).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXAMPLES = [
    {"prompt": "Note about the gate", "text": "Right then. Somebody left the gate open again. Lock it. No excuses."},
    {"text": "Right then. Bulb day is Saturday, nine sharp. Bring gloves and a trowel. Tea is on me."},
    {"prompt": "Seed swap", "text": "Right then. Seeds on the table by ten. Label them or they go in the bin."},
]
TASKS = [{"id": f"t{i}", "task": f"Write a note about chore number {i}."} for i in range(6)]
TIMEOUT_S = 60
# The program under test: this checkout's `hyperalign`, or another build's (e.g. an older version, to compare).
COMMAND = os.environ.get("HYPERALIGN_UNDER_TEST", f"{sys.executable} -m hyperalign").split()
# Character devices a case may name, with their (major, minor) numbers. A build that replaces its output atomically
# turns one into a regular file when run as root (as CI is): run_case reports that as lost work and, as root, puts the
# device back, so one bad build cannot change the outcome of every later case (or of the machine's other programs).
DEVICES = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7), "/dev/urandom": (1, 9)}
# The device the "-o a device" cases write to: /dev/null unless an earlier program already broke it.
OUTPUT_DEVICE = next((p for p in ("/dev/null", "/dev/full") if Path(p).is_char_device()), "/dev/null")


@dataclass
class Outcome:
    code: int | None
    stdout: str
    stderr: str


Check = Callable[[Path, Outcome], "str | None"]


@dataclass
class Case:
    name: str
    category: str
    args: list[str | bytes]
    expect: str = "reject"
    fragment: str | None = None
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    check: Check | None = None
    forbidden: list[str] = field(default_factory=list)
    file_size_limit: int | None = None
    fake: bool = True  # run with --backend fake (set through HYPERALIGN_BACKEND)


# --- fixtures -----------------------------------------------------------------------------------------------------

def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def base_files(d: Path) -> None:
    write(d / "ex.jsonl", jsonl(EXAMPLES))
    write(d / "tasks.jsonl", jsonl(TASKS))
    write(d / "p.json", valid_profile_json())


_PROFILE: str | None = None


def valid_profile_json() -> str:
    global _PROFILE
    if _PROFILE is None:
        from hyperalign import Profile, UserExample
        from hyperalign.pipeline.evidence import check
        from hyperalign.profiles.model import examples_hash

        examples = [UserExample(**e) for e in EXAMPLES]
        hypotheses = [check("writing_style", "Opens every note with 'Right then.'", ["Right then. Somebody left"],
                            examples),
                      check("personality", "Is blunt about rules.", ["Lock it. No excuses."], examples)]
        profile = Profile(user_id="bev", attributes={"role": "garden organiser"}, hypotheses=hypotheses,
                          examples_hash=examples_hash(examples), n_examples=len(examples), backend="fake",
                          model="fake-model", prompt_version="infer_hypotheses.v1")
        assert all(h.supported for h in profile.hypotheses)
        _PROFILE = profile.to_json()
    return _PROFILE


def profile_with(**changes: Any) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        data = json.loads(valid_profile_json())
        for key, value in changes.items():
            if value is DELETE:
                data.pop(key, None)
            else:
                data[key] = value
        write(d / "bad.json", json.dumps(data))
    return setup


def profile_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        data = json.loads(valid_profile_json())
        edit(data)
        write(d / "bad.json", json.dumps(data))
    return setup


DELETE = object()


def examples_line(line: str) -> Callable[[Path], None]:
    return lambda d: write(d / "bad.jsonl", jsonl(EXAMPLES[:1]) + line + "\n")


def tasks_line(line: str) -> Callable[[Path], None]:
    return lambda d: write(d / "bad.jsonl", jsonl(TASKS[:1]) + line + "\n")


def fifo(name: str) -> Callable[[Path], None]:
    return lambda d: os.mkfifo(d / name)


def unix_socket(name: str) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(d / name))  # left bound: the file stays a socket for the case's lifetime
    return setup


def sparse(name: str, size: int) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        with open(d / name, "wb") as f:
            f.truncate(size)
    return setup


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        for s in setups:
            s(d)
    return setup


def unchanged(name: str, content: Callable[[Path], bytes] | None = None) -> Check:
    """The named input must be byte-for-byte what the setup wrote."""
    def check(d: Path, _: Outcome) -> str | None:
        expected = (d / f".orig-{name}").read_bytes()
        actual = (d / name).read_bytes() if (d / name).exists() else None
        return None if actual == expected else f"{name} was changed or removed"
    return check


def snapshot(name: str) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        (d / f".orig-{name}").write_bytes((d / name).read_bytes())
    return setup


def no_temp_files(d: Path, _: Outcome) -> str | None:
    stray = [p.name for p in d.rglob("*.tmp")] + [p.name for p in d.glob(".*.tmp")]
    return f"stray temporary files: {stray}" if stray else None


def out_rows(name: str, expected: int) -> Check:
    def check(d: Path, _: Outcome) -> str | None:
        path = d / name
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        ids = [json.loads(line)["id"] for line in lines if line.strip()]
        if len(ids) != expected or len(set(ids)) != expected:
            return f"{name} holds {len(ids)} rows ({len(set(ids))} distinct), expected {expected}"
        return None
    return check


# --- the cases ----------------------------------------------------------------------------------------------------

def cases() -> list[Case]:
    c: list[Case] = []
    add = c.append
    infer = ["infer", "bad.jsonl", "--user", "bev"]

    # Text: characters no file or encoder can hold, parser bombs, JSON edge cases, keys and types.
    for name, line, fragment in [
        ("lone surrogate in text", '{"text": "abc \\udfff def"}', "lone surrogate"),
        ("lone surrogate in prompt", '{"prompt": "\\ud83d", "text": "hello there"}', "lone surrogate"),
        ("lone surrogate in a key", '{"te\\udc00xt": "hello"}', "lone surrogate"),
        ("deeply nested array", '{"text": "x", "prompt": ' + "[" * 50000 + "]" * 50000 + "}", "line 2"),
        ("deeply nested object", '{"text": ' + '{"a":' * 30000 + "1" + "}" * 30000 + "}", "line 2"),
        ("huge integer", '{"text": "x", "prompt": ' + "9" * 6000 + "}", "line 2"),
        ("NaN", '{"text": NaN}', "NaN"),
        ("Infinity", '{"text": "a", "prompt": -Infinity}', "Infinity"),
        ("duplicate key", '{"text": "a a a a a", "text": "b b b b b"}', "duplicate key"),
        ("misspelt key", '{"txt": "hello there"}', "unknown field 'txt'"),
        ("extra key", '{"text": "hello there", "date": "2024-01-01"}', "unknown field 'date'"),
        ("text is a number", '{"text": 42}', "text"),
        ("text is null", '{"text": null}', "text"),
        ("text is blank", '{"text": "   \\n\\t "}', "no text"),
        ("prompt is a list", '{"prompt": ["a"], "text": "hello"}', "prompt"),
        ("line is an array", '["text", "hello"]', "expected a JSON object"),
        ("line is a string", '"hello"', "expected a JSON object"),
        ("trailing garbage", '{"text": "hello"} extra', "not valid JSON"),
        ("truncated line", '{"text": "hel', "not valid JSON"),
    ]:
        add(Case(f"examples: {name}", "text", infer, fragment=fragment, setup=examples_line(line)))
    add(Case("examples: raw U+2028, U+2029, U+0085 inside strings are legal JSON", "text", infer, expect="accept",
             setup=lambda d: write(d / "bad.jsonl", jsonl([{"text": "one\u2028two\u2029three\x85four, said Bev."}]))))
    add(Case("examples: BOM and CRLF line endings", "text", infer, expect="accept",
             setup=lambda d: write(d / "bad.jsonl", b"\xef\xbb\xbf" + jsonl(EXAMPLES).replace("\n", "\r\n").encode())))
    add(Case("examples: NUL byte", "text", infer, fragment="NUL",
             setup=lambda d: write(d / "bad.jsonl", b'{"text": "a"}\n\x00\x00\n')))
    add(Case("examples: invalid UTF-8 (Latin-1 file)", "text", infer, fragment="UTF-8",
             setup=lambda d: write(d / "bad.jsonl", '{"text": "caf\u00e9 cr\u00e8me"}\n'.encode("latin-1"))))
    add(Case("examples: only blank lines", "text", infer, fragment="bad.jsonl",
             setup=lambda d: write(d / "bad.jsonl", "\n\n   \n")))
    for name, user, fragment in [
        ("empty --user", "", "--user"), ("blank --user", "   ", "--user"), ("--user with a newline", "a\nb", "control"),
        ("--user with an escape sequence", "a\x1b[2Jb", "control"), ("--user of 300 characters", "u" * 300, "300"),
    ]:
        add(Case(f"argv: {name}", "text", ["infer", "ex.jsonl", "--user", user], fragment=fragment, setup=base_files))
    add(Case("argv: undecodable bytes in --user", "text", ["infer", "ex.jsonl", "--user", b"bev\xff\xfe"],
             fragment="lone surrogate", setup=base_files))
    add(Case("argv: undecodable bytes in a task", "text", ["generate", "--strategy", "zero-shot", b"Write \xff now"],
             fragment="lone surrogate"))
    add(Case("argv: undecodable bytes in --attribute", "text",
             ["infer", "ex.jsonl", "--user", "bev", "--attribute", b"role=\xffkeeper"], fragment="lone surrogate",
             setup=base_files))
    add(Case("argv: empty task", "text", ["generate", "--strategy", "zero-shot", "  "], fragment="task is empty"))
    gen_tasks = ["generate", "--strategy", "zero-shot", "--tasks", "bad.jsonl", "-o", "out.jsonl"]
    for name, line, fragment in [
        ("id is an object", '{"id": {"x": 1}, "task": "Write."}', "id"),
        ("id is null", '{"id": null, "task": "Write."}', "id"),
        ("id is true", '{"id": true, "task": "Write."}', "id"),
        ("id is a fraction", '{"id": 1.5, "task": "Write."}', "id"),
        ("duplicate id", '{"id": "t0", "task": "Write again."}', "duplicate id"),
        ("no task", '{"id": "x"}', "task"),
        ("task and prompt", '{"task": "a", "prompt": "b"}', "task"),
        ("misspelt task key", '{"tsk": "Write."}', "unknown field 'tsk'"),
        ("task with a lone surrogate", '{"task": "Write \\udca0."}', "lone surrogate"),
    ]:
        add(Case(f"tasks: {name}", "text", gen_tasks, fragment=fragment, setup=tasks_line(line),
                 check=lambda d, _: "out.jsonl was created by a refused run" if (d / "out.jsonl").exists() else None))

    # Files: what is not a regular file, what is too big, outputs that would destroy inputs.
    for name, setup, fragment in [
        ("missing file", None, "no such file"),
        ("a directory", lambda d: (d / "bad.jsonl").mkdir(), "is a directory"),
        ("a FIFO", fifo("bad.jsonl"), "not a regular file"),
        ("a UNIX socket", unix_socket("bad.jsonl"), "not a regular file"),
        ("a symlink to /dev/zero", lambda d: (d / "bad.jsonl").symlink_to("/dev/zero"), "not a regular file"),
        ("a symlink loop", lambda d: (d / "bad.jsonl").symlink_to(d / "bad.jsonl"), "bad.jsonl"),
        ("a 300 MiB sparse file", sparse("bad.jsonl", 300 * 2**20), "larger than the limit"),
        ("an empty file", lambda d: write(d / "bad.jsonl", ""), "empty"),
        ("a path through a file", lambda d: write(d / "x", "file"), "not a directory"),
    ]:
        args = ["infer", "x/bad.jsonl" if "through a file" in name else "bad.jsonl", "--user", "bev"]
        add(Case(f"examples file: {name}", "files", args, fragment=fragment, setup=setup))
    for device in ("/dev/zero", "/dev/urandom", "/dev/null", "/proc/self/fd/0"):
        add(Case(f"examples file: {device}", "files", ["infer", device, "--user", "bev"], fragment=device))
    add(Case("infer -o the examples file", "files", ["infer", "ex.jsonl", "--user", "bev", "-o", "ex.jsonl"],
             fragment="also an input", setup=both(base_files, snapshot("ex.jsonl")), check=unchanged("ex.jsonl")))
    add(Case("infer -o a symlink to the examples file", "files", ["infer", "ex.jsonl", "--user", "bev", "-o", "link"],
             fragment="also an input", setup=both(base_files, snapshot("ex.jsonl"),
                                                  lambda d: (d / "link").symlink_to(d / "ex.jsonl")),
             check=unchanged("ex.jsonl")))
    add(Case("infer -o a directory", "files", ["infer", "ex.jsonl", "--user", "bev", "-o", "outdir"],
             fragment="is a directory", setup=both(base_files, lambda d: (d / "outdir").mkdir()), check=no_temp_files))
    add(Case("infer -o a device", "files", ["infer", "ex.jsonl", "--user", "bev", "-o", OUTPUT_DEVICE],
             fragment="not a regular file", setup=base_files))
    add(Case("infer -o under a file", "files", ["infer", "ex.jsonl", "--user", "bev", "-o", "ex.jsonl/p.json"],
             fragment="not a directory", setup=base_files))
    add(Case("generate --tasks -o the tasks file", "files",
             ["generate", "--strategy", "zero-shot", "--tasks", "tasks.jsonl", "-o", "tasks.jsonl"],
             fragment="also an input", setup=both(base_files, snapshot("tasks.jsonl")), check=unchanged("tasks.jsonl")))
    add(Case("generate -o the examples file", "files",
             ["generate", "--strategy", "few-shot", "--examples", "ex.jsonl", "--tasks", "tasks.jsonl", "-o", "ex.jsonl"],
             fragment="also an input", setup=both(base_files, snapshot("ex.jsonl")), check=unchanged("ex.jsonl")))
    add(Case("generate -o the profile", "files",
             ["generate", "--profile", "p.json", "--tasks", "tasks.jsonl", "-o", "p.json"],
             fragment="also an input", setup=both(base_files, snapshot("p.json")), check=unchanged("p.json")))
    add(Case("generate --tasks -o a FIFO", "files",
             ["generate", "--strategy", "zero-shot", "--tasks", "tasks.jsonl", "-o", "fifo"],
             fragment="not a regular file", setup=both(base_files, fifo("fifo"))))

    # Resume: every writer of finished work must survive a kill, a torn line, an empty start, a full disk.
    gen = ["generate", "--strategy", "zero-shot", "--tasks", "tasks.jsonl", "-o", "out.jsonl"]
    add(Case("resume: an empty output file left by a killed start", "resume", gen, expect="accept",
             setup=both(base_files, lambda d: write(d / "out.jsonl", "")), check=out_rows("out.jsonl", 6)))
    add(Case("resume: a torn last line", "resume", gen, expect="accept",
             setup=both(base_files, lambda d: write(d / "out.jsonl", '{"id": "t0", "run": "x", "outp')),
             check=out_rows("out.jsonl", 6)))
    add(Case("resume: a corrupt line in the middle", "resume", gen, fragment="line 1",
             setup=both(base_files, lambda d: write(d / "out.jsonl", '{"id": "t0"\n{"id": "t1"}\n'),
                        snapshot("out.jsonl")), check=unchanged("out.jsonl")))
    add(Case("resume: outputs of another strategy", "resume",
             ["generate", "--profile", "p.json", "--tasks", "tasks.jsonl", "-o", "out.jsonl"],
             fragment="another profile, model, strategy",
             setup=both(base_files, lambda d: subprocess.run(
                 [*COMMAND, "generate", "--strategy", "zero-shot", "--tasks", "tasks.jsonl",
                  "-o", "out.jsonl"], cwd=d, env=_env(d, {}), capture_output=True, check=True),
                        snapshot("out.jsonl")), check=unchanged("out.jsonl")))
    add(Case("resume: the disk fills while outputs are written", "resume", ["--no-cache", *gen], fragment="out.jsonl",
             setup=base_files, file_size_limit=900, check=lambda d, _: _resumes_after_full_disk(d)))

    # Stores and caches that are not what they claim to be.
    for name, setup, path in [
        ("a text file", lambda d: write(d / "c.db", "not a database\n" * 100), "c.db"),
        ("a directory", lambda d: (d / "c.db").mkdir(), "c.db"),
        ("a FIFO", fifo("c.db"), "c.db"),
        ("/dev/null", None, "/dev/null"),
        ("another program's SQLite file", lambda d: _foreign_sqlite(d / "c.db"), "c.db"),
    ]:
        add(Case(f"--cache is {name}", "stores", ["--cache", path, "generate", "--strategy", "zero-shot", "Hi."],
                 fragment="cache", setup=setup))
        add(Case(f"--store is {name}", "stores", ["profile", "list", "--store", path], fragment="store", setup=setup))
    for url, fragment in [("sqlite://", "in memory"), ("sqlite:///:memory:", "in memory"),
                          ("nosuchdb://x/y", "store URL"), ("postgresql+psycopg://u:secret@127.0.0.1:1/x", "store"),
                          ("sqlite:////proc/version", "store")]:
        add(Case(f"--store {url.split('@')[-1]}", "stores", ["profile", "list", "--store", url], fragment=fragment,
                 forbidden=["secret"]))
    add(Case("the cache cannot be written once the disk is full: results are kept", "stores",
             ["--cache", "c.db", "generate", "--strategy", "zero-shot", "--tasks", "tasks.jsonl", "-o", "out.jsonl"],
             expect="accept", setup=both(base_files, lambda d: _full_cache(d / "c.db")),
             check=out_rows("out.jsonl", 6)))

    # Settings: files, variables and flags.
    for name, toml, fragment in [
        ("a TOML syntax error", "backend = \n", "not valid TOML"), ("an unknown key", "colour = 'red'\n", "colour"),
        ("a wrong type", "concurrency = 'many'\n", "concurrency"), ("a bad URL", "base_url = 'http://[::1/v1'\n", "base_url"),
        ("NUL bytes", "backend = 'fake'\n\x00\n", "NUL"),
    ]:
        add(Case(f"hyperalign.toml with {name}", "settings", ["generate", "--strategy", "zero-shot", "Hi."],
                 fragment=fragment, setup=lambda d, toml=toml: write(d / "hyperalign.toml", toml), env={"HYPERALIGN_CONFIG": ""}))
    add(Case("hyperalign.toml is a directory", "settings", ["generate", "--strategy", "zero-shot", "Hi."],
             fragment="hyperalign.toml", setup=lambda d: (d / "hyperalign.toml").mkdir(), env={"HYPERALIGN_CONFIG": ""}))
    for name, env, fragment in [
        ("HYPERALIGN_CONCURRENCY=abc", {"HYPERALIGN_CONCURRENCY": "abc"}, "concurrency"),
        ("HYPERALIGN_CONCURRENCY=0", {"HYPERALIGN_CONCURRENCY": "0"}, "concurrency"),
        ("HYPERALIGN_MAX_REPAIRS=-1", {"HYPERALIGN_MAX_REPAIRS": "-1"}, "max_repairs"),
        ("HYPERALIGN_BASE_URL=ftp://x", {"HYPERALIGN_BASE_URL": "ftp://x"}, "base_url"),
        ("OPENAI_BASE_URL=not a url", {"OPENAI_BASE_URL": "not a url", "HYPERALIGN_BACKEND": "openai"}, "OPENAI_BASE_URL"),
    ]:
        add(Case(f"environment: {name}", "settings", ["generate", "--strategy", "zero-shot", "Hi."], fragment=fragment,
                 env=env))
    for url in ["http://[::1/v1", "http://localhost:99999/v1", "http://localhost:0/v1", "not a url", "ftp://example.com",
                "http://exa mple.com/v1", "http:///v1", "localhost:8000", "http://localhost:8000/v1\n"]:
        add(Case(f"--base-url {url!r}", "settings",
                 ["--backend", "openai", "--base-url", url, "generate", "--strategy", "zero-shot", "Hi."],
                 fragment="base_url", fake=False))
    add(Case("--base-url with credentials, unreachable: the password is never printed", "settings",
             ["--backend", "openai", "--base-url", "http://bev:hunter2secret@127.0.0.1:9/v1", "generate", "--strategy",
              "zero-shot", "Hi."], fragment="cannot reach", forbidden=["hunter2secret"], fake=False,
             env={"HYPERALIGN_MAX_RETRIES": "0"}))
    for flag, value in [("--concurrency", "0"), ("--concurrency", "-3"), ("--context-tokens", "5"),
                        ("--max-repairs", "99"), ("--backend", "nosuch")]:
        add(Case(f"{flag} {value}", "settings", [flag, value, "generate", "--strategy", "zero-shot", "Hi."],
                 fragment=flag.lstrip("-") if flag != "--backend" else "unknown backend"))
    add(Case("--model a missing GGUF", "settings", ["--backend", "embedded", "--model", "none.gguf", "generate",
                                                     "--strategy", "zero-shot", "Hi."], fragment="none.gguf", fake=False))
    add(Case("--model a text file posing as GGUF", "settings",
             ["--backend", "embedded", "--model", "fake.gguf", "generate", "--strategy", "zero-shot", "Hi."],
             fragment="fake.gguf", fake=False, setup=lambda d: write(d / "fake.gguf", "GGUF but not really\n")))
    add(Case("a settings file that redirects the endpoint is shown", "settings", ["settings"], expect="accept",
             setup=lambda d: write(d / "hyperalign.toml", "base_url = 'http://u:pw4242@example.org/v1'\n"),
             env={"HYPERALIGN_CONFIG": "", "OPENAI_API_KEY": "sk-leakcheck4242"},
             check=lambda d, o: None if "example.org" in o.stdout and "hyperalign.toml" in o.stdout
             else "the settings' source is not shown", forbidden=["pw4242", "sk-leakcheck4242"]))

    # Profiles: newer, older, malformed, inconsistent.
    show = ["show", "bad.json"]
    for name, setup, fragment in [
        ("schema_version 99", profile_with(schema_version=99), "newer"),
        ("schema_version 0", profile_with(schema_version=0), "schema_version"),
        ("schema_version as text", profile_with(schema_version="1"), "schema_version"),
        ("no schema_version", profile_with(schema_version=DELETE), "schema_version"),
        ("an unknown field", profile_with(colour="red"), "unknown field 'colour'"),
        ("a negative n_examples", profile_with(n_examples=-1), "n_examples"),
        ("an empty user id", profile_with(user_id=""), "user_id"),
        ("attributes that are not text", profile_with(attributes={"role": 3}), "attributes"),
        ("duplicate hypothesis ids", profile_edit(lambda p: p["hypotheses"].append(dict(p["hypotheses"][0]))), "twice"),
        ("evidence beyond the examples", profile_edit(lambda p: p["hypotheses"][0]["evidence"][0].update(
            example_index=99)), "example 100"),
        ("a negative evidence index", profile_edit(lambda p: p["hypotheses"][0]["evidence"][0].update(
            example_index=-1)), "example_index"),
        ("an empty statement", profile_edit(lambda p: p["hypotheses"][0].update(statement="")), "statement"),
        ("a hypothesis id with spaces", profile_edit(lambda p: p["hypotheses"][0].update(id="a b")), "id"),
        ("a score above 1", profile_edit(lambda p: p["hypotheses"][0].update(
            score={"supports": 1, "contradicts": 0, "neutral": 0, "value": 5})), "value"),
        ("a JSON array", lambda d: write(d / "bad.json", "[]"), "expected a JSON object"),
        ("truncated JSON", lambda d: write(d / "bad.json", valid_profile_json()[:50]), "not valid JSON"),
        ("binary garbage", lambda d: write(d / "bad.json", bytes(range(256))), "bad.json"),
    ]:
        add(Case(f"profile: {name}", "profiles", show, fragment=fragment, setup=setup))
        add(Case(f"profile import: {name}", "profiles", ["profile", "import", "bad.json", "--store", "s.db"],
                 fragment=fragment, setup=setup))
    add(Case("profile: escape sequences in a statement never reach the terminal raw", "profiles", ["show", "bad.json"],
             expect="accept", forbidden=["\x1b[2J", "\x1b]0;"], setup=profile_edit(
                 lambda p: p["hypotheses"][0].update(statement="Clears \x1b[2J the \x1b]0;pwned\x07 screen."))))

    # Run folders and evaluations.
    for name, setup, fragment in [
        ("no such folder", None, "not a run folder"),
        ("an empty folder", lambda d: (d / "run").mkdir(), "missing"),
        ("an empty results.json", lambda d: write(d / "run" / "results.json", ""), "empty"),
        ("a truncated results.json", lambda d: write(d / "run" / "results.json", '{"kind": "authorship", "con'),
         "not valid JSON"),
        ("a binary results.json", lambda d: write(d / "run" / "results.json", bytes(range(256))), "results.json"),
        ("a results.json list", lambda d: write(d / "run" / "results.json", "[1, 2]"), "not a hyperalign results"),
        ("an unknown kind", lambda d: write(d / "run" / "results.json", '{"kind": "poetry"}'), "unknown kind"),
        ("an incomplete authorship result", lambda d: write(d / "run" / "results.json", '{"kind": "authorship"}'),
         "incomplete"),
    ]:
        add(Case(f"report: {name}", "run folders", ["report", "run"], fragment=fragment, setup=setup))
    ev = ["eval", "authorship", "--corpus", "corpus", "--out", "run", "--authors", "2", "--shots", "2",
          "--prompts-per-author", "1", "--methods", "zero-shot,few-shot"]
    for name, damage, fragment in [
        ("a corrupt split.json", lambda d: write(d / "run" / "split.json", "{not json"), "split.json"),
        ("a split.json of another shape", lambda d: write(d / "run" / "split.json", '{"authors": 3}'), "split.json"),
        ("a corrupt config.json", lambda d: write(d / "run" / "config.json", "\x00\x01"), "config.json"),
        ("a corrupt line in generations.jsonl", lambda d: write(d / "run" / "generations.jsonl",
                                                                '{"key": 1\n{"key": "x"}\n'), "generations.jsonl"),
    ]:
        add(Case(f"eval rerun with {name}", "run folders", ev, fragment=fragment,
                 setup=both(_corpus, lambda d: _run(d, ev), damage)))
    add(Case("eval rerun after a torn last line resumes", "run folders", ev, expect="accept",
             setup=both(_corpus, lambda d: _run(d, ev), lambda d: _tear(d / "run" / "generations.jsonl"))))
    for name, args, fragment in [
        ("--corpus missing", ["--corpus", "nowhere"], "nowhere"),
        ("--corpus empty", ["--corpus", "empty"], "no texts"),
        ("--methods unknown", ["--methods", "telepathy"], "telepathy"),
        ("--methods import of a missing file", ["--methods", "zero-shot,import:none.jsonl"], "none.jsonl"),
        ("--out is a file", ["--out", "ex.jsonl"], "not a directory"),
        ("--judge escapes the sandbox", ["--judge", "evil"], "sandbox"),
        ("--prompt-style unknown", ["--prompt-style", "haiku"], "prompt-style"),
    ]:
        add(Case(f"eval authorship: {name}", "run folders", [*ev, *args], fragment=fragment,
                 setup=both(base_files, _corpus, lambda d: (d / "empty").mkdir(), _evil_judge),
                 check=lambda d, _: "the sandbox let a template run a command" if (d / "pwned").exists() else None))

    # The editor.
    store_args = ["profile", "edit", "bev", "--store", "s.db"]
    for name, editor, fragment in [
        ("an unterminated quote", '"unterminated', "the editor could not be used"),
        ("a missing program", "/no/such/editor", "the editor could not be used"),
        ("a program that fails", "false", "the editor could not be used"),
        ("a directory", "/tmp", "the editor could not be used"),
    ]:
        add(Case(f"EDITOR is {name}", "editor", store_args, fragment=fragment, env={"EDITOR": editor, "TMPDIR": "tmp"},
                 setup=both(base_files, _stored_profile, lambda d: (d / "tmp").mkdir()),
                 check=lambda d, _: f"left behind {[p.name for p in (d / 'tmp').iterdir()]}"
                 if any((d / "tmp").iterdir()) else None))

    # The living-profile commands.
    store = ["--store", "s.db"]
    for name, args, fragment in [
        ("show a missing user", ["profile", "show", "nobody"], "no profile 'nobody'"),
        ("show version 0", ["profile", "show", "bev", "--version", "0"], "'--version'"),
        ("diff with a missing version", ["profile", "diff", "bev", "1", "99"], "no version 99"),
        ("edit an unknown id", ["profile", "edit", "bev", "--pin", "zz"], "no hypothesis or fact zz"),
        ("edit --set without =", ["profile", "edit", "bev", "--set", "abc"], "--set"),
        ("edit --add with no aspect", ["profile", "edit", "bev", "--add", "=Says hi."], "--add"),
        ("edit --attribute with no key", ["profile", "edit", "bev", "--attribute", "=x"], "--attribute"),
        ("update from a device", ["profile", "update", "bev", "/dev/zero"], "/dev/zero"),
        ("update a missing user", ["profile", "update", "nobody", "ex.jsonl"], "no profile 'nobody'"),
        ("import under an empty --user", ["profile", "import", "p.json", "--user", ""], "--user"),
        ("import under a --user with a newline", ["profile", "import", "p.json", "--user", "a\nb"], "--user"),
        ("export -o a device", ["profile", "export", "bev", "-o", OUTPUT_DEVICE], "not a regular file"),
        ("infer over a stored profile", ["profile", "infer", "ex.jsonl", "--user", "bev"], "already stored"),
        ("--author with an escape sequence", ["profile", "edit", "bev", "--pin", "x", "--author", "\x1b[31m"], "author"),
    ]:
        add(Case(f"profile: {name}", "profiles", [*args, *store], fragment=fragment,
                 setup=both(base_files, _stored_profile)))

    # Other evaluations and the training baseline: bad inputs fail before any model work.
    for name, args, fragment in [
        ("deliberative: missing behaviours", ["eval", "deliberative", "--harmful", "none.txt", "--templates", "t.json",
                                              "--out", "r"], "none.txt"),
        ("deliberative: templates not a JSON list", ["eval", "deliberative", "--harmful", "h.txt", "--templates",
                                                     "bad.json", "--out", "r"], "bad.json"),
        ("deliberative: CSV without the column", ["eval", "deliberative", "--harmful", "h.csv", "--templates", "t.json",
                                                  "--out", "r"], "column"),
        ("deliberative: an unknown method", ["eval", "deliberative", "--harmful", "h.txt", "--templates", "t.json",
                                             "--out", "r", "--methods", "vanilla,psychic"], "psychic"),
        ("ablation: --shots not numbers", ["eval", "ablation", "--corpus", "corpus", "--out", "r", "--shots", "a,b"],
         "--shots"),
        ("ablation: --shots 0", ["eval", "ablation", "--corpus", "corpus", "--out", "r", "--shots", "0"], "--shots"),
        ("train ditto: missing corpus", ["train", "ditto", "--corpus", "nowhere", "--author", "a", "--out", "ad"],
         "nowhere"),
        ("train ditto: unknown author", ["train", "ditto", "--corpus", "corpus", "--author", "zed", "--out", "ad",
                                         "--authors", "2", "--shots", "2", "--prompts-per-author", "1"], "zed"),
        ("train ditto: a config with an unknown key", ["train", "ditto", "--corpus", "corpus", "--author", "ann",
                                                       "--out", "ad", "--config", "bad.toml", "--authors", "2",
                                                       "--shots", "2", "--prompts-per-author", "1"], "bad.toml"),
        ("train generate: no adapter", ["train", "generate", "--adapter", "ad", "-o", "o.jsonl", "--tasks",
                                        "tasks.jsonl", "--author", "x"], "no adapter"),
        ("train generate: -o the tasks file", ["train", "generate", "--adapter", "ad", "-o", "tasks.jsonl", "--tasks",
                                               "tasks.jsonl", "--author", "x"], "also an input"),
    ]:
        add(Case(name, "evaluations", args, fragment=fragment, setup=both(base_files, _corpus, _safety_files)))

    # Inputs and settings the chosen strategy would ignore: the user believes they were applied.
    few_shot = ["generate", "--strategy", "few-shot", "--examples", "ex.jsonl"]
    zero_shot = ["generate", "--strategy", "zero-shot"]
    for name, args, fragment in [
        ("zero-shot given a profile", [*zero_shot, "--profile", "p.json", "Hi."], "--profile"),
        ("zero-shot given examples", [*zero_shot, "--examples", "ex.jsonl", "Hi."], "--examples"),
        ("few-shot given a profile", [*few_shot, "--profile", "p.json", "Hi."], "--profile"),
        ("few-shot with --excerpts", [*few_shot, "--excerpts", "3", "Hi."], "--excerpts"),
        ("few-shot with --example-texts", [*few_shot, "--example-texts", "2", "Hi."], "--example-texts"),
        ("zero-shot with --steer strong", [*zero_shot, "--steer", "strong", "Hi."], "--steer"),
        ("few-shot with --opening prefill and --max-copied", [*few_shot, "--opening", "prefill", "--max-copied",
                                                              "0.5", "Hi."], "--opening, --max-copied"),
        ("--rerank without --best-of", ["generate", "--profile", "p.json", "--rerank", "margin", "Hi."], "--best-of"),
        ("--check-hypotheses without --best-of", ["generate", "--profile", "p.json", "--check-hypotheses", "Hi."],
         "--best-of"),
    ]:
        add(Case(f"generate: {name}", "cli", args, fragment=fragment, setup=base_files))
    paper = ["infer", "ex.jsonl", "--user", "bev", "--method", "paper"]
    for name, args, fragment in [
        ("the paper method given --reference", [*paper, "--reference", "corpus"], "--reference"),
        ("the paper method given --genre-task and --voice-samples", [*paper, "--genre-task", "Write.",
                                                                     "--voice-samples", "3"], "--genre-task, --voice-samples"),
        ("--budget with --refine but no --select", ["infer", "ex.jsonl", "--user", "bev", "--budget", "3", "--refine", "1"],
         "--refine"),
        ("a blank --genre-task", ["infer", "ex.jsonl", "--user", "bev", "--genre-task", "  "], "--genre-task"),
        ("the paper method given --measured-hypotheses", [*paper, "--measured-hypotheses", "3"],
         "--measured-hypotheses"),
        ("--measured-hypotheses with --no-facts", ["infer", "ex.jsonl", "--user", "bev", "--no-facts",
                                                  "--measured-hypotheses", "3"], "--measured-hypotheses"),
    ]:
        add(Case(f"infer: {name}", "cli", args, fragment=fragment, setup=both(base_files, _corpus)))
    add(Case("generate: zero-shot with --steer off (nothing to turn off, nothing ignored)", "cli",
             [*zero_shot, "--steer", "off", "Hi."], expect="accept"))

    # The command line itself.
    add(Case("an unknown command", "cli", ["telepathy"], fragment="telepathy"))
    add(Case("an unknown option", "cli", ["infer", "ex.jsonl", "--usr", "bev"], fragment="--usr", setup=base_files))
    add(Case("a missing option", "cli", ["infer", "ex.jsonl"], fragment="--user", setup=base_files))
    add(Case("an option with the wrong type", "cli", ["generate", "--max-tokens", "lots", "Hi."], fragment="--max-tokens"))

    from adversarial_ops_cases import ops_cases  # secrets, batch targets, NAME_MAX, concurrent writers, Ray

    return c + ops_cases()


# --- helpers for the cases above ----------------------------------------------------------------------------------

def _foreign_sqlite(path: Path) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE completions (id INTEGER, note TEXT)")
        db.execute("CREATE TABLE profiles (name TEXT)")


def _full_cache(path: Path) -> None:
    """A cache that opens but whose writes fail, as on a full disk: a database with a trigger refusing inserts."""
    import sqlite3

    from hyperalign.llm.cache import CompletionCache

    CompletionCache(path).close()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TRIGGER full BEFORE INSERT ON completions BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END")


def _corpus(d: Path) -> None:
    for author in ("ann", "bob"):
        for i in range(4):
            write(d / "corpus" / author / f"{i}.txt", f"{author.title()} writes text number {i}. It rains. " * 5)


def _run(d: Path, args: list[str]) -> None:
    subprocess.run([*COMMAND, *args], cwd=d, env=_env(d, {}), capture_output=True,
                   check=True, timeout=TIMEOUT_S)


def _tear(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])


def _evil_judge(d: Path) -> None:
    write(d / "evil" / "config.toml", "")
    write(d / "evil" / "prompt.v1.j2",
          "{% block system %}{{ cycler.__init__.__globals__.os.system('touch pwned') }}{% endblock %}"
          "{% block user %}{{ a }}{% endblock %}")


def _safety_files(d: Path) -> None:
    write(d / "h.txt", "".join(f"Harmful behaviour number {i}\n" for i in range(12)))
    write(d / "h.csv", "behaviour\nsomething\n")
    write(d / "t.json", json.dumps([f"Template {i}: [INSERT PROMPT HERE]" for i in range(5)]))
    write(d / "bad.json", json.dumps({"not": "a list"}))
    write(d / "bad.toml", "[sft]\nsteps = 3\ncolour = 'red'\n")


def _stored_profile(d: Path) -> None:
    subprocess.run([*COMMAND, "profile", "import", "p.json", "--store", "s.db"], cwd=d,
                   env=_env(d, {}), capture_output=True, check=True, timeout=TIMEOUT_S)


def _resumes_after_full_disk(d: Path) -> str | None:
    before = (d / "out.jsonl").read_bytes() if (d / "out.jsonl").exists() else b""
    done = run_argv(d, ["generate", "--strategy", "zero-shot", "--tasks", "tasks.jsonl", "-o", "out.jsonl"], {})
    if done.code != 0:
        return f"the rerun after a full disk failed: {done.stderr.strip()[:200]}"
    after = (d / "out.jsonl").read_bytes()
    complete_lines = before[: before.rfind(b"\n") + 1]
    if not after.startswith(complete_lines):
        return "rows written before the disk filled were lost"
    return out_rows("out.jsonl", len(TASKS))(d, done)


# --- running ------------------------------------------------------------------------------------------------------

def _env(d: Path, extra: dict[str, str], fake: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPERALIGN_", "OPENAI_"))}
    env.update({
        "HOME": str(d / "home"), "XDG_CACHE_HOME": str(d / "xdg-cache"), "XDG_DATA_HOME": str(d / "xdg-data"),
        "XDG_STATE_HOME": str(d / "xdg-state"), "HYPERALIGN_CONFIG": str(d / "no-settings.toml"),
        "COLUMNS": "40", "PYTHONIOENCODING": "utf-8",
    })
    if fake:
        env["HYPERALIGN_BACKEND"] = "fake"
    for key, value in extra.items():
        if value == "" and key == "HYPERALIGN_CONFIG":
            env.pop(key)  # the default: ./hyperalign.toml in the working directory
        else:
            env[key] = value if not (key == "TMPDIR" and not value.startswith("/")) else str(d / value)
    return env


def run_argv(d: Path, args: list[str | bytes], extra_env: dict[str, str], *, fake: bool = True,
             file_size_limit: int | None = None) -> Outcome:
    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))  # a memory bomb dies, it does not swap
        if file_size_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes beyond the limit fail with EFBIG, as ENOSPC would
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    argv = [*(c.encode() for c in COMMAND), *(a if isinstance(a, bytes) else a.encode() for a in args)]
    try:
        done = subprocess.run(argv, cwd=d, env=_env(d, extra_env, fake), capture_output=True, timeout=TIMEOUT_S,
                              preexec_fn=limits, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, (exc.stdout or b"").decode("utf-8", "replace"), (exc.stderr or b"").decode("utf-8", "replace"))
    return Outcome(done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))


def _replaced_devices() -> list[str]:
    return [path for path in DEVICES if os.path.lexists(path) and not Path(path).is_char_device()]


def _restore_device(path: str) -> None:
    if os.geteuid() != 0:  # only root can replace a device, so only root can (and must) put it back
        return
    os.remove(path)
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(*DEVICES[path]))
    os.chmod(path, 0o666)  # mknod's mode is masked by the umask


def run_case(case: Case, d: Path) -> tuple[str, str]:
    """(outcome, detail) of one case run in the empty folder `d`."""
    d.mkdir(parents=True, exist_ok=True)
    if case.setup:
        case.setup(d)
    broken_before = _replaced_devices()
    result = run_argv(d, case.args, case.env, fake=case.fake, file_size_limit=case.file_size_limit)
    destroyed = [path for path in _replaced_devices() if path not in broken_before]
    for path in destroyed:
        _restore_device(path)
    if destroyed:
        return "lost_work", f"replaced the device {destroyed[0]} with a regular file"
    text = result.stdout + result.stderr
    if result.code is None:
        return "hang", f"no answer in {TIMEOUT_S} s"
    if "Traceback (most recent call last)" in text:
        return "traceback", text.strip().splitlines()[-1][:300]
    leaked = [f for f in case.forbidden if f in text]
    if leaked:
        return "leak", f"printed {leaked[0]!r}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    if case.expect == "reject":
        if result.code == 0:
            return "silent_accept", "exit 0"
        if result.code == 1:
            return "bug", (errors or [result.stderr.strip()[:300]])[0]
        if result.code != 2:
            return "crashed", f"exit {result.code}: {result.stderr.strip()[-300:]}"
        if len(errors) != 1:
            return "multi_line", f"{len(errors)} error lines: {result.stderr.strip()[:300]!r}"
        if case.fragment and case.fragment not in errors[0]:
            return "wrong_message", f"expected {case.fragment!r} in: {errors[0][:300]}"
    elif result.code != 0:
        return "unexpected_reject", (errors or [result.stderr.strip()[-300:]])[0]
    if case.check:
        problem = case.check(d, result)
        if problem:
            return "lost_work", problem
    return "ok", (errors[0] if errors else "exit 0")[:300]
