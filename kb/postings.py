"""Faster paths through Whoosh, for writing postings and for reading which documents hold them.

Whoosh runs every word through a chain of generators (tokenizer, lower case, stop words, stemmer), at
commit reads each document's field length back from disk once per posting, and compresses every posting
block however small; when searching, it steps through a term's documents one generator call at a time.
These are pure Python costs paid per word or per document; for 400-word postmortems they were most of the
time of an index build and of counting a search's matches. Nothing here changes what the index holds:
`tests/test_postings.py` compares postings, lengths, spelling words and matches with Whoosh's own.
"""

from __future__ import annotations

import re
from array import array
from collections import defaultdict
from collections.abc import Iterator
from itertools import accumulate
from pickle import dumps

import numpy
from whoosh.analysis import CompositeAnalyzer, LowercaseFilter, RegexTokenizer, StemFilter, StopFilter
from whoosh.analysis.tokenizers import default_pattern
from whoosh.codec import whoosh3
from whoosh.fields import TEXT
from whoosh.formats import Positions
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import TermNotFound
from whoosh.system import pack_uint

STEM_CACHE_LIMIT = 200_000  # distinct words remembered per process before the cache starts again
ONE_PLACE_CACHE = 4096  # positions whose encoding as a term's only position is kept
# Whoosh's default word pattern without its capturing group, so that findall returns whole words.
WORDS = re.compile(default_pattern.pattern.replace("(", "(?:"), default_pattern.flags)


def stemming_parts(analyzer) -> tuple | None:
    """Return (pattern, stop words, shortest word, stem function) of a plain stemming analyzer, else None.

    Only the exact chain that `StemmingAnalyzer()` builds qualifies: any other analyzer keeps Whoosh's path.
    """
    if not isinstance(analyzer, CompositeAnalyzer) or len(analyzer.items) != 4:
        return None
    tokenizer, lower, stop, stemmer = analyzer.items
    if not (type(tokenizer) is RegexTokenizer and not tokenizer.gaps and type(lower) is LowercaseFilter
            and type(stop) is StopFilter and stop.renumber and stop.max is None
            and type(stemmer) is StemFilter and not stemmer.ignore):
        return None
    return tokenizer.expression, stop.stops, stop.min, stemmer.stemfn


class _Stems(dict):
    """Stems by word, forgetting everything once it holds STEM_CACHE_LIMIT words."""

    def __init__(self, stem):
        super().__init__()
        self.stem = stem

    def __missing__(self, word: str) -> str:
        if len(self) >= STEM_CACHE_LIMIT:
            self.clear()
        stemmed = self[word] = self.stem(word)
        return stemmed


_stems: dict[object, _Stems] = {}
# The unstemmed words of the text indexed last: Whoosh asks for a field's spelling words right after its
# postings, for the same text, and this saves reading it twice.
_last_words: tuple[str | None, set[str]] = (None, set())
_one_place: dict[int, bytes] = {}


def term_positions(text: str, parts: tuple) -> dict[str, list[int]]:
    """Return each stemmed term of text with its positions, numbered as Whoosh's stop filter renumbers them."""
    pattern, stops, minsize, stem = parts
    stems = _stems.get(stem)
    if stems is None:
        stems = _stems[stem] = _Stems(stem)
    global _last_words
    positions: dict[str, list[int]] = defaultdict(list)
    words = set()
    position = None
    if pattern.pattern == default_pattern.pattern and text.isascii():
        # Whoosh's default word pattern ignores case, and lower case keeps ASCII words as they are.
        tokens = WORDS.findall(text.lower())
    else:
        tokens = [match.group(0).lower() for match in pattern.finditer(text)]
    for index, word in enumerate(tokens):
        if len(word) < minsize or word in stops:
            continue
        # The first kept word keeps its place; the ones after it are numbered on without gaps.
        position = index if position is None else position + 1
        positions[stems[word]].append(position)
        words.add(word)
    _last_words = (text, words)
    return positions


class TermPositions(Positions):
    """Positions postings, computed in one loop when the field's analyzer is a plain stemming analyzer."""

    def word_values(self, value, analyzer, **kwargs):
        parts = stemming_parts(analyzer) if set(kwargs) <= {"mode"} and isinstance(value, str) else None
        if parts is None:
            yield from super().word_values(value, analyzer, **kwargs)
            return
        yield from position_postings(value, parts, self.field_boost)


def position_postings(text: str, parts: tuple, boost: float) -> list[tuple[str, int, float, bytes]]:
    """Return (term, frequency, weight, encoded positions) for each term of text, as Positions encodes them."""
    found = []
    for term, places in term_positions(text, parts).items():
        count = len(places)
        # Positions are stored as gaps from the one before, the first from 0.
        if count == 1 and places[0] < ONE_PLACE_CACHE:  # most terms: a few hundred distinct encodings
            encoded = _one_place.get(places[0])
            if encoded is None:
                encoded = _one_place[places[0]] = pack_uint(1) + dumps(places, 2)
        else:
            gaps = places if count == 1 else [places[0], *map(int.__sub__, places[1:], places)]
            encoded = pack_uint(count) + dumps(gaps, 2)
        found.append((term, count, count * boost, encoded))
    return found


class PostmortemText(TEXT):
    """A TEXT field with faster postings and spelling words written once per writer rather than per document.

    Whoosh adds a field's unstemmed words to its spelling field for every document. A word only has to be
    there once for "did you mean" to find it, and each writer works on a fresh copy of the schema, so the
    words already given are remembered on the field object (and never pickled with the schema).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.format = TermPositions(field_boost=self.format.field_boost)

    def index(self, value, **kwargs):
        # What TEXT.index yields, as a list and without the two generators it passes through.
        parts = stemming_parts(self.analyzer) if not kwargs and isinstance(value, str) else None
        if parts is None:
            return super().index(value, **kwargs)
        return [(term.encode("utf-8"), count, weight, encoded)
                for term, count, weight, encoded in position_postings(value, parts, self.format.field_boost)]

    def spellable_words(self, value):
        seen = self.__dict__.setdefault("_spelled", set())
        parts = stemming_parts(self.analyzer) if isinstance(value, str) else None
        if parts is None:
            words = set(super().spellable_words(value))
        elif _last_words[0] is value:
            words = set(_last_words[1])
        else:
            pattern, stops, minsize, _ = parts
            words = {match.group(0).lower() for match in pattern.finditer(value)}
            words = {word for word in words if len(word) >= minsize and word not in stops}
        words -= seen
        seen.update(words)
        return iter(sorted(words))

    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key != "_spelled"}


class _Lengths:
    """A segment's field lengths, held in memory as one byte per document."""

    __slots__ = ("bytes",)

    def __init__(self, values: array):
        self.bytes = values

    def __getitem__(self, docnum: int) -> int:
        try:
            return self.bytes[docnum]
        except IndexError:  # Whoosh's column reader answers 0 past the end
            return 0

    def __iter__(self):
        return iter(self.bytes)


_whoosh_cached_reader = whoosh3.W3PerDocReader._cached_reader


def _cached_reader(self, fieldname, column):
    # For field lengths, Whoosh's own version checks the file system on every call when a field has none,
    # and its reader seeks and reads a byte from disk for each document; they fit in memory instead.
    # Other columns (stored fields, vectors) keep Whoosh's reader.
    if column is not whoosh3.LENGTHS_COLUMN:
        return _whoosh_cached_reader(self, fieldname, column)
    readers = self._readers
    if fieldname not in readers:
        exists = self._storage.file_exists(whoosh3.W3Codec.column_filename(self._segment, fieldname))
        readers[fieldname] = _Lengths(self.column_reader(fieldname, column).load()) if exists else None
    return readers[fieldname]


SMALL_BLOCK = 8  # postings; a block with fewer is written uncompressed


_whoosh_write_block = whoosh3.W3PostingsWriter._write_block


def _write_block(self, last=False):
    # Most terms occur in a few documents; zlib saves a few bytes on such a block for a call that costs
    # more than the rest of writing it. Each block records whether it is compressed, so readers cope.
    if self._compression and len(self._ids) < SMALL_BLOCK:
        level, self._compression = self._compression, 0
        try:
            return _whoosh_write_block(self, last)
        finally:
            self._compression = level
    return _whoosh_write_block(self, last)


def tune_whoosh() -> None:
    """Make Whoosh load field lengths once per segment, and write tiny posting blocks without zlib."""
    if getattr(whoosh3.W3PerDocReader, "_kb_lengths", False):
        return
    whoosh3.W3PerDocReader._cached_reader = _cached_reader
    whoosh3.W3PostingsWriter._write_block = _write_block
    whoosh3.W3PerDocReader._kb_lengths = True


Blocks = tuple[frozenset[int], Iterator[tuple[list[int], tuple, int]]]  # deleted; (numbers, data, size) per block
Arrays = tuple[numpy.ndarray, numpy.ndarray]  # document numbers within a segment, and weights


def read_blocks(reader, fieldname: str, text) -> Blocks | None:
    """Return a term's deleted documents in one segment and its posting blocks, unpickled one at a time.

    A block is (document numbers, Whoosh's stored tuple of ids, weights and values, number of postings).
    None when its postings are not Whoosh's own block format (a term stored inline, say).
    """
    try:
        matcher = reader.postings(fieldname, text)
    except TermNotFound:
        return frozenset(), iter(())
    excluded: frozenset[int] = frozenset()
    if isinstance(matcher, FilterMatcher) and matcher._exclude:  # the segment's deleted documents
        excluded, matcher = frozenset(matcher._ids), matcher.child
    if type(matcher) is not whoosh3.W3LeafMatcher:
        return None

    def blocks() -> Iterator[tuple[list[int], tuple, int]]:
        while matcher.is_active():
            if matcher._data is None:
                matcher._read_data()
            data = matcher._data
            yield (data[0] if matcher._byteids else list(accumulate(data[0]))), data, matcher._blocklength
            matcher._next_block()

    return excluded, blocks()


def term_docs(searcher, fieldname: str, text: str) -> set[int]:
    """Return the numbers of the documents holding a term, reading its posting blocks whole.

    Whoosh yields a term's documents one generator step at a time and decodes each block's gaps in a
    Python loop; a term in most of 50,000 documents took tens of milliseconds that way.
    """
    found: set[int] = set()
    for reader, offset in searcher.reader().leaf_readers():
        blocks = read_blocks(reader, fieldname, text)
        if blocks is None:  # a kind of posting list this does not know: Whoosh's own way
            ids = list(reader.postings(fieldname, text).all_ids())
        else:
            excluded, stored = blocks
            ids = [number for block, _, _ in stored for number in block]
            if excluded:
                ids = [number for number in ids if number not in excluded]
        found.update(ids if not offset else [number + offset for number in ids])
    return found


def term_postings(searcher, fieldname: str, text, cache: dict | None = None) -> Arrays | None:
    """Return the documents holding a term and its weight in each, as arrays, deleted documents left out.

    The weights are the ones Whoosh's scorers read. None when a posting list is stored in a way this does
    not read. A cache shared with phrase_docs saves reading a segment's postings twice in one search.
    """
    docnums, weights = [], []
    for reader, offset in searcher.reader().leaf_readers():
        key = (id(reader), fieldname, text)
        found = cache.get(key) if cache is not None else None
        if found is None:
            blocks = read_blocks(reader, fieldname, text)
            if blocks is None:
                return None
            found = _arrays(blocks[0], list(blocks[1]))
        docnums.append(found[0] + offset)
        weights.append(found[1])
    if not docnums:
        return numpy.zeros(0, dtype=numpy.int64), numpy.zeros(0)
    return numpy.concatenate(docnums), numpy.concatenate(weights)


def _arrays(excluded: frozenset[int], stored: list[tuple[list[int], tuple, int]]) -> Arrays:
    """Return the document numbers and weights of a segment's posting blocks, deleted documents left out."""
    if not stored:
        return numpy.zeros(0, dtype=numpy.int64), numpy.zeros(0)
    ids = numpy.asarray([number for block, _, _ in stored for number in block], dtype=numpy.int64)
    weights = numpy.concatenate([_block_weights(data[1], size) for _, data, size in stored])
    if excluded:
        keep = ~numpy.isin(ids, numpy.fromiter(excluded, dtype=numpy.int64, count=len(excluded)))
        ids, weights = ids[keep], weights[keep]
    return ids, weights


def _block_weights(stored, count: int) -> numpy.ndarray:
    # As W3LeafMatcher._read_weights: nothing stored means 1.0 each; one number stands for each posting's
    # and Whoosh narrows it to single precision; otherwise one number per posting.
    if stored is None:
        return numpy.ones(count)
    if isinstance(stored, float):
        return numpy.full(count, stored, dtype=numpy.float32).astype(numpy.float64)
    return numpy.asarray(stored, dtype=numpy.float64)


def phrase_docs(searcher, fieldname: str, words: list[str], cache: dict | None = None) -> set[int] | None:
    """Return the documents holding words at consecutive positions in a field; None if this cannot tell.

    The documents holding every word come from whole posting blocks; positions are decoded only for them.
    With a cache, each word's document numbers and weights are kept for term_postings.
    """
    field = searcher.schema[fieldname] if fieldname in searcher.schema else None
    if not words or field is None or not isinstance(field.format, Positions):
        return None
    found: set[int] = set()
    for reader, offset in searcher.reader().leaf_readers():
        postings = []
        for word in words:
            text = field.to_bytes(word)
            blocks = read_blocks(reader, fieldname, text)
            if blocks is None:
                return None
            excluded, stored = blocks[0], list(blocks[1])
            if cache is not None:
                cache.setdefault((id(reader), fieldname, text), _arrays(excluded, stored))
            postings.append(_positions_by_doc(excluded, stored))
        if not postings or not all(postings):
            continue
        candidates = set(min(postings, key=len)).intersection(*postings)
        decode = field.format.decode_positions
        for docnum in candidates:
            starts = set(decode(postings[0][docnum]))
            for shift, values in enumerate(postings[1:], start=1):
                starts.intersection_update(place - shift for place in decode(values[docnum]))
                if not starts:
                    break
            if starts:
                found.add(docnum + offset)
    return found


def _positions_by_doc(excluded: frozenset[int], stored: list[tuple[list[int], tuple, int]]) -> dict[int, bytes]:
    """Return each document's encoded positions of a term, by document number within its segment."""
    values: dict[int, bytes] = {}
    for ids, data, _size in stored:
        values.update(zip(ids, data[2], strict=True))  # positions: one encoded string per posting
    for docnum in excluded:
        values.pop(docnum, None)
    return values
