"""Asking for the rundowns to be re-materialized after a change (campaign, playlist, target, endpoint).

**Durable marker.** :func:`request_refresh` writes one well-known row in the ``leases`` table
(``name = "rundowns.refresh"``; ``holder`` = the latest reason, ``expires_at`` = when the first
still-pending request was made: "dirty since"). It is part of the caller's transaction, so a
change that rolls back asks for nothing, and a change that commits is never lost, whichever
process runs the scheduler. The scheduler's frequent job :func:`take_refresh`\\ s the marker
(an atomic DELETE, committed before materializing): a request committed before the DELETE is
visible to the materialization that follows; one committed after it leaves a new marker for
the next run. A materialization that fails puts the marker back.

**Materialized through.** A second row (``name = "rundowns.materialized"``) records the last
materialization: ``holder`` = when it ran, ``expires_at`` = the end of the window it stored. The
"why" view reads it to tell a stored day from a forecast.

**In-process wakeup.** When the scheduler runs inside the same process (the embedded demo), it
registers a callback with :func:`add_wakeup`; the callback is invoked after the requesting
session *commits*, so the scheduler never wakes before the change is visible. A separate
``broadcast scheduler`` process sees the marker on its next poll (every minute).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from broadcast.clock import utc_now
from broadcast.scheduling.models import Lease

log = logging.getLogger(__name__)

REFRESH_MARKER = "rundowns.refresh"
MATERIALIZED_MARKER = "rundowns.materialized"
_SESSION_FLAG = "broadcast.rundowns_refresh"
_LISTENING = "broadcast.rundowns_refresh_listening"
_REASON_MAX = 128

_wakeups: list[Callable[[], None]] = []
_wakeups_lock = threading.Lock()


def request_refresh(session: Session, *, reason: str, now: datetime | None = None, wake: bool = True) -> None:
    """Ask for the rundowns to be re-materialized soon; durable with the caller's transaction.

    ``wake=False`` only records the request (the scheduler uses it to retry a failed run on its
    next poll instead of at once).
    """
    _upsert(session, REFRESH_MARKER, holder=reason[:_REASON_MAX], at=now or utc_now(), keep_time=True)
    if wake:
        session.info[_SESSION_FLAG] = True
        _notify_after_commit(session)


def mark_materialized(session: Session, *, at: datetime, through: datetime) -> None:
    """Record the last materialization: when it ran and the end of the window it stored."""
    _upsert(session, MATERIALIZED_MARKER, holder=at.isoformat(), at=through, keep_time=False)


def materialized_through(session: Session) -> datetime | None:
    """The end of the last materialized window (rows before it are stored), None before the first run."""
    marker = session.get(Lease, MATERIALIZED_MARKER, populate_existing=True)
    return None if marker is None else marker.expires_at


def _upsert(session: Session, name: str, *, holder: str, at: datetime, keep_time: bool) -> None:
    table = Lease.__table__  # type: ignore[attr-defined]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(name=name, holder=holder, expires_at=at)
    changes = {"holder": stmt.excluded.holder}
    if not keep_time:
        changes["expires_at"] = stmt.excluded.expires_at
    session.execute(stmt.on_conflict_do_update(index_elements=[table.c.name], set_=changes))


def pending_refresh(session: Session) -> Lease | None:
    """The pending request (reason in ``holder``, dirty since ``expires_at``), if any."""
    return session.exec(select(Lease).where(Lease.name == REFRESH_MARKER)).first()


def take_refresh(session: Session) -> bool:
    """Consume the pending request atomically; True if there was one. The caller commits."""
    result = session.execute(delete(Lease).where(Lease.name == REFRESH_MARKER))  # type: ignore[arg-type]
    return bool(getattr(result, "rowcount", 0))


def add_wakeup(callback: Callable[[], None]) -> None:
    """Call ``callback`` (from the committing thread; it must be quick) after each requesting commit."""
    with _wakeups_lock:
        _wakeups.append(callback)


def remove_wakeup(callback: Callable[[], None]) -> None:
    with _wakeups_lock:
        if callback in _wakeups:
            _wakeups.remove(callback)


def _notify_after_commit(session: Session) -> None:
    if session.info.get(_LISTENING):
        return
    session.info[_LISTENING] = True
    event.listen(session, "after_commit", _committed)
    event.listen(session, "after_rollback", _rolled_back)


def _committed(session: OrmSession) -> None:
    if not session.info.pop(_SESSION_FLAG, False):
        return
    with _wakeups_lock:
        callbacks = list(_wakeups)
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("rundown refresh wakeup failed")


def _rolled_back(session: OrmSession) -> None:
    session.info.pop(_SESSION_FLAG, None)
