"""kb.search: ranking, filters in arguments and in the query, dates, sorting, pages, errors, snippets, similar."""

from __future__ import annotations

import re

import pytest

from app import create_app
from kb.errors import InvalidQuery, NotFound
from kb.ingest import import_paths
from kb.search import search
from kb.similar import similar
from tests.conftest import write_quiet_taxonomy

# slug: (date, severity, facets, categories, title, text). The tagger's rules never fire here (quiet taxonomy),
# so each postmortem carries exactly the labels of its front matter.
DOCS = {
    "recs-drift": ("2023-11-20", "SEV1", ["structure"], ["data-drift"], "Recommendations drifted after Black Friday",
                   "## Root cause\nThe input distribution drift grew every day. Drift alerts were muted, so the drift "
                   "ran for weeks.\n"),
    "fraud-typo": ("2024-02-14", "SEV2", ["processes"], ["configuration"], "Fraud threshold typo",
                   "## Summary\nA threshold typo declined orders.\n\n## Background\nThe fraud model itself showed no "
                   "drift.\n"),
    "forecast-stale": ("2024-05-02", "sev3", ["structure", "people"], ["stale-model"], "Forecast nobody retrained",
                       "## Summary\nThe forecast went stale. <script>alert(1)</script> showed in the logs.\n"),
    "search-drift": ("2024-08-30", "P1", ["people"], ["data-drift"], "Search queries drifted to Spanish",
                     "## Root cause\nQuery language drift after the Spanish launch.\n"),
    "undated-outage": (None, None, ["processes"], [], "Undated cache outage",
                       "## Summary\nThe cache emptied and latency rose.\n"),
}


def write(folder, slug, day, severity, facets, categories, title, text):
    lines = [f"title: {title}", f"facets: {facets}", f"categories: {categories}"]
    lines += [f"date: {day}"] if day else []
    lines += [f"severity: {severity}"] if severity else []
    (folder / f"{slug}.md").write_text("---\n" + "\n".join(lines) + "\n---\n" + text, encoding="utf-8")


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    """One knowledge base of DOCS for the whole module: these tests only read it."""
    tmp = tmp_path_factory.mktemp("search")
    (tmp / "docs").mkdir()
    for slug, fields in DOCS.items():
        write(tmp / "docs", slug, *fields)
    app = create_app({"KB_DATA_DIR": str(tmp / "data"), "KB_SECRET_KEY": "test",
                      "KB_TAXONOMY": str(write_quiet_taxonomy(tmp))})
    kb = app.extensions["kb"]
    assert import_paths(kb, [tmp / "docs"]).counts()["imported"] == len(DOCS)
    yield kb
    kb.engine.dispose()


def slugs(kb, q="", **kwargs):
    return [hit.slug for hit in search(kb, q, **kwargs).hits]


def test_title_and_root_cause_matches_rank_first(kb):
    # recs-drift says drift in its title and three times in its root cause; fraud-typo once in its background.
    assert slugs(kb, "drift") == ["recs-drift", "search-drift", "fraud-typo"]


def test_words_match_through_stems_and_phrases_match_exactly(kb):
    assert slugs(kb, "drifting") == slugs(kb, "drift")
    assert slugs(kb, '"threshold typo"') == ["fraud-typo"]
    # Any word may match, and postmortems with more of the words rank first; AND requires them all.
    assert set(slugs(kb, "drift cache")) >= set(slugs(kb, "drift"))
    assert slugs(kb, "drift AND cache") == []


def test_an_empty_query_lists_everything_newest_first(kb):
    results = search(kb)
    assert (results.total, [hit.slug for hit in results.hits]) == (5, slugs(kb, "", sort="newest"))


def test_undated_postmortems_come_last_when_sorted_by_date(kb):
    assert slugs(kb, "", sort="newest") == ["search-drift", "forecast-stale", "fraud-typo", "recs-drift",
                                            "undated-outage"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"facets": ["structure"]}, {"recs-drift", "forecast-stale"}),
        ({"facets": ["STRUCTURE", "processes"]}, {"recs-drift", "forecast-stale", "fraud-typo", "undated-outage"}),
        ({"categories": ["data-drift"]}, {"recs-drift", "search-drift"}),
        ({"facets": ["people"], "categories": ["data-drift"]}, {"search-drift"}),
        ({"severities": ["SEV1"]}, {"recs-drift", "search-drift"}),
        ({"severities": ["sev3", "sev2"]}, {"forecast-stale", "fraud-typo"}),
        ({"after": "2024-02-14"}, {"fraud-typo", "forecast-stale", "search-drift"}),
        ({"before": "2024-02-14"}, {"recs-drift", "fraud-typo"}),
        ({"after": "2024-01-01", "before": "2024-06-30"}, {"fraud-typo", "forecast-stale"}),
    ],
)
def test_filters_are_and_across_fields_and_or_within_one(kb, kwargs, expected):
    assert set(slugs(kb, **kwargs)) == expected


@pytest.mark.parametrize(
    ("q", "words", "kwargs"),
    [
        ("facet:structure", "", {"facets": ["structure"]}),
        ("facets:Structure", "", {"facets": ["structure"]}),
        ("category:data-drift", "", {"categories": ["data-drift"]}),
        ("cat:data-drift facet:people", "", {"categories": ["data-drift"], "facets": ["people"]}),
        ("severity:sev1", "", {"severities": ["SEV1"]}),
        ("after:2024-02-14", "", {"after": "2024-02-14"}),
        ("after:2024-01-01 before:2024-06-30", "", {"after": "2024-01-01", "before": "2024-06-30"}),
        ("drift before:2024-01-01", "drift", {"before": "2024-01-01"}),
    ],
)
def test_filters_written_in_the_query_match_the_same_as_arguments(kb, q, words, kwargs):
    expected = slugs(kb, words, **kwargs)
    assert expected and slugs(kb, q) == expected


@pytest.mark.parametrize("q", ["severity:SEV1", "severity:sev1", "sev:Sev1"])
def test_severity_in_the_query_is_case_insensitive(kb, q):
    assert set(slugs(kb, q)) == {"recs-drift", "search-drift"}


def test_pages_split_the_results(kb):
    newest = slugs(kb, "", sort="newest", per_page=100)
    assert len(newest) == 5
    pages = [search(kb, "", sort="newest", page=page, per_page=2) for page in (1, 2, 3)]
    assert [[hit.slug for hit in p.hits] for p in pages] == [newest[0:2], newest[2:4], newest[4:]]
    assert {(p.total, p.pages, p.per_page) for p in pages} == {(5, 3, 2)}


def test_a_page_past_the_end_is_empty(kb):
    past = search(kb, "", page=9, per_page=2)
    assert (past.total, past.page, past.hits) == (5, 9, [])


def test_sort_by_severity(kb):
    assert slugs(kb, "", sort="severity") == [
        "search-drift", "recs-drift", "fraud-typo", "forecast-stale", "undated-outage"]


def test_scores_are_relevance_or_zero_when_sorted_by_a_field(kb):
    assert all(hit.score > 0 for hit in search(kb, "drift").hits)
    for sort in ("newest", "severity"):
        assert [hit.score for hit in search(kb, "drift", sort=sort).hits] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("q", "kwargs", "message"),
    [
        ('"unbalanced', {}, 'the query has an unmatched double quote (")'),
        ("(drift", {}, "the query opens a parenthesis it never closes"),
        ("drift)", {}, "the query closes a parenthesis it never opened"),
        ("after:2024-13-01", {}, "after: needs a date written YYYY-MM-DD, not '2024-13-01'"),
        ("", {"before": "yesterday"}, "before: needs a date written YYYY-MM-DD, not 'yesterday'"),
        ("after:2024-06-01 before:2024-01-01", {}, "after: is later than before:, so nothing can match"),
        ("drift", {"sort": "oldest"}, "sort must be one of relevance, newest, severity"),
    ],
)
def test_invalid_queries_raise_invalid_query(kb, q, kwargs, message):
    with pytest.raises(InvalidQuery) as caught:
        search(kb, q, **kwargs)
    assert str(caught.value) == message


def test_highlights_mark_matches_and_escape_everything_else(kb):
    [drift] = search(kb, "muted").hits
    assert drift.highlight == ('The input distribution drift grew every day. Drift alerts were '
                               '<mark class="match term0">muted</mark>, so the drift ran for weeks')
    for q in ("logs", "script", "retrained"):  # in the text, inside the tag, only in the title (summary is shown)
        [hit] = search(kb, q).hits
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hit.highlight.replace('<mark class="match term0">', "").replace(
            "</mark>", ""), q
        assert set(re.findall(r"</?(\w+)", hit.highlight)) <= {"mark"}, hit.highlight


def test_hits_as_dicts(kb):
    [hit] = search(kb, "spanish launch").hits
    data = hit.as_dict()
    assert data == {"slug": "search-drift", "title": "Search queries drifted to Spanish", "date": "2024-08-30",
                    "score": data["score"], "severity": "SEV1", "facets": ["people"], "categories": ["data-drift"],
                    "highlight": 'Query language drift after the <mark class="match term0">Spanish</mark> '
                                 '<mark class="match term1">launch</mark>'}
    assert data["score"] > 0


def test_counts_per_facet_category_and_severity(kb):
    assert search(kb, "", with_counts=True).counts == {
        "facet": {"processes": 2, "structure": 2, "people": 2},
        "category": {"data-drift": 2, "configuration": 1, "stale-model": 1},
        "severity": {"sev1": 2, "sev2": 1, "sev3": 1},
    }


def test_similar_returns_other_postmortems(kb):
    related = [item.hit.slug for item in similar(kb, "recs-drift")]
    assert related and "recs-drift" not in related
    assert related[0] == "search-drift"
    with pytest.raises(NotFound):
        similar(kb, "no-such-postmortem")


def test_not_excludes_even_though_any_word_may_match(kb):
    def slugs(q):
        return {hit.slug for hit in search(kb, q, per_page=50).hits}

    assert slugs("drift") & slugs("spanish") == {"search-drift"}
    assert slugs("drift NOT spanish") == slugs("drift") - {"search-drift"}
    assert slugs("drift cache NOT spanish NOT typo") == {"recs-drift", "undated-outage"}
    assert slugs("NOT drift") == set(DOCS) - slugs("drift")


@pytest.mark.parametrize("q", [
    "drift", "drift threshold", "drift AND forecast", "drift OR cache", "drift NOT spanish", "NOT drift",
    '"drift alerts"', "drif*", "(drift OR typo) AND NOT facet:people", "drift ANDMAYBE spanish",
    "drift facet:structure", "after:2024-01-01 drift", "title:forecast OR body:latency", "nosuchword",
    'NOT "drift alerts" drift', '"drift alerts" OR typo', 'drift -"spanish queries"', 'title:"search ranking"',
    '"nosuchword drift"', '(NOT drift) AND cache', 'drift AND NOT (cache OR "drift alerts")',
])
def test_the_matched_set_is_exactly_what_whoosh_matches(kb, q):
    from kb.search import build_query, matching_docs, ranking_query

    with kb.index.searcher() as searcher:
        query = build_query(searcher.schema, q)
        matched = matching_docs(searcher, query)
        assert matched == set(searcher.docs_for_query(query))
        # Ranking without phrases and negations, within the matched set, finds exactly those documents.
        ranked = searcher.search(ranking_query(query), limit=None, filter=matched) if matched else []
        assert {hit.docnum for hit in ranked} == matched


def test_rebuilding_in_two_processes_gives_the_same_answers(kb):
    before = {q: search(kb, q, with_counts=True).as_dict() for q in ("drift", "cache OR typo", "")}
    from sqlmodel import select

    from kb.models import Postmortem
    from kb.reindex import index_documents

    with kb.session() as session:
        documents = index_documents(session=session, postmortems=list(session.exec(select(Postmortem))))
    assert kb.index.rebuild(iter(documents), procs=2) == len(DOCS)
    after = {q: search(kb, q, with_counts=True).as_dict() for q in before}
    assert after == before
