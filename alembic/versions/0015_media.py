"""media: uploaded WeCom media ids cached by content hash; deliveries carry attachments

A send's pictures, videos and files are uploaded to WeCom (media/upload, upload_attachment,
uploadimg) once per content: ``wecom_media`` keeps what WeCom answered, by corp, SHA-256 of
the content and upload kind, until the media_id expires (3 days; an uploadimg URL is
permanent). ``deliveries.attachments`` holds what a delivery sends beside its text, as
``smr.content.as_json`` writes it (``[]`` for none).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wecom_media",
        sa.Column("corp_id", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("media_id", sa.String(length=256), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("corp_id", "sha256", "kind", name=op.f("pk_wecom_media")),
    )
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(
            sa.Column("attachments", json, nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("attachments")
    op.drop_table("wecom_media")
