"""contacts.purchases: what a contact bought, by SKU and by category

``{"skus": {sku: {name, category, orders, quantity, refunded, first, last}}, "categories":
{…}}``, kept up to date by order events (``smr.services.purchases``) and read by templates as
``contact.products`` and ``contact.categories``. Existing contacts start with none: their
earlier orders are not counted.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("purchases", json, nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("purchases")
