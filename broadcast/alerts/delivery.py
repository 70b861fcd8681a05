"""The delivery board: what each endpoint did with an alert, and the totals by town and village.

Delivery rows move forward only (``DELIVERY_RANK``): an acknowledgement arriving after the
"started" event changes nothing. A row still ``sent`` whose endpoint is offline now is shown as
*offline*: the officer's list of speakers the alert has not reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, case, func, or_, update
from sqlalchemy import select as sql_select
from sqlmodel import Session, col

from broadcast.alerts.models import (
    DELIVERY_LABELS,
    DELIVERY_RANK,
    Alert,
    AlertDelivery,
    AlertStatus,
    DeliveryState,
)
from broadcast.alerts.schemas import AreaCounts, Board, DeliveryOut, StateCounts
from broadcast.dispatch.models import PlayEventType
from broadcast.pagination import PageParams
from broadcast.regions.models import Endpoint, EndpointStatus, Town, Village

OFFLINE = "offline"
_TABLE = AlertDelivery.__table__  # type: ignore[attr-defined]

# What a play event makes of a delivery, and which time it sets.
_EVENT_STATE = {
    PlayEventType.started: (DeliveryState.playing, "started_at"),
    PlayEventType.completed: (DeliveryState.completed, "finished_at"),
    PlayEventType.interrupted: (DeliveryState.interrupted, "finished_at"),
    PlayEventType.failed: (DeliveryState.failed, "finished_at"),
}


def known_now(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """The alerts a device must know about at ``now``: sent and still valid, or cancelled before
    their validity ended (the device must stop them). ``GET /device/v1/alerts`` serves these."""
    return (
        col(Alert.status).in_([AlertStatus.active, AlertStatus.cancelled]),
        col(Alert.valid_until) > now,
    )


def alerts_to_know(session: Session, endpoint_ids: Iterable[int], *, now: datetime) -> dict[int, int]:
    """endpoint id → how many alerts and cancels it must know about now (absent: none).

    One query for a whole admission batch: the welcome says how many, so a device fetches
    ``/device/v1/alerts`` only when there is something to fetch (a gateway restart does not
    turn into one request per speaker).
    """
    ids = list(endpoint_ids)
    if not ids:
        return {}
    query = (
        sql_select(col(AlertDelivery.endpoint_id), func.count())
        .join(Alert, col(Alert.id) == AlertDelivery.alert_id)
        .where(col(AlertDelivery.endpoint_id).in_(ids), *known_now(now))
        .group_by(col(AlertDelivery.endpoint_id))
    )
    return {int(endpoint_id): int(count) for endpoint_id, count in session.execute(query).all()}


def _lower_ranks(state: DeliveryState) -> list[DeliveryState]:
    return [s for s, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[state]]


def record_acks(session: Session, acks: Mapping[tuple[int, int, int], datetime]) -> None:
    """(alert, revision, endpoint) → when the device acknowledged: ``sent`` becomes ``delivered``."""
    if not acks:
        return
    revisions = _current_revisions(session, {alert_id for alert_id, _, _ in acks})
    rows = [
        {"aid": alert_id, "eid": endpoint_id, "at": at}
        for (alert_id, revision, endpoint_id), at in acks.items()
        if revisions.get(alert_id) == revision
    ]
    if rows:
        statement = (
            _TABLE.update()
            .where(_TABLE.c.alert_id == bindparam("aid"), _TABLE.c.endpoint_id == bindparam("eid"))
            .where(_TABLE.c.state == DeliveryState.sent.value)
            .values(state=DeliveryState.delivered.value, delivered_at=bindparam("at"))
        )
        session.execute(statement, rows)


def _current_revisions(session: Session, alert_ids: Iterable[int]) -> dict[int, int]:
    ids = list(alert_ids)
    if not ids:
        return {}
    rows = session.execute(sql_select(col(Alert.id), col(Alert.revision)).where(col(Alert.id).in_(ids))).all()
    return {int(alert_id): int(revision) for alert_id, revision in rows}


def record_play(
    session: Session,
    *,
    endpoint_id: int,
    events: Iterable[tuple[int, int | None, PlayEventType, datetime, str | None]],
) -> None:
    """Play events about alerts (alert, revision, type, at, reason) move this endpoint's deliveries.

    An event about an older revision is history only: the board follows the current revision.
    """
    events = list(events)
    revisions = _current_revisions(session, {alert_id for alert_id, *_ in events})
    for alert_id, revision, kind, at, reason in sorted(events, key=lambda e: e[3]):
        if revision is not None and revisions.get(alert_id) != revision:
            continue
        state, stamp = _EVENT_STATE[kind]
        values: dict[str, Any] = {"state": state, stamp: at}
        if kind != PlayEventType.started:
            values["detail"] = reason
        session.execute(
            update(AlertDelivery)
            .where(
                col(AlertDelivery.alert_id) == alert_id,
                col(AlertDelivery.endpoint_id) == endpoint_id,
                col(AlertDelivery.state).in_(_lower_ranks(state)),
            )
            .values(**values, delivered_at=func.coalesce(col(AlertDelivery.delivered_at), at))
        )


def _shown_state() -> ColumnElement[Any]:
    """The board's state: a row still ``sent`` to an endpoint that is offline now is *offline*."""
    return case(
        (
            and_(
                col(AlertDelivery.state) == DeliveryState.sent, col(Endpoint.status) != EndpointStatus.online
            ),
            OFFLINE,
        ),
        else_=col(AlertDelivery.state),
    )


def board(session: Session, *, alert: Alert) -> Board:
    shown = _shown_state().label("shown")
    query = (
        sql_select(col(Town.code), col(Town.name), col(Village.code), col(Village.name), shown, func.count())
        .select_from(AlertDelivery)
        .join(Endpoint, col(Endpoint.id) == AlertDelivery.endpoint_id)
        .join(Village, col(Village.id) == Endpoint.village_id)
        .join(Town, col(Town.id) == Village.town_id)
        .where(col(AlertDelivery.alert_id) == alert.id)
        .group_by(Town.code, Town.name, Village.code, Village.name, shown)
        .order_by(Town.code, Village.code)
    )
    totals = StateCounts()
    towns: dict[str, AreaCounts] = {}
    villages: dict[str, AreaCounts] = {}
    for town_code, town_name, village_code, village_name, state, n in session.execute(query).all():
        for counts in (
            totals,
            towns.setdefault(
                town_code, AreaCounts(code=town_code, name=town_name, counts=StateCounts())
            ).counts,
            villages.setdefault(
                village_code, AreaCounts(code=village_code, name=village_name, counts=StateCounts())
            ).counts,
        ):
            counts.total += n
            setattr(counts, str(state), getattr(counts, str(state)) + n)
    first, last, median = _latencies(session, alert)
    return Board(
        alert_id=alert.id or 0,
        revision=alert.revision,
        status=alert.status,
        drill=alert.drill,
        sent_at=alert.sent_at,
        totals=totals,
        towns=list(towns.values()),
        villages=list(villages.values()),
        first_delivered_s=first,
        last_delivered_s=last,
        p50_delivered_s=median,
    )


def _latencies(session: Session, alert: Alert) -> tuple[float | None, float | None, float | None]:
    rows = session.execute(
        sql_select(col(AlertDelivery.sent_at), col(AlertDelivery.delivered_at)).where(
            col(AlertDelivery.alert_id) == alert.id, col(AlertDelivery.delivered_at).is_not(None)
        )
    ).all()
    seconds = sorted((delivered - sent).total_seconds() for sent, delivered in rows)
    if not seconds:
        return None, None, None
    return seconds[0], seconds[-1], seconds[len(seconds) // 2]


def _after(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def deliveries(
    session: Session, *, alert: Alert, shown: str | None, village: str | None, params: PageParams
) -> tuple[int, list[DeliveryOut]]:
    """One page of the per-endpoint list; ``shown="unreached"`` lists every endpoint not reached yet."""
    state = _shown_state()
    query = (
        sql_select(AlertDelivery, Endpoint, Village, col(Town.name), state.label("shown"))
        .join(Endpoint, col(Endpoint.id) == AlertDelivery.endpoint_id)
        .join(Village, col(Village.id) == Endpoint.village_id)
        .join(Town, col(Town.id) == Village.town_id)
        .where(col(AlertDelivery.alert_id) == alert.id)
    )
    if shown == "unreached":
        query = query.where(or_(state == OFFLINE, state == DeliveryState.sent.value))
    elif shown is not None:
        query = query.where(state == shown)
    if village is not None:
        query = query.where(col(Village.code) == village)
    total = int(session.execute(sql_select(func.count()).select_from(query.subquery())).scalar_one())
    rows = session.execute(
        query.order_by(col(Village.code), col(Endpoint.code)).limit(params.limit).offset(params.offset)
    ).all()
    return total, [
        DeliveryOut(
            endpoint_code=endpoint.code,
            endpoint_name=endpoint.name,
            village_code=village_row.code,
            village_name=village_row.name,
            town_name=town_name,
            state=delivery.state,
            shown_state="离线" if shown_state == OFFLINE else DELIVERY_LABELS[DeliveryState(shown_state)],
            online_now=endpoint.status == EndpointStatus.online,
            online_at_send=delivery.online_at_send,
            sent_at=delivery.sent_at,
            delivered_at=delivery.delivered_at,
            started_at=delivery.started_at,
            finished_at=delivery.finished_at,
            delivered_after_s=_after(delivery.sent_at, delivery.delivered_at),
            started_after_s=_after(delivery.sent_at, delivery.started_at),
            detail=delivery.detail,
        )
        for delivery, endpoint, village_row, town_name, shown_state in rows
    ]
