"""A small hand-made play history: slots, play events, presence changes, alerts and deliveries.

Times are built on a local day a week ago, so every slot is long over and every figure is fixed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from broadcast.alerts.models import Alert, AlertCategory, AlertDelivery, AlertStatus, DeliveryState
from broadcast.auth.models import Role, User
from broadcast.clock import utc_now
from broadcast.content.models import AudioBlob
from broadcast.dispatch.models import PlayEvent, PlayEventType, PresenceEvent, PresenceState
from broadcast.regions.models import Endpoint
from broadcast.scheduling.models import Campaign, RundownSlot, SlotStatus
from tests import builders
from tests.scheduling.campaign_builders import playlist_revision
from tests.scheduling.rundown_builders import make_campaign

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(1)


def local(day: date, hhmm: str) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def week_ago() -> date:
    return utc_now().astimezone(SHANGHAI).date() - timedelta(days=7)


def campaign(session: Session, name: str) -> Campaign:
    revision = playlist_revision(session)
    day = week_ago()
    return make_campaign(
        session,
        revision=revision,
        selector={"all": True},
        times=["08:00"],
        season=(day - timedelta(days=30), day + timedelta(days=30)),
        name=name,
    )


def slot(
    session: Session,
    endpoint: Endpoint,
    plan: Campaign,
    starts_at: datetime,
    *,
    minutes: int = 10,
    status: SlotStatus = SlotStatus.planned,
) -> RundownSlot:
    made = RundownSlot(
        endpoint_id=endpoint.id or 0,
        campaign_id=plan.id or 0,
        revision_id=plan.revision_id,
        occurrence_at=starts_at,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        status=status,
    )
    session.add(made)
    session.flush()
    return made


def event(
    session: Session,
    endpoint: Endpoint,
    kind: PlayEventType,
    at: datetime,
    *,
    slot_row: RundownSlot | None = None,
    alert: Alert | None = None,
    reason: str | None = None,
) -> PlayEvent:
    made = PlayEvent(
        endpoint_id=endpoint.id or 0,
        event_id=f"ev-{next(_ids)}",
        type=kind,
        slot_id=slot_row.id if slot_row else None,
        alert_id=alert.id if alert else None,
        alert_revision=alert.revision if alert else None,
        reason=reason,
        village_id=endpoint.village_id,
        campaign_id=slot_row.campaign_id if slot_row else None,
        occurred_at=at,
        received_at=at,
    )
    session.add(made)
    session.flush()
    return made


def presence(session: Session, endpoint: Endpoint, state: PresenceState, at: datetime) -> None:
    session.add(PresenceEvent(endpoint_id=endpoint.id or 0, state=state, at=at))
    session.flush()


def alert(session: Session, *, title: str, drill: bool, sent_at: datetime) -> Alert:
    sha = f"{next(_ids):064x}"
    session.add(
        AudioBlob(sha256=sha, size_bytes=1, duration_ms=1000, sample_rate=48000, channels=1, codec="mp3")
    )
    session.flush()
    made = Alert(
        request_key=f"k{next(_ids)}",
        title=title,
        level=3,
        category=AlertCategory.flood,
        drill=drill,
        valid_until=sent_at + timedelta(hours=2),
        status=AlertStatus.expired,
        program_sha256=sha,
        program_duration_ms=1000,
        sent_at=sent_at,
    )
    session.add(made)
    session.flush()
    return made


def delivery(
    session: Session,
    made: Alert,
    endpoint: Endpoint,
    *,
    delivered_after_s: float | None = None,
    completed: bool = False,
) -> None:
    sent = made.sent_at or utc_now()
    delivered = None if delivered_after_s is None else sent + timedelta(seconds=delivered_after_s)
    state = DeliveryState.sent
    if delivered is not None:
        state = DeliveryState.completed if completed else DeliveryState.delivered
    session.add(
        AlertDelivery(
            alert_id=made.id or 0,
            endpoint_id=endpoint.id or 0,
            state=state,
            online_at_send=delivered is not None,
            sent_at=sent,
            delivered_at=delivered,
            started_at=delivered + timedelta(seconds=1) if completed and delivered else None,
            finished_at=delivered + timedelta(seconds=30) if completed and delivered else None,
        )
    )
    session.flush()


@dataclass
class World:
    city: builders.City
    users: dict[Role, User] = field(default_factory=dict)


def world(session: Session) -> World:
    """The small city with one user per role; the village admin has the first village only."""
    city = builders.small_city(session)
    made = World(city=city, users={role: builders.make_user(session, role=role) for role in Role})
    builders.scope_user(session, made.users[Role.village_admin], [city.villages[0]])
    session.commit()
    return made
