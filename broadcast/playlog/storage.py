"""Play log storage: bulk inserts behind an idempotency key table, monthly partitions, retention.

**Idempotency.** ``play_event_keys`` (endpoint, device event id) is claimed first with
``ON CONFLICT DO NOTHING RETURNING``; only the rows whose key was claimed are inserted. Two
retries racing each other serialise on the key's unique index: the second waits for the first to
commit and then claims nothing. The same code runs on both backends.

**Bulk.** The claimed rows go in with ``COPY`` on PostgreSQL (through the session's own
connection, so in the same transaction as the keys) and ``executemany`` on SQLite.

**Partitions (PostgreSQL).** ``play_events`` is ``PARTITION BY RANGE (occurred_at)``, one
partition per UTC month (``play_events_2026_11``) plus ``play_events_default``, so an event of a
month without a partition (a device clock years off, a backlog from long ago) is still stored.
:func:`ensure_partitions` creates the coming months ahead; when the DEFAULT partition already
holds rows of a month being created, they are moved into the new partition first (PostgreSQL
refuses to attach a range the DEFAULT partition has rows for).

**Retention.** The log keeps ``months`` whole UTC months, the current one included:
:func:`drop_expired` drops older partitions whole (no row-by-row delete), deletes the DEFAULT
partition's older rows and the keys of everything dropped. Ingest refuses events older than the
same :func:`retention_start` (code ``too_old``) so a dropped month never fills up again.
On SQLite (single table) the same cut is a ``DELETE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, text
from sqlmodel import Session

TABLE = "play_events"
DEFAULT_PARTITION = "play_events_default"
KEYS = "play_event_keys"
# Months ahead of the current one that always have a partition.
MONTHS_AHEAD = 2
_PARTITION = re.compile(r"^play_events_(\d{4})_(\d{2})$")
# SQLite stores UTCDateTime as this text (what SQLAlchemy's SQLite DateTime writes).
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
# Rows per multi-row key insert on SQLite (999 bound parameters, 3 per row).
_SQLITE_KEYS_CHUNK = 300


class PlayRow(NamedTuple):
    """One play event as stored, in ``COLUMNS`` order (COPY writes it as is)."""

    endpoint_id: int
    event_id: str
    type: str
    slot_id: int | None
    alert_id: int | None
    alert_revision: int | None
    program_sha256: str | None
    position_ms: int | None
    reason: str | None
    village_id: int | None
    campaign_id: int | None
    occurred_at: datetime
    received_at: datetime


COLUMNS = PlayRow._fields
_COLUMN_LIST = ", ".join(COLUMNS)


def month_start(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def retention_start(now: datetime, months: int) -> datetime:
    """The oldest instant the log keeps: the first day of the oldest retained month."""
    return add_months(month_start(now), -(max(months, 1) - 1))


def partition_name(month: datetime) -> str:
    return f"{TABLE}_{month.year:04d}_{month.month:02d}"


def is_partitioned(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


# ---- inserts ----


def claim_keys(session: Session, rows: Sequence[PlayRow]) -> set[tuple[int, str]]:
    """Insert the rows' keys; the (endpoint, event id) pairs that were new."""
    if not rows:
        return set()
    connection = session.connection()
    if is_partitioned(connection):
        statement = text(
            f"INSERT INTO {KEYS} (endpoint_id, event_id, occurred_at) "  # noqa: S608 - constants only
            "SELECT * FROM unnest(CAST(:endpoints AS integer[]), CAST(:ids AS varchar[]), "
            "CAST(:times AS timestamptz[])) "
            "ON CONFLICT DO NOTHING RETURNING endpoint_id, event_id"
        )
        arrays = {
            "endpoints": [r.endpoint_id for r in rows],
            "ids": [r.event_id for r in rows],
            "times": [r.occurred_at for r in rows],
        }
        return {(e, i) for e, i in connection.execute(statement, arrays).all()}
    claimed: set[tuple[int, str]] = set()
    for index in range(0, len(rows), _SQLITE_KEYS_CHUNK):
        chunk = rows[index : index + _SQLITE_KEYS_CHUNK]
        values = ", ".join("(?, ?, ?)" for _ in chunk)
        sql = (
            f"INSERT INTO {KEYS} (endpoint_id, event_id, occurred_at) VALUES {values} "  # noqa: S608 - placeholders only
            "ON CONFLICT DO NOTHING RETURNING endpoint_id, event_id"
        )
        flat = tuple(v for r in chunk for v in (r.endpoint_id, r.event_id, _sqlite_time(r.occurred_at)))
        claimed.update((e, i) for e, i in connection.exec_driver_sql(sql, flat).all())
    return claimed


def copy_rows(session: Session, rows: Iterable[PlayRow]) -> None:
    """Append rows to ``play_events`` without any key check: COPY on PostgreSQL, executemany on SQLite."""
    connection = session.connection()
    if is_partitioned(connection):
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {TABLE} ({_COLUMN_LIST}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" * len(COLUMNS))
    sql = f"INSERT INTO {TABLE} ({_COLUMN_LIST}) VALUES ({placeholders})"  # noqa: S608 - constants only
    encoded = [(*row[:-2], _sqlite_time(row.occurred_at), _sqlite_time(row.received_at)) for row in rows]
    if encoded:
        connection.exec_driver_sql(sql, encoded)


def insert_new(session: Session, rows: Sequence[PlayRow]) -> list[PlayRow]:
    """Store the rows whose (endpoint, event id) was never stored; those rows, in input order.

    A key repeated within ``rows`` counts once (its first row).
    """
    claimed = claim_keys(session, rows)
    new: list[PlayRow] = []
    for row in rows:
        key = (row.endpoint_id, row.event_id)
        if key in claimed:
            claimed.discard(key)
            new.append(row)
    copy_rows(session, new)
    return new


def _sqlite_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime(_SQLITE_TIME)


# ---- partitions and retention ----


@dataclass
class Maintenance:
    """What one run of the play log job did."""

    created: list[str] = field(default_factory=list)
    moved: int = 0
    dropped: list[str] = field(default_factory=list)
    deleted: int = 0
    keys_deleted: int = 0


def partitions(session: Session) -> list[str]:
    """The monthly partitions that exist, oldest first (empty on SQLite)."""
    connection = session.connection()
    if not is_partitioned(connection):
        return []
    names = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:table AS regclass)"
        ),
        {"table": TABLE},
    ).scalars()
    return sorted(name for name in names if _PARTITION.match(name))


def _month_of(name: str) -> datetime:
    found = _PARTITION.match(name)
    if found is None:
        raise ValueError(name)
    return datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)


def create_partition(session: Session, month: datetime, report: Maintenance | None = None) -> bool:
    """Create ``month``'s partition, first moving its rows out of DEFAULT; False if it existed."""
    connection = session.connection()
    name = partition_name(month)
    if not is_partitioned(connection) or name in partitions(session):
        return False
    bounds = {"start": month, "end": add_months(month, 1)}
    # Stops inserts into play_events while rows move; ingest waits a moment, nothing is lost.
    connection.execute(text(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE"))
    connection.execute(text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)"))
    moved = connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "  # noqa: S608 - constants only
            "WHERE occurred_at >= :start AND occurred_at < :end RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    ).rowcount
    start, end = (at.isoformat() for at in (bounds["start"], bounds["end"]))
    connection.execute(
        text(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')")
    )
    if report is not None:
        report.created.append(name)
        report.moved += moved or 0
    return True


def ensure_partitions(
    session: Session, *, now: datetime, ahead: int = MONTHS_AHEAD, report: Maintenance | None = None
) -> Maintenance:
    """Partitions for the current month and ``ahead`` more (PostgreSQL; nothing to do on SQLite)."""
    report = report or Maintenance()
    current = month_start(now)
    for offset in range(ahead + 1):
        create_partition(session, add_months(current, offset), report)
    return report


def drop_expired(
    session: Session, *, now: datetime, months: int, report: Maintenance | None = None
) -> Maintenance:
    """Drop what is older than the retention period: whole partitions, DEFAULT rows, their keys."""
    report = report or Maintenance()
    connection = session.connection()
    cut = {"cut": retention_start(now, months)}
    if is_partitioned(connection):
        for name in partitions(session):
            if add_months(_month_of(name), 1) <= cut["cut"]:
                connection.execute(text(f"DROP TABLE {name}"))
                report.dropped.append(name)
        source = DEFAULT_PARTITION
    else:
        source = TABLE
    older = text(f"DELETE FROM {source} WHERE occurred_at < :cut")  # noqa: S608 - constants only
    deleted = connection.execute(older, _bind(connection, cut))
    report.deleted += deleted.rowcount or 0
    keys = connection.execute(
        text(f"DELETE FROM {KEYS} WHERE occurred_at < :cut"),  # noqa: S608 - constants only
        _bind(connection, cut),
    )
    report.keys_deleted += keys.rowcount or 0
    return report


def maintain(session: Session, *, now: datetime, months: int) -> Maintenance:
    """The scheduler's play log job: partitions ahead, retention behind."""
    report = ensure_partitions(session, now=now)
    return drop_expired(session, now=now, months=months, report=report)


def _bind(connection: Connection, params: dict[str, datetime]) -> dict[str, Any]:
    if is_partitioned(connection):
        return dict(params)
    return {key: _sqlite_time(value) for key, value in params.items()}
