"""The audit log: every state change records who, what, when, and the row before and after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, SQLModel

from broadcast.auth.models import AuditEntry

_SECRET_FIELDS = frozenset({"password_hash", "token_hash"})


@dataclass(frozen=True)
class Actor:
    """Who is acting: a logged-in user, or a named system process (CLI, scheduler)."""

    user_id: int | None
    name: str
    address: str | None = None


SYSTEM = Actor(user_id=None, name="system")
CLI = Actor(user_id=None, name="cli")


def snapshot(row: SQLModel | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return row.model_dump(mode="json", exclude=set(_SECRET_FIELDS))


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        actor_id=actor.user_id,
        actor_name=actor.name,
        address=actor.address,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
    )
    session.add(entry)
    return entry
