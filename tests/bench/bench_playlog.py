"""The play log on PostgreSQL: ingest through the API's path, and one village's month out of a city's quarter.

**Ingest.** ``BENCH_PLAYLOG_EVENTS`` events (default 1,000,000) from 2,000 endpoints of the demo
city, in batches of 500 through :func:`broadcast.dispatch.events.ingest_events` (validation,
slot ownership, key claim, COPY, commit per batch), against a raw ``COPY`` of the same rows into
the same table in the same run. Each event names a real slot of its endpoint (a started and a
completed per slot); only the ingest and the copy are timed, not making the input.

**Query.** ``BENCH_PLAYLOG_DAYS`` days (default 90) of the whole city: 9,305 endpoints x 3 plays a
day x started + completed (about 5 M rows at 90 days), loaded by COPY into the partitioned
table. Slots are left NULL (a quarter of rundowns would be 2.5 M slot rows that the query never
reads); ``campaign_id`` and ``village_id``, which ingest copies from the slot and the endpoint,
are filled. Then one village's 30 days, what the play log API runs: the first page of 100 by
``occurred_at``, the total count, and counts per local day and type; p50 and p95 over 30 runs
(a different village each run), against the same queries on an unpartitioned copy of the table
with the same indexes.
"""

from __future__ import annotations

import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlmodel
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session, col

from broadcast import migrations
from broadcast.db import transaction
from broadcast.demo.city import build_demo_city
from broadcast.dispatch.events import ingest_events
from broadcast.playlog import storage
from broadcast.playlog.storage import PlayRow, add_months, month_start
from broadcast.regions.models import Endpoint
from tests.bench import Row
from tests.bench.bench_targets import PG_ADMIN_URL, _postgres
from tests.dispatch.conftest import make_campaign, make_revision

EVENTS = int(os.environ.get("BENCH_PLAYLOG_EVENTS", "1000000"))
DAYS = int(os.environ.get("BENCH_PLAYLOG_DAYS", "90"))
BATCH = 500
SOURCES = 2000
QUERY_RUNS = 30
PLAYS_A_DAY = ((0, 30), (4, 0), (10, 0))  # UTC hour, minute: 08:30, 12:00 and 18:00 in Shanghai
NOW = datetime.now(UTC)

_PAGE = """
SELECT id, endpoint_id, type, slot_id, campaign_id, occurred_at FROM {table}
WHERE village_id = :village AND occurred_at >= :start AND occurred_at < :end
ORDER BY occurred_at, id LIMIT 100
"""
_TOTAL = """
SELECT count(*) FROM {table} WHERE village_id = :village AND occurred_at >= :start AND occurred_at < :end
"""
_PER_DAY = """
SELECT date_trunc('day', occurred_at AT TIME ZONE 'Asia/Shanghai') AS day, type, count(*) FROM {table}
WHERE village_id = :village AND occurred_at >= :start AND occurred_at < :end
GROUP BY 1, 2 ORDER BY 1, 2
"""
_INDEXES = (
    ("endpoint_id", "occurred_at"),
    ("village_id", "occurred_at"),
    ("campaign_id", "occurred_at"),
    ("occurred_at",),
    ("slot_id",),
    ("alert_id",),
)


def _endpoints(session: Session) -> list[Endpoint]:
    return list(session.exec(sqlmodel.select(Endpoint).order_by(col(Endpoint.id))).all())


def _partitions_for(engine: Engine, first: datetime, last: datetime) -> None:
    """What the scheduler's job would have made: a partition for every month of the data."""
    with transaction(engine) as session:
        month = month_start(first)
        while month <= last:
            storage.create_partition(session, month)
            month = add_months(month, 1)


def _empty(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE play_events, play_event_keys"))


# ---- ingest ----


def _slots(engine: Engine, sources: list[Endpoint], per_source: int) -> dict[int, list[tuple[int, datetime]]]:
    """``per_source`` past slots for each source endpoint, by COPY: endpoint -> slot ids."""
    with transaction(engine) as session:
        campaign = make_campaign(session, make_revision(session))
        columns = "endpoint_id, campaign_id, revision_id, occurrence_at, starts_at, ends_at, status, moved, "
        columns += "updated_at"
        cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY rundown_slots ({columns}) FROM STDIN") as copy:
            for endpoint in sources:
                for n in range(per_source):
                    at = NOW - timedelta(days=20, minutes=n * 7)
                    copy.write_row(
                        (
                            endpoint.id,
                            campaign.id,
                            campaign.revision_id,
                            at,
                            at,
                            at + timedelta(minutes=5),
                            "planned",
                            False,
                            NOW,
                        )
                    )
        found = (
            session.connection().execute(text("SELECT endpoint_id, id, starts_at FROM rundown_slots")).all()
        )
    slots: dict[int, list[tuple[int, datetime]]] = {}
    for endpoint_id, slot_id, starts_at in sorted(found, key=lambda r: (r[0], r[2])):
        slots.setdefault(endpoint_id, []).append((slot_id, starts_at))
    return slots


def _batches(
    sources: list[Endpoint], slots: dict[int, list[tuple[int, datetime]]]
) -> Iterator[tuple[Endpoint, list[dict[str, Any]]]]:
    """Batches of 500 events as devices send them: each slot's started and completed, in order."""
    made = 0
    round_ = 0
    while made < EVENTS:
        for endpoint in sources:
            if made >= EVENTS:
                return
            events = []
            for slot_id, at in slots[endpoint.id or 0][round_ * BATCH // 2 : (round_ + 1) * BATCH // 2]:
                for kind, offset in (("started", 0), ("completed", 300)):
                    events.append(
                        {
                            "id": str(uuid.uuid4()),
                            "type": kind,
                            "at": (at + timedelta(seconds=offset)).isoformat(),
                            "slot_id": slot_id,
                            "program_sha256": "ab" * 32,
                            "position_ms": offset * 1000,
                        }
                    )
            events = events[: EVENTS - made]
            made += len(events)
            yield endpoint, events
        round_ += 1


def _ingest_api(engine: Engine, batches: list[tuple[Endpoint, list[dict[str, Any]]]]) -> float:
    spent = 0.0
    with Session(engine, expire_on_commit=False) as session:
        for endpoint, events in batches:
            start = time.perf_counter()
            result = ingest_events(session, endpoint=endpoint, events=events, now=NOW, retention_months=13)
            session.commit()
            spent += time.perf_counter() - start
            if result.accepted != len(events):
                raise AssertionError(f"ingest kept {result.accepted} of {len(events)}: {result.rejected[:3]}")
    return spent


def _rows(endpoint: Endpoint, events: list[dict[str, Any]], campaign_id: int) -> list[PlayRow]:
    return [
        PlayRow(
            endpoint.id or 0,
            e["id"],
            e["type"],
            e["slot_id"],
            None,
            None,
            e["program_sha256"],
            e["position_ms"],
            None,
            endpoint.village_id,
            campaign_id,
            datetime.fromisoformat(e["at"]),
            NOW,
        )
        for e in events
    ]


def _raw_copy(
    engine: Engine, batches: list[tuple[Endpoint, list[dict[str, Any]]]], campaign_id: int
) -> float:
    """The same rows in one COPY: no validation, no keys, one transaction."""
    spent = 0.0
    with Session(engine) as session:
        cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        start = time.perf_counter()
        with cursor.copy(f"COPY play_events ({', '.join(storage.COLUMNS)}) FROM STDIN") as copy:
            spent += time.perf_counter() - start
            for endpoint, events in batches:
                rows = _rows(endpoint, events, campaign_id)
                start = time.perf_counter()
                for row in rows:
                    copy.write_row(row)
                spent += time.perf_counter() - start
            start = time.perf_counter()
        session.commit()
        spent += time.perf_counter() - start
    return spent


def _ingest(engine: Engine) -> list[Row]:
    with Session(engine, expire_on_commit=False) as session:
        endpoints = _endpoints(session)
    sources = random.Random(7).sample(endpoints, min(SOURCES, len(endpoints)))
    per_source = -(-EVENTS // (2 * len(sources)))
    slots = _slots(engine, sources, per_source)
    _partitions_for(engine, NOW - timedelta(days=21 + per_source * 7 // 1440), NOW)
    batches = list(_batches(sources, slots))
    with Session(engine) as session:
        campaign_id = (
            session.connection().execute(text("SELECT max(campaign_id) FROM rundown_slots")).scalar_one()
        )
    copy_s = _raw_copy(engine, batches, campaign_id)
    _empty(engine)
    api_s = _ingest_api(engine, batches)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM play_events")).scalar_one()
    if stored != EVENTS:
        raise AssertionError(f"{stored} events stored, {EVENTS} sent")
    _empty(engine)
    case = f"ingest {EVENTS:,} events, batches of {BATCH} from {len(sources):,} endpoints"
    return [
        Row(
            "playlog",
            f"{case}: API path {EVENTS / api_s:,.0f}/s vs raw COPY {EVENTS / copy_s:,.0f}/s",
            api_s,
            copy_s,
        )
    ]


# ---- query ----


def _city_rows(endpoints: list[Endpoint], campaigns: list[int], first_day: datetime) -> Iterator[PlayRow]:
    rng = random.Random(11)
    for day in range(DAYS):
        date = first_day + timedelta(days=day)
        for endpoint in endpoints:
            for hour, minute in PLAYS_A_DAY:
                at = date.replace(hour=hour, minute=minute) + timedelta(seconds=rng.randrange(120))
                campaign = campaigns[(endpoint.id or 0) % len(campaigns)]
                for kind, offset in (("started", 0), ("completed", 300)):
                    yield PlayRow(
                        endpoint.id or 0,
                        uuid.uuid4().hex,
                        kind,
                        None,
                        None,
                        None,
                        "cd" * 32,
                        offset * 1000,
                        None,
                        endpoint.village_id,
                        campaign,
                        at + timedelta(seconds=offset),
                        at + timedelta(seconds=offset + 2),
                    )


def _load_city(engine: Engine, endpoints: list[Endpoint]) -> tuple[int, float, float]:
    """The city's ``DAYS`` days into play_events and into an unpartitioned copy: (rows, seconds each)."""
    with transaction(engine) as session:
        revision = make_revision(session)
        campaigns = [make_campaign(session, revision).id or 0 for _ in range(8)]
    first_day = (NOW - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    _partitions_for(engine, first_day, NOW)
    start = time.perf_counter()
    with Session(engine) as session:
        storage.copy_rows(session, _city_rows(endpoints, campaigns, first_day))
        session.commit()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE play_events_flat (LIKE play_events INCLUDING DEFAULTS)"))
        connection.execute(text("INSERT INTO play_events_flat SELECT * FROM play_events"))
        for columns in _INDEXES:
            connection.execute(text(f"CREATE INDEX ON play_events_flat ({', '.join(columns)})"))
    flat_s = time.perf_counter() - start
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE play_events"))
        connection.execute(text("VACUUM ANALYZE play_events_flat"))
        rows = connection.execute(text("SELECT count(*) FROM play_events")).scalar_one()
    return rows, load_s, flat_s


def _village_month(connection: Connection, table: str, params: dict[str, Any]) -> tuple[int, int, int]:
    page = connection.execute(text(_PAGE.format(table=table)), params).all()
    total = connection.execute(text(_TOTAL.format(table=table)), params).scalar_one()
    days = connection.execute(text(_PER_DAY.format(table=table)), params).all()
    return len(page), total, len(days)


def _percentiles(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), statistics.quantiles(times, n=20)[18]


def _query(engine: Engine) -> list[Row]:
    with Session(engine, expire_on_commit=False) as session:
        endpoints = _endpoints(session)
    rows, load_s, flat_s = _load_city(engine, endpoints)
    villages = sorted({e.village_id for e in endpoints})
    chosen = random.Random(5).sample(villages, QUERY_RUNS)
    end = (NOW - timedelta(days=max(DAYS // 6, 1))).replace(hour=16, minute=0, second=0, microsecond=0)
    window = {"start": end - timedelta(days=30), "end": end}
    times: dict[str, list[float]] = {"play_events": [], "play_events_flat": []}
    with engine.connect() as connection:
        for table in times:  # warm both the same way
            _village_month(connection, table, {"village": chosen[0], **window})
        for village in chosen:
            answers = set()
            for table, spent in times.items():
                start = time.perf_counter()
                answers.add(_village_month(connection, table, {"village": village, **window}))
                spent.append(time.perf_counter() - start)
            if len(answers) != 1:
                raise AssertionError(f"village {village}: partitioned and flat tables disagree: {answers}")
        sample = _village_month(connection, "play_events", {"village": chosen[0], **window})
        connection.execute(text("DROP TABLE play_events_flat"))
        connection.commit()
    parted, flat = _percentiles(times["play_events"]), _percentiles(times["play_events_flat"])
    city = f"{DAYS} days of the city ({rows:,} rows)"
    ask = f"one village's 30 days (~{sample[1]:,} events: page of 100 + total + per day and type)"
    return [
        Row(
            "playlog",
            f"load {city} by COPY into the partitioned table / copy it unpartitioned",
            load_s,
            flat_s,
        ),
        Row("playlog", f"{ask}, p50, partitioned vs unpartitioned", parted[0], flat[0]),
        Row("playlog", f"same, p95 over {QUERY_RUNS} villages", parted[1], flat[1]),
    ]


def run() -> list[Row]:
    with _postgres() as engine:
        if engine is None:
            return [Row("playlog", f"postgresql: unreachable at {PG_ADMIN_URL}, skipped", 0.0)]
        migrations.upgrade(engine)
        with transaction(engine) as session:
            build_demo_city(session)
        rows = _ingest(engine)
        rows.extend(_query(engine))
        return rows
