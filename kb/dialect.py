"""The few SQL expressions that differ between SQLite and PostgreSQL, kept in one place."""

from __future__ import annotations

from sqlalchemy import Float, cast, func
from sqlalchemy.sql import ColumnElement


def seconds_between(start: ColumnElement, end: ColumnElement, dialect: str) -> ColumnElement:
    """Return the SQL for the number of seconds from start to end."""
    if dialect == "sqlite":
        # julianday() works in fractions of a day; round to whole seconds so 1 h is 3600, not 3599.99.
        return func.round((func.julianday(end) - func.julianday(start)) * 86400.0)
    return cast(func.extract("epoch", end - start), Float)
