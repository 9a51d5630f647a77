"""One alembic migration chain: the scripts in one package's folder, and the table that records how far a database
has gone through them.

Three parts own a chain each: the completion cache (`llm/cache_migrations`), the profile store
(`profiles/store_migrations`) and the service (`service/migrations`). The service's tables live in the profile
store's database, yet each chain keeps its own version table, so neither needs to know the other's revisions: a
profile store opened by the CLI never meets the service's. Every chain's `env.py` is `run_environment(CHAIN)`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class MigrationChain:
    package: str  # the package that holds the chain's folder
    folder: str  # alembic's script location inside it: env.py, script.py.mako, versions/
    version_table: str  # distinct per chain, and from alembic's default, so chains and a user's own alembic coexist
    metadata: Any = None  # the tables as the code declares them, for `alembic revision --autogenerate`

    def config(self, connection: Connection | None = None) -> Any:
        """Alembic's Config for this chain; `connection`, when given, is the one the migrations run on (already
        inside the caller's transaction, so they commit or roll back with it)."""
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(resources.files(self.package) / self.folder))
        config.set_main_option("path_separator", "os")
        config.attributes["connection"] = connection
        return config

    def heads(self) -> tuple[str, ...]:
        """The newest revision(s) this version of hyperalign ships."""
        from alembic.script import ScriptDirectory

        return tuple(ScriptDirectory.from_config(self.config()).get_heads())

    def current(self, connection: Connection) -> tuple[str, ...]:
        """The revision(s) the database records (none for a database this chain never ran on)."""
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection, opts={"version_table": self.version_table}).get_current_heads()

    def history(self, current: Sequence[str]) -> list[str]:
        """Every revision up to `current`, oldest first. Raises alembic's RevisionError for a revision it does not
        ship (a database written by a newer hyperalign)."""
        from alembic.script import ScriptDirectory

        if not current:
            return []
        script = ScriptDirectory.from_config(self.config())
        return [r.revision for r in reversed(list(script.iterate_revisions(tuple(current), "base")))]

    def is_current(self, connection: Connection) -> bool:
        return set(self.current(connection)) == set(self.heads())

    def upgrade(self, connection: Connection) -> None:
        from alembic import command

        command.upgrade(self.config(connection), "head")

    def stamp(self, connection: Connection, revision: str) -> None:
        """Record `revision` as reached without running anything (a database whose tables are already there)."""
        from alembic import command

        command.stamp(self.config(connection), revision)


def run_environment(chain: MigrationChain, as_url: Callable[[str], str] = str) -> None:
    """The body of a chain's env.py. In hyperalign the caller hands over its connection; from alembic's command line
    (to write a new revision: `alembic -c /dev/null -x url=URL revision --autogenerate -m NAME` with
    script_location at the chain's folder) the database comes from `-x url=`, made a URL by `as_url`."""
    from alembic import context
    from sqlalchemy import create_engine

    # Batch mode: SQLite cannot ALTER most things in place; alembic then copies the table instead.
    options = {"target_metadata": chain.metadata, "version_table": chain.version_table, "render_as_batch": True}
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    given = (context.get_x_argument(as_dictionary=True).get("url")
             or context.config.get_main_option("sqlalchemy.url"))
    if not given:
        raise SystemExit("give the database with -x url=URL_OR_PATH")
    if context.is_offline_mode():
        context.configure(url=as_url(given), literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    with create_engine(as_url(given)).connect() as opened:
        context.configure(connection=opened, **options)
        with context.begin_transaction():
            context.run_migrations()
