from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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


# --- the one log of finished work ------------------------------------------------------------------------------------

from hyperalign.io import JsonlLog, check_output_path, write_atomically, write_or_rescue  # noqa: E402


def test_a_log_is_created_only_by_its_first_row(tmp_path):
    log = JsonlLog(tmp_path / "sub" / "out.jsonl")
    assert log.rows() == [] and not log.path.exists()
    log.append({"id": "a", "text": "é ✓ \u2028"})
    assert log.rows() == [{"id": "a", "text": "é ✓ \u2028"}]


@pytest.mark.parametrize(("content", "read", "appended"), [
    pytest.param("", [], '{"id": 4}\n', id="an empty file reads as nothing"),
    pytest.param('{"id": 1}\n{"id": 2}\n{"id": 3, "te', [1, 2], '{"id": 1}\n{"id": 2}\n{"id": 4}\n',
                 id="a torn last line is skipped, then cut off by the next append"),
    pytest.param('{"id": 1}\n{"id": 2}', [1, 2], '{"id": 1}\n{"id": 2}\n{"id": 4}\n',
                 id="a whole last row without its newline is kept"),
])
def test_a_log_file_reads_what_is_whole_and_appends_after_it(tmp_path, content, read, appended):
    path = tmp_path / "out.jsonl"
    path.write_text(content)
    log = JsonlLog(path)
    assert log.rows() == [{"id": n} for n in read]
    log.append({"id": 4})
    assert path.read_text() == appended
    assert log.rows() == [*({"id": n} for n in read), {"id": 4}]


def test_a_torn_multibyte_character_at_the_end_is_a_torn_line(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": 1}\n{"t": "\xc3')
    assert JsonlLog(path).rows() == [{"id": 1}]


def test_damage_before_the_last_line_is_named_and_nothing_is_touched(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": 1}\nnot json\n{"id": 3}\n')
    with pytest.raises(InputError, match=r"out.jsonl, line 2: not valid JSON .*repair or delete that line"):
        JsonlLog(path).rows()
    assert path.read_text() == '{"id": 1}\nnot json\n{"id": 3}\n'


def test_a_log_that_is_not_a_regular_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError, match="fifo: is not a regular file"):
        JsonlLog(tmp_path / "fifo").append({"id": 1})
    with pytest.raises(InputError, match="fifo: is not a regular file"):
        JsonlLog(tmp_path / "fifo").rows()


def test_concurrent_appends_from_threads_interleave_whole_lines(tmp_path):
    log = JsonlLog(tmp_path / "out.jsonl")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: log.append({"id": i, "pad": "x" * 5000}), range(200)))
    assert sorted(row["id"] for row in log.rows()) == list(range(200))


def test_another_process_appends_only_after_a_writer_lets_go_of_the_log(tmp_path):
    """A batch's writer keeps the log locked; a second process (another run of the command) waits for it, so its
    repair of a torn last line can never cut into a row being written. Without the lock, the second row would land
    in the middle."""
    log, started = JsonlLog(tmp_path / "out.jsonl"), tmp_path / "started"
    script = ("import sys; from pathlib import Path; from hyperalign.io import JsonlLog; "
              "Path(sys.argv[2]).touch(); JsonlLog(Path(sys.argv[1])).append({'id': 'other process'})")
    with log.writer() as append:
        append({"id": "first"})
        other = subprocess.Popen([sys.executable, "-c", script, str(log.path), str(started)])
        while not started.exists() and other.poll() is None:
            time.sleep(0.01)
        time.sleep(0.5)  # time for the other process to append, were it not kept waiting
        append({"id": "second"})
    assert other.wait(timeout=60) == 0
    assert [row["id"] for row in log.rows()] == ["first", "second", "other process"]


# --- outputs ------------------------------------------------------------------------------------------------------------


def test_an_output_that_is_an_input_is_refused_however_it_is_named(tmp_path, monkeypatch):
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    (tmp_path / "link").symlink_to(source)
    monkeypatch.chdir(tmp_path)
    for name in ("in.jsonl", "./in.jsonl", "link", str(source)):
        with pytest.raises(InputError, match="also an input"):
            check_output_path(Path(name), source)


def test_write_atomically_leaves_no_temporary_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "p.json"
    target.write_text("old")

    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(InputError, match=r"p.json: cannot write it \(No space left on device\)"):
        write_atomically(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_a_result_that_cannot_be_written_is_rescued(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    tempfile.tempdir = None  # re-read TMPDIR
    monkeypatch.setattr(os, "replace", lambda *_: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system")))
    try:
        with pytest.raises(InputError, match=r"Read-only file system\); the result is kept in .*hyperalign-rescued-p.json") as info:
            write_or_rescue(tmp_path / "p.json", "the finished profile")
    finally:
        tempfile.tempdir = None
    kept = Path(str(info.value).rsplit("kept in ", 1)[1])
    assert kept.read_text() == "the finished profile"


def test_a_batch_writer_keeps_the_file_open_cuts_a_torn_line_and_leaves_only_whole_rows(tmp_path):
    log = JsonlLog(tmp_path / "out.jsonl")
    log.path.write_bytes(b'{"id": "a"}\n{"id": "tor')  # a kill in the middle of a row
    with log.writer(sync_seconds=0) as append:
        append({"id": "b"})
        assert [r["id"] for r in JsonlLog(log.path).rows()] == ["a", "b"]  # flushed at once: a reader sees it
        append({"id": "c", "text": "ü \u2028"})
        with pytest.raises(InputError, match="cannot be written"):
            append({"id": "d", "value": float("nan")})
    assert [r["id"] for r in log.rows()] == ["a", "b", "c"]
    assert log.path.read_bytes().endswith(b"\n")


def test_append_whole_leaves_no_torn_line_when_the_file_size_limit_is_hit(tmp_path):
    """A full disk, played by RLIMIT_FSIZE in a child process: the line that does not fit is not left half-written."""
    target = tmp_path / "rescued.txt"
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from hyperalign.io import append_whole\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))\n"
        f"path = Path({str(target)!r})\n"
        "print(append_whole(path, 'a' * 59 + '\\n'), append_whole(path, 'b' * 59 + '\\n'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", "False"], done.stderr
    assert target.read_text() == "a" * 59 + "\n"
