"""The review page: where a person reads what the system believes about them and corrects it.

Reached through a review link the tenant asks for (`POST /v1/users/{id}/review-link`): an opaque, expiring,
revocable token (review_links.py), so the person needs no API key and sees only their own profile.
Server-rendered HTML (jinja2, autoescaped), plain forms and links — keyboard-usable, no script, no build step. Each
edit is a new version attributed to the person, exactly as the API's and the CLI's edits are. What the person
deleted is listed apart ("Deleted by you"): no automated update adds it back, and a button restores it as it was."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from functools import lru_cache
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import InputError, StoreError
from ..profiles.diff import diff_profiles
from ..profiles.edit import Edits, HypothesisChange, NewHypothesis, apply_edits
from ..profiles.model import Aspect, Hypothesis
from ..profiles.rejections import rejections, restore
from . import errors, review_links
from .auth import CallerDep, StateDep
from .errors import NotFound
from .personalize import verify_person_quotes, with_generic_marks
from .schemas import ReviewLink, UserId
from .state import ServiceState
from .users import EndUser, end_user, exists, list_examples

router = APIRouter(tags=["review"])


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
        inferred=profile.hypotheses, facts=profile.facts, samples=profile.voice_samples,
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
    token, expires = await asyncio.to_thread(review_links.issue, state, user)
    return ReviewLink(url=review_links.page_url(state, request, token), expires_at=int(expires.timestamp()))


@router.delete("/v1/users/{user_id:path}/review-links", status_code=204,
               responses=errors.responses(400, 401, 404, 429, 503),
               summary="Revoke every outstanding review link of the user (they stop working at once)")
async def delete_review_links(user_id: UserId, caller: CallerDep, state: StateDep) -> Response:
    user = end_user(caller.tenant, user_id)
    if not await asyncio.to_thread(exists, state.store, user):
        raise NotFound(f"no user {user.id!r}")
    await asyncio.to_thread(review_links.revoke, state, user)
    return Response(status_code=204)


# The link is the credential: the page must not be framed, cached, leak its URL as a referrer, load anything from
# elsewhere, or post its forms anywhere but here.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on the page's own form posts
    "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def _own_origin(state: ServiceState, request: Request) -> str:
    """Where the page's own forms come from: the public URL's origin when one is set (behind a proxy the request
    itself arrives on another address), else the request's."""
    if state.config.public_url:
        parts = urlsplit(state.config.public_url)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{request.url.scheme}://{request.url.netloc}"


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
        return _page(state, review_links.read(state, token), token, version, shown)

    return HTMLResponse(await asyncio.to_thread(render), headers=PAGE_HEADERS)


@router.post("/review/{token}", include_in_schema=False)
async def review_edit(token: str, state: StateDep, request: Request, action: Annotated[str, Form()],
                      hypothesis: Annotated[str, Form()] = "", statement: Annotated[str, Form()] = "",
                      aspect: Annotated[str, Form()] = "", quote_text: Annotated[str, Form(alias="quote")] = ""
                      ) -> RedirectResponse:
    origin = request.headers.get("origin")
    if origin is not None and origin != _own_origin(state, request):
        raise NotFound("this form can only be sent from its own page")  # a foreign site posting with the link
    edits = {
        "pin": lambda: Edits(pin=[hypothesis]), "unpin": lambda: Edits(unpin=[hypothesis]),
        "delete": lambda: Edits(delete=[hypothesis]),
        "reword": lambda: Edits(change={hypothesis: HypothesisChange(statement=statement.strip())}),
        "add": lambda: Edits(add=[NewHypothesis(aspect.strip(), statement.strip(),
                                                [quote_text.strip()] if quote_text.strip() else [])]),
    }
    if action not in edits and action != "restore":
        raise NotFound(f"unknown action {action!r}")

    def edit() -> str:
        user = review_links.read(state, token)
        author = f"{user.id} (review page)"
        try:
            if action == "restore":  # a hypothesis the person deleted, back as it was
                saved = restore(state.store, user.key, hypothesis, author=author)
            else:
                change: Edits = edits[action]()
                texts = [e.example() for e in list_examples(state.store, user.key)]
                saved = state.store.modify(user.key, lambda p: verify_person_quotes(apply_edits(p, change), texts),
                                           author=author, action=change.action(), message=change.summary())
        except InputError as exc:  # shown on the page, where the person can fix it
            return f"Not saved: {exc}"
        except StoreError:  # the database, not the person's edit: nothing of the deployment is shown
            return "Not saved: the profile store cannot be reached right now; try again."
        return f"Saved as version {saved.version}." if saved else "Nothing changed."

    notice = (await asyncio.to_thread(edit))[:200]
    signature = _notice_signature(state, token, notice)
    return RedirectResponse(f"/review/{token}?notice={quote(notice)}&signed={signature}", status_code=303,
                            headers=PAGE_HEADERS)
