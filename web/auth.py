"""Sign-in for pages (session cookie plus CSRF token), bearer tokens for the API, and closed reading."""

from __future__ import annotations

import hmac
import secrets
from functools import wraps

from flask import Flask, abort, current_app, g, jsonify, redirect, request, session, url_for

from kb.context import KnowledgeBase
from kb.models import User
from kb.users import authenticate, check_password, user_for_token
from web.security import FailureThrottle

API_TOKEN_USER = "api-token"
MAX_FAILURES, FAILURE_WINDOW_S = 5, 15 * 60
# Reachable without signing in even when KB_PUBLIC_READ is false.
OPEN_ENDPOINTS = {"pages.login", "static"}


def current_kb() -> KnowledgeBase:
    """Return the knowledge base of the running app."""
    return current_app.extensions["kb"]


def throttle() -> FailureThrottle:
    """Return the app's record of failed sign-ins and tokens."""
    return current_app.extensions["auth_throttle"]


def client_key() -> str:
    return f"ip:{request.remote_addr or '?'}"


def _user_for_bearer(token: str) -> User | None:
    config = current_kb().config
    if config.api_token and hmac.compare_digest(token.encode(), config.api_token.encode()):
        return User(name=API_TOKEN_USER, password_hash="")
    with current_kb().session() as db:
        return user_for_token(session=db, token=token)


def current_user() -> User | None:
    """Return the signed-in user of this request, from a bearer token or the session."""
    if "user" not in g:
        g.user = None
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            g.throttled = bool(throttle().retry_after(client_key()))
            if not g.throttled:
                g.user = _user_for_bearer(header[7:].strip())
                if g.user is None:
                    throttle().fail(client_key())
        elif session.get("admin") and current_kb().config.admin_password_hash:
            g.user = User(name=current_kb().config.admin_user, password_hash="")
        elif session.get("user_id"):
            with current_kb().session() as db:
                g.user = db.get(User, session["user_id"])
    return g.user


def sign_in(name: str, password: str) -> tuple[bool, int]:
    """Check a name and password and start a session; return (signed in, seconds to wait when throttled)."""
    # Keyed on address and name: a typing colleague behind the same address does not lock others out.
    key = f"{client_key()} user:{name.strip().lower()}"
    wait = throttle().retry_after(key)
    if wait:
        return False, wait
    config = current_kb().config
    if config.admin_password_hash and name.strip() == config.admin_user:
        ok, user_id = check_password(password, config.admin_password_hash), None
    else:
        with current_kb().session() as db:
            user = authenticate(session=db, name=name, password=password)
        ok, user_id = user is not None, user.id if user else None
    if not ok:
        throttle().fail(key)
        return False, 0
    throttle().forget(key)
    session.clear()
    if user_id is None:
        session["admin"] = True
    else:
        session["user_id"] = user_id
    return True, 0


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
            return unauthorised_api()
        if not bearer and not csrf_ok():
            return jsonify(error="missing or wrong X-CSRF-Token header"), 403
        return view(*args, **kwargs)

    return wrapped


def unauthorised_api():
    if g.get("throttled"):
        wait = throttle().retry_after(client_key())
        return jsonify(error=f"too many wrong tokens; try again in {wait} s"), 429, {"Retry-After": str(wait)}
    return jsonify(error="authentication required: send 'Authorization: Bearer <token>'"), 401


def init_app(app: Flask) -> None:
    """Close reading when KB_PUBLIC_READ is false, and give templates the user and the CSRF token."""
    app.extensions["auth_throttle"] = FailureThrottle(MAX_FAILURES, FAILURE_WINDOW_S)

    @app.before_request
    def require_reader():
        if current_kb().config.public_read or request.endpoint in OPEN_ENDPOINTS or current_user() is not None:
            return None
        if request.path.startswith("/api/"):
            return unauthorised_api()
        return redirect(url_for("pages.login", next=request.full_path))

    @app.context_processor
    def inject_user():
        return {"current_user": current_user(), "csrf_token": csrf_token}
