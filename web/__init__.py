"""Flask blueprints: HTML pages and the JSON API, thin shells over the kb domain."""

from __future__ import annotations

from flask import Flask

from kb.trends_summary import format_hours


def register(app: Flask) -> None:
    """Register the blueprints, template helpers and error handlers on app."""
    from web import api, auth, errors, pages, security

    security.init_app(app)
    auth.init_app(app)
    app.add_template_filter(lambda seconds: format_hours(seconds / 3600), "duration")
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp, url_prefix="/api")
    errors.register_error_handlers(app)
