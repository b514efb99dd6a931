"""SQLModel tables: postmortems, taxonomy labels, the tags that link them, and users."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


# Default factories written in Python: for a builtin such as `list`, pydantic parses the text signature on
# every row it builds, which cost about 0.4 ms per row in bulk imports.
def empty_list() -> list:
    return []


def empty_dict() -> dict:
    return {}


def seconds_between(start: datetime | None, end: datetime | None) -> int | None:
    """Return whole seconds from start to end, or None when either is missing or end comes first."""
    if start is None or end is None or end < start:
        return None
    return int((end - start).total_seconds())


class Postmortem(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=200)
    title: str = Field(sa_column=Column(Text, nullable=False))
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    incident_date: date | None = Field(default=None, index=True)
    severity: str = Field(default="", max_length=8, index=True)
    services: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    authors: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    sections: dict[str, str] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    source_path: str = Field(default="", max_length=1000)
    content_hash: str = Field(default="", max_length=64)
    started_at: datetime | None = None
    detected_at: datetime | None = None
    resolved_at: datetime | None = None
    needs_reindex: bool = Field(default=False, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)
    # Derived from the times above when a postmortem is stored, so trends aggregate plain integers.
    detect_seconds: int | None = None
    resolve_seconds: int | None = None


class PostmortemService(SQLModel, table=True):
    """One service a postmortem names; a table of its own so that trends can GROUP BY service in SQL."""

    postmortem_id: int = Field(foreign_key="postmortem.id", primary_key=True, ondelete="CASCADE")
    service: str = Field(primary_key=True, max_length=200, index=True)


class Label(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16, index=True)
    description: str = ""


class PostmortemLabel(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("postmortem_id", "label_id"),)

    id: int | None = Field(default=None, primary_key=True)
    postmortem_id: int = Field(foreign_key="postmortem.id", index=True, ondelete="CASCADE")
    label_id: str = Field(foreign_key="label.id", index=True, max_length=64)
    source: str = Field(max_length=8)  # "auto" or "human"
    status: str = Field(max_length=12, index=True)  # "suggested", "confirmed" or "rejected"
    score: float = 0.0
    evidence: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    method: str = Field(default="", max_length=32)  # "rules", "model", "rules+model"; empty for people
    cues: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    decided_by: str = Field(default="", max_length=100)
    decided_at: datetime | None = Field(default=None, index=True)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    password_hash: str
    api_token_hash: str = Field(default="", index=True, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
