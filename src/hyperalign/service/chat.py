"""POST /v1/chat/completions: OpenAI's chat endpoint, personalized for the end user the request names.

The end user is looked for in this order: the X-Hyperalign-User header, then the body's `user`,
`safety_identifier` and `metadata.user_id`. Without one, or without anything kept of that user, the request passes
through unchanged. The upstream never receives the raw user id: those fields are removed and a keyed hash is sent
as `safety_identifier`. The strategy is the request's X-Hyperalign-Strategy header or the tenant's default."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header
from fastapi.responses import Response, StreamingResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    WithJsonSchema,
)

from ..errors import InputError
from ..io import check_name
from ..pipeline.generate import GenerationOptions
from ..pipeline.steer import SteerLevel, as_steer_level, for_stream
from . import budgets, errors
from .auth import CallerDep, StateDep
from .errors import RequestError, as_response
from .personalize import FEW_SHOT_EXAMPLES, Applied, shows_texts, system_message
from .schemas import MAX_USER_ID, OPTIONAL_USER_ID_PATTERN, ChatCompletion, ModelCard, ModelList
from .state import ServiceState
from .steering import finish_completion, finish_stream
from .tenants import STRATEGIES, check_strategy
from .upstream import UpstreamError, message_text
from .usage import StreamMeter, Usage, of_completion
from .users import EndUser, hashed_id, list_examples, resolve_user
from .whole_answer import STREAM_NOT_GUARDED, WHOLE_ANSWER_STRATEGIES, after_writing

router = APIRouter(tags=["chat"])


@router.get("/v1/models", response_model=ModelList, summary="The models behind the chat endpoint",
            responses=errors.responses(400, 401, 429, 502, 503))
async def list_models(caller: CallerDep, state: StateDep) -> Any:
    """OpenAI's model list: what `model` a chat request may name (the upstream's models, or the one it is fixed to)."""
    try:
        names = await state.upstream.models()
    except UpstreamError as exc:
        return as_response(exc)
    return ModelList(data=[ModelCard(id=name) for name in names])


def _whole_number(value: Any) -> Any:
    """1.0 is the JSON number 1 (JSON Schema's `integer` allows it); strings and booleans stay refused (strict)."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**64 else value


WholeNumber = BeforeValidator(_whole_number)
_TOKEN_ID = r"^-?[0-9]{1,12}$"  # [0-9], not \d: the schema's readers differ on \d (schemas.WHITESPACE)


def _seed_in_range(value: int) -> int:
    """-2^63 to 2^64 - 1, compared as JSON numbers are (doubles): a seed a JSON reader deems at the bound is at it,
    not 192 below it (the backend takes it modulo 2^31; an OpenAI-compatible upstream judges it itself)."""
    if not float(-2**63) <= float(value) <= float(2**64 - 1):
        raise ValueError("must be between -2^63 and 2^64 - 1")
    return value


def _end_user_id(value: str) -> str:
    """A user id as the service takes it (io.check_name), or empty for none: refused in the request's model, so
    that a bad one is refused wherever it is, not only where the user is looked for first."""
    if value:
        try:
            check_name(value, "the user id", MAX_USER_ID)
        except InputError as exc:
            raise ValueError(str(exc)) from None
    return value


def _metadata(value: dict[str, str]) -> dict[str, str]:
    _end_user_id(value.get("user_id", ""))
    return value


EndUserId = Annotated[StrictStr, AfterValidator(_end_user_id),
                      Field(max_length=MAX_USER_ID, json_schema_extra={"pattern": OPTIONAL_USER_ID_PATTERN})]
MAX_TOKENS = 2**31 - 1
Tokens = Annotated[int, Field(strict=True, ge=1, le=MAX_TOKENS), WholeNumber]
Penalty = Annotated[float, Field(strict=True, ge=-2, le=2)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    """One part of a message's content: text, an image, audio, a file (what is not text passes through)."""

    type: str = Field(min_length=1, max_length=100)
    text: StrictStr | None = None


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: StrictStr | list[ContentPart] | None = None


class ResponseFormat(_Open):
    type: str = Field(min_length=1, max_length=100)  # text, json_object, json_schema (and servers' own kinds)
    json_schema: dict[str, Any] | None = None


class ChatRequest(_Open):
    """OpenAI's chat-completion request, validated the same way whichever upstream answers it: the parameters that
    matter are typed and bounded as OpenAI documents them (a bad one is a 400 naming it in `param`, never a 500 or
    an upstream's surprise); fields not named here pass through to an OpenAI-compatible upstream untouched."""

    model: str = Field(max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=2_000)
    stream: StrictBool = False
    max_tokens: Tokens | None = None
    max_completion_tokens: Tokens | None = None
    temperature: Annotated[float, Field(strict=True, ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(strict=True, ge=0, le=1)] | None = None
    n: Annotated[int, Field(strict=True, ge=1, le=128), WholeNumber] | None = None
    seed: Annotated[int, Field(strict=True, json_schema_extra={"minimum": -2**63, "maximum": 2**64 - 1}),
                    WholeNumber, AfterValidator(_seed_in_range)] | None = None
    stop: Annotated[StrictStr, Field(max_length=1_000)] | Annotated[
        list[Annotated[StrictStr, Field(max_length=1_000)]], Field(max_length=64)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: Annotated[dict[Annotated[str, Field(pattern=_TOKEN_ID)],
                               Annotated[float, Field(strict=True, ge=-100, le=100)]],
                          WithJsonSchema({"type": "object", "maxProperties": 10_000, "additionalProperties": False,
                                          "patternProperties": {_TOKEN_ID: {"type": "number", "minimum": -100,
                                                                            "maximum": 100}}}),
                          ] | None = Field(None, max_length=10_000)
    response_format: ResponseFormat | None = None
    user: EndUserId | None = None
    safety_identifier: EndUserId | None = None
    metadata: Annotated[dict[str, StrictStr], AfterValidator(_metadata), WithJsonSchema({
        "type": "object", "additionalProperties": {"type": "string"},
        "properties": {"user_id": {"type": "string", "maxLength": MAX_USER_ID, "pattern": OPTIONAL_USER_ID_PATTERN}}}),
    ] | None = None

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


def _upstream_body(request: ChatRequest, user: EndUser | None, state: ServiceState,
                   messages: list[dict[str, Any]]) -> dict[str, Any]:
    body = request.model_dump(exclude_unset=True)
    body.pop("user", None)
    body["messages"] = messages
    if request.metadata is not None:  # without the user id; dropped when nothing else is left
        metadata = {k: v for k, v in request.metadata.items() if k != "user_id"}
        body.pop("metadata")
        if metadata:
            body["metadata"] = metadata
    if user is not None:
        body["safety_identifier"] = hashed_id(state.user_hash_key, user)
    return body


def _personalization(state: ServiceState, user: EndUser, strategy: str,
                     max_tokens: int | None, steer: SteerLevel, task: str) -> tuple[str | None, Applied]:
    if strategy == "few-shot":
        examples = [s.example() for s in list_examples(state.store, user.key, latest=FEW_SHOT_EXAMPLES)]
        return system_message(strategy, None, examples, max_tokens)
    stamp = state.store.current_stamp(user.key)
    if stamp is None:
        return None, Applied(strategy="none")
    if shows_texts(strategy):  # the user's own words, chosen for this task or from their latest texts: not cached
        examples = [s.example() for s in list_examples(state.store, user.key, latest=FEW_SHOT_EXAMPLES)]
        return system_message(strategy, state.marked_profile(user.key, stamp[0]), examples, max_tokens, steer=steer,
                              capabilities=state.upstream.capabilities, task=task)
    system, applied = state.personalization(user.key, *stamp, strategy, steer)
    return system, applied.model_copy()


# One server-sent event: its data is a chat.completion.chunk's JSON, or [DONE] at the end.
_EVENT = {"type": "object", "properties": {"data": {"type": "string"}}}
_APPLIED = {name: {"description": meaning, "schema": {"type": "string"}} for name, meaning in (
    ("X-Hyperalign-Strategy", "The personalization applied (none: passed through)"),
    ("X-Hyperalign-Profile-Version", "The profile version applied, or none"))}


@router.post(
    "/v1/chat/completions", summary="Chat completion, personalized for the end user", response_model=ChatCompletion,
    responses={200: {"description": "The completion; with `stream: true`, server-sent events of chunks",
                     "headers": _APPLIED, "content": {"text/event-stream": {"schema": _EVENT}}},
               **errors.responses(400, 401, 413, 429, 502, 503)})
async def chat_completions(
    request: ChatRequest, caller: CallerDep, state: StateDep,
    x_hyperalign_user: Annotated[str | None, Header(
        description="The end user (first in the resolution order)", max_length=MAX_USER_ID,
        json_schema_extra={"pattern": OPTIONAL_USER_ID_PATTERN})] = None,
    x_hyperalign_strategy: Annotated[str | None, Header(description="The personalization (default: the tenant's)",
                                                        json_schema_extra={"enum": list(STRATEGIES)})] = None,
    x_hyperalign_steer: Annotated[str | None, Header(
        description="The profile's habits applied while and after the model writes (default light)",
        json_schema_extra={"enum": [level.value for level in SteerLevel]})] = None,
) -> Any:
    strategy = caller.tenant.strategy
    if x_hyperalign_strategy is not None:  # an empty header too is a strategy this service does not know
        try:
            strategy = check_strategy(x_hyperalign_strategy)
        except InputError as exc:
            raise RequestError(f"the X-Hyperalign-Strategy header: {exc}", "X-Hyperalign-Strategy") from None
    steer = GenerationOptions().steer
    if x_hyperalign_steer is not None:
        try:
            steer = as_steer_level(x_hyperalign_steer.strip())
        except InputError as exc:
            raise RequestError(f"the X-Hyperalign-Steer header: {exc}", "X-Hyperalign-Steer") from None
    user = resolve_user(caller.tenant, x_hyperalign_user, {"user": request.user, "metadata": request.metadata,
                                                           "safety_identifier": request.safety_identifier})
    if user is not None:  # the end user's own limits, before any work for them
        await budgets.admit(state, user)
    messages = [m.model_dump(exclude_none=True) for m in request.messages]
    applied, task = Applied(strategy="none"), ""
    if user is not None and strategy != "none":
        task = next((message_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
        system, applied = await asyncio.to_thread(_personalization, state, user, strategy, request.token_limit,
                                                  steer, task or "(task)")
        if system is not None:
            messages = [{"role": "system", "content": system}, *messages]
    if applied.strategy in WHOLE_ANSWER_STRATEGIES and request.stream:
        raise RequestError(f"strategy {applied.strategy} measures the whole answer before it is sent, so it cannot "
                           "stream: send stream: false, or choose another strategy", "stream")
    body = _upstream_body(request, user, state, messages)
    headers = applied.headers()
    account = Accounting(state, caller.tenant.id, user)
    personalized = user is not None and applied.strategy.startswith("hyperalign")
    if not request.stream:
        completion = await state.upstream.complete(body, applied.steering)
        usage = of_completion(completion, messages)
        if personalized and user is not None:
            completion, after, more_headers = await after_writing(state, user, applied, body, completion, messages,
                                                                  task)
            usage, headers = usage + after, headers | more_headers
        await account.done(usage)
        return Response(finish_completion(completion, applied.steering), media_type="application/json",
                        headers=headers)
    meter = StreamMeter(messages)
    streamed = for_stream(applied.steering)
    headers = applied.model_copy(update={"steering": streamed}).headers() | (STREAM_NOT_GUARDED if personalized
                                                                              else {})
    chunks = finish_stream(meter.watch(state.upstream.stream(body, streamed)), streamed)
    try:
        first = await anext(chunks)  # an upstream that fails at once gets a proper error status, not a broken stream
    except StopAsyncIteration:
        first = None
    return StreamingResponse(_sse(first, chunks, account, meter), media_type="text/event-stream",
                             headers=headers | {"Cache-Control": "no-cache"})


async def _sse(first: str | None, chunks: AsyncIterator[str], account: Accounting,
               meter: StreamMeter) -> AsyncIterator[str]:
    if first is not None:
        yield f"data: {first}\n\n"
        try:
            async for chunk in chunks:
                yield f"data: {chunk}\n\n"
        except UpstreamError as exc:  # the status line is gone: the error goes in the stream, as OpenAI's does
            yield f"data: {bytes(as_response(exc).body).decode()}\n\n"
    await account.done(meter.usage)
    yield "data: [DONE]\n\n"


class Accounting:
    """What a chat request used, counted when it ends: the upstream's time and tokens in the tenant's metrics, the
    tokens in the end user's budget."""

    def __init__(self, state: ServiceState, tenant_id: str, user: EndUser | None):
        self.state, self.tenant_id, self.user = state, tenant_id, user
        self.started = time.perf_counter()

    async def done(self, usage: Usage) -> None:
        self.state.telemetry.chat(self.tenant_id, time.perf_counter() - self.started, usage.prompt_tokens,
                                  usage.completion_tokens)
        if self.user is not None:
            await asyncio.to_thread(budgets.charge, self.state, self.user, usage)
