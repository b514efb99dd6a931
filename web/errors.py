"""Errors as people and scripts want them: error.html for pages, {"error": ...} for the API, never a traceback."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as HTTPNotFound

from kb.errors import Conflict, KBError, NotFound, ParseError


def error_response(code: int, message: str, **details):
    """Answer JSON under /api/ and the error page elsewhere."""
    if request.path.startswith("/api/"):
        return jsonify(error=message, **details), code
    return render_template("error.html", code=code, message=message, default_404=HTTPNotFound.description), code


def register_error_handlers(app: Flask) -> None:
    """Turn domain errors, HTTP errors and anything unexpected into error responses."""

    @app.errorhandler(KBError)
    def domain_error(error: KBError):
        code = 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 400
        details = {}
        if isinstance(error, ParseError):
            details = {"file": error.path, "line": error.line, "reason": error.reason}
        return error_response(code, str(error), **details)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return error_response(error.code, error.description)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unexpected error")
        return error_response(500, "Something went wrong on our side; the server log has the details.")
