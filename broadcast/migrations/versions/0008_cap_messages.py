"""alerts: cap_messages (every imported CAP message, unique by sender and identifier)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 12:00:00

Backfilled from what the import kept before: the ``alert.cap_import`` audit entries (the
upstream header of every Alert, Update and Cancel applied), then every alert with an upstream
sender and identifier that has no entry (sent = the alert's creation). When several alerts share
one message (two officers imported it before the key existed), the first import keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_cap_messages_alert_id", ["alert_id"]),
    ("ix_cap_messages_imported_by", ["imported_by"]),
)
_ALERTS = sa.table(
    "alerts",
    sa.column("id", sa.Integer()),
    sa.column("cap_sender", sa.String()),
    sa.column("cap_identifier", sa.String()),
    sa.column("drill", sa.Boolean()),
    sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime()),
    sa.column("created_by", sa.Integer()),
)
_AUDIT = sa.table(
    "audit_log",
    sa.column("id", sa.Integer()),
    sa.column("at", sqlmodel.sql.sqltypes.UTCDateTime()),
    sa.column("actor_id", sa.Integer()),
    sa.column("action", sa.String()),
    sa.column("entity_type", sa.String()),
    sa.column("entity_id", sa.String()),
    sa.column("after", sa.JSON()),
)
_ACTIONS = {"Alert": "draft", "Update": "update", "Cancel": "cancel"}


def upgrade() -> None:
    table = op.create_table(
        "cap_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("msg_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column(
            "action",
            sa.Enum("draft", "update", "cancel", name="capaction", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("unmatched_codes", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("imported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("imported_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_cap_messages_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["imported_by"], ["users.id"], name=op.f("fk_cap_messages_imported_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cap_messages")),
        sa.UniqueConstraint("sender", "identifier", name=op.f("uq_cap_messages_sender_identifier")),
    )
    for name, columns in _INDEXES:
        op.create_index(name, "cap_messages", columns)
    rows = _backfill(op.get_bind())
    if rows:
        op.bulk_insert(table, rows)


def _backfill(bind: sa.Connection) -> list[dict[str, Any]]:
    alerts = {row.id: row for row in bind.execute(sa.select(_ALERTS).order_by(_ALERTS.c.id)).all()}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    entries = (
        sa.select(_AUDIT)
        .where(_AUDIT.c.action == "alert.cap_import", _AUDIT.c.entity_type == "alert")
        .order_by(_AUDIT.c.id)
    )
    for entry in bind.execute(entries).all():
        after = entry.after or {}
        alert = alerts.get(int(entry.entity_id)) if (entry.entity_id or "").isdigit() else None
        if alert is None or not {"sender", "identifier", "sent", "msg_type", "status"} <= after.keys():
            continue
        key = (after["sender"], after["identifier"])
        # An Update whose alerts had all been discarded became a draft of its own.
        own = (alert.cap_sender, alert.cap_identifier) == key
        rows.setdefault(
            key,
            {
                "sender": key[0],
                "identifier": key[1],
                "sent_at": datetime.fromisoformat(after["sent"]),
                "msg_type": after["msg_type"],
                "status": after["status"],
                "action": "draft" if own else _ACTIONS.get(after["msg_type"], "draft"),
                "alert_id": alert.id,
                "unmatched_codes": list(after.get("unmatched_codes") or []),
                "notes": [],
                "imported_at": entry.at,
                "imported_by": entry.actor_id,
            },
        )
    for alert in alerts.values():
        if alert.cap_sender is None or alert.cap_identifier is None:
            continue
        rows.setdefault(
            (alert.cap_sender, alert.cap_identifier),
            {
                "sender": alert.cap_sender,
                "identifier": alert.cap_identifier,
                "sent_at": alert.created_at,
                "msg_type": "Alert",
                "status": "Exercise" if alert.drill else "Actual",
                "action": "draft",
                "alert_id": alert.id,
                "unmatched_codes": [],
                "notes": [],
                "imported_at": alert.created_at,
                "imported_by": alert.created_by,
            },
        )
    return list(rows.values())


def downgrade() -> None:
    for name, _ in _INDEXES:
        op.drop_index(name, table_name="cap_messages")
    op.drop_table("cap_messages")
