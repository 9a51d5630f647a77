"""Measured style facts (pipeline/facts.py) on hand-made texts whose statistics are known exactly."""

from __future__ import annotations

import json
import re

import pytest

from hyperalign.errors import InputError
from hyperalign.pipeline.facts import (
    METRICS,
    RATE_FLOOR,
    SPREAD_FLOOR,
    Text,
    distinctive_words,
    measure,
    merge_facts,
    style_facts,
)
from hyperalign.pipeline.infer import InferenceOptions
from hyperalign.profiles.model import PROFILE_SCHEMA_VERSION, Fact, Hypothesis, Profile, fact_id
from hyperalign.usage import Usage

# No number words, no person words, no contractions: only what a test adds is counted.
FILLER = "maple river stone cloud garden window lantern meadow harbor pebble".split()


def sentence(n: int, *, offset: int = 0, end: str = ".", lower: bool = False,
             marks: dict[int, str] | None = None, swap: dict[int, str] | None = None) -> str:
    """n words of filler; `marks` appends punctuation after word i, `swap` replaces word i (still one word)."""
    words = [FILLER[(offset + i) % len(FILLER)] for i in range(n)]
    for index, word in (swap or {}).items():
        words[index] = word
    if not lower:
        words[0] = words[0][0].upper() + words[0][1:]
    for index, mark in (marks or {}).items():
        words[index] += mark
    return " ".join(words) + end


def prose(lengths: list[int], offset: int = 0) -> str:
    return " ".join(sentence(n, offset=offset + i) for i, n in enumerate(lengths))


def by_metric(facts: list[Fact]) -> dict[str, Fact]:
    assert all(isinstance(f, Fact) for f in facts)
    return {f.measure.metric: f for f in facts}


def words_in(text: str) -> int:
    return len(Text.of(text).words)


# --- sentences and paragraphs ---------------------------------------------------------------------------------------


def test_texts_of_equal_sentences_give_that_length_and_its_quartile_statement():
    texts = [prose([12] * 5, offset=k) for k in range(3)]
    assert all(words_in(t) == 60 for t in texts)
    fact = by_metric(style_facts(texts))["sentence_words"]
    assert fact.measure.mean == 12 and (fact.measure.low, fact.measure.high) == (12, 12)
    assert fact.statement == "Sentences average 12 words; half are between 12 and 12 words long."
    assert measure("sentence_words", texts[0]) == 12
    assert isinstance(fact, Fact) and fact.origin == "measured" and fact.id == fact_id("sentence_words")


def test_sentence_length_is_the_mean_of_the_texts_and_the_spread_is_between_texts():
    short, long = prose([10] * 4), prose([20] * 4, offset=3)
    fact = by_metric(style_facts([short, long]))["sentence_words"]
    assert fact.measure.mean == 15 and fact.measure.spread == pytest.approx(5.0)  # population sd of 10 and 20
    assert (fact.measure.low, fact.measure.high) == (10, 20)
    assert fact.statement == "Sentences average 15 words; half are between 10 and 20 words long."


def test_sentences_end_at_any_terminal_mark_followed_by_space():
    text = "Maple river stone! Cloud garden? Window lantern meadow harbor. Pebble…  Maple river"
    assert [len(s) for s in Text.of(text).sentences] == [3, 2, 4, 1, 2]
    assert measure("sentence_words", text) == pytest.approx(12 / 5)


def test_paragraphs_split_by_blank_lines_and_otherwise_by_single_lines():
    s = [sentence(5, offset=k) for k in range(6)]
    blank_lines = f"{s[0]} {s[1]}\n\n{s[2]}\n\n{s[3]} {s[4]} {s[5]}"
    assert [len(p) for p in Text.of(blank_lines).paragraphs] == [2, 1, 3]
    assert measure("paragraph_sentences", blank_lines) == 2.0
    # With blank lines, a single newline stays inside its paragraph.
    mixed = f"{s[0]}\n{s[1]}\n\n{s[2]}"
    assert [len(p) for p in Text.of(mixed).paragraphs] == [2, 1]
    assert measure("paragraph_sentences", mixed) == 1.5
    # Without any blank line, every line is a paragraph.
    lines = f"{s[0]}\n{s[1]}\n{s[2]}"
    assert measure("paragraph_sentences", lines) == 1.0
    assert measure("paragraph_sentences", f"{s[0]} {s[1]} {s[2]}") == 3.0
    assert Text.of("\r\n".join(s[:3])).paragraphs == Text.of(lines).paragraphs  # Windows line ends alike
    fact = by_metric(style_facts([blank_lines, mixed]))["paragraph_sentences"]
    assert fact.measure.mean == 1.75 and fact.statement == "Paragraphs average 1.8 sentences."


# --- punctuation, contractions, numbers, person, casing ---------------------------------------------------------------


def punctuated(sentences: int, commas: int = 3) -> str:
    """`sentences` x 10 words: `commas` commas, 2 semicolons, 1 dash, 4 exclamation and 5 question marks."""
    ends = ["!"] * 4 + ["?"] * 5 + ["."] * (sentences - 9)
    first = sentence(10, end=ends[0], marks={2 * i + 1: "," for i in range(commas)})
    second = sentence(10, offset=1, end=ends[1], marks={3: ";", 5: ";"})
    third = sentence(10, offset=2, end=ends[2], marks={4: " —"})
    rest = [sentence(10, offset=k, end=ends[k]) for k in range(3, sentences)]
    return " ".join([first, second, third, *rest])


def test_punctuation_is_counted_per_thousand_words():
    text = punctuated(10)
    assert words_in(text) == 100
    expected = {"comma": 30, "semicolon": 20, "dash": 10, "exclamation": 40, "question": 50, "colon": 0,
                "ellipsis": 0, "parenthesis": 0, "quote": 0}
    assert {name: measure(f"punctuation:{name}", text) for name in expected} == expected
    facts = by_metric(style_facts([text]))
    assert facts["punctuation:comma"].statement == "Uses about 30 commas per 1,000 words."
    assert facts["punctuation:question"].statement == "Uses about 50 question marks per 1,000 words."
    assert facts["punctuation:exclamation"].statement == "Uses about 40 exclamation marks per 1,000 words."
    assert facts["punctuation:semicolon"].statement == "Uses about 20 semicolons per 1,000 words."
    assert facts["punctuation:dash"].statement == "Uses about 10 dashes per 1,000 words."
    assert facts["punctuation:colon"].statement == "Never uses colons."
    assert facts["punctuation:parenthesis"].statement == "Never uses parentheses."


def test_a_longer_text_halves_the_rate_and_texts_are_averaged_not_pooled():
    long = punctuated(20, commas=4)
    assert words_in(long) == 200
    assert measure("punctuation:comma", long) == 20 and measure("punctuation:question", long) == 25
    fact = by_metric(style_facts([punctuated(10), long]))["punctuation:comma"]
    assert fact.measure.mean == 25  # the mean of 30 and 20 per 1,000, not 7 in 300 words (23.3)
    assert fact.measure.spread == pytest.approx(5.0)
    assert fact.statement == "Uses about 25 commas per 1,000 words."


@pytest.mark.parametrize(("dashes", "count"), [("a — b", 1), ("a – b", 1), ("a - b", 1), ("a -- b", 1),
                                               ("well-known", 0), ("a —b— c", 2)])
def test_what_counts_as_a_dash(dashes, count):
    assert measure("punctuation:dash", dashes) == pytest.approx(1000 * count / words_in(dashes))


def test_contractions_per_thousand_words_and_none():
    contracted = sentence(10, swap={1: "don't", 3: "can't", 5: "isn't", 7: "won't", 9: "didn't"}) + " " + prose([10] * 9)
    assert words_in(contracted) == 100  # a contraction is one word
    assert measure("contractions", contracted) == 50
    facts = by_metric(style_facts([contracted]))
    assert facts["contractions"].statement == "Uses about 50 contractions (don't, it's) per 1,000 words."
    plain = by_metric(style_facts([prose([10] * 10)]))["contractions"]
    assert plain.measure.mean == 0 and plain.statement == "Uses no contractions (writes 'do not', not 'don't')."


def test_numbers_written_as_digits_or_spelled_out():
    numbered = sentence(10, swap={2: "3", 4: "12", 6: "two"}) + " " + sentence(10, offset=4, swap={1: "3.5"})
    assert measure("numbers_as_digits", numbered) == pytest.approx(3 / 4)  # 3, 12 and 3.5 as digits; two spelled
    plain = prose([10] * 3)
    assert measure("numbers_as_digits", plain) is None
    facts = by_metric(style_facts([numbered, plain]))
    # The text without numbers says nothing about them: the mean is over the text that has some.
    assert facts["numbers_as_digits"].measure.mean == 0.75
    assert facts["numbers_as_digits"].statement == "Writes 75% of numbers as digits, the rest spelled out."
    assert "numbers_as_digits" not in by_metric(style_facts([plain, prose([8] * 3, offset=2)]))


def test_first_and_second_person_rates():
    personal = (sentence(10, swap={0: "I", 3: "my", 5: "we", 8: "our"}) + " "
                + sentence(10, offset=1, swap={2: "you", 6: "your"}) + " " + prose([10] * 8, offset=2))
    assert words_in(personal) == 100
    assert (measure("first_person", personal), measure("second_person", personal)) == (40, 20)
    facts = by_metric(style_facts([personal]))
    assert facts["first_person"].statement == "Uses about 40 first-person words (I, we, my) per 1,000 words."
    assert facts["second_person"].statement == "Uses about 20 second-person words (you, your) per 1,000 words."
    none = by_metric(style_facts([prose([10] * 10)]))
    assert none["first_person"].statement == "Uses no first-person words (I, we, my)."
    assert none["second_person"].statement == "Uses no second-person words (you, your)."


def test_lowercase_sentence_starts_are_stated_as_a_share_or_as_capitalized_starts():
    half = " ".join(sentence(8, offset=k, lower=k % 2 == 0) for k in range(10))
    assert measure("lowercase_starts", half) == 0.5
    fact = by_metric(style_facts([half]))["lowercase_starts"]
    assert fact.statement == "Starts 50% of sentences with a lowercase letter."
    rare = " ".join(sentence(8, offset=k, lower=k == 0) for k in range(10))
    assert measure("lowercase_starts", rare) == pytest.approx(0.1)
    assert by_metric(style_facts([rare]))["lowercase_starts"].statement == "Starts 10% of sentences with a lowercase letter."
    capital = " ".join(sentence(8, offset=k) for k in range(10))
    # Stated even when 0: a candidate that writes in lowercase must be checkable against it.
    assert by_metric(style_facts([capital]))["lowercase_starts"].statement == "Starts sentences with a capital letter."


def test_all_caps_words_not_counting_single_letters():
    shouty = sentence(10, swap={1: "NEVER", 4: "EVER", 7: "STOP", 8: "I", 9: "A"}) + " " + prose([10] * 9)
    assert words_in(shouty) == 100
    assert measure("caps_words", shouty) == 30
    assert by_metric(style_facts([shouty]))["caps_words"].statement == "Writes about 30 ALL-CAPS words per 1,000 words."
    quiet = by_metric(style_facts([prose([10] * 10)]))["caps_words"]
    assert quiet.statement == "Does not write words in ALL CAPS." and quiet.measure.mean == 0


# --- openings, sign-offs, distinctive words ---------------------------------------------------------------------------


def letter(body_offset: int, greeting: bool, sign_off: bool) -> str:
    lines = (["Hi all,"] if greeting else []) + [prose([7, 9], offset=body_offset)] + (["Cheers, Jo"] if sign_off else [])
    return "\n".join(lines)


def test_a_shared_opening_and_sign_off_are_found_when_half_the_texts_share_them():
    texts = [letter(0, True, True), letter(3, True, True), letter(5, False, False), letter(7, False, False)]
    facts = by_metric(style_facts(texts))
    opening, closing = facts["opens_with:Hi all,"], facts["ends_with:Cheers, Jo"]
    assert opening.measure.mean == 0.5 and opening.statement == "Opens 50% of texts with “Hi all,”."
    assert closing.measure.mean == 0.5 and closing.statement == "Ends 50% of texts with “Cheers, Jo”."
    assert measure("opens_with:Hi all,", texts[0]) == 1.0 and measure("opens_with:Hi all,", texts[2]) == 0.0
    assert measure("ends_with:cheers, jo", "Thanks.\nCheers,\n  Jo ") == 1.0  # case and line breaks do not matter


def test_an_opening_only_one_text_has_or_fewer_than_half_share_is_no_fact():
    alone = [letter(0, True, True), letter(3, False, False), letter(5, False, False), letter(7, False, False)]
    assert not [m for m in by_metric(style_facts(alone)) if m.startswith(("opens_with", "ends_with"))]
    two_of_five = [letter(0, True, True), letter(3, True, True), *(letter(k, False, False) for k in (5, 7, 9))]
    assert not [m for m in by_metric(style_facts(two_of_five)) if m.startswith(("opens_with", "ends_with"))]
    single = [letter(0, True, True)]  # one text shares nothing with anyone
    assert not [m for m in by_metric(style_facts(single)) if m.startswith(("opens_with", "ends_with"))]


def test_a_long_shared_sign_off_cites_the_texts_it_ends():
    sign = "Warm regards from the lighthouse"
    texts = [prose([8], offset=1) + "\n" + sign, prose([6], offset=4), prose([9], offset=6) + "\n" + sign]
    fact = by_metric(style_facts(texts))[f"ends_with:{sign}"]  # the longest shared ending (up to 5 words)
    assert fact.measure.mean == pytest.approx(2 / 3, abs=1e-3)
    assert [(e.quote, e.verified, e.example_index) for e in fact.evidence] == [
        (sign, True, 0), (sign, True, 2)]
    longer = [t.replace(sign, "With " + sign) for t in texts]
    assert f"ends_with:{sign}" in by_metric(style_facts(longer))  # six shared words: the last five are the edge


def test_distinctive_words_find_a_repeated_made_up_word_not_one_texts_topic_nor_the():
    texts = [
        "The zorblax was on the table. The zorblax was fine and the cat was on the mat.",
        "Then the zorblax came back to the house, and the day was long.",
        "The quaffle flew. The quaffle fell. The quaffle rose. The quaffle spun. The quaffle stopped.",
    ]
    words = distinctive_words(texts)
    assert "zorblax" in words
    assert "quaffle" not in words  # five times, but in one text only: a topic, not a habit
    assert "the" not in words
    assert "zorblax" not in distinctive_words(texts[:1])  # a habit needs at least two texts
    fact = next(f for f in style_facts(texts) if f.measure.metric.startswith("uses:"))
    assert "zorblax" in fact.measure.metric.removeprefix("uses:").split("|") and "“zorblax”" in fact.statement
    assert fact.statement.startswith("Uses these words far more often than general English does:")
    assert measure(fact.measure.metric, "a zorblax") == 500.0  # 1 of 2 words


# --- measuring any text, spreads, ids, merging ------------------------------------------------------------------------


RICH = ("Hi all,\nThe lamp turned 412 times last night; I don't mind. Oil the gears first — then talk!\n\n"
        "we counted two seals (rude ones). Did you see them? NEVER again...\nCheers, Jo")


def test_measure_gives_the_number_style_facts_computes_for_a_one_text_person():
    facts = style_facts([RICH])
    assert len(facts) >= 12
    for fact in facts:
        assert measure(fact.measure.metric, RICH) == pytest.approx(fact.measure.mean, abs=1e-3), fact.measure.metric
        assert measure(fact.measure.metric, Text.of(RICH)) == measure(fact.measure.metric, RICH)
    assert measure("no-such-metric", RICH) is None


def test_spreads_are_never_below_their_floors():
    texts = [RICH, prose([12] * 4), punctuated(10), letter(2, True, True), letter(4, True, True)]
    facts = style_facts(texts) + style_facts([prose([10] * 3)]) + style_facts([RICH])
    assert {f.measure.metric for f in facts} >= {"sentence_words", "punctuation:comma", "opens_with:Hi all,"}
    for fact in facts:
        m = fact.measure
        kind = m.metric.partition(":")[0]
        floor = SPREAD_FLOOR.get(m.metric, 0.25 if kind in ("opens_with", "ends_with") else RATE_FLOOR)
        assert m.spread >= floor and m.spread >= 0.1 * abs(m.mean) - 1e-3, m
    # A person whose texts agree exactly still gets the floor, not zero.
    same = by_metric(style_facts([prose([10] * 3), prose([10] * 3, offset=4)]))
    assert same["sentence_words"].measure.spread == SPREAD_FLOOR["sentence_words"]
    assert same["punctuation:semicolon"].measure.spread == RATE_FLOOR


def test_fact_ids_follow_the_metric_not_the_numbers():
    assert fact_id("sentence_words") == fact_id("sentence_words") != fact_id("paragraph_sentences")
    assert re.fullmatch(r"m[0-9a-f]{7}", fact_id("punctuation:comma"))
    short, long = by_metric(style_facts([prose([6] * 3)])), by_metric(style_facts([prose([20] * 3)]))
    assert short["sentence_words"].statement != long["sentence_words"].statement
    assert short["sentence_words"].id == long["sentence_words"].id == fact_id("sentence_words")
    assert all(f.id == fact_id(f.measure.metric) for f in style_facts([RICH]))


def test_merge_facts_weights_by_text_counts_and_restates():
    old = style_facts([prose([10] * 3), prose([10] * 3, offset=5)])  # 2 texts of 10-word sentences
    new = style_facts([prose([22] * 2)])  # 1 text of 22-word sentences
    merged = by_metric(merge_facts(old, new, old_texts=2, new_texts=1))
    m = merged["sentence_words"].measure
    assert m.mean == pytest.approx(14.0) and (m.low, m.high) == (pytest.approx(14.0), pytest.approx(14.0))
    assert m.spread == max(by_metric(old)["sentence_words"].measure.spread, by_metric(new)["sentence_words"].measure.spread)
    assert merged["sentence_words"].statement == "Sentences average 14 words; half are between 14 and 14 words long."
    assert merged["sentence_words"].id == by_metric(old)["sentence_words"].id
    equal = by_metric(merge_facts(old, new, old_texts=5, new_texts=5))["sentence_words"].measure
    assert equal.mean == pytest.approx(16.0)


def test_merge_facts_keeps_pinned_and_person_edited_facts_and_one_sided_metrics():
    old = style_facts([prose([10] * 3), prose([10] * 3, offset=5)])
    old_by = by_metric(old)
    pinned = old_by["sentence_words"].model_copy(update={"pinned": True})
    edited = old_by["punctuation:comma"].model_copy(update={"origin": "person", "statement": "Hardly any commas."})
    only_old = old_by["punctuation:semicolon"]
    new = style_facts([sentence(10, marks={1: ",", 3: ",", 5: ","}) + " " + prose([22] * 2),
                       letter(0, True, True), letter(3, True, True)])
    assert "punctuation:semicolon" in by_metric(new)
    new = [f for f in new if f.measure.metric != "punctuation:semicolon"]
    merged = merge_facts([pinned, edited, only_old], new, old_texts=2, new_texts=3)
    merged_by = by_metric(merged)
    assert merged_by["sentence_words"] == pinned and merged_by["punctuation:comma"] == edited
    assert merged_by["punctuation:semicolon"] == only_old  # only the old side measured it
    assert merged_by["opens_with:Hi all,"] == by_metric(new)["opens_with:Hi all,"]  # only the new side
    assert len(merged) == len({f.id for f in merged}) == len(new) + 1  # no metric twice


# --- facts in profiles ------------------------------------------------------------------------------------------------


def test_the_paper_method_adds_every_measured_fact_and_can_leave_them_out(make_hyperalign, examples):
    ha, _ = make_hyperalign()
    profile = ha.infer_profile("morwenna", examples, options=InferenceOptions(method="paper"))
    expected = style_facts([e.text for e in examples])
    assert profile.facts == expected and len(expected) >= 10
    assert all(isinstance(f, Fact) and f.origin == "measured" for f in profile.facts)
    assert profile.report.measured_facts == len(expected)
    # Facts are kept apart from the hypotheses: none of them is among the hypotheses, and each id is used once.
    assert all(isinstance(h, Hypothesis) for h in profile.hypotheses)
    assert not {h.id for h in profile.hypotheses} & {f.id for f in profile.facts}
    assert profile.statements == [*profile.hypotheses, *profile.facts]
    assert "ends_with:— Keeper Morwenna, North Light" in by_metric(profile.facts)
    bare = ha.infer_profile("morwenna", examples, options=InferenceOptions(method="paper", style_facts=False))
    assert bare.facts == [] and bare.report.measured_facts == 0
    assert bare.hypotheses == profile.hypotheses


def fact_profile(hypotheses: list[Hypothesis], facts: list[Fact], n_examples: int = 5) -> Profile:
    return Profile(user_id="morwenna", hypotheses=hypotheses, facts=facts, examples_hash="0" * 16,
                   n_examples=n_examples, backend="fake", model="fake-model", prompt_version="infer_hypotheses.v1")


def test_a_profile_with_facts_round_trips_json_and_shows_them_in_markdown(tmp_path, examples):
    facts = style_facts([e.text for e in examples])
    hypothesis = Hypothesis(aspect="writing_style", statement="Signs every note.", supported=True)
    profile = fact_profile([hypothesis], facts)
    again = Profile.from_json(profile.to_json())
    assert again == profile and again.facts == facts and again.schema_version == PROFILE_SCHEMA_VERSION
    profile.save(tmp_path / "p.json")
    assert Profile.load(tmp_path / "p.json") == profile
    markdown = profile.to_markdown()
    assert "## Measured style (computed from the texts by code)" in markdown
    assert "## Writing style" in markdown
    for fact in facts:
        assert f"- **{fact.statement}** `[{fact.id}]`" in markdown


V1_DOCUMENT = {
    "schema_version": 1,
    "user_id": "morwenna",
    "attributes": {"tone": "terse"},
    "hypotheses": [{"id": "abc12345", "aspect": "writing_style", "statement": "Signs every note.",
                    "evidence": [{"quote": "Keeper Morwenna", "verified": True, "example_index": 0}],
                    "supported": True, "score": None, "pinned": True, "origin": "person"}],
    "examples_hash": "0123456789abcdef",
    "n_examples": 2,
    "backend": "fake",
    "model": "fake-model",
    "prompt_version": "infer_hypotheses.v1",
    "created_at": "2024-05-01T12:00:00Z",
    "report": {"proposed": 3, "dropped_unsupported": 1, "truncated_examples": [], "llm_calls": 4, "cache_hits": 0,
               "prompt_tokens": 100, "completion_tokens": 50, "selection": None},
}


def test_a_schema_1_profile_loads_migrated_to_the_current_schema(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(V1_DOCUMENT), encoding="utf-8")
    profile = Profile.load(path)
    assert profile.schema_version == PROFILE_SCHEMA_VERSION == 9 and profile.facts == []
    assert profile.contrast is None and profile.report.method == "paper"  # what a version-1 profile was
    assert [h.id for h in profile.hypotheses] == ["abc12345"] and profile.hypotheses[0].origin == "person"
    assert profile.hypotheses[0].pinned and profile.report.measured_facts == 0
    assert profile.report.usage == Usage(llm_calls=4, prompt_tokens=100, completion_tokens=50)
    assert json.loads(profile.to_json())["schema_version"] == 9
    assert V1_DOCUMENT["schema_version"] == 1  # the migration copies, never changes its input


V3_DOCUMENT = {
    **V1_DOCUMENT,
    "schema_version": 3,
    "hypotheses": [
        {"id": "abc12345", "aspect": "writing_style", "statement": "Signs every note.",
         "evidence": [{"quote": "Keeper Morwenna", "verified": True, "example_index": 0}],
         "supported": True, "score": None, "pinned": False, "origin": "inferred", "measure": None},
        # Measured facts were hypotheses with a `measure`: one as measured and pinned, one a person reworded.
        {"id": "m1234567", "aspect": "measured_style", "statement": "Sentences average 12 words.",
         "evidence": [{"quote": "Fog again.", "verified": True, "example_index": 1}],
         "supported": True, "pinned": True, "origin": "measured",
         "measure": {"metric": "sentence_words", "mean": 12.0, "spread": 2.0, "low": 10.0, "high": 14.0}},
        {"id": "m7654321", "aspect": "measured_style", "statement": "Hardly any commas.", "supported": True,
         "origin": "person", "measure": {"metric": "punctuation:comma", "mean": 3.0, "spread": 1.0, "z": -1.5,
                                          "contrast_mean": 20.0}},
    ],
    "report": {"proposed": 3, "dropped_unsupported": 1, "truncated_examples": [], "llm_calls": 4, "cache_hits": 2,
               "prompt_tokens": 100, "completion_tokens": 50, "selection": None, "measured_facts": 2,
               "method": "contrastive"},
    "contrast": {"model": "fake-model", "texts": [{"prompt": "Report the storm.", "text": "A storm came.",
                                                   "example_index": 0}],
                 "llm_calls": 2, "prompt_tokens": 30, "completion_tokens": 10, "seconds": 1.5},
}


def test_a_schema_3_profile_keeps_its_measured_facts_apart_and_its_counts_in_usage():
    """Migration 0004_facts_and_usage_apart: hypotheses with a `measure` become facts (ids, evidence and pins kept;
    a person's rewording stays the person's), and the report's and contrast's flat counters become their `usage`."""
    profile = Profile.from_document(V3_DOCUMENT, "v3.json")
    assert profile.schema_version == PROFILE_SCHEMA_VERSION == 9
    assert [h.id for h in profile.hypotheses] == ["abc12345"] and profile.hypotheses[0].origin == "inferred"
    assert [f.id for f in profile.facts] == ["m1234567", "m7654321"]
    measured, reworded = profile.facts
    assert measured.statement == "Sentences average 12 words." and measured.pinned and measured.origin == "measured"
    assert measured.measure.metric == "sentence_words" and (measured.measure.low, measured.measure.high) == (10, 14)
    assert [(e.quote, e.example_index) for e in measured.evidence] == [("Fog again.", 1)]
    assert reworded.origin == "person" and not reworded.pinned and reworded.measure.z == -1.5
    assert profile.report.usage == Usage(llm_calls=4, cache_hits=2, prompt_tokens=100, completion_tokens=50)
    assert (profile.report.proposed, profile.report.measured_facts, profile.report.method) == (3, 2, "contrastive")
    assert profile.contrast is not None and profile.contrast.seconds == 1.5
    assert profile.contrast.usage == Usage(llm_calls=2, prompt_tokens=30, completion_tokens=10)
    assert [t.text for t in profile.contrast.texts] == ["A storm came."]
    assert Profile.from_json(profile.to_json()) == profile  # saved at version 5, read back unchanged
    assert V3_DOCUMENT["schema_version"] == 3 and "llm_calls" in V3_DOCUMENT["report"]  # its input is left alone
    assert "measure" in V3_DOCUMENT["hypotheses"][1] and "facts" not in V3_DOCUMENT


def test_a_schema_4_profile_has_no_voice_samples_until_inferred_again():
    """Migration 0005_voice_samples: nothing to move; a version-4 profile generates as it did."""
    document = Profile.from_document(V3_DOCUMENT, "v3.json").model_dump(mode="json") | {"schema_version": 4}
    document.pop("voice_samples")
    profile = Profile.from_document(document, "v4.json")
    assert profile.schema_version == 9 and profile.voice_samples == [] and [f.id for f in profile.facts] == [
        "m1234567", "m7654321"]


def test_a_schema_5_profile_keeps_no_failed_hypotheses_until_inferred_again():
    """Migration 0006_verification_leans: nothing to move; a version-5 profile's dropped hypotheses were counted only."""
    document = Profile.from_document(V3_DOCUMENT, "v3.json").model_dump(mode="json") | {"schema_version": 5}
    document["report"].pop("failed_verification", None)
    profile = Profile.from_document(document, "v5.json")
    assert profile.schema_version == 9 and profile.report.failed_verification == []


def test_a_schema_6_profile_keeps_no_copied_statements_until_inferred_again():
    """Migration 0007_copied_statements: nothing to move; a version-6 profile counted them only."""
    document = Profile.from_document(V3_DOCUMENT, "v3.json").model_dump(mode="json") | {"schema_version": 6}
    document["report"].pop("copied_statements", None)
    document["report"]["dropped_copied"] = 2
    profile = Profile.from_document(document, "v6.json")
    assert profile.schema_version == 9 and profile.report.copied_statements == []
    assert profile.report.dropped_copied == 2


def test_a_schema_8_profile_has_no_word_use_and_ranks_by_its_facts_until_inferred_again():
    """Migration 0009_word_use: nothing to move; a version-8 profile's best-of-N ranks as it did."""
    document = Profile.from_document(V3_DOCUMENT, "v3.json").model_dump(mode="json") | {"schema_version": 8}
    document.pop("word_use", None)
    profile = Profile.from_document(document, "v8.json")
    assert profile.schema_version == 9 and profile.word_use is None
    assert "## Word use" not in profile.to_markdown()


def test_a_schema_10_profile_is_refused_by_name():
    document = {**V1_DOCUMENT, "schema_version": 10}
    with pytest.raises(InputError, match=r"schema_version 10 is newer than this hyperalign reads \(9\)"):
        Profile.from_document(document, "new.json")


def test_every_metric_measures_an_empty_text_without_error():
    for metric in METRICS:
        value = measure(metric, "")
        assert value is None or value == 0.0, metric
    assert style_facts(["", "   "]) == []
