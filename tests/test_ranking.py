"""kb.ranking scores documents as Whoosh's matchers do, whatever the segments, and keeps the best in order."""

from __future__ import annotations

import pytest
from whoosh.query import Prefix, Term

from kb.index import SearchIndex
from kb.ranking import Ranker, field_lengths
from kb.search import build_query, matching_docs, ranking_query
from tests.conftest import SEED

PATHS = sorted(SEED.glob("*.md"))[:80]
QUERIES = [
    "feature store",
    "drift",
    "retraining stopped silently",
    "model OR pipeline",
    "drift AND skew",
    '"feature store" owner',
    "canary facet:processes",
    "title:threshold fraud",
    "label leakage NOT drift",
]


def documents() -> list[dict]:
    found = []
    for number, path in enumerate(PATHS):
        text = path.read_text(encoding="utf-8")
        title, _, body = text.partition("\n## ")
        found.append({"slug": path.stem, "title": title, "body": body, "root_cause": body[:500],
                      "facet": "people,processes" if number % 3 else "strategy", "severity": "sev2"})
    return found


def build(folder, batches: int) -> SearchIndex:
    index = SearchIndex(folder)
    docs = documents()
    size = -(-len(docs) // batches)
    for start in range(0, len(docs), size):
        index.upsert(docs[start : start + size])
    return index


def ranker(searcher) -> Ranker:
    return Ranker(searcher, lambda name: field_lengths(searcher, name))


def whoosh_scores(searcher, query) -> dict[int, float]:
    """Each matched document's score from a fresh Whoosh matcher, so no earlier step changes it."""
    scores = {}
    for sub, offset in searcher.leaf_searchers():
        for docnum in sub.docs_for_query(query):
            matcher = query.matcher(sub, sub.context())
            matcher.skip_to(docnum)
            assert matcher.id() == docnum
            scores[docnum + offset] = matcher.score()
    return scores


@pytest.fixture(scope="module")
def one_segment(tmp_path_factory):
    index = build(tmp_path_factory.mktemp("one"), batches=1)
    yield index
    index.close()


@pytest.fixture(scope="module")
def four_segments(tmp_path_factory):
    index = build(tmp_path_factory.mktemp("four"), batches=4)
    yield index
    index.close()


@pytest.mark.parametrize("q", QUERIES)
def test_every_matched_document_scores_what_whoosh_gives_it(one_segment, q):
    with one_segment.searcher() as searcher:
        query = build_query(searcher.schema, q)
        scoring = ranking_query(query)
        expected = whoosh_scores(searcher, scoring)
        assert expected, f"{q!r} matches nothing in the sample, so it tests nothing"
        this = ranker(searcher)
        assert this.top(scoring, matching_docs(searcher, query), 10) is not None  # not left to Whoosh
        scored = this._score(scoring)
        assert set(scored.matched.nonzero()[0].tolist()) == set(expected)
        for docnum, score in expected.items():
            assert scored.score[docnum] == pytest.approx(score, rel=1e-12, abs=1e-12), docnum


@pytest.mark.parametrize("q", QUERIES)
def test_segments_do_not_change_the_ranking(one_segment, four_segments, q):
    def ranked(index):
        with index.searcher() as searcher:
            assert len(searcher.reader().leaf_readers()) == (1 if index is one_segment else 4)
            query = build_query(searcher.schema, q)
            results = ranker(searcher).top(ranking_query(query), matching_docs(searcher, query), 10)
            return [(hit["slug"], round(hit.score, 9)) for hit in results]

    single = ranked(one_segment)
    assert single == ranked(four_segments)
    assert [score for _, score in single] == sorted((score for _, score in single), reverse=True)


def test_the_best_are_kept_in_order_and_ties_go_to_the_earlier_document(one_segment):
    with one_segment.searcher() as searcher:
        this = ranker(searcher)
        # A filter field scores its weight, 1.0 for every holder: all tie.
        everyone = matching_docs(searcher, Term("facet", "strategy"))
        top = this.top(Term("facet", "strategy"), everyone, 3)
        assert [hit.docnum for hit in top] == sorted(everyone)[:3]
        assert len(top) == len(everyone)
        query = build_query(searcher.schema, "model drift")
        matched = matching_docs(searcher, query)
        full = this.top(query, matched, len(matched))
        assert [hit.docnum for hit in this.top(query, matched, 5)] == [hit.docnum for hit in full][:5]
        scores = this._score(query).score
        assert [hit.docnum for hit in full] == sorted(matched, key=lambda d: (-scores[d], d))


def test_deleted_documents_are_never_ranked(tmp_path):
    index = build(tmp_path / "ix", batches=2)
    try:
        gone = [doc["slug"] for doc in documents()[:60:3]]
        index.delete(gone)
        with index.searcher() as searcher:
            query = build_query(searcher.schema, "model")
            matched = matching_docs(searcher, query)
            results = ranker(searcher).top(query, matched, len(matched))
            slugs = {hit["slug"] for hit in results}
            assert slugs and not slugs & set(gone)
            assert set(searcher.docs_for_query(query)) == matched
    finally:
        index.close()


def test_queries_it_cannot_score_are_left_to_whoosh(one_segment):
    with one_segment.searcher() as searcher:
        query = Prefix("body", "retrain")
        assert ranker(searcher).top(query, matching_docs(searcher, query), 10) is None
