"""预警中心 (/console/alerts): the duty officer's desk.

Compose a draft (text for the offline engine, or a recorded clip from the library; its audio is
made at once), confirm it against the reach and the drill flag shown, have a second person
approve levels I-II (or break the glass with a reason), then watch the live delivery board,
update or cancel with the prepared all-clear. Every step calls the alert service directly, so
the console and the API refuse exactly the same things with the same Chinese message.
"""

from __future__ import annotations

from collections.abc import Callable
from math import ceil
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from sqlmodel import Session, col, func, select
from starlette.responses import RedirectResponse, Response

from broadcast.alerts import delivery, service
from broadcast.alerts.models import CATEGORY_LABELS, LEVEL_COLOURS, LEVEL_NAMES, Alert, AlertStatus
from broadcast.alerts.outputs import alert_out, alert_outs
from broadcast.alerts.program import DRILL_CLOSING, DRILL_OPENING
from broadcast.alerts.routes import wake_of
from broadcast.alerts.schemas import MAX_TEXT, AlertCreate, AlertUpdateIn, BreakGlassIn, CancelIn, SendIn
from broadcast.auth.models import User
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.console.access import require_section
from broadcast.console.alert_clips import clip_choices, played_clip
from broadcast.console.alert_form import (
    LABELS,
    MESSAGE_KINDS,
    AlertForm,
    UpdateForm,
    alert_form,
    update_form,
)
from broadcast.console.campaign_choices import describe_target, picker_choices
from broadcast.console.library import actor_of, attempt, parse_form, respond
from broadcast.console.nav import section_named
from broadcast.console.templating import render
from broadcast.content.store import get_store
from broadcast.deps import SessionDep, SettingsDep
from broadcast.errors import BroadcastError, Invalid
from broadcast.pagination import PageParams

ALERTS = section_named("alerts")
PAGE_URL = "/console/alerts"
HISTORY_SIZE = 30
UNREACHED_SHOWN = 200
DEFAULT_CANCEL_REASON = "险情已解除"
NOTICES = {
    "send": "已发送，终端正在接收",
    "confirm": "已确认，等待另一位值班员或管理员审批",
    "approve": "已审批，预警已发出",
    "break-glass": "已越级发布，理由已记入审计日志",
    "update": "已更新，终端将改播新版本",
    "cancel": "已解除，终端停止播放",
    "discard": "草稿已作废",
}

LEVELS = [(level, LEVEL_NAMES[level], LEVEL_COLOURS[level]) for level in sorted(LEVEL_NAMES)]

AlertsUser = Annotated[User, Depends(require_section(ALERTS))]
ComposeDep = Annotated[AlertForm, Depends(alert_form)]
UpdateDep = Annotated[UpdateForm, Depends(update_form)]

router = APIRouter()


def _history(session: Session, page: int) -> tuple[int, list[Alert]]:
    total = session.exec(select(func.count()).select_from(Alert)).one()
    query = select(Alert).order_by(col(Alert.id).desc()).limit(HISTORY_SIZE).offset((page - 1) * HISTORY_SIZE)
    return total, list(session.exec(query).all())


def _desk(
    request: Request,
    session: Session,
    settings: Settings,
    *,
    user: User,
    form: AlertForm,
    page: int = 1,
    error: BroadcastError | None = None,
) -> Response:
    total, rows = _history(session, page)
    return respond(
        request,
        "alerts.html",
        user=user,
        section=ALERTS,
        error=error,
        form=form,
        picker=picker_choices(session),
        levels=LEVELS,
        categories=CATEGORY_LABELS,
        max_text=MAX_TEXT,
        message_kinds=MESSAGE_KINDS,
        clips=clip_choices(session, get_store(settings)),
        drill_framing=(DRILL_OPENING, DRILL_CLOSING),
        history=alert_outs(session, rows, settings),
        total=total,
        page=page,
        pages=max(1, ceil(total / HISTORY_SIZE)),
    )


@router.get("/alerts")
def desk(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AlertsUser,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    form = AlertForm.fresh(now=utc_now(), tz=settings.tz)
    return _desk(request, session, settings, user=user, form=form, page=page)


@router.post("/alerts")
def compose(
    request: Request, session: SessionDep, settings: SettingsDep, user: AlertsUser, form: ComposeDep
) -> Response:
    """The draft: a repeat of the same form (same request_key) lands on the same alert."""
    try:
        body = form.body(
            settings.tz, clips_listed=lambda: bool(clip_choices(session, get_store(settings)).items)
        )
    except Invalid as exc:
        return _desk(request, session, settings, user=user, form=form, error=exc)
    data = parse_form(AlertCreate, body, LABELS)
    result = (
        data
        if isinstance(data, Invalid)
        else attempt(
            session,
            lambda: service.create_alert(
                session,
                data=data,
                user=user,
                actor=actor_of(request, user),
                store=get_store(settings),
                settings=settings,
                now=utc_now(),
            )[0],
        )
    )
    if isinstance(result, BroadcastError):
        return _desk(request, session, settings, user=user, form=form, error=result)
    return RedirectResponse(f"{PAGE_URL}/{result.id}", status_code=303)


def _board_context(session: Session, alert: Alert) -> dict[str, Any]:
    """The delivery board and the speakers not reached yet (only once the alert went out)."""
    if alert.sent_at is None:
        return {"board": None, "unreached": [], "unreached_total": 0}
    total, unreached = delivery.deliveries(
        session,
        alert=alert,
        shown="unreached",
        village=None,
        params=PageParams(limit=UNREACHED_SHOWN, offset=0),
    )
    return {
        "board": delivery.board(session, alert=alert),
        "unreached": unreached,
        "unreached_total": total,
        "polling": alert.status == AlertStatus.active,
    }


def _detail(
    request: Request,
    session: Session,
    settings: Settings,
    *,
    user: User,
    alert_id: int,
    error: BroadcastError | None = None,
    notice: str | None = None,
    update: UpdateForm | None = None,
    reason: str = "",
) -> Response:
    alert = service.get_alert_or_raise(session, alert_id)
    waiting = alert.status in (AlertStatus.draft, AlertStatus.awaiting_approval)
    # What the confirmation shows is what the confirm button posts back (the service re-checks it).
    preview = attempt(session, lambda: service.reach_of(session, alert.selector)) if waiting else None
    if isinstance(preview, BroadcastError):
        error, preview = error or preview, None
    authors = (alert.created_by, alert.confirmed_by)
    return respond(
        request,
        "alerts_detail.html",
        user=user,
        section=ALERTS,
        error=error,
        notice=notice,
        alert=alert_out(session, alert, settings),
        preview=preview,
        target_text=describe_target(alert.selector, picker_choices(session).names()),
        can_approve=alert.status == AlertStatus.awaiting_approval and user.id not in authors,
        clip=played_clip(session, alert),
        drill_framing=(DRILL_OPENING, DRILL_CLOSING),
        update=update or UpdateForm.of(alert, settings.tz),
        update_refused=update is not None and error is not None,
        reason=reason,
        default_reason=DEFAULT_CANCEL_REASON,
        levels=LEVELS,
        max_text=MAX_TEXT,
        **_board_context(session, alert),
    )


@router.get("/alerts/{alert_id}")
def alert_page(
    alert_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AlertsUser,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return _detail(request, session, settings, user=user, alert_id=alert_id, notice=NOTICES.get(done))


@router.get("/alerts/{alert_id}/board")
def board_fragment(alert_id: int, request: Request, session: SessionDep, user: AlertsUser) -> Response:
    """The live board alone, polled every 2 s while the alert is active."""
    alert = service.get_alert_or_raise(session, alert_id)
    return render(request, "alerts_board.html", user=user, alert=alert, **_board_context(session, alert))


Step = Callable[[Alert], Alert]


def _step(
    request: Request,
    session: Session,
    settings: Settings,
    *,
    user: User,
    alert_id: int,
    run: Step | Invalid,
    done: Callable[[Alert], str],
    update: UpdateForm | None = None,
    reason: str = "",
) -> Response:
    """One workflow step: on success back to the alert's page; on refusal the page with the reason."""
    alert = service.get_alert_or_raise(session, alert_id)
    result = run if isinstance(run, Invalid) else attempt(session, lambda: run(alert))
    if isinstance(result, BroadcastError):
        return _detail(
            request,
            session,
            settings,
            user=user,
            alert_id=alert_id,
            error=result,
            update=update,
            reason=reason,
        )
    return RedirectResponse(f"{PAGE_URL}/{alert_id}?done={done(result)}", status_code=303)


def _parsed(model: type[Any], body: dict[str, Any], make: Callable[[Any], Step]) -> Step | Invalid:
    data = parse_form(model, body, LABELS)
    return data if isinstance(data, Invalid) else make(data)


Reach = Annotated[str, Form(max_length=20)]
Drill = Annotated[str, Form(max_length=20)]


@router.post("/alerts/{alert_id}/send")
def send(
    alert_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AlertsUser,
    reach: Reach = "",
    drill: Drill = "",
) -> Response:
    def make(data: SendIn) -> Step:
        return lambda alert: service.send_alert(
            session, alert=alert, data=data, user=user, actor=actor_of(request, user),
            settings=settings, now=utc_now(), wake=wake_of(request),
        )  # fmt: skip

    run = _parsed(SendIn, {"reach": reach, "drill": drill}, make)
    return _step(
        request, session, settings, user=user, alert_id=alert_id, run=run,
        done=lambda alert: "send" if alert.status == AlertStatus.active else "confirm",
    )  # fmt: skip


@router.post("/alerts/{alert_id}/approve")
def approve(
    alert_id: int, request: Request, session: SessionDep, settings: SettingsDep, user: AlertsUser
) -> Response:
    def run(alert: Alert) -> Alert:
        return service.approve_alert(
            session, alert=alert, user=user, actor=actor_of(request, user),
            settings=settings, now=utc_now(), wake=wake_of(request),
        )  # fmt: skip

    return _step(request, session, settings, user=user, alert_id=alert_id, run=run, done=lambda _: "approve")


@router.post("/alerts/{alert_id}/break-glass")
def break_glass(
    alert_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AlertsUser,
    reach: Reach = "",
    drill: Drill = "",
    reason: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    def make(data: BreakGlassIn) -> Step:
        return lambda alert: service.break_glass(
            session, alert=alert, data=data, user=user, actor=actor_of(request, user),
            settings=settings, now=utc_now(), wake=wake_of(request),
        )  # fmt: skip

    run = _parsed(BreakGlassIn, {"reach": reach, "drill": drill, "reason": reason}, make)
    return _step(
        request, session, settings, user=user, alert_id=alert_id, run=run,
        done=lambda _: "break-glass", reason=reason,
    )  # fmt: skip


@router.post("/alerts/{alert_id}/update")
def update(
    alert_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AlertsUser,
    form: UpdateDep,
) -> Response:
    def make(data: AlertUpdateIn) -> Step:
        return lambda alert: service.update_alert(
            session, alert=alert, data=data, user=user, actor=actor_of(request, user),
            store=get_store(settings), settings=settings, now=utc_now(), wake=wake_of(request),
        )  # fmt: skip

    alert = service.get_alert_or_raise(session, alert_id)
    try:
        run = _parsed(AlertUpdateIn, form.body(alert, settings.tz), make)
    except Invalid as exc:
        run = exc
    return _step(
        request, session, settings, user=user, alert_id=alert_id, run=run,
        done=lambda _: "update", update=form,
    )  # fmt: skip


@router.post("/alerts/{alert_id}/cancel")
def cancel(
    alert_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AlertsUser,
    reason: Annotated[str, Form(max_length=5000)] = "",
    all_clear: Annotated[bool, Form()] = False,
) -> Response:
    """One step: stop the alert everywhere and play the prepared all-clear (or discard a draft)."""

    def make(data: CancelIn) -> Step:
        return lambda alert: service.cancel_alert(
            session, alert=alert, data=data, user=user, actor=actor_of(request, user),
            settings=settings, now=utc_now(), wake=wake_of(request),
        )  # fmt: skip

    run = _parsed(CancelIn, {"reason": reason, "all_clear": all_clear}, make)
    return _step(
        request, session, settings, user=user, alert_id=alert_id, run=run,
        done=lambda alert: "cancel" if alert.status == AlertStatus.cancelled else "discard", reason=reason,
    )  # fmt: skip
