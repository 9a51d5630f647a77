"""The profiles API: an end user's examples, the background job that infers or updates their profile, the profile
at any version, a person's edits, versions and diffs, export of everything kept, and deletion of the user.

Every route is scoped to the caller's tenant; a user of another tenant is answered exactly like a user that does not
exist (404)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response
from sqlalchemy.engine import Connection

from ..errors import ConflictError, InputError
from ..io import check_name
from ..profiles.diff import diff_profiles
from ..profiles.edit import Edits, HypothesisChange, NewHypothesis, apply_edits
from ..profiles.model import Profile
from ..profiles.rejections import rejections
from ..profiles.store import StoredProfile, VersionInfo
from . import errors
from .auth import Caller, CallerDep, StateDep
from .budgets import usage_by_day
from .errors import NotFound
from .idempotency import IdempotencyDep
from .personalize import verify_person_quotes
from .refresh import REFRESH, REINFER, finished_job
from .schemas import (
    DIGITS_ONLY,
    MAX_USER_ID,
    USER_ID_PATTERN,
    DiffOut,
    EditIn,
    ExamplesIn,
    ExamplesOut,
    ExportOut,
    Job,
    JobIn,
    ProfileOut,
    RejectedOut,
    StoredExample,
    UserId,
    UserPage,
    UserRef,
    VersionOut,
)
from .state import ServiceState
from .users import (
    EndUser,
    delete_example,
    delete_user,
    end_user,
    exists,
    insert_examples,
    list_examples,
    list_users,
)

# Every route here: a bad parameter (400), a key (401), the key's limit (429), the database (503); those with a
# user, 404; those with a body, 413.
_COMMON = (400, 401, 429, 503)
# `:path`: a user id may contain "/" (sent percent-encoded, decoded before routing), e.g. "org/42".
router = APIRouter(prefix="/v1/users/{user_id:path}", tags=["profiles"], responses=errors.responses(*_COMMON, 404))
listing = APIRouter(tags=["profiles"], responses=errors.responses(*_COMMON))
BODY = errors.responses(409, 413)  # 409: an Idempotency-Key reused with another request


@listing.get("/v1/users", response_model=UserPage, summary="The tenant's users, a page at a time")
async def get_users(caller: CallerDep, state: StateDep,
                    after: Annotated[str | None, Query(max_length=MAX_USER_ID, description="the cursor")] = None,
                    limit: Annotated[int, Query(ge=1, le=1000), DIGITS_ONLY] = 100) -> UserPage:
    ids, more = await asyncio.to_thread(list_users, state.store, caller.tenant, after=after, limit=limit)
    return UserPage(data=[UserRef(id=i) for i in ids], has_more=more, next_cursor=ids[-1] if more and ids else None)


UserPath = UserId


def _version(info: VersionInfo) -> VersionOut:
    return VersionOut(version=info.version, created_at=info.created_at, author=info.author,
                      action=info.action, message=info.message, details=info.details)


def _profile(user: EndUser, stored: StoredProfile) -> ProfileOut:
    # Stored under the tenant-scoped key; shown under the id the tenant knows.
    return ProfileOut(user_id=user.id, version=_version(stored.info),
                      profile=stored.profile.model_copy(update={"user_id": user.id}))


def _stored(state: ServiceState, user: EndUser, version: int | None = None) -> StoredProfile:
    current = state.store.current_version(user.key)
    if current is None:
        raise NotFound(f"no profile for user {user.id!r}")
    if version is not None and not 1 <= version <= current:
        raise NotFound(f"user {user.id!r} has profile versions 1 to {current}, not {version}")
    return state.store.get(user.key, version)


def _user(caller: Caller, user_id: str) -> EndUser:
    return end_user(caller.tenant, user_id)


@router.post("/examples", status_code=201, response_model=ExamplesOut, summary="Add texts the user wrote",
             responses=BODY)
async def post_examples(user_id: UserPath, body: ExamplesIn, caller: CallerDep,
                        idempotent: IdempotencyDep) -> Response:
    user = _user(caller, user_id)
    texts = [e.example() for e in body.examples]

    def add(connection: Connection) -> ExamplesOut:
        return ExamplesOut(user_id=user.id, added=len(texts), total=insert_examples(connection, user, texts))

    return await idempotent.run(201, user.key, add)


@router.get("/examples", response_model=list[StoredExample], summary="The user's texts")
async def get_examples(user_id: UserPath, caller: CallerDep, state: StateDep) -> list[StoredExample]:
    user = _user(caller, user_id)
    found = await asyncio.to_thread(list_examples, state.store, user.key)
    if not found:
        raise NotFound(f"no examples for user {user.id!r}")
    return found


@router.delete("/examples/{example_id}", status_code=204, summary="Delete one of the user's texts")
async def delete_one_example(user_id: UserPath, example_id: Annotated[int, Path(ge=1, le=2**63 - 1), DIGITS_ONLY],
                             caller: CallerDep, state: StateDep) -> Response:
    await asyncio.to_thread(delete_example, state.store, _user(caller, user_id), example_id)
    return Response(status_code=204)


@router.post("/jobs", status_code=202, response_model=Job, responses=BODY,
             summary="Infer the profile (or update it with the texts added since) in the background")
async def post_job(user_id: UserPath, caller: CallerDep, state: StateDep, idempotent: IdempotencyDep,
                   body: JobIn | None = None) -> Response:
    user = _user(caller, user_id)
    if not await asyncio.to_thread(exists, state.store, user):
        raise NotFound(f"no examples for user {user.id!r}; add some first")
    kind = REINFER if body and body.full else REFRESH
    return await idempotent.run(202, user.key, lambda connection: state.queue.enqueue_in(connection, user.key, kind))


@router.get("/jobs/{job_id}", response_model=Job, summary="A job's status")
async def get_job(user_id: UserPath, job_id: Annotated[str, Path(max_length=64)], caller: CallerDep,
                  state: StateDep) -> Job:
    user = _user(caller, user_id)
    job = await asyncio.to_thread(finished_job, state.store, state.queue, user.key, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r} for user {user.id!r}")
    return job


@router.get("/profile", response_model=ProfileOut, summary="The profile, current or at a version")
async def get_profile(user_id: UserPath, caller: CallerDep, state: StateDep,
                      version: Annotated[int | None, Query(ge=1, le=2**31 - 1), DIGITS_ONLY] = None) -> ProfileOut:
    user = _user(caller, user_id)
    return _profile(user, await asyncio.to_thread(_stored, state, user, version))


@router.patch("/profile", response_model=ProfileOut, summary="A person's edits: pin, delete, reword, add",
              responses=errors.responses(409, 413))
async def patch_profile(user_id: UserPath, body: EditIn, caller: CallerDep, state: StateDep,
                        x_hyperalign_author: Annotated[str | None, Header(max_length=200, pattern=USER_ID_PATTERN)] = None) -> ProfileOut:
    user = _user(caller, user_id)
    author = check_name(x_hyperalign_author, "the X-Hyperalign-Author header") if x_hyperalign_author else \
        f"api key {caller.key_id}"
    edits = Edits(pin=body.pin, unpin=body.unpin, delete=body.delete,
                  change={k: HypothesisChange(statement=v) for k, v in body.reword.items()},
                  add=[NewHypothesis(a.aspect, a.statement, a.quotes, a.pinned) for a in body.add],
                  attributes=dict(body.attributes))

    def edit() -> StoredProfile:
        _stored(state, user)
        if not edits.is_empty():
            texts = [e.example() for e in list_examples(state.store, user.key)] if edits.add else []
            state.store.modify(user.key, lambda p: verify_person_quotes(_edited(p, edits), texts), author=author,
                               action=edits.action(), message=body.message or edits.summary())
        return state.store.get(user.key)

    return _profile(user, await asyncio.to_thread(edit))


def _edited(profile: Profile, edits: Edits) -> Profile:
    """The edits applied to the current profile; 409 where they do not fit it (an id it no longer has, a statement
    it already holds, one id both pinned and unpinned): the request is well-formed, the profile's state refuses it."""
    try:
        return apply_edits(profile, edits)
    except InputError as exc:
        raise ConflictError(str(exc)) from None


@router.get("/profile/versions", response_model=list[VersionOut], summary="Every version, oldest first")
async def get_versions(user_id: UserPath, caller: CallerDep, state: StateDep) -> list[VersionOut]:
    user = _user(caller, user_id)

    def history() -> list[VersionInfo]:
        _stored(state, user)
        return state.store.history(user.key)

    return [_version(info) for info in await asyncio.to_thread(history)]


@router.get("/profile/diff", response_model=DiffOut, summary="What changed between two versions")
async def get_diff(user_id: UserPath, caller: CallerDep, state: StateDep,
                   from_version: Annotated[int, Query(alias="from", ge=1, le=2**31 - 1), DIGITS_ONLY],
                   to_version: Annotated[int | None, Query(alias="to", ge=1, le=2**31 - 1), DIGITS_ONLY] = None) -> DiffOut:
    user = _user(caller, user_id)

    def diff() -> DiffOut:
        new = _stored(state, user, to_version)
        old = _stored(state, user, from_version)
        return DiffOut(user_id=user.id, from_version=old.version, to_version=new.version,
                       changes=diff_profiles(old.profile, new.profile))

    return await asyncio.to_thread(diff)


@router.get("/export", response_model=ExportOut, summary="Everything kept about the user, as JSON")
async def get_export(user_id: UserPath, caller: CallerDep, state: StateDep) -> ExportOut:
    user = _user(caller, user_id)

    def export() -> ExportOut:
        examples = list_examples(state.store, user.key)
        current = state.store.current_version(user.key)
        token_usage = usage_by_day(state, user)  # a user who only chatted has this, and nothing else
        if current is None and not examples and not token_usage:
            raise NotFound(f"no user {user.id!r}")
        return ExportOut(
            user_id=user.id, examples=examples,
            profile_versions=[_profile(user, state.store.get(user.key, v)) for v in range(1, (current or 0) + 1)],
            # What the person deleted from the profile, kept so that updates do not infer it again.
            rejected_hypotheses=[RejectedOut(hypothesis=r.hypothesis, deleted_by=r.author, version=r.version,
                                             deleted_at=r.created_at) for r in rejections(state.store, user.key)],
            jobs=state.queue.for_user(user.key), token_usage=token_usage)

    return await asyncio.to_thread(export)


@router.delete("", status_code=204, summary="Delete the user: every example, profile version, job and deleted hypothesis")
async def delete(user_id: UserPath, caller: CallerDep, state: StateDep) -> Response:
    user = _user(caller, user_id)
    await asyncio.to_thread(delete_user, state.store, user)
    state.personalization.cache_clear()  # nothing of the user stays in this process's memory either
    return Response(status_code=204)
