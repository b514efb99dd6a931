"""Keep the search index in step with the database, which is the truth."""

from __future__ import annotations

import logging
import os

from sqlmodel import select, update

from kb.context import KnowledgeBase
from kb.index import document_for
from kb.models import Postmortem
from kb.storage import active_labels, postmortem_batches, tags_for

log = logging.getLogger(__name__)
BATCH = 500


def index_documents(*, session, postmortems: list[Postmortem]) -> list[dict]:
    """Return the index documents of these postmortems with their active labels."""
    tags = tags_for(session=session, postmortem_ids=[pm.id for pm in postmortems])
    return [
        document_for(pm, active_labels(tags[pm.id], "facet"), active_labels(tags[pm.id], "category"))
        for pm in postmortems
    ]


def index_postmortems(kb: KnowledgeBase, postmortem_ids: list[int], *, procs: int = 1) -> bool:
    """Write these postmortems to the index after their commit; on failure leave them marked."""
    ids = list(postmortem_ids)

    def documents():
        with kb.session() as session:
            for start in range(0, len(ids), BATCH):
                rows = list(session.exec(select(Postmortem).where(Postmortem.id.in_(ids[start : start + BATCH]))))
                yield from index_documents(session=session, postmortems=rows)

    try:
        kb.index.upsert(documents(), procs=procs)
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
    """Rebuild the whole index from the database; return how many documents it holds."""

    def generate():
        with kb.session() as session:
            for rows in postmortem_batches(session, BATCH):
                yield from index_documents(session=session, postmortems=rows)

    count = kb.index.rebuild(generate(), procs=index_processes())
    with kb.session() as session:
        session.exec(update(Postmortem).where(Postmortem.needs_reindex == True).values(needs_reindex=False))  # noqa: E712
        session.commit()
    return count
