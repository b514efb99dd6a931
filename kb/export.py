"""Write stored postmortems back out as markdown or JSON lines, with every human tag decision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import yaml
from sqlmodel import Session

from kb.context import KnowledgeBase
from kb.errors import KBError
from kb.models import Postmortem, PostmortemLabel
from kb.parse import parse_text
from kb.sources import JSONL_BACKUP
from kb.storage import postmortem_batches, postmortem_record, tags_for

FORMATS = ("markdown", "jsonl")


def _human(tags: list[tuple[PostmortemLabel, str]]) -> list[tuple[PostmortemLabel, str]]:
    return [pair for pair in sorted(tags, key=lambda pair: pair[0].label_id) if pair[0].source == "human"]


def human_decisions(tags: list[tuple[PostmortemLabel, str]]) -> list[dict]:
    """Return the people's decisions among tags: label, status, who and when."""
    return [
        {"label": tag.label_id, "status": tag.status, "by": tag.decided_by or "",
         "at": tag.decided_at.isoformat() if tag.decided_at else ""}
        for tag, _kind in _human(tags)
    ]


def _front_matter(postmortem: Postmortem) -> dict:
    meta = {"title": postmortem.title}
    if postmortem.incident_date:
        meta["date"] = postmortem.incident_date.isoformat()
    if postmortem.severity:
        meta["severity"] = postmortem.severity
    if postmortem.services:
        meta["services"] = list(postmortem.services)
    if postmortem.authors:
        meta["authors"] = list(postmortem.authors)
    for key, value in (("started", postmortem.started_at), ("detected", postmortem.detected_at),
                       ("resolved", postmortem.resolved_at)):
        if value:
            meta[key] = value.isoformat()
    return meta


def _with_front_matter(meta: dict, body: str) -> str:
    dumped = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100_000)
    return f"---\n{dumped}---\n\n{body.strip()}\n"


def postmortem_markdown(
    postmortem: Postmortem, tags: list[tuple[PostmortemLabel, str]] | None = None
) -> str:
    """Return a stored postmortem as markdown with front matter; with tags, its human decisions too.

    The summary is written only when it differs from the one the text alone would give, so that an
    editor who rewrites the opening paragraph also changes the summary.
    """
    meta = _front_matter(postmortem)
    if tags is not None:
        meta["slug"] = postmortem.slug
        for key, kind in (("facets", "facet"), ("categories", "category")):
            confirmed = [tag.label_id for tag, k in _human(tags) if k == kind and tag.status == "confirmed"]
            if confirmed:
                meta[key] = confirmed
        if decisions := human_decisions(tags):
            meta["decisions"] = decisions
    derived = parse_text(_with_front_matter(meta, postmortem.body)).summary
    if postmortem.summary != derived:
        meta["summary"] = postmortem.summary
    return _with_front_matter(meta, postmortem.body)


def iter_postmortems(session: Session) -> Iterator[tuple[Postmortem, list[tuple[PostmortemLabel, str]]]]:
    """Yield every postmortem with its tags, in id order, a batch at a time."""
    for rows in postmortem_batches(session):
        tags = tags_for(session=session, postmortem_ids=[row.id for row in rows])
        for row in rows:
            yield row, tags[row.id]


def export_all(kb: KnowledgeBase, folder: str | Path, *, format: str) -> int:
    """Write every postmortem to folder (one .md file each, or one postmortems.jsonl); return how many."""
    if format not in FORMATS:
        raise KBError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with kb.session() as session:
        if format == "jsonl":
            with (folder / JSONL_BACKUP).open("w", encoding="utf-8") as out:
                for row, tags in iter_postmortems(session):
                    record = postmortem_record(row, tags)
                    record["decisions"] = human_decisions(tags)
                    record["markdown"] = postmortem_markdown(row, tags)
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    count += 1
        else:
            for row, tags in iter_postmortems(session):
                (folder / f"{row.slug}.md").write_text(postmortem_markdown(row, tags), encoding="utf-8")
                count += 1
    return count
