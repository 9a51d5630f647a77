"""The store's statement counts behind the generic mark (profiles/statements.py), on SQLite and PostgreSQL: kept in
the transaction of every save and deletion, per scope (a tenant), and read as shares by the service."""

from __future__ import annotations

from sqlalchemy import text

from hyperalign.pipeline.generic import marked
from hyperalign.profiles.model import Hypothesis, Profile
from hyperalign.profiles.statements import canonical, shares, word_key
from hyperalign.profiles.store import VERSION_TABLE, ProfileStore


def profile(user_id: str, *statements: str) -> Profile:
    return Profile(user_id=user_id, hypotheses=[Hypothesis(aspect="personality", statement=s, supported=True)
                                                for s in statements],
                   examples_hash="x", n_examples=0, backend="fake", model="m", prompt_version="v")


def counts(store: ProfileStore, scope: str, *statements: str):
    with store.transaction() as connection:
        return shares(connection, scope, [canonical(s) for s in statements])


def save_tenant(store: ProfileStore, users: int, statement: str) -> None:
    """Users t1:u0… each with `statement` and a sign-off of their own."""
    for i in range(users):
        store.save(profile(f"t1:u{i}", statement, f"Signs off with 'cheers {i}'."),
                   expected_version=0, author="hyperalign", action="infer")


def test_counts_follow_saves_edits_and_deletions_per_scope(database_url):
    store = ProfileStore(database_url)
    try:
        save_tenant(store, 6, "The person is humorous.")
        store.save(profile("t2:z", "This person is humorous"), expected_version=0, author="hyperalign", action="infer")
        found, population = counts(store, "t1", "This person is humorous", "Signs off with 'cheers 3'.")
        assert population == 6 and found[canonical("The person is humorous.")] == 6
        assert found[canonical("Signs off with 'cheers 3'.")] == 1
        assert counts(store, "t2", "The person is humorous.")[1] == 1  # another tenant is another population

        # A new version replaces the old one's statements; a deletion subtracts the user's, in its transaction.
        store.save(profile("t1:u0", "Opens with the weather."), expected_version=1, author="ann", action="edit")
        found, population = counts(store, "t1", "The person is humorous.", "Opens with the weather.")
        assert (population, found[canonical("The person is humorous.")], found[canonical("Opens with the weather.")]) \
            == (6, 5, 1)
        with store.transaction(write=True) as connection:
            store.delete("t1:u1", connection)
        found, population = counts(store, "t1", "The person is humorous.", "Signs off with 'cheers 1'.")
        assert (population, found[canonical("The person is humorous.")]) == (5, 4)
        assert canonical("Signs off with 'cheers 1'.") not in found  # a zero count leaves no row behind

        marks = marked(profile("t1:u2", "The person is humorous.", "Signs off with 'cheers 2'.").hypotheses,
                       *counts(store, "t1", "The person is humorous.", "Signs off with 'cheers 2'."))
        assert [(h.generic, h.shared_by) for h in marks] == [(True, 0.8), (False, 0.2)]
    finally:
        store.close()


def test_a_store_counted_under_the_earlier_keys_is_counted_afresh_when_opened(database_url):
    store = ProfileStore(database_url)
    try:
        save_tenant(store, 5, "The person is skeptical and critical.")
        with store.transaction(write=True) as connection:  # as revision 0004 left it: no word keys, a stale key
            connection.execute(text("DELETE FROM statement_counts WHERE statement_key LIKE '~%'"))
            connection.execute(text("UPDATE statement_counts SET statement_key = 'critical skeptical' "
                                    "WHERE statement_key = :key"), {"key": canonical("is skeptical and critical")})
            connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0004_statement_counts'"))
    finally:
        store.close()
    store = ProfileStore(database_url)
    try:
        keys = [canonical("The person is skeptical and critical."), word_key("skeptic"), word_key("cheer"),
                word_key("3"), "critical skeptical"]
        with store.transaction() as connection:
            found, population = shares(connection, "t1", keys)
        assert population == 5
        assert [found[k] for k in keys] == [5, 5, 5, 1, 0]
    finally:
        store.close()
