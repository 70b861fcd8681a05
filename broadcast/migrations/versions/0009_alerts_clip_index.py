"""alerts: index on clip_id (deleting a clip checks whether any alert plays it)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_alerts_clip_id", "alerts", ["clip_id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_clip_id", table_name="alerts")
