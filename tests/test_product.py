"""End to end: the seed folder through the CLI, then every page and API a new user touches."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from app import cli, create_app
from kb.users import create_user
from tests.conftest import SEED


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Import seed_data once through `kb import`, then build an app on that data folder."""
    data = tmp_path_factory.mktemp("seeded")
    runner = CliRunner(env={"KB_DATA_DIR": str(data)})
    result = runner.invoke(cli, ["import", str(SEED)])
    assert result.exit_code == 0, result.output
    app = create_app({"KB_DATA_DIR": str(data), "KB_SECRET_KEY": "test"})
    yield runner, app
    app.extensions["kb"].engine.dispose()


def test_import_reports_counts_and_is_idempotent(seeded):
    runner, _app = seeded
    n = len(list(SEED.glob("*.md")))
    again = runner.invoke(cli, ["import", str(SEED)])
    assert again.exit_code == 0
    assert f"imported: 0  updated: 0  unchanged: {n}  failed: 0" in again.output


def test_search_drift_then_open_every_hit_and_see_why_it_was_tagged(seeded):
    _runner, app = seeded
    client = app.test_client()
    page = client.get("/search?q=drift")
    assert page.status_code == 200
    slugs = re.findall(r'href="/postmortems/([^"]+)"', page.get_data(as_text=True))
    assert slugs
    for slug in slugs:
        html = client.get(f"/postmortems/{slug}").get_data(as_text=True)
        assert "Why it is tagged" in html
        assert 'class="evidence"' in html


def test_every_seed_postmortem_has_a_tag_with_evidence(seeded):
    _runner, app = seeded
    client, data = app.test_client(), []
    while page := client.get(f"/api/postmortems?limit=200&offset={len(data)}").get_json()["postmortems"]:
        data += page
    assert len(data) == len(list(SEED.glob("*.md")))
    for record in data:
        assert record["facets"] or record["categories"], record["slug"]
        assert all(tag["evidence"] for tag in record["tags"] if tag["source"] == "auto"), record["slug"]


@pytest.mark.parametrize("path", ["/", "/trends", "/trends?period=month", "/trends?period=year&confirmed=1",
                                  "/search?q=facet:structure", "/search?facet=people&category=data-drift",
                                  "/search?q=&sort=newest&page=2", "/login", "/api/labels", "/api/trends"])
def test_pages_load(seeded, path):
    _runner, app = seeded
    assert app.test_client().get(path).status_code == 200


def test_trend_bars_drill_down_to_the_same_number_of_postmortems(seeded):
    _runner, app = seeded
    client = app.test_client()
    trends = client.get("/api/trends?period=year").get_json()
    year = next(p for p in trends["periods"] if trends["labels"]["facet"]["processes"][p])
    expected = trends["labels"]["facet"]["processes"][year]
    found = client.get(f"/api/search?facet=processes&after={year}-01-01&before={year}-12-31").get_json()
    assert found["total"] == expected


def test_cli_search_and_tag_json_shapes(seeded):
    runner, _app = seeded
    result = runner.invoke(cli, ["search", "drift", "--format", "json", "--limit", "2"])
    data = json.loads(result.output)
    assert set(data) == {"total", "hits"} and len(data["hits"]) == 2
    assert {"slug", "title", "date", "score", "facets", "categories", "highlight"} <= set(data["hits"][0])
    seed_file = sorted(SEED.glob("*.md"))[0]
    tagged = json.loads(runner.invoke(cli, ["tag", str(seed_file), "--format", "json"]).output)
    assert [set(entry) for entry in tagged] == [{"file", "title", "facets", "categories"}]
    for tag in tagged[0]["facets"] + tagged[0]["categories"]:
        assert set(tag) == {"label", "score", "evidence"} and tag["evidence"]


def test_bad_query_is_a_message_not_a_crash(seeded):
    _runner, app = seeded
    client = app.test_client()
    page = client.get('/search?q="unclosed')
    assert page.status_code == 400 and "unmatched double quote" in page.get_data(as_text=True)
    api = client.get("/api/search?q=x&after=yesterday")
    message = "after: needs a date written YYYY-MM-DD, not 'yesterday'"
    assert (api.status_code, api.get_json()) == (400, {"error": message})


def test_import_reports_bad_files_and_keeps_going(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good one\n\nThe feature pipeline drifted.\n")
    (docs / "broken.md").write_text("---\ntitle: [unclosed\n---\nbody\n")
    (docs / "binary.md").write_bytes(b"\x00\x01\x02")
    (docs / "empty.md").write_text("")
    runner = CliRunner(env={"KB_DATA_DIR": str(tmp_path / "data")})
    result = runner.invoke(cli, ["import", str(docs)])
    assert result.exit_code == 1
    assert "imported: 1  updated: 0  unchanged: 0  failed: 3" in result.output
    assert f"{docs / 'broken.md'}: line 2: front matter is not valid YAML" in result.output
    assert f"{docs / 'binary.md'}: binary file (contains NUL bytes), not markdown" in result.output
    assert f"{docs / 'empty.md'}: file is empty" in result.output


def test_writes_need_authentication_and_markdown_is_sanitised(client, kb):
    hostile = "# Hostile <script>alert(1)</script>\n\n[click](javascript:alert(2)) <img src=x onerror=alert(3)>\n"
    assert client.post("/api/postmortems", json={"markdown": hostile}).status_code == 401
    with kb.session() as session:
        _user, token = create_user(session=session, name="bob", password="long enough")
        session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/api/postmortems", json={"markdown": hostile}, headers=headers)
    assert created.status_code == 201
    slug = created.get_json()["slug"]
    html = client.get(f"/postmortems/{slug}").get_data(as_text=True)
    assert "<script>alert" not in html and 'href="javascript:' not in html and "<img" not in html
    assert "Hostile &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert client.post("/api/postmortems", json={"markdown": hostile}, headers=headers).status_code == 409
    bad = client.post("/api/postmortems", json={"markdown": "---\ndate: [\n---\nx\n"}, headers=headers)
    assert bad.status_code == 400 and bad.get_json()["line"] == 2


def test_web_form_needs_sign_in_and_csrf(client, kb):
    with kb.session() as session:
        create_user(session=session, name="carol", password="long enough")
        session.commit()
    assert client.get("/new").status_code == 302
    login_page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
    for password, status in (("wrong", 401), ("long enough", 302)):
        response = client.post("/login", data={"name": "carol", "password": password, "csrf_token": csrf})
        assert response.status_code == status
    # Signing in starts a new session, so the form carries a new token.
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/new").get_data(as_text=True)).group(1)
    form = {"markdown": "# Cache stampede on the recs API\n\nLatency rose when the cache emptied.\n"}
    assert client.post("/new", data=form).status_code == 400  # no CSRF token
    created = client.post("/new", data={**form, "csrf_token": csrf})
    assert created.status_code == 302
    assert client.get("/api/search?q=stampede").get_json()["total"] == 1


def test_unknown_postmortem_offers_search(client):
    page = client.get("/postmortems/nope")
    assert page.status_code == 404 and 'role="search"' in page.get_data(as_text=True)
    assert client.get("/api/postmortems/nope").get_json() == {"error": "no postmortem with slug 'nope'"}
