"""customer groups: groups, members and group tags kept in step with WeCom

``groups`` holds each WeCom customer group (客户群) by its chat_id: name, owner, notice, whether
WeCom still has it (``status``), the owner's status groupchat/list reports (``owner_status``),
and the ``member_version`` that lets a member callback be applied without a refetch.
``group_members`` holds the current members (a leaver's row is deleted), a customer linked to
the contact whose ``wecom_userid`` it is; ``group_tags`` holds SMR's own tags on a group.

``periodic_slots`` is a tiny generic table for periodic jobs that must fire once per slot
across several workers (the daily group sync): whoever inserts ``(name, slot_at)`` runs it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("notice", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner_status", sa.String(length=16), nullable=False),
        sa.Column("member_version", sa.String(length=64), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_groups")),
    )
    op.create_index("ix_groups_owner_chat_id", "groups", ["owner", "chat_id"], unique=False)
    op.create_table(
        "group_members",
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("userid", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("join_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("join_scene", sa.Integer(), nullable=True),
        sa.Column("invitor", sa.String(length=200), nullable=True),
        sa.Column("group_nickname", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["groups.chat_id"], name=op.f("fk_group_members_chat_id_groups")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_group_members_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("chat_id", "userid", name=op.f("pk_group_members")),
    )
    op.create_index("ix_group_members_userid", "group_members", ["userid"], unique=False)
    op.create_index(
        op.f("ix_group_members_contact_id"), "group_members", ["contact_id"], unique=False
    )
    op.create_table(
        "group_tags",
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["groups.chat_id"], name=op.f("fk_group_tags_chat_id_groups")
        ),
        sa.PrimaryKeyConstraint("chat_id", "tag", name=op.f("pk_group_tags")),
    )
    op.create_index("ix_group_tags_tag", "group_tags", ["tag"], unique=False)
    op.create_table(
        "periodic_slots",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "slot_at", name=op.f("pk_periodic_slots")),
    )


def downgrade() -> None:
    op.drop_table("periodic_slots")
    op.drop_index("ix_group_tags_tag", table_name="group_tags")
    op.drop_table("group_tags")
    op.drop_index(op.f("ix_group_members_contact_id"), table_name="group_members")
    op.drop_index("ix_group_members_userid", table_name="group_members")
    op.drop_table("group_members")
    op.drop_index("ix_groups_owner_chat_id", table_name="groups")
    op.drop_table("groups")
