"""The whole-answer strategies on the chat endpoint, through the openai SDK. `hyperalign:revise`: the answer is
measured on the user's profile facts, revised by one more upstream call, and the revision is sent only where it
measures closer; a failing revision call leaves the written answer, not an error. `hyperalign:best-of=4`: three
samples beside the client's answer, the one closest to the person sent. Neither streams."""

from __future__ import annotations

import openai
import pytest

from hyperalign.errors import LLMError
from hyperalign.llm import CompletionRequest
from hyperalign.llm.fake import FakeBackend
from hyperalign.pipeline.steer import SteerLevel, finish, plan
from hyperalign.pipeline.word_use import measure_word_use
from service_support import responder, start_service
from test_revise import CLOSER, DRAFT, WORSE
from test_service_api import sdk, with_profile
from test_steer import bev

REVISE = {"X-Hyperalign-Strategy": "hyperalign:revise"}
ASK = [{"role": "user", "content": "Write a note inviting the volunteers to Saturday's event."}]


def editing(revision: str | None):
    """The service's usual fake, except that chat answers are DRAFT and the editor answers `revision` (None: the
    revision call fails)."""
    def respond(request: CompletionRequest) -> str:
        system = request.messages[0]["content"] if request.messages[0]["role"] == "system" else ""
        if system.startswith("You are an editor"):
            if revision is None:
                raise LLMError("the model went away")
            return revision
        if request.json_schema is None and "ghost-writing" in system:
            return CLOSER if request.temperature > 0 and request.seed == 2 else DRAFT  # one sample is closer
        return responder(request)
    return respond


@pytest.fixture
def bev_service(database_url, request):
    backend = FakeBackend(editing(request.param))
    server, service = start_service(database_url, backend=backend)
    with_profile(service)  # the user, with a profile; then bev's facts as its next version
    key = next(p.user_id for p in service.store.list_profiles() if p.user_id.endswith(":ann"))
    service.store.save(bev().model_copy(update={"user_id": key}), expected_version=None, author="test",
                       action="import")
    yield service, backend
    server.__exit__()
    service.store.close()


@pytest.mark.parametrize("bev_service", [CLOSER], indirect=True)
def test_a_revision_that_measures_closer_is_what_the_client_gets(bev_service):
    service, backend = bev_service
    raw = sdk(service).chat.completions.with_raw_response.create(model="any", user="ann", messages=ASK,
                                                                 extra_headers=REVISE)
    answer = raw.parse()
    assert raw.headers["x-hyperalign-revision"] == "kept" and raw.headers["x-hyperalign-strategy"] == "hyperalign:revise"
    assert answer.choices[0].message.content == CLOSER
    first, revision = backend.requests[-2:]
    assert revision.messages[0]["content"].startswith("You are an editor") and revision.temperature == 0
    # the draft as it would be sent: "!" edited out and the opening put in front by code, so neither is asked for
    assert "<draft>\nRight then.\n\nHello everyone. We are" in revision.messages[1]["content"]
    assert "exclamation" not in revision.messages[1]["content"]
    assert revision.logit_bias == first.logit_bias and revision.prefill is None
    spent = sum(len(m["content"].split()) for r in (first, revision) for m in r.messages)
    assert answer.usage.prompt_tokens == spent  # both calls are in the response's usage


@pytest.mark.parametrize("bev_service", [WORSE], indirect=True)
def test_a_revision_that_is_no_closer_leaves_the_answer_as_written(bev_service):
    service, _ = bev_service
    raw = sdk(service).chat.completions.with_raw_response.create(model="any", user="ann", messages=ASK,
                                                                 extra_headers=REVISE)
    steering = plan(bev(), SteerLevel.LIGHT, service.backend.capabilities)
    assert raw.headers["x-hyperalign-revision"] == "not-kept"
    assert raw.parse().choices[0].message.content == finish(DRAFT, steering)


@pytest.mark.parametrize("bev_service", [None], indirect=True)
def test_a_failing_revision_call_sends_the_written_answer(bev_service):
    service, _ = bev_service
    raw = sdk(service).chat.completions.with_raw_response.create(model="any", user="ann", messages=ASK,
                                                                 extra_headers=REVISE)
    assert raw.headers["x-hyperalign-revision"] == "failed" and "Saturday" in raw.parse().choices[0].message.content


@pytest.mark.parametrize("bev_service", [CLOSER], indirect=True)
def test_a_stream_cannot_be_revised_and_says_so(bev_service):
    service, backend = bev_service
    calls = len(backend.requests)
    with pytest.raises(openai.BadRequestError, match="cannot stream") as caught:
        sdk(service).chat.completions.create(model="any", user="ann", messages=ASK, stream=True,
                                             extra_headers=REVISE)
    assert caught.value.body["param"] == "stream" and len(backend.requests) == calls  # refused before any call


@pytest.mark.parametrize("bev_service", [CLOSER], indirect=True)
def test_best_of_sends_the_answer_closest_to_the_person_and_counts_every_call(bev_service):
    service, backend = bev_service
    raw = sdk(service).chat.completions.with_raw_response.create(
        model="any", user="ann", messages=ASK, extra_headers={"X-Hyperalign-Strategy": "hyperalign:best-of=4"})
    answer = raw.parse()
    assert raw.headers["x-hyperalign-best-of"] == "4;margin;3" and answer.choices[0].message.content == CLOSER
    written = backend.requests[-4:]
    assert sorted((r.temperature, r.seed) for r in written) == [(0.0, 0), (0.8, 1), (0.8, 2), (0.8, 3)]
    assert answer.usage.completion_tokens == 3 * len(DRAFT.split()) + len(CLOSER.split())
    with pytest.raises(openai.BadRequestError, match="cannot stream"):
        sdk(service).chat.completions.create(model="any", user="ann", messages=ASK, stream=True,
                                             extra_headers={"X-Hyperalign-Strategy": "hyperalign:best-of=4"})


@pytest.fixture
def copying_service(database_url):
    """The service's usual fake, except that a greedy chat answer hands back the user's shown text word for word."""
    def respond(request: CompletionRequest) -> str:
        system = request.messages[0]["content"] if request.messages[0]["role"] == "system" else ""
        if request.json_schema is None and "<user_text" in system and request.temperature == 0:
            return system.split("<user_text", 1)[1].split(">", 1)[1].split("</user_text>", 1)[0].strip()
        return responder(request)

    backend = FakeBackend(respond)
    server, service = start_service(database_url, backend=backend)
    with_profile(service)
    yield service, backend
    server.__exit__()
    service.store.close()


def test_an_answer_that_copies_the_shown_text_is_asked_again_and_the_stream_says_it_is_unguarded(copying_service):
    service, backend = copying_service
    shown = {"X-Hyperalign-Strategy": "hyperalign:examples=1"}
    raw = sdk(service).chat.completions.with_raw_response.create(model="any", user="ann", messages=ASK,
                                                                 extra_headers=shown)
    answer = raw.parse()
    assert raw.headers["x-hyperalign-rewrites"] == "1" and raw.headers["x-hyperalign-copy-rate"] == "0.0000"
    assert answer.choices[0].message.content.startswith("Fog again. Reply with")  # the sampled rewrite
    first, again = backend.requests[-2:]
    assert (first.temperature, again.temperature, again.seed) == (0.0, 0.8, 1)
    assert answer.usage.completion_tokens == sum(len(r.split()) for r in (
        first.messages[0]["content"].split("<user_text", 1)[1].split(">", 1)[1].split("</user_text>", 1)[0].strip(),
        answer.choices[0].message.content))
    calls = len(backend.requests)
    plain = sdk(service).chat.completions.with_raw_response.create(model="any", user="ann", messages=ASK)
    assert plain.headers["x-hyperalign-rewrites"] == "0" and len(backend.requests) == calls + 1
    stream = sdk(service).chat.completions.with_raw_response.create(model="any", user="ann", messages=ASK,
                                                                    stream=True, extra_headers=shown)
    assert stream.headers["x-hyperalign-copy-guard"] == "off: stream"


@pytest.mark.parametrize("bev_service", [CLOSER], indirect=True)
def test_best_of_ranks_by_the_profiles_word_use_where_it_has_one_and_says_so(bev_service):
    service, _ = bev_service
    key = next(p.user_id for p in service.store.list_profiles() if p.user_id.endswith(":ann"))
    current = service.store.get(key)
    use = measure_word_use([CLOSER, f"{CLOSER} {CLOSER}"], [DRAFT])  # bev writes like CLOSER; the model like DRAFT
    service.store.save(current.profile.model_copy(update={"word_use": use}), expected_version=current.version,
                       author="test", action="import")
    raw = sdk(service).chat.completions.with_raw_response.create(
        model="any", user="ann", messages=ASK, extra_headers={"X-Hyperalign-Strategy": "hyperalign:best-of=4"})
    assert raw.headers["x-hyperalign-best-of"] == "4;word-margin;3"
    assert raw.parse().choices[0].message.content == CLOSER
