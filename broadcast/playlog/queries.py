"""The play log and the plan-versus-actual list: filters, a village admin's scope, keyset pages.

Pages are keyset pages (an opaque cursor holding the last row's time and id), not offsets: the log
grows while someone pages through it, and an offset would skip or repeat rows. ``total`` counts
the whole filtered set. Exports read the same ordered set in batches while the file is written.
Every filter value is checked: an unknown code is a 422 naming it, a village outside a village
admin's scope a 403 naming the village.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_
from sqlalchemy import select as sql_select
from sqlmodel import Session, col

from broadcast.alerts.models import Alert
from broadcast.dispatch.models import PlayEvent, PlayEventType
from broadcast.errors import Forbidden, Invalid
from broadcast.playlog.outcomes import (
    CAUSE_LABELS,
    OUTCOME_LABELS,
    PENDING_LABEL,
    MissCause,
    Outcome,
    SlotOutcome,
)
from broadcast.playlog.schemas import KeysetPage, PlayEventOut, SlotRowOut
from broadcast.regions.models import Endpoint, Town, Village
from broadcast.scheduling.models import Campaign, RundownSlot, SlotStatus

MAX_RANGE_DAYS = 93
MAX_PAGE = 500
EXPORT_MAX_ROWS = 200_000
# Rows fetched at a time while an export is written (a server-side cursor on PostgreSQL).
EXPORT_BATCH = 1000
PENDING = "pending"
EVENT_LABELS = {
    PlayEventType.started: "开始播放",
    PlayEventType.completed: "播放完成",
    PlayEventType.interrupted: "被中断",
    PlayEventType.failed: "播放失败",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
Scope = frozenset[int] | None
T = TypeVar("T")


# Time ranges -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in UTC, with the local dates it covers (for daily rows and file names)."""

    start: datetime
    end: datetime
    tz: ZoneInfo

    @property
    def first_day(self) -> date:
        return self.start.astimezone(self.tz).date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).astimezone(self.tz).date()


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _parse_moment(name: str, raw: str, tz: ZoneInfo, *, end: bool) -> datetime:
    """A local date (the whole day) or an aware ISO 8601 time; ``+`` decoded as a space is restored."""
    text = raw.strip()
    hint = "请用本地日期 YYYY-MM-DD，或带时区的时间，如 2026-11-03T16:02:00+08:00"
    if _DATE.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise Invalid(f"{name} 不是有效日期：{raw}；{hint}", details={name: raw}) from None
        return _local_midnight(day + timedelta(days=1) if end else day, tz)
    try:
        moment = datetime.fromisoformat(text.replace(" ", "+") if "T" in text else text)
    except ValueError:
        raise Invalid(f"无法识别的{name}：{raw}；{hint}", details={name: raw}) from None
    if moment.tzinfo is None:
        raise Invalid(f"{name} 缺少时区：{raw}；{hint}", details={name: raw})
    return moment


def parse_range(raw_from: str | None, raw_to: str | None, *, tz: ZoneInfo, now: datetime) -> TimeRange:
    """``from``/``to`` as given (``to`` as a date includes that day); defaults: today, up to its end."""
    today = now.astimezone(tz).date()
    start = (
        _parse_moment("开始时间 from", raw_from, tz, end=False) if raw_from else _local_midnight(today, tz)
    )
    if raw_to:
        end = _parse_moment("结束时间 to", raw_to, tz, end=True)
    else:
        end = max(_local_midnight(today + timedelta(days=1), tz), start + timedelta(days=1))
    if end <= start:
        shown = f"{start.astimezone(tz):%Y-%m-%d %H:%M}"
        raise Invalid(
            f"结束时间 {end.astimezone(tz):%Y-%m-%d %H:%M} 必须晚于开始时间 {shown}",
            details={"from": raw_from, "to": raw_to},
        )
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        days = (end - start).days
        raise Invalid(
            f"时间范围最长 {MAX_RANGE_DAYS} 天（当前约 {days} 天）：请缩小范围，或分几次导出",
            details={"days": days, "max_days": MAX_RANGE_DAYS},
        )
    return TimeRange(start=start.astimezone(tz), end=end.astimezone(tz), tz=tz)


# Places, campaigns, alerts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where to look: the filters that were named, resolved to ids, and the caller's scope."""

    scope: Scope
    town_id: int | None = None
    village_id: int | None = None
    endpoint_id: int | None = None

    def where(self, village_column: Any, endpoint_column: Any) -> list[Any]:
        """Conditions on a query's village and endpoint columns."""
        conditions = []
        if self.scope is not None:
            conditions.append(village_column.in_(sorted(self.scope)))
        if self.village_id is not None:
            conditions.append(village_column == self.village_id)
        if self.town_id is not None:
            conditions.append(
                village_column.in_(sql_select(col(Village.id)).where(col(Village.town_id) == self.town_id))
            )
        if self.endpoint_id is not None:
            conditions.append(endpoint_column == self.endpoint_id)
        return conditions


def _forbid(village: Village) -> Forbidden:
    return Forbidden(
        f"无权查看村（社区）{village.name}（{village.code}）的播出记录：不在您负责的范围内",
        details={"village": village.code},
    )


def resolve_place(
    session: Session, *, scope: Scope, town: str | None, village: str | None, endpoint: str | None
) -> Place:
    town_id = village_id = endpoint_id = None
    if town is not None:
        found_town = session.execute(sql_select(Town).where(col(Town.code) == town)).scalars().first()
        if found_town is None:
            raise Invalid(f"未知的乡镇（街道）代码：{town}", details={"town": town})
        if scope is not None:
            inside = sql_select(func.count()).where(
                Village.town_id == found_town.id, col(Village.id).in_(scope)
            )
            if not session.execute(inside).scalar_one():
                raise Forbidden(
                    f"无权查看乡镇（街道）{found_town.name}（{town}）：其中没有您负责的村（社区）",
                    details={"town": town},
                )
        town_id = found_town.id
    if village is not None:
        found_village = (
            session.execute(sql_select(Village).where(col(Village.code) == village)).scalars().first()
        )
        if found_village is None:
            raise Invalid(f"未知的村（社区）代码：{village}", details={"village": village})
        if scope is not None and found_village.id not in scope:
            raise _forbid(found_village)
        village_id = found_village.id
    if endpoint is not None:
        found = session.execute(sql_select(Endpoint).where(col(Endpoint.code) == endpoint)).scalars().first()
        if found is None:
            raise Invalid(f"未知的终端代码：{endpoint}", details={"endpoint": endpoint})
        if scope is not None and found.village_id not in scope:
            raise _forbid(session.get_one(Village, found.village_id))
        endpoint_id = found.id
    return Place(scope=scope, town_id=town_id, village_id=village_id, endpoint_id=endpoint_id)


def check_campaign(session: Session, campaign_id: int | None) -> None:
    if campaign_id is not None and session.get(Campaign, campaign_id) is None:
        raise Invalid(f"宣传计划 {campaign_id} 不存在", details={"campaign": campaign_id})


def check_alert(session: Session, alert_id: int | None) -> None:
    if alert_id is not None and session.get(Alert, alert_id) is None:
        raise Invalid(f"紧急插播 {alert_id} 不存在", details={"alert": alert_id})


def check_choice(name: str, value: str | None, choices: list[str]) -> None:
    if value is not None and value not in choices:
        raise Invalid(
            f"未知的{name}：{value}；可用值：{'、'.join(choices)}",
            details={"value": value, "allowed": choices},
        )


# Keyset pages and exports -----------------------------------------------------------------------


def encode_cursor(at: datetime, row_id: int) -> str:
    raw = json.dumps([at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or not isinstance(row_id, int):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise Invalid(
            "翻页游标 cursor 无效：请使用上一页返回的 next_cursor，或去掉 cursor 从第一页开始",
            details={"cursor": cursor},
        ) from None
    return moment, row_id


def _after(at_column: Any, id_column: Any, cursor: str | None) -> list[Any]:
    if cursor is None:
        return []
    at, row_id = decode_cursor(cursor)
    return [or_(at_column > at, and_(at_column == at, id_column > row_id))]


def _count(session: Session, query: Any) -> int:
    return int(
        session.execute(sql_select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    )


def keyset_page(
    session: Session,
    query: Any,
    order: tuple[Any, Any],
    item: Callable[[Any], T],
    key: Callable[[T], tuple[datetime, int]],
    *,
    limit: int,
    cursor: str | None,
) -> KeysetPage[T]:
    """One page of ``query`` after ``cursor``, in ``order`` (a time column, then an id column).

    ``item`` makes a result row into what the page lists; ``key`` gives an item's (time, id),
    which the next cursor carries.
    """
    at, row_id = order
    total = _count(session, query)
    page = query.where(*_after(at, row_id, cursor)).order_by(at, row_id).limit(limit + 1)
    items = [item(row) for row in session.execute(page).all()]
    next_cursor = encode_cursor(*key(items[limit - 1])) if len(items) > limit else None
    return KeysetPage(total=total, limit=limit, next_cursor=next_cursor, items=items[:limit])


def export_rows(
    session: Session, query: Any, order: tuple[Any, Any], item: Callable[[Any], T]
) -> Iterator[T]:
    """The whole of ``query`` in ``order``, read a batch at a time while the file is written.

    Counted first: beyond ``EXPORT_MAX_ROWS`` it is a 422 before any row is read.
    """
    total = _count(session, query)
    if total > EXPORT_MAX_ROWS:
        raise Invalid(
            f"要导出 {total} 行，超过上限 {EXPORT_MAX_ROWS} 行：请缩小时间范围，或按乡镇、村筛选后分批导出",
            details={"rows": total, "max_rows": EXPORT_MAX_ROWS},
        )
    rows = session.execute(query.order_by(*order).execution_options(yield_per=EXPORT_BATCH))
    return (item(row) for row in rows)


# The play log -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilters:
    window: TimeRange
    place: Place
    campaign: int | None = None
    alert: int | None = None
    type: str | None = None
    drill: bool | None = None


def _events_query(filters: EventFilters) -> Any:
    query = (
        sql_select(
            PlayEvent,
            col(Endpoint.code),
            col(Endpoint.name),
            col(Village.code),
            col(Village.name),
            col(Town.code),
            col(Town.name),
            col(Campaign.name),
            col(Alert.title),
            col(Alert.drill),
        )
        .join(Endpoint, col(Endpoint.id) == col(PlayEvent.endpoint_id))
        .outerjoin(Village, col(Village.id) == col(PlayEvent.village_id))
        .outerjoin(Town, col(Town.id) == col(Village.town_id))
        .outerjoin(Campaign, col(Campaign.id) == col(PlayEvent.campaign_id))
        .outerjoin(Alert, col(Alert.id) == col(PlayEvent.alert_id))
        .where(
            col(PlayEvent.occurred_at) >= filters.window.start,
            col(PlayEvent.occurred_at) < filters.window.end,
            *filters.place.where(col(PlayEvent.village_id), col(PlayEvent.endpoint_id)),
        )
    )
    if filters.campaign is not None:
        query = query.where(col(PlayEvent.campaign_id) == filters.campaign)
    if filters.alert is not None:
        query = query.where(col(PlayEvent.alert_id) == filters.alert)
    if filters.type is not None:
        query = query.where(col(PlayEvent.type) == PlayEventType(filters.type))
    if filters.drill is True:
        query = query.where(col(Alert.drill).is_(True))
    elif filters.drill is False:
        query = query.where(or_(col(PlayEvent.alert_id).is_(None), col(Alert.drill).is_(False)))
    return query


def _event_out(row: Any) -> PlayEventOut:
    event, code, name, village_code, village_name, town_code, town_name, campaign, alert, drill = row
    return PlayEventOut(
        id=event.id,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        type=event.type.value,
        type_label=EVENT_LABELS[event.type],
        endpoint_code=code,
        endpoint_name=name,
        village_code=village_code,
        village_name=village_name,
        town_code=town_code,
        town_name=town_name,
        campaign_id=event.campaign_id,
        campaign_name=campaign,
        slot_id=event.slot_id,
        alert_id=event.alert_id,
        alert_title=alert,
        drill=bool(drill),
        position_ms=event.position_ms,
        reason=event.reason,
    )


_EVENT_ORDER = (col(PlayEvent.occurred_at), col(PlayEvent.id))


def _event_key(event: PlayEventOut) -> tuple[datetime, int]:
    return event.occurred_at, event.id


def play_events(
    session: Session, filters: EventFilters, *, limit: int, cursor: str | None
) -> KeysetPage[PlayEventOut]:
    """One page of the log, oldest first."""
    query = _events_query(filters)
    return keyset_page(session, query, _EVENT_ORDER, _event_out, _event_key, limit=limit, cursor=cursor)


def all_play_events(session: Session, filters: EventFilters) -> Iterator[PlayEventOut]:
    """The whole filtered log for an export, oldest first."""
    return export_rows(session, _events_query(filters), _EVENT_ORDER, _event_out)


# Plan versus actual -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotFilters:
    window: TimeRange
    place: Place
    campaign: int | None = None
    status: str | None = None


SLOT_STATUSES = [o.value for o in Outcome] + [PENDING]


def _slots_query(filters: SlotFilters) -> Any:
    query = (
        sql_select(
            RundownSlot,
            SlotOutcome,
            col(Endpoint.code),
            col(Endpoint.name),
            col(Village.code),
            col(Village.name),
            col(Town.code),
            col(Town.name),
            col(Campaign.name),
        )
        .join(Endpoint, col(Endpoint.id) == col(RundownSlot.endpoint_id))
        .join(Village, col(Village.id) == col(Endpoint.village_id))
        .join(Town, col(Town.id) == col(Village.town_id))
        .join(Campaign, col(Campaign.id) == col(RundownSlot.campaign_id))
        .outerjoin(SlotOutcome, col(SlotOutcome.slot_id) == col(RundownSlot.id))
        .where(
            col(RundownSlot.status) == SlotStatus.planned,
            col(RundownSlot.starts_at) >= filters.window.start,
            col(RundownSlot.starts_at) < filters.window.end,
            *filters.place.where(col(Endpoint.village_id), col(RundownSlot.endpoint_id)),
        )
    )
    if filters.campaign is not None:
        query = query.where(col(RundownSlot.campaign_id) == filters.campaign)
    if filters.status == PENDING:
        query = query.where(col(SlotOutcome.slot_id).is_(None))
    elif filters.status is not None:
        query = query.where(col(SlotOutcome.outcome) == Outcome(filters.status))
    return query


def _slot_out(row: Any) -> SlotRowOut:
    slot, outcome, code, name, village_code, village_name, town_code, town_name, campaign = row
    status = outcome.outcome.value if outcome else PENDING
    cause = outcome.cause if outcome else None
    cause_label = None
    if cause is not None:
        cause_label = CAUSE_LABELS[MissCause(cause)] if status == Outcome.missed else cause
    return SlotRowOut(
        slot_id=slot.id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        endpoint_code=code,
        endpoint_name=name,
        village_code=village_code,
        village_name=village_name,
        town_code=town_code,
        town_name=town_name,
        campaign_id=slot.campaign_id,
        campaign_name=campaign,
        status=status,
        status_label=OUTCOME_LABELS[outcome.outcome] if outcome else PENDING_LABEL,
        cause=cause,
        cause_label=cause_label,
        offline_since=outcome.offline_since if outcome else None,
        started_at=outcome.started_at if outcome else None,
        completed_at=outcome.completed_at if outcome else None,
    )


_SLOT_ORDER = (col(RundownSlot.starts_at), col(RundownSlot.id))


def _slot_key(slot: SlotRowOut) -> tuple[datetime, int]:
    return slot.starts_at, slot.slot_id


def slots(
    session: Session, filters: SlotFilters, *, limit: int, cursor: str | None
) -> KeysetPage[SlotRowOut]:
    """One page of planned slots with their outcomes, in start order."""
    query = _slots_query(filters)
    return keyset_page(session, query, _SLOT_ORDER, _slot_out, _slot_key, limit=limit, cursor=cursor)


def all_slots(session: Session, filters: SlotFilters) -> Iterator[SlotRowOut]:
    """Every planned slot of the filters for an export, in start order."""
    return export_rows(session, _slots_query(filters), _SLOT_ORDER, _slot_out)
