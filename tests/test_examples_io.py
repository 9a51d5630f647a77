from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperalign.errors import HyperAlignError, InputError
from hyperalign.io import read_jsonl_models, read_text_file
from hyperalign.profiles.model import UserExample, read_examples


def write(tmp_path: Path, content: str | bytes, name: str = "examples.jsonl") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def line(**fields) -> str:
    return json.dumps(fields, ensure_ascii=False)


def test_input_error_is_a_hyperalign_error():
    assert issubclass(InputError, HyperAlignError)


def test_reads_valid_file_with_optional_prompt(tmp_path):
    path = write(tmp_path, "\n".join([line(prompt="Report the storm.", text="Storm from the west."), line(text="Fog again.")]))
    rows = read_examples(path)
    assert rows == [
        UserExample(prompt="Report the storm.", text="Storm from the west."),
        UserExample(prompt=None, text="Fog again."),
    ]


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(InputError) as info:
        read_examples(path)
    assert str(info.value) == f"{path}: no such file"


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(InputError) as info:
        read_examples(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, expected a file"


@pytest.mark.parametrize("content", ["", "   \n\n\t  \r\n", "\ufeff"])
def test_empty_or_whitespace_only_file(tmp_path, content):
    path = write(tmp_path, content)
    with pytest.raises(InputError) as info:
        read_examples(path)
    assert str(info.value) == f"{path}: the file is empty"


def test_non_utf8_bytes_name_the_offset(tmp_path):
    content = b'{"text": "caf\xe9 au lait"}\n'
    path = write(tmp_path, content)
    with pytest.raises(InputError) as info:
        read_examples(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid UTF-8")
    bad_offset = content.index(b"\xe9")
    assert f"offset {bad_offset}" in message
    assert "save the file as UTF-8" in message


def test_malformed_json_names_the_line_number(tmp_path):
    path = write(tmp_path, "\n".join([line(text="Fog again."), "", '{"text": "unterminated']))
    with pytest.raises(InputError) as info:
        read_examples(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 3: not valid JSON")  # the blank line still counts
    assert "column" in message


def test_line_that_is_a_json_array(tmp_path):
    path = write(tmp_path, line(text="ok text") + "\n" + json.dumps(["Fog", "again"]))
    with pytest.raises(InputError) as info:
        read_examples(path)
    assert str(info.value) == f"{path}, line 2: expected a JSON object, got an array"


def test_line_that_is_a_json_string(tmp_path):
    path = write(tmp_path, '"just a string"')
    with pytest.raises(InputError, match="line 1: expected a JSON object, got a string"):
        read_examples(path)


def test_missing_text_names_line_and_field(tmp_path):
    path = write(tmp_path, line(text="Fog again.") + "\n" + line(prompt="Write something"))
    with pytest.raises(InputError) as info:
        read_examples(path)
    assert str(info.value) == f"{path}, line 2: field 'text' is missing"


def test_blank_text_names_line_and_field(tmp_path):
    path = write(tmp_path, line(text="   \n  "))
    with pytest.raises(InputError) as info:
        read_examples(path)
    assert str(info.value) == f"{path}, line 1: field 'text': the example has no text"


def test_wrong_type_text_names_field(tmp_path):
    path = write(tmp_path, line(text=42))
    with pytest.raises(InputError, match=r"line 1: field 'text': Input should be a valid string"):
        read_examples(path)


def test_utf8_bom_is_handled(tmp_path):
    path = write(tmp_path, "\ufeff" + line(text="Fog again, naturally."))
    assert read_examples(path) == [UserExample(text="Fog again, naturally.")]
    assert read_text_file(path) == line(text="Fog again, naturally.")


def test_blank_lines_are_skipped_and_crlf_accepted(tmp_path):
    content = "\r\n\r\n" + line(text="one thing") + "\r\n   \r\n" + line(text="two things") + "\r\n\r\n"
    path = write(tmp_path, content.encode("utf-8"))
    assert [e.text for e in read_examples(path)] == ["one thing", "two things"]


def test_non_ascii_text_round_trips(tmp_path):
    path = write(tmp_path, line(text="Mórwenna’s “log” — 412 turns ☃"))
    assert read_examples(path)[0].text == "Mórwenna’s “log” — 412 turns ☃"


def test_read_jsonl_models_accepts_other_models(tmp_path):
    from pydantic import BaseModel

    class Task(BaseModel):
        task: str

    path = write(tmp_path, line(task="Write a memo") + "\n" + line(other=1))
    with pytest.raises(InputError, match=r"line 2: field 'task' is missing"):
        read_jsonl_models(path, Task)
