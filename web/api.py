"""The JSON API: search, postmortems, labels and trends."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from kb.changes import delete_postmortem, update_postmortem
from kb.errors import InvalidQuery
from kb.ingest import import_markdown, preview_markdown
from kb.reindex import index_postmortems
from kb.search import search
from kb.storage import get_postmortem, list_postmortems, postmortem_record, tags_for
from kb.tags import decide_tag
from kb.trends_summary import trends_document
from web.auth import api_write, current_kb, current_user
from web.pages import requested_trends, search_args
from web.render import mark_evidence, render_markdown

bp = Blueprint("api", __name__)


@bp.get("/search")
def api_search():
    return jsonify(search(current_kb(), with_counts=True, **search_args()).as_dict())


@bp.get("/postmortems")
def api_list():
    limit = max(1, min(200, request.args.get("limit", 50, type=int) or 50))
    offset = max(0, request.args.get("offset", 0, type=int) or 0)
    with current_kb().session() as db:
        rows = list_postmortems(session=db, limit=limit, offset=offset)
        tags = tags_for(session=db, postmortem_ids=[pm.id for pm in rows])
        items = [postmortem_record(pm, tags[pm.id], body=False) for pm in rows]
    return jsonify({"limit": limit, "offset": offset, "postmortems": items})


def markdown_from_request() -> tuple[bytes, str]:
    """Return the markdown and file name of a request: JSON {"markdown", "filename"} or a raw body."""
    if request.is_json:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("markdown"), str) \
                or not isinstance(payload.get("filename") or "", str):
            raise InvalidQuery('send JSON {"markdown": "<postmortem text>", "filename": "optional.md"}')
        try:
            return payload["markdown"].encode("utf-8"), payload.get("filename") or ""
        except UnicodeEncodeError:
            raise InvalidQuery('"markdown" holds a lone surrogate (\\ud800-\\udfff), which is not text') from None
    return request.get_data(), request.args.get("filename", "")


def record_with_warnings(row, warnings: list[str]) -> dict:
    with current_kb().session() as db:
        record = postmortem_record(row, tags_for(session=db, postmortem_ids=[row.id])[row.id])
    record["warnings"] = warnings
    return record


@bp.post("/postmortems")
@api_write
def api_create():
    """Create a postmortem from JSON {"markdown": ..., "filename": ...} or a raw markdown body."""
    raw, filename = markdown_from_request()
    result, row = import_markdown(current_kb(), raw, filename=filename)
    return jsonify(record_with_warnings(row, result.warnings)), 201


@bp.post("/preview")
@api_write
def api_preview():
    """Parse and tag markdown without storing it: the new-postmortem page's live preview and suggested tags."""
    raw, _filename = markdown_from_request()
    kb = current_kb()
    parsed, suggestions = preview_markdown(kb, raw)
    evidence = {suggestion.label: suggestion.evidence for suggestion in suggestions}
    return jsonify({
        "title": parsed.title, "slug": parsed.slug,
        "date": parsed.incident_date.isoformat() if parsed.incident_date else None,
        "severity": parsed.severity, "services": parsed.services,
        "html": str(mark_evidence(render_markdown(parsed.body), evidence)),
        "labels": [{"label": label, "kind": kb.labels.get(label, ""), "source": "human"}
                   for key in ("facets", "categories") for label in parsed.human_labels[key]],
        "suggestions": [{"label": s.label, "kind": s.kind, "score": s.score, "evidence": s.evidence,
                         "method": s.method, "source": "auto"} for s in suggestions],
        "warnings": parsed.warnings,
    })


@bp.put("/postmortems/<slug>")
@api_write
def api_update(slug: str):
    """Replace a postmortem's markdown; the slug and the people's tag decisions stay."""
    raw, _filename = markdown_from_request()
    result, row = update_postmortem(current_kb(), slug=slug, raw=raw)
    return jsonify(record_with_warnings(row, result.warnings) | {"outcome": result.outcome})


@bp.delete("/postmortems/<slug>")
@api_write
def api_delete(slug: str):
    delete_postmortem(current_kb(), slug=slug)
    return "", 204


@bp.get("/postmortems/<slug>")
def api_get(slug: str):
    with current_kb().session() as db:
        row = get_postmortem(session=db, slug=slug)
        return jsonify(postmortem_record(row, tags_for(session=db, postmortem_ids=[row.id])[row.id]))


@bp.route("/postmortems/<slug>/tags", methods=["POST", "PATCH"])
@api_write
def api_decide_tags(slug: str):
    """Record decisions: {"label": ..., "status": "confirmed"|"rejected"} or a list of them."""
    payload = request.get_json(silent=True)
    decisions = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(d, dict) and isinstance(d.get("label"), str) for d in decisions):
        return jsonify(error='send JSON {"label": "data-drift", "status": "confirmed"} or a list of them'), 400
    kb = current_kb()
    with kb.session() as db:
        row = get_postmortem(session=db, slug=slug)
        for decision in decisions:
            decide_tag(session=db, postmortem=row, label_id=decision["label"],
                       status=decision.get("status", "confirmed"), decided_by=current_user().name, labels=kb.labels)
        db.commit()
        index_postmortems(kb, [row.id])
        return jsonify(postmortem_record(row, tags_for(session=db, postmortem_ids=[row.id])[row.id], body=False))


@bp.get("/labels")
def api_labels():
    kb = current_kb()
    return jsonify([{"id": label_id, "kind": kind, "description": kb.descriptions[label_id]}
                    for label_id, kind in kb.labels.items()])


@bp.get("/trends")
def api_trends():
    return jsonify(trends_document(requested_trends()))
