"""The review page: where a person reads what the system believes about them and corrects it.

Reached through a review link the tenant asks for (`POST /v1/users/{id}/review-link`): the link carries a signed,
expiring token naming the tenant and the user, so the person needs no API key and sees only their own profile.
Server-rendered HTML (jinja2, autoescaped), plain forms and links — keyboard-usable, no script, no build step. Each
edit is a new version attributed to the person, exactly as the API's and the CLI's edits are. What the person
deleted is listed apart ("Deleted by you"): no automated update adds it back, and a button restores it as it was."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from functools import lru_cache
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import InputError
from ..profiles.edit import Edits, HypothesisChange, NewHypothesis, apply_edits, diff_profiles
from ..profiles.model import Aspect, Hypothesis
from ..profiles.rejections import rejections, restore
from . import errors
from .auth import CallerDep, StateDep
from .errors import NotFound
from .personalize import with_generic_marks
from .schemas import ReviewLink, UserId
from .state import ServiceState
from .tenants import Tenant, tenant_by_id
from .users import EndUser, end_user, exists, list_examples

router = APIRouter(tags=["review"])
LINK_SECONDS = 7 * 24 * 3600


def _sign(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()[:32]


def make_token(secret: bytes, user: EndUser, expires_at: int) -> str:
    payload = f"{user.tenant.id}\n{user.id}\n{expires_at}"
    encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{encoded}.{_sign(secret, payload)}"


def read_token(state: ServiceState, token: str) -> EndUser:
    """The user a valid, unexpired token names; NotFound for anything else (no hint of which check failed)."""
    encoded, _, signature = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        tenant_id, user_id, expires = payload.split("\n")
        # As bytes: compare_digest refuses str with non-ASCII characters (TypeError), which a URL can carry.
        valid = hmac.compare_digest(signature.encode(), _sign(state.review_key, payload).encode()) and \
            int(expires) > time.time()
    except ValueError:  # not base64, not UTF-8, not three fields, not a number: a bad link like any other
        valid = False
    tenant: Tenant | None = tenant_by_id(state.store, tenant_id) if valid else None
    if tenant is None:
        raise NotFound("this review link is not valid (or has expired); ask for a new one")
    return end_user(tenant, user_id)


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return ImmutableSandboxedEnvironment(loader=PackageLoader("hyperalign", "service/templates"), autoescape=True,
                                         trim_blocks=True, lstrip_blocks=True)


def _highlighted(texts: list[str], hypotheses: list[Hypothesis]) -> list[list[tuple[str, str | None]]]:
    """Each text as segments (text, id of the hypothesis whose quote it is, or None)."""
    marks: list[list[tuple[int, int, str]]] = [[] for _ in texts]
    for h in hypotheses:
        for evidence in h.evidence:
            if not evidence.verified:
                continue
            order = [evidence.example_index] if evidence.example_index is not None else []
            for index in [*order, *range(len(texts))]:
                if index is not None and 0 <= index < len(texts) and (start := texts[index].find(evidence.quote)) >= 0:
                    marks[index].append((start, start + len(evidence.quote), h.id))
                    break
    segments = []
    for text, spans in zip(texts, marks, strict=True):
        parts, position = [], 0
        for start, end, hid in sorted(spans):
            if start < position:
                continue  # overlapping quotes: the first one is marked
            parts += [(text[position:start], None), (text[start:end], hid)]
            position = end
        parts.append((text[position:], None))
        segments.append([p for p in parts if p[0]])
    return segments


def _page(state: ServiceState, user: EndUser, token: str, version: int | None, notice: str | None) -> str:
    current = state.store.current_version(user.key)
    if current is None:
        raise NotFound(f"no profile for {user.id!r} yet")
    versions = [state.store.get(user.key, number) for number in range(1, current + 1)]  # each read once
    shown = versions[version - 1] if version and 1 <= version <= current else versions[-1]
    history = [stored.info for stored in versions]
    diffs = {new.version: diff_profiles(old.profile, new.profile)
             for old, new in zip(versions[:-1], versions[1:], strict=True)}
    profile = with_generic_marks(state.store, user.key, shown.profile)  # "shared by 37% of profiles"
    texts = [s.text for s in list_examples(state.store, user.key)]
    return _templates().get_template("review.html.j2").render(
        user=user.id, token=token, profile=profile, version=shown.version, current=current, info=shown.info,
        inferred=[h for h in profile.hypotheses if h.measure is None], facts=profile.facts,
        texts=_highlighted(texts, profile.hypotheses), history=history, diffs=diffs, notice=notice,
        rejected=rejections(state.store, user.key),
        aspects=[a.value for a in Aspect], editable=shown.version == current)


@router.post("/v1/users/{user_id:path}/review-link", response_model=ReviewLink, status_code=201,
             responses=errors.responses(400, 401, 404, 429, 503),
             summary="A link where the person reviews and corrects their profile (no API key needed)")
async def post_review_link(user_id: UserId, caller: CallerDep,
                           state: StateDep, request: Request) -> ReviewLink:
    user = end_user(caller.tenant, user_id)
    if not await asyncio.to_thread(exists, state.store, user):
        raise NotFound(f"no user {user.id!r}")
    expires_at = int(time.time()) + LINK_SECONDS
    url = str(request.url_for("review_page", token=make_token(state.review_key, user, expires_at)))
    return ReviewLink(url=url, expires_at=expires_at)


# The link is the credential: the page must not be framed, cached, leak its URL as a referrer, load anything from
# elsewhere, or post its forms anywhere but here.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on the page's own form posts
    "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def _notice_signature(state: ServiceState, token: str, notice: str) -> str:
    """A notice is shown only with the signature this server gave it: `?notice=` cannot print a stranger's text."""
    return hmac.new(state.review_key, f"notice\n{token}\n{notice}".encode(), hashlib.sha256).hexdigest()[:24]


@router.get("/review/{token}", response_class=HTMLResponse, name="review_page", include_in_schema=False)
async def review_page(token: str, state: StateDep, version: int | None = None, notice: str | None = None,
                      signed: str | None = None) -> HTMLResponse:
    def render() -> str:
        shown = None
        if notice and signed and hmac.compare_digest(signed.encode("utf-8", "replace"),
                                                     _notice_signature(state, token, notice).encode()):
            shown = notice[:200]
        return _page(state, read_token(state, token), token, version, shown)

    return HTMLResponse(await asyncio.to_thread(render), headers=PAGE_HEADERS)


@router.post("/review/{token}", include_in_schema=False)
async def review_edit(token: str, state: StateDep, request: Request, action: Annotated[str, Form()],
                      hypothesis: Annotated[str, Form()] = "", statement: Annotated[str, Form()] = "",
                      aspect: Annotated[str, Form()] = "") -> RedirectResponse:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise NotFound("this form can only be sent from its own page")  # a foreign site posting with the link
    edits = {
        "pin": lambda: Edits(pin=[hypothesis]), "unpin": lambda: Edits(unpin=[hypothesis]),
        "delete": lambda: Edits(delete=[hypothesis]),
        "reword": lambda: Edits(change={hypothesis: HypothesisChange(statement=statement.strip())}),
        "add": lambda: Edits(add=[NewHypothesis(aspect.strip(), statement.strip())]),
    }
    if action not in edits and action != "restore":
        raise NotFound(f"unknown action {action!r}")

    def edit() -> str:
        user = read_token(state, token)
        author = f"{user.id} (review page)"
        try:
            if action == "restore":  # a hypothesis the person deleted, back as it was
                saved = restore(state.store, user.key, hypothesis, author=author)
            else:
                change: Edits = edits[action]()
                saved = state.store.modify(user.key, lambda p: apply_edits(p, change), author=author,
                                           action=change.action(), message=change.summary())
        except InputError as exc:  # shown on the page, where the person can fix it
            return f"Not saved: {exc}"
        return f"Saved as version {saved.version}." if saved else "Nothing changed."

    notice = (await asyncio.to_thread(edit))[:200]
    signature = _notice_signature(state, token, notice)
    return RedirectResponse(f"/review/{token}?notice={quote(notice)}&signed={signature}", status_code=303,
                            headers=PAGE_HEADERS)
