"""Token steering through an OpenAI-compatible server of one's own: the pipeline's text biases (`TextBias`) mapped
onto the served model's token ids by the server's own tokenizer — llama.cpp's and vLLM's `POST /tokenize`, beside
their `/v1` (both answer `{"tokens": [...]}`) — and sent as the chat request's `logit_bias`.

The server does not list its vocabulary, so the mapping asks for spellings, not for every token:
- a word: the word led by a space, in lower, capitalized and upper case (bare too for punctuation and contraction
  pieces), each kept where the server makes it one token — as the embedded backend's vocabulary mapping does;
- a character: its common spellings (alone, led by a space, doubled, tripled, before a line break, a space, a quote
  or a bracket), each kept where it is one token. A token that holds the character inside other text ("wow!") is
  not reached, where the embedded backend's scan of the whole vocabulary reaches it.

Each spelling is asked once per backend. A server without `/tokenize` (Ollama, LM Studio; any 404 or non-token
answer) gets no biases: a warning says so once, and the completion says its biases were dropped
(`Completion.bias_dropped`), so the generation does not claim them and the answer is not cached under them.
OpenAI's own API is not steered: its tokenizer (tiktoken) would fetch its files from outside the configured endpoint."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import httpx

from .base import TextBias

log = logging.getLogger(__name__)
# How text biases become token ids here: in the completion cache's key of biased requests (llm/client.py).
MAPPING = "server-tokenize-1"
_CHARACTER_SPELLINGS = ("{c}", " {c}", "{c}{c}", "{c}{c}{c}", " {c}{c}", "{c}\n", "{c}\n\n", "{c} ", '{c}"', "{c}'",
                        "{c})", "{c}]")


class NoTokenizer(Exception):
    """The server has no usable /tokenize."""


def tokenize_url(base_url: str) -> str:
    """The /tokenize beside a /v1 base URL (http://host:8080/v1 -> http://host:8080/tokenize)."""
    root = base_url.rstrip("/")
    return (root.removesuffix("/v1") or root) + "/tokenize"


def spellings(bias: TextBias) -> list[str]:
    if bias.kind == "character":
        return [s.format(c=bias.text) for s in _CHARACTER_SPELLINGS]
    word = bias.text.strip()
    variants = {word, word.lower(), word.capitalize(), word.upper()}
    leads = (" ",) if word[:1].isalpha() else ("", " ")
    return sorted(lead + v for v in variants for lead in leads)


class ServerTokenizer:
    def __init__(self, url: str, model: str | None, http: httpx.AsyncClient):
        self.url, self.model, self.http = url, model, http
        self.available: bool | None = None  # None: not asked yet
        self._ids: dict[str, list[int]] = {}

    async def _tokenize(self, text: str) -> list[int]:
        if text not in self._ids:
            # llama.cpp reads `content`, vLLM `prompt` and `model`; neither adds special tokens when told not to.
            body: dict[str, Any] = {"content": text, "prompt": text, "add_special": False,
                                    "add_special_tokens": False}
            if self.model:  # vLLM serves the model named (or its only one)
                body["model"] = self.model
            try:
                response = await self.http.post(self.url, json=body)
                tokens: Any = response.json().get("tokens") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                raise NoTokenizer(f"{type(exc).__name__}") from None
            if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
                raise NoTokenizer(f"HTTP {response.status_code}")
            self._ids[text] = tokens
        return self._ids[text]

    async def logit_bias(self, biases: Iterable[TextBias], endpoint: str) -> dict[str, float] | None:
        """Token id (as text, the API's key) -> bias, the stronger holding where two reach one token; None where
        the server has no tokenizer (said once)."""
        if self.available is False:
            return None
        biases = list(biases)
        try:
            asked = [(bias, await asyncio.gather(*(self._tokenize(s) for s in spellings(bias)))) for bias in biases]
        except NoTokenizer as exc:
            self.available = False
            log.warning("%s offers no /tokenize (%s): its model cannot be steered by token biases; the opening and "
                        "sign-off are still applied by code", endpoint, exc)
            return None
        self.available = True
        found: dict[str, float] = {}
        for bias, tokenized in asked:
            for ids in tokenized:
                key = str(ids[0]) if len(ids) == 1 else None
                if key is not None and abs(bias.bias) > abs(found.get(key, 0.0)):
                    found[key] = bias.bias
        return found
