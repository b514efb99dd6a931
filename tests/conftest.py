"""Fixtures: a fresh app, knowledge base and data folder per test; no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from kb.config import DEFAULT_TAXONOMY
from nlp.taxonomy import read_taxonomy_data

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seed_data"


@pytest.fixture
def app(tmp_path):
    app = create_app({"KB_DATA_DIR": str(tmp_path / "data"), "KB_SECRET_KEY": "test-secret"})
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
