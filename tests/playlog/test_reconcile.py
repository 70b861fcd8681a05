"""Reconciliation: every outcome and cause, late uploads, idempotence, what is left alone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from broadcast.clock import FixedClock
from broadcast.config import Settings
from broadcast.dispatch.models import PlayEventType, PresenceState
from broadcast.playlog.outcomes import Outcome, SlotOutcome
from broadcast.playlog.reconcile import ReconcileReport, reconcile
from broadcast.scheduling.leader import DatabaseLease
from broadcast.scheduling.models import SlotStatus
from broadcast.scheduling.scheduler import Scheduler
from tests import builders
from tests.playlog.report_builders import campaign, event, local, presence, slot, week_ago

GRACE = timedelta(minutes=15)
RECHECK = timedelta(hours=48)


def _outcomes(session: Session) -> dict[int, SlotOutcome]:
    session.expire_all()
    return {o.slot_id: o for o in session.exec(select(SlotOutcome)).all()}


def test_each_outcome_and_cause(session: Session) -> None:
    city = builders.small_city(session)
    e = city.endpoints
    plan = campaign(session, "森林防火")
    day = week_ago()
    start = local(day, "16:00")
    now = start + timedelta(hours=1)
    for endpoint in e[:5]:
        presence(session, endpoint, PresenceState.online, start - timedelta(days=1))
    slots = [slot(session, endpoint, plan, start) for endpoint in e[:8]]
    # played
    event(session, e[0], PlayEventType.started, start, slot_row=slots[0])
    event(session, e[0], PlayEventType.completed, start + timedelta(minutes=3), slot_row=slots[0])
    # interrupted by an alert
    event(session, e[1], PlayEventType.started, start, slot_row=slots[1])
    event(
        session,
        e[1],
        PlayEventType.interrupted,
        start + timedelta(minutes=1),
        slot_row=slots[1],
        reason="alert",
    )
    # the device could not play
    event(session, e[2], PlayEventType.failed, start, slot_row=slots[2], reason="decode_error")
    # offline since before the slot (Tuesday 16:02 in the scenario)
    went = start - timedelta(hours=2, minutes=-2)
    presence(session, e[3], PresenceState.offline, went)
    # e[4] online all along and silent
    # e[5] online at the start, offline in the middle
    presence(session, e[5], PresenceState.online, start - timedelta(hours=1))
    presence(session, e[5], PresenceState.offline, start + timedelta(minutes=4))
    # e[6] never connected; e[7] only started
    event(session, e[7], PlayEventType.started, start, slot_row=slots[7])
    future = slot(session, e[0], plan, now - timedelta(minutes=20))  # ended 10 min ago: within grace
    dropped = slot(session, e[1], plan, start - timedelta(hours=1), status=SlotStatus.dropped)
    session.commit()

    report = reconcile(session, now=now, grace=GRACE, recheck=RECHECK)
    session.commit()

    got = _outcomes(session)
    assert report.judged == 8
    assert future.id not in got
    assert dropped.id not in got
    summary = {i: (got[s.id or 0].outcome, got[s.id or 0].cause) for i, s in enumerate(slots)}
    assert summary == {
        0: (Outcome.played, None),
        1: (Outcome.partial, "alert"),
        2: (Outcome.failed, "decode_error"),
        3: (Outcome.missed, "offline"),
        4: (Outcome.missed, "silent"),
        5: (Outcome.missed, "offline"),
        6: (Outcome.missed, "offline"),
        7: (Outcome.partial, None),
    }
    assert got[slots[0].id or 0].completed_at == start + timedelta(minutes=3)
    assert got[slots[0].id or 0].started_at == start
    assert got[slots[3].id or 0].offline_since == went
    assert got[slots[5].id or 0].offline_since == start + timedelta(minutes=4)
    assert got[slots[6].id or 0].offline_since is None
    assert got[slots[4].id or 0].offline_since is None
    assert got[slots[3].id or 0].village_id == e[3].village_id
    assert got[slots[3].id or 0].campaign_id == plan.id


def test_late_upload_turns_a_miss_into_played_and_reruns_change_nothing(session: Session) -> None:
    city = builders.small_city(session)
    endpoint = city.endpoints[0]
    plan = campaign(session, "防溺水")
    start = local(week_ago(), "08:00")
    presence(session, endpoint, PresenceState.offline, start - timedelta(minutes=30))
    recent = slot(session, endpoint, plan, start)
    old = slot(session, endpoint, plan, start - timedelta(days=3))
    session.commit()
    now = start + timedelta(hours=2)

    reconcile(session, now=now, grace=GRACE, recheck=RECHECK)
    session.commit()
    first = _outcomes(session)
    assert first[recent.id or 0].outcome == Outcome.missed
    assert first[old.id or 0].outcome == Outcome.missed

    again = reconcile(session, now=now, grace=GRACE, recheck=RECHECK)
    session.commit()
    second = _outcomes(session)
    assert again.judged == 1  # only the recent slot is judged again; the old one keeps its outcome
    assert {k: (v.outcome, v.cause) for k, v in second.items()} == {
        k: (v.outcome, v.cause) for k, v in first.items()
    }
    assert len(second) == 2

    # The speaker comes back and uploads what it buffered: both slots "played" on the device.
    event(session, endpoint, PlayEventType.started, start, slot_row=recent)
    event(session, endpoint, PlayEventType.completed, start + timedelta(minutes=2), slot_row=recent)
    event(session, endpoint, PlayEventType.completed, old.starts_at, slot_row=old)
    session.commit()
    reconcile(session, now=now + timedelta(hours=1), grace=GRACE, recheck=RECHECK)
    session.commit()
    third = _outcomes(session)
    assert third[recent.id or 0].outcome == Outcome.played
    assert third[recent.id or 0].cause is None
    assert third[recent.id or 0].offline_since is None
    assert third[old.id or 0].outcome == Outcome.missed  # beyond the recheck window: judged once


def test_a_slot_dropped_after_judgement_loses_its_outcome(session: Session) -> None:
    city = builders.small_city(session)
    plan = campaign(session, "秸秆禁烧")
    start = local(week_ago(), "09:00")
    made = slot(session, city.endpoints[0], plan, start)
    session.commit()
    now = start + timedelta(hours=1)
    reconcile(session, now=now, grace=GRACE, recheck=RECHECK)
    session.commit()
    assert made.id in _outcomes(session)

    made.status = SlotStatus.dropped
    session.add(made)
    session.commit()
    report = reconcile(session, now=now, grace=GRACE, recheck=RECHECK)
    session.commit()
    assert report.forgotten == 1
    assert _outcomes(session) == {}
    assert session.exec(select(SlotOutcome).where(col(SlotOutcome.slot_id) == made.id)).first() is None


def test_the_scheduler_job_judges_with_the_settings(
    engine: Engine, settings: Settings, session: Session
) -> None:
    city = builders.small_city(session)
    plan = campaign(session, "消防安全")
    start = local(week_ago(), "10:00")
    made = slot(session, city.endpoints[0], plan, start)
    session.commit()
    clock = FixedClock(start + timedelta(minutes=10 + settings.play_log_grace_min - 1))
    lock = DatabaseLease(engine, name="test.reconcile", holder="a", ttl_s=30, clock=clock)
    leader = Scheduler(engine=engine, settings=settings, lock=lock, clock=clock)
    assert leader.heartbeat()
    assert leader.reconcile_job() == ReconcileReport(judged=0, forgotten=0)  # still within the grace period
    clock.set(clock.now() + timedelta(minutes=2))
    assert leader.reconcile_job() == ReconcileReport(judged=1, forgotten=0)
    assert _outcomes(session)[made.id or 0].outcome == Outcome.missed
