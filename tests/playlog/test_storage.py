"""Play log storage: late and far-off months kept, partitions made and filled, retention, racing retries."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from broadcast.clock import FixedClock, utc_now
from broadcast.config import Settings
from broadcast.dispatch.device_schemas import EventsResult
from broadcast.dispatch.envelope import format_time
from broadcast.dispatch.events import ingest_events
from broadcast.dispatch.models import PlayEvent, PlayEventKey
from broadcast.playlog import storage
from broadcast.playlog.storage import PlayRow, add_months, month_start
from broadcast.regions.models import Endpoint
from broadcast.scheduling.leader import DatabaseLease
from broadcast.scheduling.scheduler import Scheduler
from tests import builders
from tests.dispatch.conftest import make_campaign, make_revision, make_slot

RETENTION = 13


def _event(at: datetime, **fields: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": "completed", "at": format_time(at), **fields}


def _ingest(
    session: Session, endpoint: Endpoint, events: list[Any], *, now: datetime, months: int = RETENTION
) -> EventsResult:
    result = ingest_events(session, endpoint=endpoint, events=events, now=now, retention_months=months)
    session.commit()
    return result


def _row(endpoint: Endpoint, at: datetime) -> PlayRow:
    return PlayRow(
        endpoint_id=endpoint.id or 0,
        event_id=str(uuid.uuid4()),
        type="started",
        slot_id=None,
        alert_id=None,
        alert_revision=None,
        program_sha256=None,
        position_ms=None,
        reason=None,
        village_id=endpoint.village_id,
        campaign_id=None,
        occurred_at=at,
        received_at=utc_now(),
    )


def _where(session: Session, event_id: str) -> str:
    """The partition that holds an event (PostgreSQL)."""
    query = text("SELECT tableoid::regclass::text FROM play_events WHERE event_id = :id")
    return str(session.connection().execute(query, {"id": event_id}).scalar_one())


def _count(session: Session, model: type[PlayEvent] | type[PlayEventKey]) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_late_out_of_order_and_far_off_months_are_stored_and_move_into_their_partition(
    engine: Engine, session: Session
) -> None:
    endpoint = builders.small_city(session).endpoints[0]
    session.commit()
    now = utc_now()
    late = add_months(month_start(now), -7) + timedelta(days=3, hours=5)
    batch = [_event(now - timedelta(minutes=1)), _event(late), _event(now - timedelta(days=2))]
    assert _ingest(session, endpoint, batch, now=now) == EventsResult(accepted=3, duplicates=0, rejected=[])
    far = _row(endpoint, datetime(2031, 3, 9, 4, tzinfo=UTC))
    assert storage.insert_new(session, [far, far]) == [far]
    session.commit()
    stored = dict(session.exec(select(PlayEvent.event_id, PlayEvent.occurred_at)).all())
    assert set(stored) == {*(e["id"] for e in batch), far.event_id}
    assert (stored[batch[1]["id"]], stored[far.event_id]) == (late, far.occurred_at)
    if engine.dialect.name != "postgresql":
        assert storage.create_partition(session, month_start(late)) is False
        assert storage.partitions(session) == []
        return
    assert _where(session, batch[0]["id"]) == storage.partition_name(month_start(now))
    assert _where(session, batch[1]["id"]) == _where(session, far.event_id) == "play_events_default"
    report = storage.Maintenance()
    assert storage.create_partition(session, month_start(late), report)
    assert storage.create_partition(session, month_start(late)) is False
    session.commit()
    assert (report.created, report.moved) == ([storage.partition_name(month_start(late))], 1)
    assert _where(session, batch[1]["id"]) == storage.partition_name(month_start(late))
    assert _where(session, far.event_id) == "play_events_default"
    assert _count(session, PlayEvent) == 4


def test_retention_drops_whole_months_with_their_keys_and_older_events_are_refused(
    engine: Engine, session: Session
) -> None:
    endpoint = builders.small_city(session).endpoints[0]
    session.commit()
    now = utc_now()
    this = month_start(now)
    # With 3 months kept: two months ago is the oldest kept, three and four months ago go.
    gone_partitioned, gone_default, kept = (add_months(this, n) + timedelta(hours=1) for n in (-4, -3, -2))
    storage.create_partition(session, month_start(gone_partitioned))
    storage.create_partition(session, month_start(kept))
    rows = [_row(endpoint, at) for at in (gone_partitioned, gone_default, kept, now)]
    storage.insert_new(session, rows)
    session.commit()
    report = storage.maintain(session, now=now, months=3)
    session.commit()
    if engine.dialect.name == "postgresql":
        assert storage.partition_name(month_start(gone_partitioned)) in report.dropped
        assert storage.partition_name(month_start(kept)) not in report.dropped
        assert report.deleted == 1  # the DEFAULT partition's old row
        names = storage.partitions(session)
        assert [storage.partition_name(add_months(this, n)) for n in (-2, 0, 1, 2)] == [
            name for name in names if name >= storage.partition_name(add_months(this, -2))
        ][:4]
        assert all(name >= storage.partition_name(add_months(this, -2)) for name in names)
    else:
        assert (report.dropped, report.deleted) == ([], 2)
    assert report.keys_deleted == 2
    assert set(session.exec(select(PlayEvent.event_id)).all()) == {rows[2].event_id, rows[3].event_id}
    assert set(session.exec(select(PlayEventKey.event_id)).all()) == {rows[2].event_id, rows[3].event_id}
    again = [
        {"id": rows[1].event_id, "type": "started", "at": format_time(gone_default)},
        {"id": rows[2].event_id, "type": "started", "at": format_time(kept)},
        {"id": "first-day-kept", "type": "started", "at": format_time(add_months(this, -2))},
    ]
    result = _ingest(session, endpoint, again, now=now, months=3)
    assert (result.accepted, result.duplicates) == (1, 1)
    assert [(r.index, r.id, r.code) for r in result.rejected] == [(0, rows[1].event_id, "too_old")]
    assert "保留期" in result.rejected[0].message


def test_village_and_campaign_are_copied_from_the_endpoint_and_the_slot(session: Session) -> None:
    city = builders.small_city(session)
    endpoint = city.endpoints[0]
    campaign = make_campaign(session, make_revision(session))
    slot = make_slot(
        session, endpoint=endpoint, campaign=campaign, starts_at=utc_now() - timedelta(minutes=2)
    )
    session.commit()
    now = utc_now()
    batch = [_event(now, type="started", slot_id=slot.id), _event(now, type="failed", reason="下载失败")]
    assert _ingest(session, endpoint, batch, now=now).accepted == 2
    stored = session.exec(
        select(PlayEvent.event_id, PlayEvent.village_id, PlayEvent.campaign_id, PlayEvent.slot_id)
    ).all()
    assert sorted(stored) == sorted(
        [
            (batch[0]["id"], endpoint.village_id, campaign.id, slot.id),
            (batch[1]["id"], endpoint.village_id, None, None),
        ]
    )


def test_racing_retries_of_one_batch_store_it_once(engine: Engine, session: Session) -> None:
    endpoint = builders.small_city(session).endpoints[0]
    session.commit()
    now = utc_now()
    batch = [_event(now - timedelta(seconds=i)) for i in range(200)]
    barrier = threading.Barrier(4)
    results: list[EventsResult] = []

    def post() -> None:
        with Session(engine, expire_on_commit=False) as own:
            barrier.wait()
            results.append(_ingest(own, own.get_one(Endpoint, endpoint.id), batch, now=now))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted((r.accepted, r.duplicates) for r in results) == [(0, 200)] * 3 + [(200, 0)]
    assert _count(session, PlayEvent) == _count(session, PlayEventKey) == 200
    distinct = select(func.count(func.distinct(PlayEvent.event_id))).where(
        col(PlayEvent.endpoint_id) == endpoint.id
    )
    assert session.exec(distinct).one() == 200


def test_the_scheduler_job_keeps_partitions_ahead_and_applies_retention(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Three months from now: its partition does not exist yet (the migration makes two ahead).
    at = add_months(month_start(utc_now()), 3) + timedelta(days=19, hours=16)
    endpoint = builders.small_city(session).endpoints[0]
    session.commit()
    old, current = _row(endpoint, at - timedelta(days=400)), _row(endpoint, at)
    storage.insert_new(session, [old, current])
    session.commit()
    clock = FixedClock(at)
    lock = DatabaseLease(engine, name="test.playlog", holder="a", ttl_s=30, clock=clock)
    scheduler = Scheduler(engine=engine, settings=settings, lock=lock, clock=clock)
    scheduler.heartbeat()
    report = scheduler.playlog_job()
    assert report is not None
    if engine.dialect.name == "postgresql":
        assert report.created == [storage.partition_name(add_months(month_start(at), n)) for n in range(3)]
        assert report.moved == 1
        assert _where(session, current.event_id) == report.created[0]
    assert report.deleted == 1
    assert session.exec(select(PlayEvent.event_id)).all() == [current.event_id]
    assert session.exec(select(PlayEventKey.event_id)).all() == [current.event_id]
    session.rollback()  # its read locks would keep DROP TABLE waiting
    with engine.begin() as connection:  # leave no partitions ahead of the migration's to other tests
        for name in report.created:
            connection.execute(text(f"DROP TABLE {name}"))
