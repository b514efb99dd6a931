"""Schema versions: the migrations build exactly the models' tables, and old databases are upgraded, not lost."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlmodel import Session, SQLModel, select

from app import cli
from kb.config import load_config
from kb.context import open_kb
from kb.errors import KBError
from kb.models import Postmortem
from kb.schema import current_revision, head_revision, upgrade_db
from kb.storage import make_engine


@pytest.fixture
def url(tmp_path, database_url):
    return database_url or f"sqlite:///{tmp_path / 'kb.sqlite3'}"


@pytest.fixture
def engine(url):
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_the_migrations_build_exactly_the_models_tables(engine):
    assert upgrade_db(engine) == (None, head_revision())
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_a_new_database_is_created_at_the_newest_revision(url, tmp_path, engine):
    kb = open_kb(load_config({"KB_DATA_DIR": str(tmp_path / "data"), "KB_DATABASE_URL": url}))
    kb.engine.dispose()
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()
    assert upgrade_db(engine) == (head_revision(), head_revision())


def test_a_database_from_before_migrations_is_kept_and_upgraded(url, tmp_path, engine, monkeypatch):
    SQLModel.metadata.create_all(engine)  # what the first release did, with no version table
    with Session(engine) as session:
        session.add(Postmortem(slug="kept", title="Kept", body="Still here."))
        session.commit()
    config = {"KB_DATA_DIR": str(tmp_path / "data"), "KB_DATABASE_URL": url}
    with pytest.raises(KBError, match=r"schema is at revision none .* run `kb db upgrade`"):
        open_kb(load_config(config))

    monkeypatch.setenv("KB_DATABASE_URL", url)
    runner = CliRunner()
    first, second = runner.invoke(cli, ["db", "upgrade"]), runner.invoke(cli, ["db", "upgrade"])
    assert (first.exit_code, first.output) == (0, f"database schema upgraded from none to {head_revision()}\n")
    assert (second.exit_code, second.output) == (0, f"database schema is up to date (revision {head_revision()})\n")

    kb = open_kb(load_config(config))
    with kb.session() as session:
        assert [(pm.slug, pm.body) for pm in session.exec(select(Postmortem))] == [("kept", "Still here.")]
    kb.engine.dispose()


def test_an_unreachable_database_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("KB_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 1 and result.output.startswith("Error: could not upgrade the database:")
