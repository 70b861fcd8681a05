"""Materialization: idempotent rows per endpoint, refresh after a change, the past untouched, drops kept."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from broadcast.auth.audit import SYSTEM
from broadcast.config import Settings
from broadcast.scheduling.materialize import materialize, window_for
from broadcast.scheduling.models import Campaign, RundownSlot, SlotStatus
from broadcast.scheduling.recurrence import SHANGHAI
from broadcast.scheduling.refresh import materialized_through, pending_refresh
from broadcast.scheduling.service import pause_campaign
from tests.builders import City, small_city
from tests.scheduling.campaign_builders import playlist_revision
from tests.scheduling.rundown_builders import make_campaign

SEASON = (date(2026, 5, 1), date(2026, 7, 31))


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def _rows(session: Session) -> list[RundownSlot]:
    session.expire_all()
    query = select(RundownSlot).order_by(col(RundownSlot.endpoint_id), col(RundownSlot.starts_at))
    return list(session.exec(query).all())


def _setup(session: Session) -> tuple[City, dict[str, int]]:
    city = small_city(session)
    revision = playlist_revision(session, duration_ms=60_000)
    everyone = make_campaign(
        session, revision=revision, selector={"all": True}, times=["08:00", "12:00"], season=SEASON
    )
    village = city.villages[0].code
    urgent = make_campaign(
        session,
        revision=revision,
        selector={"villages": [village]},
        times=["08:00"],
        season=SEASON,
        priority=8,
    )
    late = make_campaign(
        session,
        revision=revision,
        selector={"villages": [village]},
        times=["22:30"],
        season=SEASON,
        windows=("06:00-23:30",),
    )
    session.commit()
    return city, {"everyone": everyone.id or 0, "urgent": urgent.id or 0, "late": late.id or 0}


def test_window_is_whole_local_days_up_to_the_horizon() -> None:
    start, end = window_for(local(1, 7), horizon_h=48, tz=SHANGHAI)
    assert start == datetime(2026, 6, 1, tzinfo=SHANGHAI)
    assert end == datetime(2026, 6, 4, tzinfo=SHANGHAI)


def test_materialize_twice_changes_nothing_the_second_time(session: Session, settings: Settings) -> None:
    city, ids = _setup(session)
    first = materialize(session, settings=settings, now=local(1, 7))
    session.commit()
    # 12 endpoints x 3 days x 2 plays of "everyone" + 3 endpoints x 3 days x ("urgent" + dropped "late")
    assert (first.planned, first.dropped) == (72 + 9, 9)
    assert (first.inserted, first.updated, first.deleted) == (90, 0, 0)
    assert (first.campaigns, first.endpoints) == (3, 12)
    second = materialize(session, settings=settings, now=local(1, 7, 30))
    session.commit()
    assert (second.inserted, second.updated, second.deleted, second.unchanged) == (0, 0, 0, 90)
    rows = _rows(session)
    keys = {(r.endpoint_id, r.campaign_id, r.occurrence_at) for r in rows}
    assert len(rows) == len(keys) == 90
    assert materialized_through(session) == datetime(2026, 6, 4, tzinfo=SHANGHAI)
    moved = [r for r in rows if r.moved]
    assert {r.endpoint_id for r in moved} == {e.id for e in city.endpoints[:3]}
    assert all(r.campaign_id == ids["everyone"] and r.bumped_by == ids["urgent"] for r in moved)
    assert {r.starts_at.astimezone(SHANGHAI).time().isoformat() for r in moved} == {"08:01:00"}


def test_dropped_occurrences_are_stored_with_their_reason(session: Session, settings: Settings) -> None:
    _, ids = _setup(session)
    materialize(session, settings=settings, now=local(1, 7))
    session.commit()
    dropped = [r for r in _rows(session) if r.status == SlotStatus.dropped]
    assert len(dropped) == 9
    assert {(r.campaign_id, r.reason) for r in dropped} == {(ids["late"], "quiet_hours")}
    assert all("静默时段" in (r.detail or "") for r in dropped)


def test_campaign_change_refreshes_and_the_past_is_history(session: Session, settings: Settings) -> None:
    _, ids = _setup(session)
    materialize(session, settings=settings, now=local(1, 7))
    session.commit()
    pause_campaign(session, campaign=session.get_one(Campaign, ids["urgent"]), actor=SYSTEM)
    session.commit()
    assert pending_refresh(session) is not None
    report = materialize(session, settings=settings, now=local(1, 10))
    session.commit()
    rows = _rows(session)
    today_8 = [r for r in rows if r.occurrence_at == local(1, 8)]
    # Started before 10:00: kept as planned then, the urgent slot and the moved slot included.
    assert {r.campaign_id for r in today_8} == {ids["everyone"], ids["urgent"]}
    assert sum(1 for r in today_8 if r.moved) == 3
    later = [r for r in rows if r.occurrence_at > local(1, 10)]
    assert ids["urgent"] not in {r.campaign_id for r in later}
    assert not any(r.moved for r in later)
    assert (report.deleted, report.updated) == (3 * 2, 3 * 2)  # urgent gone on days 2-3; moves undone
    assert report.kept_past == 12 + 3  # today's 08:00 slots of everyone and urgent


def test_campaign_without_render_is_skipped_with_a_reason(session: Session, settings: Settings) -> None:
    small_city(session)
    revision = playlist_revision(session, rendered=False)
    campaign = make_campaign(
        session, revision=revision, selector={"all": True}, times=["08:00"], season=SEASON
    )
    session.commit()
    report = materialize(session, settings=settings, now=local(1, 7))
    assert (report.campaigns, report.inserted) == (0, 0)
    assert [item.campaign_id for item in report.skipped] == [campaign.id]
    assert "生成" in report.skipped[0].reason


def test_horizon_shrinking_deletes_future_rows_beyond_it(session: Session, settings: Settings) -> None:
    _setup(session)
    materialize(session, settings=settings, now=local(1, 7))
    session.commit()
    report = materialize(session, settings=settings, now=local(1, 7), horizon_h=1)
    session.commit()
    assert report.deleted == 60
    count = session.exec(select(func.count()).select_from(RundownSlot)).one()
    assert count == 30
    assert max(r.occurrence_at for r in _rows(session)) < local(1, 7) + timedelta(days=1)
