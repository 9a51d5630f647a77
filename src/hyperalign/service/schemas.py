"""The profiles API's request and response bodies, as pydantic models only: the server validates and documents with
them, and the Python client (hyperalign.client) parses with the very same ones. Nothing here imports FastAPI, the
database or the server, so a client install needs pydantic and httpx alone."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ..profiles.model import Fact, Hypothesis, Profile, UserExample, VoiceSample

MAX_USER_ID = 128
# Python's `\s`, spelled out: pydantic's regex engine, a JSON-Schema reader and schemathesis' generator each read `\s`
# as a different set (\x1c-\x1f, \x85 are white space to one and not to another), so no pattern here uses it.
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# What a user id may be: 1 to 128 characters, no control character, not only spaces (io.check_name's rule, said in
# the schema so that a client knows before it asks).
USER_ID_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f]*[^{WHITESPACE}\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
UserId = Annotated[str, Field(min_length=1, max_length=MAX_USER_ID, pattern=USER_ID_PATTERN)]
# A text: no NUL (C libraries read it as the end), not only spaces (io.check_text and UserExample's rules).
TEXT_PATTERN = rf"^[^\x00]*[^{WHITESPACE}\x00][^\x00]*$"
# Where a chat request may name its end user (a header, `user`, `safety_identifier`, `metadata.user_id`): empty means
# none.
OPTIONAL_USER_ID_PATTERN = f"^(?:{USER_ID_PATTERN[1:-1]})?$"


def _whole_number_text(value: Any) -> Any:
    # Pydantic takes "5.0", " 5" or "5_000" from a URL as an integer; the schema's `integer` does not.
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]+", value):
        raise ValueError("must be a whole number, digits only")
    return value


# For a query or path parameter documented as an integer: digits only in the URL, as the schema says. Written after
# the bounds, `Annotated[int, Query(ge=1), DIGITS_ONLY]`: before them, FastAPI leaves the bounds out of the schema.
DIGITS_ONLY = BeforeValidator(_whole_number_text)
Item = TypeVar("Item")
Cursor = TypeVar("Cursor")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, rate_limit_exceeded, server_error, upstream_error, …")
    param: str | None = Field(None, description="The field, header or parameter at fault")
    code: str | None = Field(None, description="A stable identifier of the error, e.g. invalid_api_key, not_found")


class ErrorBody(BaseModel):
    """Every error answer, in OpenAI's shape: an OpenAI client raises its usual exception for it."""

    error: ErrorDetail


class UserRef(BaseModel):
    id: str


class _Page(BaseModel, Generic[Item, Cursor]):
    """One page of a listing, in OpenAI's list shape."""

    object: Literal["list"] = "list"
    data: list[Item]
    has_more: bool
    next_cursor: Cursor | None = Field(None, description="Pass as `after` for the next page")


class UserPage(_Page[UserRef, str]):
    pass


class ExampleIn(_Strict):
    """One text the user wrote, and the task prompt it answered if known."""

    prompt: Annotated[str, Field(pattern=r"^[^\x00]*$")] | None = None
    text: Annotated[str, Field(min_length=1, pattern=TEXT_PATTERN)]

    def example(self) -> UserExample:
        return UserExample(prompt=self.prompt, text=self.text)


class ExamplesIn(_Strict):
    examples: list[ExampleIn] = Field(min_length=1, max_length=200)


class ExamplesOut(BaseModel):
    user_id: str
    added: int
    total: int


class StoredExample(BaseModel):
    id: int
    prompt: str | None
    text: str
    created_at: datetime

    def example(self) -> UserExample:
        return UserExample(prompt=self.prompt, text=self.text)


Statement = Annotated[str, Field(min_length=1, max_length=2_000, pattern=TEXT_PATTERN)]
AttributeKey = Annotated[str, Field(min_length=1, max_length=80, pattern=USER_ID_PATTERN)]  # one line, no controls
AttributeValue = Annotated[str, Field(max_length=2_000, pattern=r"^[^\x00]*$")]


class NewHypothesisIn(_Strict):
    aspect: Annotated[str, Field(min_length=1, max_length=80, pattern=TEXT_PATTERN)]
    statement: Statement
    quotes: list[Annotated[str, Field(max_length=2_000, pattern=r"^[^\x00]*$")]] = Field(default_factory=list,
                                                                                         max_length=20)
    pinned: bool = False


class EditIn(_Strict):
    """A person's edits; they are applied to whatever version is current, and win over automated updates."""

    pin: list[str] = Field(default_factory=list, max_length=500)
    unpin: list[str] = Field(default_factory=list, max_length=500)
    delete: list[str] = Field(default_factory=list, max_length=500)
    reword: dict[str, Statement] = Field(default_factory=dict, max_length=500,
                                         description="hypothesis id -> new statement")
    add: list[NewHypothesisIn] = Field(default_factory=list, max_length=100)
    attributes: Annotated[dict[AttributeKey, AttributeValue | None], WithJsonSchema({
        "type": "object", "maxProperties": 100,
        "propertyNames": {"minLength": 1, "maxLength": 80, "pattern": USER_ID_PATTERN},
        "additionalProperties": {"anyOf": [{"type": "string", "maxLength": 2_000, "pattern": r"^[^\x00]*$"},
                                           {"type": "null"}]}})] = Field(
        default_factory=dict, max_length=100, description="null removes the attribute")
    message: str | None = Field(None, max_length=500)


class VersionOut(BaseModel):
    version: int
    created_at: datetime
    author: str
    action: str
    message: str | None
    details: dict[str, Any]


class ProfileOut(BaseModel):
    user_id: str
    version: VersionOut
    profile: Profile


class DiffOut(BaseModel):
    user_id: str
    from_version: int
    to_version: int
    changes: list[str]


class JobIn(_Strict):
    full: bool = Field(False, description="Infer the profile again from all of the user's texts (a new version; "
                                          "a person's edits are not carried over), instead of updating it")


class Job(BaseModel):
    id: str
    kind: str
    status: str
    created_at: datetime
    updated_at: datetime
    attempts: int
    error: str | None = None
    result_version: int | None = None
    # A succeeded job whose profile has fewer supported hypotheses than the inference asks for (the report's
    # too_few): the profile exists, but rests on its measured facts and attributes. None until it succeeded.
    thin: bool | None = None


class RejectedOut(BaseModel):
    """A hypothesis, measured fact or voice sample the person deleted: kept so that updates do not bring it back."""

    hypothesis: Hypothesis | Fact | VoiceSample
    deleted_by: str
    version: int
    deleted_at: datetime


class TokenDay(BaseModel):
    day: str = Field(description="A UTC day, YYYY-MM-DD")
    tokens: int = Field(description="Tokens the user's chat requests used that day (counted for the per-user budget)")


class ExportOut(BaseModel):
    """Everything kept about the user."""

    user_id: str
    examples: list[StoredExample]
    profile_versions: list[ProfileOut]
    rejected_hypotheses: list[RejectedOut]
    jobs: list[Job]
    token_usage: list[TokenDay] = Field(default_factory=list, description="Kept only where a token budget is set")


class ReviewLink(BaseModel):
    url: str
    expires_at: int = Field(description="Unix time")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "hyperalign"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CompletionMessage(_Open):
    role: str
    content: str | None = None


class CompletionChoice(_Open):
    index: int
    message: CompletionMessage
    finish_reason: str | None = None


class CompletionUsage(_Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(_Open):
    """OpenAI's chat completion as the upstream answered it (fields beyond these pass through)."""

    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None


# An endpoint a tenant's events go to: http(s), a host name or IPv4 address, an optional port and path; no user name
# or password, query or fragment (a credential would sit in logs and listings; the signature authenticates instead).
_PORT = r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
WEBHOOK_URL_PATTERN = r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?" + _PORT + rf"(?:/[^?#{WHITESPACE}\x00-\x1f\x7f-\x9f]*)?$"


class WebhookIn(_Strict):
    url: Annotated[str, Field(max_length=2_000, pattern=WEBHOOK_URL_PATTERN)]
    description: Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None


class WebhookOut(BaseModel):
    id: str
    url: str
    description: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The tenant's signing secret (whsec_…, Standard Webhooks): verify each delivery's "
                                    "webhook-signature header with it")


class WebhookList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookOut]


class Delivery(BaseModel):
    """One attempt to deliver one event to one endpoint."""

    id: int
    webhook_id: str
    event_id: str
    event_type: str
    attempt: int
    delivered: bool
    status_code: int | None = Field(None, description="The receiver's HTTP status; null when none came")
    error: str | None = None
    created_at: datetime


class DeliveryPage(_Page[Delivery, int]):
    pass


class JobEvent(BaseModel):
    """The body of a webhook delivery: a job of the tenant's finished."""

    id: str
    type: Literal["job.succeeded", "job.failed"]
    created_at: datetime
    user_id: str
    job: Job
