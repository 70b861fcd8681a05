"""Message sequence numbers shared by every server process, from the ``counters`` table.

One upsert-and-return statement per call: PostgreSQL holds the counter's row lock and SQLite
its write lock until the caller's transaction ends, so two processes never hand out the same
number and numbers follow commit order on each stream. A rolled-back transaction gives its
numbers back; devices only need them to increase, not to be gapless.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from broadcast.dispatch.models import Counter

PUSH = "push"
RUNDOWN = "rundown"


def reserve(session: Session, stream: str, count: int) -> range:
    """``count`` consecutive new numbers of ``stream`` (created at 0 on first use)."""
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    table = Counter.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(name=stream, value=count)
        .on_conflict_do_update(index_elements=[table.c.name], set_={"value": table.c.value + count})
        .returning(table.c.value)
    )
    last = int(session.execute(statement).scalar_one())
    return range(last - count + 1, last + 1)


def next_seq(session: Session, stream: str) -> int:
    """The next number of ``stream``."""
    return reserve(session, stream, 1)[0]


def stream_for(message_type: str) -> str:
    """Rundowns have their own stream; every push (volume, alerts, ...) shares the other."""
    return RUNDOWN if message_type == RUNDOWN else PUSH
