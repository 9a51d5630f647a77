"""How many profiles of a population hold each statement: the statistic behind the generic mark.

"The person is humorous" in 40% of a tenant's profiles says nothing about any one of them (pipeline/generic.py). A
population is a *scope*: the part of a user id before its first ":" — the service's tenant-scoped keys ("t…:ann")
— and "" for ids without one (a store of the CLI's). Statements are counted by a canonical key — their words
stemmed, without the filler every statement about a writer has and the comparison every contrastive statement makes
("more … than typical answers") — so "This person is humorous.", "The person is more humorous than the typical
answers" and "the person is HUMOROUS" are one; and each of their words is counted too (a `WORD` key), so that "is
skeptical and critical" is seen as shared where most profiles say "skeptical" and "critical" in some wording
(pipeline/generic.py). Each profile counts a key once. The counts are kept in the transaction of every save and
deletion (store.py), so they stay exact under concurrent writers on PostgreSQL and SQLite, and a share is one
indexed read however many users a tenant has. Only keys and counts are kept: a statistic, no user's text — and a
deleted user's keys are subtracted in the transaction that deletes them."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

import snowballstemmer
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from .model import Profile

metadata = MetaData(naming_convention={"pk": "pk_%(table_name)s"})  # as the store's tables
statement_counts = Table(
    "statement_counts", metadata,
    Column("scope", String(200), primary_key=True),
    Column("statement_key", String(400), primary_key=True),
    Column("profiles", Integer, nullable=False),
)
POPULATION = ""  # the row that counts the scope's profiles
KEY_CHARS = 400
WORD = "~"  # a key that counts the profiles with this (stemmed) word in any statement; no statement key starts so
_local = threading.local()
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_FILLER = frozenset("""a an the this that person writer author they them their he she his her is are was be uses use
often tends to tend of in and or with by s more than typical answer answers default has have show shows display
displays write writes""".split())


def statement_words(statement: str) -> list[str]:
    """The statement's words that say something, stemmed (Snowball's English stemmer: statements are written in the
    prompts' English), sorted and unique."""
    words = [w for w in _WORD.findall(statement.lower().replace("’", "'")) if w not in _FILLER]
    return sorted({w for w in _stemmer().stemWords(words) if w not in _FILLER})  # "person's" stems to "person"


def _stemmer() -> Any:
    # A stemmer instance keeps its state between calls: one per thread, so threads never share one.
    if not hasattr(_local, "stemmer"):
        _local.stemmer = snowballstemmer.stemmer("english")
    return _local.stemmer


def canonical(statement: str) -> str:
    return key_of(statement_words(statement))


def key_of(words: list[str]) -> str:
    """The canonical key of a statement's words (`statement_words`): callers that need both stem once."""
    return " ".join(words)[:KEY_CHARS] or "-"


def statement_keys(profile: Profile | None) -> set[str]:
    """The keys a profile counts once each: its statements' canonical keys and their words' (the LLM's statements
    and the person's; measured facts are numbers)."""
    keys: set[str] = set()
    for h in profile.hypotheses if profile else []:
        words = statement_words(h.statement)
        keys.add(key_of(words))
        keys.update(word_key(w) for w in words)
    return keys


def word_key(word: str) -> str:
    return (WORD + word)[:KEY_CHARS]


def scope_of(user_id: str) -> str:
    scope, sep, _ = user_id.partition(":")
    return scope if sep else ""


def _increment(connection: Connection, scope: str, keys: list[str]) -> None:
    if not keys:
        return
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(statement_counts).values([{"scope": scope, "statement_key": k, "profiles": 1} for k in keys])
    connection.execute(statement.on_conflict_do_update(
        index_elements=["scope", "statement_key"], set_={"profiles": statement_counts.c.profiles + 1}))


def _decrement(connection: Connection, scope: str, keys: list[str]) -> None:
    if not keys:
        return
    c = statement_counts.c
    connection.execute(update(statement_counts).where(c.scope == scope, c.statement_key.in_(keys))
                       .values(profiles=c.profiles - 1))
    connection.execute(delete(statement_counts).where(c.scope == scope, c.statement_key.in_(keys), c.profiles <= 0))


def adjust(connection: Connection, user_id: str, before: Profile | None, after: Profile | None) -> None:
    """In the caller's transaction: the user's profile goes from `before` to `after` (None: none). Keys are touched
    in sorted order, so two concurrent writers lock rows in the same order and cannot deadlock."""
    old, new = statement_keys(before), statement_keys(after)
    added, removed = sorted(new - old), sorted(old - new)
    if before is None and after is not None:
        added = [POPULATION, *added]
    if after is None and before is not None:
        removed = [POPULATION, *removed]
    scope = scope_of(user_id)
    _increment(connection, scope, added)
    _decrement(connection, scope, removed)


def shares(connection: Connection, scope: str, keys: Iterable[str]) -> tuple[Counter[str], int]:
    """(how many of the scope's profiles hold each key, the scope's number of profiles)."""
    wanted = sorted({*keys, POPULATION})
    c = statement_counts.c
    rows = connection.execute(select(c.statement_key, c.profiles).where(c.scope == scope,
                                                                         c.statement_key.in_(wanted)))
    counts = Counter({key: count for key, count in rows})
    return counts, counts.pop(POPULATION, 0)


def recount(connection: Connection) -> None:
    """Count every current profile's keys afresh (a migration that changes what a key is runs this)."""
    connection.execute(delete(statement_counts))
    current = connection.execute(text(
        "SELECT v.user_id, v.profile FROM profile_versions v JOIN profiles p "
        "ON p.user_id = v.user_id AND p.current_version = v.version"))
    for user_id, document in current.fetchall():
        adjust(connection, user_id, None, Profile.from_json(document, source=f"profile store: '{user_id}'"))
