"""Sign-in for pages (session cookie plus CSRF token) and bearer tokens for the API."""

from __future__ import annotations

import hmac
import secrets
from functools import wraps

from flask import Flask, abort, current_app, g, jsonify, redirect, request, session, url_for

from kb.context import KnowledgeBase
from kb.models import User
from kb.users import user_for_token


def current_kb() -> KnowledgeBase:
    """Return the knowledge base of the running app."""
    return current_app.extensions["kb"]


def current_user() -> User | None:
    """Return the signed-in user of this request, from the session or a bearer token."""
    if "user" not in g:
        g.user = None
        header = request.headers.get("Authorization", "")
        with current_kb().session() as db:
            if header.lower().startswith("bearer "):
                g.user = user_for_token(session=db, token=header[7:].strip())
            elif session.get("user_id"):
                g.user = db.get(User, session["user_id"])
    return g.user


def csrf_token() -> str:
    """Return this session's CSRF token, creating it when missing."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok() -> bool:
    """Return whether the request carries this session's CSRF token in a form field or header."""
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    return bool(session.get("csrf")) and hmac.compare_digest(sent, session["csrf"])


def login_required(view):
    """Send anonymous visitors to the sign-in page; check CSRF on form posts."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            return redirect(url_for("pages.login", next=request.full_path))
        if request.method == "POST" and not csrf_ok():
            abort(400, "The form expired or came from another site. Reload the page and try again.")
        return view(*args, **kwargs)

    return wrapped


def api_write(view):
    """Require a bearer token, or a signed-in session with its CSRF header, for API writes."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        bearer = request.headers.get("Authorization", "").lower().startswith("bearer ")
        if user is None:
            return jsonify(error="authentication required: send 'Authorization: Bearer <token>'"), 401
        if not bearer and not csrf_ok():
            return jsonify(error="missing or wrong X-CSRF-Token header"), 403
        return view(*args, **kwargs)

    return wrapped


def init_app(app: Flask) -> None:
    """Make the user and the CSRF token available to every template."""

    @app.context_processor
    def inject_user():
        return {"current_user": current_user(), "csrf_token": csrf_token}
