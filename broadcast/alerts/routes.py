"""The alert desk's API under /api/v1/alerts: duty officers and admins only.

Every state change takes the person from the login and writes the audit log; the push leaves
through the outbox after the commit (``wake`` only hurries the local relay).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from sqlmodel import col, func, select

from broadcast.alerts import delivery, service
from broadcast.alerts.models import Alert, AlertStatus
from broadcast.alerts.outputs import alert_out, alert_outs, draft_out
from broadcast.alerts.schemas import (
    AlertCreate,
    AlertDraftOut,
    AlertOut,
    AlertUpdateIn,
    Board,
    BreakGlassIn,
    CancelIn,
    DeliveryOut,
    SendIn,
)
from broadcast.clock import utc_now
from broadcast.content.store import get_store
from broadcast.deps import ActorDep, DutyUser, SessionDep, SettingsDep
from broadcast.pagination import Page, PageDep
from broadcast.targets.schemas import TargetPreview

router = APIRouter(prefix="/alerts", tags=["alerts"])

Shown = Literal["sent", "delivered", "playing", "completed", "interrupted", "failed", "offline", "unreached"]


def wake_of(request: Request) -> Callable[[], None] | None:
    """This server's outbox relay, woken after the commit (None when no gateway runs here)."""
    runtime = getattr(request.app.state, "dispatch", None)
    wake: Callable[[], None] | None = getattr(runtime, "wake_outbox", None)
    return wake


@router.post(
    "",
    response_model=AlertDraftOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "同一 request_key 的重复提交：返回已有草稿"}},
)
def create_alert(
    data: AlertCreate,
    session: SessionDep,
    settings: SettingsDep,
    user: DutyUser,
    actor: ActorDep,
    response: Response,
) -> AlertDraftOut:
    """Draft an alert: its audio is made now; the answer shows where it would go."""
    alert, created = service.create_alert(
        session,
        data=data,
        user=user,
        actor=actor,
        store=get_store(settings),
        settings=settings,
        now=utc_now(),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return draft_out(session, alert, service.reach_of(session, alert.selector), settings)


@router.get("", response_model=Page[AlertOut])
def list_alerts(
    session: SessionDep,
    settings: SettingsDep,
    _: DutyUser,
    page: PageDep,
    status_: Annotated[AlertStatus | None, Query(alias="status", description="按状态筛选")] = None,
    drill: Annotated[bool | None, Query(description="true 只看演练，false 只看真实预警")] = None,
) -> Page[AlertOut]:
    query = select(Alert)
    if status_ is not None:
        query = query.where(Alert.status == status_)
    if drill is not None:
        query = query.where(Alert.drill == drill)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Alert.id).desc()).limit(page.limit).offset(page.offset)).all()
    return Page(total=total, limit=page.limit, offset=page.offset, items=alert_outs(session, rows, settings))


@router.get("/{alert_id}", response_model=AlertOut)
def get_alert(alert_id: int, session: SessionDep, settings: SettingsDep, _: DutyUser) -> AlertOut:
    return alert_out(session, service.get_alert_or_raise(session, alert_id), settings)


@router.get("/{alert_id}/preview", response_model=TargetPreview)
def preview_alert(alert_id: int, session: SessionDep, _: DutyUser) -> TargetPreview:
    """Where the alert would go now: what the confirmation dialog shows."""
    return service.reach_of(session, service.get_alert_or_raise(session, alert_id).selector)


@router.post("/{alert_id}/send", response_model=AlertOut)
def send_alert(
    alert_id: int,
    data: SendIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: DutyUser,
    actor: ActorDep,
) -> AlertOut:
    """Confirm with the reach and drill flag shown: sent now, or waiting for approval (levels I-II)."""
    alert = service.send_alert(
        session,
        alert=service.get_alert_or_raise(session, alert_id),
        data=data,
        user=user,
        actor=actor,
        settings=settings,
        now=utc_now(),
        wake=wake_of(request),
    )
    return alert_out(session, alert, settings)


@router.post("/{alert_id}/approve", response_model=AlertOut)
def approve_alert(
    alert_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: DutyUser,
    actor: ActorDep,
) -> AlertOut:
    """A second duty officer or an admin approves; the alert goes out."""
    alert = service.approve_alert(
        session,
        alert=service.get_alert_or_raise(session, alert_id),
        user=user,
        actor=actor,
        settings=settings,
        now=utc_now(),
        wake=wake_of(request),
    )
    return alert_out(session, alert, settings)


@router.post("/{alert_id}/break-glass", response_model=AlertOut)
def break_glass(
    alert_id: int,
    data: BreakGlassIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: DutyUser,
    actor: ActorDep,
) -> AlertOut:
    """Send a level I-II alert alone, with a written reason (audited)."""
    alert = service.break_glass(
        session,
        alert=service.get_alert_or_raise(session, alert_id),
        data=data,
        user=user,
        actor=actor,
        settings=settings,
        now=utc_now(),
        wake=wake_of(request),
    )
    return alert_out(session, alert, settings)


@router.post("/{alert_id}/update", response_model=AlertOut)
def update_alert(
    alert_id: int,
    data: AlertUpdateIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: DutyUser,
    actor: ActorDep,
) -> AlertOut:
    """A new revision of a sent alert; speakers replace the old one at once."""
    alert = service.update_alert(
        session,
        alert=service.get_alert_or_raise(session, alert_id),
        data=data,
        user=user,
        actor=actor,
        store=get_store(settings),
        settings=settings,
        now=utc_now(),
        wake=wake_of(request),
    )
    return alert_out(session, alert, settings)


@router.post("/{alert_id}/cancel", response_model=AlertOut)
def cancel_alert(
    alert_id: int,
    data: CancelIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: DutyUser,
    actor: ActorDep,
) -> AlertOut:
    """Stop it everywhere, with the prepared all-clear (or withdraw a draft)."""
    alert = service.cancel_alert(
        session,
        alert=service.get_alert_or_raise(session, alert_id),
        data=data,
        user=user,
        actor=actor,
        settings=settings,
        now=utc_now(),
        wake=wake_of(request),
    )
    return alert_out(session, alert, settings)


@router.get("/{alert_id}/board", response_model=Board)
def alert_board(alert_id: int, session: SessionDep, _: DutyUser) -> Board:
    """Live totals: sent, delivered, playing, completed, failed, offline; by town and village."""
    return delivery.board(session, alert=service.get_alert_or_raise(session, alert_id))


@router.get("/{alert_id}/deliveries", response_model=Page[DeliveryOut])
def alert_deliveries(
    alert_id: int,
    session: SessionDep,
    _: DutyUser,
    page: PageDep,
    state: Annotated[Shown | None, Query(description="按状态筛选；unreached = 尚未送达（含离线）")] = None,
    village: Annotated[str | None, Query(max_length=12, description="村（社区）代码")] = None,
) -> Page[DeliveryOut]:
    """Per endpoint: state and latencies; ``state=unreached`` is the list of speakers not reached."""
    alert = service.get_alert_or_raise(session, alert_id)
    total, items = delivery.deliveries(session, alert=alert, shown=state, village=village, params=page)
    return Page(total=total, limit=page.limit, offset=page.offset, items=items)
