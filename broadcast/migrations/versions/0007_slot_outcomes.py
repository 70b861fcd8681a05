"""play log: slot outcomes (what became of each planned slot)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_slot_outcomes_starts", ["starts_at"]),
    ("ix_slot_outcomes_village_starts", ["village_id", "starts_at"]),
    ("ix_slot_outcomes_campaign_starts", ["campaign_id", "starts_at"]),
    ("ix_slot_outcomes_endpoint_starts", ["endpoint_id", "starts_at"]),
)


def upgrade() -> None:
    op.create_table(
        "slot_outcomes",
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("ends_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum("played", "partial", "failed", "missed", name="outcome", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("cause", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("offline_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("completed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("checked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["rundown_slots.id"], name=op.f("fk_slot_outcomes_slot_id_rundown_slots"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["endpoints.id"], name=op.f("fk_slot_outcomes_endpoint_id_endpoints"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_slot_outcomes_village_id_villages"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_slot_outcomes_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("slot_id", name=op.f("pk_slot_outcomes")),
    )
    for name, columns in _INDEXES:
        op.create_index(name, "slot_outcomes", columns)


def downgrade() -> None:
    for name, _ in _INDEXES:
        op.drop_index(name, table_name="slot_outcomes")
    op.drop_table("slot_outcomes")
