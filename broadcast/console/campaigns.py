"""宣传计划 (/console/campaigns): the list, the editor with its target picker, a campaign's page
with the workflow buttons and the conflict report, and its .ics feed.

Duty officers may read campaigns (as the API lets them); writing and approving needs a
propagandist or an admin, and approval someone other than the author (the service refuses it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from broadcast.auth.audit import Actor
from broadcast.auth.models import User
from broadcast.config import Settings
from broadcast.console.access import require_section
from broadcast.console.campaign_choices import (
    ALL,
    all_playlists,
    describe_target,
    picker_choices,
    playlist_choice,
)
from broadcast.console.campaign_form import (
    LABELS,
    PRESETS,
    PRIORITIES,
    CampaignForm,
    TargetForm,
    campaign_form,
    target_form,
)
from broadcast.console.library import actor_of, attempt, parse_form, respond
from broadcast.console.nav import CONTENT_STAFF, section_named
from broadcast.console.templating import render, templates
from broadcast.deps import SessionDep, SettingsDep
from broadcast.errors import BroadcastError, Forbidden, Invalid, NotFound
from broadcast.scheduling import service
from broadcast.scheduling.conflicts import campaign_conflicts
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.outputs import campaign_out, campaign_outs
from broadcast.scheduling.schemas import STATUS_NAMES, CampaignCreate, CampaignUpdate, RejectIn
from broadcast.targets import service as targets
from broadcast.targets.schemas import Selector

CAMPAIGNS = section_named("campaigns")
PAGE_URL = "/console/campaigns"
_S = CampaignStatus


def require_editor(user: Annotated[User, Depends(require_section(CAMPAIGNS))]) -> User:
    if user.role not in CONTENT_STAFF:
        raise Forbidden("值班员可以查看宣传计划，新建、修改和审批需由宣传人员或管理员操作")
    return user


CampaignsUser = Annotated[User, Depends(require_section(CAMPAIGNS))]
EditorUser = Annotated[User, Depends(require_editor)]
FormDep = Annotated[CampaignForm, Depends(campaign_form)]
TargetDep = Annotated[TargetForm, Depends(target_form)]

Action = Callable[[Session, Campaign, Actor, str], Campaign]
ACTIONS: dict[str, Action] = {
    "submit": lambda s, c, a, _: service.submit_campaign(s, campaign=c, actor=a),
    "withdraw": lambda s, c, a, _: service.withdraw_campaign(s, campaign=c, actor=a),
    "approve": lambda s, c, a, _: service.approve_campaign(s, campaign=c, actor=a),
    "reject": lambda s, c, a, reason: service.reject_campaign(s, campaign=c, actor=a, reason=reason),
    "pause": lambda s, c, a, _: service.pause_campaign(s, campaign=c, actor=a),
    "resume": lambda s, c, a, _: service.resume_campaign(s, campaign=c, actor=a),
    "end": lambda s, c, a, _: service.end_campaign(s, campaign=c, actor=a),
}
NOTICES = {
    "create": "已保存为草稿；确认无误后「提交审批」",
    "update": "已保存修改",
    "submit": "已提交审批，请等待另一位宣传人员或管理员审批",
    "withdraw": "已撤回为草稿，可以修改后重新提交",
    "approve": "已审批通过，季节开始后自动播出",
    "reject": "已退回为草稿",
    "pause": "已暂停，暂停期间不播出",
    "resume": "已恢复播出",
    "end": "已结束，不再播出",
}
# The buttons each status offers (approve and reject only to someone other than the author).
BUTTONS = {
    _S.draft: ("submit",),
    _S.submitted: ("approve", "reject", "withdraw"),
    _S.approved: ("pause", "end", "withdraw"),
    _S.active: ("pause", "end"),
    _S.paused: ("resume", "end", "withdraw"),
    _S.ended: (),
}
BUTTON_LABELS = {
    "submit": "提交审批",
    "withdraw": "撤回为草稿",
    "approve": "审批通过",
    "reject": "退回",
    "pause": "暂停",
    "resume": "恢复",
    "end": "结束",
}

router = APIRouter()
templates.env.filters["campaign_status"] = lambda value: STATUS_NAMES[CampaignStatus(value)]


class CampaignQuery(BaseModel):
    status: CampaignStatus | None = None
    q: str = Field(default="", max_length=64)


@router.get("/campaigns")
def campaign_list(
    request: Request, session: SessionDep, user: CampaignsUser, query: Annotated[CampaignQuery, Query()]
) -> Response:
    total, rows = service.list_campaigns(session, params=ALL, status=query.status, q=query.q.strip() or None)
    return render(
        request,
        "campaigns.html",
        user=user,
        section=CAMPAIGNS,
        query=query,
        total=total,
        campaigns=campaign_outs(session, rows),
        statuses=STATUS_NAMES,
        priorities=PRIORITIES,
        can_edit=user.role in CONTENT_STAFF,
    )


def _editor(
    request: Request,
    session: Session,
    *,
    user: User,
    form: CampaignForm,
    campaign: Campaign | None = None,
    error: BroadcastError | None = None,
) -> Response:
    return respond(
        request,
        "campaigns_editor.html",
        user=user,
        section=CAMPAIGNS,
        error=error,
        form=form,
        campaign=campaign,
        playlists=all_playlists(session),
        choice=playlist_choice(session, form.playlist_id, form.revision),
        picker=picker_choices(session),
        presets=PRESETS,
        priorities=PRIORITIES,
    )


@router.get("/campaigns/new")
def new_campaign(request: Request, session: SessionDep, user: EditorUser) -> Response:
    return _editor(request, session, user=user, form=CampaignForm())


@router.post("/campaigns")
def create_campaign(
    request: Request, session: SessionDep, settings: SettingsDep, user: EditorUser, form: FormDep
) -> Response:
    data = parse_form(CampaignCreate, form.body(settings.tz), LABELS)
    result = (
        data
        if isinstance(data, Invalid)
        else attempt(
            session,
            lambda: service.create_campaign(
                session, data=data, actor=actor_of(request, user), tz=settings.tz
            ),
        )
    )
    if isinstance(result, BroadcastError):
        return _editor(request, session, user=user, form=form, error=result)
    return RedirectResponse(f"{PAGE_URL}/{result.id}?done=create", status_code=303)


@router.post("/campaigns/preview")
def target_preview(request: Request, session: SessionDep, user: CampaignsUser, target: TargetDep) -> Response:
    """The live "将覆盖 N 个终端" count under the picker, with where they are."""
    selector = parse_form(Selector, target.selector(), LABELS)
    if isinstance(selector, Invalid):
        return render(request, "campaigns_preview.html", user=user, preview=None, error=None)
    preview = attempt(session, lambda: targets.preview(session, selector=selector))
    if isinstance(preview, BroadcastError):
        return respond(request, "campaigns_preview.html", user=user, section=CAMPAIGNS, error=preview)
    return render(request, "campaigns_preview.html", user=user, preview=preview, error=None)


@router.get("/campaigns/playlist")
def playlist_fields(
    request: Request,
    session: SessionDep,
    user: CampaignsUser,
    playlist_id: Annotated[str, Query(max_length=20)] = "",
    revision: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The revision choice and custom fields once a playlist is picked (fields start empty)."""
    form = CampaignForm(playlist_id=playlist_id, revision=revision)
    choice = playlist_choice(session, playlist_id, revision)
    return render(request, "campaigns_playlist.html", user=user, form=form, choice=choice)


def _detail(
    request: Request,
    session: Session,
    settings: Settings,
    *,
    user: User,
    campaign_id: int,
    error: BroadcastError | None = None,
    notice: str | None = None,
) -> Response:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    editor = user.role in CONTENT_STAFF
    authors = (campaign.created_by, campaign.submitted_by)
    buttons = [
        b for b in BUTTONS[campaign.status] if b not in ("approve", "reject") or user.id not in authors
    ]
    report = None
    if campaign.status == _S.submitted:
        report = attempt(session, lambda: campaign_conflicts(session, campaign=campaign, settings=settings))
    return respond(
        request,
        "campaigns_detail.html",
        user=user,
        section=CAMPAIGNS,
        error=error,
        notice=notice,
        campaign=campaign_out(session, campaign),
        target_text=describe_target(campaign.selector, picker_choices(session).names()),
        priority_label=PRIORITIES.get(campaign.priority, f"自定义 {campaign.priority}"),
        buttons=buttons if editor else [],
        button_labels=BUTTON_LABELS,
        can_edit=editor and campaign.status == _S.draft,
        report=report,
    )


@router.get("/campaigns/{campaign_id}")
def campaign_detail(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CampaignsUser,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    notice = NOTICES.get(done)
    return _detail(request, session, settings, user=user, campaign_id=campaign_id, notice=notice)


@router.get("/campaigns/{campaign_id}/edit")
def edit_campaign(
    campaign_id: int, request: Request, session: SessionDep, settings: SettingsDep, user: EditorUser
) -> Response:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    revision = campaign_out(session, campaign).revision
    form = CampaignForm.of(campaign, revision=revision, tz=settings.tz)
    return _editor(request, session, user=user, form=form, campaign=campaign)


@router.post("/campaigns/{campaign_id}")
def update_campaign(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: EditorUser,
    form: FormDep,
) -> Response:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    data = parse_form(CampaignUpdate, form.body(settings.tz), LABELS)
    result = (
        data
        if isinstance(data, Invalid)
        else attempt(
            session,
            lambda: service.update_campaign(
                session, campaign=campaign, data=data, actor=actor_of(request, user), tz=settings.tz
            ),
        )
    )
    if isinstance(result, BroadcastError):
        kept = service.get_campaign_or_raise(session, campaign_id)
        return _editor(request, session, user=user, form=form, campaign=kept, error=result)
    return RedirectResponse(f"{PAGE_URL}/{campaign_id}?done=update", status_code=303)


@router.post("/campaigns/{campaign_id}/delete")
def delete_campaign(
    campaign_id: int, request: Request, session: SessionDep, settings: SettingsDep, user: EditorUser
) -> Response:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    result = attempt(
        session, lambda: service.delete_campaign(session, campaign=campaign, actor=actor_of(request, user))
    )
    if isinstance(result, BroadcastError):
        return _detail(request, session, settings, user=user, campaign_id=campaign_id, error=result)
    return RedirectResponse(PAGE_URL, status_code=303)


@router.get("/campaigns/{campaign_id}/conflicts")
def conflicts_fragment(
    campaign_id: int, request: Request, session: SessionDep, settings: SettingsDep, user: CampaignsUser
) -> Response:
    campaign = service.get_campaign_or_raise(session, campaign_id)
    report = attempt(session, lambda: campaign_conflicts(session, campaign=campaign, settings=settings))
    return render(request, "campaigns_conflicts.html", user=user, report=report)


@router.post("/campaigns/{campaign_id}/{action}")
def campaign_action(
    campaign_id: int,
    action: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: EditorUser,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    run = ACTIONS.get(action)
    if run is None:
        raise NotFound("没有这个操作，请返回宣传计划页面后使用页面上的按钮")
    campaign = service.get_campaign_or_raise(session, campaign_id)
    checked = parse_form(RejectIn, {"reason": reason.strip()}, {"reason": "退回原因"})
    if action == "reject" and isinstance(checked, Invalid):
        return _detail(request, session, settings, user=user, campaign_id=campaign_id, error=checked)
    result = attempt(session, lambda: run(session, campaign, actor_of(request, user), reason.strip()))
    if isinstance(result, BroadcastError):
        return _detail(request, session, settings, user=user, campaign_id=campaign_id, error=result)
    return RedirectResponse(f"{PAGE_URL}/{campaign_id}?done={action}", status_code=303)
