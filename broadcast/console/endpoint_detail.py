"""One endpoint's page (/console/endpoints/{code}): its rundown for today and tomorrow, its
connection (state, history) and what it reported playing; and the live presence poll of the list.

The list polls its results fragment every 5 s (htmx) rather than holding an SSE stream:
presence lives in the database (every gateway process writes it), one indexed page query per
open console every 5 s is cheap, the poll keeps the page's filters and paging for free, and it
needs no long-lived connection per console through proxies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session, col, select
from starlette.responses import Response

from broadcast.auth import audit
from broadcast.auth.models import Role, User
from broadcast.clock import utc_now
from broadcast.console import endpoints as endpoint_pages
from broadcast.console.access import require_section
from broadcast.console.library import actor_of
from broadcast.console.nav import section_named
from broadcast.console.templating import render, templates
from broadcast.deps import SessionDep, SettingsDep, village_scope
from broadcast.dispatch.models import PlayEvent, PresenceEvent
from broadcast.dispatch.presence import REASON_LABELS, presence_history
from broadcast.dispatch.push import publish_push
from broadcast.errors import Forbidden
from broadcast.regions import service as regions
from broadcast.regions.models import TAG_LABELS, Endpoint
from broadcast.regions.schemas import EndpointOut
from broadcast.scheduling.models import Campaign, RundownSlot, SlotStatus

ENDPOINTS = section_named("endpoints")
EndpointsUser = Annotated[User, Depends(require_section(ENDPOINTS))]
PUSHERS = frozenset({Role.admin, Role.duty_officer})
PLAY_LABELS = {"started": "开始播放", "completed": "播放完成", "interrupted": "被打断", "failed": "播放失败"}
SLOT_LABELS = {SlotStatus.planned.value: "计划播出", SlotStatus.dropped.value: "未排入"}
RECENT = 20

router = APIRouter()


def ago(value: datetime | None) -> str:
    """'x 秒前' for the last day; older times are shown in full by ``local_time``."""
    if value is None:
        return "—"
    seconds = max(0, int((utc_now() - value).total_seconds()))
    if seconds < 60:
        return f"{seconds} 秒前"
    if seconds < 3600:
        return f"{seconds // 60} 分钟前"
    return f"{seconds // 3600} 小时前"


def is_recent(value: datetime | None) -> bool:
    return value is not None and utc_now() - value < timedelta(days=1)


templates.env.filters["ago"] = ago
templates.env.tests["recent"] = is_recent


@dataclass(frozen=True)
class SlotRow:
    starts_at: datetime
    ends_at: datetime
    campaign: str
    status: str
    note: str | None


@dataclass(frozen=True)
class DayRundown:
    label: str
    day: date
    slots: list[SlotRow]


@dataclass(frozen=True)
class PlayRow:
    occurred_at: datetime
    kind: str
    campaign: str | None
    position_ms: int | None
    reason: str | None


@dataclass(frozen=True)
class EndpointDetail:
    endpoint: EndpointOut
    address: str | None
    firmware: str | None
    days: list[DayRundown]
    history: list[PresenceEvent]
    plays: list[PlayRow]


def _day_rundown(session: Session, endpoint_id: int, day: date, tz: ZoneInfo, label: str) -> DayRundown:
    start = datetime.combine(day, time(), tzinfo=tz)
    query = (
        select(RundownSlot, Campaign.name)
        .join(Campaign, col(Campaign.id) == RundownSlot.campaign_id)
        .where(RundownSlot.endpoint_id == endpoint_id)
        .where(col(RundownSlot.starts_at) >= start, col(RundownSlot.starts_at) < start + timedelta(days=1))
        .order_by(col(RundownSlot.starts_at), col(RundownSlot.id))
    )
    slots = [
        SlotRow(slot.starts_at, slot.ends_at, name, slot.status.value, slot.detail or slot.reason)
        for slot, name in session.exec(query).all()
    ]
    return DayRundown(label, day, slots)


def _recent_plays(session: Session, endpoint_id: int) -> list[PlayRow]:
    query = (
        select(PlayEvent, Campaign.name)
        .outerjoin(RundownSlot, col(RundownSlot.id) == PlayEvent.slot_id)
        .outerjoin(Campaign, col(Campaign.id) == RundownSlot.campaign_id)
        .where(PlayEvent.endpoint_id == endpoint_id)
        .order_by(col(PlayEvent.occurred_at).desc(), col(PlayEvent.id).desc())
        .limit(RECENT)
    )
    return [
        PlayRow(event.occurred_at, event.type.value, name, event.position_ms, event.reason)
        for event, name in session.exec(query).all()
    ]


def endpoint_detail(session: Session, *, endpoint: Endpoint, tz: ZoneInfo) -> EndpointDetail:
    today = utc_now().astimezone(tz).date()
    endpoint_id = endpoint.id or 0
    return EndpointDetail(
        endpoint=regions.endpoint_outs(session, [endpoint])[0],
        address=endpoint.address,
        firmware=endpoint.firmware,
        days=[
            _day_rundown(session, endpoint_id, today, tz, "今天"),
            _day_rundown(session, endpoint_id, today + timedelta(days=1), tz, "明天"),
        ],
        history=presence_history(session, endpoint_id=endpoint_id, limit=RECENT),
        plays=_recent_plays(session, endpoint_id),
    )


def _page(request: Request, user: User, detail: EndpointDetail, *, notice: str | None = None) -> Response:
    return render(
        request,
        "endpoint_detail.html",
        user=user,
        section=ENDPOINTS,
        detail=detail,
        notice=notice,
        can_push=user.role in PUSHERS,
        tag_labels=TAG_LABELS,
        status_labels=endpoint_pages.STATUS_LABELS,
        reason_labels=REASON_LABELS,
        play_labels=PLAY_LABELS,
        slot_labels=SLOT_LABELS,
    )


@router.get("/endpoints/presence")
def presence_poll(
    request: Request,
    session: SessionDep,
    user: EndpointsUser,
    query: Annotated[endpoint_pages.EndpointQuery, Query()],
) -> Response:
    """The list's results fragment again, for the 5 s presence poll (the address bar stays)."""
    listing = endpoint_pages.list_page(session, query=query, scope=village_scope(session, user))
    context: dict[str, Any] = {"tag_labels": TAG_LABELS, "status_labels": endpoint_pages.STATUS_LABELS}
    return render(request, "_endpoint_results.html", user=user, section=ENDPOINTS, listing=listing, **context)


@router.get("/endpoints/{code}")
def endpoint_page(
    request: Request, code: str, session: SessionDep, settings: SettingsDep, user: EndpointsUser
) -> Response:
    endpoint = regions.get_endpoint_or_raise(session, code, scope=village_scope(session, user))
    return _page(request, user, endpoint_detail(session, endpoint=endpoint, tz=settings.tz))


@router.post("/endpoints/{code}/refresh")
def notify_refresh(
    request: Request, code: str, session: SessionDep, settings: SettingsDep, user: EndpointsUser
) -> Response:
    """Ask the speaker to fetch its rundown again now (a signed ``rundown_changed`` push)."""
    endpoint = regions.get_endpoint_or_raise(session, code, scope=village_scope(session, user))
    if user.role not in PUSHERS:
        raise Forbidden("只有管理员和值班员可以通知终端刷新播出单")
    envelope = publish_push(
        request.app,
        session,
        targets=[endpoint.id or 0],
        payload_type="rundown_changed",
        body={},
        settings=settings,
    )
    audit.record(
        session,
        actor=actor_of(request, user),
        action="endpoint.notify_refresh",
        entity_type="endpoint",
        entity_id=endpoint.id,
        after={"code": endpoint.code, "seq": envelope["payload"]["seq"]},
    )
    notice = f"已通知终端 {endpoint.code} 刷新播出单（推送序号 {envelope['payload']['seq']}）"
    return _page(request, user, endpoint_detail(session, endpoint=endpoint, tz=settings.tz), notice=notice)
