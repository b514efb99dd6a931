"""Database engine and the postmortem, label and tag service functions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine, select

from kb.errors import NotFound
from kb.models import Label, Postmortem, PostmortemLabel

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    """Create the engine for a database URL, preparing SQLite for concurrent use."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL cannot corrupt the database; a power cut may lose the last commits, not more.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def sync_labels(*, session: Session, labels: Iterable[tuple[str, str, str]]) -> None:
    """Make the label table hold every (id, kind, description) of the taxonomy."""
    existing = {label.id: label for label in session.exec(select(Label))}
    for label_id, kind, description in labels:
        row = existing.get(label_id)
        if row is None:
            session.add(Label(id=label_id, kind=kind, description=description))
        elif (row.kind, row.description) != (kind, description):
            row.kind, row.description = kind, description
            session.add(row)


def postmortem_batches(session: Session, size: int = 500) -> Iterator[list[Postmortem]]:
    """Yield every postmortem in id order, size rows at a time, so large knowledge bases stream."""
    last_id = 0
    while rows := list(session.exec(
        select(Postmortem).where(Postmortem.id > last_id).order_by(Postmortem.id).limit(size)
    )):
        yield rows
        last_id = rows[-1].id


def get_postmortem(*, session: Session, slug: str) -> Postmortem:
    """Return the postmortem with this slug or raise NotFound."""
    row = session.exec(select(Postmortem).where(Postmortem.slug == slug)).first()
    if row is None:
        raise NotFound(f"no postmortem with slug {slug!r}")
    return row


def list_postmortems(*, session: Session, limit: int = 20, offset: int = 0) -> list[Postmortem]:
    """Return postmortems, newest incident first."""
    query = (
        select(Postmortem)
        .order_by(Postmortem.incident_date.desc().nulls_last(), Postmortem.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(query))


def tags_for(*, session: Session, postmortem_ids: list[int]) -> dict[int, list[tuple[PostmortemLabel, str]]]:
    """Return each postmortem's tags with the label kind, keyed by postmortem id."""
    result: dict[int, list[tuple[PostmortemLabel, str]]] = {pid: [] for pid in postmortem_ids}
    if not postmortem_ids:
        return result
    rows = session.exec(
        select(PostmortemLabel, Label.kind)
        .join(Label, Label.id == PostmortemLabel.label_id)
        .where(PostmortemLabel.postmortem_id.in_(postmortem_ids))
        .order_by(PostmortemLabel.score.desc(), PostmortemLabel.label_id)
    )
    for tag, kind in rows:
        result[tag.postmortem_id].append((tag, kind))
    return result


def tags_by_slug(*, session: Session, slugs: list[str]) -> dict[str, list[tuple[PostmortemLabel, str]]]:
    """Return the tags of the postmortems with these slugs (search hits, say), keyed by slug."""
    rows = session.exec(select(Postmortem.id, Postmortem.slug).where(Postmortem.slug.in_(slugs))) if slugs else []
    ids = {pid: slug for pid, slug in rows}
    return {ids[pid]: tags for pid, tags in tags_for(session=session, postmortem_ids=list(ids)).items()}


def active_labels(tags: list[tuple[PostmortemLabel, str]], kind: str) -> list[str]:
    """Return the ids of tags of this kind that count: suggested or confirmed, not rejected."""
    return sorted(tag.label_id for tag, k in tags if k == kind and tag.status != "rejected")


def active_labels_of(*, session: Session, postmortem_ids: list[int]) -> dict[int, dict[str, list[str]]]:
    """Return each postmortem's active label ids (as active_labels counts them) by kind, in one query of columns.

    For reading many postmortems at once, as a rebuild of the index does: no tag objects are built.
    """
    result: dict[int, dict[str, list[str]]] = {pid: {} for pid in postmortem_ids}
    if not postmortem_ids:
        return result
    rows = session.exec(
        select(PostmortemLabel.postmortem_id, PostmortemLabel.label_id, Label.kind)
        .join(Label, Label.id == PostmortemLabel.label_id)
        .where(PostmortemLabel.postmortem_id.in_(postmortem_ids), PostmortemLabel.status != "rejected")
        .order_by(PostmortemLabel.label_id)
    )
    for pid, label_id, kind in rows:
        result[pid].setdefault(kind, []).append(label_id)
    return result


def label_counts(*, session: Session) -> list[tuple[str, str, int]]:
    """Return (label, kind, number of postmortems) for every label, counting non-rejected tags."""
    query = (
        select(Label.id, Label.kind, func.count(PostmortemLabel.id))
        .join(
            PostmortemLabel,
            (PostmortemLabel.label_id == Label.id) & (PostmortemLabel.status != "rejected"),
            isouter=True,
        )
        .group_by(Label.id, Label.kind)
        .order_by(Label.kind, Label.id)
    )
    return [(label_id, kind, count) for label_id, kind, count in session.exec(query)]


def tag_record(tag: PostmortemLabel, kind: str) -> dict:
    """Return a tag as plain data."""
    return {
        "label": tag.label_id, "kind": kind, "source": tag.source, "status": tag.status,
        "score": round(tag.score, 4), "evidence": list(tag.evidence or []), "method": tag.method,
        "cues": list(tag.cues or []),
        "decided_by": tag.decided_by or None,
        "decided_at": tag.decided_at.isoformat() if tag.decided_at else None,
    }


def postmortem_record(postmortem: Postmortem, tags: list[tuple[PostmortemLabel, str]], *, body: bool = True) -> dict:
    """Return a postmortem and its tags as plain data for the API and exports."""

    def iso(value):
        return value.isoformat() if value else None

    record = {
        "slug": postmortem.slug, "title": postmortem.title, "summary": postmortem.summary,
        "date": iso(postmortem.incident_date), "severity": postmortem.severity,
        "services": postmortem.services, "authors": postmortem.authors,
        "started_at": iso(postmortem.started_at), "detected_at": iso(postmortem.detected_at),
        "resolved_at": iso(postmortem.resolved_at), "source_path": postmortem.source_path,
        "facets": active_labels(tags, "facet"), "categories": active_labels(tags, "category"),
        "tags": [tag_record(tag, kind) for tag, kind in tags],
    }
    if body:
        record["body"] = postmortem.body
    return record
