"""Bad input that was answered as a bug (exit 1) or as success: every line skipped, a version number no database
holds, a judge template that asks the sandbox for too large a range, output names near NAME_MAX."""

from __future__ import annotations

import json

import pytest
from jinja2 import DictLoader
from typer.testing import CliRunner

from hyperalign.cli import app
from hyperalign.errors import InputError
from hyperalign.io import rescue, write_atomically
from hyperalign.prompts import environment, messages_from

runner = CliRunner()


def test_skipping_every_line_of_a_batch_is_bad_input_not_success(tmp_path):
    users = tmp_path / "users.jsonl"
    users.write_text('{"id": "a"}\n{"examples": "no"}\n')
    result = runner.invoke(app, ["--backend", "fake", "--no-cache", "batch", "infer", str(users), "--out",
                                 str(tmp_path / "p"), "--on-bad-line", "skip"])
    assert result.exit_code == 2, result.output
    assert "all 2 lines are invalid" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args", [["profile", "export", "ann", "--version", "99999999999999999999"],
                                  ["profile", "show", "ann", "--version", "0"],
                                  ["profile", "diff", "ann", "1", "99999999999999999999"]])
def test_a_version_no_database_can_hold_is_refused_by_name(tmp_path, args):
    result = runner.invoke(app, [*args, "--store", str(tmp_path / "s.sqlite3")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and ("version" in result.output.lower() or "V2" in result.output)


def test_a_template_that_asks_for_a_huge_range_is_refused_not_a_crash():
    env = environment(DictLoader({"t.j2": "{% block system %}{% for i in range(10**9) %}x{% endfor %}{% endblock %}"
                                          "{% block user %}u{% endblock %}"}))
    with pytest.raises(InputError, match="refused by the sandbox"):
        messages_from(env.get_template("t.j2"))


def test_output_names_near_name_max_are_written_and_rescued(tmp_path):
    target = tmp_path / ("p" * 250 + ".json")
    write_atomically(target, json.dumps({"ok": True}))
    assert json.loads(target.read_text()) == {"ok": True}
    kept = rescue("finished work", tmp_path / ("q" * 254))
    assert kept is not None and kept.read_text() == "finished work" and len(kept.name) <= 255
    kept.unlink()


def test_a_resumed_batch_without_ids_follows_the_requests_not_their_line_numbers(tmp_path):
    from hyperalign.batch.records import RequestRecord, read_records

    lines = [{"user_id": "ann", "task": "Write about fog."}, {"user_id": "bo", "task": "Write about gears."},
             {"user_id": "ann", "task": "Write about fog."}]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in lines))
    second.write_text("".join(json.dumps(r) + "\n" for r in [lines[1], lines[0], lines[2]]))  # reordered
    keys = {key: (r.user_id, r.task) for key, r in read_records(first, RequestRecord, "id", "fail")[0]}
    again = {key: (r.user_id, r.task) for key, r in read_records(second, RequestRecord, "id", "fail")[0]}
    assert keys == again and len(keys) == 3  # the same request keeps its key; a repeated one gets its own


def test_a_wrong_value_in_the_settings_file_is_named_even_when_an_override_hides_it(tmp_path, monkeypatch):
    config = tmp_path / "hyperalign.toml"
    config.write_text('concurrency = "lots"\n')
    monkeypatch.setenv("HYPERALIGN_CONFIG", str(config))
    monkeypatch.setenv("HYPERALIGN_CONCURRENCY", "4")
    result = runner.invoke(app, ["settings"])
    assert result.exit_code == 2, result.output
    assert "invalid setting 'concurrency'" in result.output and str(config) in result.output.replace("\n", "")
