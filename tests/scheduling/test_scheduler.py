"""The scheduler: one leader among candidates, its jobs run by calling them directly with a fake clock."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, update
from sqlmodel import Session, col

from broadcast.clock import FixedClock
from broadcast.config import Settings
from broadcast.db import transaction
from broadcast.scheduling import scheduler as scheduler_module
from broadcast.scheduling.leader import LEADER_LEASE, DatabaseLease
from broadcast.scheduling.models import Campaign, CampaignStatus, Lease
from broadcast.scheduling.recurrence import SHANGHAI
from broadcast.scheduling.refresh import pending_refresh, request_refresh
from broadcast.scheduling.scheduler import (
    FULL_EVERY,
    Scheduler,
    start_embedded_scheduler,
    stop_embedded_scheduler,
)
from tests.builders import small_city
from tests.scheduling.campaign_builders import playlist_revision
from tests.scheduling.rundown_builders import make_campaign

T0 = datetime(2026, 6, 1, 7, 0, tzinfo=SHANGHAI).astimezone(UTC)
T_FAR = datetime(2100, 1, 1, tzinfo=UTC)
SEASON = (date(2026, 5, 1), date(2026, 7, 31))


def _candidate(engine: Engine, settings: Settings, clock: FixedClock, holder: str) -> Scheduler:
    lock = DatabaseLease(engine, name="test.scheduler", holder=holder, ttl_s=30, clock=clock)
    return Scheduler(engine=engine, settings=settings, lock=lock, clock=clock)


@pytest.fixture
def city(session: Session) -> None:
    small_city(session)
    make_campaign(
        session, revision=playlist_revision(session), selector={"all": True}, times=["08:00"], season=SEASON
    )
    session.commit()


def test_one_leader_materializes_on_request_and_every_15_minutes(
    engine: Engine, settings: Settings, city: None
) -> None:
    clock = FixedClock(T0)
    first, second = _candidate(engine, settings, clock, "a"), _candidate(engine, settings, clock, "b")
    assert (first.heartbeat(), second.heartbeat()) == (True, False)
    assert (first.is_leader, second.is_leader) == (True, False)
    report = first.materialize_job()
    assert report is not None
    assert report.inserted == 12 * 3
    assert second.materialize_job() is None  # a stand-by never runs jobs
    assert first.materialize_job() is None  # nothing asked, last full run is fresh
    with transaction(engine) as session:
        request_refresh(session, reason="test")
    again = first.materialize_job()
    assert again is not None
    assert (again.inserted, again.unchanged) == (0, 36)
    with Session(engine) as session:
        assert pending_refresh(session) is None
    clock.set(T0 + FULL_EVERY)
    assert first.materialize_job() is not None


def test_stand_by_takes_over_after_expiry_and_the_old_leader_stops(
    engine: Engine, settings: Settings, city: None
) -> None:
    clock = FixedClock(T0)
    first, second = _candidate(engine, settings, clock, "a"), _candidate(engine, settings, clock, "b")
    assert first.heartbeat()
    clock.set(T0 + timedelta(seconds=31))  # the leader missed its renewals (suspended, partitioned)
    assert second.heartbeat() is True
    assert first.materialize_job() is None  # re-checks the lease first, learns it lost it
    assert first.is_leader is False
    assert second.seasons_job() == (0, 0)


def test_seasons_job_starts_and_ends_campaigns_by_local_date(
    engine: Engine, settings: Settings, session: Session
) -> None:
    small_city(session)
    revision = playlist_revision(session)
    starting = make_campaign(
        session,
        revision=revision,
        selector={"all": True},
        times=["08:00"],
        season=(date(2026, 6, 1), date(2026, 6, 30)),
        status=CampaignStatus.approved,
    )
    over = make_campaign(
        session,
        revision=revision,
        selector={"all": True},
        times=["08:00"],
        season=(date(2026, 5, 1), date(2026, 5, 31)),
    )
    session.commit()
    clock = FixedClock(datetime(2026, 5, 31, 16, 5, tzinfo=UTC))  # 2026-06-01 00:05 in Shanghai
    leader = _candidate(engine, settings, clock, "a")
    assert leader.heartbeat()
    assert leader.seasons_job() == (1, 1)
    session.expire_all()
    assert session.get_one(Campaign, starting.id).status == CampaignStatus.active
    assert session.get_one(Campaign, over.id).status == CampaignStatus.ended
    assert leader.seasons_job() == (0, 0)


def test_failed_materialization_keeps_the_request(
    engine: Engine, settings: Settings, city: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(scheduler_module, "materialize", broken)
    leader = _candidate(engine, settings, FixedClock(T0), "a")
    assert leader.heartbeat()
    with transaction(engine) as session:
        request_refresh(session, reason="campaign 1 approved")
    assert leader.materialize_job() is None
    with Session(engine) as session:
        marker = pending_refresh(session)
        assert marker is not None
        assert "retry" in marker.holder


def _wait(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.02)
    return False


def test_running_scheduler_adds_jobs_as_leader_removes_them_when_the_lease_is_lost(
    sqlite_engine: Engine, settings: Settings
) -> None:
    lock = DatabaseLease(sqlite_engine, name="test.running", holder="a", ttl_s=30)
    running = Scheduler(engine=sqlite_engine, settings=settings, lock=lock)
    running.start()
    try:
        assert _wait(lambda: running.is_leader)
        jobs = {job.id for job in running._aps.get_jobs()}
        assert jobs == {"heartbeat", "materialize", "seasons", "alerts", "playlog", "reconcile"}
        for job in running._aps.get_jobs():
            assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
        assert _wait(lambda: running.last_report is not None)
        running.wake()
        with sqlite_engine.begin() as connection:  # another candidate took the lease over
            connection.execute(
                update(Lease).where(col(Lease.name) == "test.running").values(holder="b", expires_at=T_FAR)
            )
        assert running.heartbeat() is False
        assert {job.id for job in running._aps.get_jobs()} == {"heartbeat"}
    finally:
        running.stop()


def test_embedded_scheduler_leads_and_a_committed_change_wakes_it(app: FastAPI, engine: Engine) -> None:
    scheduler = start_embedded_scheduler(app)
    try:
        assert start_embedded_scheduler(app) is scheduler
        assert _wait(lambda: scheduler.last_report is not None)
        first = scheduler.last_report
        with transaction(engine) as session:
            request_refresh(session, reason="campaign 7 approved")
        assert _wait(lambda: scheduler.last_report is not first)  # woken, not the 15-minute cycle
        with Session(engine) as session:
            assert pending_refresh(session) is None
    finally:
        stop_embedded_scheduler(app)
    assert app.state.scheduler is None
    with Session(engine) as session:
        assert session.get(Lease, LEADER_LEASE) is None
