"""Write parsed postmortems into the database: the row, its services and its tags, never undoing people."""

from __future__ import annotations

from sqlmodel import Session, select

from kb.errors import Conflict
from kb.models import Postmortem, PostmortemLabel, PostmortemService, seconds_between, utcnow
from kb.parse import Decision, ParsedPostmortem

FRONT_MATTER_DECIDER = "front matter"


def unknown_label_warnings(human_labels: dict[str, list[str]], labels: dict[str, str]) -> list[str]:
    """Return a warning for each front matter facet or category the taxonomy does not have."""
    return [
        f"front matter {kind_key}: unknown {kind} {label_id!r}; ignored"
        for kind_key, kind in (("facets", "facet"), ("categories", "category"))
        for label_id in human_labels.get(kind_key, [])
        if labels.get(label_id) != kind
    ]


def merge_tags(
    *, session: Session, postmortem: Postmortem, human_labels: dict[str, list[str]], suggestions: list,
    labels: dict[str, str], decisions: list[Decision] = (),
) -> list[str]:
    """Write the machine's suggestions and the file's human labels without undoing human decisions.

    decisions (from a backup) say who decided what and when; other front matter labels count as
    confirmed by the file.
    """
    existing = {tag.label_id: tag for tag in session.exec(
        select(PostmortemLabel).where(PostmortemLabel.postmortem_id == postmortem.id)
    )}
    now = utcnow()
    for decision in file_decisions(human_labels, decisions, labels, now):
        tag = existing.get(decision.label)
        if tag is None:
            tag = PostmortemLabel(postmortem_id=postmortem.id, label_id=decision.label)
            existing[decision.label] = tag
        elif tag.source == "human":
            continue  # a person already decided; the file does not overrule them
        tag.source, tag.status = "human", decision.status
        tag.decided_by, tag.decided_at = decision.by or FRONT_MATTER_DECIDER, decision.at or now
        session.add(tag)
    suggested = {suggestion.label: suggestion for suggestion in suggestions}
    for label_id, tag in existing.items():
        if tag.source == "auto" and label_id not in suggested:
            session.delete(tag)
    for label_id, suggestion in suggested.items():
        tag = existing.get(label_id)
        if tag is None:
            tag = PostmortemLabel(
                postmortem_id=postmortem.id, label_id=label_id, source="auto", status="suggested"
            )
        # Score and evidence are the machine's opinion and may change; source and status may not.
        tag.score, tag.evidence, tag.method = suggestion.score, suggestion.evidence, suggestion.method
        tag.cues = suggestion.cues
        session.add(tag)
    return tag_warnings(human_labels, decisions, labels)


def file_decisions(human_labels: dict[str, list[str]], decisions: list[Decision], labels: dict[str, str],
                   now) -> list[Decision]:
    """Return the decisions a file brings: its backup's, then its front matter labels as confirmed."""
    decided = {d.label: d for d in decisions if d.label in labels}
    from_file = [Decision(label_id, "confirmed", FRONT_MATTER_DECIDER, now)
                 for kind_key, kind in (("facets", "facet"), ("categories", "category"))
                 for label_id in human_labels.get(kind_key, [])
                 if labels.get(label_id) == kind and label_id not in decided]
    return [*decided.values(), *from_file]


def tag_warnings(human_labels: dict[str, list[str]], decisions: list[Decision], labels: dict[str, str]) -> list[str]:
    unknown = [f"front matter decisions: unknown label {d.label!r}; ignored"
               for d in decisions if d.label not in labels]
    return unknown_label_warnings(human_labels, labels) + unknown


def new_tag_rows(*, postmortem_id: int, parsed: ParsedPostmortem, suggestions: list, labels: dict[str, str]
                 ) -> list[dict]:
    """Return the tag rows of a new postmortem, as merge_tags would write them, for one bulk INSERT."""
    now = utcnow()
    rows = {decision.label: {
        "postmortem_id": postmortem_id, "label_id": decision.label, "source": "human", "status": decision.status,
        "decided_by": decision.by or FRONT_MATTER_DECIDER, "decided_at": decision.at or now,
        "score": 0.0, "evidence": [], "method": "", "cues": [],
    } for decision in file_decisions(parsed.human_labels, parsed.decisions, labels, now)}
    for suggestion in suggestions:
        row = rows.setdefault(suggestion.label, {
            "postmortem_id": postmortem_id, "label_id": suggestion.label, "source": "auto", "status": "suggested",
            "decided_by": "", "decided_at": None})
        row.update(score=suggestion.score, evidence=suggestion.evidence, method=suggestion.method,
                   cues=suggestion.cues)
    return list(rows.values())


def set_services(*, session: Session, postmortem: Postmortem) -> None:
    """Make the service rows of a postmortem match its services list."""
    wanted = service_names(postmortem)
    existing = {row.service: row for row in session.exec(
        select(PostmortemService).where(PostmortemService.postmortem_id == postmortem.id)
    )}
    for service, row in existing.items():
        if service not in wanted:
            session.delete(row)
    for service in wanted - set(existing):
        session.add(PostmortemService(postmortem_id=postmortem.id, service=service))


def service_names(postmortem: Postmortem) -> set[str]:
    return {service.strip()[:200] for service in postmortem.services if service.strip()}


def find_existing(*, session: Session, parsed: ParsedPostmortem,
                  rows: dict[str, Postmortem] | None = None) -> Postmortem | None:
    """Return the stored postmortem this file updates, raising Conflict if its slug is taken.

    rows, when given, holds the batch's stored postmortems by slug, read beforehand in one query.
    """
    if rows is None:
        row = session.exec(select(Postmortem).where(Postmortem.slug == parsed.slug)).first()
    else:
        row = rows.get(parsed.slug)
    if row is not None and row.source_path != parsed.source_path:
        owner = row.source_path or "a postmortem created in the web UI or API"
        raise Conflict(f"slug {parsed.slug!r} already belongs to {owner}; give this file another name or a 'slug:'")
    return row


def store_parsed(
    *, session: Session, parsed: ParsedPostmortem, suggestions: list, labels: dict[str, str]
) -> tuple[str, Postmortem, list[str]]:
    """Insert or update a parsed postmortem and its tags; the caller commits."""
    row = find_existing(session=session, parsed=parsed)
    if row is not None and row.content_hash == parsed.content_hash:
        return "unchanged", row, []
    outcome = "imported" if row is None else "updated"
    row = fill_row(row, parsed)
    session.add(row)
    session.flush()  # gives a new row its id for the tags
    set_services(session=session, postmortem=row)
    warnings = merge_tags(session=session, postmortem=row, human_labels=parsed.human_labels,
                          decisions=parsed.decisions,
                          suggestions=suggestions, labels=labels)
    return outcome, row, warnings


def fill_row(row: Postmortem | None, parsed: ParsedPostmortem) -> Postmortem:
    """Return row (a new one when None) holding what parsed says, marked for reindexing."""
    row = row or Postmortem(slug=parsed.slug, title=parsed.title)
    row.title, row.summary, row.body = parsed.title, parsed.summary, parsed.body
    row.incident_date, row.severity = parsed.incident_date, parsed.severity
    row.services, row.authors = parsed.services, parsed.authors
    row.sections = parsed.section_texts()
    row.source_path, row.content_hash = parsed.source_path, parsed.content_hash
    row.started_at, row.detected_at, row.resolved_at = parsed.started_at, parsed.detected_at, parsed.resolved_at
    row.detect_seconds = seconds_between(row.started_at, row.detected_at)
    row.resolve_seconds = seconds_between(row.detected_at, row.resolved_at)
    row.updated_at = utcnow()
    row.needs_reindex = True
    return row
