"""The whole workflow on the real seed_data folder: `kb import`, then search, pages, trends, tags and `kb tag`."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from app import cli, create_app
from tests.conftest import SEED

SEED_FILES = sorted(SEED.glob("*.md"))
pytestmark = pytest.mark.skipif(len(SEED_FILES) < 10, reason="seed_data/ holds fewer than 10 postmortems")


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return CliRunner(env={"KB_DATA_DIR": str(tmp_path_factory.mktemp("e2e") / "data")})


@pytest.fixture(scope="module")
def imported(runner):
    """The result of `kb import seed_data/`, run once for the module."""
    return runner.invoke(cli, ["import", str(SEED)])


@pytest.fixture(scope="module")
def client(runner, imported):
    app = create_app({"KB_DATA_DIR": runner.env["KB_DATA_DIR"], "KB_SECRET_KEY": "test"})
    yield app.test_client()
    app.extensions["kb"].engine.dispose()


def all_postmortems(client) -> list[dict]:
    records, offset = [], 0
    while page := client.get(f"/api/postmortems?limit=200&offset={offset}").get_json()["postmortems"]:
        records += page
        offset += len(page)
    return records


def test_every_seed_file_imports(imported):
    assert (imported.exit_code, imported.stdout) == (
        0, f"imported: {len(SEED_FILES)}  updated: 0  unchanged: 0  failed: 0\n"), imported.stderr


def test_search_for_drift_finds_postmortems_whose_pages_load(client):
    hits = client.get("/api/search?q=drift&per_page=100").get_json()["hits"]
    assert hits
    failing = [(hit["slug"], status) for hit in hits
               if (status := client.get(f"/postmortems/{hit['slug']}").status_code) != 200]
    assert failing == []
    page = client.get("/search?q=drift").get_data(as_text=True)
    first_page = client.get("/api/search?q=drift").get_json()["hits"]
    assert re.findall(r'<a class="title" href="/postmortems/([^"]+)"', page) == [hit["slug"] for hit in first_page]


def test_trends_show_at_least_one_period(client):
    data = client.get("/api/trends").get_json()
    assert data["periods"] and sum(data["totals"].values()) > 0
    html = client.get("/trends").get_data(as_text=True)
    assert f"dated postmortems from {data['periods'][0]} to {data['periods'][-1]}." in html


def test_every_postmortem_has_a_tag(client):
    records = all_postmortems(client)
    assert len(records) == len(SEED_FILES)
    assert [r["slug"] for r in records if not (r["facets"] or r["categories"])] == []


def test_kb_tag_on_a_seed_file(runner):
    result = runner.invoke(cli, ["tag", str(SEED_FILES[0]), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    [entry] = json.loads(result.stdout)
    assert entry["file"] == str(SEED_FILES[0]) and entry["title"]
    assert entry["facets"] or entry["categories"]
