"""Use cases for campaigns (宣传计划): create, edit (drafts only), list, and the approval workflow.

Workflow: draft → submitted → approved (by someone other than the author or submitter) → active
(once its season starts) → ended (after its season); approved/active ↔ paused. ``withdraw`` takes
a submitted, approved or paused campaign back to draft, the only state that can be edited, so an
approved campaign never changes under its approval. Only approved and active campaigns play;
every transition that changes what plays asks for a rundown refresh in the same transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date, datetime, tzinfo
from typing import Any
from uuid import uuid4

from sqlalchemy import func
from sqlmodel import Session, col, select

from broadcast.auth import audit
from broadcast.auth.audit import SYSTEM, Actor
from broadcast.clock import utc_now
from broadcast.errors import Conflict, Forbidden, Invalid, NotFound
from broadcast.pagination import PageParams, paginate
from broadcast.playlists.models import Playlist, PlaylistRevision, Render, RenderStatus
from broadcast.scheduling.checks import (
    build_recurrence,
    check_plays,
    check_selector,
    check_times_in_windows,
    check_windows,
    resolve_revision,
    scheduling,
    season_of,
)
from broadcast.scheduling.compiler import BroadcastWindow, CampaignSpec, ClassId
from broadcast.scheduling.models import Campaign, CampaignStatus
from broadcast.scheduling.recurrence import SHANGHAI, Recurrence, Season
from broadcast.scheduling.refresh import request_refresh
from broadcast.scheduling.schemas import STATUS_NAMES, CampaignCreate, CampaignUpdate
from broadcast.targets.schemas import Selector

PLAYING = frozenset({CampaignStatus.approved, CampaignStatus.active})
_S = CampaignStatus


def local_today(tz: tzinfo = SHANGHAI) -> date:
    return utc_now().astimezone(tz).date()


def get_campaign_or_raise(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"宣传计划 {campaign_id} 不存在")
    return campaign


def get_campaign_by_key(session: Session, key: str) -> Campaign | None:
    return session.exec(select(Campaign).where(Campaign.key == key)).first()


def list_campaigns(
    session: Session, *, params: PageParams, status: CampaignStatus | None = None, q: str | None = None
) -> tuple[int, list[Campaign]]:
    query = select(Campaign).order_by(col(Campaign.season_start), col(Campaign.id))
    if status is not None:
        query = query.where(Campaign.status == status)
    if q:
        pattern = f"%{q}%"
        query = query.where(col(Campaign.name).ilike(pattern) | col(Campaign.key).ilike(pattern))
    return paginate(session, query, params)


def list_by_status(session: Session, statuses: Iterable[CampaignStatus]) -> list[Campaign]:
    """Campaigns in these states, by id (``PLAYING`` gives the ones the materializer compiles)."""
    query = select(Campaign).where(col(Campaign.status).in_(list(statuses))).order_by(col(Campaign.id))
    return list(session.exec(query).all())


def recurrence_of(campaign: Campaign, *, tz: tzinfo = SHANGHAI) -> Recurrence:
    """The stored RFC 5545 parts as a :class:`Recurrence` in local time, with season and exception days."""
    return Recurrence(
        dtstart=campaign.dtstart.astimezone(tz),
        rrule=campaign.rrule,
        rdates=tuple(datetime.fromisoformat(text).astimezone(tz) for text in campaign.rdates),
        exdates=tuple(datetime.fromisoformat(text).astimezone(tz) for text in campaign.exdates),
        season=Season(campaign.season_start, campaign.season_end),
        exception_days=frozenset(date.fromisoformat(text) for text in campaign.exception_dates),
    )


def campaign_spec(
    campaign: Campaign, *, duration_ms: int, classes: frozenset[ClassId], tz: tzinfo = SHANGHAI
) -> CampaignSpec:
    """What the pure compiler needs of this campaign, given its program length and target classes."""
    return CampaignSpec(
        id=campaign.id or 0,
        priority=campaign.priority,
        recurrence=recurrence_of(campaign, tz=tz),
        windows=tuple(BroadcastWindow.parse(text) for text in campaign.windows),
        duration_ms=duration_ms,
        max_plays_per_day=campaign.max_plays_per_day,
        classes=classes,
        name=campaign.name,
    )


def program_duration_ms(session: Session, revision_id: int) -> int | None:
    """The longest finished render of a revision (bulletins differ by village), None if none is done."""
    query = select(func.max(Render.duration_ms)).where(
        Render.revision_id == revision_id, Render.status == RenderStatus.done
    )
    value = session.exec(query).one()
    return None if value is None else int(value)


def _check_key_free(session: Session, key: str, own_id: int | None = None) -> None:
    existing = get_campaign_by_key(session, key)
    if existing is not None and existing.id != own_id:
        raise Conflict(f"已有标识为 {key} 的宣传计划（“{existing.name}”），请换一个 key。")


def _store_recurrence(campaign: Campaign, rule: Recurrence, tz: tzinfo) -> None:
    assert rule.season is not None
    campaign.dtstart = rule.dtstart
    campaign.rrule = rule.rrule
    campaign.rdates = [at.astimezone(tz).isoformat() for at in rule.rdates]
    campaign.exdates = [at.astimezone(tz).isoformat() for at in rule.exdates]
    campaign.season_start, campaign.season_end = rule.season.first, rule.season.last
    campaign.exception_dates = sorted(day.isoformat() for day in rule.exception_days)


# ---- create, update, delete ----


def create_campaign(
    session: Session, *, data: CampaignCreate, actor: Actor, tz: tzinfo = SHANGHAI
) -> Campaign:
    if data.key is not None:
        _check_key_free(session, data.key)
    revision = resolve_revision(session, data.playlist_id, data.revision)
    selector = check_selector(session, data.selector)
    windows = check_windows(data.windows)
    season = None if data.season is None else season_of(data.season.first, data.season.last)
    rule = build_recurrence(
        data.recurrence, season=season, exception_days=frozenset(data.exception_dates), tz=tz
    )
    check_times_in_windows(rule, windows)
    check_plays(rule)
    assert rule.season is not None
    campaign = Campaign(
        key=data.key or f"new-{uuid4().hex}",  # renamed from the id once it has one
        name=data.name,
        description=data.description,
        playlist_id=data.playlist_id,
        revision_id=revision.id or 0,
        selector=selector,
        windows=windows,
        priority=data.priority,
        max_plays_per_day=data.max_plays_per_day,
        field_values=data.field_values,
        created_by=actor.user_id,
        season_start=rule.season.first,
        season_end=rule.season.last,
        dtstart=rule.dtstart,
    )
    _store_recurrence(campaign, rule, tz)
    session.add(campaign)
    session.flush()
    if data.key is None:
        campaign.key = _generated_key(session, campaign.id or 0)
        session.flush()
    _audit(session, actor, "campaign.create", campaign, None)
    return campaign


def _generated_key(session: Session, campaign_id: int) -> str:
    key, n = f"campaign-{campaign_id}", 1
    while get_campaign_by_key(session, key) is not None:
        n += 1
        key = f"campaign-{campaign_id}-{n}"
    return key


_EDIT_HINTS = {
    _S.submitted: "请先撤回为草稿再修改",
    _S.approved: "请先撤回为草稿再修改（修改后需重新提交审批）",
    _S.active: "请先暂停，再撤回为草稿后修改（修改后需重新提交审批）",
    _S.paused: "请先撤回为草稿再修改（修改后需重新提交审批）",
    _S.ended: "已结束的计划不能再修改，请新建计划",
}


def update_campaign(
    session: Session, *, campaign: Campaign, data: CampaignUpdate, actor: Actor, tz: tzinfo = SHANGHAI
) -> Campaign:
    """Change a draft: every part is checked before anything is assigned, so a refusal changes nothing."""
    if campaign.status != _S.draft:
        raise Conflict(
            f"宣传计划“{campaign.name}”当前为「{STATUS_NAMES[campaign.status]}」，不能直接修改："
            f"{_EDIT_HINTS[campaign.status]}。"
        )
    revision = None
    if data.playlist_id is not None or data.revision is not None:
        revision = resolve_revision(session, data.playlist_id or campaign.playlist_id, data.revision)
    selector = None if data.selector is None else check_selector(session, data.selector)
    windows = campaign.windows if data.windows is None else check_windows(data.windows)
    rule = _updated_recurrence(campaign, data, tz)
    check_times_in_windows(rule, windows)
    check_plays(rule)
    before = audit.snapshot(campaign)
    if revision is not None:
        campaign.playlist_id, campaign.revision_id = revision.playlist_id, revision.id or 0
    campaign.selector = campaign.selector if selector is None else selector
    campaign.windows = windows
    _store_recurrence(campaign, rule, tz)
    for name in ("name", "description", "priority", "max_plays_per_day", "field_values"):
        value = getattr(data, name)
        if value is not None:
            setattr(campaign, name, value)
    _bump(session, campaign)
    _audit(session, actor, "campaign.update", campaign, before)
    return campaign


def _updated_recurrence(campaign: Campaign, data: CampaignUpdate, tz: tzinfo) -> Recurrence:
    current = recurrence_of(campaign, tz=tz)
    season = current.season if data.season is None else season_of(data.season.first, data.season.last)
    days = current.exception_days if data.exception_dates is None else frozenset(data.exception_dates)
    if data.recurrence is not None:
        explicit = None if data.season is None and data.recurrence.preset == "dates" else season
        return build_recurrence(data.recurrence, season=explicit, exception_days=days, tz=tz)
    assert season is not None
    if data.season is not None and season.first < current.dtstart.date():
        raise Invalid(
            f"新的季节从 {season.first} 开始，早于重复规则的起点 {current.dtstart:%Y-%m-%d %H:%M}，"
            "此前的日子不会播出：请同时提交新的 recurrence。"
        )
    rule: Recurrence = scheduling(dataclasses.replace, current, season=season, exception_days=days)
    return rule


def delete_campaign(session: Session, *, campaign: Campaign, actor: Actor) -> None:
    if campaign.status != _S.draft:
        raise Conflict(
            f"宣传计划“{campaign.name}”当前为「{STATUS_NAMES[campaign.status]}」，只有草稿可以删除："
            "正在审批或播出的计划请先撤回，已结束的计划保留为记录。"
        )
    before = audit.snapshot(campaign)
    session.delete(campaign)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="campaign.delete",
        entity_type="campaign",
        entity_id=campaign.id,
        before=before,
    )


def _bump(session: Session, campaign: Campaign) -> None:
    campaign.version += 1
    campaign.updated_at = utc_now()
    session.add(campaign)
    session.flush()


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    campaign: Campaign,
    before: dict[str, Any] | None,
    **extra: Any,
) -> None:
    after = {**(audit.snapshot(campaign) or {}), **extra}
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="campaign",
        entity_id=campaign.id,
        before=before,
        after=after,
    )


# ---- workflow ----

_VERBS = {
    "submit": "提交审批",
    "withdraw": "撤回",
    "approve": "审批通过",
    "reject": "退回",
    "pause": "暂停",
    "resume": "恢复",
    "end": "结束",
    "activate": "开始播出",
}


def _require(campaign: Campaign, allowed: Iterable[CampaignStatus], action: str) -> dict[str, Any] | None:
    """409 unless the campaign is in one of ``allowed``; returns its snapshot before the change."""
    allowed = frozenset(allowed)
    if campaign.status not in allowed:
        verb = _VERBS[action]
        names = "、".join(STATUS_NAMES[status] for status in _S if status in allowed)
        raise Conflict(
            f"宣传计划“{campaign.name}”当前为「{STATUS_NAMES[campaign.status]}」，不能{verb}："
            f"只有「{names}」的计划可以{verb}。",
            details={"status": campaign.status.value},
        )
    return audit.snapshot(campaign)


def _move(
    session: Session,
    campaign: Campaign,
    *,
    actor: Actor,
    to: CampaignStatus,
    action: str,
    before: dict[str, Any] | None,
    **extra: Any,
) -> Campaign:
    """Set the status, bump, audit, and ask for a rundown refresh when what plays changes."""
    played = campaign.status in PLAYING
    campaign.status = to
    _bump(session, campaign)
    _audit(session, actor, f"campaign.{action}", campaign, before, **extra)
    if played != (to in PLAYING):
        request_refresh(session, reason=f"campaign {campaign.id} {action}")
    return campaign


def _status_on(campaign: Campaign, today: date) -> CampaignStatus:
    """Where an approved campaign stands on ``today``: before, inside or after its season."""
    if today < campaign.season_start:
        return _S.approved
    return _S.active if today <= campaign.season_end else _S.ended


def require_rendered(session: Session, campaign: Campaign) -> int:
    """The campaign's program length; 409 while its pinned revision has no finished render."""
    duration = program_duration_ms(session, campaign.revision_id)
    if duration is None:
        revision = session.get_one(PlaylistRevision, campaign.revision_id)
        playlist = session.get_one(Playlist, campaign.playlist_id)
        raise Conflict(
            f"节目单第 {revision.number} 版尚未生成节目，请先生成（节目单“{playlist.name}”），再提交审批。",
            details={"playlist_id": playlist.id, "revision": revision.number},
        )
    return duration


def _check_season_open(campaign: Campaign, today: date, action: str) -> None:
    if campaign.season_end < today:
        raise Invalid(
            f"宣传计划“{campaign.name}”的季节已于 {campaign.season_end} 结束，不能{_VERBS[action]}："
            "请修改季节或结束该计划。"
        )


def _clear_approval(campaign: Campaign) -> None:
    campaign.submitted_by = campaign.submitted_at = None
    campaign.approved_by = campaign.approved_at = None


def submit_campaign(
    session: Session, *, campaign: Campaign, actor: Actor, today: date | None = None
) -> Campaign:
    """draft → submitted, once its program is rendered, its target reaches endpoints, its season open."""
    before = _require(campaign, {_S.draft}, "submit")
    require_rendered(session, campaign)
    check_selector(session, Selector.model_validate(campaign.selector))
    _check_season_open(campaign, today or local_today(), "submit")
    campaign.submitted_by, campaign.submitted_at = actor.user_id, utc_now()
    return _move(session, campaign, actor=actor, to=_S.submitted, action="submit", before=before)


def withdraw_campaign(session: Session, *, campaign: Campaign, actor: Actor) -> Campaign:
    """submitted, approved or paused → draft; the approval is cleared, so an edit needs a new one."""
    before = _require(campaign, {_S.submitted, _S.approved, _S.paused}, "withdraw")
    _clear_approval(campaign)
    return _move(session, campaign, actor=actor, to=_S.draft, action="withdraw", before=before)


def approve_campaign(
    session: Session, *, campaign: Campaign, actor: Actor, today: date | None = None
) -> Campaign:
    """submitted → approved (active at once inside its season), by someone other than its author/submitter.

    A system actor (no user id: the CLI applying the ``schedules/`` files) is never the author.
    """
    before = _require(campaign, {_S.submitted}, "approve")
    if actor.user_id is not None and actor.user_id in (campaign.created_by, campaign.submitted_by):
        raise Forbidden("不能审批自己提交的计划：请由另一位宣传人员或管理员审批。")
    today = today or local_today()
    _check_season_open(campaign, today, "approve")
    campaign.approved_by, campaign.approved_at = actor.user_id, utc_now()
    target = _status_on(campaign, today)
    return _move(session, campaign, actor=actor, to=target, action="approve", before=before)


def reject_campaign(session: Session, *, campaign: Campaign, actor: Actor, reason: str) -> Campaign:
    """submitted → draft, with the reason in the audit log."""
    before = _require(campaign, {_S.submitted}, "reject")
    _clear_approval(campaign)
    return _move(session, campaign, actor=actor, to=_S.draft, action="reject", before=before, reason=reason)


def pause_campaign(session: Session, *, campaign: Campaign, actor: Actor) -> Campaign:
    before = _require(campaign, PLAYING, "pause")
    return _move(session, campaign, actor=actor, to=_S.paused, action="pause", before=before)


def resume_campaign(
    session: Session, *, campaign: Campaign, actor: Actor, today: date | None = None
) -> Campaign:
    """paused → approved or active (by its season); a season that ended meanwhile: 422, end it instead."""
    before = _require(campaign, {_S.paused}, "resume")
    today = today or local_today()
    _check_season_open(campaign, today, "resume")
    target = _status_on(campaign, today)
    return _move(session, campaign, actor=actor, to=target, action="resume", before=before)


def end_campaign(session: Session, *, campaign: Campaign, actor: Actor) -> Campaign:
    before = _require(campaign, {*PLAYING, _S.paused}, "end")
    return _move(session, campaign, actor=actor, to=_S.ended, action="end", before=before)


def activate_due(session: Session, *, today: date, actor: Actor = SYSTEM) -> list[Campaign]:
    """Approved campaigns whose season has started (and not ended) become active; returns them."""
    query = select(Campaign).where(
        Campaign.status == _S.approved,
        col(Campaign.season_start) <= today,
        col(Campaign.season_end) >= today,
    )
    due = list(session.exec(query.order_by(col(Campaign.id))).all())
    for campaign in due:
        before = audit.snapshot(campaign)
        _move(session, campaign, actor=actor, to=_S.active, action="activate", before=before)
    return due


def end_due(session: Session, *, today: date, actor: Actor = SYSTEM) -> list[Campaign]:
    """Approved, active and paused campaigns whose season ended before ``today`` end; returns them."""
    live = (_S.approved, _S.active, _S.paused)
    query = select(Campaign).where(col(Campaign.status).in_(live), col(Campaign.season_end) < today)
    due = list(session.exec(query.order_by(col(Campaign.id))).all())
    for campaign in due:
        before = audit.snapshot(campaign)
        _move(session, campaign, actor=actor, to=_S.ended, action="end", before=before)
    return due
