from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import ValidationError

from conftest import keeper_profile
from hyperalign.errors import InputError
from hyperalign.profiles.model import (
    Hypothesis,
    InferenceReport,
    Profile,
    UserExample,
    examples_hash,
)
from hyperalign.usage import Usage


def test_json_round_trip_is_lossless():
    profile = keeper_profile()
    restored = Profile.from_json(profile.to_json())
    assert restored == profile
    assert restored.hypotheses[0].evidence[0].example_index == 1
    assert restored.created_at == profile.created_at


def test_save_and_load_round_trip(tmp_path):
    profile = keeper_profile()
    path = tmp_path / "nested" / "profile.json"
    profile.save(path)
    assert Profile.load(path) == profile
    assert not path.with_name("profile.json.tmp").exists()


def test_load_missing_file_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        Profile.load(tmp_path / "absent.json")


def test_supported_hypotheses_filters_unsupported():
    profile = keeper_profile()
    assert [h.statement for h in profile.supported_hypotheses] == [
        "Signs every note with the same keeper sign-off."
    ]


def test_markdown_contains_statements_quotes_attributes_and_flags_unsupported():
    md = keeper_profile().to_markdown()
    assert md.startswith("# Profile of morwenna")
    assert "## Attributes" in md
    assert "- **likely_role**: lighthouse keeper" in md
    assert "## Writing style" in md and "## Personality" in md
    assert "Signs every note with the same keeper sign-off." in md
    assert "Keeper Morwenna, North Light” (example 2)" in md  # 0-based index shown 1-based
    assert "Yours sincerely, the management” (not found)" in md
    supported_line = next(line for line in md.splitlines() if "keeper sign-off" in line)
    unsupported_line = next(line for line in md.splitlines() if "moon is made of cheese" in line)
    assert "unsupported" not in supported_line
    assert "_(unsupported: no quote found in the examples)_" in unsupported_line
    assert "1 supported hypotheses of 3 proposed; 1 dropped" in md
    assert "fake:fake-model" in md and "2025-05-01 12:30" in md


def test_markdown_without_attributes_has_no_attribute_section():
    profile = keeper_profile().model_copy(update={"attributes": {}})
    assert "## Attributes" not in profile.to_markdown()


def test_from_json_broken_json_raises_input_error_naming_source():
    with pytest.raises(InputError) as info:
        Profile.from_json('{"user_id": "x", ', source="my-profile.json")
    assert str(info.value).startswith("my-profile.json: not valid JSON")


def test_from_json_missing_field_names_the_field():
    data = json.loads(keeper_profile().to_json())
    del data["examples_hash"]
    with pytest.raises(InputError, match=r"field 'examples_hash' is missing"):
        Profile.from_json(json.dumps(data))


def test_from_json_nested_field_error_names_the_path():
    data = json.loads(keeper_profile().to_json())
    del data["hypotheses"][1]["statement"]
    with pytest.raises(InputError, match=r"field 'hypotheses\.1\.statement'"):
        Profile.from_json(json.dumps(data))


def test_from_json_wrong_type_names_the_field():
    data = json.loads(keeper_profile().to_json())
    data["n_examples"] = "many"
    with pytest.raises(InputError, match="field 'n_examples'"):
        Profile.from_json(json.dumps(data))


def test_examples_hash_is_stable():
    a = [UserExample(text="Fog again."), UserExample(prompt="p", text="Gears first.")]
    b = [UserExample(text="Fog again."), UserExample(prompt="p", text="Gears first.")]
    assert examples_hash(a) == examples_hash(b) == examples_hash(a)
    assert len(examples_hash(a)) == 16
    int(examples_hash(a), 16)  # hex


def test_examples_hash_is_order_and_content_sensitive():
    a = [UserExample(text="Fog again."), UserExample(text="Gears first.")]
    assert examples_hash(a) != examples_hash(list(reversed(a)))
    assert examples_hash(a) != examples_hash([a[0], UserExample(prompt="p", text="Gears first.")])
    assert examples_hash(a) != examples_hash(a[:1])


def test_hypothesis_id_is_deterministic():
    first = Hypothesis(aspect="personality", statement="Dry humour about seals.")
    second = Hypothesis(aspect="personality", statement="Dry humour about seals.")
    expected = hashlib.sha256(b"personality\nDry humour about seals.").hexdigest()[:8]
    assert first.id == second.id == expected
    assert Hypothesis(aspect="writing_style", statement="Dry humour about seals.").id != first.id
    assert Hypothesis(aspect="personality", statement="Dry humour about gulls.").id != first.id


def test_hypothesis_explicit_id_is_kept():
    assert Hypothesis(id="custom01", aspect="a", statement="s").id == "custom01"


@pytest.mark.parametrize("text", ["", "   ", "\n\t \r\n"])
def test_user_example_rejects_blank_text(text):
    with pytest.raises(ValidationError, match="the example has no text"):
        UserExample(text=text)


def test_user_example_prompt_is_optional():
    example = UserExample(text="Fog again.")
    assert example.prompt is None and example.text == "Fog again."


def test_report_add_counts_sums_counts_and_keeps_the_rest() -> None:
    report = InferenceReport(proposed=3, dropped_unsupported=1, truncated_examples=[2],
                             usage=Usage(llm_calls=4, cache_hits=1, prompt_tokens=100, completion_tokens=20))
    other = InferenceReport(proposed=2, dropped_unsupported=2, truncated_examples=[0],
                            usage=Usage(llm_calls=3, cache_hits=0, prompt_tokens=50, completion_tokens=5))
    report.add_counts(other)
    assert (report.proposed, report.dropped_unsupported, report.truncated_examples) == (5, 3, [2])
    assert report.usage == Usage(llm_calls=7, cache_hits=1, prompt_tokens=150, completion_tokens=25)
    assert other.usage == Usage(llm_calls=3, prompt_tokens=50, completion_tokens=5)  # the other is left alone
