"""Reports for inspectors and the duty desk: coverage, a daily summary per village, alert delivery,
endpoint health.

Every figure is computed by the database (GROUP BY over the slot outcomes, the play log, the
deliveries and the presence history); Python only merges a few grouped result sets. Local days
are a small derived table of [start, end) pairs made in Python, so day boundaries follow the
city's time zone the same way on SQLite and PostgreSQL. Online time comes from presence
intervals: the state at the start of the range (the last change before it), then each change,
each lasting until the next one (or the end of the range, or now).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, func, literal, true, union_all
from sqlalchemy import select as sql_select
from sqlmodel import Session, col
from sqlmodel.sql.sqltypes import UTCDateTime

from broadcast.alerts.models import DELIVERY_LABELS, Alert, AlertDelivery, DeliveryState
from broadcast.dispatch.models import PlayEvent, PlayEventType, PresenceEvent, PresenceState
from broadcast.errors import NotFound
from broadcast.playlog.outcomes import Outcome, SlotOutcome
from broadcast.playlog.queries import Place, TimeRange
from broadcast.playlog.schemas import (
    AlertDeliveryReport,
    AlertDeliveryRow,
    AlertsReport,
    AlertSummaryRow,
    CampaignCoverage,
    Counts,
    CoverageReport,
    CoverageRow,
    DailyReport,
    DailyRow,
    HealthReport,
    HealthRow,
)
from broadcast.regions.models import Endpoint, EndpointStatus, Town, Village
from broadcast.scheduling.models import Campaign, RundownSlot, SlotStatus

NEVER_REACHED = "未送达"


# Dialect helpers -------------------------------------------------------------------------------


def _seconds(session: Session, later: Any, earlier: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later) - func.extract("epoch", earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _least(session: Session, a: Any, b: Any) -> Any:
    return func.least(a, b) if session.get_bind().dialect.name == "postgresql" else func.min(a, b)


def _greatest(session: Session, a: Any, b: Any) -> Any:
    return func.greatest(a, b) if session.get_bind().dialect.name == "postgresql" else func.max(a, b)


def _moment(value: datetime) -> Any:
    return literal(value, type_=UTCDateTime())


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole > 0 else None


def _place_columns(village: Village, town: Town) -> dict[str, str]:
    """A row's place: its village and town, by code and name."""
    return {
        "village_code": village.code,
        "village_name": village.name,
        "town_code": town.code,
        "town_name": town.name,
    }


def _endpoint_columns(endpoint: Endpoint, village: Village, town: Town) -> dict[str, str]:
    return {"endpoint_code": endpoint.code, "endpoint_name": endpoint.name, **_place_columns(village, town)}


@dataclass(frozen=True)
class Day:
    day: date
    start: datetime
    end: datetime


def local_days(window: TimeRange) -> list[Day]:
    """The local days of a range, each clipped to it."""
    days = []
    current = window.first_day
    while current <= window.last_day:
        start = datetime.combine(current, datetime.min.time(), tzinfo=window.tz)
        end = datetime.combine(current + timedelta(days=1), datetime.min.time(), tzinfo=window.tz)
        days.append(Day(current, max(start, window.start), min(end, window.end)))
        current += timedelta(days=1)
    return days


def _days_table(days: list[Day]) -> Any:
    parts = [
        sql_select(
            literal(index, type_=Integer()).label("day_index"),
            _moment(day.start).label("day_start"),
            _moment(day.end).label("day_end"),
        )
        for index, day in enumerate(days)
    ]
    return union_all(*parts).subquery("days")


# Slot counts ----------------------------------------------------------------------------------


def _outcome_sums() -> list[Any]:
    outcome = col(SlotOutcome.outcome)

    def count_of(kind: Outcome) -> Any:
        return func.sum(case((outcome == kind, 1), else_=0)).label(kind.value)

    return [
        func.count().label("planned"),
        *(count_of(kind) for kind in Outcome),
        func.sum(case((col(SlotOutcome.slot_id).is_(None), 1), else_=0)).label("pending"),
    ]


def _counts(row: Any) -> dict[str, Any]:
    values: dict[str, Any] = {name: int(getattr(row, name) or 0) for name in ("planned", "pending", *Outcome)}
    values["played_pct"] = _pct(values["played"], values["planned"] - values["pending"])
    return values


def _add(total: Counts, values: dict[str, Any]) -> None:
    for name in ("planned", "pending", *Outcome):
        setattr(total, name, getattr(total, name) + values[name])
    total.played_pct = _pct(total.played, total.planned - total.pending)


def _planned_slots(window: TimeRange, place: Place) -> Any:
    return (
        sql_select()
        .select_from(RundownSlot)
        .join(Endpoint, col(Endpoint.id) == col(RundownSlot.endpoint_id))
        .outerjoin(SlotOutcome, col(SlotOutcome.slot_id) == col(RundownSlot.id))
        .where(
            col(RundownSlot.status) == SlotStatus.planned,
            col(RundownSlot.starts_at) >= window.start,
            col(RundownSlot.starts_at) < window.end,
            *place.where(col(Endpoint.village_id), col(RundownSlot.endpoint_id)),
        )
    )


# Coverage -------------------------------------------------------------------------------------


def coverage(session: Session, *, window: TimeRange, place: Place, campaign: int | None) -> CoverageReport:
    """Per campaign and village: planned, played, partial, failed, missed, pending, played %."""
    query = (
        _planned_slots(window, place)
        .add_columns(
            col(Campaign.id).label("campaign_id"),
            col(Campaign.name).label("campaign_name"),
            col(Village.code).label("village_code"),
            col(Village.name).label("village_name"),
            col(Town.code).label("town_code"),
            col(Town.name).label("town_name"),
            *_outcome_sums(),
        )
        .join(Campaign, col(Campaign.id) == col(RundownSlot.campaign_id))
        .join(Village, col(Village.id) == col(Endpoint.village_id))
        .join(Town, col(Town.id) == col(Village.town_id))
        .group_by(col(Campaign.id), col(Campaign.name), col(Village.code), col(Village.name))
        .group_by(col(Town.code), col(Town.name))
        .order_by(col(Campaign.name), col(Campaign.id), col(Village.code))
    )
    if campaign is not None:
        query = query.where(col(RundownSlot.campaign_id) == campaign)
    rows: list[CoverageRow] = []
    campaigns: dict[int, CampaignCoverage] = {}
    total = Counts()
    for row in session.execute(query).all():
        values = _counts(row)
        rows.append(
            CoverageRow(
                campaign_id=row.campaign_id,
                campaign_name=row.campaign_name,
                village_code=row.village_code,
                village_name=row.village_name,
                town_code=row.town_code,
                town_name=row.town_name,
                **values,
            )
        )
        summary = campaigns.setdefault(
            row.campaign_id, CampaignCoverage(campaign_id=row.campaign_id, campaign_name=row.campaign_name)
        )
        _add(summary, values)
        _add(total, values)
    return CoverageReport(
        start=window.start, end=window.end, rows=rows, campaigns=list(campaigns.values()), total=total
    )


# Presence intervals ---------------------------------------------------------------------------


def _intervals(session: Session, *, window: TimeRange, place: Place, now: datetime) -> Any:
    """(endpoint, village, state, from, until) covering [start, min(end, now)) for every endpoint."""
    start, stop = window.start, min(window.end, now)
    presence_at = col(PresenceEvent.at)
    state_at_start = (
        sql_select(col(PresenceEvent.state))
        .where(col(PresenceEvent.endpoint_id) == col(Endpoint.id), presence_at <= start)
        .order_by(presence_at.desc(), col(PresenceEvent.id).desc())
        .limit(1)
        .scalar_subquery()
    )
    endpoints = place.where(col(Endpoint.village_id), col(Endpoint.id))
    initial = sql_select(
        col(Endpoint.id).label("endpoint_id"),
        col(Endpoint.village_id).label("village_id"),
        func.coalesce(state_at_start, PresenceState.offline.value).label("state"),
        _moment(start).label("since"),
    ).where(*endpoints)
    changes: Any = (
        sql_select(
            col(PresenceEvent.endpoint_id).label("endpoint_id"),
            col(Endpoint.village_id).label("village_id"),
            col(PresenceEvent.state).label("state"),
            presence_at.label("since"),
        )
        .join(Endpoint, col(Endpoint.id) == col(PresenceEvent.endpoint_id))
        .where(presence_at > start, presence_at < stop, *endpoints)
    )
    merged = union_all(initial, changes).subquery("changes")
    following = func.lead(merged.c.since).over(partition_by=merged.c.endpoint_id, order_by=merged.c.since)
    return sql_select(
        merged.c.endpoint_id,
        merged.c.village_id,
        merged.c.state,
        merged.c.since,
        func.coalesce(following, _moment(stop)).label("until"),
    ).subquery("intervals")


def _online_overlap(session: Session, intervals: Any, start: Any, end: Any) -> Any:
    """Seconds of an online interval inside [start, end), summed; 0 when they do not meet."""
    overlap = _seconds(
        session, _least(session, intervals.c.until, end), _greatest(session, intervals.c.since, start)
    )
    online = intervals.c.state == PresenceState.online.value
    return func.sum(
        case((online & (intervals.c.until > start) & (intervals.c.since < end), overlap), else_=0.0)
    )


# Daily summary ----------------------------------------------------------------------------------


def daily(session: Session, *, window: TimeRange, place: Place, now: datetime) -> DailyReport:
    """Per village and local day: slots by outcome, alerts played (live and drills), online %."""
    days = local_days(window)
    table = _days_table(days)
    per_day: dict[tuple[int, int], dict[str, Any]] = defaultdict(dict)

    slots = (
        _planned_slots(window, place)
        .add_columns(col(Endpoint.village_id).label("village_id"), table.c.day_index, *_outcome_sums())
        .join(
            table,
            (col(RundownSlot.starts_at) >= table.c.day_start)
            & (col(RundownSlot.starts_at) < table.c.day_end),
        )
        .group_by(col(Endpoint.village_id), table.c.day_index)
    )
    for row in session.execute(slots).all():
        per_day[(row.village_id, row.day_index)].update(_counts(row))

    # One per speaker, alert and day: a repeat (or a second revision) is the same alert played.
    played = (
        sql_select(
            col(PlayEvent.village_id).label("village_id"),
            table.c.day_index,
            col(Alert.drill).label("drill"),
            col(PlayEvent.endpoint_id),
            col(PlayEvent.alert_id),
        )
        .distinct()
        .join(Alert, col(Alert.id) == col(PlayEvent.alert_id))
        .join(
            table,
            (col(PlayEvent.occurred_at) >= table.c.day_start)
            & (col(PlayEvent.occurred_at) < table.c.day_end),
        )
        .where(
            col(PlayEvent.type) == PlayEventType.completed,
            col(PlayEvent.occurred_at) >= window.start,
            col(PlayEvent.occurred_at) < window.end,
            *place.where(col(PlayEvent.village_id), col(PlayEvent.endpoint_id)),
        )
        .subquery("played")
    )
    alerts = sql_select(played.c.village_id, played.c.day_index, played.c.drill, func.count()).group_by(
        played.c.village_id, played.c.day_index, played.c.drill
    )
    for village_id, day_index, is_drill, count in session.execute(alerts).all():
        per_day[(village_id, day_index)]["drills_played" if is_drill else "alerts_played"] = int(count)

    intervals = _intervals(session, window=window, place=place, now=now)
    online = (
        sql_select(
            intervals.c.village_id,
            table.c.day_index,
            _online_overlap(session, intervals, table.c.day_start, table.c.day_end).label("seconds"),
        )
        .select_from(intervals)
        .join(table, true())
        .group_by(intervals.c.village_id, table.c.day_index)
    )
    for village_id, day_index, seconds in session.execute(online).all():
        per_day[(village_id, day_index)]["online_s"] = float(seconds or 0)

    villages = (
        sql_select(Village, Town, func.count(col(Endpoint.id)))
        .join(Town, col(Town.id) == col(Village.town_id))
        .join(Endpoint, col(Endpoint.village_id) == col(Village.id))
        .where(*place.where(col(Village.id), col(Endpoint.id)))
        .group_by(col(Village.id), col(Town.id))
        .order_by(col(Village.code))
    )
    rows = []
    for village, town, endpoint_count in session.execute(villages).all():
        for index, day in enumerate(days):
            if day.start >= now:
                break
            values = per_day.get((village.id, index), {})
            elapsed = (min(day.end, now) - day.start).total_seconds() * endpoint_count
            counts = {name: values.get(name, 0) for name in ("planned", "pending", *Outcome)}
            rows.append(
                DailyRow(
                    day=day.day,
                    **_place_columns(village, town),
                    endpoints=endpoint_count,
                    alerts_played=values.get("alerts_played", 0),
                    drills_played=values.get("drills_played", 0),
                    online_pct=_pct(values.get("online_s", 0.0), elapsed),
                    played_pct=_pct(counts["played"], counts["planned"] - counts["pending"]),
                    **counts,
                )
            )
    return DailyReport(start=window.start, end=window.end, rows=rows)


# Endpoint health --------------------------------------------------------------------------------


def health(
    session: Session,
    *,
    window: TimeRange,
    place: Place,
    now: datetime,
    threshold_pct: float,
    offline_days: int,
    chronic_only: bool,
) -> HealthReport:
    """Per endpoint: online % over the range, last seen, offline since; chronic when below the
    threshold or offline for ``offline_days`` (or never seen at all)."""
    intervals = _intervals(session, window=window, place=place, now=now)
    start, stop = _moment(window.start), _moment(min(window.end, now))
    online = dict(
        session.execute(
            sql_select(intervals.c.endpoint_id, _online_overlap(session, intervals, start, stop)).group_by(
                intervals.c.endpoint_id
            )
        ).all()
    )
    offline_since = (
        sql_select(func.max(col(PresenceEvent.at)))
        .where(
            col(PresenceEvent.endpoint_id) == col(Endpoint.id),
            col(PresenceEvent.state) == PresenceState.offline,
        )
        .scalar_subquery()
    )
    query = (
        sql_select(
            Endpoint, Village, Town, case((col(Endpoint.status) != EndpointStatus.online, offline_since))
        )
        .join(Village, col(Village.id) == col(Endpoint.village_id))
        .join(Town, col(Town.id) == col(Village.town_id))
        .where(*place.where(col(Endpoint.village_id), col(Endpoint.id)))
        .order_by(col(Endpoint.code))
    )
    span = (min(window.end, now) - window.start).total_seconds()
    long_ago = now - timedelta(days=offline_days)
    rows = []
    for endpoint, village, town, since in session.execute(query).all():
        pct = _pct(float(online.get(endpoint.id, 0.0) or 0.0), span) or 0.0
        offline = endpoint.status != EndpointStatus.online
        stale = offline and (since is None or since <= long_ago)
        rows.append(
            HealthRow(
                **_endpoint_columns(endpoint, village, town),
                status=endpoint.status.value,
                online_pct=min(pct, 100.0),
                last_seen_at=endpoint.last_seen_at,
                offline_since=since,
                chronic=pct < threshold_pct or stale,
            )
        )
    rows.sort(key=lambda r: (not r.chronic, r.online_pct, r.endpoint_code))
    chronic = sum(1 for r in rows if r.chronic)
    mean = round(statistics.fmean(r.online_pct for r in rows), 1) if rows else None
    listed = [r for r in rows if r.chronic] if chronic_only else rows
    return HealthReport(
        start=window.start,
        end=window.end,
        threshold_pct=threshold_pct,
        offline_days=offline_days,
        endpoints=len(rows),
        chronic=chronic,
        online_pct=mean,
        rows=listed,
    )


# Alerts ---------------------------------------------------------------------------------------


def _after_s(later: datetime | None, earlier: datetime) -> float | None:
    return None if later is None else round((later - earlier).total_seconds(), 1)


def alert_delivery(session: Session, *, alert_id: int, place: Place) -> AlertDeliveryReport:
    """Per endpoint (of the caller's scope): what reached it, when, and who it never reached."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"紧急插播 {alert_id} 不存在")
    query = (
        sql_select(AlertDelivery, Endpoint, Village, Town)
        .join(Endpoint, col(Endpoint.id) == col(AlertDelivery.endpoint_id))
        .join(Village, col(Village.id) == col(Endpoint.village_id))
        .join(Town, col(Town.id) == col(Village.town_id))
        .where(
            col(AlertDelivery.alert_id) == alert_id, *place.where(col(Endpoint.village_id), col(Endpoint.id))
        )
        .order_by(col(Town.code), col(Village.code), col(Endpoint.code))
    )
    rows = []
    for delivery, endpoint, village, town in session.execute(query).all():
        reached = delivery.delivered_at is not None or delivery.started_at is not None
        rows.append(
            AlertDeliveryRow(
                **_endpoint_columns(endpoint, village, town),
                state=delivery.state.value,
                state_label=DELIVERY_LABELS[delivery.state] if reached else NEVER_REACHED,
                reached=reached,
                online_at_send=delivery.online_at_send,
                endpoint_status=endpoint.status.value,
                sent_at=delivery.sent_at,
                delivered_at=delivery.delivered_at,
                started_at=delivery.started_at,
                finished_at=delivery.finished_at,
                delivered_after_s=_after_s(delivery.delivered_at, delivery.sent_at),
                started_after_s=_after_s(delivery.started_at, delivery.sent_at),
            )
        )
    latencies = sorted(r.delivered_after_s for r in rows if r.delivered_after_s is not None)
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] if latencies else None
    return AlertDeliveryReport(
        alert_id=alert_id,
        title=alert.title,
        level=alert.level,
        category=alert.category.value,
        drill=alert.drill,
        revision=alert.revision,
        status=alert.status.value,
        sent_at=alert.sent_at,
        endpoints=len(rows),
        delivered=sum(1 for r in rows if r.reached),
        started=sum(1 for r in rows if r.started_at is not None),
        completed=sum(1 for r in rows if r.state == DeliveryState.completed),
        never_reached=sum(1 for r in rows if not r.reached),
        delivered_median_s=round(statistics.median(latencies), 1) if latencies else None,
        delivered_p95_s=p95,
        rows=rows,
        unreached=[r for r in rows if not r.reached],
    )


def alerts(session: Session, *, window: TimeRange, place: Place, drill: bool | None) -> AlertsReport:
    """Alerts sent in the range with their reach (within the caller's scope), newest first."""
    reached = (col(AlertDelivery.delivered_at).is_not(None)) | (col(AlertDelivery.started_at).is_not(None))
    query = (
        sql_select(
            Alert,
            func.count().label("endpoints"),
            func.sum(case((reached, 1), else_=0)).label("delivered"),
            func.sum(case((col(AlertDelivery.state) == DeliveryState.completed, 1), else_=0)).label(
                "completed"
            ),
        )
        .join(AlertDelivery, col(AlertDelivery.alert_id) == col(Alert.id))
        .join(Endpoint, col(Endpoint.id) == col(AlertDelivery.endpoint_id))
        .where(
            col(Alert.sent_at) >= window.start,
            col(Alert.sent_at) < window.end,
            *place.where(col(Endpoint.village_id), col(Endpoint.id)),
        )
        .group_by(col(Alert.id))
        .order_by(col(Alert.sent_at).desc(), col(Alert.id).desc())
    )
    if drill is not None:
        query = query.where(col(Alert.drill).is_(drill))
    rows = [
        AlertSummaryRow(
            alert_id=alert.id or 0,
            title=alert.title,
            level=alert.level,
            category=alert.category.value,
            drill=alert.drill,
            status=alert.status.value,
            sent_at=alert.sent_at or window.start,
            endpoints=int(endpoints),
            delivered=int(delivered or 0),
            completed=int(completed or 0),
            never_reached=int(endpoints) - int(delivered or 0),
        )
        for alert, endpoints, delivered, completed in session.execute(query).all()
    ]
    return AlertsReport(start=window.start, end=window.end, rows=rows)
