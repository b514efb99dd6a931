"""Similar incidents: postmortems that share key terms and tags with this one, and the reason why."""

from __future__ import annotations

from dataclasses import dataclass

from whoosh.query import Or, Term

from kb.context import KnowledgeBase
from kb.errors import NotFound
from kb.search import SearchHit, highlight_with_marks, hit_from, split_labels

KEY_TERMS = 20
TAG_BOOST = 2.0
TEXT = ("root_cause", "body")  # the index holds each word of the text once, in one of these


@dataclass
class SimilarHit:
    hit: SearchHit
    shared_terms: list[str]
    shared_tags: list[str]

    def as_dict(self) -> dict:
        return {**self.hit.as_dict(), "shared_terms": self.shared_terms, "shared_tags": self.shared_tags}


def similar(kb: KnowledgeBase, slug: str, *, limit: int = 5) -> list[SimilarHit]:
    """Return the postmortems most like this one by key terms of its text and its tags, with what they share."""
    with kb.index.searcher() as searcher:
        docnum = searcher.document_number(slug=slug)
        if docnum is None:
            raise NotFound(f"no indexed postmortem with slug {slug!r}")
        fields = searcher.stored_fields(docnum)
        weights: dict[str, float] = {}
        for name in TEXT:
            for term, weight in searcher.key_terms([docnum], name, numterms=KEY_TERMS):
                weights[term] = weights.get(term, 0.0) + weight
        terms = sorted(weights, key=lambda term: -weights[term])[:KEY_TERMS]
        tags = [("facet", label) for label in split_labels(fields.get("facet"))]
        tags += [("category", label) for label in split_labels(fields.get("category"))]
        clauses = [Term(name, term) for term in terms for name in TEXT]
        clauses += [Term(name, label, boost=TAG_BOOST) for name, label in tags]
        if not clauses:
            return []
        results = searcher.search(Or(clauses), limit=limit + 1, terms=True)
        highlight_with_marks(results)
        found = []
        for hit in results:
            if hit.docnum == docnum:
                continue
            matched = hit.matched_terms()
            shared_terms = [term for term in terms if any((name, term.encode()) in matched for name in TEXT)]
            shared_tags = [label for name, label in tags if (name, label.encode()) in matched]
            found.append(SimilarHit(hit_from(hit), shared_terms, shared_tags))
        return found[:limit]
