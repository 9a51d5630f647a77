"""Steering on the chat endpoint: the code levers on every upstream (whole and streamed answers), the token levers
where the upstream's model takes them, the X-Hyperalign-Steer header in and the levers named in the response."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai
import pytest

from hyperalign.llm import Capabilities, TextBias
from hyperalign.llm.fake import FakeBackend
from hyperalign.pipeline.steer import SteerLevel, finish, plan
from hyperalign.profiles.model import fact_id
from hyperalign.profiles.store import Action
from hyperalign.service.steering import finish_completion, finish_stream
from hyperalign.service.tenants import authenticate
from hyperalign.service.users import end_user
from openai_test_server import OpenAITestServer, completion, streamed
from service_support import Service, responder, start_service
from test_steer import bev

OPENING, SIGN_OFF = "Right then.", "Bev (compost is not optional)"
TASK = [{"role": "user", "content": "Write a note about the seed swap."}]


def put_bev(service: Service, user: str = "bev") -> dict[str, str]:
    """bev's profile stored for `user`; its facts' ids by metric kind."""
    tenant = authenticate(service.store, service.keys["acme"])[1]
    profile = bev().model_copy(update={"user_id": end_user(tenant, user).key})
    service.store.save(profile, expected_version=0, author="test", action=Action.INFER)
    return {h.measure.metric.partition(":")[0]: h.id for h in profile.facts if h.measure}


def sdk(service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.url}/v1", api_key=service.keys["acme"], max_retries=0)


def test_the_code_levers_apply_and_the_response_names_each_lever(service):
    ids = put_bev(service)
    raw = sdk(service).chat.completions.with_raw_response.create(model="m", user="bev", messages=TASK)
    text = raw.parse().choices[0].message.content
    assert text.startswith(f"{OPENING}\n\nFog again.") and text.endswith(f"\n\n{SIGN_OFF}")
    assert raw.headers["x-hyperalign-steer"] == "light"
    levers = raw.headers["x-hyperalign-levers"].split(",")
    assert f"{ids['opens_with']}=code" in levers and f"{ids['ends_with']}=code" in levers
    # This upstream's model takes no logit bias: no token lever is applied, and none is claimed.
    assert service.backend.requests[-1].logit_bias == [] and not any(x.endswith("=steering") for x in levers)


def test_a_streamed_answer_gets_the_same_levers_as_a_whole_one(service):
    put_bev(service)
    whole = sdk(service).chat.completions.create(model="m", user="bev", messages=TASK).choices[0].message.content
    stream = sdk(service).chat.completions.create(model="m", user="bev", messages=TASK, stream=True)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == whole and pieces[0] == f"{OPENING}\n\n"


def test_steering_off_leaves_the_answer_alone_and_a_bad_level_is_a_400(service):
    put_bev(service)
    raw = sdk(service).chat.completions.with_raw_response.create(
        model="m", user="bev", messages=TASK, extra_headers={"X-Hyperalign-Steer": "off"})
    assert raw.parse().choices[0].message.content.startswith("Fog again.")
    assert raw.headers["x-hyperalign-steer"] == "off" and "x-hyperalign-levers" not in raw.headers
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(service).chat.completions.create(model="m", user="bev", messages=TASK,
                                             extra_headers={"X-Hyperalign-Steer": "loud"})
    assert "X-Hyperalign-Steer" in str(caught.value) and caught.value.body["param"] == "X-Hyperalign-Steer"


def test_an_upstream_model_that_takes_logit_bias_gets_the_token_levers(database_url):
    backend = FakeBackend(responder, capabilities=Capabilities(logit_bias=True, prefill=True))
    server, service = start_service(database_url, backend=backend)
    try:
        put_bev(service)
        raw = sdk(service).chat.completions.with_raw_response.create(
            model="m", user="bev", messages=TASK, extra_headers={"X-Hyperalign-Steer": "strong"})
        request = backend.requests[-1]
        assert TextBias(text="!", kind="character", bias=-100) in request.logit_bias
        assert request.prefill is None  # the opening by code, as the library does by default
        assert any(x.endswith("=steering") for x in raw.headers["x-hyperalign-levers"].split(","))
    finally:
        server.__exit__()
        service.store.close()


@contextmanager
def bev_behind(database_url: str, upstream: OpenAITestServer) -> Iterator[Service]:
    """A service whose upstream is `upstream`, bev's profile stored; closed on exit."""
    server, service = start_service(database_url, upstream_base_url=upstream.base_url)
    try:
        put_bev(service)
        yield service
    finally:
        server.__exit__()
        service.store.close()


def test_an_openai_compatible_upstream_gets_no_token_levers_but_the_answer_gets_the_code_ones(database_url):
    with OpenAITestServer() as upstream, bev_behind(database_url, upstream) as service:
        upstream.script(completion("Bring seeds."))
        text = sdk(service).chat.completions.create(model="m", user="bev", messages=TASK)
        assert text.choices[0].message.content == f"{OPENING}\n\nBring seeds.\n\n{SIGN_OFF}"
        assert "logit_bias" not in upstream.requests[-1].body and "prefill" not in upstream.requests[-1].body
        assert upstream.tokenize_requests  # asked once at start-up: no /tokenize here, so no token levers
        assert not any(x.endswith("=steering") for x in raw_levers(service))
        upstream.script(streamed([OPENING, " Bring", " seeds."]))  # the model wrote the opening itself
        stream = sdk(service).chat.completions.create(model="m", user="bev", messages=TASK, stream=True)
        pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
        assert "".join(pieces) == f"{OPENING} Bring seeds.\n\n{SIGN_OFF}"


def test_an_upstream_with_its_own_tokenizer_is_steered_through_it(database_url):
    vocabulary = {"!": 5, "!!": 6, " right": 11, " Right": 12, "—": 20, " —": 21, ".": 30}
    with OpenAITestServer(vocabulary=vocabulary) as upstream, bev_behind(database_url, upstream) as service:  # /tokenize as llama.cpp's and vLLM's servers have
        upstream.script(completion("Bring seeds."), streamed(["Bring", " seeds."]))
        raw = sdk(service).chat.completions.with_raw_response.create(
            model="m", user="bev", messages=TASK, logit_bias={"5": 3})  # the client's own bias holds
        sent = upstream.requests[-1].body["logit_bias"]
        assert sent["5"] == 3 and sent["6"] < 0 and sent["11"] > 0 and sent["20"] > 0
        assert any(x.endswith("=steering") for x in raw.headers["x-hyperalign-levers"].split(","))
        list(sdk(service).chat.completions.create(model="m", user="bev", messages=TASK, stream=True))
        assert upstream.requests[-1].body["logit_bias"]["6"] < 0  # streamed requests too


def test_never_used_punctuation_is_edited_out_of_whole_and_streamed_answers(database_url):
    with OpenAITestServer() as upstream, bev_behind(database_url, upstream) as service:
        upstream.script(completion("Bring seeds! Now!"), streamed(["Bring", " seeds!", " Now!!"]))
        raw = sdk(service).chat.completions.with_raw_response.create(model="m", user="bev", messages=TASK)
        assert raw.parse().choices[0].message.content == f"{OPENING}\n\nBring seeds. Now.\n\n{SIGN_OFF}"
        assert f"{fact_id('punctuation:exclamation')}=code" in raw.headers["x-hyperalign-levers"].split(",")
        stream = sdk(service).chat.completions.create(model="m", user="bev", messages=TASK, stream=True)
        pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
        assert "".join(pieces) == f"{OPENING}\n\nBring seeds. Now.\n\n{SIGN_OFF}"


def raw_levers(service: Service) -> list[str]:
    raw = sdk(service).chat.completions.with_raw_response.create(model="m", user="bev", messages=TASK)
    return raw.headers.get("x-hyperalign-levers", "").split(",")


def events(pieces: list[str], *, last_has_text: bool = False, usage: bool = True) -> list[str]:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    out = [json.dumps(base | {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]})
           for p in (pieces[:-1] if last_has_text else pieces)]
    final = {"content": pieces[-1]} if last_has_text else {}
    out.append(json.dumps(base | {"choices": [{"index": 0, "delta": final, "finish_reason": "stop"}]}))
    if usage:
        out.append(json.dumps(base | {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}))
    return out


async def collect(raw: list[str], steering) -> tuple[str, list[dict]]:
    async def source():
        for event in raw:
            yield event

    parsed = [json.loads(e) async for e in finish_stream(source(), steering)]
    text = "".join((e["choices"][0]["delta"].get("content") or "") for e in parsed if e["choices"])
    return text, parsed


@pytest.mark.parametrize("pieces", [["Bring", " seeds", " on", " Saturday."], ["Bring seeds on Saturday."], [""],
                                    ["Right", " then.", " Bring seeds."]])
@pytest.mark.parametrize("last_has_text", [False, True])
async def test_a_stream_finishes_as_the_whole_text_would(pieces, last_has_text):
    steering = plan(bev(), SteerLevel.LIGHT, Capabilities())
    text, parsed = await collect(events(pieces, last_has_text=last_has_text), steering)
    assert text == finish("".join(pieces), steering)
    finishing = [i for i, e in enumerate(parsed) if e["choices"] and e["choices"][0]["finish_reason"]]
    assert finishing == [len(parsed) - 2] and parsed[-1]["choices"] == []  # one finish, then the usage event


async def test_nothing_to_apply_passes_the_stream_and_the_completion_through_untouched():
    raw = events(["Bring", " seeds."])
    nothing = plan(bev(), SteerLevel.OFF, Capabilities())
    assert [e async for e in finish_stream(_aiter(raw), nothing)] == raw
    body = httpx.Response(200, json={"choices": [{"message": {"content": "Bring seeds."}}]}).content
    assert finish_completion(body, nothing) == body
    steered = json.loads(finish_completion(body, plan(bev(), SteerLevel.LIGHT, Capabilities())))
    assert steered["choices"][0]["message"]["content"] == f"{OPENING}\n\nBring seeds.\n\n{SIGN_OFF}"


async def _aiter(items):
    for item in items:
        yield item
