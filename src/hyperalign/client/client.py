"""The profiles API's clients. Each route is described once (`_Routes`: method, path, parameters, body and the model
of the answer); `ProfilesClient` sends it with an httpx.Client, `AsyncProfilesClient` with an httpx.AsyncClient.
An error answer (OpenAI's shape) is raised as APIError, or the subclass for its status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from ..service.schemas import (
    DeliveryPage,
    DiffOut,
    EditIn,
    ExampleIn,
    ExamplesIn,
    ExamplesOut,
    ExportOut,
    Job,
    JobIn,
    ProfileOut,
    ReviewLink,
    StoredExample,
    UserPage,
    VersionOut,
    WebhookCreated,
    WebhookIn,
    WebhookList,
)

T = TypeVar("T")
FINISHED = ("succeeded", "failed")


class APIError(Exception):
    """An error answer: its HTTP status and OpenAI-shaped fields; `retry_after` in seconds where the service said."""

    def __init__(self, status: int, message: str, type: str | None = None, code: str | None = None,
                 param: str | None = None, retry_after: str | None = None):
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.retry_after = retry_after


class AuthenticationError(APIError):
    """401: a missing, wrong or revoked key."""


class NotFoundError(APIError):
    """404: no such user, version, job or webhook for this key's tenant."""


class ConflictError(APIError):
    """409: the profile changed meanwhile, or an Idempotency-Key was used with another request."""


class RateLimitError(APIError):
    """429: the key's or the end user's limit; `retry_after` says when to try again."""


_BY_STATUS: dict[int, type[APIError]] = {401: AuthenticationError, 404: NotFoundError, 409: ConflictError,
                                         429: RateLimitError}


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    kind = _BY_STATUS.get(response.status_code, APIError)
    raise kind(response.status_code, str(error.get("message") or response.reason_phrase), error.get("type"),
               error.get("code"), error.get("param"), response.headers.get("retry-after"))


@dataclass(frozen=True)
class _Call(Generic[T]):
    method: str
    path: str
    answer: Any  # a TypeAdapter of what the route answers with; None for 204
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def read(self, response: httpx.Response) -> T:
        _raise_for(response)
        if self.answer is None:  # 204: the route answers with nothing (T is None)
            return None  # type: ignore[return-value]
        parsed: T = self.answer.validate_json(response.content)
        return parsed

    def request(self) -> dict[str, Any]:
        body = self.body.model_dump(mode="json", exclude_none=True) if self.body is not None else None
        return {"method": self.method, "url": self.path, "json": body, "headers": self.headers,
                "params": {k: v for k, v in self.params.items() if v is not None}}


def _user(user_id: str) -> str:
    return f"/v1/users/{quote(user_id, safe='')}"  # "org/42" is one user: its slash travels as %2F


def _key(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key} if idempotency_key else {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


class _Routes:
    """Every route of the profiles API, as a _Call."""

    @staticmethod
    def users(after: str | None, limit: int) -> _Call[UserPage]:
        return _Call("GET", "/v1/users", _adapter(UserPage), {"after": after, "limit": limit})

    @staticmethod
    def add_examples(user_id: str, examples: Sequence[ExampleIn | str],
                     idempotency_key: str | None) -> _Call[ExamplesOut]:
        body = ExamplesIn(examples=[ExampleIn(text=e) if isinstance(e, str) else e for e in examples])
        return _Call("POST", f"{_user(user_id)}/examples", _adapter(ExamplesOut), body=body,
                     headers=_key(idempotency_key))

    @staticmethod
    def examples(user_id: str) -> _Call[list[StoredExample]]:
        return _Call("GET", f"{_user(user_id)}/examples", _adapter(list[StoredExample]))

    @staticmethod
    def delete_example(user_id: str, example_id: int) -> _Call[None]:
        return _Call("DELETE", f"{_user(user_id)}/examples/{example_id}", None)

    @staticmethod
    def start_job(user_id: str, full: bool, idempotency_key: str | None) -> _Call[Job]:
        return _Call("POST", f"{_user(user_id)}/jobs", _adapter(Job), body=JobIn(full=full),
                     headers=_key(idempotency_key))

    @staticmethod
    def job(user_id: str, job_id: str) -> _Call[Job]:
        return _Call("GET", f"{_user(user_id)}/jobs/{quote(job_id, safe='')}", _adapter(Job))

    @staticmethod
    def profile(user_id: str, version: int | None) -> _Call[ProfileOut]:
        return _Call("GET", f"{_user(user_id)}/profile", _adapter(ProfileOut), {"version": version})

    @staticmethod
    def edit_profile(user_id: str, edits: EditIn, author: str | None) -> _Call[ProfileOut]:
        return _Call("PATCH", f"{_user(user_id)}/profile", _adapter(ProfileOut), body=edits,
                     headers={"X-Hyperalign-Author": author} if author else {})

    @staticmethod
    def versions(user_id: str) -> _Call[list[VersionOut]]:
        return _Call("GET", f"{_user(user_id)}/profile/versions", _adapter(list[VersionOut]))

    @staticmethod
    def diff(user_id: str, from_version: int, to_version: int | None) -> _Call[DiffOut]:
        return _Call("GET", f"{_user(user_id)}/profile/diff", _adapter(DiffOut),
                     {"from": from_version, "to": to_version})

    @staticmethod
    def export(user_id: str) -> _Call[ExportOut]:
        return _Call("GET", f"{_user(user_id)}/export", _adapter(ExportOut))

    @staticmethod
    def delete_user(user_id: str) -> _Call[None]:
        return _Call("DELETE", _user(user_id), None)

    @staticmethod
    def review_link(user_id: str) -> _Call[ReviewLink]:
        return _Call("POST", f"{_user(user_id)}/review-link", _adapter(ReviewLink))

    @staticmethod
    def revoke_review_links(user_id: str) -> _Call[None]:
        return _Call("DELETE", f"{_user(user_id)}/review-links", None)

    @staticmethod
    def create_webhook(url: str, description: str | None, idempotency_key: str | None) -> _Call[WebhookCreated]:
        return _Call("POST", "/v1/webhooks", _adapter(WebhookCreated), body=WebhookIn(url=url, description=description),
                     headers=_key(idempotency_key))

    @staticmethod
    def webhooks() -> _Call[WebhookList]:
        return _Call("GET", "/v1/webhooks", _adapter(WebhookList))

    @staticmethod
    def delete_webhook(webhook_id: str) -> _Call[None]:
        return _Call("DELETE", f"/v1/webhooks/{quote(webhook_id, safe='')}", None)

    @staticmethod
    def deliveries(after: int | None, limit: int) -> _Call[DeliveryPage]:
        return _Call("GET", "/v1/webhooks/deliveries", _adapter(DeliveryPage), {"after": after, "limit": limit})


def _headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


class ProfilesClient:
    """The profiles API, blocking. `with ProfilesClient(url, key) as client: ...` (or call close())."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0, http: httpx.Client | None = None):
        self._http = http or httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    def __enter__(self) -> ProfilesClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[T]) -> T:
        return call.read(self._http.request(**call.request()))

    def users(self, after: str | None = None, limit: int = 100) -> UserPage:
        return self._send(_Routes.users(after, limit))

    def iter_users(self, page_size: int = 100) -> Iterator[str]:
        """Every user id of the tenant, following the cursor."""
        after = None
        while True:
            page = self.users(after, page_size)
            yield from (user.id for user in page.data)
            if not page.has_more or page.next_cursor is None:
                return
            after = page.next_cursor

    def add_examples(self, user_id: str, examples: Sequence[ExampleIn | str], *,
                     idempotency_key: str | None = None) -> ExamplesOut:
        return self._send(_Routes.add_examples(user_id, examples, idempotency_key))

    def examples(self, user_id: str) -> list[StoredExample]:
        return self._send(_Routes.examples(user_id))

    def delete_example(self, user_id: str, example_id: int) -> None:
        self._send(_Routes.delete_example(user_id, example_id))

    def start_job(self, user_id: str, *, full: bool = False, idempotency_key: str | None = None) -> Job:
        return self._send(_Routes.start_job(user_id, full, idempotency_key))

    def job(self, user_id: str, job_id: str) -> Job:
        return self._send(_Routes.job(user_id, job_id))

    def wait_for_job(self, user_id: str, job_id: str, *, timeout: float = 600.0, poll: float = 1.0) -> Job:
        """The job once it succeeded or failed; TimeoutError if it has not within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (job := self.job(user_id, job_id)).status not in FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout:g} s")
            time.sleep(poll)
        return job

    def profile(self, user_id: str, version: int | None = None) -> ProfileOut:
        return self._send(_Routes.profile(user_id, version))

    def edit_profile(self, user_id: str, edits: EditIn, *, author: str | None = None) -> ProfileOut:
        return self._send(_Routes.edit_profile(user_id, edits, author))

    def versions(self, user_id: str) -> list[VersionOut]:
        return self._send(_Routes.versions(user_id))

    def diff(self, user_id: str, from_version: int, to_version: int | None = None) -> DiffOut:
        return self._send(_Routes.diff(user_id, from_version, to_version))

    def export(self, user_id: str) -> ExportOut:
        return self._send(_Routes.export(user_id))

    def delete_user(self, user_id: str) -> None:
        self._send(_Routes.delete_user(user_id))

    def review_link(self, user_id: str) -> ReviewLink:
        return self._send(_Routes.review_link(user_id))

    def revoke_review_links(self, user_id: str) -> None:
        self._send(_Routes.revoke_review_links(user_id))

    def create_webhook(self, url: str, *, description: str | None = None,
                       idempotency_key: str | None = None) -> WebhookCreated:
        return self._send(_Routes.create_webhook(url, description, idempotency_key))

    def webhooks(self) -> WebhookList:
        return self._send(_Routes.webhooks())

    def delete_webhook(self, webhook_id: str) -> None:
        self._send(_Routes.delete_webhook(webhook_id))

    def deliveries(self, after: int | None = None, limit: int = 100) -> DeliveryPage:
        return self._send(_Routes.deliveries(after, limit))


class AsyncProfilesClient:
    """The profiles API for asyncio: the same methods as ProfilesClient, awaited."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0, http: httpx.AsyncClient | None = None):
        self._http = http or httpx.AsyncClient(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    async def __aenter__(self) -> AsyncProfilesClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call[T]) -> T:
        return call.read(await self._http.request(**call.request()))

    async def users(self, after: str | None = None, limit: int = 100) -> UserPage:
        return await self._send(_Routes.users(after, limit))

    async def iter_users(self, page_size: int = 100) -> AsyncIterator[str]:
        after = None
        while True:
            page = await self.users(after, page_size)
            for user in page.data:
                yield user.id
            if not page.has_more or page.next_cursor is None:
                return
            after = page.next_cursor

    async def add_examples(self, user_id: str, examples: Sequence[ExampleIn | str], *,
                           idempotency_key: str | None = None) -> ExamplesOut:
        return await self._send(_Routes.add_examples(user_id, examples, idempotency_key))

    async def examples(self, user_id: str) -> list[StoredExample]:
        return await self._send(_Routes.examples(user_id))

    async def delete_example(self, user_id: str, example_id: int) -> None:
        await self._send(_Routes.delete_example(user_id, example_id))

    async def start_job(self, user_id: str, *, full: bool = False, idempotency_key: str | None = None) -> Job:
        return await self._send(_Routes.start_job(user_id, full, idempotency_key))

    async def job(self, user_id: str, job_id: str) -> Job:
        return await self._send(_Routes.job(user_id, job_id))

    async def wait_for_job(self, user_id: str, job_id: str, *, timeout: float = 600.0, poll: float = 1.0) -> Job:
        deadline = time.monotonic() + timeout
        while (job := await self.job(user_id, job_id)).status not in FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout:g} s")
            await asyncio.sleep(poll)
        return job

    async def profile(self, user_id: str, version: int | None = None) -> ProfileOut:
        return await self._send(_Routes.profile(user_id, version))

    async def edit_profile(self, user_id: str, edits: EditIn, *, author: str | None = None) -> ProfileOut:
        return await self._send(_Routes.edit_profile(user_id, edits, author))

    async def versions(self, user_id: str) -> list[VersionOut]:
        return await self._send(_Routes.versions(user_id))

    async def diff(self, user_id: str, from_version: int, to_version: int | None = None) -> DiffOut:
        return await self._send(_Routes.diff(user_id, from_version, to_version))

    async def export(self, user_id: str) -> ExportOut:
        return await self._send(_Routes.export(user_id))

    async def delete_user(self, user_id: str) -> None:
        await self._send(_Routes.delete_user(user_id))

    async def review_link(self, user_id: str) -> ReviewLink:
        return await self._send(_Routes.review_link(user_id))

    async def revoke_review_links(self, user_id: str) -> None:
        await self._send(_Routes.revoke_review_links(user_id))

    async def create_webhook(self, url: str, *, description: str | None = None,
                             idempotency_key: str | None = None) -> WebhookCreated:
        return await self._send(_Routes.create_webhook(url, description, idempotency_key))

    async def webhooks(self) -> WebhookList:
        return await self._send(_Routes.webhooks())

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._send(_Routes.delete_webhook(webhook_id))

    async def deliveries(self, after: int | None = None, limit: int = 100) -> DeliveryPage:
        return await self._send(_Routes.deliveries(after, limit))
