"""Edit and delete stored postmortems; the database changes first, the index after its commit."""

from __future__ import annotations

import logging

from sqlmodel import delete as sql_delete

from kb.context import KnowledgeBase
from kb.ingest import tagger_input
from kb.models import Postmortem, PostmortemLabel, PostmortemService
from kb.parse import parse_bytes
from kb.records import store_parsed
from kb.reindex import index_postmortems
from kb.sources import FileResult
from kb.storage import get_postmortem

log = logging.getLogger(__name__)


def update_postmortem(kb: KnowledgeBase, *, slug: str, raw: bytes) -> tuple[FileResult, Postmortem]:
    """Replace a postmortem's text with new markdown; its slug and the people's tag decisions stay."""
    with kb.session() as session:
        row = get_postmortem(session=session, slug=slug)
        parsed = parse_bytes(raw, path=f"{slug}.md", max_bytes=kb.config.max_upload_bytes)
        parsed.slug, parsed.source_path = row.slug, row.source_path
        suggestions = kb.tagger.tag(tagger_input(parsed))
        outcome, row, warnings = store_parsed(
            session=session, parsed=parsed, suggestions=suggestions, labels=kb.labels
        )
        session.commit()
    if outcome != "unchanged":
        index_postmortems(kb, [row.id])
    return FileResult(f"{slug}.md", outcome, row.slug, warnings=parsed.warnings + warnings), row


def delete_postmortem(kb: KnowledgeBase, *, slug: str) -> None:
    """Delete a postmortem with its tags and services, then drop it from the index."""
    with kb.session() as session:
        row = get_postmortem(session=session, slug=slug)
        session.exec(sql_delete(PostmortemLabel).where(PostmortemLabel.postmortem_id == row.id))
        session.exec(sql_delete(PostmortemService).where(PostmortemService.postmortem_id == row.id))
        session.delete(row)
        session.commit()
    try:
        kb.index.delete([slug])
    except Exception:  # the row is gone; `kb doctor --fix` removes the stray index document
        log.exception("could not remove %s from the search index", slug)
