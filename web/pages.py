"""HTML pages: home, search, postmortem, trends, new postmortem, sign-in and errors."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, session, url_for
from sqlmodel import func, select

from kb.changes import delete_postmortem, update_postmortem
from kb.errors import KBError, NotFound
from kb.export import postmortem_markdown
from kb.ingest import import_markdown
from kb.models import Postmortem
from kb.reindex import index_postmortems
from kb.search import SORTS, search
from kb.similar import similar
from kb.storage import get_postmortem, label_counts, list_postmortems, tags_by_slug, tags_for
from kb.tags import decide_tag
from kb.trends import DURATION_BUCKETS, PERIODS, compute_trends, period_bounds
from kb.trends_summary import format_hours, label_changes, period_summary, summaries
from web.auth import csrf_ok, current_kb, current_user, login_required, sign_in
from web.render import mark_evidence, render_markdown

bp = Blueprint("pages", __name__)


def search_args() -> dict:
    """Return the search parameters of this request, shared by the page and the API."""
    args = request.args
    return {
        "q": args.get("q", ""), "facets": args.getlist("facet"), "categories": args.getlist("category"),
        "severities": args.getlist("severity"), "services": args.getlist("service"),
        "after": args.get("after") or None, "before": args.get("before") or None,
        "sort": args.get("sort", "relevance"), "page": args.get("page", 1, type=int) or 1,
        "per_page": args.get("per_page", 10, type=int) or 10,
    }


@bp.get("/")
def home():
    kb = current_kb()
    with kb.session() as db:
        latest = list_postmortems(session=db, limit=10)
        tags = tags_for(session=db, postmortem_ids=[pm.id for pm in latest])
        counts = label_counts(session=db)
        total = db.exec(select(func.count(Postmortem.id))).one()
    return render_template("home.html", latest=latest, tags=tags, counts=counts, total=total)


@bp.get("/search")
def search_page():
    kb = current_kb()
    params = search_args()
    error, results = None, None
    try:
        results = search(kb, with_counts=True, **params)
    except KBError as exc:
        error = str(exc)
    status = 400 if error else 200
    with kb.session() as db:
        hit_tags = tags_by_slug(session=db, slugs=[hit.slug for hit in results.hits] if results else [])
    return render_template("search.html", params=params, results=results, error=error, sorts=SORTS,
                           args=request.args, hit_tags=hit_tags), status


EXPORT_LIMIT = 5000
EXPORT_FIELDS = ("slug", "title", "date", "severity", "facets", "categories", "score")


def all_results(kb, params: dict, *, limit: int = EXPORT_LIMIT):
    """Return up to limit hits of the search params describe, every filter honoured, in pages of 100."""
    hits, page = [], 1
    query = {**params, "per_page": 100}
    while len(hits) < limit:
        results = search(kb, **{**query, "page": page})
        hits += results.hits
        if not results.hits or page >= results.pages:
            return results.total, hits[:limit]
        page += 1
    return results.total, hits[:limit]


@bp.get("/search.csv")
def search_csv():
    total, hits = all_results(current_kb(), search_args())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_FIELDS)
    for hit in hits:
        row = hit.as_dict()
        writer.writerow([";".join(row[f]) if isinstance(row[f], list) else row[f] for f in EXPORT_FIELDS])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=postmortem-search.csv",
                             "X-Total-Count": str(total)})


@bp.get("/search.json")
def search_json():
    total, hits = all_results(current_kb(), search_args())
    return jsonify({"total": total, "exported": len(hits), "hits": [hit.as_dict() for hit in hits]})


@bp.get("/search.atom")
def search_feed():
    """An Atom feed of the newest postmortems matching a search, for people who subscribe to it."""
    kb = current_kb()
    params = {**search_args(), "sort": "newest", "page": 1, "per_page": 30}
    results = search(kb, **params)
    with kb.session() as db:
        rows = {pm.slug: pm for pm in db.exec(select(Postmortem).where(
            Postmortem.slug.in_([hit.slug for hit in results.hits])))}
    entries = [(hit, rows[hit.slug]) for hit in results.hits if hit.slug in rows]
    updated = max((pm.updated_at for _, pm in entries), default=None)
    body = render_template("feed.xml", entries=entries, updated=updated, params=params,
                           self_url=request.url, page_url=request.url.replace("/search.atom", "/search", 1))
    return Response(body, mimetype="application/atom+xml")


@bp.get("/postmortems/<slug>")
def postmortem_page(slug: str):
    kb = current_kb()
    try:
        related = similar(kb, slug)
    except NotFound:
        related = []
    with kb.session() as db:
        pm = get_postmortem(session=db, slug=slug)
        tags = tags_for(session=db, postmortem_ids=[pm.id])[pm.id]
        related_tags = tags_by_slug(session=db, slugs=[item.hit.slug for item in related])
    evidence = {tag.label_id: tag.evidence for tag, _kind in tags if tag.status != "rejected"}
    body = mark_evidence(render_markdown(pm.body), evidence)
    tagged = {tag.label_id for tag, _kind in tags}
    untagged = [(label, kind) for label, kind in kb.labels.items() if label not in tagged]
    return render_template("postmortem.html", pm=pm, tags=tags, body=body, related=related,
                           descriptions=kb.descriptions, untagged=untagged, related_tags=related_tags)


@bp.post("/postmortems/<slug>/tags")
@login_required
def decide_tag_page(slug: str):
    kb = current_kb()
    with kb.session() as db:
        row = get_postmortem(session=db, slug=slug)
        try:
            decide_tag(session=db, postmortem=row, label_id=request.form.get("label", ""),
                       status=request.form.get("status", ""), decided_by=current_user().name, labels=kb.labels)
        except KBError as exc:
            flash(f"Not saved: {exc}")
            return redirect(url_for("pages.postmortem_page", slug=slug))
        db.commit()
    index_postmortems(kb, [row.id])
    return redirect(url_for("pages.postmortem_page", slug=slug) + "#why-tagged")


@bp.route("/postmortems/<slug>/edit", methods=["GET", "POST"])
@login_required
def edit_postmortem(slug: str):
    kb, error = current_kb(), None
    if request.method == "POST":
        markdown = request.form.get("markdown", "")
        try:
            result, row = update_postmortem(kb, slug=slug, raw=markdown.encode("utf-8"))
        except NotFound:
            raise
        except KBError as exc:
            error = str(exc)
        else:
            for warning in result.warnings:
                flash(f"Warning: {warning}")
            flash("No changes." if result.outcome == "unchanged" else "Saved your changes.")
            return redirect(url_for("pages.postmortem_page", slug=row.slug))
    else:
        with kb.session() as db:
            markdown = postmortem_markdown(get_postmortem(session=db, slug=slug))
    return render_template("edit.html", slug=slug, markdown=markdown, error=error), 400 if error else 200


@bp.post("/postmortems/<slug>/delete")
@login_required
def delete_postmortem_page(slug: str):
    if request.form.get("confirm") != "yes":
        flash("Not deleted: tick the box to confirm.")
        return redirect(url_for("pages.postmortem_page", slug=slug))
    delete_postmortem(current_kb(), slug=slug)
    flash(f"Deleted postmortem {slug}.")
    return redirect(url_for("pages.home"))


def trends_params() -> dict:
    """Return the trend parameters of this request, shared by the page, the CSV and the API."""
    args = request.args
    return {"period": args.get("period", "quarter"), "confirmed_only": args.get("confirmed") in ("1", "true"),
            "start": args.get("from") or None, "end": args.get("to") or None}


def chart_data(trends) -> dict:
    """Return the figures the charts draw, in the shape static/trends.js reads."""
    return {
        "periods": trends.periods,
        "severity": {level: list(series.values()) for level, series in trends.severity.items()},
        "shares": {kind: {label: [round(trends.share(n, p) * 100, 1) for p, n in series.items()]
                          for label, series in labels.items()} for kind, labels in trends.labels.items()},
        "detect": [trends.period_durations["detect"][p].median_hours if p in trends.period_durations["detect"]
                   else None for p in trends.periods],
    }


@bp.get("/trends")
def trends_page():
    kb = current_kb()
    error, params = None, trends_params()
    with kb.session() as db:
        try:
            trends = kb.trends_cache.get(session=db, **params)
        except KBError as exc:
            error = str(exc)
            trends = compute_trends(session=db, period="quarter", confirmed_only=params["confirmed_only"])
    first = bounds_of(trends, 0)
    last = bounds_of(trends, -1)
    return render_template(
        "trends.html", trends=trends, periods=PERIODS, descriptions=kb.descriptions, error=error,
        bounds=lambda name: period_bounds(trends.period, name), summaries=summaries(trends),
        changes=label_changes(trends), chart_data=chart_data(trends) if trends.periods else {},
        facets=kb.labels_of_kind("facet"), categories=kb.labels_of_kind("category"),
        heat_peak=max((n for row in trends.cooccurrence.values() for n in row.values()), default=0),
        buckets=[name for name, _ in DURATION_BUCKETS], hours=format_hours,
        range_after=trends.start or first, range_before=trends.end or last,
    ), 400 if error else 200


def bounds_of(trends, index: int) -> str | None:
    """Return the first day of the first period (index 0) or the last day of the last one (index -1)."""
    if not trends.periods:
        return None
    return period_bounds(trends.period, trends.periods[index])[0 if index == 0 else 1]


def requested_trends():
    """Return the (cached) trend figures this request's parameters ask for."""
    kb = current_kb()
    with kb.session() as db:
        return kb.trends_cache.get(session=db, **trends_params())


@bp.get("/trends.csv")
def trends_csv():
    trends = requested_trends()
    out = io.StringIO()
    csv.writer(out).writerows(trends.as_rows())
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=postmortem-trends.csv"})


@bp.get("/trends/report")
def trends_report():
    """A printable page on one period against the one before it, for a review meeting."""
    kb = current_kb()
    params = trends_params()
    name = request.args.get("name", "")
    with kb.session() as db:
        overall = kb.trends_cache.get(session=db, period=params["period"], confirmed_only=params["confirmed_only"])
        if name not in overall.periods:
            abort(404, f"no {params['period']} named {name!r} with postmortems; pick one on the trends page")
        index = overall.periods.index(name)
        start = period_bounds(overall.period, overall.periods[max(0, index - 1)])[0]
        trends = kb.trends_cache.get(session=db, period=overall.period, confirmed_only=params["confirmed_only"],
                                start=start, end=period_bounds(overall.period, name)[1])
    return render_template("report.html", trends=trends, name=name, summary=period_summary(trends, name),
                           changes=label_changes(trends, window=1), hours=format_hours,
                           facets=kb.labels_of_kind("facet"), categories=kb.labels_of_kind("category"),
                           bounds=lambda n: period_bounds(trends.period, n))


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new_postmortem():
    error, markdown = None, ""
    if request.method == "POST":
        upload = request.files.get("file")
        if upload and upload.filename:
            raw, filename = upload.read(), upload.filename
        else:
            markdown = request.form.get("markdown", "")
            raw, filename = markdown.encode("utf-8"), ""
        try:
            result, row = import_markdown(current_kb(), raw, filename=filename)
        except KBError as exc:
            error = str(exc)
        else:
            for warning in result.warnings:
                flash(f"Warning: {warning}")
            flash(f"Imported “{row.title}”.")
            return redirect(url_for("pages.postmortem_page", slug=row.slug))
    return render_template("new.html", error=error, markdown=markdown,
                           today=datetime.now(UTC).date().isoformat()), 400 if error else 200


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if request.method == "POST":
        if not csrf_ok():
            error, status = "The form expired. Please try again.", 400
        else:
            signed_in, wait = sign_in(request.form.get("name", ""), request.form.get("password", ""))
            if signed_in:
                target = request.args.get("next", "")
                # Only follow local paths, so the sign-in page cannot send people elsewhere.
                if not target.startswith("/") or target.startswith("//"):
                    target = url_for("pages.home")
                return redirect(target)
            if wait:
                error, status = f"Too many failed sign-ins. Try again in {wait // 60 + 1} minutes.", 429
            else:
                error, status = "Wrong user name or password.", 401
    return render_template("login.html", error=error), status


@bp.post("/logout")
def logout():
    if csrf_ok():
        session.clear()
    return redirect(url_for("pages.home"))
