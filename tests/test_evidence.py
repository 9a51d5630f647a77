from __future__ import annotations

import pytest

from hyperalign.pipeline.evidence import MIN_QUOTE_CHARS, check, locate, normalize
from hyperalign.profiles.model import UserExample


def normalized(*texts: str) -> list[str]:
    return [normalize(t) for t in texts]


# --- normalize -------------------------------------------------------------------------------------------------


def test_normalize_collapses_whitespace():
    assert normalize("  Fog\u00a0 again.\r\n\tThe   lamp\n\nturned  ") == "Fog again. The lamp turned"


def test_normalize_maps_typographic_quotes():
    assert normalize("“Gears first,” she said. It’s ‘fine’. „Ja“") == "\"Gears first,\" she said. It's 'fine'. \"Ja\""


def test_normalize_maps_dashes():
    assert normalize("north–south — and back") == "north-south - and back"


def test_normalize_applies_nfkc():
    assert normalize("ﬁne ＡＢＣ ①") == "fine ABC 1"
    assert normalize("wait…") == "wait..."
    assert normalize("cafe\u0301") == "café"  # combining accent composed


# --- locate ----------------------------------------------------------------------------------------------------


def test_locate_finds_quote_across_line_breaks_crlf_and_extra_spaces():
    examples = normalized("Nothing here at all, sorry.", "The lamp turned\r\n412 times   last\nnight, it did.")
    assert locate("The lamp turned 412 times last night", examples) == 1
    assert locate("lamp   turned\n412 times", examples) == 1


def test_locate_tolerates_curly_quotes_and_dashes_in_quote():
    examples = normalized("He said \"gears first\" - then left the gallery.")
    assert locate("said “gears first” — then left", examples) == 0


def test_locate_returns_first_matching_example():
    examples = normalized("Gears first, opinions later.", "Gears first, opinions later.")
    assert locate("Gears first, opinions later", examples) == 0


def test_locate_strips_edge_punctuation_of_quote():
    examples = normalized("Oil the gears before you touch anything else.")
    assert locate('"Oil the gears before you touch anything else!"', examples) == 0
    assert locate("(Oil the gears before you touch...", examples) == 0
    assert locate("Oil the gears before you touch everything", examples) is None


def test_locate_ellipsis_pieces_in_order_in_same_example():
    examples = normalized(
        "Storm from the west. Two panes gone on the gallery.",
        "Fog again. The lamp turned 412 times last night and not once did it complain.",
    )
    assert locate("The lamp turned 412 times … not once did it complain", examples) == 1
    assert locate("The lamp turned 412 times ... not once did it complain", examples) == 1


def test_locate_ellipsis_pieces_out_of_order_do_not_count():
    examples = normalized("Fog again. The lamp turned 412 times last night and not once did it complain.")
    assert locate("not once did it complain ... The lamp turned 412 times", examples) is None


def test_locate_ellipsis_pieces_from_different_examples_do_not_count():
    examples = normalized("Storm from the west, force nine.", "Two panes gone on the gallery.")
    assert locate("Storm from the west ... Two panes gone on the gallery", examples) is None


def test_locate_short_quotes_never_count():
    examples = normalized("Fog again. Count them. Good seals.")
    short = "Count them."
    assert len(short.strip(".")) < MIN_QUOTE_CHARS
    assert locate(short, examples) is None
    assert locate("Fog ... seals", examples) is None  # pieces together are still too short
    assert locate("", examples) is None
    assert locate(" ... ", examples) is None


def test_locate_min_quote_chars_boundary():
    text = "aaaa bbbb cc dddd"  # "aaaa bbbb cc" is exactly 12 characters
    examples = normalized(text)
    assert locate(text[:MIN_QUOTE_CHARS], examples) == 0
    assert locate("aaaa bbbb c", examples) is None


def test_locate_matches_whole_words_only():
    examples = normalized("The other lighthouse keepers were asleep.")
    assert locate("her lighthouse keepers", examples) is None
    assert locate("other lighthouse keepers", examples) == 0


def test_locate_ellipsis_pieces_must_each_be_two_words():
    examples = normalized("the cat and the dog and the bird and the fox were all there")
    assert locate("the ... the ... the ... the", examples) is None
    assert locate("the cat ... the fox", examples) == 0


def test_locate_fabricated_quote_does_not_count():
    examples = normalized("Fog again. The lamp turned 412 times last night.")
    assert locate("The lamp turned 413 times last night", examples) is None
    assert locate("I love the smell of diesel in the morning", examples) is None


def test_locate_with_no_examples():
    assert locate("a perfectly long quotation", []) is None


# --- check -----------------------------------------------------------------------------------------------------


@pytest.fixture
def keeper_examples() -> list[UserExample]:
    return [
        UserExample(text="Fog again. The lamp turned 412 times last night."),
        UserExample(text="Supply boat late.\r\nTea rationed to three cups a day."),
    ]


def test_check_supported_when_one_quote_verified(keeper_examples):
    h = check(
        "writing_style",
        "  Rations things numerically.  ",
        ["Tea rationed to three cups a day", "I never drink tea, ever"],
        keeper_examples,
    )
    assert h.supported is True
    assert h.statement == "Rations things numerically."
    assert h.aspect == "writing_style"
    assert [(e.quote, e.verified, e.example_index) for e in h.evidence] == [
        ("Tea rationed to three cups a day", True, 1),
        ("I never drink tea, ever", False, None),
    ]


def test_check_unsupported_when_all_quotes_fabricated(keeper_examples):
    h = check("personality", "Loves crowds.", ["I adore a crowded room", "Parties every night"], keeper_examples)
    assert h.supported is False
    assert all(not e.verified and e.example_index is None for e in h.evidence)


def test_check_unsupported_when_only_short_quotes(keeper_examples):
    h = check("writing_style", "Terse.", ["Fog again.", "late"], keeper_examples)
    assert h.supported is False


def test_check_without_quotes_is_unsupported(keeper_examples):
    h = check("writing_style", "Terse.", [], keeper_examples)
    assert h.evidence == [] and h.supported is False


def test_check_dedupes_quotes_and_skips_blank(keeper_examples):
    h = check(
        "writing_style",
        "Counts things.",
        ["The lamp turned 412 times", "  The lamp turned 412 times ", "", "   ", "The lamp turned 412 times"],
        keeper_examples,
    )
    assert [e.quote for e in h.evidence] == ["The lamp turned 412 times"]
    assert h.evidence[0].verified and h.evidence[0].example_index == 0


def test_check_records_example_index_per_quote(keeper_examples):
    h = check("writing_style", "Short sentences.", ["Supply boat late. Tea rationed", "Fog again. The lamp"], keeper_examples)
    assert [e.example_index for e in h.evidence] == [1, 0]
    assert h.supported


# --- near matches ----------------------------------------------------------------------------------------------


def test_a_quote_with_one_word_changed_counts_as_the_real_sentence_flagged_near(keeper_examples):
    h = check("writing_style", "Counts things.", ["The lamp turned 413 times last night"], keeper_examples)
    (evidence,) = h.evidence
    assert evidence.verified and h.supported and evidence.example_index == 0
    assert evidence.quote == "The lamp turned 412 times last night." and evidence.near_match == (
        "The lamp turned 413 times last night")


def test_the_closest_sentence_is_the_near_match():
    examples = [UserExample(text="The storm took two panes from the gallery. The storm took two panes from the lamp."),
                UserExample(text="The storm took ten panes from the gallery roof.")]
    (evidence,) = check("writing_style", "Storms.", ["The storm took two panes off the gallery"], examples).evidence
    assert (evidence.quote, evidence.example_index) == ("The storm took two panes from the gallery.", 0)


@pytest.mark.parametrize("quote", [
    "The person counts things obsessively",  # a description, not a copy
    "Lamp turned 4 times",  # too short to be near anything (under NEAR_MIN_CHARS)
    "The lamp spun 999 times every single night",  # too many changes
])
def test_what_is_not_a_near_copy_does_not_count(keeper_examples, quote):
    (evidence,) = check("writing_style", "Counts things.", [quote], keeper_examples).evidence
    assert not evidence.verified and evidence.near_match is None and evidence.quote == quote
