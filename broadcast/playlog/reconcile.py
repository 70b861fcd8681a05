"""Reconciliation: planned slots against what the speakers reported, in one set-based upsert.

A planned slot that ended more than ``grace`` ago gets an outcome: *played* (a "completed"
report), *failed* (the device's reason as the cause), *partial* (started or interrupted, no
completion), or *missed* (no report at all). A miss is *offline* when the presence history shows
the speaker offline at any moment of the slot window (or never connected before it), *silent*
otherwise: online, yet nothing played, which is worth a visit.

Devices buffer events while offline and upload them when they come back, so slots that ended in
the last ``recheck`` hours are judged again on every run: a miss becomes *played* when the
buffered report arrives. Older slots are judged once (the first run after an outage catches up
on every slot without an outcome). Each run is one INSERT ... SELECT ... ON CONFLICT statement,
so 100k slots cost the database one pass, not 100k round trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, literal, or_, true
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from broadcast.dispatch.models import PlayEvent, PlayEventType, PresenceEvent, PresenceState
from broadcast.playlog.outcomes import MissCause, Outcome, SlotOutcome
from broadcast.regions.models import Endpoint
from broadcast.scheduling.models import RundownSlot, SlotStatus

# Device clocks drift: a "started" stamped a little before the slot still belongs to it.
CLOCK_SLACK = timedelta(hours=1)
_OUTCOMES = SlotOutcome.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ReconcileReport:
    judged: int  # slots whose outcome was written (new or re-judged)
    forgotten: int  # outcomes removed because their slot is no longer planned


def _candidates(*, cutoff: datetime, recheck_from: datetime) -> Any:
    """Planned slots over for ``grace``: recent ones always, older ones only without an outcome."""
    judged = exists().where(col(SlotOutcome.slot_id) == col(RundownSlot.id))
    return and_(
        col(RundownSlot.status) == SlotStatus.planned,
        col(RundownSlot.ends_at) <= cutoff,
        or_(col(RundownSlot.ends_at) > recheck_from, ~judged),
    )


def _reports(since: datetime) -> Any:
    """Per slot: first start, completion, whether it was interrupted or failed, and the reason."""
    kind = col(PlayEvent.type)
    at = col(PlayEvent.occurred_at)
    ended_badly = kind.in_([PlayEventType.failed, PlayEventType.interrupted])
    return (
        sql_select(
            col(PlayEvent.slot_id).label("slot_id"),
            func.min(case((kind == PlayEventType.started, at))).label("started_at"),
            func.max(case((kind == PlayEventType.completed, at))).label("completed_at"),
            func.max(case((kind == PlayEventType.failed, 1), else_=0)).label("failed"),
            func.max(case((kind == PlayEventType.interrupted, 1), else_=0)).label("interrupted"),
            func.max(case((ended_badly, col(PlayEvent.reason)))).label("reason"),
        )
        .where(col(PlayEvent.slot_id).is_not(None), at >= since)
        .group_by(col(PlayEvent.slot_id))
        .subquery("reports")
    )


def _presence_columns(reported: Any) -> list[Any]:
    """For slots nobody reported on: state at the start, when it went offline, offline in the window."""
    presence_at = col(PresenceEvent.at)
    same = col(PresenceEvent.endpoint_id) == col(RundownSlot.endpoint_id)
    offline = col(PresenceEvent.state) == PresenceState.offline
    state_at_start = (
        sql_select(col(PresenceEvent.state))
        .where(same, presence_at <= col(RundownSlot.starts_at))
        .order_by(presence_at.desc(), col(PresenceEvent.id).desc())
        .limit(1)
        .scalar_subquery()
    )
    last_offline = (
        sql_select(func.max(presence_at))
        .where(same, offline, presence_at <= col(RundownSlot.starts_at))
        .scalar_subquery()
    )
    first_offline_in = (
        sql_select(func.min(presence_at))
        .where(
            same, offline, presence_at > col(RundownSlot.starts_at), presence_at < col(RundownSlot.ends_at)
        )
        .scalar_subquery()
    )
    silent_so_far = reported.c.slot_id.is_(None)
    return [
        case((silent_so_far, state_at_start)).label("state_at_start"),
        case((silent_so_far, last_offline)).label("last_offline"),
        case((silent_so_far, first_offline_in)).label("first_offline_in"),
    ]


def _judged(*, cutoff: datetime, recheck_from: datetime, since: datetime, now: datetime) -> Any:
    reported = _reports(since)
    base = (
        sql_select(
            col(RundownSlot.id).label("slot_id"),
            col(RundownSlot.endpoint_id).label("endpoint_id"),
            col(Endpoint.village_id).label("village_id"),
            col(RundownSlot.campaign_id).label("campaign_id"),
            col(RundownSlot.starts_at).label("starts_at"),
            col(RundownSlot.ends_at).label("ends_at"),
            reported.c.started_at,
            reported.c.completed_at,
            reported.c.failed,
            reported.c.interrupted,
            reported.c.reason,
            *_presence_columns(reported),
        )
        .join(Endpoint, col(Endpoint.id) == col(RundownSlot.endpoint_id))
        .outerjoin(reported, reported.c.slot_id == col(RundownSlot.id))
        .where(_candidates(cutoff=cutoff, recheck_from=recheck_from))
        .subquery("base")
    )
    b = base.c
    outcome = case(
        (b.completed_at.is_not(None), Outcome.played.value),
        (b.failed == 1, Outcome.failed.value),
        (or_(b.interrupted == 1, b.started_at.is_not(None)), Outcome.partial.value),
        else_=Outcome.missed.value,
    )
    never_reported = and_(b.completed_at.is_(None), b.started_at.is_(None), func.coalesce(b.failed, 0) == 0)
    never_reported = and_(never_reported, func.coalesce(b.interrupted, 0) == 0)
    was_offline = or_(
        func.coalesce(b.state_at_start, PresenceState.offline.value) == PresenceState.offline.value,
        b.first_offline_in.is_not(None),
    )
    cause = case(
        (and_(never_reported, was_offline), MissCause.offline.value),
        (never_reported, MissCause.silent.value),
        (b.completed_at.is_(None), b.reason),
    )
    offline_since = case(
        (and_(never_reported, b.state_at_start == PresenceState.offline.value), b.last_offline),
        (never_reported, b.first_offline_in),
    )
    return sql_select(
        b.slot_id,
        b.endpoint_id,
        b.village_id,
        b.campaign_id,
        b.starts_at,
        b.ends_at,
        outcome.label("outcome"),
        cause.label("cause"),
        offline_since.label("offline_since"),
        b.started_at,
        b.completed_at,
        literal(now, type_=_OUTCOMES.c.checked_at.type).label("checked_at"),
    ).where(true())  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT


def reconcile(session: Session, *, now: datetime, grace: timedelta, recheck: timedelta) -> ReconcileReport:
    """Judge every slot that is due (see the module doc); running it twice changes nothing."""
    cutoff, recheck_from = now - grace, now - recheck
    earliest = session.execute(
        sql_select(func.min(col(RundownSlot.starts_at))).where(
            _candidates(cutoff=cutoff, recheck_from=recheck_from)
        )
    ).scalar_one()
    judged = 0
    if earliest is not None:
        select = _judged(cutoff=cutoff, recheck_from=recheck_from, since=earliest - CLOCK_SLACK, now=now)
        names = [c.name for c in select.selected_columns]
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = insert(_OUTCOMES).from_select(names, select)
        updates = {name: statement.excluded[name] for name in names if name != "slot_id"}
        upsert = statement.on_conflict_do_update(index_elements=[_OUTCOMES.c.slot_id], set_=updates)
        judged = len(session.execute(upsert.returning(_OUTCOMES.c.slot_id)).all())
    unplanned = sql_select(col(RundownSlot.id)).where(
        col(RundownSlot.status) != SlotStatus.planned, col(RundownSlot.ends_at) > recheck_from
    )
    forgotten = session.execute(delete(_OUTCOMES).where(_OUTCOMES.c.slot_id.in_(unplanned)))
    session.flush()
    return ReconcileReport(judged=judged, forgotten=max(forgotten.rowcount or 0, 0))  # type: ignore[attr-defined]
