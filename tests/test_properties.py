"""Property-based tests of the input boundaries: the JSON/JSONL readers, the torn-line-safe log, atomic writes,
profile documents, and the CLI's error contract (bad input -> exit 2 and one "Error:" line; never a traceback).

Strings are drawn from every code point, lone surrogates included (plain `st.text()` never yields those), with the
characters that break naive readers mixed in: NUL, U+2028/U+2029, U+0085, CR, a BOM, DEL, bidi overrides.
The tests at the end pin down bugs these properties found (all fixed); each fails loudly if
the bug is fixed, so the marker can be removed."""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hyperalign.cli import app
from hyperalign.errors import InputError, StructuredOutputError
from hyperalign.io import JsonlLog, iter_jsonl, parse_json, parse_json_object, write_atomically
from hyperalign.llm.fake import _default_reply
from hyperalign.pipeline.evidence import check
from hyperalign.pipeline.facts import style_facts
from hyperalign.profiles.model import (
    PROFILE_SCHEMA_VERSION,
    Aspect,
    HypothesisScore,
    InferenceReport,
    Profile,
    UserExample,
    examples_hash,
    read_examples,
)
from hyperalign.usage import Usage

FIXTURE_OK = [HealthCheck.function_scoped_fixture]
runner = CliRunner()


def fresh(tmp_path: Path) -> Path:
    """A new folder for one example: tmp_path is shared by every example hypothesis runs in one test."""
    return Path(tempfile.mkdtemp(dir=tmp_path))


# --- strategies ---------------------------------------------------------------------------------------------------

SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00"]
TRICKY = ["\x00", "\u2028", "\u2029", "\x85", "\r", "\n", "\t", "\ufeff", "\x7f", "\x9f", "\u202e", "\x1b",
          "😀", "\\", '"', " "]

# Every code point, surrogates included, with the tricky ones over-represented.
any_char = st.characters(exclude_categories=()) | st.sampled_from(TRICKY + SURROGATES)
any_text = st.text(any_char, max_size=12)
# Mostly surrogates: adjacent high+low pairs (which a JSON reader joins into one character) and lone ones.
surrogate_soup = st.text(st.sampled_from([*SURROGATES, "a"]), min_size=1, max_size=4)
# Text that can be stored (no surrogates, no NUL).
clean_char = st.characters(codec="utf-8", exclude_characters="\x00") | st.sampled_from([c for c in TRICKY if c != "\x00"])
clean_text = st.text(clean_char, max_size=12)
nonblank_text = st.text(clean_char, min_size=1, max_size=30).filter(lambda s: bool(s.strip()))


def json_values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
               | text)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                        max_leaves=10)


def json_rows(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(text, json_values(text), max_size=4)


# --- what a JSON reader makes of a Python value written with json.dumps(ensure_ascii=True) -------------------------

def _utf16(text: str) -> str:
    """json.dumps writes each surrogate code point as its own \\uXXXX escape; a reader joins an adjacent high and low
    escape into one character. Only the surrogates left over after that are "lone"."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _read_back(value: Any) -> Any:
    if isinstance(value, str):
        return _utf16(value)
    if isinstance(value, list):
        return [_read_back(item) for item in value]
    if isinstance(value, dict):
        return {_utf16(key): _read_back(item) for key, item in value.items()}
    return value


def _is_lone_surrogate(char: str) -> bool:
    """A character no text may hold: a lone surrogate, or NUL (C libraries read it as the end of the text)."""
    return char == "\x00" or 0xD800 <= ord(char) <= 0xDFFF


def _fault(value: Any) -> str | None:
    """Why a reader must refuse this value (as written by json.dumps), or None: keys that collide once surrogate
    pairs are joined are duplicate keys (found while parsing, so first); then any lone surrogate in a key or string."""
    def collides(v: Any) -> bool:
        if isinstance(v, list):
            return any(collides(item) for item in v)
        if isinstance(v, dict):
            return len({_utf16(k) for k in v}) < len(v) or any(collides(item) for item in v.values())
        return False

    def lone(v: Any) -> bool:
        if isinstance(v, str):
            return any(_is_lone_surrogate(c) for c in _utf16(v))
        if isinstance(v, list):
            return any(lone(item) for item in v)
        if isinstance(v, dict):
            return any(lone(k) or lone(item) for k, item in v.items())
        return False

    if collides(value):
        return "duplicate key"
    if lone(value):
        return "lone surrogate|NUL character"
    return None


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(_is_lone_surrogate(c) for c in value)
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(item) for k, item in value.items())
    return False


# === 1. JSON and JSONL readers ====================================================================================

@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(rows=st.lists(json_rows(any_text) | json_rows(surrogate_soup), max_size=6),
       blank_before=st.lists(st.sampled_from(["", "   ", "\t", "\r"]), max_size=6),
       newline=st.sampled_from(["\n", "\r\n"]), bom=st.booleans())
@example(rows=[{"t": "a\x00b", "u": "\u2028\x85😀"}], blank_before=[], newline="\n", bom=False)
@example(rows=[{"t": "ok"}, {"t": "\ud800"}], blank_before=[], newline="\n", bom=False)
@example(rows=[{"\ud83d\ude00": 1, "😀": 2}], blank_before=[], newline="\n", bom=False)
@example(rows=[], blank_before=[], newline="\n", bom=False)
def test_iter_jsonl_returns_exactly_the_rows_or_refuses_nul_and_lone_surrogates(tmp_path, rows, blank_before, newline, bom):
    """U+2028, U+0085 inside a JSON string are legal and come back unchanged; only NUL, lone surrogates (and keys
    that become equal once surrogate pairs are joined) are refused, naming the line. An empty file is refused."""
    lines, expected = [], []
    for index, row in enumerate(rows):
        if index < len(blank_before):
            lines.append(blank_before[index])
        lines.append(json.dumps(row, ensure_ascii=True))
        expected.append((len(lines), row))
    path = tmp_path / "rows.jsonl"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "".join(line + newline for line in lines).encode("ascii"))

    faults = [(number, _fault(row)) for number, row in expected if _fault(row)]
    event("empty" if not rows else faults[0][1] if faults else "read back")
    if not rows:
        with pytest.raises(InputError, match="the file is empty"):
            list(iter_jsonl(path))
    elif faults:
        number, reason = faults[0]
        with pytest.raises(InputError, match=rf"{re.escape(str(path))}, line {number}\b.*{reason}"):
            list(iter_jsonl(path))
    else:
        assert list(iter_jsonl(path)) == [(number, _read_back(row)) for number, row in expected]


JSONISH_BYTES = [b"{", b"}", b"[", b"]", b'"', b'"a"', b":", b",", b"\\u", b"d800", b"\\ud800", b"\n", b"\r",
                 b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf", b"1e999", b"NaN", b"-Infinity", b"9" * 5000, b" ",
                 b"null", b"true", b'"text"', b"\xe2\x80\xa8"]
arbitrary_bytes = st.binary(max_size=300) | st.lists(st.sampled_from(JSONISH_BYTES), max_size=40).map(b"".join)


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=arbitrary_bytes)
@example(data=b'{"a": 1}\n{"a": 1, "a": 2}\n')
@example(data=b"[" * 5000 + b"]" * 5000)
@example(data=b"\xff\xfe{}")
@example(data=b'{"a": ' + b"9" * 5000 + b"}")
def test_iter_jsonl_and_read_examples_on_arbitrary_bytes_raise_only_input_error(tmp_path, data):
    path = tmp_path / "input.jsonl"
    path.write_bytes(data)
    try:
        result = list(iter_jsonl(path))
    except InputError as exc:
        assert str(path) in str(exc)
    else:
        numbers = [number for number, _ in result]
        assert numbers == sorted(set(numbers)) and all(n >= 1 for n in numbers)
        assert result and all(isinstance(row, dict) and not _has_surrogate(row) for _, row in result)
    try:
        examples = read_examples(path)
    except InputError as exc:
        assert str(path) in str(exc)
    else:
        assert examples and all(isinstance(e, UserExample) and e.text.strip() for e in examples)


@settings(max_examples=300, deadline=None)
@given(text=st.text(any_char, max_size=60) | st.lists(st.sampled_from([b.decode("latin-1") for b in JSONISH_BYTES]),
                                                      max_size=30).map("".join))
@example(text='{"a": "\\ud800"}')
@example(text='{"a": 1, "a": 1}')
@example(text="NaN")
@example(text="9" * 5000)
def test_parse_json_on_arbitrary_text_raises_only_input_error(text):
    try:
        value = parse_json(text, "the-source")
    except InputError as exc:
        event("refused")
        assert str(exc).startswith("the-source")
    else:
        event("parsed")
        assert not _has_surrogate(value)
        try:
            obj = parse_json_object(text, "the-source")
        except InputError as exc:
            assert not isinstance(value, dict)
            assert "expected a JSON object" in str(exc)
        else:
            assert obj == value


@settings(max_examples=40, deadline=None)
@given(depth=st.integers(min_value=1, max_value=100_000), kind=st.sampled_from(["array", "object", "unclosed"]))
@example(depth=64, kind="array")
@example(depth=66, kind="array")
@example(depth=100_000, kind="array")
@example(depth=100_000, kind="object")
@example(depth=100_000, kind="unclosed")
def test_deeply_nested_json_is_refused_never_a_recursion_error(depth, kind):
    text = {"array": "[" * depth + "]" * depth, "object": '{"a":' * depth + "0" + "}" * depth,
            "unclosed": "[" * depth}[kind]
    try:
        parse_json(text, "deep")
    except InputError as exc:
        assert kind == "unclosed" or depth > 64, str(exc)
        assert re.match(r"deep: (nested|not valid JSON)", str(exc))
    else:
        assert kind != "unclosed"
        # 64 levels are allowed, more are not; (a 65th level of empty arrays is tolerated: see the report).
        assert depth <= 65 if kind == "array" else depth <= 64


# === 2. JsonlLog: finished work survives a torn last line =========================================================

@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(rows=st.lists(json_rows(clean_text), max_size=4), extra=json_rows(clean_text),
       position=st.integers(min_value=0, max_value=10**6))
@example(rows=[{"t": "é😀\u2028\x85\x1b"}, {"b": [1, 2]}], extra={"z": 0}, position=10**6 - 1)
def test_jsonl_log_keeps_a_prefix_of_its_rows_whatever_byte_it_is_cut_at(tmp_path, rows, extra, position):
    path = fresh(tmp_path) / "sub" / "log.jsonl"
    log = JsonlLog(path)
    assert log.rows() == [] and not log.exists()
    ends = []
    for row in rows:
        log.append(row)
        ends.append(path.stat().st_size)
    assert log.rows() == rows
    assert [n for n, _ in log.numbered_rows()] == list(range(1, len(rows) + 1))

    size = ends[-1] if ends else 0
    cut = position % (size + 1)  # any byte offset, the end of the file included
    if path.exists():
        with path.open("r+b") as handle:
            handle.truncate(cut)
    kept = JsonlLog(path).rows()
    event("all kept" if len(kept) == len(rows) else "torn")
    # Every row whose line was wholly written is kept, and one that lost only its newline; nothing else.
    whole = sum(end <= cut for end in ends) + (1 if cut + 1 in ends else 0)
    assert kept == rows[:whole]

    log = JsonlLog(path)
    log.append(extra)
    assert log.rows() == rows[:whole] + [extra]
    assert path.read_bytes().endswith(b"\n")


def test_jsonl_log_on_an_empty_file_reads_nothing_and_appends(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"")
    log = JsonlLog(path)
    assert log.exists() and log.rows() == []
    log.append({"id": "1", "output": "text"})
    log.append({"id": "2"})
    assert log.rows() == [{"id": "1", "output": "text"}, {"id": "2"}]
    assert path.read_bytes().count(b"\n") == 2


# === 3. write_atomically ==========================================================================================

@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(first=st.text(clean_char, max_size=200), second=st.text(clean_char, max_size=200))
def test_write_atomically_round_trips_and_leaves_no_temporary_file(tmp_path, first, second):
    folder = fresh(tmp_path) / "out" / "nested"
    path = folder / "result.txt"
    write_atomically(path, first)
    assert path.read_bytes().decode("utf-8") == first
    write_atomically(path, second)
    assert path.read_bytes().decode("utf-8") == second
    assert os.listdir(folder) == ["result.txt"]


@settings(max_examples=30, deadline=None, suppress_health_check=FIXTURE_OK)
@given(before=clean_text, after=st.tuples(clean_text, st.sampled_from(SURROGATES), clean_text).map("".join))
def test_write_atomically_of_unencodable_text_keeps_the_old_file_and_no_temporary_file(tmp_path, before, after):
    folder = fresh(tmp_path) / "w"
    path = folder / "result.txt"
    write_atomically(path, before)
    # Not an InputError (see the report): the encoder's own error, but the old file and the folder stay clean.
    with pytest.raises((InputError, UnicodeEncodeError), match="surrogate|cannot write"):
        write_atomically(path, after)
    assert path.read_bytes().decode("utf-8") == before
    assert os.listdir(folder) == ["result.txt"]


# === 4. Profiles ==================================================================================================

def _valid_user_id(value: str) -> bool:
    return (bool(value.strip()) and len(value) <= 200 and not any(_is_lone_surrogate(c) for c in value)
            and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value))


# A letter or digit first, then anything but control characters (bidi overrides, U+2028, spaces, emoji included).
user_ids = st.builds(
    str.__add__, st.characters(codec="utf-8", categories=("L", "N")),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")) | st.sampled_from(["\u202e", "\u2028", " "]),
            max_size=29)).filter(_valid_user_id)
SIGN_OFF = "Gears first, opinions later. The log does not lie."
timezones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    examples = [UserExample(text=SIGN_OFF)] + draw(st.lists(
        st.builds(UserExample, prompt=st.none() | clean_text, text=nonblank_text), max_size=3))
    hypotheses = [check(Aspect.WRITING_STYLE, "Repeats a sign-off.", ["Gears first, opinions later"], examples)]
    for _ in range(draw(st.integers(0, 3))):
        quotes = []
        for _ in range(draw(st.integers(0, 2))):
            text = draw(st.sampled_from(examples)).text
            start = draw(st.integers(0, len(text)))
            quotes.append(text[start:draw(st.integers(start, len(text)))])
        quotes += draw(st.lists(clean_text, max_size=1))
        aspect = draw(st.sampled_from(list(Aspect)) | st.text(clean_char, min_size=1, max_size=80))
        hypothesis = check(aspect, draw(nonblank_text), quotes, examples)
        hypothesis = hypothesis.model_copy(update={
            "pinned": draw(st.booleans()), "origin": draw(st.sampled_from(["inferred", "person"])),
            "score": draw(st.none() | st.builds(HypothesisScore, supports=st.integers(0, 50),
                                                contradicts=st.integers(0, 50), neutral=st.integers(0, 50),
                                                value=st.floats(0.0, 1.0)))})
        if hypothesis.id not in {h.id for h in hypotheses}:
            hypotheses.append(hypothesis)
    facts = [f.model_copy(update={"pinned": draw(st.booleans())}) for f in style_facts([e.text for e in examples])
             ] if draw(st.booleans()) else []
    return Profile(
        user_id=draw(user_ids),
        attributes=draw(st.dictionaries(st.text(clean_char, min_size=1, max_size=80), clean_text, max_size=3)),
        hypotheses=hypotheses,
        examples_hash=examples_hash(examples),
        n_examples=len(examples),
        backend="fake",
        model=draw(clean_text),
        prompt_version="infer_hypotheses.v1",
        created_at=draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1),
                                     timezones=timezones)),
        facts=facts,
        report=InferenceReport(proposed=len(hypotheses) + 1, dropped_unsupported=1, usage=Usage(llm_calls=4)),
    )


PROFILE_KEYS = list(Profile.model_fields)


@settings(max_examples=200, deadline=None)
@given(text=st.text(any_char, max_size=80) | st.dictionaries(st.sampled_from(PROFILE_KEYS) | any_text,
                                                             json_values(any_text), max_size=6).map(json.dumps))
@example(text='{"schema_version": 1}')
@example(text='{"schema_version": true}')
@example(text='{"schema_version": 1, "user_id": "a", "created_at": 1e300}')
@example(text="[" * 100_000)
def test_profile_from_arbitrary_text_raises_only_input_error(text):
    try:
        profile = Profile.from_json(text, source="the-profile")
    except InputError as exc:
        event("refused")
        assert str(exc).startswith("the-profile")
    else:
        event("loaded")
        assert Profile.from_json(profile.to_json()) == profile


@settings(max_examples=60, deadline=None)
@given(profile=profiles())
def test_a_valid_profile_round_trips_through_json(profile):
    assert profile.supported_hypotheses, "the strategy always includes one verified quote"
    assert Profile.from_json(profile.to_json()) == profile
    assert Profile.from_json(profile.to_json()).to_json() == profile.to_json()


@settings(max_examples=200, deadline=None)
@given(profile=profiles(), key=st.sampled_from(PROFILE_KEYS + ["unknown_key"]),
       value=st.just("<delete>") | json_values(any_text))
def test_changing_one_top_level_key_loads_or_raises_input_error(profile, key, value):
    document = json.loads(profile.to_json())
    if value == "<delete>":
        document.pop(key, None)
    else:
        document[key] = value
    text = json.dumps(document, ensure_ascii=True)
    try:
        loaded = Profile.from_json(text, source="p.json")
    except InputError as exc:
        event("refused")
        assert str(exc).startswith("p.json")
        if key == "unknown_key" and value != "<delete>" and not _fault(value):  # unreadable text is refused first
            assert "unknown field 'unknown_key'" in str(exc)
        if key == "schema_version" and value == "<delete>":
            assert "schema_version is missing" in str(exc)
    else:
        event("loaded")
        assert key != "unknown_key" or value == "<delete>"
        assert Profile.from_json(loaded.to_json()) == loaded


@settings(max_examples=60, deadline=None)
@given(profile=profiles(), version=st.integers(min_value=PROFILE_SCHEMA_VERSION + 1)
       | st.integers(min_value=PROFILE_SCHEMA_VERSION + 1, max_value=10**300))
def test_a_profile_from_a_newer_schema_is_refused_by_name(profile, version):
    document = json.loads(profile.to_json())
    document["schema_version"] = version
    with pytest.raises(InputError, match=rf"schema_version {version} is newer than this hyperalign reads"):
        Profile.from_json(json.dumps(document))


@settings(max_examples=30, deadline=None)
@given(profile=profiles(), version=st.integers(max_value=0) | st.sampled_from([True, False, 1.0, "1", None]))
def test_a_profile_with_an_impossible_schema_version_is_refused(profile, version):
    document = json.loads(profile.to_json())
    document["schema_version"] = version
    with pytest.raises(InputError, match="schema_version"):
        Profile.from_json(json.dumps(document))


# === 5. The CLI contract ==========================================================================================

def invoke(*args: str):
    return runner.invoke(app, ["--backend", "fake", "--no-cache", *args])


def assert_contract(result) -> None:
    """Exit 0, or exit 2 with exactly one line on stderr, starting "Error:"; never a traceback, never exit 1."""
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr


def profile_from_stdout(result) -> Profile:
    return Profile.from_json(result.stdout[: result.stdout.rindex("}") + 1])


@pytest.fixture
def examples_file(tmp_path: Path) -> Path:
    path = tmp_path / "ex.jsonl"
    path.write_text(json.dumps({"prompt": "Note about the gate", "text": "Right then. Lock the gate."}) + "\n"
                    + json.dumps({"text": "Right then. Bulb day is Saturday, nine sharp."}) + "\n", encoding="utf-8")
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(user=st.text(any_char, max_size=20) | st.text(any_char, min_size=195, max_size=205) | st.sampled_from(
    ["", " ", "\x85", "\u2028", "--help", "-o", "--", "a\x1bb", "\ud800", "\u202eevil"]))
def test_infer_user_id_is_accepted_or_refused_in_one_line(examples_file, user):
    result = invoke("infer", str(examples_file), "--user", user)
    assert_contract(result)
    event(f"exit {result.exit_code}")
    assert (result.exit_code == 0) == _valid_user_id(user), result.output
    if result.exit_code == 0:
        assert profile_from_stdout(result).user_id == user


def _c1_or_del(text: str) -> bool:
    return any(0x7F <= ord(c) <= 0x9F for c in text)


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(attribute=st.tuples(st.text(any_char, max_size=80), st.sampled_from(["=", "", "=="]), any_text).map("".join))
@example(attribute=" =v")
@example(attribute="k=")
@example(attribute="k=\ud800")
def test_infer_attribute_is_accepted_or_refused_in_one_line(examples_file, attribute):
    """Keys up to 80 characters (the profile's limit; a longer one is refused, see the regression tests below)."""
    result = invoke("infer", str(examples_file), "--user", "bev", "--attribute", attribute)
    assert_contract(result)
    event(f"exit {result.exit_code}")
    key, sep, value = attribute.partition("=")
    key, value = key.strip(), value.strip()
    valid = (bool(sep) and bool(key) and not any(_is_lone_surrogate(c) for c in key + value)
             and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in key))  # a key is a name
    assert (result.exit_code == 0) == valid, result.output
    if valid and not _c1_or_del(key + value):
        assert profile_from_stdout(result).attributes[key] == value


@settings(max_examples=40, deadline=None)
@given(task=st.text(any_char, max_size=30), separate=st.booleans())
@example(task="-x", separate=False)
@example(task="--", separate=False)
@example(task="\x00", separate=True)
def test_generate_task_is_accepted_or_refused_in_one_line(task, separate):
    result = invoke("generate", "--strategy", "zero-shot", *(["--", task] if separate else [task]))
    assert_contract(result)
    event(f"exit {result.exit_code}")
    if separate:  # after "--" the task cannot be read as an option: only its content decides
        valid = bool(task.strip()) and not any(_is_lone_surrogate(c) for c in task)
        assert (result.exit_code == 0) == valid, result.output
    if result.exit_code == 0:
        assert result.stdout.startswith("[fake completion for a ")


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(content=arbitrary_bytes | st.lists(json_rows(any_text) | st.builds(
    dict, text=any_text) | st.builds(dict, prompt=st.none() | any_text, text=any_text), min_size=1, max_size=3).map(
        lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()))
@example(content=b'{"text": "fine"}\n{"text": "x", "extra": 1}\n')
@example(content=b'{"text": "ok"}\n')
def test_infer_on_an_arbitrary_examples_file_is_accepted_or_refused_in_one_line(tmp_path, content):
    path = tmp_path / "examples.jsonl"
    path.write_bytes(content)
    result = invoke("infer", str(path), "--user", "bev")
    assert_contract(result)
    event(f"exit {result.exit_code}")
    if result.exit_code == 0:
        profile = profile_from_stdout(result)
        nonblank = [line for line in content.split(b"\n") if line.strip()]
        assert profile.user_id == "bev" and profile.n_examples == len(nonblank)


task_ids = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text
task_rows = (st.fixed_dictionaries({"task": any_text}, optional={"id": task_ids})
             | st.fixed_dictionaries({"prompt": any_text}, optional={"id": st.integers() | any_text})
             | st.fixed_dictionaries({}, optional={"id": task_ids, "task": st.none() | any_text,
                                                   "prompt": st.none() | any_text})
             | json_rows(any_text))


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(content=arbitrary_bytes | st.lists(task_rows, min_size=1, max_size=3).map(
    lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()))
@example(content=b'{"id": 1, "task": "a"}\n{"id": "1", "task": "b"}\n')
@example(content=b'{"task": "a"}\n{"prompt": "b"}\n')
def test_generate_on_an_arbitrary_tasks_file_is_accepted_or_refused_in_one_line(tmp_path, content):
    folder = fresh(tmp_path)
    tasks = folder / "tasks.jsonl"
    tasks.write_bytes(content)
    output = folder / "out.jsonl"
    result = invoke("generate", "--strategy", "zero-shot", "--tasks", str(tasks), "-o", str(output))
    assert_contract(result)
    event(f"exit {result.exit_code}")
    if result.exit_code == 0:
        rows = JsonlLog(output).rows()
        nonblank = [line for line in content.split(b"\n") if line.strip()]
        assert len(rows) == len(nonblank) == len({row["id"] for row in rows})
        assert all(row["output"].startswith("[fake completion for a ") for row in rows)
    else:
        assert not output.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(content=arbitrary_bytes | profiles().map(lambda p: p.to_json().encode()))
def test_show_on_an_arbitrary_profile_file_is_accepted_or_refused_in_one_line(tmp_path, content):
    path = tmp_path / "profile.json"
    path.write_bytes(content)
    result = runner.invoke(app, ["show", "--plain", str(path)])
    assert_contract(result)
    event(f"exit {result.exit_code}")
    if result.exit_code == 0:
        assert result.stdout.startswith("# Profile of ")


# === Found by the properties above, fixed, kept as regression tests =============================================

@pytest.mark.parametrize("text", ["1e999", '{"a": -1e400}'])
def test_numbers_that_overflow_to_infinity_are_refused(text):
    with pytest.raises(InputError, match="too large to be read"):
        parse_json(text, "x")


@pytest.mark.parametrize("row", [{"output": "\ud800"}, {"score": float("nan")}])
def test_a_row_the_log_could_not_read_back_is_refused_and_the_log_stays_usable(tmp_path, row):
    log = JsonlLog(tmp_path / "log.jsonl")
    with pytest.raises(InputError, match="log.jsonl: a result cannot be written"):
        log.append(row)
    log.append({"id": "next"})
    assert log.rows() == [{"id": "next"}]


@pytest.mark.parametrize("value", ["a\x7fb", "a\x85b"])
def test_infer_stdout_stays_json_when_a_text_holds_del_or_c1(examples_file, value):
    result = invoke("infer", str(examples_file), "--user", "bev", "--attribute", f"k={value}")
    assert result.exit_code == 0, result.output
    assert profile_from_stdout(result).attributes["k"] == value


def test_an_attribute_key_over_80_characters_is_refused_before_inference(examples_file):
    result = invoke("infer", str(examples_file), "--user", "bev", "--attribute", "k" * 81 + "=v")
    assert_contract(result)
    assert result.exit_code == 2


def test_a_blank_statement_from_the_model_is_invalid_output_not_a_crash(make_hyperalign, examples):
    def reply(request):
        if request.schema_name in ("infer_profile", "infer_differences"):
            blank = [{"statement": " " * 8, "evidence": ["Gears first, opinions later."]}]
            return json.dumps({k: blank if k != "measured" else [] for k in request.json_schema["properties"]
                               if k != "attributes"})
        return _default_reply(request)

    ha, backend = make_hyperalign(reply, cache=False)
    with pytest.raises(StructuredOutputError, match=r"step 'infer_differences'.*at least 8 characters"):
        ha.infer_profile("morwenna", examples)
    assert any(m["content"].startswith("That output is not valid") for r in backend.requests for m in r.messages)


def test_a_bom_prefixed_last_row_is_kept_by_the_next_append(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes('\ufeff{"id": "1"}'.encode())
    log = JsonlLog(path)
    assert log.rows() == [{"id": "1"}]
    log.append({"id": "2"})
    assert log.rows() == [{"id": "1"}, {"id": "2"}]
