"""Token steering through an OpenAI-compatible server (llm/server_tokens.py), against a real loopback server: the
text biases become `logit_bias` by the server's own /tokenize; a server without one gets no biases, says so once,
the answer is neither claimed as steered nor cached as if it were."""

from __future__ import annotations

import logging

from hyperalign import HyperAlign
from hyperalign.llm import CompletionCache, CompletionRequest, LLMClient, TextBias
from hyperalign.llm.openai import OpenAIBackend
from hyperalign.llm.server_tokens import spellings, tokenize_url
from hyperalign.pipeline.generate import GenerationOptions
from openai_test_server import COMPLETIONS_PATH, OpenAITestServer
from test_steer import bev

BIASES = [TextBias(text="!", kind="character", bias=-6.0), TextBias(text="right", bias=1.5),
          TextBias(text="—", bias=2.0), TextBias(text="overall", bias=-3.0)]
VOCABULARY = {"!": 5, "!!": 6, "!\n": 7, " right": 11, " Right": 12, "right": 13, "—": 20, " —": 21}
ASK = [{"role": "user", "content": "Write a note."}]


def chats(server: OpenAITestServer) -> list[dict]:
    return [r.body for r in server.requests if r.path == COMPLETIONS_PATH]


def test_the_tokenize_url_sits_beside_v1_and_spellings_follow_the_vocabulary_mapping():
    assert tokenize_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/tokenize"
    assert tokenize_url("http://gpu.local/llm/v1/") == "http://gpu.local/llm/tokenize"
    assert spellings(TextBias(text="right", bias=1.0)) == [" RIGHT", " Right", " right"]  # a word only as a word
    assert spellings(TextBias(text="—", bias=1.0)) == [" —", "—"]  # punctuation bare as well
    assert {"!", " !", "!!", "!\n"} <= set(spellings(TextBias(text="!", kind="character", bias=-1.0)))


def test_biases_become_the_servers_token_ids_each_spelling_asked_once():
    with OpenAITestServer(vocabulary=VOCABULARY) as server:
        backend = OpenAIBackend(model="m", base_url=server.base_url, max_retries=0)
        assert backend.capabilities.logit_bias
        for _ in range(2):
            backend.complete(CompletionRequest(messages=ASK, logit_bias=BIASES))
        sent = [body.get("logit_bias") for body in chats(server)]
        tokenized = server.tokenize_requests
    expected = {"5": -6.0, "6": -6.0, "7": -6.0, "11": 1.5, "12": 1.5, "20": 2.0, "21": 2.0}
    assert sent == [expected, expected]  # "overall" is no single token here: nothing biased for it
    assert len(tokenized) == sum(len(spellings(b)) for b in BIASES)  # the second request asked nothing again
    assert tokenized[0].body["add_special"] is False and tokenized[0].body["model"] == "m"


def test_a_request_without_biases_never_asks_the_tokenizer():
    with OpenAITestServer(vocabulary=VOCABULARY) as server:
        OpenAIBackend(model="m", base_url=server.base_url, max_retries=0).complete(CompletionRequest(messages=ASK))
        assert not server.tokenize_requests and "logit_bias" not in chats(server)[0]


def test_a_server_without_tokenize_is_unsteered_said_once_and_not_cached(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    with OpenAITestServer() as server:  # no vocabulary: /tokenize answers 404, as Ollama's server does
        cache = CompletionCache(tmp_path / "cache.sqlite3")
        client = LLMClient(OpenAIBackend(model="m", base_url=server.base_url, max_retries=0), cache=cache)
        first = client.complete(CompletionRequest(messages=ASK, logit_bias=BIASES))
        again = client.complete(CompletionRequest(messages=ASK, logit_bias=BIASES))
        tokenize_asked = len(server.tokenize_requests)
        bodies = chats(server)
        cache.close()
    assert first.bias_dropped and again.bias_dropped and not again.cached  # asked twice: never cached as biased
    assert len(bodies) == 2 and all("logit_bias" not in b for b in bodies)
    assert tokenize_asked <= len(spellings(BIASES[0])) * len(BIASES)  # only the first request tried the tokenizer
    said = [r.message for r in caplog.records if "offers no /tokenize" in r.message]
    assert len(said) == 1 and "127.0.0.1" in said[0]


def test_a_generation_claims_token_steering_only_where_the_server_applied_it():
    options = GenerationOptions(steer="light")
    with OpenAITestServer(vocabulary=VOCABULARY) as server:
        steered = HyperAlign(LLMClient(OpenAIBackend(model="m", base_url=server.base_url, max_retries=0)))
        assert "steering" in {lever.how for lever in steered.generate(bev(), "Write a note.", options=options).levers}
        assert chats(server)[0]["logit_bias"]
    with OpenAITestServer() as server:
        plain = HyperAlign(LLMClient(OpenAIBackend(model="m", base_url=server.base_url, max_retries=0)))
        levers = plain.generate(bev(), "Write a note.", options=options).levers
        assert {lever.how for lever in levers} == {"code"}  # opening and sign-off by code; no token biases claimed


def test_openais_own_api_is_not_steered():
    backend = OpenAIBackend(model="gpt-4o-mini", api_key="sk-test")
    assert not backend.capabilities.logit_bias and "logit_bias_mapping" not in backend.identity()
