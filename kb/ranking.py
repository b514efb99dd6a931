"""Rank a query's matched documents with array arithmetic instead of Whoosh's matchers.

Whoosh scores a query one document at a time: each step moves a tree of matcher objects, asks every
posting list for its weight and field length, and for the any-word group walks the tree again to count the
words matched. On 50,000 postmortems a two-word query that matches most of them spent three quarters of
its time there. Here each term's posting list is read whole, its BM25F score computed for all its documents at
once, and the query tree combined as arrays: the same formulas, in the same order of operations per term,
so a document scores what Whoosh gives it (`tests/test_ranking.py` compares them).

Two differences from Whoosh, both in its coordination bonus (`Or(..., scale=...)`), where Whoosh's answer
depends on how it walked the index rather than on the document:
- Whoosh counts the query's terms per segment, so a word missing from one segment changes the bonus of every
  document in that segment; here a term counts when the index holds it at all.
- While collecting, Whoosh drops posting lists it has run through and recounts the terms, so the last
  documents it meets score differently from the first; here every document is scored against all terms.

Queries with parts other than terms, AND and OR (prefixes, date ranges) are left to Whoosh; kb.search turns
phrases into AND of their words before ranking, having checked the positions already.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy
from whoosh.codec import whoosh3
from whoosh.query import And, Or, Query, Term
from whoosh.scoring import BM25F
from whoosh.searching import Results
from whoosh.util.numeric import byte_to_length

from kb.postings import term_postings

LENGTH_OF_BYTE = numpy.asarray([byte_to_length(b) for b in range(256)], dtype=numpy.float64)


class Unsupported(Exception):
    """The query holds a part this module does not score; Whoosh must."""


@dataclass
class Scored:
    """One query node over every document: its score, how many query terms matched, whether it matched."""

    score: numpy.ndarray  # float64; 0 where not matched
    count: numpy.ndarray  # int64: the terms under this node that the document holds
    matched: numpy.ndarray  # bool
    terms: int  # the terms under this node that the index holds (Whoosh's term matchers)


class Ranker:
    """Score queries over one searcher; remembers each term's postings for the length of one search."""

    def __init__(self, searcher, field_lengths):
        """field_lengths(name) returns a field's length per document (float64), as Whoosh decodes it."""
        self.searcher = searcher
        self.size = searcher.doc_count_all()
        self._field_lengths = field_lengths
        self._postings: dict[tuple[str, bytes], tuple[numpy.ndarray, numpy.ndarray] | None] = {}
        self.blocks: dict = {}  # postings a phrase check of this search has read already (kb.postings)

    def postings(self, fieldname: str, text) -> tuple[numpy.ndarray, numpy.ndarray] | None:
        """Return a term's document numbers and weights, deleted documents left out; None if unreadable."""
        key = (fieldname, text)
        if key not in self._postings:
            self._postings[key] = term_postings(self.searcher, fieldname, text, self.blocks)
        return self._postings[key]

    def term_docs(self, fieldname: str, text: str) -> set[int] | None:
        """Return the documents holding a term as a set, from the same read as its scores; None if unreadable."""
        try:
            found = self.postings(fieldname, self.searcher.schema[fieldname].to_bytes(text))
        except (KeyError, ValueError):
            return None
        return None if found is None else set(found[0].tolist())

    def top(self, query: Query, candidates: set[int], limit: int) -> Results | None:
        """Return Whoosh Results with the `limit` best of candidates, ties to the lower document number.

        None when the searcher's weighting is not plain BM25F or the query has parts this cannot score.
        """
        if type(self.searcher.weighting) is not BM25F or not candidates:
            return None
        try:
            scored = self._score(query)
        except Unsupported:
            return None
        docnums = numpy.fromiter(candidates, dtype=numpy.int64, count=len(candidates))
        scores = scored.score[docnums]
        if limit < len(docnums):
            # Everything scoring at least the limit-th best, ties included, then an exact order of those.
            cut = numpy.partition(scores, len(scores) - limit)[len(scores) - limit]
            keep = scores >= cut
            docnums, scores = docnums[keep], scores[keep]
        order = numpy.lexsort((docnums, -scores))[:limit]
        top_n = list(zip(scores[order].tolist(), docnums[order].tolist(), strict=True))
        results = Results(self.searcher, query, top_n, docset=candidates)
        results._total = len(candidates)
        return results

    def _score(self, node: Query) -> Scored:
        if isinstance(node, Term):
            return self._term(node)
        if type(node) not in (And, Or):
            raise Unsupported(type(node).__name__)
        parts = node.subqueries
        if not parts:
            return self._nothing()
        if len(parts) == 1:  # as Whoosh: a group of one is its member, without the group's boost or bonus
            return self._score(parts[0])
        scored = [self._score(part) for part in parts]
        if isinstance(node, And):
            matched = numpy.logical_and.reduce([s.matched for s in scored])
        else:
            matched = numpy.logical_or.reduce([s.matched for s in scored])
        score = scored[0].score.copy()
        for s in scored[1:]:
            score += s.score
        count = numpy.sum([s.count for s in scored], axis=0)
        if isinstance(node, And):
            score[~matched] = 0.0
            count[~matched] = 0
        if node.boost != 1.0:
            score *= node.boost
        terms = sum(s.terms for s in scored)
        if isinstance(node, Or) and node.scale and terms:
            score = self._coordinated(score, count, matched, terms, node.scale)
        return Scored(score, count, matched, terms)

    @staticmethod
    def _coordinated(score, count, matched, terms: int, scale: float) -> numpy.ndarray:
        # Whoosh's CoordMatcher ("short query ranking"), written as it writes it.
        if terms == scale:
            return numpy.zeros_like(score)
        bonus = (score + ((count - 1) / (terms - scale) ** 2)) * ((terms - 1) / terms)
        return numpy.where(matched, bonus, 0.0)

    def _nothing(self) -> Scored:
        return Scored(numpy.zeros(self.size), numpy.zeros(self.size, dtype=numpy.int64),
                      numpy.zeros(self.size, dtype=bool), 0)

    def _term(self, node: Term) -> Scored:
        searcher, fieldname = self.searcher, node.fieldname
        if fieldname not in searcher.schema:
            return self._nothing()
        field = searcher.schema[fieldname]
        try:
            text = field.to_bytes(node.text)
        except ValueError:
            return self._nothing()
        if (fieldname, text) not in searcher.reader():
            return self._nothing()
        found = self.postings(fieldname, text)
        if found is None:
            raise Unsupported("a posting list stored another way")
        docnums, weights = found
        if field.scorable:
            weighting = searcher.weighting
            b = weighting._field_B.get(fieldname, weighting.B)
            k1 = weighting.K1
            idf = searcher.idf(fieldname, text)
            average = searcher.avg_field_length(fieldname) or 1
            lengths = self._field_lengths(fieldname)[docnums]
            # whoosh.scoring.bm25, term by term in the same order
            values = idf * ((weights * (k1 + 1)) / (weights + k1 * ((1 - b) + b * lengths / average)))
        else:
            values = weights  # Whoosh's WeightScorer: a filter field scores its weight
        if node.boost != 1.0:
            values = values * node.boost
        score = numpy.zeros(self.size)
        score[docnums] = values
        matched = numpy.zeros(self.size, dtype=bool)
        matched[docnums] = True
        return Scored(score, matched.astype(numpy.int64), matched, 1)


def field_lengths(searcher, fieldname: str) -> numpy.ndarray:
    """Return each document's length of a field as Whoosh's scorer sees it (decoded from one byte)."""
    lenfield = whoosh3._lenfield(fieldname)
    parts = []
    for reader, _offset in searcher.reader().leaf_readers():
        size = reader.doc_count_all()
        perdoc = getattr(reader, "_perdoc", None)
        if not isinstance(perdoc, whoosh3.W3PerDocReader):
            raise Unsupported("a segment stored another way")
        column = perdoc._cached_reader(lenfield, whoosh3.LENGTHS_COLUMN)
        codes = numpy.zeros(size, dtype=numpy.uint8)
        if column is not None:
            stored = getattr(column, "bytes", None)  # kb.postings keeps lengths in memory, else Whoosh's reader
            stored = numpy.frombuffer(bytes(stored if stored is not None else column.load()), dtype=numpy.uint8)
            codes[: min(size, len(stored))] = stored[:size]
        lengths = LENGTH_OF_BYTE[codes]
        if column is None:
            lengths[:] = 1.0  # Whoosh's scorer asks with a default of 1 when a segment has no lengths
        parts.append(lengths)
    return numpy.concatenate(parts) if parts else numpy.zeros(0)
