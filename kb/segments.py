"""Writing a Whoosh segment with postings grouped by term, and its posting blocks filled a block at a time.

Whoosh's writer buffers every posting of a segment as a tuple in one list, sorts the list when the segment
is written, and then hands each posting through five method calls (reading the document's field length
from disk among them) into the block it belongs to. For postmortems of a few hundred words that is half
the time of an index build. Here a writer adds postings in document order into per-term columns, so
only the terms need sorting, and each block of up to 128 postings is filled with a few list operations.

The files written are byte for byte the ones Whoosh writes (`tests/test_segments.py` compares them).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

from whoosh.codec import whoosh3
from whoosh.util.numeric import byte_to_length
from whoosh.writing import PostingPool, SegmentWriter

from kb.postings import tune_whoosh

POSTING_BYTES = 56  # what one buffered posting costs in memory, about: number, weight, value and its slot
Postings = tuple[array, array | list, list]  # document numbers, weights, encoded values


class TermPool(PostingPool):
    """Whoosh's posting pool, holding each term's postings together instead of all of them in one list.

    A term's postings are kept as three columns: document numbers and weights in arrays, encoded values
    in a list (most values are shared objects), about a quarter of the memory of a tuple per posting.
    Past its memory limit the pool spills sorted runs to disk as Whoosh's does; its postings are then
    written Whoosh's way.
    """

    def __init__(self, tempstore, segment, limitmb: int = 128, **kwargs):
        super().__init__(tempstore, segment, limitmb=limitmb, **kwargs)
        self.terms: dict[tuple[str, bytes], Postings] = {}
        self._unordered: set[tuple[str, bytes]] = set()
        self._whole_weights: set[tuple[str, bytes]] = set()
        self._count = 0
        self._most = max(1, self.limit // POSTING_BYTES)

    def add(self, item: tuple) -> None:
        # item = (field name, term bytes, document number, weight, value bytes)
        if item[2] < 0:  # Whoosh's old mark for a spelling word, which its writer skips: nothing to write
            return
        postings = self.terms.get(key := (item[0], item[1]))
        if postings is None:
            self.terms[key] = (array("I", (item[2],)), array("d", (item[3],)), [item[4]])
            if type(item[3]) is int:  # spelling words weigh 1; Whoosh records that int, not 1.0
                self._whole_weights.add(key)
        else:
            docnums = postings[0]
            if item[2] < docnums[-1]:  # only merged segments with deletions add out of order
                self._unordered.add(key)
            docnums.append(item[2])
            postings[1].append(item[3])
            postings[2].append(item[4])
        self._count += 1
        if self._count >= self._most:
            self.save()

    def take(self) -> Iterator[tuple[tuple[str, bytes], Postings]]:
        """Yield each (field name, term) in order with its postings in document order, emptying the pool."""
        terms, unordered, whole = self.terms, self._unordered, self._whole_weights
        self.terms, self._unordered, self._whole_weights, self._count = {}, set(), set(), 0
        self.fieldnames.update(field for field, _ in terms)
        for key in sorted(terms):
            docnums, weights, values = terms[key]
            if key in unordered:
                order = sorted(range(len(docnums)), key=docnums.__getitem__)  # stable
                docnums = array("I", [docnums[i] for i in order])
                weights = array("d", [weights[i] for i in order])
                values = [values[i] for i in order]
            yield key, (docnums, [int(weight) for weight in weights] if key in whole else weights, values)

    def _ungroup(self) -> None:
        self.current.extend((field, text, *posting) for (field, text), postings in self.take()
                            for posting in zip(*postings, strict=True))

    def save(self) -> None:
        self._ungroup()  # Whoosh's own items() saves too, with the grouped postings already in current
        super().save()

    def iter_postings(self) -> Iterator[tuple]:
        self._ungroup()
        return self.items()


class GroupedWriter(SegmentWriter):
    """A SegmentWriter buffering postings in a TermPool and writing them a block at a time."""

    def __init__(self, index, *, limitmb: int = 128, **kwargs):
        tune_whoosh()  # field lengths come from memory (kb.postings), which _field_lengths relies on
        super().__init__(index, limitmb=limitmb, **kwargs)
        self.pool = TermPool(self._tempstorage, self.newsegment, limitmb=limitmb)

    def _flush_segment(self) -> None:
        if self.pool.runs or type(self.fieldwriter) is not whoosh3.W3FieldWriter:
            super()._flush_segment()
            return
        self.perdocwriter.close()
        lengths = self.per_document_reader() if self.codec.length_stats else None
        try:
            _write_terms(self.fieldwriter, self.schema, lengths, self.pool.take(), self.docnum)
        finally:
            if lengths is not None:
                lengths.close()
        self.fieldwriter.close()


def _write_terms(fieldwriter, schema, perdoc, terms, doc_count: int) -> None:
    """Write grouped postings as FieldWriter.add_postings would write them one at a time."""
    field = None
    writer = lengths = None
    for (fieldname, text), postings in terms:
        docnums, weights, values = postings
        if fieldname != field:
            if field is not None:
                fieldwriter.finish_field()
            fieldwriter.start_field(fieldname, schema[fieldname])
            writer, field = fieldwriter._postwriter, fieldname
            lengths = _field_lengths(perdoc, fieldname, doc_count)
        fieldwriter.start_term(text)
        limit = writer._blocklimit
        for start in range(0, len(docnums), limit):
            if start:
                writer._write_block()
            end = start + limit
            _fill_block(writer, docnums[start:end], weights[start:end], values[start:end], lengths)
        fieldwriter.finish_term()
    if field is not None:
        fieldwriter.finish_field()


def _field_lengths(perdoc, fieldname: str, doc_count: int) -> list[int | None]:
    """Return each document's length in a field as the posting writer receives it (None when there is none)."""
    column = perdoc._cached_reader(whoosh3._lenfield(fieldname), whoosh3.LENGTHS_COLUMN) if perdoc else None
    found = [byte_to_length(byte) if byte else None for byte in column] if column is not None else []
    return found + [None] * (doc_count + 1 - len(found))


def _fill_block(writer, docnums: array, weights: array | list, values: list, lengths: list[int | None]) -> None:
    """Put postings into the writer's empty block buffer with the statistics add_posting would keep."""
    writer._ids = docnums
    writer._weights = array("f", weights)
    writer._values = [value for value in values if value]
    top = max(weights)
    writer._maxweight = top if top > 0 else 0
    known = [length for length in map(lengths.__getitem__, docnums) if length]
    writer._minlength = min(known) if known else None
    writer._maxlength = max(known) if known else 0
