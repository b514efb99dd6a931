"""Fixtures: a fresh app, knowledge base and data folder per test; no network."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

from app import create_app
from kb.config import DEFAULT_TAXONOMY
from nlp.taxonomy import read_taxonomy_data
from tests.pgserver import PostgresServer, find_bin_dir

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seed_data"


# The storage, ingest, trends and backup tests run once on SQLite and once on a real PostgreSQL server.
BOTH_DATABASES = {"test_ingest", "test_trends", "test_trend_periods", "test_tags", "test_export", "test_doctor",
                  "test_schema", "test_hostile_input", "test_index_worker"}


def pytest_generate_tests(metafunc):
    if "database" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in BOTH_DATABASES:
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def database(request) -> str:
    """Name the database engine this test runs on: 'sqlite' unless parametrized."""
    return getattr(request, "param", "sqlite")


def missing(message: str, required_by: str) -> None:
    """Skip the tests that need a missing program; fail them instead in CI or when required_by is set."""
    if os.environ.get("CI") or os.environ.get(required_by):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_admin_url():
    """Return the URL of a PostgreSQL server for the tests: KB_TEST_POSTGRES_URL, or one started here."""
    if url := os.environ.get("KB_TEST_POSTGRES_URL"):
        yield url
        return
    bin_dir = find_bin_dir()
    if bin_dir is None:
        missing("PostgreSQL is not installed (apt-get install postgresql); its tests cannot run", "KB_REQUIRE_POSTGRES")
    # Not under pytest's own temporary folder: the server's account must be able to reach its files.
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="kb-test-postgres-")), bin_dir)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def new_database_url(request, database):
    """Return a function that makes an empty database and returns its URL ('' is SQLite in the data folder)."""
    if database == "sqlite":
        yield lambda: ""
        return
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(request.getfixturevalue("postgres_admin_url"))
    plain = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    made = []

    def make() -> str:
        made.append(f"kb_test_{uuid.uuid4().hex[:12]}")
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{made[-1]}"')
        return admin.set(database=made[-1]).render_as_string(hide_password=False)

    yield make
    with psycopg.connect(plain, autocommit=True) as connection:
        for name in made:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(new_database_url) -> str:
    """Return an empty database's URL: '' (SQLite in the data folder) or a new PostgreSQL database."""
    return new_database_url()


@pytest.fixture
def app(tmp_path, database_url):
    app = create_app({"KB_DATA_DIR": str(tmp_path / "data"), "KB_SECRET_KEY": "test-secret",
                      "KB_DATABASE_URL": database_url})
    app.config.update(TESTING=True)
    yield app
    app.extensions["kb"].engine.dispose()


@pytest.fixture
def kb(app):
    return app.extensions["kb"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def write_md(tmp_path):
    """Write a markdown file under tmp_path/docs and return its path."""

    def write(name: str, text: str | bytes) -> Path:
        path = tmp_path / "docs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


def write_quiet_taxonomy(folder: Path) -> Path:
    """Write the shipped labels with cues no text contains, so that only front-matter labels tag postmortems."""
    entries = [f'[[label]]\nid = "{e["id"]}"\nkind = "{e["kind"]}"\ncues = ["zzqx {e["id"]}"]\n'
               for e in read_taxonomy_data(DEFAULT_TAXONOMY)["label"]]
    path = folder / "quiet-taxonomy.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(entries), encoding="utf-8")
    return path


TAXONOMY = ROOT / "nlp" / "taxonomy.toml"


@pytest.fixture(scope="session")
def tagger():
    """The rules-only tagger on the shipped taxonomy, built once (it takes about a second)."""
    from nlp.tagger import Tagger
    from nlp.taxonomy import load_taxonomy

    return Tagger(load_taxonomy(TAXONOMY))


def labels(tagger, *sections) -> list[str]:
    """Return the sorted labels the tagger gives (section key, text) pairs."""
    return sorted(suggestion.label for suggestion in tagger.tag(list(sections)))


@pytest.fixture
def token(kb):
    """Create a user and return their API token."""
    from kb.users import create_user

    with kb.session() as session:
        _user, token = create_user(session=session, name="ana", password="correct horse")
        session.commit()
    return token


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (report_setup, report_call), so fixtures can see a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
