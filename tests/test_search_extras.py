"""Did you mean, similar incidents with reasons, exports and the Atom feed, and `kb search` filters."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from app import cli
from kb.ingest import import_paths
from kb.search import search
from kb.similar import similar

DOCS = {
    "2024-01-05-recs-drift.md": ("Recommendations drifted after the holiday", "SEV1", ["people"], ["data-drift"],
                                 "The pipeline fed stale clicks and the input distribution drifted."),
    "2024-02-06-search-drift.md": ("Search ranking drifted in spring", "SEV2", ["people", "processes"], ["data-drift"],
                                   "Shoppers changed their habits; the input distribution drifted again."),
    "2024-03-07-fraud-config.md": ("Fraud threshold typo", "SEV3", ["processes"], ["configuration"],
                                   "A misconfigured threshold let card testing through."),
}
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def loaded(kb, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, (title, severity, facets, categories, text) in DOCS.items():
        (folder / name).write_text(
            f"---\ntitle: {title}\nseverity: {severity}\nfacets: {json.dumps(facets)}\n"
            f"categories: {json.dumps(categories)}\n---\n## Root cause\n{text}\n", encoding="utf-8")
    import_paths(kb, [folder])
    return kb


def test_did_you_mean_uses_the_index_words(loaded):
    results = search(loaded, "pipline")
    assert (results.total, results.suggestion) == (0, "pipeline")
    assert search(loaded, "pipeline").suggestion is None
    assert search(loaded, "facet:people thresold").suggestion == "facet:people threshold"


def test_similar_incidents_say_what_they_share(loaded):
    [first, *rest] = similar(loaded, "2024-01-05-recs-drift")
    assert first.hit.slug == "2024-02-06-search-drift"
    assert first.shared_tags == ["people", "data-drift"]
    assert "distribut" in first.shared_terms and "drift" in first.shared_terms
    assert all(item.hit.slug != "2024-01-05-recs-drift" for item in rest)


def test_exports_honour_every_filter(loaded, client):
    rows = list(csv.reader(io.StringIO(client.get("/search.csv?q=drifted&facet=processes").get_data(as_text=True))))
    assert [row[0] for row in rows] == ["slug", "2024-02-06-search-drift"]
    data = client.get("/search.json?category=data-drift&sort=newest").get_json()
    assert (data["total"], [hit["slug"] for hit in data["hits"]]) == (
        2, ["2024-02-06-search-drift", "2024-01-05-recs-drift"])


def test_atom_feed_lists_the_newest_matches_and_escapes_text(loaded, client):
    response = client.get("/search.atom?category=data-drift")
    assert response.mimetype == "application/atom+xml"
    feed = ET.fromstring(response.data)
    titles = [entry.find(f"{ATOM}title").text for entry in feed.findall(f"{ATOM}entry")]
    assert titles == ["Search ranking drifted in spring", "Recommendations drifted after the holiday"]
    ET.fromstring(client.get("/search.atom?q=%3Cscript%3E%26").data)  # still well-formed XML


def test_search_page_offers_the_correction_and_the_exports(loaded, client):
    page = client.get("/search?q=pipline").get_data(as_text=True)
    assert 'Did you mean <a href="/search?q=pipeline">pipeline</a>?' in page
    assert 'href="/search.atom?q=pipline"' in page


def test_kb_search_takes_the_page_filters(loaded, monkeypatch):
    monkeypatch.setenv("KB_DATA_DIR", str(loaded.config.data_dir))
    result = CliRunner().invoke(cli, ["search", "drifted", "--facet", "processes", "--severity", "SEV2",
                                      "--after", "2024-02-01", "--format", "json"])
    assert [hit["slug"] for hit in json.loads(result.output)["hits"]] == ["2024-02-06-search-drift"]


def test_did_you_mean_shows_even_when_other_words_found_something(loaded):
    results = search(loaded, "pipline drifted")
    assert results.total > 0 and results.suggestion == "pipeline drifted"
