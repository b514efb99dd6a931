"""The Whoosh index: a derived, rebuildable copy of the database made for full-text search."""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

import numpy
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import DATETIME, ID, KEYWORD, NUMERIC, STORED, Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.index import FileIndex, LockError
from whoosh.query import Term

from kb.models import Postmortem
from kb.postings import PostmortemText, tune_whoosh
from kb.segments import GroupedWriter

WRITER_TIMEOUT_S = 60.0  # Whoosh allows one writer: wait this long for the lock before failing.
# Segments as plain files: a compound segment is copied into memory whole every time a searcher opens it.
WRITER_OPTIONS = {"timeout": WRITER_TIMEOUT_S, "compound": False}
# Memory a writer may buffer postings in before spilling them to disk. Spilling pickles every posting and
# merges them back, which halves the speed.
LIMIT_MB = 128
# A rebuild writes segments of at most this many postmortems, each buffered whole in SEGMENT_LIMIT_MB.
SEGMENT_DOCS = 5000
SEGMENT_LIMIT_MB = 256
CREATE_LOCK = "CREATELOCK"  # not named like the "_MAIN_*" files that creating an index deletes
TOC_ATTEMPTS = 20
T = TypeVar("T")
SEVERITY_RANK = {"SEV1": 1, "SEV2": 2, "SEV3": 3, "SEV4": 4}
ROOT_CAUSE_SECTIONS = ("root_cause", "contributing_factors")


def make_schema() -> Schema:
    """Return the index schema; title and root cause weigh more than the rest of the text."""
    text = StemmingAnalyzer()
    return Schema(
        slug=ID(stored=True, unique=True),
        # spelling=True keeps the unstemmed words too, the vocabulary behind "did you mean".
        title=PostmortemText(analyzer=text, stored=True, field_boost=3.0, spelling=True),
        # The summary is shown with each hit; its words are searched in the body, which holds them too.
        summary=STORED(),
        root_cause=PostmortemText(analyzer=text, stored=True, field_boost=2.0, spelling=True),
        body=PostmortemText(analyzer=text, stored=True, spelling=True),
        facet=KEYWORD(commas=True, lowercase=True, stored=True, scorable=False),
        category=KEYWORD(commas=True, lowercase=True, stored=True, scorable=False),
        service=KEYWORD(commas=True, lowercase=True, stored=True, scorable=False),
        severity=KEYWORD(lowercase=True, stored=True, scorable=False),
        sev_rank=NUMERIC(sortable=True),
        date=DATETIME(stored=True, sortable=True),
        # Days since year 1, 0 when undated: sorting newest first puts undated postmortems last.
        day_number=NUMERIC(sortable=True),
    )


# Possessive quantifiers and the lookbehind keep this linear: a line of a million spaces or dashes would
# otherwise make the engine retry each position to the end of the run. The leading lookahead names every
# character a match can start with, so that at a letter (most positions) one test fails instead of five
# alternatives: three times faster, the same matches.
MARKUP_RE = re.compile(
    r"(?=[ \t#*+>|:`_-])"
    r"(?:^[ \t]{0,3}(?:#{1,6}[ \t]+|[-*+][ \t]+\[[ xX]\][ \t]+|[-*+>][ \t]+|\|?[ \t]*+:?-{3}[-|: \t]*+$)"
    r"|[`*]{1,3}|(?<!\w)_{1,2}|_{1,2}(?!\w)|(?<![ \t])[ \t]*+\|[ \t]*+)",
    re.MULTILINE,
)


def plain_text(markdown: str) -> str:
    """Return markdown without its markup (heading marks, bullets, emphasis, table pipes), for snippets."""
    return MARKUP_RE.sub(lambda m: " " if "|" in m.group(0) else "", markdown)


def document_for(postmortem: Postmortem, facets: list[str], categories: list[str]) -> dict:
    """Return the index document of a postmortem and its active labels."""
    sections = postmortem.sections or {}
    root_cause = plain_text("\n\n".join(
        sections[key] for key in ROOT_CAUSE_SECTIONS if sections.get(key)
    ))
    # The body field holds the rest of the text, so that no word is indexed (and scored) twice.
    rest = [text for key, text in sections.items() if key not in ROOT_CAUSE_SECTIONS]
    body = plain_text("\n\n".join(rest)) if root_cause else plain_text(postmortem.body)
    if postmortem.summary and postmortem.summary not in postmortem.body:  # a summary from front matter
        body = plain_text(postmortem.summary) + "\n\n" + body
    doc = {
        "slug": postmortem.slug,
        "title": postmortem.title,
        "summary": postmortem.summary,
        "root_cause": root_cause,
        "body": body,
        "facet": ",".join(facets),
        "category": ",".join(categories),
        "service": ",".join(postmortem.services),
        "severity": postmortem.severity.lower(),
        "sev_rank": SEVERITY_RANK.get(postmortem.severity, 9),
        "day_number": postmortem.incident_date.toordinal() if postmortem.incident_date else 0,
    }
    if postmortem.incident_date:
        day: date = postmortem.incident_date
        doc["date"] = datetime(day.year, day.month, day.day)
    return doc


def bits_of(docnums: Iterable[int]) -> int:
    """Return a set of document numbers as an integer whose bit n is set for document n."""
    numbers = numpy.fromiter(docnums, dtype=numpy.int64)
    if not len(numbers):
        return 0
    flags = numpy.zeros(int(numbers.max()) + 1, dtype=bool)
    flags[numbers] = True
    return int.from_bytes(numpy.packbits(flags, bitorder="little").tobytes(), "little")


def retry_vanished_toc(read: Callable[[], T]) -> T:
    """Call read again while the table of contents it found newest vanishes before it is opened."""
    # A writer deletes the previous table of contents when it commits, possibly between a reader's finding it
    # newest and opening it; Whoosh retries this for its readers, but not when opening an index or its .schema.
    for _ in range(TOC_ATTEMPTS - 1):
        try:
            return read()
        except FileNotFoundError:
            time.sleep(0.01)
    return read()


class SharedFileIndex(FileIndex):
    """A Whoosh index that other processes write to while this one reads."""

    def _read_toc(self):
        return retry_vanished_toc(super()._read_toc)


def _fill(writer, documents: Iterable[dict], write: Callable[..., None]) -> int:
    """Write each document with write(**document); cancel the writer, releasing its lock, if anything fails."""
    count = 0
    try:
        for document in documents:
            write(**document)
            count += 1
    except BaseException:
        writer.cancel()
        raise
    return count


def write_segment(path: str | Path, documents: Iterable[dict] | Callable[[], Iterable[dict]]):
    """Write documents (or what calling documents returns) as a new, unpublished segment of the index at path.

    Any process may do this while another holds the index's lock: the segment only becomes part of the
    index when the lock holder commits a table of contents naming it.
    """
    tune_whoosh()
    storage = FileStorage(str(path))
    writer = GroupedWriter(storage.open_index(indexclass=SharedFileIndex), _lk=False, compound=False,
                           limitmb=SEGMENT_LIMIT_MB)
    # A temporary folder of its own: the one writers share is deleted when the lock holder finishes.
    writer._tempstorage = writer.pool.tempstore = storage.temp_storage(f"{writer.newsegment.segment_id()}.tmp")
    writer.schema = make_schema()
    try:
        for document in documents() if callable(documents) else documents:
            writer.add_document(**document)
        return writer._finalize_segment()
    except BaseException:
        writer._close_segment()
        raise
    finally:
        writer._tempstorage.destroy()


def _batches(documents: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for document in documents:
        batch.append(document)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_in_processes(path: str, parts: Iterable, procs: int) -> list:
    """Write each part as a segment in a pool of processes, handing out only procs parts at a time."""
    # A fresh interpreter rather than a fork: the caller may hold database connections and threads. The
    # processes start while the caller prepares the first part.
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        pending: deque = deque()
        segments = []
        for part in parts:
            if len(pending) >= procs:
                segments.append(pending.popleft().get())
            pending.append(pool.apply_async(write_segment, (path, part)))
        segments += [result.get() for result in pending]
    return segments


class SearchIndex:
    """A Whoosh index in a folder, created on first use, with one searcher that every request shares.

    Opening a searcher costs milliseconds per segment, so the searcher stays open and is only refreshed
    when a writer (in any process) has committed. Searches take turns on it under a lock: Python runs one
    search at a time anyway, and the open files are read with seek-and-read.
    """

    def __init__(self, path: str | Path):
        tune_whoosh()
        self.path = Path(path)
        self._index = None
        self._searcher = None
        self._remembered: dict = {}  # what remember() computed for the current searcher
        self._lock = threading.RLock()
        self._depth = 0
        self._finalizer = None

    @property
    def index(self):
        if self._index is None:
            self.path.mkdir(parents=True, exist_ok=True)
            self._index = retry_vanished_toc(lambda: self._open(FileStorage(str(self.path))))
        return self._index

    @staticmethod
    def _open(storage: FileStorage) -> SharedFileIndex:
        """Open the index, creating it first unless it exists or another process has just created it."""
        if not storage.index_exists():
            # Creating deletes the folder's index files, so processes starting on an empty folder take turns
            # under a lock of their own, and the later ones open what the first made.
            lock = storage.lock(CREATE_LOCK)
            lock.acquire(blocking=True)
            try:
                if not storage.index_exists():
                    storage.create_index(make_schema())
            finally:
                lock.release()
        return storage.open_index(indexclass=SharedFileIndex)

    @contextmanager
    def searcher(self):
        """Lend the shared searcher, refreshed to the newest committed state of the index."""
        with self._lock:
            if self._depth == 0:  # a nested use keeps the state its caller is reading
                self._refresh()
            self._depth += 1
            try:
                yield self._searcher
            finally:
                self._depth -= 1

    def _refresh(self) -> None:
        if self._searcher is not None:
            if retry_vanished_toc(self._searcher.up_to_date):
                return
            self._searcher.close()
        self._searcher = retry_vanished_toc(self.index.searcher)
        self._remembered = {}
        if self._finalizer is not None:
            self._finalizer.detach()
        # Close the files when this object goes away, rather than leave them to the garbage collector.
        self._finalizer = weakref.finalize(self, self._searcher.close)

    def value_bits(self, searcher, field: str, value: str) -> int:
        """Return the documents holding value in field as bits of an integer, remembered until the index changes."""
        return self.remember(("bits", field, value), lambda: bits_of(searcher.docs_for_query(Term(field, value))))

    def remember(self, key, compute: Callable[[], T]) -> T:
        """Return compute()'s answer, remembered under key until the index changes (call within searcher())."""
        if key not in self._remembered:
            self._remembered[key] = compute()
        return self._remembered[key]

    def close(self) -> None:
        """Close the shared searcher."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._searcher, self._finalizer, self._remembered = None, None, {}

    def upsert(self, documents: Iterable[dict]) -> int:
        """Add or replace documents by slug in one commit; return how many were written."""
        writer = self._writer()
        count = _fill(writer, documents, writer.update_document)
        writer.commit()
        return count

    def delete(self, slugs: Iterable[str]) -> None:
        """Remove documents by slug."""
        writer = self.index.writer(**WRITER_OPTIONS)
        for slug in slugs:
            writer.delete_by_term("slug", slug)
        writer.commit()

    def _writer(self) -> GroupedWriter:
        """Return a writer holding the index's lock."""
        return GroupedWriter(self.index, **WRITER_OPTIONS, limitmb=LIMIT_MB)

    def rebuild(self, documents: Iterable[dict], *, procs: int = 1) -> int:
        """Replace the whole index with these documents in one commit; searches see the old index until then.

        The documents are written SEGMENT_DOCS at a time, each batch a segment of its own, in procs
        processes when procs > 1.
        """
        return self.rebuild_parts(_batches(documents, SEGMENT_DOCS), procs=procs)

    def rebuild_parts(self, parts: Iterable[Iterable[dict] | Callable[[], Iterable[dict]]], *,
                      procs: int = 1) -> int:
        """Replace the whole index with one new segment per part, published together in one commit.

        A part is a list of documents, or a function returning them, called where the segment is written:
        with procs > 1, in one of that many processes (it must then be picklable). Parts should hold at
        most SEGMENT_DOCS documents, which a writer buffers without spilling to disk.
        """
        try:
            writer = self._writer()
        except LockError:
            raise
        except Exception:  # an index that cannot be read is started again from nothing
            storage = FileStorage(str(self.path))
            storage.create_index(make_schema())
            self._index = storage.open_index(indexclass=SharedFileIndex)
            writer = self._writer()
        try:
            if procs > 1:
                segments = _write_in_processes(str(self.path), parts, procs)
            else:
                segments = [write_segment(self.path, part) for part in parts]
        except BaseException:
            writer.cancel()
            raise
        # Only the new segments are named, so the current schema can replace the stored one.
        writer.schema = make_schema()
        writer._close_segment()
        writer._commit_toc(segments)
        writer._finish()
        return sum(segment.doc_count() for segment in segments)

    def slugs(self) -> set[str]:
        """Return the slug of every document in the index."""
        with self.searcher() as searcher:
            return {fields["slug"] for fields in searcher.all_stored_fields()}

    def doc_count(self) -> int:
        """Return how many documents the index holds."""
        return self.index.doc_count()
