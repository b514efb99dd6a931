"""Human decisions on tags: confirm or reject the machine's suggestions, or add a label."""

from __future__ import annotations

from sqlmodel import Session, select

from kb.errors import InvalidQuery
from kb.models import Postmortem, PostmortemLabel, utcnow

DECISIONS = ("confirmed", "rejected")


def decide_tag(
    *, session: Session, postmortem: Postmortem, label_id: str, status: str, decided_by: str, labels: dict[str, str]
) -> PostmortemLabel:
    """Record a person's decision on one label of a postmortem; the caller commits and reindexes."""
    if status not in DECISIONS:
        raise InvalidQuery(f"status must be one of {', '.join(DECISIONS)}, not {status!r}")
    if label_id not in labels:
        raise InvalidQuery(f"unknown label {label_id!r}; see /api/labels")
    tag = session.exec(
        select(PostmortemLabel).where(
            PostmortemLabel.postmortem_id == postmortem.id, PostmortemLabel.label_id == label_id
        )
    ).first()
    if tag is None:
        tag = PostmortemLabel(postmortem_id=postmortem.id, label_id=label_id)
    tag.source, tag.status = "human", status
    tag.decided_by, tag.decided_at = decided_by, utcnow()
    session.add(tag)
    postmortem.needs_reindex = True
    session.add(postmortem)
    return tag
