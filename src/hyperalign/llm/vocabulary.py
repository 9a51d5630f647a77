"""A GGUF model's vocabulary as text, to map the pipeline's text biases (`TextBias`) onto token ids.

The tokens come from the model file itself (the `gguf` package reads its metadata; no model is loaded). Two token
spellings are decoded: byte-level BPE (`tokenizer.ggml.model` "gpt2": GPT-2's byte-to-character table, so "Ġ" is a
space — SmolLM2, Qwen, Llama 3) and SentencePiece ("llama": "▁" is a space, "<0x21>" a raw byte). Other tokenizer
kinds map nothing, and steering then does nothing (the caller says so)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from .base import TextBias

# How text biases become token ids. In the completion cache's key of every request that carries biases
# (llm/client.py), so a changed mapping never serves an answer made under the old one. 2: words only led by a space.
MAPPING_VERSION = 2
CONTROL, BYTE = 3, 6  # GGUF token types: control tokens (<|im_end|>) are never biased; byte tokens are decoded


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's table from the printable stand-in characters back to the bytes they stand for."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    stand_ins, shift = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            stand_ins.append(256 + shift)
            shift += 1
    return {chr(c): b for b, c in zip(printable, stand_ins, strict=True)}


def _decode_bpe(token: str) -> str | None:
    table = _byte_decoder()
    try:
        return bytes(table[c] for c in token).decode("utf-8")
    except (KeyError, UnicodeDecodeError):  # part of a multi-byte character: no text of its own
        return None


def _decode_spm(token: str, kind: int) -> str | None:
    if kind == BYTE:
        try:
            return bytes([int(token[3:-1], 16)]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
    return token.replace("▁", " ")


class Vocabulary:
    """Token id -> the text it writes (None where a token writes no whole character, or is a control token)."""

    def __init__(self, texts: list[str | None]):
        self.texts = texts
        # (text, kind) -> its tokens: a character's are found by scanning the whole vocabulary, once per process
        # rather than once per request.
        self._found: dict[tuple[str, str], list[int]] = {}
        self.by_text: dict[str, list[int]] = {}
        for token_id, text in enumerate(texts):
            if text:
                self.by_text.setdefault(text, []).append(token_id)

    @classmethod
    def from_gguf(cls, path: Path) -> Vocabulary:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
        tokens_field = reader.fields.get("tokenizer.ggml.tokens")
        model_field = reader.fields.get("tokenizer.ggml.model")
        if tokens_field is None or model_field is None:
            return cls([])
        tokenizer = bytes(model_field.parts[-1]).decode()
        tokens = [bytes(tokens_field.parts[i]).decode("utf-8", "replace") for i in tokens_field.data]
        types_field = reader.fields.get("tokenizer.ggml.token_type")
        types = [int(types_field.parts[i][0]) for i in types_field.data] if types_field else [1] * len(tokens)
        if tokenizer == "gpt2":
            texts = [None if kind == CONTROL else _decode_bpe(t) for t, kind in zip(tokens, types, strict=True)]
        elif tokenizer == "llama":
            texts = [None if kind == CONTROL else _decode_spm(t, kind) for t, kind in zip(tokens, types, strict=True)]
        else:
            texts = []
        return cls(texts)

    def __len__(self) -> int:
        return len(self.texts)

    def ids(self, bias: TextBias) -> list[int]:
        """The tokens a bias applies to: a character's, every token that contains it; a word's, the tokens that are
        the word led by a space, in its lower, capitalized and upper case."""
        key = (bias.text, bias.kind)
        if key not in self._found:
            self._found[key] = self._lookup(bias)
        return self._found[key]

    def _lookup(self, bias: TextBias) -> list[int]:
        if bias.kind == "character":
            return [i for i, text in enumerate(self.texts) if text and bias.text in text]
        word = bias.text.strip()
        variants = {word, word.lower(), word.capitalize(), word.upper()}
        # A word only as a word: led by a space. Its bare forms are also pieces inside other words ("me" in
        # "some"), and the bare "I" starts an answer — biased, it made an instruction-tuned 1.5B begin "I'm sorry,
        # but I can't assist" (benchmarks/results/aaac-steer-*). Punctuation and contraction pieces ("'t", "—")
        # are written bare, so they keep both forms.
        spellings = (" ",) if word[0].isalpha() else ("", " ")
        return sorted({i for v in variants for lead in spellings for i in self.by_text.get(lead + v, [])})

    def logit_bias(self, biases: Iterable[TextBias]) -> dict[int, float]:
        """Token id -> bias; where two biases reach one token the stronger one holds (a ban beats a nudge)."""
        found: dict[int, float] = {}
        for bias in biases:
            for token_id in self.ids(bias):
                if abs(bias.bias) > abs(found.get(token_id, 0.0)):
                    found[token_id] = bias.bias
        return found


@lru_cache(maxsize=4)
def gguf_vocabulary(path: Path, fingerprint: str) -> Vocabulary:
    """One model file's vocabulary, read once (the fingerprint keys the memo: a replaced file is read again)."""
    return Vocabulary.from_gguf(path)
