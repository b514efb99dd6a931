"""Keep the search index in step with the database, which is the truth."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import queue
from collections.abc import Iterable, Iterator
from dataclasses import replace
from functools import partial

from sqlmodel import Session, select, update

from kb.config import Config
from kb.context import KnowledgeBase
from kb.index import SEGMENT_DOCS, document_for
from kb.models import Postmortem
from kb.storage import active_labels_of, make_engine

log = logging.getLogger(__name__)
BATCH = 500
INDEX_CHUNK = 2000  # postmortems written to the search index in one commit during a bulk import
PARALLEL_FROM = 1000  # postmortems from which a rebuild is worth starting processes for
QUEUED_BATCHES = 64  # batches an import may hand the indexing process ahead of it before waiting


def index_documents(*, session, postmortems: list[Postmortem]) -> list[dict]:
    """Return the index documents of these postmortems with their active labels."""
    labels = active_labels_of(session=session, postmortem_ids=[pm.id for pm in postmortems])
    return [
        document_for(pm, labels[pm.id].get("facet", []), labels[pm.id].get("category", []))
        for pm in postmortems
    ]


def documents_of(kb: KnowledgeBase, postmortem_ids: list[int]) -> Iterator[dict]:
    """Yield the index documents of these stored postmortems, read BATCH at a time in id order."""
    with kb.session() as session:
        yield from _read_documents(session, postmortem_ids)


def _read_documents(session: Session, postmortem_ids: list[int]) -> Iterator[dict]:
    for start in range(0, len(postmortem_ids), BATCH):
        batch = postmortem_ids[start : start + BATCH]
        rows = list(session.exec(select(Postmortem).where(Postmortem.id.in_(batch)).order_by(Postmortem.id)))
        yield from index_documents(session=session, postmortems=rows)


def index_postmortems(kb: KnowledgeBase, postmortem_ids: list[int], *,
                      documents: Iterable[dict] | None = None) -> bool:
    """Write these postmortems (or their documents, when given) to the index after their commit.

    On failure they stay marked for reindexing.
    """
    ids = list(postmortem_ids)
    try:
        kb.index.upsert(documents_of(kb, ids) if documents is None else documents)
    except Exception:  # the database commit stands; the marked rows are healed later
        log.exception("indexing failed; %d postmortems stay marked for reindexing", len(ids))
        return False
    with kb.session() as session:
        for start in range(0, len(ids), BATCH):
            session.exec(update(Postmortem).where(Postmortem.id.in_(ids[start : start + BATCH]))
                         .values(needs_reindex=False))
        session.commit()
    return True


def heal_index(kb: KnowledgeBase) -> int:
    """Index every postmortem still marked for reindexing; return how many."""
    with kb.session() as session:
        ids = list(session.exec(select(Postmortem.id).where(Postmortem.needs_reindex == True)))  # noqa: E712
    for start in range(0, len(ids), BATCH):
        index_postmortems(kb, ids[start : start + BATCH])
    return len(ids)


def index_processes() -> int:
    """Return how many processes bulk indexing uses: one per core, at most two (Whoosh gains little beyond)."""
    return max(1, min(2, os.cpu_count() or 1))


def rebuild_index(kb: KnowledgeBase) -> int:
    """Rebuild the whole index from the database; return how many documents it holds.

    The postmortems are split into parts of at most SEGMENT_DOCS, as many for each process; each process
    reads its part's rows itself and writes them as one segment.
    """
    with kb.session() as session:
        ids = list(session.exec(select(Postmortem.id).order_by(Postmortem.id)))
    procs = index_processes() if len(ids) >= PARALLEL_FROM else 1
    rounds = max(1, math.ceil(len(ids) / (procs * SEGMENT_DOCS)))
    size = max(1, math.ceil(len(ids) / (procs * rounds)))
    config = replace(kb.config, extra={})
    parts = [partial(stored_documents, config, ids[start : start + size]) for start in range(0, len(ids), size)]
    count = kb.index.rebuild_parts(parts, procs=procs)
    with kb.session() as session:
        session.exec(update(Postmortem).where(Postmortem.needs_reindex == True).values(needs_reindex=False))  # noqa: E712
        session.commit()
    return count


def stored_documents(config: Config, postmortem_ids: list[int]) -> Iterator[dict]:
    """Yield the index documents of these stored postmortems, in id order, through an engine of its own."""
    engine = make_engine(config.database_url)
    try:
        with Session(engine) as session:
            yield from _read_documents(session, postmortem_ids)
    finally:
        engine.dispose()


class IndexWorker:
    """Write stored postmortems to the index in a process of its own while the caller stores more.

    A bulk import spends most of its time parsing, tagging and storing in one process, and indexing is
    pure Python too: on two cores the two overlap. Indexing is the slower half, so the caller also reads
    each batch's index documents back after their commit and hands them over; the worker only writes them,
    INDEX_CHUNK at a time in one Whoosh writer (Whoosh's own writer processes cost more CPU than they
    save while the caller keeps a core busy). The rows stay marked for reindexing until the worker has
    written them, so whatever it does not finish (it failed, or was stopped) is indexed by `finish` or at
    the next start.
    """

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        # A fresh interpreter rather than a fork: the caller holds database connections and threads.
        context = multiprocessing.get_context("spawn")
        self._jobs = context.Queue(QUEUED_BATCHES)  # a full queue makes the import wait for the worker
        self._process = context.Process(target=_index_worker, args=(replace(kb.config, extra={}), self._jobs),
                                        name="kb-indexer", daemon=True)
        self._process.start()

    def add(self, postmortem_ids: list[int]) -> None:
        """Queue these committed postmortems for indexing; wait while the worker is far behind."""
        if not postmortem_ids:
            return
        job = (postmortem_ids, list(documents_of(self.kb, postmortem_ids)))
        while self._process.is_alive():  # a dead worker's rows stay marked, for finish to index
            try:
                self._jobs.put(job, timeout=1.0)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Index what is queued, wait for the worker, then index here whatever it left marked."""
        if self._process.is_alive():
            self._jobs.put(None)
        self._process.join()
        self._jobs.close()
        if self._process.exitcode:
            log.warning("the indexing process exited with code %s; indexing here", self._process.exitcode)
        heal_index(self.kb)

    def stop(self) -> None:
        """Stop the worker at once; what it has not committed stays marked for the next start."""
        self._jobs.cancel_join_thread()  # ids it will never read must not keep this process from exiting
        self._process.terminate()
        self._process.join()


def _index_worker(config: Config, jobs) -> None:
    from kb.context import open_kb

    kb = open_kb(config)
    ids: list[int] = []
    documents: list[dict] = []
    try:
        while (job := jobs.get()) is not None:
            ids += job[0]
            documents += job[1]
            if len(ids) >= INDEX_CHUNK:
                index_postmortems(kb, ids, documents=documents)
                ids, documents = [], []
        if ids:
            index_postmortems(kb, ids, documents=documents)
    finally:
        kb.index.close()
        kb.engine.dispose()
