"""Baseline: postmortems, labels, tags, services and users as first released.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
    )
    op.create_index("ix_label_kind", "label", ["kind"])
    op.create_table(
        "postmortem",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("incident_date", sa.Date()),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("source_path", sa.String(1000), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("detected_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("needs_reindex", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detect_seconds", sa.Integer()),
        sa.Column("resolve_seconds", sa.Integer()),
    )
    op.create_index("ix_postmortem_slug", "postmortem", ["slug"], unique=True)
    for column in ("severity", "needs_reindex", "updated_at", "incident_date"):
        op.create_index(f"ix_postmortem_{column}", "postmortem", [column])
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("api_token_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_user_name", "user", ["name"], unique=True)
    op.create_index("ix_user_api_token_hash", "user", ["api_token_hash"])
    op.create_table(
        "postmortemlabel",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("postmortem_id", sa.Integer(), sa.ForeignKey("postmortem.id", ondelete="CASCADE"), nullable=False),
        sa.Column("label_id", sa.String(64), sa.ForeignKey("label.id"), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("cues", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("postmortem_id", "label_id"),
    )
    for column in ("decided_at", "postmortem_id", "label_id", "status"):
        op.create_index(f"ix_postmortemlabel_{column}", "postmortemlabel", [column])
    op.create_table(
        "postmortemservice",
        sa.Column("postmortem_id", sa.Integer(), sa.ForeignKey("postmortem.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("service", sa.String(200), primary_key=True),
    )
    op.create_index("ix_postmortemservice_service", "postmortemservice", ["service"])


def downgrade() -> None:
    for table in ("postmortemservice", "postmortemlabel", "user", "postmortem", "label"):
        op.drop_table(table)
