"""The transactional outbox: broker messages that must not be lost (alerts, cancels).

``enqueue`` adds the message in the caller's transaction, so it exists exactly when the change it
announces was committed. Every server's gateway runtime relays: it *claims* unpublished rows
with one ``UPDATE ... RETURNING`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two servers
never claim the same row), publishes them to the broker in id order and gives a row back
(``published_at`` cleared) if the broker refused it. A commit in a process with a running
gateway wakes its relay at once; otherwise (the scheduler, a CLI) the relays' one-second poll
finds the row. A crash between publish and commit of the claim can publish a row twice:
devices keep what they accepted by (alert, revision), so a repeat plays nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, select, update
from sqlmodel import Session, col

from broadcast.dispatch.models import OutboxMessage

_WAKE = "dispatch_outbox_wake"
CLAIM_BATCH = 100


def enqueue(
    session: Session, message: dict[str, Any], *, wake: Callable[[], None] | None = None
) -> OutboxMessage:
    """Add ``message`` to the outbox in this transaction; ``wake`` (if any) runs after the commit."""
    row = OutboxMessage(message=message)
    session.add(row)
    session.flush()
    if wake is not None:
        session.info[_WAKE] = wake
        if not event.contains(session, "after_commit", _after_commit):
            event.listen(session, "after_commit", _after_commit)
    return row


def _after_commit(session: Session) -> None:
    wake = session.info.pop(_WAKE, None)
    if wake is not None:
        wake()


def claim(session: Session, *, now: datetime, limit: int = CLAIM_BATCH) -> list[tuple[int, dict[str, Any]]]:
    """Mark up to ``limit`` unpublished rows as published by us; their (id, message), oldest first.

    A plain read first: the relay polls every second, and an idle poll must not take SQLite's
    write lock (or a PostgreSQL row lock) for nothing.
    """
    pending = select(col(OutboxMessage.id)).where(col(OutboxMessage.published_at).is_(None))
    if session.execute(pending.limit(1)).first() is None:
        return []
    pending = pending.order_by(col(OutboxMessage.id)).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pending = pending.with_for_update(skip_locked=True)
    statement = (
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(pending.scalar_subquery()))
        .values(published_at=now)
        .returning(col(OutboxMessage.id), col(OutboxMessage.message))
    )
    rows = session.execute(statement).all()
    return sorted((int(row[0]), dict(row[1])) for row in rows)


def release(session: Session, ids: Sequence[int]) -> None:
    """Give claimed rows back (the broker refused them): the next relay pass retries them."""
    if ids:
        session.execute(
            update(OutboxMessage).where(col(OutboxMessage.id).in_(list(ids))).values(published_at=None)
        )


def purge_published(session: Session, *, before: datetime) -> int:
    """Delete rows published before ``before``; how many."""
    result = session.execute(
        delete(OutboxMessage).where(
            col(OutboxMessage.published_at).is_not(None), col(OutboxMessage.published_at) < before
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
