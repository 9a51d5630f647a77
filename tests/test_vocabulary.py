"""The text-to-token mapping of steering, on the embedded model's real vocabulary (read from its GGUF file)."""

from __future__ import annotations

import pytest

from hyperalign.llm import TextBias
from hyperalign.llm.embedded import EmbeddedBackend
from hyperalign.llm.vocabulary import Vocabulary, _decode_bpe, _decode_spm


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return EmbeddedBackend().vocabulary()


def test_the_embedded_vocabulary_is_read_whole_and_decoded_to_text(vocabulary):
    assert len(vocabulary) == 49152  # SmolLM2's vocabulary
    assert vocabulary.texts[vocabulary.by_text[" then"][0]] == " then"
    assert vocabulary.by_text.get("<|im_end|>") is None  # control tokens are never biased


def test_a_character_bias_reaches_every_token_that_writes_it(vocabulary):
    ids = vocabulary.ids(TextBias(text="!", kind="character", bias=-100))
    written = {vocabulary.texts[i] for i in ids}
    assert {"!", " !", "!!", '!"'} <= written and all("!" in t for t in written if t)
    assert len(ids) == sum(1 for t in vocabulary.texts if t and "!" in t)


def test_a_word_bias_reaches_the_word_led_by_a_space_in_each_case_and_never_a_piece_of_another(vocabulary):
    written = {vocabulary.texts[i] for i in vocabulary.ids(TextBias(text="then", bias=2))}
    assert {" then", " Then"} <= written and all(t.startswith(" ") for t in written)
    # The bare "I" starts an answer ("I'm sorry…"), the bare "me" is a piece of "some": neither is reached.
    assert {vocabulary.texts[i] for i in vocabulary.ids(TextBias(text="i", bias=3))} == {" I", " i"}
    assert "me" not in {vocabulary.texts[i] for i in vocabulary.ids(TextBias(text="me", bias=3))}
    # Punctuation and contraction pieces are written bare: both forms.
    assert {"'t"} <= {vocabulary.texts[i] for i in vocabulary.ids(TextBias(text="'t", bias=1))}
    assert {".", " ."} <= {vocabulary.texts[i] for i in vocabulary.ids(TextBias(text=".", bias=1))}
    assert vocabulary.ids(TextBias(text="compostable-ish", bias=2)) == []  # not one token: nothing is biased


def test_where_two_biases_reach_one_token_the_stronger_holds(vocabulary):
    biases = vocabulary.logit_bias([TextBias(text="!", bias=1.0), TextBias(text="!", kind="character", bias=-100)])
    assert biases[vocabulary.by_text["!"][0]] == -100


def test_both_token_spellings_decode():
    assert _decode_bpe("Ġthen") == " then" and _decode_bpe("âĢĿ") == "”"
    assert _decode_bpe("âĢ") is None  # half a character
    assert _decode_spm("▁then", kind=1) == " then" and _decode_spm("<0x21>", kind=6) == "!"
