"""The database schema's version: new databases are created at the newest, older ones upgraded by Alembic."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

import kb.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from kb.errors import KBError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """Return an Alembic configuration for our migrations, running on connection."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    """Return the newest migration's revision id."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """Return the revision a database is at; None when it has never been versioned."""
    return MigrationContext.configure(connection).get_current_revision()


def _has_tables(connection: Connection) -> bool:
    return inspect(connection).has_table("postmortem")


def upgrade_db(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest revision; return (revision before, revision after).

    A database created before migrations existed holds the baseline tables without a version, so it is
    stamped as the baseline first.
    """
    with engine.begin() as connection:
        before = current_revision(connection)
        if before is None and _has_tables(connection):
            command.stamp(alembic_config(connection), BASELINE)
        command.upgrade(alembic_config(connection), "head")
        return before, current_revision(connection)


def init_db(engine: Engine) -> None:
    """Create an empty database at the newest revision, or check that an existing one is there."""
    with engine.begin() as connection:
        revision = current_revision(connection)
        if revision is None and not _has_tables(connection):
            SQLModel.metadata.create_all(connection)
            command.stamp(alembic_config(connection), head_revision())
            return
    if revision != head_revision():
        raise KBError(
            f"the database schema is at revision {revision or 'none (older than migrations)'} and this version of "
            f"Postmortem KB needs {head_revision()}: run `kb db upgrade` (back up the database first)"
        )
